"""Observability: config rules, every alarm's metric, threshold and actions per stack, the encrypted alerts topic,
Container Insights and its log groups, retention and KMS on every log group, the dashboard, and prod's
Prometheus stack with rules that parse and runbook entries that exist."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import promql_parser
import pytest

from components import upstream
from components.addons import CHARTS
from components.alarms import job_pod_name
from components.cache import cache_node_suffixes
from components.config import ConfigError, validate
from components.prometheus import PROMETHEUS_CHART
from components.vocabulary import METRICS_PORT
from keel.engine import Preview, Step
from keel.fake import DEFAULT_ACCOUNT as ACCOUNT
from keel.fake import FakeCloud
from tests.helpers import ROOT, physical_id, policy_doc
from tests.helpers import stack_config as stack

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
GIB = 1024**3

# ------------------------------------------------------------------------------------------ config rules


CASES: list[tuple[str, dict[str, str], str]] = [
    (
        "prod without alerts",
        {**stack(), "keel:alerts": "null"},
        "keel:alerts: missing in a prod stack; set at least keel:alerts.emails (who hears the alarms)",
    ),
    (
        "prod without recipients",
        stack(alerts={"emails": []}),
        "keel:alerts.emails: got [] in a prod stack; allowed: one or more addresses (someone must be paged)",
    ),
    (
        "not an address",
        stack("dev", alerts={"emails": ["oncall"]}),
        "keel:alerts.emails: got 'oncall'; expected e-mail addresses such as 'oncall@example.com'",
    ),
    (
        "threshold out of range",
        stack("dev", alerts={"thresholds": {"databaseCpuPercent": 120}}),
        "keel:alerts.thresholds.databaseCpuPercent: got 120; allowed: 1 to 100",
    ),
    (
        "minutes not in 5-minute periods",
        stack("dev", alerts={"thresholds": {"nodeGroupAtMaxMinutes": 12}}),
        "keel:alerts.thresholds.nodeGroupAtMaxMinutes: got 12; allowed: a multiple of 5 (the alarm counts 5-minute "
        "periods)",
    ),
    (
        "unknown threshold",
        stack("dev", alerts={"thresholds": {"cpu": 80}}),
        "keel:alerts.thresholds.cpu: unknown key; allowed keys: albErrorPercent, albP95Ms, cacheCpuPercent, "
        "cacheMemoryPercent, cacheReplicationLagSeconds, databaseConnectionsPercent, databaseCpuPercent, "
        "databaseFreeStoragePercent, databaseReplicaLagSeconds, databaseReplicationSlotLagMb, gpuUnavailableMinutes, "
        "nodeGroupAtMaxMinutes, unhealthyHostsMinutes",
    ),
    (
        "log retention CloudWatch refuses",
        stack("dev", alerts={"logRetentionDays": 10}),
        "keel:alerts.logRetentionDays: got 10; allowed: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, "
        "731, 1096, 1827, 2192, 2557, 2922, 3288, 3653",
    ),
    (
        "prometheus without a cluster",
        stack("dev", alerts={"prometheus": {}}),
        "keel:alerts.prometheus: got a Prometheus stack but keel:cluster is not configured (it runs there)",
    ),
]


@pytest.mark.parametrize(("raw", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_alerts_config_rules(raw: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate("t", raw)
    assert err.value.problems == [message]


def test_threshold_defaults_are_the_source_design() -> None:
    alerts = validate("t", stack("dev", alerts={})).alerts
    assert alerts is not None
    t = alerts.thresholds
    assert (t.database_cpu_percent, t.database_connections_percent, t.database_free_storage_percent) == (80, 80, 15)
    assert (t.cache_memory_percent, t.alb_error_percent, t.alb_p95_ms, t.node_group_at_max_minutes) == (80, 2, 300, 15)
    assert alerts.log_retention_days == 30 and alerts.container_insights and alerts.prometheus is None


@pytest.mark.parametrize(
    ("shards", "replicas", "cluster_mode", "suffixes"),
    [
        (1, 0, False, ["-001"]),
        (1, 1, False, ["-001", "-002"]),
        (2, 1, True, ["-0001-001", "-0001-002", "-0002-001", "-0002-002"]),
    ],
)
def test_cache_node_ids_follow_elasticache_naming(
    shards: int, replicas: int, cluster_mode: bool, suffixes: list[str]
) -> None:
    assert cache_node_suffixes(shards, replicas, cluster_mode) == suffixes


@pytest.mark.parametrize(
    ("job", "pod_name"), [("forecast-trainer", "forecast"), ("trainer", "trainer"), ("etl.nightly", "etl")]
)
def test_job_pod_name_is_the_container_insights_dimension(job: str, pod_name: str) -> None:
    assert job_pod_name(job) == pod_name


# ------------------------------------------------------------------------------------------ alarms


def single(namespace: str, metric: str, dims: dict[str, str], stat: str, period: int = 300) -> dict[str, Any]:
    key = "extendedStatistic" if stat.startswith("p") else "statistic"
    return {"namespace": namespace, "metricName": metric, "dimensions": dims, key: stat, "period": period}


def query(namespace: str, metric: str, dims: dict[str, str], stat: str, period: int = 300) -> dict[str, Any]:
    return {"dimensions": dims, "metricName": metric, "namespace": namespace, "period": period, "stat": stat}


def watched(alarm: Step) -> dict[str, Any]:
    """What an alarm reads: its single metric, or its expression and the metrics by id."""
    i = alarm.inputs
    if "metricQueries" not in i:
        return {
            k: i[k]
            for k in ("namespace", "metricName", "dimensions", "statistic", "extendedStatistic", "period")
            if k in i
        }
    queries = i["metricQueries"]
    [expression] = [q for q in queries if q.get("returnData")]
    return {"expression": expression["expression"], **{q["id"]: q["metric"] for q in queries if "metric" in q}}


def state(step: Step) -> dict[str, Any]:
    """The output state the fake cloud gave a resource (what the program read back: ARN suffixes, ASG names)."""
    cloud = FakeCloud(region="us-east-1", account=ACCOUNT)
    _, out = cloud.resource(step.type, step.name, step.urn, step.inputs)
    if step.type == "eks:index:ManagedNodeGroup":
        return dict(cloud.virtual[-1][2])
    return out


def expected_alarms(p: Preview, env: str) -> dict[str, tuple[dict[str, Any], str, float, int]]:
    """Alarm name -> (what it watches, comparison, threshold, evaluation periods), from the stack's config."""
    prod = env == "prod"
    n = f"keel-{env}"
    alb = state(p.one("aws:lb/loadBalancer:LoadBalancer", n))["arnSuffix"]
    rg = {
        c: physical_id(p.one("aws:elasticache/replicationGroup:ReplicationGroup", f"{n}-{c}"))
        for c in ("queue", "cache")
    }
    db = {"DBInstanceIdentifier": f"{n}-db"}
    replica = {"DBInstanceIdentifier": f"{n}-db-replica-1"}
    lb = {"LoadBalancer": alb}
    out: dict[str, tuple[dict[str, Any], str, float, int]] = {
        f"{n}-db-cpu": (single("AWS/RDS", "CPUUtilization", db, "Average"), "GreaterThanThreshold", 80, 3),
        f"{n}-db-connections": (
            single("AWS/RDS", "DatabaseConnections", db, "Maximum"),
            "GreaterThanThreshold",
            160,
            3,
        ),
        f"{n}-db-free-storage": (
            single("AWS/RDS", "FreeStorageSpace", db, "Minimum"),
            "LessThanThreshold",
            (100 if prod else 20) * GIB * 15 // 100,
            2,
        ),
        f"{n}-db-replication-slot-lag": (
            single("AWS/RDS", "OldestReplicationSlotLag", db, "Maximum"),
            "GreaterThanThreshold",
            1024 * 1024**2,
            3,
        ),
        **(
            {
                # The read replica (prod sets keel:database.readReplicas: 1): lag, CPU, and the primary's
                # connections and free-storage alarms on it.
                f"{n}-db-replica-1-lag": (
                    single("AWS/RDS", "ReplicaLag", replica, "Maximum"),
                    "GreaterThanThreshold",
                    30,
                    3,
                ),
                f"{n}-db-replica-1-cpu": (
                    single("AWS/RDS", "CPUUtilization", replica, "Average"),
                    "GreaterThanThreshold",
                    80,
                    3,
                ),
                f"{n}-db-replica-1-connections": (
                    single("AWS/RDS", "DatabaseConnections", replica, "Maximum"),
                    "GreaterThanThreshold",
                    160,
                    3,
                ),
                f"{n}-db-replica-1-free-storage": (
                    single("AWS/RDS", "FreeStorageSpace", replica, "Minimum"),
                    "LessThanThreshold",
                    100 * GIB * 15 // 100,
                    2,
                ),
            }
            if prod
            else {}
        ),
        f"{n}-alb-5xx-rate": (
            {
                "expression": "IF(requests > 0, 100 * (FILL(target5xx, 0) + FILL(alb5xx, 0)) / requests, 0)",
                "requests": query("AWS/ApplicationELB", "RequestCount", lb, "Sum"),
                "target5xx": query("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", lb, "Sum"),
                "alb5xx": query("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", lb, "Sum"),
            },
            "GreaterThanThreshold",
            2,
            2,
        ),
        f"{n}-backup-failed": (
            {
                "expression": "FILL(failed, 0) + FILL(expired, 0) + FILL(aborted, 0)",
                **{
                    state.lower(): query(
                        "AWS/Backup", f"NumberOfBackupJobs{state}", {"BackupVaultName": n}, "Sum", 3600
                    )
                    for state in ("Failed", "Expired", "Aborted")  # expired: never started within its window
                },
            },
            "GreaterThanThreshold",
            0,
            1,
        ),
    }
    if prod:
        out[f"{n}-backup-copy-failed"] = (
            single("AWS/Backup", "NumberOfCopyJobsFailed", {"BackupVaultName": n}, "Sum", 3600),
            "GreaterThanThreshold",
            0,
            1,
        )
    for svc in ("web", "api"):
        dims = {
            "LoadBalancer": alb,
            "TargetGroup": state(p.one("aws:lb/targetGroup:TargetGroup", f"{n}-{svc}"))["arnSuffix"],
        }
        out[f"{n}-{svc}-p95"] = (
            single("AWS/ApplicationELB", "TargetResponseTime", dims, "p95"),
            "GreaterThanThreshold",
            0.3,
            3,
        )
        out[f"{n}-{svc}-unhealthy"] = (
            single("AWS/ApplicationELB", "UnHealthyHostCount", dims, "Maximum", 60),
            "GreaterThanThreshold",
            0,
            5,
        )
    for index, nat in enumerate(p.of_type("aws:ec2/natGateway:NatGateway")):
        out[f"{n}-nat-{index}-port-allocation"] = (
            single("AWS/NATGateway", "ErrorPortAllocation", {"NatGatewayId": physical_id(nat)}, "Sum"),
            "GreaterThanThreshold",
            0,
            1,
        )
    nodes = {
        "queue": [f"{rg['queue']}-001", f"{rg['queue']}-002"] if prod else [f"{rg['queue']}-001"],
        "cache": [f"{rg['cache']}-{s}-{m}" for s in ("0001", "0002") for m in ("001", "002")]
        if prod
        else [f"{rg['cache']}-001"],
    }
    for cache, ids in nodes.items():
        rows: list[tuple[str, str, str, int, int]] = [
            ("memory", "DatabaseMemoryUsagePercentage", "Maximum", 80, 3),
            ("cpu", "EngineCPUUtilization", "Average", 80, 3),
        ]
        if prod:  # only prod's caches have replicas
            rows.append(("replication-lag", "ReplicationLag", "Maximum", 5, 3))
        if cache == "queue":  # noeviction: any eviction loses jobs
            rows.append(("evictions", "Evictions", "Sum", 0, 1))
        for signal, metric, stat, threshold, periods in rows:
            metrics = {
                f"m{i}": query("AWS/ElastiCache", metric, {"CacheClusterId": node}, stat) for i, node in enumerate(ids)
            }
            out[f"{n}-{cache}-{signal}"] = (
                {"expression": f"MAX([{', '.join(metrics)}])", **metrics},
                "GreaterThanThreshold",
                threshold,
                periods,
            )
    zones = ["us-east-1a", "us-east-1b", "us-east-1c"] if prod else ["us-east-1a", "us-east-1b"]
    asg = {
        g: state(p.one("eks:index:ManagedNodeGroup", f"{n}-{g}"))["resources"][0]["autoscalingGroups"][0]["name"]
        for g in (*(f"general-{zone}" for zone in zones), "gpu")
    }
    samples = {
        f"s{i}": query("AWS/EC2", "CPUUtilization", {"AutoScalingGroupName": asg[f"general-{zone}"]}, "SampleCount")
        for i, zone in enumerate(zones)
    }
    out[f"{n}-general-at-max"] = (
        {
            # the pool's nodes, summed over its zone groups: each running instance reports 5 samples per 5 minutes
            # (basic monitoring: one datapoint of 5)
            "expression": f"({' + '.join(f'FILL({k}, 0)' for k in samples)}) / 5",
            **samples,
        },
        "GreaterThanOrEqualToThreshold",
        4 if prod else 3,
        3,
    )
    out[f"{n}-forecast-trainer-gpu-unavailable"] = (
        {
            "expression": "IF(FILL(pending, 0) > 0 AND FILL(gpus, 0) == 0, 1, 0)",
            "pending": query(
                "ContainerInsights",
                "pod_status_pending",
                {"ClusterName": n, "Namespace": "apps", "PodName": "forecast"},
                "Maximum",
            ),
            "gpus": query("AWS/EC2", "CPUUtilization", {"AutoScalingGroupName": asg["gpu"]}, "SampleCount"),
        },
        "GreaterThanOrEqualToThreshold",
        1,
        3,
    )
    return out


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_alarms_watch_exact_metrics_with_the_configured_thresholds(preview: Callable[[str], Preview], env: str) -> None:
    p = preview(env)
    topic = f"arn:aws:sns:us-east-1:{ACCOUNT}:keel-{env}-alerts"
    alarms = {a.name: a for a in p.of_type(ALARM)}
    expected = expected_alarms(p, env)
    assert sorted(alarms) == sorted(expected)
    for name, (metric, comparison, threshold, periods) in expected.items():
        i = alarms[name].inputs
        assert (name, watched(alarms[name])) == (name, metric)
        assert (name, i["comparisonOperator"], i["threshold"]) == (name, comparison, threshold)
        assert (i["evaluationPeriods"], i["datapointsToAlarm"]) == (periods, periods), name
        assert i["alarmActions"] == i["okActions"] == [topic], name
        assert i["name"] == name
        assert i["treatMissingData"] == "notBreaching"
        assert re.fullmatch(r".+\. Runbook: README\.md#[a-z0-9-]+", i["alarmDescription"]), name
    # GPU groups are left out of "at max": a training job keeps a one-node GPU group at its maximum by design
    assert f"keel-{env}-gpu-at-max" not in alarms


