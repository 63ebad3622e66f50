"""The data tier: ``keel:database`` (:class:`DatabaseConfig`, its RDS Proxy :class:`ProxyConfig`), ``keel:caches``
(:class:`CacheConfig`), ``keel:buckets`` (:class:`BucketsConfig`, its :class:`ReplicationConfig`) and ``keel:email``
(:class:`EmailConfig`), with the instance classes and node types they accept (:data:`DB_INSTANCE_CLASSES`,
:data:`CACHE_NODE_TYPES`) and the rule that sizes the proxy's pool against ``maxConnections``
(:func:`proxy_checks`)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from pydantic import Field, field_validator

from components.config.base import (
    DOMAIN_NAME,
    HOSTED_ZONE_ID,
    LogRetentionDays,
    Section,
    check_pattern,
    not_listed,
    shown,
)

#: PostgreSQL major versions keel deploys (RDS standard support).
POSTGRES_VERSIONS = ("15", "16", "17")

_BURSTABLE = ("micro", "small", "medium", "large", "xlarge", "2xlarge")
_GRAVITON = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge")
_INTEL_6 = (*_GRAVITON, "24xlarge", "32xlarge")
_INTEL_7 = (*_GRAVITON, "24xlarge", "48xlarge")

#: The RDS families keel accepts (Graviton and Intel t, m and r) and their sizes, from the RDS User Guide's
#: "Hardware specifications for DB instance classes" (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/
#: Concepts.DBInstanceClass.Summary.html). Left out: the ``metal`` sizes and RDS for Oracle's ``.tpc<n>.mem<n>x``
#: variants (the database's tuning derives memory from the size's name, ``components.database.memory_gib``).
DB_INSTANCE_FAMILIES: dict[str, tuple[str, ...]] = {
    "t4g": _BURSTABLE,
    "t3": _BURSTABLE,
    "m6g": _GRAVITON,
    "m7g": _GRAVITON,
    "m6i": _INTEL_6,
    "m7i": _INTEL_7,
    "r6g": _GRAVITON,
    "r7g": _GRAVITON,
    "r6i": _INTEL_6,
    "r7i": _INTEL_7,
}
#: Every RDS instance class keel accepts (``db.r6g.xlarge``).
DB_INSTANCE_CLASSES = tuple(f"db.{family}.{size}" for family, sizes in DB_INSTANCE_FAMILIES.items() for size in sizes)

#: The ElastiCache families keel accepts (Graviton and Intel t, m and r) and their sizes, from the ElastiCache API
#: reference's list of supported node types (the ``CacheNode`` data type, https://docs.aws.amazon.com/
#: AmazonElastiCache/latest/APIReference/API_CacheNode.html; botocore ships the same text in the ``CacheNode`` shape of
#: ``botocore/data/elasticache/2015-02-02/service-2.json``, which a test reads).
CACHE_NODE_FAMILIES: dict[str, tuple[str, ...]] = {
    "t4g": ("micro", "small", "medium"),
    "t3": ("micro", "small", "medium"),
    "m6g": _GRAVITON,
    "m7g": _GRAVITON,
    "r6g": _GRAVITON,
    "r7g": _GRAVITON,
}
#: Every ElastiCache node type keel accepts (``cache.m6g.large``).
CACHE_NODE_TYPES = tuple(f"cache.{family}.{size}" for family, sizes in CACHE_NODE_FAMILIES.items() for size in sizes)
_WINDOW = re.compile(r"^\d{2}:\d{2}-\d{2}:\d{2}$")
_WEEKLY_WINDOW = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun):\d{2}:\d{2}-(mon|tue|wed|thu|fri|sat|sun):\d{2}:\d{2}$")
_IDENT = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_ORIGIN = re.compile(r"^https://[a-z0-9.-]+(:\d{1,5})?$")


#: Connections the proxy's pool must leave to clients that connect to the instance directly, never through the
#: proxy: PostgreSQL's ``superuser_reserved_connections`` (3 by default; PostgreSQL documentation, "Connections and
#: Authentication", 20.3.1), a deploy's schema migrations with the master secret (``database:secret``, 2), and
#: monitoring, enhanced-monitoring agents' and break-glass ``psql`` sessions (5).
RESERVED_DIRECT_CONNECTIONS = 10


class ProxyConfig(Section):
    """``keel:database.proxy``: an RDS Proxy in front of the instance, pooling the services' connections. TLS and IAM
    authentication are required (not options); the proxy logs in with the master secret RDS manages. The ranges are
    the RDS API's: ``ConnectionPoolConfiguration`` and ``DBProxy.IdleClientTimeout`` (Amazon RDS API Reference;
    botocore's ``rds/2014-10-31/service-2.json`` carries the same text, which tests/test_proxy.py reads)."""

    max_connections_percent: int = Field(90, ge=1, le=100)
    """The pool's ceiling, as a percentage of ``keel:database.maxConnections`` (AWS's default is 100; keel leaves
    room for direct connections: at least ``RESERVED_DIRECT_CONNECTIONS`` must stay outside the pool)."""

    max_idle_connections_percent: int = Field(50, ge=0, le=100)
    """How many idle database connections the proxy keeps open, as a percentage of ``maxConnections``; at most
    ``maxConnectionsPercent``."""

    connection_borrow_timeout_seconds: int = Field(120, ge=0, le=300)
    """How long a client waits for a pooled connection when the pool is exhausted (0: no wait)."""

    idle_client_timeout_seconds: int = Field(1800, ge=1, le=28800)
    """How long a client connection may stay idle before the proxy closes it (the database connection goes back
    to the pool)."""

    def pool(self, max_connections: int) -> int:
        """The pool's size for an instance allowing ``max_connections``: the proxy rounds the percentage down."""
        return max_connections * self.max_connections_percent // 100


