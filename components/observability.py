"""Observability: CloudWatch alarms to an encrypted SNS topic, a dashboard, Container Insights and (optionally)
the kube-prometheus-stack.

Usage::

    watch = Observability("keel-prod", ObservabilityArgs(config=cfg.alerts, protect=True),
                          network=network, cluster=cluster, database=database, caches=caches,
                          load_balancer=lb, backup=backup, opts=pulumi.ResourceOptions(parent=platform))
    watch.topic          # the alerts topic; every alarm's alarm and OK action
    watch.alarms         # by key: "db-cpu", "queue-memory", "web-p95", ...

Creates (``<n>`` is the component name):

- ``<n>-observability`` KMS key and alias: the alerts topic and the Container Insights log groups. Its policy
  lets CloudWatch (alarms named ``<n>-*`` of this account) and CloudWatch Logs (those log groups) use it.
- ``<n>-alerts`` SNS topic on that key, its policy (CloudWatch alarms of this account publish; nothing
  without TLS), and ``<n>-alerts-<i>`` e-mail subscriptions.
- ``<n>-<key>`` CloudWatch alarms, each an :class:`AlarmSpec` from the ``*_alarms`` functions below (thresholds
  from ``keel:alerts.thresholds``), each naming its runbook entry in the README (``README.md#<runbook>``):
  database CPU, connections, free storage and replication-slot lag; per cache memory, engine CPU,
  replication lag (with replicas) and evictions (``noeviction`` caches); the ALB's 5xx rate and, per target
  group, p95 response time and unhealthy hosts; port allocation errors per NAT gateway; each non-GPU node group
  at its maximum size; per GPU job, a job pending with no GPU node running; backup jobs that failed, expired or
  were aborted, and failed copies.
- ``<n>`` CloudWatch dashboard with the golden signals of the ALB, database, caches and node groups.
- With ``containerInsights``: ``<n>-containerinsights-<kind>`` log groups (application, dataplane, host,
  performance: retention and KMS, created before the add-on would create them without either),
  ``<n>-cloudwatch-agent`` Pod Identity role (``CloudWatchAgentServerPolicy``) and the
  ``amazon-cloudwatch-observability`` EKS add-on (enhanced Container Insights, accelerated-compute (GPU)
  metrics, container logs).
- With ``prometheus``: :class:`PrometheusStack`.

How node counts are read: EKS managed node groups do not turn on Auto Scaling group metrics and no API of EKS
(or resource of Pulumi) can. Every running instance reports ``AWS/EC2 CPUUtilization`` under its group's
``AutoScalingGroupName``, and each reports 5 samples per 5-minute period (basic monitoring: one datapoint with a
``SampleCount`` of 5; detailed monitoring: five of 1), so the ``SampleCount`` over 5 minutes divided by 5 is the
number of instances running in the group.

Outputs: ``topic``, ``topic_arn``, ``alarms`` (by key), ``dashboard``, ``prometheus`` (None without it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import context
from components.backup import Backup
from components.cache import Cache
from components.cluster import AddonRole, Cluster, addon_with_role, first_asg_name
from components.config import AlertsConfig, PrometheusConfig, ThresholdsConfig
from components.database import Database
from components.documents import deny_without_tls, service_publishes, service_uses_key
from components.iam import PodIdentityRole, PodIdentityRoleArgs, document, statement
from components.ingress import LoadBalancer
from components.keys import create_key, logs_may_use
from components.network import Network
from components.vocabulary import GENERAL_POOL, GPU_TOLERATION, pool_selector

#: Where each alarm's runbook entry lives: ``README.md#<runbook>``.
RUNBOOK = "README.md"

#: Log groups the Container Insights add-on writes: ``/aws/containerinsights/<cluster>/<kind>``.
CONTAINER_INSIGHTS_LOGS = ("application", "dataplane", "host", "performance")

#: CloudWatch allows at most this many metrics in one alarm's metric math.
MAX_ALARM_METRICS = 10

GIB = 1024**3
MIB = 1024**2


@dataclass(frozen=True)
class Metric:
    """One CloudWatch metric as an alarm or a dashboard reads it."""

    namespace: str
    name: str
    dimensions: Mapping[str, pulumi.Input[str]]
    stat: str
    """``Average``, ``Maximum``, ``Minimum``, ``Sum``, ``SampleCount`` or a percentile such as ``p95``."""
    period: int = 300


@dataclass(frozen=True)
class AlarmSpec:
    """What one alarm watches, when it fires and which runbook entry answers it."""

    key: str
    """The alarm is ``<n>-<key>``."""
    runbook: str
    """The README heading (anchor) that says what to do."""
    summary: str
    threshold: float
    comparison: str
    periods: int
    """Consecutive breaching periods before the alarm fires."""
    metric: Metric | None = None
    expression: str | None = None
    """Metric math over ``metrics`` (by id); the alarm watches its result."""
    metrics: Mapping[str, Metric] = field(default_factory=dict)
    missing: str = "notBreaching"


def cache_node_suffixes(shards: int, replicas: int, cluster_mode: bool) -> list[str]:
    """What ElastiCache appends to a replication group's id to name its member clusters (nodes): ``-001``,
    ``-002``, ... with cluster mode off; ``-0001-001``, ``-0001-002``, ``-0002-001``, ... with it on."""
    members = range(1, replicas + 2)
    if not cluster_mode:
        return [f"-{m:03d}" for m in members]
    return [f"-{s:04d}-{m:03d}" for s in range(1, shards + 1) for m in members]


def cache_nodes(cache: Cache) -> list[pulumi.Output[str]]:
    """The node ids of a :class:`Cache` (the ``CacheClusterId`` dimension of its metrics)."""
    c = cache.config
    return [
        pulumi.Output.concat(cache.replication_group.id, suffix)
        for suffix in cache_node_suffixes(c.shards, c.replicas_per_shard, c.cluster_mode)
    ]


def job_pod_name(job: str) -> str:
    """The ``PodName`` dimension Container Insights gives the pods of a Job: the job name up to its first ``-`` or
    ``.`` (amazon-cloudwatch-agent, ``getJobNamePrefix``). KEDA names each job ``<scaledjob>-<random>``."""
    return re.split(r"[.-]", job, maxsplit=1)[0]


def _max_over(
    key: str,
    runbook: str,
    summary: str,
    nodes: Sequence[pulumi.Input[str]],
    metric: str,
    stat: str,
    threshold: float,
    comparison: str,
    periods: int,
) -> list[AlarmSpec]:
    """One alarm on the highest value of an ElastiCache node metric across ``nodes`` (split by 10s)."""
    groups = [nodes[i : i + MAX_ALARM_METRICS] for i in range(0, len(nodes), MAX_ALARM_METRICS)]
    out = []
    for index, group in enumerate(groups):
        metrics = {
            f"m{i}": Metric("AWS/ElastiCache", metric, {"CacheClusterId": node}, stat) for i, node in enumerate(group)
        }
        out.append(
            AlarmSpec(
                key=key if len(groups) == 1 else f"{key}-{index + 1}",
                runbook=runbook,
                summary=summary,
                threshold=threshold,
                comparison=comparison,
                periods=periods,
                expression=f"MAX([{', '.join(metrics)}])",
                metrics=metrics,
            )
        )
    return out


def database_alarms(identifier: str, t: ThresholdsConfig, max_connections: int, storage_gb: int) -> list[AlarmSpec]:
    dims = {"DBInstanceIdentifier": identifier}
    connections = max_connections * t.database_connections_percent / 100
    free = storage_gb * GIB * t.database_free_storage_percent / 100
    return [
        AlarmSpec(
            "db-cpu",
            "db-cpu",
            f"RDS CPU above {t.database_cpu_percent}% for 15 minutes",
            t.database_cpu_percent,
            "GreaterThanThreshold",
            3,
            Metric("AWS/RDS", "CPUUtilization", dims, "Average"),
        ),
        AlarmSpec(
            "db-connections",
            "db-connections",
            f"RDS connections above {t.database_connections_percent}% of max_connections ({max_connections})",
            connections,
            "GreaterThanThreshold",
            3,
            Metric("AWS/RDS", "DatabaseConnections", dims, "Maximum"),
        ),
        AlarmSpec(
            "db-free-storage",
            "db-free-storage",
            f"RDS free storage below {t.database_free_storage_percent}% of {storage_gb} GB",
            free,
            "LessThanThreshold",
            2,
            Metric("AWS/RDS", "FreeStorageSpace", dims, "Minimum"),
        ),
        AlarmSpec(
            "db-replication-slot-lag",
            "db-replication-slot-lag",
            f"A PostgreSQL replication slot holds back more than {t.database_replication_slot_lag_mb} MiB of WAL",
            t.database_replication_slot_lag_mb * MIB,
            "GreaterThanThreshold",
            3,
            Metric("AWS/RDS", "OldestReplicationSlotLag", dims, "Maximum"),
        ),
    ]


def cache_alarms(
    label: str, nodes: Sequence[pulumi.Input[str]], t: ThresholdsConfig, *, evicting: bool, replicas: int
) -> list[AlarmSpec]:
    out = [
        *_max_over(
            f"{label}-memory",
            "cache-memory",
            f"Redis {label}: memory above {t.cache_memory_percent}% on a node",
            nodes,
            "DatabaseMemoryUsagePercentage",
            "Maximum",
            t.cache_memory_percent,
            "GreaterThanThreshold",
            3,
        ),
        *_max_over(
            f"{label}-cpu",
            "cache-cpu",
            f"Redis {label}: engine CPU above {t.cache_cpu_percent}% on a node",
            nodes,
            "EngineCPUUtilization",
            "Average",
            t.cache_cpu_percent,
            "GreaterThanThreshold",
            3,
        ),
    ]
    if replicas:
        out += _max_over(
            f"{label}-replication-lag",
            "cache-replication-lag",
            f"Redis {label}: a replica lags more than {t.cache_replication_lag_seconds} s",
            nodes,
            "ReplicationLag",
            "Maximum",
            t.cache_replication_lag_seconds,
            "GreaterThanThreshold",
            3,
        )
    if not evicting:
        out += _max_over(
            f"{label}-evictions",
            "cache-evictions",
            f"Redis {label} (noeviction): keys were evicted, so queued jobs may be lost",
            nodes,
            "Evictions",
            "Sum",
            0,
            "GreaterThanThreshold",
            1,
        )
    return out


def load_balancer_alarms(
    alb: pulumi.Input[str], target_groups: Mapping[str, pulumi.Input[str]], t: ThresholdsConfig
) -> list[AlarmSpec]:
    lb = {"LoadBalancer": alb}
    out = [
        AlarmSpec(
            "alb-5xx-rate",
            "alb-5xx-rate",
            f"More than {t.alb_error_percent:g}% of ALB requests answered 5xx over 10 minutes",
            t.alb_error_percent,
            "GreaterThanThreshold",
            2,
            expression="IF(requests > 0, 100 * (FILL(target5xx, 0) + FILL(alb5xx, 0)) / requests, 0)",
            metrics={
                "requests": Metric("AWS/ApplicationELB", "RequestCount", lb, "Sum"),
                "target5xx": Metric("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", lb, "Sum"),
                "alb5xx": Metric("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", lb, "Sum"),
            },
        )
    ]
    for service, group in target_groups.items():
        dims = {"LoadBalancer": alb, "TargetGroup": group}
        out += [
            AlarmSpec(
                f"{service}-p95",
                "alb-p95",
                f"{service}: p95 response time above {t.alb_p95_ms} ms for 15 minutes",
                t.alb_p95_ms / 1000,
                "GreaterThanThreshold",
                3,
                Metric("AWS/ApplicationELB", "TargetResponseTime", dims, "p95"),
            ),
            AlarmSpec(
                f"{service}-unhealthy",
                "alb-unhealthy-hosts",
                f"{service}: an unhealthy target for {t.unhealthy_hosts_minutes} minutes",
                0,
                "GreaterThanThreshold",
                t.unhealthy_hosts_minutes,
                Metric("AWS/ApplicationELB", "UnHealthyHostCount", dims, "Maximum", period=60),
            ),
        ]
    return out


def nat_alarms(nat_gateway_ids: Sequence[pulumi.Input[str]]) -> list[AlarmSpec]:
    return [
        AlarmSpec(
            f"nat-{index}-port-allocation",
            "nat-port-allocation",
            f"NAT gateway {index}: connections failed for want of a source port",
            0,
            "GreaterThanThreshold",
            1,
            Metric("AWS/NATGateway", "ErrorPortAllocation", {"NatGatewayId": nat}, "Sum"),
        )
        for index, nat in enumerate(nat_gateway_ids)
    ]


#: Samples one running instance adds to ``CPUUtilization``'s ``SampleCount`` in a 5-minute period: basic
#: monitoring sends one datapoint per 5 minutes with a SampleCount of 5, detailed monitoring five of 1.
SAMPLES_PER_INSTANCE = 5


def instances(asg: pulumi.Input[str]) -> Metric:
    """The samples of ``CPUUtilization`` in an Auto Scaling group; divided by :data:`SAMPLES_PER_INSTANCE`, the
    instances running in it (see the module docstring)."""
    return Metric("AWS/EC2", "CPUUtilization", {"AutoScalingGroupName": asg}, "SampleCount")


def node_group_alarms(group: str, asg: pulumi.Input[str], max_size: int, t: ThresholdsConfig) -> list[AlarmSpec]:
    return [
        AlarmSpec(
            f"{group}-at-max",
            "node-group-at-max",
            f"Node group {group} at its maximum size ({max_size}) for {t.node_group_at_max_minutes} minutes",
            max_size,
            "GreaterThanOrEqualToThreshold",
            t.node_group_at_max_minutes // 5,
            expression=f"FILL(samples, 0) / {SAMPLES_PER_INSTANCE}",
            metrics={"samples": instances(asg)},
        )
    ]


def gpu_job_alarms(
    service: str, cluster: pulumi.Input[str], namespace: str, gpu_asg: pulumi.Input[str], t: ThresholdsConfig
) -> list[AlarmSpec]:
    pending = Metric(
        "ContainerInsights",
        "pod_status_pending",
        {"ClusterName": cluster, "Namespace": namespace, "PodName": job_pod_name(service)},
        "Maximum",
    )
    return [
        AlarmSpec(
            f"{service}-gpu-unavailable",
            "gpu-unavailable",
            f"{service}: a job waited {t.gpu_unavailable_minutes} minutes with no GPU node running",
            1,
            "GreaterThanOrEqualToThreshold",
            t.gpu_unavailable_minutes // 5,
            expression="IF(FILL(pending, 0) > 0 AND FILL(gpus, 0) == 0, 1, 0)",
            metrics={"pending": pending, "gpus": instances(gpu_asg)},
        )
    ]


def backup_alarms(vault: pulumi.Input[str], copies: bool) -> list[AlarmSpec]:
    dims = {"BackupVaultName": vault}
    out = [
        AlarmSpec(
            "backup-failed",
            "backup-failed",
            "An AWS Backup job failed, expired (never started in its window) or was aborted",
            0,
            "GreaterThanThreshold",
            1,
            expression="FILL(failed, 0) + FILL(expired, 0) + FILL(aborted, 0)",
            metrics={
                state.lower(): Metric("AWS/Backup", f"NumberOfBackupJobs{state}", dims, "Sum", period=3600)
                for state in ("Failed", "Expired", "Aborted")
            },
        )
    ]
    if copies:
        out.append(
            AlarmSpec(
                "backup-copy-failed",
                "backup-failed",
                "Copying a recovery point to the disaster-recovery region failed",
                0,
                "GreaterThanThreshold",
                1,
                Metric("AWS/Backup", "NumberOfCopyJobsFailed", dims, "Sum", period=3600),
            )
        )
    return out


@dataclass(frozen=True)
class ObservabilityArgs:
    """Arguments of :class:`Observability`."""

    config: AlertsConfig
    """Recipients, thresholds, Container Insights, dashboard and Prometheus, from ``keel:alerts``."""

    namespace: str = "apps"
    """The application namespace (GPU jobs pend there; Prometheus scrapes there)."""

    gpu_jobs: Sequence[str] = ()
    """Services of ``kind: job`` that request GPUs: each gets a "GPU unavailable while jobs wait" alarm."""

    protect: bool = True
    """True: ``protect`` on the key and the log groups."""


class Observability(pulumi.ComponentResource):
    """Alarms, the alerts topic, the dashboard, Container Insights and the optional Prometheus stack."""

    key: aws.kms.Key
    topic: aws.sns.Topic
    topic_arn: pulumi.Output[str]
    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    specs: list[AlarmSpec]
    dashboard: aws.cloudwatch.Dashboard | None
    log_groups: dict[str, aws.cloudwatch.LogGroup]
    container_insights: aws.eks.Addon | None
    prometheus: PrometheusStack | None

    def __init__(
        self,
        name: str,
        args: ObservabilityArgs,
        network: Network,
        cluster: Cluster | None = None,
        database: Database | None = None,
        caches: Mapping[str, Cache] | None = None,
        load_balancer: LoadBalancer | None = None,
        backup: Backup | None = None,
        app_namespace: k8s.core.v1.Namespace | None = None,
        keda: k8s.helm.v3.Release | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("keel:observability:Observability", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        ctx = context.lookup(pulumi.InvokeOptions(parent=self))
        insights = cfg.container_insights and cluster is not None
        groups = (
            {kind: f"/aws/containerinsights/{cluster.cluster_name}/{kind}" for kind in CONTAINER_INSIGHTS_LOGS}
            if insights and cluster is not None
            else {}
        )
        alarm_arns = ctx.arn("cloudwatch", f"alarm:{name}-*")
        self.key = create_key(
            f"{name}-observability",
            "the alerts topic and the Container Insights log groups",
            ctx,
            service_statements=[
                service_uses_key(
                    "CloudWatchAlarmsPublishToTheEncryptedTopic", "cloudwatch.amazonaws.com", ctx.account, alarm_arns
                ),
                *([logs_may_use(ctx, [ctx.arn("logs", f"log-group:{g}") for g in groups.values()])] if groups else []),
            ],
            protect=args.protect,
            opts=child,
        )
        self.topic = aws.sns.Topic(f"{name}-alerts", name=f"{name}-alerts", kms_master_key_id=self.key.arn, opts=child)
        self.topic_arn = self.topic.arn
        aws.sns.TopicPolicy(
            f"{name}-alerts",
            arn=self.topic.arn,
            policy=self.topic.arn.apply(
                lambda arn: json.dumps(
                    document(
                        [
                            service_publishes(
                                "CloudWatchAlarmsPublish", "cloudwatch.amazonaws.com", arn, ctx.account, alarm_arns
                            ),
                            deny_without_tls("DenyPublishWithoutTls", "sns:Publish", arn),
                        ]
                    )
                )
            ),
            opts=child,
        )
        for index, email in enumerate(cfg.emails):
            aws.sns.TopicSubscription(
                f"{name}-alerts-{index}", topic=self.topic.arn, protocol="email", endpoint=email, opts=child
            )

        # What alarms and dashboard both read, worked out once: each cache's node ids, each node group's ASG.
        nodes = {label: cache_nodes(cache) for label, cache in (caches or {}).items()}
        asgs = {g: first_asg_name(group) for g, group in cluster.node_groups.items()} if cluster is not None else {}
        self.specs = self._specs(
            args, network, cluster, database, caches or {}, nodes, asgs, load_balancer, backup, insights
        )
        self.alarms = {spec.key: self._alarm(name, spec) for spec in self.specs}
        self.dashboard = None
        if cfg.dashboard:
            self.dashboard = aws.cloudwatch.Dashboard(
                name,
                dashboard_name=name,
                dashboard_body=pulumi.Output.json_dumps(
                    dashboard_body(ctx.region, database, nodes, load_balancer, cluster.name if cluster else None, asgs)
                ),
                opts=child,
            )

        self.log_groups = {}
        self.container_insights = None
        if insights and cluster is not None:
            self._container_insights(name, cfg, cluster, ctx, groups, args.protect)
        self.prometheus = None
        if cfg.prometheus is not None and cluster is not None:
            self.prometheus = PrometheusStack(
                name,
                PrometheusStackArgs(
                    config=cfg.prometheus, thresholds=cfg.thresholds, namespace=args.namespace, topic_key=self.key
                ),
                cluster=cluster,
                topic=self.topic,
                app_namespace=app_namespace,
                keda=keda,
                opts=child,
            )
        self.register_outputs(
            {
                "topic_arn": self.topic_arn,
                "alarms": sorted(self.alarms),
                "dashboard": self.dashboard.dashboard_name if self.dashboard else None,
            }
        )

    @staticmethod
    def _specs(
        args: ObservabilityArgs,
        network: Network,
        cluster: Cluster | None,
        database: Database | None,
        caches: Mapping[str, Cache],
        nodes: Mapping[str, Sequence[pulumi.Input[str]]],
        asgs: Mapping[str, pulumi.Input[str]],
        load_balancer: LoadBalancer | None,
        backup: Backup | None,
        insights: bool,
    ) -> list[AlarmSpec]:
        t = args.config.thresholds
        specs: list[AlarmSpec] = []
        if database is not None:
            db = database.config
            specs += database_alarms(database.identifier, t, db.max_connections, db.allocated_storage_gb)
        for label, cache in caches.items():
            c = cache.config
            specs += cache_alarms(
                label, nodes[label], t, evicting=c.maxmemory_policy != "noeviction", replicas=c.replicas_per_shard
            )
        if load_balancer is not None:
            specs += load_balancer_alarms(
                load_balancer.alb.arn_suffix,
                {svc: group.arn_suffix for svc, group in load_balancer.target_groups.items()},
                t,
            )
        specs += nat_alarms([nat.id for nat in network.nat_gateways])
        if cluster is not None:
            gpu_asg = None
            for group_name, group in cluster.node_group_configs.items():
                asg = asgs[group_name]
                if group.gpu:
                    gpu_asg = asg
                else:
                    specs += node_group_alarms(group_name, asg, group.max_size, t)
            if gpu_asg is not None and insights:
                for job in args.gpu_jobs:
                    specs += gpu_job_alarms(job, cluster.name, args.namespace, gpu_asg, t)
        if backup is not None:
            specs += backup_alarms(backup.vault_name, backup.copy_vault is not None)
        return specs

    def _alarm(self, name: str, spec: AlarmSpec) -> aws.cloudwatch.MetricAlarm:
        common: dict[str, Any] = {
            "name": f"{name}-{spec.key}",
            "alarm_description": f"{spec.summary}. Runbook: {RUNBOOK}#{spec.runbook}",
            "comparison_operator": spec.comparison,
            "threshold": spec.threshold,
            "evaluation_periods": spec.periods,
            "datapoints_to_alarm": spec.periods,
            "treat_missing_data": spec.missing,
            "alarm_actions": [self.topic.arn],
            "ok_actions": [self.topic.arn],
        }
        if spec.metric is not None:
            m = spec.metric
            stat: dict[str, Any] = {"extended_statistic": m.stat} if m.stat.startswith("p") else {"statistic": m.stat}
            return aws.cloudwatch.MetricAlarm(
                f"{name}-{spec.key}",
                namespace=m.namespace,
                metric_name=m.name,
                dimensions=dict(m.dimensions),
                period=m.period,
                **stat,
                **common,
                opts=pulumi.ResourceOptions(parent=self),
            )
        queries = [
            aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id="alarm", expression=spec.expression, label=spec.summary, return_data=True
            ),
            *[
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id=query_id,
                    return_data=False,
                    metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                        namespace=m.namespace,
                        metric_name=m.name,
                        dimensions=dict(m.dimensions),
                        period=m.period,
                        stat=m.stat,
                    ),
                )
                for query_id, m in spec.metrics.items()
            ],
        ]
        return aws.cloudwatch.MetricAlarm(
            f"{name}-{spec.key}", metric_queries=queries, **common, opts=pulumi.ResourceOptions(parent=self)
        )

    def _container_insights(
        self,
        name: str,
        cfg: AlertsConfig,
        cluster: Cluster,
        ctx: context.AwsContext,
        groups: Mapping[str, str],
        protect: bool,
    ) -> None:
        kept = pulumi.ResourceOptions(parent=self, protect=protect)
        for kind, group in groups.items():
            self.log_groups[kind] = aws.cloudwatch.LogGroup(
                f"{name}-containerinsights-{kind}",
                name=group,
                kms_key_id=self.key.arn,
                retention_in_days=cfg.log_retention_days,
                opts=kept,
            )
        self.container_insights = addon_with_role(
            cluster,
            ctx,
            AddonRole(
                addon="amazon-cloudwatch-observability",
                resource_name=f"{name}-cloudwatch-observability",
                role_name=f"{name}-cloudwatch-agent",
                namespace="amazon-cloudwatch",
                service_account="cloudwatch-agent",
                policy="CloudWatchAgentServerPolicy",
                description=f"{name}: CloudWatch agent and Fluent Bit of Container Insights",
                configuration=container_insights_configuration(),
            ),
            parent=self,
            depends_on=[*self.log_groups.values(), cluster.pod_identity_agent, *list(cluster.node_groups.values())[:1]],
        )


def container_insights_configuration() -> dict[str, Any]:
    """The add-on's configuration: enhanced Container Insights (pod status, per-pod metrics) with GPU metrics,
    and container logs through Fluent Bit. It replaces the add-on's default agent config, so it keeps only what
    keel uses (no Application Signals)."""
    return {
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


# ---------------------------------------------------------------------------------------------- dashboard


def _widget(title: str, metrics: list[list[Any]], x: int, y: int, stat: str, region: str) -> dict[str, Any]:
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": 8,
        "height": 6,
        "properties": {
            "title": title,
            "region": region,
            "stat": stat,
            "period": 300,
            "view": "timeSeries",
            "metrics": metrics,
        },
    }


def dashboard_body(
    region: str,
    database: Database | None,
    nodes: Mapping[str, Sequence[pulumi.Input[str]]],
    load_balancer: LoadBalancer | None,
    cluster_name: pulumi.Input[str] | None,
    asgs: Mapping[str, pulumi.Input[str]],
) -> dict[str, Any]:
    """The golden signals (traffic, errors, latency, saturation) of each tier, one row per tier: ``nodes`` are the
    caches' node ids by cache, ``asgs`` the node groups' Auto Scaling groups by group."""
    widgets: list[dict[str, Any]] = []
    row = 0
    if load_balancer is not None:
        lb = load_balancer.alb.arn_suffix
        ns = "AWS/ApplicationELB"
        groups = load_balancer.target_groups
        widgets += [
            _widget("ALB requests", [[ns, "RequestCount", "LoadBalancer", lb]], 0, row, "Sum", region),
            _widget(
                "ALB 5xx",
                [
                    [ns, "HTTPCode_Target_5XX_Count", "LoadBalancer", lb],
                    [ns, "HTTPCode_ELB_5XX_Count", "LoadBalancer", lb],
                ],
                8,
                row,
                "Sum",
                region,
            ),
            _widget(
                "Target p95 response time (s)",
                [
                    [ns, "TargetResponseTime", "LoadBalancer", lb, "TargetGroup", g.arn_suffix, {"label": svc}]
                    for svc, g in groups.items()
                ],
                16,
                row,
                "p95",
                region,
            ),
        ]
        row += 6
    if database is not None:
        ns, dim = "AWS/RDS", ["DBInstanceIdentifier", database.identifier]
        widgets += [
            _widget("RDS CPU %", [[ns, "CPUUtilization", *dim]], 0, row, "Average", region),
            _widget("RDS connections", [[ns, "DatabaseConnections", *dim]], 8, row, "Maximum", region),
            _widget(
                "RDS latency (s)", [[ns, "ReadLatency", *dim], [ns, "WriteLatency", *dim]], 16, row, "Average", region
            ),
        ]
        row += 6
    if nodes:
        ns = "AWS/ElastiCache"
        for x, (title, metric, stat) in enumerate(
            (
                ("Redis memory %", "DatabaseMemoryUsagePercentage", "Maximum"),
                ("Redis engine CPU %", "EngineCPUUtilization", "Average"),
                ("Redis evictions", "Evictions", "Sum"),
            )
        ):
            metrics = [[ns, metric, "CacheClusterId", node] for ids in nodes.values() for node in ids]
            widgets.append(_widget(title, metrics, 8 * x, row, stat, region))
        row += 6
    if cluster_name is not None:
        cpu = [["AWS/EC2", "CPUUtilization", "AutoScalingGroupName", asg, {"label": g}] for g, asg in asgs.items()]
        counts: list[list[Any]] = [
            [{"expression": f"FILL(s{i}, 0) / {SAMPLES_PER_INSTANCE}", "label": g, "id": f"n{i}"}]
            for i, g in enumerate(asgs)
        ] + [[*m[:4], {"id": f"s{i}", "stat": "SampleCount", "visible": False}] for i, m in enumerate(cpu)]
        widgets += [
            _widget("Nodes per group", counts, 0, row, "SampleCount", region),
            _widget(
                "Node CPU % per group",
                cpu,
                8,
                row,
                "Average",
                region,
            ),
            _widget(
                "Pods pending",
                [["ContainerInsights", "pod_status_pending", "ClusterName", cluster_name]],
                16,
                row,
                "Maximum",
                region,
            ),
        ]
    return {"widgets": widgets}


# ---------------------------------------------------------------------------------------------- Prometheus

#: The kube-prometheus-stack chart, pinned. Bump here (and run `make test`) to upgrade.
PROMETHEUS_CHART = ("https://prometheus-community.github.io/helm-charts", "kube-prometheus-stack", "92.3.0")
MONITORING_NAMESPACE = "monitoring"
ALERTMANAGER_SERVICE_ACCOUNT = "alertmanager"


def prometheus_rules(t: ThresholdsConfig, namespace: str) -> list[dict[str, Any]]:
    """Alerting rules on the services' request histogram (``http_request_duration_seconds`` with a
    ``status_code`` label: express-prom-bundle's default; its ``_count`` series counts requests by status), on pod
    restarts (kube-state-metrics) and on KEDA's scaler errors."""
    selector = f'namespace="{namespace}"'
    return [
        {
            "name": "keel.services",
            "rules": [
                {
                    "alert": "KeelRequestLatencyP95High",
                    "expr": (
                        "histogram_quantile(0.95, sum by (service, le) "
                        f"(rate(http_request_duration_seconds_bucket{{{selector}}}[5m]))) > {t.alb_p95_ms / 1000:g}"
                    ),
                    "for": "10m",
                    "labels": {"severity": "warning"},
                    "annotations": {
                        "summary": f"{{{{ $labels.service }}}}: p95 latency above {t.alb_p95_ms} ms",
                        "runbook_url": f"{RUNBOOK}#alb-p95",
                    },
                },
                {
                    "alert": "KeelErrorRateHigh",
                    "expr": (
                        "sum by (service) "
                        f'(rate(http_request_duration_seconds_count{{{selector}, status_code=~"5.."}}[5m])) / '
                        f"sum by (service) (rate(http_request_duration_seconds_count{{{selector}}}[5m])) "
                        f"> {t.alb_error_percent / 100:g}"
                    ),
                    "for": "5m",
                    "labels": {"severity": "critical"},
                    "annotations": {
                        "summary": f"{{{{ $labels.service }}}}: more than {t.alb_error_percent:g}% of requests fail",
                        "runbook_url": f"{RUNBOOK}#alb-5xx-rate",
                    },
                },
                {
                    "alert": "KeelPodRestarting",
                    "expr": f"increase(kube_pod_container_status_restarts_total{{{selector}}}[15m]) > 3",
                    "for": "0m",
                    "labels": {"severity": "warning"},
                    "annotations": {
                        "summary": "{{ $labels.pod }} restarted more than 3 times in 15 minutes",
                        "runbook_url": f"{RUNBOOK}#pod-restarts",
                    },
                },
            ],
        },
        {
            "name": "keel.keda",
            "rules": [
                {
                    "alert": "KedaScalerErrors",
                    "expr": (
                        "sum by (namespace, scaledObject, scaler) (increase(keda_scaler_detail_errors_total[5m])) > 0"
                    ),
                    "for": "5m",
                    "labels": {"severity": "warning"},
                    "annotations": {
                        "summary": "KEDA scaler {{ $labels.scaler }} of {{ $labels.scaledObject }} keeps failing",
                        "runbook_url": f"{RUNBOOK}#keda-scaler-errors",
                    },
                }
            ],
        },
    ]