def test_thresholds_come_from_the_stack_config() -> None:
    """Changing a threshold in config changes exactly that alarm's threshold."""
    from components.alarms import cache_alarms, database_alarms, node_group_alarms

    t = validate(
        "t",
        stack(
            "dev",
            alerts={"thresholds": {"databaseCpuPercent": 65, "cacheMemoryPercent": 70, "nodeGroupAtMaxMinutes": 30}},
        ),
    ).alerts
    assert t is not None
    db = {a.key: a for a in database_alarms("db", t.thresholds, max_connections=500, storage_gb=200)}
    assert db["db-cpu"].threshold == 65
    assert db["db-connections"].threshold == 400  # 80% of 500
    assert db["db-free-storage"].threshold == 200 * GIB * 15 / 100
    cache = {a.key: a for a in cache_alarms("q", ["q-001"], t.thresholds, evicting=True, replicas=0)}
    assert sorted(cache) == ["q-cpu", "q-memory"]  # an evicting cache without replicas: no evictions, no lag alarm
    assert cache["q-memory"].threshold == 70
    [at_max] = node_group_alarms("general", "asg", 6, t.thresholds)
    assert (at_max.threshold, at_max.periods) == (6, 6)  # 30 minutes of 5-minute periods
    assert at_max.expression == "FILL(samples, 0) / 5"  # instances, not samples, are compared with maxSize


