"""Operations: ``keel:alerts`` (:class:`AlertsConfig`, with its thresholds and Prometheus stack) and
``keel:backup`` (:class:`BackupConfig`, with its rules and vault lock)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from components.config.base import REGION_NAME, LogRetentionDays, Section, check_pattern, shown
from components.config.network import check_vpc_cidr

_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_CRON = re.compile(r"^cron\((\S+ ){5}\S+\)$")
_BACKUP_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,49}$")


class ThresholdsConfig(Section):
    """``keel:alerts.thresholds``: when each CloudWatch alarm fires. Defaults are the source design's."""

    database_cpu_percent: int = Field(80, ge=1, le=100)
    """RDS ``CPUUtilization`` average over 5 minutes, 3 periods in a row."""

    database_connections_percent: int = Field(80, ge=1, le=100)
    """``DatabaseConnections`` as a share of ``keel:database.maxConnections``."""

    database_free_storage_percent: int = Field(15, ge=1, le=99)
    """``FreeStorageSpace`` below this share of ``allocatedStorageGb``."""

    database_replication_slot_lag_mb: int = Field(1024, ge=1, le=1_048_576)
    """``OldestReplicationSlotLag``: WAL a replication slot holds back, in MiB. A Multi-AZ instance's standby is
    synchronous and publishes no ``ReplicaLag``; a lagging slot is the replication lag that fills the disk."""

    database_replica_lag_seconds: int = Field(30, ge=1, le=86_400)
    """``ReplicaLag`` (Maximum) of a read replica (``keel:database.readReplicas``), in seconds."""

    cache_memory_percent: int = Field(80, ge=1, le=100)
    """ElastiCache ``DatabaseMemoryUsagePercentage`` per node."""

    cache_cpu_percent: int = Field(80, ge=1, le=100)
    """ElastiCache ``EngineCPUUtilization`` (the Redis thread) per node."""

    cache_replication_lag_seconds: int = Field(5, ge=1, le=3600)
    """ElastiCache ``ReplicationLag`` per replica node."""

    alb_error_percent: float = Field(2.0, ge=0.1, le=100)
    """Share of ALB requests answered 5xx (by the targets or by the ALB itself), two 5-minute periods in a row."""

    alb_p95_ms: int = Field(300, ge=1, le=60_000)
    """p95 ``TargetResponseTime`` of each target group, in milliseconds."""

    unhealthy_hosts_minutes: int = Field(5, ge=1, le=60)
    """Minutes a target group may report an unhealthy target before the alarm fires."""

    node_group_at_max_minutes: int = Field(15, ge=5, le=1440)
    """Minutes a node group may run at its maximum size (capacity pressure); a multiple of 5."""

    gpu_unavailable_minutes: int = Field(15, ge=5, le=1440)
    """Minutes a GPU job may wait with no GPU node running (Spot capacity unavailable); a multiple of 5."""

    @field_validator("node_group_at_max_minutes", "gpu_unavailable_minutes")
    @classmethod
    def _five(cls, value: int) -> int:
        if value % 5:
            raise ValueError(f"got {value}; allowed: a multiple of 5 (the alarm counts 5-minute periods)")
        return value


class PrometheusConfig(Section):
    """``keel:alerts.prometheus``: the kube-prometheus-stack release (Prometheus, Alertmanager, Grafana)."""

    retention_days: int = Field(15, ge=1, le=365)
    """Days Prometheus keeps samples."""

    storage_gb: int = Field(50, ge=10, le=16384)
    """Prometheus' encrypted gp3 volume."""

    alertmanager_storage_gb: int = Field(10, ge=1, le=1024)
    """Alertmanager's volume (silences and notification state survive a restart)."""

    grafana_storage_gb: int = Field(10, ge=1, le=1024)
    """Grafana's volume (dashboards and users made in the UI)."""