def prometheus_values(
    cfg: PrometheusConfig, topic_arn: pulumi.Input[str], region: str, grafana_secret: str
) -> dict[str, Any]:
    """kube-prometheus-stack values: persistent encrypted volumes, Alertmanager to the alerts topic, Grafana's
    admin from a Secret, every rule and monitor in the cluster selected, and the general pool for everything
    but node-exporter (which runs on every node, GPU ones included)."""
    storage = "gp3-encrypted"

    def claim(gb: int) -> dict[str, Any]:
        return {
            "volumeClaimTemplate": {
                "spec": {
                    "storageClassName": storage,
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": f"{gb}Gi"}},
                }
            }
        }

    general = {"nodeSelector": pool_selector(GENERAL_POOL)}
    return {
        "fullnameOverride": "kps",
        "prometheus": {
            "prometheusSpec": {
                "retention": f"{cfg.retention_days}d",
                "storageSpec": claim(cfg.storage_gb),
                "ruleSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
                "serviceMonitorSelectorNilUsesHelmValues": False,
                **general,
            }
        },
        "alertmanager": {
            "serviceAccount": {"create": True, "name": ALERTMANAGER_SERVICE_ACCOUNT},
            "alertmanagerSpec": {"storage": claim(cfg.alertmanager_storage_gb), **general},
            "config": {
                "route": {
                    "receiver": "alerts-topic",
                    "group_by": ["alertname", "namespace", "service"],
                    "routes": [{"receiver": "null", "matchers": ['alertname=~"Watchdog|InfoInhibitor"']}],
                },
                "receivers": [
                    {"name": "null"},
                    {
                        "name": "alerts-topic",
                        "sns_configs": [
                            {
                                "topic_arn": topic_arn,
                                "sigv4": {"region": region},
                                "subject": "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }}",
                                "send_resolved": True,
                            }
                        ],
                    },
                ],
            },
        },
        "grafana": {
            "admin": {"existingSecret": grafana_secret, "userKey": "admin-user", "passwordKey": "admin-password"},
            "persistence": {"enabled": True, "storageClassName": storage, "size": f"{cfg.grafana_storage_gb}Gi"},
            **general,
        },
        "prometheusOperator": general,
        "kube-state-metrics": general,
        "prometheus-node-exporter": {"tolerations": [GPU_TOLERATION]},
    }