def test_more_than_ten_nodes_split_across_alarms() -> None:
    from components.alarms import cache_alarms

    t = validate("t", stack("dev", alerts={})).alerts
    assert t is not None
    nodes = [f"c-{s:04d}-{m:03d}" for s in range(1, 7) for m in (1, 2)]  # 12 nodes: CloudWatch allows 10 metrics
    memory = [a for a in cache_alarms("c", nodes, t.thresholds, evicting=True, replicas=1) if "memory" in a.key]
    assert [(a.key, len(a.metrics)) for a in memory] == [("c-memory-1", 10), ("c-memory-2", 2)]
    assert [m.dimensions["CacheClusterId"] for a in memory for m in a.metrics.values()] == nodes


# ------------------------------------------------------------------------------------------ topic


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_alerts_topic_is_encrypted_and_only_this_accounts_alarms_publish(
    preview: Callable[[str], Preview], env: str
) -> None:
    p = preview(env)
    n = f"keel-{env}"
    key = p.one("aws:kms/key:Key", f"{n}-observability")
    topic = p.one("aws:sns/topic:Topic", f"{n}-alerts")
    arn = f"arn:aws:sns:us-east-1:{ACCOUNT}:{n}-alerts"
    alarms = f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{n}-*"
    assert topic.inputs["kmsMasterKeyId"] == f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{physical_id(key)}"
    assert (p.steps[0].outputs["alertsTopicArn"], p.steps[0].outputs["dashboardName"]) == (arn, n)
    assert policy_doc(p.one("aws:sns/topicPolicy:TopicPolicy", f"{n}-alerts"))["Statement"] == [
        {
            "Sid": "CloudWatchAlarmsPublish",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": arn,
            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}, "ArnLike": {"aws:SourceArn": alarms}},
        },
        {
            "Sid": "DenyPublishWithoutTls",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "sns:Publish",
            "Resource": arn,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
    ]
    statements = {s["Sid"]: s for s in policy_doc(key)["Statement"]}
    assert statements["CloudWatchAlarmsPublishToTheEncryptedTopic"] == {
        "Sid": "CloudWatchAlarmsPublishToTheEncryptedTopic",
        "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}, "ArnLike": {"aws:SourceArn": alarms}},
    }
    groups = [
        f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/containerinsights/{n}/{k}"
        for k in ("application", "dataplane", "host", "performance")
    ]
    assert statements["CloudWatchLogsUsesKeyForItsLogGroups"]["Condition"] == {
        "ArnEquals": {"kms:EncryptionContext:aws:logs:arn": groups}
    }
    emails = ["platform-oncall@example.com"] if env == "prod" else ["platform-dev@example.com"]
    subscriptions = p.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert [(s.inputs["protocol"], s.inputs["endpoint"], s.inputs["topic"]) for s in subscriptions] == [
        ("email", e, arn) for e in emails
    ]