class DatabaseConfig(Section):
    """``keel:database``: one RDS PostgreSQL instance in the isolated subnets."""

    engine_version: str = Field("16", json_schema_extra={"enum": list(POSTGRES_VERSIONS)})
    """PostgreSQL major version (minor upgrades are automatic)."""

    instance_class: str = Field("db.r6g.large", json_schema_extra={"enum": list(DB_INSTANCE_CLASSES)})
    """A Graviton or Intel class of the t, m or r families; its memory sizes the tuning parameters."""

    multi_az: bool = True
    """A synchronous standby in a second zone with automatic failover."""

    allocated_storage_gb: int = Field(100, ge=20, le=65536)
    """Initial gp3 storage."""

    max_allocated_storage_gb: int = Field(500, ge=20, le=65536)
    """Storage autoscaling ceiling."""

    backup_retention_days: int = Field(14, ge=1, le=35)
    """Automated backups and point-in-time recovery window."""

    deletion_protection: bool = True
    """RDS deletion protection."""

    final_snapshot: bool = True
    """Take a final snapshot when the instance is deleted."""

    database_name: str = "app"
    """The initial database."""

    master_username: str = "keel_admin"
    """The master user; its password is generated and rotated by RDS in Secrets Manager."""

    backup_window: str = "03:00-04:00"
    """Daily backup window (UTC)."""

    maintenance_window: str = "sun:04:30-sun:05:30"
    """Weekly maintenance window (UTC); must not overlap the backup window."""

    slow_query_ms: int = Field(500, ge=0, le=3_600_000)
    """``log_min_duration_statement``: statements slower than this are logged."""

    max_connections: int = Field(200, ge=20, le=5000)
    """``max_connections``."""

    log_retention_days: LogRetentionDays = 30
    """Retention of the PostgreSQL and upgrade log groups."""

    read_replicas: int = Field(0, ge=0, le=5)
    """Read replicas (0 to 5): asynchronous copies in zones other than the primary's first, behind the
    ``databaseReaderEndpoints`` output. A named choice, not a guarantee: prod and staging set 1, dev 0."""

    proxy: ProxyConfig | None = None
    """None: services connect to the instance (``database:secret``). Set (``{}`` for the defaults): an RDS Proxy
    requiring TLS and IAM authentication, behind the ``databaseProxyEndpoint`` output; services granted
    ``database:connect`` reach the database through it."""

    @field_validator("engine_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if value not in POSTGRES_VERSIONS:
            raise ValueError(f"got {shown(value)}; allowed: {', '.join(POSTGRES_VERSIONS)}")
        return value

    @field_validator("instance_class")
    @classmethod
    def _class(cls, value: str) -> str:
        if value not in DB_INSTANCE_CLASSES:
            families = ", ".join(DB_INSTANCE_FAMILIES)
            raise ValueError(
                not_listed(
                    value,
                    DB_INSTANCE_CLASSES,
                    f"an RDS instance class keel accepts (families {families})",
                    "db.r6g.xlarge",
                )
            )
        return value

    @field_validator("backup_window")
    @classmethod
    def _backup_window(cls, value: str) -> str:
        return check_pattern(value, _WINDOW, "a UTC window such as '03:00-04:00'")

    @field_validator("maintenance_window")
    @classmethod
    def _maintenance_window(cls, value: str) -> str:
        return check_pattern(value, _WEEKLY_WINDOW, "a weekly UTC window such as 'sun:04:30-sun:05:30'")

    @field_validator("database_name", "master_username")
    @classmethod
    def _ident(cls, value: str) -> str:
        return check_pattern(value, _IDENT, "a lowercase identifier (letters, digits, underscores; a letter first)")


def proxy_checks(db: DatabaseConfig) -> Iterable[str]:
    """The proxy's settings against each other and against ``maxConnections``: idle connections within the pool, and
    a pool that leaves :data:`RESERVED_DIRECT_CONNECTIONS` for clients that do not go through the proxy."""
    proxy = db.proxy
    if proxy is None:
        return
    path = "keel:database.proxy"
    if proxy.max_idle_connections_percent > proxy.max_connections_percent:
        yield (
            f"{path}.maxIdleConnectionsPercent: got {proxy.max_idle_connections_percent}; must be at most "
            f"{path}.maxConnectionsPercent ({proxy.max_connections_percent})"
        )
    pool = proxy.pool(db.max_connections)
    if db.max_connections - pool < RESERVED_DIRECT_CONNECTIONS:
        percents = [
            p
            for p in range(1, 101)
            if db.max_connections * p // 100 <= db.max_connections - RESERVED_DIRECT_CONNECTIONS
        ]
        ceilings = [
            m
            for m in range(db.max_connections, 5001)
            if m - m * proxy.max_connections_percent // 100 >= RESERVED_DIRECT_CONNECTIONS
        ]
        allowed = [f"{path}.maxConnectionsPercent at most {max(percents)}"] if percents else []
        if ceilings:
            allowed.append(f"keel:database.maxConnections at least {ceilings[0]}")
        yield (
            f"{path}.maxConnectionsPercent: got {proxy.max_connections_percent} with keel:database.maxConnections "
            f"{db.max_connections}: the proxy's pool of {pool} leaves {db.max_connections - pool} direct "
            f"connection(s), fewer than the {RESERVED_DIRECT_CONNECTIONS} kept for clients outside the proxy "
            f"(superuser_reserved_connections, migrations, monitoring); allowed: {' or '.join(allowed)}"
        )


class CacheConfig(Section):
    """One ``keel:caches.<name>`` entry: an ElastiCache replication group."""

    node_type: str = Field("cache.t4g.small", json_schema_extra={"enum": list(CACHE_NODE_TYPES)})
    """Node type of every shard member."""

    engine: Literal["redis", "valkey"] = "redis"
    """Redis OSS 7 or Valkey 8 (wire-compatible, cheaper)."""

    shards: int = Field(1, ge=1, le=500)
    """More than one shard turns cluster mode on."""

    replicas_per_shard: int = Field(1, ge=0, le=5)
    """Replicas per shard; at least one gives automatic failover and Multi-AZ."""

    maxmemory_policy: Literal[
        "noeviction",
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    ] = "noeviction"
    """What Redis does when memory is full: a queue must use ``noeviction``."""

    multi_az: bool | None = None
    """None: on whenever there is a replica. True without replicas is an error."""

    snapshot_retention_days: int = Field(7, ge=0, le=35)
    """Daily snapshots kept."""

    cross_region: bool = False
    """A live copy in ``keel:backup.copyRegion``: an ElastiCache Global Datastore whose secondary (read-only until
    promoted) lives in the standby network there, about a second behind. Global Datastore takes sizes from
    ``large`` up and no burstable (``t``) family. Required for a queue (``noeviction``) where the stack must
    survive a region: its jobs are nowhere else."""

    @field_validator("node_type")
    @classmethod
    def _node(cls, value: str) -> str:
        if value not in CACHE_NODE_TYPES:
            families = ", ".join(CACHE_NODE_FAMILIES)
            raise ValueError(
                not_listed(
                    value,
                    CACHE_NODE_TYPES,
                    f"an ElastiCache node type keel accepts (families {families})",
                    "cache.m6g.large",
                )
            )
        return value

    @property
    def cluster_mode(self) -> bool:
        return self.shards > 1

    @property
    def multi_az_enabled(self) -> bool:
        return self.replicas_per_shard > 0 if self.multi_az is None else self.multi_az


class ReplicationConfig(Section):
    """``keel:buckets.replication``: S3 Cross-Region Replication of the artifacts and uploads buckets to
    ``keel:backup.copyRegion``, into versioned, KMS-encrypted, public-blocked replica buckets there. AWS Backup copies
    the buckets there every 6 hours; replication keeps the copy minutes behind (bucket RPO under one hour)."""

    enabled: bool | None = None
    """None: on whenever ``keel:backup.copyRegion`` is set (the replicas live there). True without a copy region is
    an error, and so is false in a stack that must survive a region (prod)."""

    replication_time_control: bool = True
    """S3 Replication Time Control: 99.99% of new objects replicated within 15 minutes, with replication metrics and
    missed-threshold events; $0.015 per GB replicated. False: replication without a time bound (most objects within 15
    minutes, some in hours); a stack that must survive a region keeps it on."""


class BucketsConfig(Section):
    """``keel:buckets``: the artifacts, uploads and logs buckets."""

    cors_origins: list[str] = Field(default_factory=list)
    """Web origins allowed to upload to ``uploads`` from the browser (``https://app.example.com``)."""

    noncurrent_version_days: int = Field(30, ge=1, le=3650)
    """Days a replaced or deleted object version is kept."""

    log_retention_days: int = Field(365, ge=1, le=3650)
    """Days access logs are kept in ``logs``."""

    force_destroy: bool = False
    """Let ``pulumi destroy`` delete non-empty buckets (dev only)."""

    replication: ReplicationConfig = Field(default_factory=ReplicationConfig)
    """Cross-Region Replication of artifacts and uploads to ``keel:backup.copyRegion``."""

    def replicates(self, copy_region: str | None) -> bool:
        """Whether artifacts and uploads are replicated, given the copy region (``keel:backup.copyRegion``)."""
        enabled = self.replication.enabled
        return copy_region is not None if enabled is None else enabled

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            check_pattern(origin, _ORIGIN, "HTTPS origins such as 'https://app.example.com' (no path, no wildcard)")
        return value


class EmailConfig(Section):
    """``keel:email``: the SES sending domain."""

    domain: str
    """The domain mail is sent from (``example.com``)."""

    mail_from_subdomain: str = "mail"
    """Custom MAIL FROM: ``<sub>.<domain>`` receives bounces, so SPF aligns with the domain."""

    hosted_zone_id: str | None = None
    """None: the DNS records are exported for you to create. A Route 53 zone id: keel creates them."""

    dmarc_policy: Literal["none", "quarantine", "reject"] = "quarantine"
    """The DMARC policy published for the domain."""

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        return check_pattern(value, DOMAIN_NAME, "a lowercase domain name such as 'example.com'")

    @field_validator("mail_from_subdomain")
    @classmethod
    def _sub(cls, value: str) -> str:
        return check_pattern(value, re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"), "one DNS label such as 'mail'")

    @field_validator("hosted_zone_id")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return (
            None
            if value is None
            else check_pattern(value, HOSTED_ZONE_ID, "a Route 53 hosted zone id such as 'Z0123456789ABC'")
        )