class AlertsConfig(Section):
    """``keel:alerts``: CloudWatch alarms and who hears them, Container Insights, dashboard, Prometheus."""

    emails: list[str] = Field(default_factory=list)
    """Addresses subscribed to the alerts topic (each confirms the subscription by mail)."""

    thresholds: ThresholdsConfig = Field(default_factory=ThresholdsConfig)

    log_retention_days: LogRetentionDays = 30
    """Retention of the Container Insights log groups (``/aws/containerinsights/<cluster>/...``)."""

    container_insights: bool = True
    """Install the ``amazon-cloudwatch-observability`` add-on (metrics, container logs, GPU metrics)."""

    dashboard: bool = True
    """A CloudWatch dashboard with the golden signals of the ALB, database, caches and node groups."""

    prometheus: PrometheusConfig | None = None
    """None: no kube-prometheus-stack. Set: Prometheus, Alertmanager (to the alerts topic) and Grafana."""

    @field_validator("emails")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        for email in value:
            check_pattern(email, _EMAIL, "e-mail addresses such as 'oncall@example.com'")
        if len(set(value)) != len(value):
            raise ValueError(f"got {shown(value)}; each address may appear once")
        return value


class BackupRuleConfig(Section):
    """One ``keel:backup.rules.<name>`` entry: when AWS Backup runs and how long it keeps the result."""

    schedule: str
    """An AWS Backup cron expression in UTC, such as ``cron(0 5 * * ? *)``."""

    delete_after_days: int = Field(ge=1, le=36500)
    """Days a recovery point (and its cross-region copy) is kept."""

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        return check_pattern(value, _CRON, "a six-field AWS cron expression such as 'cron(0 5 * * ? *)'")


def _default_backup_rules() -> dict[str, BackupRuleConfig]:
    """The source design: every 6 hours kept 7 days, daily kept 4 weeks, weekly kept 12 months."""
    rules = {
        "every-6-hours": ("cron(0 0/6 * * ? *)", 7),
        "daily": ("cron(0 7 * * ? *)", 28),
        "weekly": ("cron(0 7 ? * SUN *)", 365),
    }
    return {
        name: BackupRuleConfig.model_validate({"schedule": cron, "deleteAfterDays": days})
        for name, (cron, days) in rules.items()
    }


class VaultLockConfig(Section):
    """``keel:backup.vaultLock``: AWS Backup Vault Lock on the vaults (WORM recovery points)."""

    mode: Literal["governance", "compliance"] = "governance"
    """``governance``: principals with ``backup:DeleteBackupVaultLockConfiguration`` may still remove the lock.
    ``compliance``: after ``changeableForDays`` nobody, AWS included, can remove it or shorten retention."""

    min_retention_days: int = Field(7, ge=1, le=36500)
    """Recovery points cannot be deleted or set to expire before this many days."""

    max_retention_days: int = Field(365, ge=1, le=36500)
    """Recovery points cannot be kept longer than this."""

    changeable_for_days: int = Field(3, ge=3, le=36500)
    """``compliance`` only: the grace period in which the lock may still be removed."""


class BackupConfig(Section):
    """``keel:backup``: an AWS Backup vault and plan for the database and the artifacts and uploads buckets."""

    rules: dict[str, BackupRuleConfig] = Field(default_factory=_default_backup_rules)
    """Backup rules by name; the default is the source design's three."""

    copy_region: str | None = None
    """None: no copy. A region: every recovery point is copied to a vault there (disaster recovery)."""

    standby_cidr: str = "10.250.0.0/16"
    """The standby network in ``copyRegion`` (created only for caches with ``crossRegion``: their secondaries live
    there): an RFC 1918 block from /16 to /20 that does not overlap ``keel:network.cidr``, so the two networks can
    be peered or joined after a failover."""

    vault_lock: VaultLockConfig | None = None
    """None: no Vault Lock. Set: both vaults are locked."""

    start_window_minutes: int = Field(60, ge=60, le=1440)
    """A job that has not started this long after its scheduled time expires (and ``backup-failed`` alarms)."""

    completion_window_minutes: int = Field(360, ge=120, le=10080)
    """A job must finish within this many minutes of its start."""

    @field_validator("rules")
    @classmethod
    def _rules(cls, value: dict[str, BackupRuleConfig]) -> dict[str, BackupRuleConfig]:
        if not value:
            raise ValueError("got {}; list at least one rule (the default has every-6-hours, daily and weekly)")
        for name in value:
            check_pattern(name, _BACKUP_RULE, "rule names of letters, digits, '-', '_' or '.' (at most 50)")
        return value

    @field_validator("standby_cidr")
    @classmethod
    def _standby(cls, value: str) -> str:
        return check_vpc_cidr(value)

    @field_validator("copy_region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        return None if value is None else check_pattern(value, REGION_NAME, "an AWS region name like 'us-west-2'")