# ------------------------------------------------------------------------------------------ logs


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_every_log_group_has_retention_and_a_customer_key(preview: Callable[[str], Preview], env: str) -> None:
    p = preview(env)
    groups = {g.inputs["name"]: g for g in p.of_type(LOG_GROUP)}
    n = f"keel-{env}"
    assert sorted(groups) == sorted(
        [
            f"/aws/eks/{n}/cluster",
            f"/aws/rds/instance/{n}-db/postgresql",
            f"/aws/rds/instance/{n}-db/upgrade",
            *([f"/aws/rds/instance/{n}-db-replica-1/{k}" for k in ("postgresql", "upgrade")] if env == "prod" else []),
            *([f"/aws/rds/proxy/{n}-db-proxy"] if env == "prod" else []),
            f"/{n}/vpc/flow-logs",
            *([f"/{n}-standby/vpc/flow-logs"] if env == "prod" else []),  # the standby network in us-west-2
            *[f"/aws/containerinsights/{n}/{k}" for k in ("application", "dataplane", "host", "performance")],
        ]
    )
    keys = {
        f"arn:aws:kms:{region}:{ACCOUNT}:key/{physical_id(k)}"
        for k in p.of_type("aws:kms/key:Key")
        for region in ("us-east-1", "us-west-2")
    }
    for name, group in groups.items():
        assert group.inputs["kmsKeyId"] in keys, name
        assert group.inputs["retentionInDays"] > 0, name
    retention = {name: g.inputs["retentionInDays"] for name, g in groups.items()}
    assert retention[f"/aws/containerinsights/{n}/application"] == (90 if env == "prod" else 14)
    assert retention[f"/{n}/vpc/flow-logs"] == (90 if env == "prod" else 14)


