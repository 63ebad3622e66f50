"""The alarm catalogue: what each CloudWatch alarm of :class:`~components.observability.Observability` watches,
when it fires and which runbook entry answers it. Pure: it creates no resources.

Usage::

    specs = database_alarms("keel-prod-db", cfg.alerts.thresholds, max_connections=200, storage_gb=100)
    specs[0].key        # "db-cpu": the alarm is "<n>-db-cpu"
    specs[0].runbook    # "db-cpu": README.md#db-cpu

Provides :class:`Metric` and :class:`AlarmSpec`, one ``*_alarms`` function per tier (thresholds from
``keel:alerts.thresholds``): database CPU, connections, free storage and replication-slot lag; per read replica lag,
CPU, connections and free storage; per cache memory, engine CPU, replication lag (with replicas) and evictions
(``noeviction`` caches); the ALB's 5xx rate and, per target group, p95 response time and unhealthy hosts; port
allocation errors per NAT gateway; a node group at its maximum size; per GPU job, a job pending with no GPU node
running; backup jobs that failed, expired or were aborted, and failed copies. Also the name Container Insights gives job
pods (:func:`job_pod_name`), and :func:`instances`, the node count of an Auto Scaling group.

How node counts are read: EKS managed node groups do not turn on Auto Scaling group metrics and no API of EKS
(or resource of Pulumi) can. Every running instance reports ``AWS/EC2 CPUUtilization`` under its group's
``AutoScalingGroupName``, and each reports 5 samples per 5-minute period (basic monitoring: one datapoint with a
``SampleCount`` of 5; detailed monitoring: five of 1), so the ``SampleCount`` over 5 minutes divided by 5 is the
number of instances running in the group.

Outputs: lists of :class:`AlarmSpec`; :class:`~components.observability.Observability` turns each into a
``<n>-<key>`` alarm.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi

from components.config import ThresholdsConfig

#: Where each alarm's runbook entry lives: ``README.md#<runbook>``.
RUNBOOK = "README.md"

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


def database_replica_alarms(
    identifiers: Sequence[str], t: ThresholdsConfig, max_connections: int, storage_gb: int
) -> list[AlarmSpec]:
    """Per read replica (``identifiers`` in order, keys from 1): ``db-replica-<i>-lag`` and ``db-replica-<i>-cpu``,
    and, as the primary's (a replica has its own storage, which its WAL can fill, and the same ``max_connections``),
    ``db-replica-<i>-connections`` and ``db-replica-<i>-free-storage`` on the primary's runbook entries."""
    out: list[AlarmSpec] = []
    for index, identifier in enumerate(identifiers, start=1):
        dims = {"DBInstanceIdentifier": identifier}
        out += [
            AlarmSpec(
                f"db-replica-{index}-{spec.key.removeprefix('db-')}",
                spec.runbook,
                f"Read replica {identifier}: {spec.summary}",
                spec.threshold,
                spec.comparison,
                spec.periods,
                spec.metric,
            )
            for spec in database_alarms(identifier, t, max_connections, storage_gb)
            if spec.key in ("db-connections", "db-free-storage")
        ]
        out += [
            AlarmSpec(
                f"db-replica-{index}-lag",
                "db-replica-lag",
                f"RDS read replica {identifier}: lag above {t.database_replica_lag_seconds} s for 15 minutes",
                t.database_replica_lag_seconds,
                "GreaterThanThreshold",
                3,
                Metric("AWS/RDS", "ReplicaLag", dims, "Maximum"),
            ),
            AlarmSpec(
                f"db-replica-{index}-cpu",
                "db-replica-cpu",
                f"RDS read replica {identifier}: CPU above {t.database_cpu_percent}% for 15 minutes",
                t.database_cpu_percent,
                "GreaterThanThreshold",
                3,
                Metric("AWS/RDS", "CPUUtilization", dims, "Average"),
            ),
        ]
    return out


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