@dataclass(frozen=True)
class PrometheusStackArgs:
    """Arguments of :class:`PrometheusStack`."""

    config: PrometheusConfig
    thresholds: ThresholdsConfig
    """The same latency and error thresholds the CloudWatch alarms use."""
    namespace: str = "apps"
    """The application namespace the rules and the pod monitor watch."""
    topic_key: aws.kms.Key | None = None
    """The alerts topic's key: Alertmanager may use it through SNS."""


class PrometheusStack(pulumi.ComponentResource):
    """kube-prometheus-stack with keel's alerting rules and monitors.

    Creates ``<n>-gp3-encrypted`` StorageClass (EBS CSI, encrypted gp3, volumes retained when released),
    ``<n>-monitoring`` namespace, ``<n>-grafana-admin`` password (pulumi-random) and Secret,
    ``<n>-alertmanager`` Pod Identity role (publish to the alerts topic only), ``<n>-kube-prometheus-stack``
    release and ``<n>-rules`` PrometheusRule; with the application namespace, ``<n>-apps`` PodMonitor and
    ``<n>-allow-prometheus`` NetworkPolicy admitting Prometheus (only) to the application pods; with KEDA,
    ``<n>-keda`` PodMonitor. Each waits for the release (its CRDs) and for the namespace it lives in.
    """

    release: k8s.helm.v3.Release

    def __init__(
        self,
        name: str,
        args: PrometheusStackArgs,
        cluster: Cluster,
        topic: aws.sns.Topic,
        app_namespace: k8s.core.v1.Namespace | None = None,
        keda: k8s.helm.v3.Release | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("keel:observability:PrometheusStack", name, None, opts)
        ctx = context.lookup(pulumi.InvokeOptions(parent=self))
        kube = pulumi.ResourceOptions(parent=self, provider=cluster.k8s_provider)
        storage = k8s.storage.v1.StorageClass(
            f"{name}-gp3-encrypted",
            metadata={"name": "gp3-encrypted"},
            provisioner="ebs.csi.aws.com",
            parameters={"type": "gp3", "encrypted": "true"},
            reclaim_policy="Retain",
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            opts=kube,
        )
        namespace = k8s.core.v1.Namespace(
            f"{name}-{MONITORING_NAMESPACE}",
            metadata={
                "name": MONITORING_NAMESPACE,
                # node-exporter needs the host's network and PID namespaces: privileged is enforced, the
                # restricted profile still warns and audits everything else.
                "labels": {
                    "pod-security.kubernetes.io/enforce": "privileged",
                    "pod-security.kubernetes.io/audit": "restricted",
                    "pod-security.kubernetes.io/warn": "restricted",
                },
            },
            opts=kube,
        )
        in_namespace = pulumi.ResourceOptions.merge(kube, pulumi.ResourceOptions(depends_on=[namespace]))
        password = random.RandomPassword(
            f"{name}-grafana-admin", length=32, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        secret = k8s.core.v1.Secret(
            f"{name}-grafana-admin",
            metadata={"name": "grafana-admin", "namespace": MONITORING_NAMESPACE},
            string_data={"admin-user": "admin", "admin-password": password.result},
            opts=in_namespace,
        )
        key_arn = args.topic_key.arn if args.topic_key is not None else None
        alertmanager = PodIdentityRole(
            f"{name}-alertmanager",
            PodIdentityRoleArgs(
                cluster_name=cluster.name,
                cluster_arn=cluster.arn,
                account=ctx.account,
                namespace=MONITORING_NAMESPACE,
                service_account=ALERTMANAGER_SERVICE_ACCOUNT,
                statements=[
                    statement("sns:Publish", topic.arn, sid="PublishAlerts"),
                    *(
                        [
                            statement(
                                ["kms:GenerateDataKey*", "kms:Decrypt"],
                                key_arn,
                                {"StringEquals": {"kms:ViaService": f"sns.{ctx.region}.amazonaws.com"}},
                                sid="EncryptThroughSns",
                            )
                        ]
                        if key_arn is not None
                        else []
                    ),
                ],
                description=f"{name}: Alertmanager publishes to the alerts topic",
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        repo, chart, version = PROMETHEUS_CHART
        self.release = k8s.helm.v3.Release(
            f"{name}-kube-prometheus-stack",
            name="kube-prometheus-stack",
            chart=chart,
            version=version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=repo),
            namespace=MONITORING_NAMESPACE,
            create_namespace=False,
            atomic=True,
            cleanup_on_fail=True,
            timeout=900,
            values=prometheus_values(args.config, topic.arn, ctx.region, "grafana-admin"),
            opts=pulumi.ResourceOptions.merge(
                kube,
                pulumi.ResourceOptions(
                    depends_on=[namespace, secret, storage, alertmanager, *list(cluster.node_groups.values())[:1]]
                ),
            ),
        )
        after_release = pulumi.ResourceOptions.merge(kube, pulumi.ResourceOptions(depends_on=[self.release]))
        k8s.apiextensions.CustomResource(
            f"{name}-rules",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata={"name": "keel", "namespace": MONITORING_NAMESPACE},
            spec={"groups": prometheus_rules(args.thresholds, args.namespace)},
            opts=after_release,
        )
        if app_namespace is not None:
            self._scrape_services(name, args.namespace, kube, [self.release, app_namespace])
        if keda is not None:
            k8s.apiextensions.CustomResource(
                f"{name}-keda",
                api_version="monitoring.coreos.com/v1",
                kind="PodMonitor",
                metadata={"name": "keda-operator", "namespace": "keda"},
                spec={
                    "selector": {"matchLabels": {"app": "keda-operator"}},
                    "podMetricsEndpoints": [{"port": "http", "path": "/metrics", "honorLabels": True}],
                },
                opts=pulumi.ResourceOptions.merge(kube, pulumi.ResourceOptions(depends_on=[self.release, keda])),
            )
        self.register_outputs({"release": self.release.name})

    def _scrape_services(
        self, name: str, namespace: str, kube: pulumi.ResourceOptions, after: list[pulumi.Resource]
    ) -> None:
        """A PodMonitor for the services' ``http`` ports and the NetworkPolicy that lets Prometheus (only) in."""
        opts = pulumi.ResourceOptions.merge(kube, pulumi.ResourceOptions(depends_on=after))
        k8s.apiextensions.CustomResource(
            f"{name}-apps",
            api_version="monitoring.coreos.com/v1",
            kind="PodMonitor",
            metadata={"name": "keel-services", "namespace": namespace},
            spec={
                "selector": {"matchLabels": {"app.kubernetes.io/part-of": "keel"}},
                "podMetricsEndpoints": [
                    {
                        "port": "http",
                        "path": "/metrics",
                        "relabelings": [
                            {
                                "sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
                                "targetLabel": "service",
                            }
                        ],
                    }
                ],
            },
            opts=opts,
        )
        allow: Any = {
            "podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "keel"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": MONITORING_NAMESPACE}},
                            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": "http"}],
                }
            ],
        }
        k8s.networking.v1.NetworkPolicy(
            f"{name}-allow-prometheus",
            metadata={"name": "allow-prometheus-scrape", "namespace": namespace},
            spec=allow,
            opts=opts,
        )