# ------------------------------------------------------------------------------------------ Container Insights


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_container_insights_addon_with_its_own_role(preview: Callable[[str], Preview], env: str) -> None:
    p = preview(env)
    n = f"keel-{env}"
    addon = p.one("aws:eks/addon:Addon", f"{n}-cloudwatch-observability")
    role = p.one("aws:iam/role:Role", f"{n}-cloudwatch-agent")
    assert addon.inputs["addonName"] == "amazon-cloudwatch-observability"
    assert json.loads(addon.inputs["configurationValues"]) == {
        "agent": {
            "config": {
                "logs": {
                    "metrics_collected": {
                        "kubernetes": {"enhanced_container_insights": True, "accelerated_compute_metrics": True}
                    }
                }
            }
        },
        "containerLogs": {"enabled": True},
    }
    assert addon.inputs["podIdentityAssociations"] == [
        {"roleArn": f"arn:aws:iam::{ACCOUNT}:role/{physical_id(role)}", "serviceAccount": "cloudwatch-agent"}
    ]
    trust = policy_doc(role, "assumeRolePolicy")["Statement"][0]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert trust["Condition"]["ArnEquals"] == {"aws:SourceArn": f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/{n}"}
    attached = [
        a.inputs["policyArn"]
        for a in p.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == physical_id(role)
    ]
    assert attached == ["arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"]
    # the log groups exist (retention, KMS) before the agent would create them, and the agent can get credentials
    needed = [g.urn for g in p.of_type(LOG_GROUP) if "/containerinsights/" in g.inputs["name"]]
    needed.append(p.one("aws:eks/addon:Addon", f"{n}-pod-identity-agent").urn)
    assert len(needed) == 5 and set(needed) <= set(addon.dependencies)


# ------------------------------------------------------------------------------------------ dashboard


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_dashboard_shows_each_tiers_golden_signals(preview: Callable[[str], Preview], env: str) -> None:
    p = preview(env)
    n = f"keel-{env}"
    body = json.loads(p.one("aws:cloudwatch/dashboard:Dashboard", n).inputs["dashboardBody"])
    widgets = {w["properties"]["title"]: w["properties"] for w in body["widgets"]}
    assert sorted(widgets) == sorted(
        [
            "ALB requests",
            "ALB 5xx",
            "Target p95 response time (s)",
            "RDS CPU %",
            "RDS connections",
            "RDS latency (s)",
            "Redis memory %",
            "Redis engine CPU %",
            "Redis evictions",
            "Nodes per group",
            "Node CPU % per group",
            "Pods pending",
        ]
    )
    alb = state(p.one("aws:lb/loadBalancer:LoadBalancer", n))["arnSuffix"]
    assert widgets["ALB requests"]["metrics"] == [["AWS/ApplicationELB", "RequestCount", "LoadBalancer", alb]]
    assert widgets["Target p95 response time (s)"]["stat"] == "p95"
    assert widgets["RDS CPU %"]["metrics"] == [["AWS/RDS", "CPUUtilization", "DBInstanceIdentifier", f"{n}-db"]]
    nodes = 6 if env == "prod" else 2  # queue 1x2 + cache 2x2 in prod; one node each in dev
    assert len(widgets["Redis memory %"]["metrics"]) == nodes
    nodes_per_group = widgets["Nodes per group"]["metrics"]
    groups = [
        f"general-{z}"
        for z in (("us-east-1a", "us-east-1b", "us-east-1c") if env == "prod" else ("us-east-1a", "us-east-1b"))
    ]
    groups.append("gpu")
    assert nodes_per_group[: len(groups)] == [
        [{"expression": f"FILL(s{i}, 0) / 5", "label": group, "id": f"n{i}"}] for i, group in enumerate(groups)
    ]
    assert [m[-1] for m in nodes_per_group[len(groups) :]] == [
        {"id": f"s{i}", "stat": "SampleCount", "visible": False} for i in range(len(groups))
    ]
    assert {w["properties"]["region"] for w in body["widgets"]} == {"us-east-1"}


# ------------------------------------------------------------------------------------------ Prometheus


def test_prometheus_stack_only_in_prod(preview: Callable[[str], Preview]) -> None:
    assert not preview("dev").of_type("keel:observability:PrometheusStack")
    p = preview("prod")
    release = p.one("kubernetes:helm.sh/v3:Release", "keel-prod-kube-prometheus-stack")
    assert (release.inputs["chart"], release.inputs["version"], release.inputs["namespace"]) == (
        "kube-prometheus-stack",
        "88.5.3",
        "monitoring",
    )
    v = release.inputs["values"]
    claim = v["prometheus"]["prometheusSpec"]["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert v["prometheus"]["prometheusSpec"]["retention"] == "15d"
    assert claim == {
        "storageClassName": "gp3-encrypted",
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "100Gi"}},
    }
    am_claim = v["alertmanager"]["alertmanagerSpec"]["storage"]["volumeClaimTemplate"]["spec"]
    assert am_claim["resources"] == {"requests": {"storage": "10Gi"}}
    assert v["grafana"]["persistence"] == {"enabled": True, "storageClassName": "gp3-encrypted", "size": "10Gi"}
    assert v["grafana"]["admin"] == {
        "existingSecret": "grafana-admin",
        "userKey": "admin-user",
        "passwordKey": "admin-password",
    }
    [sns] = next(r for r in v["alertmanager"]["config"]["receivers"] if r["name"] == "alerts-topic")["sns_configs"]
    assert sns["topic_arn"] == f"arn:aws:sns:us-east-1:{ACCOUNT}:keel-prod-alerts"
    assert sns["sigv4"] == {"region": "us-east-1"}  # no keys: Pod Identity credentials
    assert v["alertmanager"]["config"]["route"]["receiver"] == "alerts-topic"
    storage = p.one("kubernetes:storage.k8s.io/v1:StorageClass", "keel-prod-gp3-encrypted").inputs
    assert (storage["provisioner"], storage["parameters"], storage["reclaimPolicy"]) == (
        "ebs.csi.aws.com",
        {"type": "gp3", "encrypted": "true"},
        "Retain",
    )
    secret = p.one("kubernetes:core/v1:Secret", "keel-prod-grafana-admin")
    assert secret.inputs["stringData"] == "[secret]"
    assert {secret.urn, p.one("kubernetes:core/v1:Namespace", "keel-prod-monitoring").urn} <= set(release.dependencies)


def test_alertmanager_may_only_publish_to_the_alerts_topic(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    role = p.one("aws:iam/role:Role", "keel-prod-alertmanager")
    key = p.one("aws:kms/key:Key", "keel-prod-observability")
    assert policy_doc(p.one("aws:iam/rolePolicy:RolePolicy", "keel-prod-alertmanager"))["Statement"] == [
        {
            "Sid": "PublishAlerts",
            "Effect": "Allow",
            "Action": "sns:Publish",
            "Resource": f"arn:aws:sns:us-east-1:{ACCOUNT}:keel-prod-alerts",
        },
        {
            "Sid": "EncryptThroughSns",
            "Effect": "Allow",
            "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
            "Resource": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{physical_id(key)}",
            "Condition": {"StringEquals": {"kms:ViaService": "sns.us-east-1.amazonaws.com"}},
        },
    ]
    association = p.one("aws:eks/podIdentityAssociation:PodIdentityAssociation", "keel-prod-alertmanager")
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == ("monitoring", "alertmanager")
    assert association.inputs["roleArn"] == f"arn:aws:iam::{ACCOUNT}:role/{physical_id(role)}"


def test_prometheus_rules_parse_and_use_the_configured_thresholds(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    groups = p.one("kubernetes:monitoring.coreos.com/v1:PrometheusRule", "keel-prod-rules").inputs["spec"]["groups"]
    rules = {r["alert"]: r for g in groups for r in g["rules"]}
    assert sorted(rules) == ["KedaScalerErrors", "KeelErrorRateHigh", "KeelPodRestarting", "KeelRequestLatencyP95High"]
    for name, rule in rules.items():
        promql_parser.parse(rule["expr"])  # raises ValueError on invalid PromQL
        assert rule["annotations"]["runbook_url"].startswith("README.md#"), name
    assert rules["KeelRequestLatencyP95High"]["expr"].endswith("> 0.3")
    assert "histogram_quantile(0.95," in rules["KeelRequestLatencyP95High"]["expr"]
    assert rules["KeelErrorRateHigh"]["expr"].endswith("> 0.02")
    assert (
        'http_request_duration_seconds_count{namespace="apps", status_code=~"5.."}'
        in rules["KeelErrorRateHigh"]["expr"]
    )
    assert "kube_pod_container_status_restarts_total" in rules["KeelPodRestarting"]["expr"]
    assert "keda_scaler_detail_errors_total" in rules["KedaScalerErrors"]["expr"]
    with pytest.raises(ValueError):
        promql_parser.parse("sum by (service (rate(x[5m]))")  # the parser does reject broken rules


def test_prometheus_scrapes_apps_and_keda_through_a_narrow_network_policy(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    monitors = {m.name: m.inputs for m in p.of_type("kubernetes:monitoring.coreos.com/v1:PodMonitor")}
    assert monitors["keel-prod-apps"]["metadata"]["namespace"] == "apps"
    assert monitors["keel-prod-apps"]["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    assert monitors["keel-prod-keda"]["spec"]["selector"] == {"matchLabels": {"app": "keda-operator"}}
    keda = p.one("kubernetes:helm.sh/v3:Release", "keel-prod-keda")
    assert keda.inputs["values"]["prometheus"] == {"operator": {"enabled": True}}
    # each waits for the CRDs (the release) and for the namespace it lives in
    release = p.one("kubernetes:helm.sh/v3:Release", "keel-prod-kube-prometheus-stack").urn
    apps = p.one("kubernetes:core/v1:Namespace", "keel-prod-apps").urn
    scrape = p.one("kubernetes:networking.k8s.io/v1:NetworkPolicy", "keel-prod-allow-prometheus")
    for step in (p.one("kubernetes:monitoring.coreos.com/v1:PodMonitor", "keel-prod-apps"), scrape):
        assert {release, apps} <= set(step.dependencies), step.name
    keda_monitor = p.one("kubernetes:monitoring.coreos.com/v1:PodMonitor", "keel-prod-keda")
    assert {release, keda.urn} <= set(keda_monitor.dependencies)
    policy = p.one("kubernetes:networking.k8s.io/v1:NetworkPolicy", "keel-prod-allow-prometheus").inputs["spec"]
    assert policy["ingress"] == [
        {
            "from": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
                    "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
                }
            ],
            "ports": [{"protocol": "TCP", "port": "metrics"}],
        }
    ]


# ------------------------------------------------------------------------------------------ what the charts do


def kps_values(p: Preview) -> dict[str, Any]:
    return dict(p.one("kubernetes:helm.sh/v3:Release", "keel-prod-kube-prometheus-stack").inputs["values"])


def dig(values: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        values = values.get(key) if isinstance(values, dict) else None
    return values


def test_grafana_is_recreated_not_rolled_on_upgrade(preview: Callable[[str], Preview]) -> None:
    """Grafana's ReadWriteOnce volume cannot attach to the new pod while the old one holds it: the chart's default
    rolling update deadlocks (and the atomic release rolls back) whenever the new pod lands on another node."""
    grafana = kps_values(preview("prod"))["grafana"]
    key, default = upstream.GRAFANA_DEPLOYMENT_STRATEGY.value
    assert default == "RollingUpdate"
    assert grafana[key] == {"type": "Recreate"}
    # the value applies: with type pvc (the default keel keeps) Grafana is a Deployment, not a StatefulSet
    type_key, pvc = upstream.GRAFANA_PERSISTENCE_TYPE.value
    assert dig(grafana, type_key) in (None, pvc)
    assert grafana["persistence"]["enabled"] is True


def test_keda_is_scraped_on_the_port_its_chart_serves_metrics_on(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    monitor = p.one("kubernetes:monitoring.coreos.com/v1:PodMonitor", "keel-prod-keda").inputs
    [endpoint] = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == upstream.KEDA_METRICS_PORT.value
    label, value = upstream.KEDA_OPERATOR_POD_LABEL.value
    assert monitor["spec"]["selector"] == {"matchLabels": {label: value}}
    keda = p.one("kubernetes:helm.sh/v3:Release", "keel-prod-keda").inputs
    assert monitor["metadata"]["namespace"] == keda["namespace"]
    # the port exists only with the operator's metrics on (off by default)
    key, default = upstream.KEDA_OPERATOR_METRICS.value
    assert default is False and dig(keda["values"], key) is True
    # the alert reads the counter the operator exports
    groups = p.one("kubernetes:monitoring.coreos.com/v1:PrometheusRule", "keel-prod-rules").inputs["spec"]["groups"]
    [rule] = [r for g in groups for r in g["rules"] if r["alert"] == "KedaScalerErrors"]
    assert f"increase({upstream.KEDA_SCALER_ERRORS_METRIC.value}[5m])" in rule["expr"]


EKS_UNREACHABLE = [
    upstream.KPS_KUBE_CONTROLLER_MANAGER,
    upstream.KPS_KUBE_SCHEDULER,
    upstream.KPS_KUBE_ETCD,
    upstream.KPS_KUBE_PROXY,
]
RULE_GATES = [
    upstream.KPS_RULES_CONTROLLER_MANAGER,
    upstream.KPS_RULES_SCHEDULER_ALERTING,
    upstream.KPS_RULES_SCHEDULER_RECORDING,
    upstream.KPS_RULES_ETCD,
    upstream.KPS_RULES_KUBE_PROXY,
]


def test_no_monitors_or_rules_for_what_eks_does_not_let_prometheus_reach(preview: Callable[[str], Preview]) -> None:
    """The managed control plane (controller manager, scheduler, etcd) and kube-proxy's 127.0.0.1 metrics have no
    target Prometheus can scrape, so their monitors and the *Down alerts on them would page forever."""
    values = kps_values(preview("prod"))
    for fact in EKS_UNREACHABLE:
        key, default = fact.value
        assert default is True, fact.source
        assert dig(values, key) is False, key
    # each alerting or recording group on them is rendered only while its component is enabled
    for gate in RULE_GATES:
        assert dig(values, gate.value) is False, gate.source
    assert "defaultRules" not in values  # nothing else to turn off


def test_services_are_scraped_on_their_metrics_port_only(preview: Callable[[str], Preview]) -> None:
    """Services serve /metrics on a container port of its own that no target group reaches; Prometheus scrapes that
    port and the NetworkPolicy admits it there only, never on the `http` port the ALB forwards to."""
    p = preview("prod")
    monitor = p.one("kubernetes:monitoring.coreos.com/v1:PodMonitor", "keel-prod-apps").inputs
    assert [e["port"] for e in monitor["spec"]["podMetricsEndpoints"]] == [METRICS_PORT] == ["metrics"]
    policy = p.one("kubernetes:networking.k8s.io/v1:NetworkPolicy", "keel-prod-allow-prometheus").inputs["spec"]
    [rule] = policy["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": METRICS_PORT}]
    label, value = upstream.KPS_PROMETHEUS_POD_LABEL.value
    assert [f["podSelector"] for f in rule["from"]] == [{"matchLabels": {label: value}}]
    # the pods the monitor selects declare that port (components/service.py)
    selected = monitor["spec"]["selector"]["matchLabels"].items()
    ports = {
        port["name"]
        for d in p.of_type("kubernetes:apps/v1:Deployment")
        if selected <= d.inputs["spec"]["template"]["metadata"]["labels"].items()
        for container in d.inputs["spec"]["template"]["spec"]["containers"]
        for port in container.get("ports", [])
    }
    assert METRICS_PORT in ports


def test_monitoring_release_waits_for_the_ebs_csi_driver(preview: Callable[[str], Preview]) -> None:
    """Prometheus', Alertmanager's and Grafana's volumes are EBS: their claims stay Pending without the driver and
    the atomic release times out."""
    p = preview("prod")
    release = p.one("kubernetes:helm.sh/v3:Release", "keel-prod-kube-prometheus-stack")
    assert p.one("aws:eks/addon:Addon", "keel-prod-ebs-csi").urn in release.dependencies


def charts_section_names() -> list[str]:
    """The names of the facts components/upstream/charts.py defines."""
    from components.upstream import charts

    return [name for name, value in vars(charts).items() if isinstance(value, upstream.Fact)]


def test_chart_facts_are_read_at_the_chart_versions_keel_pins() -> None:
    """Every fact about a chart was read at the version keel installs: bumping a pin fails here until its facts
    are re-read at the new version."""
    grouped = {id(f) for facts in upstream.CHART_FACTS.values() for f in facts}
    names = charts_section_names()
    assert names and len(names) == len(grouped)
    assert {id(getattr(upstream, n)) for n in names} == grouped  # every fact of the section is grouped by chart
    pinned = {key: chart.version for key, chart in CHARTS.items()}
    pinned["kube-prometheus-stack"] = PROMETHEUS_CHART[2]
    pinned["grafana"] = upstream.KPS_GRAFANA_CHART_VERSION.value  # the subchart version kube-prometheus-stack pins
    assert sorted(upstream.CHART_FACTS) == sorted(pinned)
    for key, (version, app, *_) in upstream.CHART_FACTS.items():
        assert version.value == pinned[key], key
        assert version.source.path.endswith("Chart.yaml") and app.source.path == version.source.path, key
        tag = version.source.version  # a tag naming the version, or the commit that released it
        app_version = app.value.lstrip("v")
        assert version.value in tag or re.fullmatch(r"[0-9a-f]{40}", tag), (key, tag)
        for fact in upstream.CHART_FACTS[key]:
            at_chart = (fact.source.repo, fact.source.version) == (version.source.repo, tag)
            # or read in the application's own repository at the chart's appVersion
            at_app = fact.source.repo != version.source.repo and fact.source.version.lstrip("v") == app_version
            assert at_chart or at_app, (key, fact)


# ------------------------------------------------------------------------------------------ runbook


def test_every_alarm_and_rule_names_a_runbook_entry_that_exists(preview: Callable[[str], Preview]) -> None:
    readme = (ROOT / "README.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", readme, re.M)
    }
    p = preview("prod")
    named = {a.inputs["alarmDescription"].rsplit("#", 1)[1] for a in p.of_type(ALARM)}
    groups = p.one("kubernetes:monitoring.coreos.com/v1:PrometheusRule", "keel-prod-rules").inputs["spec"]["groups"]
    named |= {r["annotations"]["runbook_url"].rsplit("#", 1)[1] for g in groups for r in g["rules"]}
    assert named - anchors == set()
    assert len(named) == 19  # with db-replica-lag and db-replica-cpu


def test_without_services_prometheus_scrapes_no_application_namespace() -> None:
    """No keel:services: no apps namespace, so no PodMonitor or NetworkPolicy may point into it."""
    from components.platform import Platform
    from tests.helpers import run

    # maxSize 3: the general pool is one group per zone, each with room for a node
    cluster = {"nodeGroups": {"general": {"instanceTypes": ["m5.large"], "minSize": 1, "maxSize": 3}}}
    raw = stack("dev", cluster=cluster, alerts={"emails": ["a@example.com"], "prometheus": {}}, backup={})
    cfg = validate("dev", raw)
    p = run(lambda: Platform("keel-t", cfg), stack="dev", config=raw)
    assert p.of_type("keel:observability:PrometheusStack")
    assert [m.name for m in p.of_type("kubernetes:monitoring.coreos.com/v1:PodMonitor")] == ["keel-t-keda"]
    assert not p.of_type("kubernetes:networking.k8s.io/v1:NetworkPolicy")
