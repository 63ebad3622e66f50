"""Typed stack config: the one place that reads ``pulumi.Config``.

Usage::

    from components import config
    cfg = config.load()              # raises ConfigError (a pulumi.RunError) before any resource exists
    cfg.network.availability_zones   # 3

The whole ``keel:`` namespace of ``Pulumi.<stack>.yaml`` is one pydantic model, :class:`StackConfig`. YAML
keys are camelCase (``availabilityZones``); Python attributes are snake_case. Every model forbids unknown keys.

Invalid config raises :class:`ConfigError`, which lists every problem, one per line, as
``keel:<path>: got <value>; <what is allowed>``. It subclasses ``pulumi.RunError``, so ``pulumi up`` prints
the message without a traceback, and ``keel preview`` exits 2 with it.

Rules that span sections or depend on the environment (for example "prod needs a NAT per AZ") live in
:func:`_cross_checks`, so the components never branch on the environment name: they read named choices.
"""

from __future__ import annotations

import ipaddress
import json
import re
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal, Union

import annotated_types
import pulumi
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

from components import vocabulary
from components.vocabulary import (
    DEFAULT_KUBERNETES_VERSION,
    GENERAL_POOL,
    GPU_FAMILIES,
    GPU_POOL,
    KUBERNETES_VERSIONS,
)

NAMESPACE = "keel"

#: Retention values CloudWatch Logs accepts (``PutRetentionPolicy``), in days.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)

#: Tags keel sets on every resource itself; stack config may not override them.
RESERVED_TAGS = ("environment", "stack", "managed-by")

#: Interface endpoints every private cluster needs to pull images and get credentials without a NAT.
DEFAULT_INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "sts", "logs")

NatStrategy = Literal["None", "Single", "OnePerAz"]

_RFC1918_BLOCKS = tuple(ipaddress.IPv4Network(b) for b in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
_ZONE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d[a-z]$")
_ACCOUNT = re.compile(r"^\d{12}$")
_ENDPOINT = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)*$")
_TAG_KEY = re.compile(r"^[\w.:/=+\-@ ]{1,128}$")
_MAX_SHOWN = 60


class ConfigError(pulumi.RunError):
    """Invalid stack config. ``problems`` holds one ``keel:<path>: ...`` line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid stack config ({len(problems)} problem(s)):\n{lines}")


def shown(value: Any) -> str:
    """A bad value as the error message shows it: JSON-like, cut to a readable length."""
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _log_retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(f"got {value}; allowed: {', '.join(map(str, LOG_RETENTION_DAYS))}")
    return value


#: Days a CloudWatch log group keeps events: one of the values CloudWatch accepts.
LogRetentionDays = Annotated[int, AfterValidator(_log_retention)]


class _Model(BaseModel):
    """Base for every config section: camelCase keys, unknown keys rejected, strict types, immutable."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, validate_by_name=False, strict=True, frozen=True
    )


class NetworkConfig(_Model):
    """``keel:network``: the VPC and everything in it that is not a workload."""

    cidr: str = "10.0.0.0/16"
    """The VPC's IPv4 range: an RFC 1918 block from /16 to /20. Subnets are carved from it by tier."""

    availability_zones: int = Field(3, ge=2, le=6)
    """How many AZs the subnets span (2 to 6)."""

    zone_names: list[str] | None = None
    """None: the first ``availabilityZones`` zones the region offers (sorted). A list pins the zones by name,
    which keeps subnets where they are even if the region's zone list changes."""

    nat_gateways: NatStrategy = "OnePerAz"
    """``OnePerAz``: each private subnet egresses through its own AZ's NAT (survives an AZ loss);
    ``Single``: one NAT for all (cheaper, one AZ is a single point of failure); ``None``: no internet egress,
    only VPC endpoints."""

    allow_single_nat_in_prod: bool = False
    """Prod refuses ``natGateways: Single`` unless this is true: a visible opt-in to the AZ risk."""

    interface_endpoints: list[str] = Field(default_factory=lambda: list(DEFAULT_INTERFACE_ENDPOINTS))
    """Interface endpoints by service suffix (``ecr.api`` becomes ``com.amazonaws.<region>.ecr.api``).
    The S3 gateway endpoint is always created and is not listed here."""

    flow_log_retention_days: LogRetentionDays = 30
    """Days the VPC flow log group keeps its events; one of CloudWatch's allowed values."""

    flow_log_traffic: Literal["ALL", "ACCEPT", "REJECT"] = "ALL"
    """Which traffic the flow log records."""

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        allowed = "an RFC 1918 IPv4 block (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16) with a prefix from /16 to /20"
        try:
            net = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"got {shown(value)}; expected {allowed}") from None
        if not isinstance(net, ipaddress.IPv4Network):
            raise ValueError(f"got {shown(value)}; expected {allowed}")
        if str(net) != value:
            raise ValueError(f"got {shown(value)}, which has host bits set; did you mean {str(net)!r}?")
        if not 16 <= net.prefixlen <= 20:
            raise ValueError(f"got {shown(value)}; expected {allowed}")
        if not any(net.subnet_of(block) for block in _RFC1918):
            raise ValueError(f"got {shown(value)}, which is not private; expected {allowed}")
        return value

    @field_validator("zone_names")
    @classmethod
    def _zones(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for zone in value:
            if not _ZONE.match(zone):
                raise ValueError(f"got {shown(zone)}; expected availability zone names like 'us-east-1a'")
        if len(set(value)) != len(value):
            raise ValueError(f"got {shown(value)}; each zone may appear once")
        return value

    @field_validator("interface_endpoints")
    @classmethod
    def _endpoints(cls, value: list[str]) -> list[str]:
        for service in value:
            if service == "s3":
                raise ValueError("got 's3'; the S3 gateway endpoint is always created, list interface endpoints only")
            if not _ENDPOINT.match(service):
                raise ValueError(
                    f"got {shown(service)}; expected a service suffix such as 'ecr.api' or 'secretsmanager'"
                )
        if len(set(value)) != len(value):
            raise ValueError(f"got {shown(value)}; each endpoint may appear once")
        return value

    @property
    def ip_network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.cidr)


_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_ROLE_ARN = re.compile(r"^arn:aws(-[a-z]+)*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")


def instance_family(instance_type: str) -> str:
    return instance_type.split(".", 1)[0]


class NodeGroupConfig(_Model):
    """One managed node group (``keel:cluster.nodeGroups.<general|gpu>``)."""

    instance_types: list[str]
    """Instance types, first preferred; more than one lets Spot draw from several pools."""

    capacity_type: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"
    """``SPOT`` for interruptible capacity at a discount."""

    min_size: int = Field(ge=0, le=100)
    """Smallest node count; 0 lets the autoscaler scale the group to zero when idle."""

    max_size: int = Field(ge=1, le=100)
    """Largest node count the autoscaler may reach."""

    desired_size: int | None = None
    """None: start at ``minSize``. The autoscaler owns it afterwards (changes are ignored)."""

    gpu: bool = False
    """True: NVIDIA AMI, the ``nvidia.com/gpu`` taint and GPU labels; every instance type must be a GPU type."""

    disk_size_gb: int = Field(50, ge=20, le=2000)
    """Encrypted gp3 root volume size."""

    labels: dict[str, str] = Field(default_factory=dict)
    """Extra node labels (``keel.dev/pool`` is set by keel)."""

    @field_validator("instance_types")
    @classmethod
    def _types(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("got []; list at least one instance type, such as 'm5.xlarge'")
        for item in value:
            if not _INSTANCE_TYPE.match(item):
                raise ValueError(f"got {shown(item)}; expected an EC2 instance type such as 'm5.xlarge'")
        if len(set(value)) != len(value):
            raise ValueError(f"got {shown(value)}; each instance type may appear once")
        return value

    @property
    def desired(self) -> int:
        return self.min_size if self.desired_size is None else self.desired_size


class NodeGroupsConfig(_Model):
    """``keel:cluster.nodeGroups``: the general pool and the optional GPU pool."""

    general: NodeGroupConfig
    """Runs everything that does not ask for a GPU, add-ons included."""

    gpu: NodeGroupConfig | None = None
    """None: no GPU pool. Else a pool tainted ``nvidia.com/gpu=true:NoSchedule`` that may scale from zero."""

    def items(self) -> list[tuple[str, NodeGroupConfig]]:
        return [(name, group) for name, group in ((GENERAL_POOL, self.general), (GPU_POOL, self.gpu)) if group]


class ClusterConfig(_Model):
    """``keel:cluster``: the EKS control plane, its node groups and add-ons."""

    version: str = DEFAULT_KUBERNETES_VERSION
    """Kubernetes minor version; one of :data:`KUBERNETES_VERSIONS`."""

    public_access_cidrs: list[str] = Field(default_factory=list)
    """Empty: the API endpoint is private only. CIDRs: the public endpoint is on, for these ranges only."""

    private_access_cidrs: list[str] = Field(default_factory=list)
    """Private ranges (VPN, CI runners) admitted to the private API endpoint; the nodes always are."""

    admin_role_arns: list[str] = Field(default_factory=list)
    """IAM roles given cluster-admin through EKS access entries."""

    node_groups: NodeGroupsConfig
    """The managed node groups."""

    require_spot_gpus: bool = True
    """True: the GPU group must use Spot capacity (GPUs on demand cost about three times as much)."""

    deletion_protection: bool = True
    """EKS deletion protection on the control plane."""

    log_retention_days: LogRetentionDays = 30
    """Retention of the control-plane log group (``/aws/eks/<cluster>/cluster``)."""

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if value not in KUBERNETES_VERSIONS:
            raise ValueError(f"got {shown(value)}; allowed: {', '.join(KUBERNETES_VERSIONS)}")
        return value

    @field_validator("public_access_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                net = ipaddress.ip_network(cidr, strict=True)
            except ValueError:
                raise ValueError(f"got {shown(cidr)}; expected CIDR blocks such as '203.0.113.0/24'") from None
            if not net.is_global and net.prefixlen:
                raise ValueError(f"got {shown(cidr)}; the public endpoint only sees public addresses")
        return value

    @field_validator("private_access_cidrs")
    @classmethod
    def _private_cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                net = ipaddress.ip_network(cidr, strict=True)
            except ValueError:
                raise ValueError(f"got {shown(cidr)}; expected private CIDR blocks such as '10.99.0.0/16'") from None
            if not any(isinstance(net, ipaddress.IPv4Network) and net.subnet_of(b) for b in _RFC1918_BLOCKS):
                raise ValueError(f"got {shown(cidr)}; the private endpoint admits RFC 1918 ranges only")
        return value

    @field_validator("admin_role_arns")
    @classmethod
    def _arns(cls, value: list[str]) -> list[str]:
        for arn in value:
            if not _ROLE_ARN.match(arn):
                raise ValueError(
                    f"got {shown(arn)}; expected IAM role ARNs like 'arn:aws:iam::111122223333:role/platform-admin'"
                )
        return value


#: PostgreSQL major versions keel deploys (RDS standard support).
POSTGRES_VERSIONS = ("15", "16", "17")

_DB_CLASS = re.compile(r"^db\.(t4g|t3|m6g|m7g|m6i|m7i|r6g|r7g|r6i|r7i)\.(micro|small|medium|large|[0-9]*xlarge)$")
_CACHE_NODE = re.compile(r"^cache\.(t4g|t3|m6g|m7g|r6g|r7g)\.(micro|small|medium|large|[0-9]*xlarge)$")
_WINDOW = re.compile(r"^\d{2}:\d{2}-\d{2}:\d{2}$")
_WEEKLY_WINDOW = re.compile(r"^(mon|tue|wed|thu|fri|sat|sun):\d{2}:\d{2}-(mon|tue|wed|thu|fri|sat|sun):\d{2}:\d{2}$")
_IDENT = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_DOMAIN = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_ORIGIN = re.compile(r"^https://[a-z0-9.-]+(:\d{1,5})?$")
_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")


def _pattern(value: str, pattern: re.Pattern[str], expected: str) -> str:
    if not pattern.match(value):
        raise ValueError(f"got {shown(value)}; expected {expected}")
    return value


class DatabaseConfig(_Model):
    """``keel:database``: one RDS PostgreSQL instance in the isolated subnets."""

    engine_version: str = "16"
    """PostgreSQL major version (minor upgrades are automatic)."""

    instance_class: str = "db.r6g.large"
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

    @field_validator("engine_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if value not in POSTGRES_VERSIONS:
            raise ValueError(f"got {shown(value)}; allowed: {', '.join(POSTGRES_VERSIONS)}")
        return value

    @field_validator("instance_class")
    @classmethod
    def _class(cls, value: str) -> str:
        return _pattern(
            value, _DB_CLASS, "an RDS class such as 'db.r6g.xlarge' (t4g, t3, m6g, m7g, m6i, m7i, r6g, r7g, r6i or r7i)"
        )

    @field_validator("backup_window")
    @classmethod
    def _backup_window(cls, value: str) -> str:
        return _pattern(value, _WINDOW, "a UTC window such as '03:00-04:00'")

    @field_validator("maintenance_window")
    @classmethod
    def _maintenance_window(cls, value: str) -> str:
        return _pattern(value, _WEEKLY_WINDOW, "a weekly UTC window such as 'sun:04:30-sun:05:30'")

    @field_validator("database_name", "master_username")
    @classmethod
    def _ident(cls, value: str) -> str:
        return _pattern(value, _IDENT, "a lowercase identifier (letters, digits, underscores; a letter first)")


class CacheConfig(_Model):
    """One ``keel:caches.<name>`` entry: an ElastiCache replication group."""

    node_type: str = "cache.t4g.small"
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

    @field_validator("node_type")
    @classmethod
    def _node(cls, value: str) -> str:
        return _pattern(value, _CACHE_NODE, "an ElastiCache node type such as 'cache.m6g.large'")

    @property
    def cluster_mode(self) -> bool:
        return self.shards > 1

    @property
    def multi_az_enabled(self) -> bool:
        return self.replicas_per_shard > 0 if self.multi_az is None else self.multi_az


class BucketsConfig(_Model):
    """``keel:buckets``: the artifacts, uploads and logs buckets."""

    cors_origins: list[str] = Field(default_factory=list)
    """Web origins allowed to upload to ``uploads`` from the browser (``https://app.example.com``)."""

    noncurrent_version_days: int = Field(30, ge=1, le=3650)
    """Days a replaced or deleted object version is kept."""

    log_retention_days: int = Field(365, ge=1, le=3650)
    """Days access logs are kept in ``logs``."""

    force_destroy: bool = False
    """Let ``pulumi destroy`` delete non-empty buckets (dev only)."""

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            _pattern(origin, _ORIGIN, "HTTPS origins such as 'https://app.example.com' (no path, no wildcard)")
        return value


class EmailConfig(_Model):
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
        return _pattern(value, _DOMAIN, "a lowercase domain name such as 'example.com'")

    @field_validator("mail_from_subdomain")
    @classmethod
    def _sub(cls, value: str) -> str:
        return _pattern(value, re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"), "one DNS label such as 'mail'")

    @field_validator("hosted_zone_id")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return (
            None if value is None else _pattern(value, _ZONE_ID, "a Route 53 hosted zone id such as 'Z0123456789ABC'")
        )


_CERT_ARN = re.compile(r"^arn:aws(-[a-z]+)*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]{36}$")
_SERVICE_NAME = re.compile(r"^[a-z]([a-z0-9-]{0,38}[a-z0-9])?$")
_IMAGE = re.compile(r"^[a-z0-9.-]+(:\d+)?/[a-z0-9._/-]+(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$")
_QUANTITY_CPU = re.compile(r"^\d+(\.\d+)?m?$")
_QUANTITY_MEMORY = re.compile(r"^\d+(Mi|Gi)$")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
#: Grants a service may ask for besides ``<cache>:connect`` for each configured cache.


class WafConfig(_Model):
    """``keel:ingress.waf``: the WAFv2 web ACL in front of the ALB."""

    enabled: bool = True
    """Associate a web ACL (AWS common, known-bad-inputs and IP-reputation rules, and a rate limit)."""

    rate_limit_per_5min: int = Field(2000, ge=100, le=2_000_000_000)
    """Requests one client IP may send in 5 minutes before it is blocked."""


class IngressConfig(_Model):
    """``keel:ingress``: the internet-facing ALB."""

    certificate_arn: str | None = None
    """An ACM certificate covering every service host. None: keel requests one, validated in ``hostedZoneId``."""

    hosted_zone_id: str | None = None
    """A Route 53 zone: DNS validation of a created certificate and alias records for the service hosts."""

    deletion_protection: bool = True
    """ALB deletion protection."""

    idle_timeout_seconds: int = Field(60, ge=1, le=4000)
    """ALB idle timeout."""

    waf: WafConfig = Field(default_factory=WafConfig)

    @field_validator("certificate_arn")
    @classmethod
    def _cert(cls, value: str | None) -> str | None:
        return (
            None
            if value is None
            else _pattern(
                value,
                _CERT_ARN,
                "an ACM certificate ARN such as 'arn:aws:acm:us-east-1:111122223333:certificate/<uuid>'",
            )
        )

    @field_validator("hosted_zone_id")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return (
            None if value is None else _pattern(value, _ZONE_ID, "a Route 53 hosted zone id such as 'Z0123456789ABC'")
        )


class ReplicasConfig(_Model):
    """``replicas``: the bounds the autoscaler moves between."""

    min: int = Field(1, ge=0, le=100)
    max: int = Field(1, ge=1, le=100)


class QueueTriggerConfig(_Model):
    """``scaleOn.queue``: scale on the length of a Redis list."""

    cache: str
    """A ``keel:caches`` name."""

    list: str
    """The Redis list holding waiting jobs (``bull:forecast:wait``)."""

    length: int = Field(ge=1, le=100_000)
    """Target list length per replica."""


class ScaleOnConfig(_Model):
    """``scaleOn``: what the autoscaler watches (exactly one, CPU may be combined as a floor)."""

    cpu: int | None = Field(None, ge=1, le=100)
    memory: int | None = Field(None, ge=1, le=100)
    requests_per_minute: int | None = Field(None, ge=1, le=1_000_000)
    queue: QueueTriggerConfig | None = None


class IngressRouteConfig(_Model):
    """``ingress``: where the ALB routes to the service."""

    host: str
    """Host header (``app.example.com``)."""

    paths: list[str] = Field(default_factory=lambda: ["/*"])
    """ALB path patterns; ``/*`` is everything."""

    priority: int | None = Field(None, ge=1, le=49000)
    """The first listener rule's priority (each further path takes the next one). None: computed from the
    order of all routes, which shifts when a route is added before this one; pin it in prod."""

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return _pattern(value, _DOMAIN, "a lowercase host name such as 'app.example.com'")

    @field_validator("paths")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        for path in value:
            if not path.startswith("/") or len(path) > 128:
                raise ValueError(f"got {shown(path)}; expected ALB path patterns starting with '/' such as '/api/*'")
        return value


class BuildConfig(_Model):
    """``build``: build the image from source and push it to the service's ECR repository."""

    context: str
    """Build context, relative to the project."""

    dockerfile: str = "Dockerfile"
    """Dockerfile path inside the context."""


class ResourcesConfig(_Model):
    """Container requests; limits equal requests for memory and are twice the request for CPU."""

    cpu: str = "250m"
    memory: str = "512Mi"

    @field_validator("cpu")
    @classmethod
    def _cpu(cls, value: str) -> str:
        return _pattern(value, _QUANTITY_CPU, "a CPU quantity such as '250m' or '2'")

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        return _pattern(value, _QUANTITY_MEMORY, "a memory quantity such as '512Mi' or '2Gi'")


class ServiceConfig(_Model):
    """One ``keel:services.<name>`` entry: a workload on the cluster."""

    kind: Literal["deployment", "job"] = "deployment"
    """``deployment``: a long-running server. ``job``: a pod template run by KEDA per pending job."""

    image: str | None = None
    """An image reference pinned by digest (``...@sha256:...``) or by an immutable tag; never ``latest``."""

    build: BuildConfig | None = None
    """Build and push instead of ``image``."""

    port: int | None = Field(None, ge=1024, le=65535)
    """The container port (unprivileged: the container runs as non-root)."""

    replicas: ReplicasConfig = Field(default_factory=ReplicasConfig)
    scale_on: ScaleOnConfig | None = None

    ingress: IngressRouteConfig | None = None
    """None: not exposed through the ALB."""

    health_path: str = "/healthz"
    """HTTP path of the readiness, liveness and startup probes."""

    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)

    gpu: int = Field(0, ge=0, le=8)
    """NVIDIA GPUs per pod; more than zero schedules the pod on the GPU pool."""

    grants: list[str] = Field(default_factory=list)
    """What the service's IAM role may do: ``artifacts:read``, ``uploads:read-write``, ``email:send``,
    ``database:secret``, ``<cache>:connect``. Nothing else is granted."""

    allow_from: list[str] = Field(default_factory=list)
    """Services whose pods may connect to this one (NetworkPolicy); the ALB is allowed when ``ingress`` is set."""

    env: dict[str, str] = Field(default_factory=dict)
    """Plain environment variables (no secrets: those are read at run time with the service's role)."""

    backoff_limit: int = Field(3, ge=0, le=20)
    """``job``: retries of a failed pod (a Spot interruption counts as one)."""

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.endswith(":latest") or ("@" not in value and ":" not in value.rsplit("/", 1)[-1]):
            raise ValueError(
                f"got {shown(value)}; pin the image by digest (@sha256:...) or an immutable tag, not latest"
            )
        return _pattern(
            value, _IMAGE, "an image reference such as '111122223333.dkr.ecr.us-east-1.amazonaws.com/web:1.4.2'"
        )

    @field_validator("env")
    @classmethod
    def _env(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            _pattern(key, _ENV_NAME, "environment variable names in upper case such as 'LOG_LEVEL'")
        return value


_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]+@([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_CRON = re.compile(r"^cron\((\S+ ){5}\S+\)$")
_BACKUP_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,49}$")


class ThresholdsConfig(_Model):
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


class PrometheusConfig(_Model):
    """``keel:alerts.prometheus``: the kube-prometheus-stack release (Prometheus, Alertmanager, Grafana)."""

    retention_days: int = Field(15, ge=1, le=365)
    """Days Prometheus keeps samples."""

    storage_gb: int = Field(50, ge=10, le=16384)
    """Prometheus' encrypted gp3 volume."""

    alertmanager_storage_gb: int = Field(10, ge=1, le=1024)
    """Alertmanager's volume (silences and notification state survive a restart)."""

    grafana_storage_gb: int = Field(10, ge=1, le=1024)
    """Grafana's volume (dashboards and users made in the UI)."""


class AlertsConfig(_Model):
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
            _pattern(email, _EMAIL, "e-mail addresses such as 'oncall@example.com'")
        if len(set(value)) != len(value):
            raise ValueError(f"got {shown(value)}; each address may appear once")
        return value


class BackupRuleConfig(_Model):
    """One ``keel:backup.rules.<name>`` entry: when AWS Backup runs and how long it keeps the result."""

    schedule: str
    """An AWS Backup cron expression in UTC, such as ``cron(0 5 * * ? *)``."""

    delete_after_days: int = Field(ge=1, le=36500)
    """Days a recovery point (and its cross-region copy) is kept."""

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        return _pattern(value, _CRON, "a six-field AWS cron expression such as 'cron(0 5 * * ? *)'")


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


class VaultLockConfig(_Model):
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


class BackupConfig(_Model):
    """``keel:backup``: an AWS Backup vault and plan for the database and the artifacts and uploads buckets."""

    rules: dict[str, BackupRuleConfig] = Field(default_factory=_default_backup_rules)
    """Backup rules by name; the default is the source design's three."""

    copy_region: str | None = None
    """None: no copy. A region: every recovery point is copied to a vault there (disaster recovery)."""

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
            _pattern(name, _BACKUP_RULE, "rule names of letters, digits, '-', '_' or '.' (at most 50)")
        return value

    @field_validator("copy_region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        return None if value is None else _pattern(value, _REGION, "an AWS region name like 'us-west-2'")


_RFC1918 = tuple(ipaddress.IPv4Network(b) for b in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))


def _tags_ok(value: dict[str, str]) -> dict[str, str]:
    for key, tag in value.items():
        if key in RESERVED_TAGS:
            raise ValueError(f"got {shown(key)}, which keel sets itself; reserved: {', '.join(RESERVED_TAGS)}")
        if key.lower().startswith("aws:") or not _TAG_KEY.match(key):
            raise ValueError(
                f"got key {shown(key)}; tag keys are 1-128 letters, digits, spaces or _.:/=+-@ "
                "and may not start with 'aws:'"
            )
        if len(tag) > 256:
            raise ValueError(f"got a {len(tag)}-character value for {shown(key)}; tag values are at most 256")
    return value


class StackConfig(_Model):
    """The whole ``keel:`` namespace of one stack, plus the ``aws:region`` it deploys to."""

    stack: str
    """The Pulumi stack name (not config: filled in by :func:`load`)."""

    secret_keys: frozenset[str] = frozenset()
    """The ``keel:`` keys (camelCase, no namespace) the engine marks secret: a ``secure:`` value is somewhere in
    them (not config: filled in by :func:`load`). Components keep what they read from these secret."""

    region: str
    """``aws:region``: where every regional resource goes."""

    environment: Literal["dev", "prod"]
    """Which kind of stack this is; only cross-section validation rules read it."""

    account_id: str | None = None
    """None: any account. A 12-digit id: the AWS provider refuses to touch any other account."""

    protect: bool = True
    """True: stateful resources (keys, log groups, and later databases, caches, buckets) get Pulumi's
    ``protect`` and their own deletion protection. A stack turns it off explicitly (dev); prod may not."""

    tags: Annotated[dict[str, str], Field(default_factory=dict)]
    """Tags on every resource (through the provider's default tags), besides ``environment``, ``stack`` and
    ``managed-by`` which keel sets."""

    network: NetworkConfig = Field(default_factory=NetworkConfig)
    cluster: ClusterConfig | None = None
    """None: no EKS cluster (the network and data tier only)."""
    database: DatabaseConfig | None = None
    """None: no database."""

    caches: dict[str, CacheConfig] = Field(default_factory=dict)
    """Replication groups by name (``queue``, ``cache``); a name containing ``queue`` must not evict."""

    buckets: BucketsConfig = Field(default_factory=BucketsConfig)
    email: EmailConfig | None = None
    """None: no SES identity."""
    ingress: IngressConfig | None = None
    """None: no ALB (no service may set ``ingress``)."""

    services: dict[str, ServiceConfig] = Field(default_factory=dict)
    """Workloads by name (``web``, ``api``, ``forecast-engine``, ``forecast-trainer``)."""
    alerts: AlertsConfig | None = None
    """None: no alarms, no Container Insights, no dashboard (prod requires it)."""
    backup: BackupConfig | None = None
    """None: no AWS Backup plan (prod requires it, with a copy region and a vault lock)."""

    @field_validator("region")
    @classmethod
    def _region(cls, value: str) -> str:
        if not _REGION.match(value):
            raise ValueError(f"got {shown(value)}; expected an AWS region name like 'us-east-1'")
        return value

    @field_validator("account_id")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        if not value:
            return None  # Pulumi.yaml declares the key with an empty default
        if not _ACCOUNT.match(value):
            raise ValueError(f"got {shown(value)}; expected a 12-digit AWS account id")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        return _tags_ok(value)

    @property
    def all_tags(self) -> dict[str, str]:
        """Config tags plus the ones keel always sets."""
        return {**self.tags, "environment": self.environment, "stack": self.stack, "managed-by": "pulumi"}


#: Keys of ``StackConfig`` that are not ``keel:`` config keys.
_NOT_CONFIG = {"stack": None, "region": "aws:region", "secret_keys": None}

#: Keys that may hold ``secure:`` values, and what keel does with them. The engine hands the program the
#: plaintext and marks only the whole top-level key secret (``Config.get`` returns it unmarked), so the program
#: must know where a secret can be and keep it secret there itself.
SECRET_CAPABLE = {
    "services": "every env value of every service is kept secret",
    "accountId": "accepted as the CLI accepts it; an account id is printed in every ARN, so it is not kept secret",
}


def config_keys() -> tuple[str, ...]:
    """The ``keel:`` keys a stack may set (camelCase, without the namespace)."""
    return tuple(field.alias or name for name, field in StackConfig.model_fields.items() if name not in _NOT_CONFIG)


# ---------------------------------------------------------------------------------------------- validation


def validate(stack: str, raw: Mapping[str, str], secret_keys: Iterable[str] = ()) -> StackConfig:
    """Validate a stack's raw config map (``{"keel:network": "<json>", "aws:region": "us-east-1"}``, the
    shape Pulumi hands a program) and return the typed config, or raise :class:`ConfigError`. ``secret_keys``:
    the full keys the engine marked secret (``keel:services``)."""
    problems: list[str] = []
    secret = {k.partition(":")[2] for k in secret_keys if k.startswith(f"{NAMESPACE}:")}
    problems += [
        f"keel:{key}: holds a secure value; keel keeps secure values only in "
        f"{', '.join(f'keel:{k}' for k in SECRET_CAPABLE)} (this key's values reach resources in plain text)"
        for key in sorted(secret - set(SECRET_CAPABLE))
        if key in config_keys()
    ]
    data: dict[str, Any] = {"stack": stack, "secretKeys": frozenset(secret)}
    region = raw.get("aws:region")
    if region is None:
        problems.append("aws:region: missing; set it with `pulumi config set aws:region us-east-1`")
    else:
        data["region"] = region
    allowed = config_keys()
    for full_key, text in sorted(raw.items()):
        namespace, _, key = full_key.partition(":")
        if namespace != NAMESPACE:
            continue
        if key not in allowed:
            problems.append(f"{full_key}: unknown key; allowed keys: {', '.join(sorted(allowed))}")
            continue
        data[key] = text if key in _SCALARS else _decode(text)
    if problems:
        raise ConfigError(problems)
    try:
        cfg = StackConfig.model_validate(data, by_alias=True)
    except ValidationError as err:
        raise ConfigError([_describe(e) for e in err.errors(include_url=False)]) from None
    problems = [
        *_cross_checks(cfg),
        *_cluster_checks(cfg),
        *_data_checks(cfg),
        *_service_checks(cfg),
        *_operations_checks(cfg),
    ]
    if problems:
        raise ConfigError(problems)
    return cfg


_SCALARS = {"environment", "accountId"}


def _decode(text: str) -> Any:
    """Pulumi passes object and list values as JSON text, scalars as plain text."""
    try:
        return json.loads(text)
    except (TypeError, json.JSONDecodeError):
        return text


def _cross_checks(cfg: StackConfig) -> Iterable[str]:
    """Rules that read more than one field. Each yields one ``keel:<path>: ...`` problem."""
    net = cfg.network
    if cfg.environment == "prod" and not cfg.protect:
        yield "keel:protect: got false in a prod stack; allowed: true (prod stateful resources are always protected)"
    if net.zone_names is not None and len(net.zone_names) != net.availability_zones:
        yield (
            f"keel:network.zoneNames: got {len(net.zone_names)} zone(s) {shown(net.zone_names)}; "
            f"must list exactly availabilityZones ({net.availability_zones}) zones"
        )
    if (
        cfg.environment == "prod"
        and net.nat_gateways == "Single"
        and net.availability_zones > 1
        and not net.allow_single_nat_in_prod
    ):
        yield (
            "keel:network.natGateways: got 'Single' in a prod stack; allowed: 'OnePerAz' "
            "(or set keel:network.allowSingleNatInProd: true to accept that one zone outage cuts egress for all)"
        )


def _cluster_checks(cfg: StackConfig) -> Iterable[str]:
    cluster = cfg.cluster
    if cluster is None:
        return
    if cfg.network.nat_gateways == "None":
        yield (
            "keel:network.natGateways: got 'None' with a cluster; nodes pull add-on images from public registries "
            "and call AWS APIs without endpoints for all of them; allowed: 'Single' or 'OnePerAz'"
        )
    if cfg.environment == "prod" and any(ipaddress.ip_network(c).prefixlen == 0 for c in cluster.public_access_cidrs):
        yield (
            "keel:cluster.publicAccessCidrs: got '0.0.0.0/0' in a prod stack; allowed: [] (private endpoint only) "
            "or specific CIDRs such as your VPN's"
        )
    for name, group in cluster.node_groups.items():
        path = f"keel:cluster.nodeGroups.{name}"
        if group.min_size > group.max_size:
            yield f"{path}.minSize: got {group.min_size}; must be at most maxSize ({group.max_size})"
        elif not group.min_size <= group.desired <= group.max_size:
            yield (
                f"{path}.desiredSize: got {group.desired}; must be between minSize ({group.min_size}) "
                f"and maxSize ({group.max_size})"
            )
        not_gpu = [t for t in group.instance_types if instance_family(t) not in GPU_FAMILIES]
        if group.gpu and not_gpu:
            yield (
                f"{path}.instanceTypes: got {shown(not_gpu)} in a GPU group; allowed families: "
                f"{', '.join(GPU_FAMILIES)}"
            )
        if not group.gpu and name != GPU_POOL and len(not_gpu) < len(group.instance_types):
            yield (
                f"{path}.instanceTypes: got GPU types {shown(sorted(set(group.instance_types) - set(not_gpu)))} "
                "in a group without gpu: true; set gpu: true or use the gpu group"
            )
    gpu = cluster.node_groups.gpu
    if gpu is not None:
        if not gpu.gpu:
            yield "keel:cluster.nodeGroups.gpu.gpu: got false; the gpu group must set gpu: true"
        if cluster.require_spot_gpus and gpu.capacity_type != "SPOT":
            yield (
                f"keel:cluster.nodeGroups.gpu.capacityType: got {shown(gpu.capacity_type)} while "
                "keel:cluster.requireSpotGpus is true; allowed: 'SPOT' (or set requireSpotGpus: false)"
            )
    if cfg.environment == "prod" and not cluster.deletion_protection:
        yield "keel:cluster.deletionProtection: got false in a prod stack; allowed: true"


def _data_checks(cfg: StackConfig) -> Iterable[str]:
    db = cfg.database
    if (db is not None or cfg.caches) and cfg.cluster is None:
        yield (
            "keel:cluster: missing while keel:database or keel:caches is set; the data tier admits only the "
            "cluster's nodes, so a stack with data stores needs a cluster"
        )
    if db is not None:
        if db.max_allocated_storage_gb < db.allocated_storage_gb:
            yield (
                f"keel:database.maxAllocatedStorageGb: got {db.max_allocated_storage_gb}; must be at least "
                f"allocatedStorageGb ({db.allocated_storage_gb})"
            )
        if cfg.environment == "prod":
            for key, value in (
                ("multiAz", db.multi_az),
                ("deletionProtection", db.deletion_protection),
                ("finalSnapshot", db.final_snapshot),
            ):
                if not value:
                    yield f"keel:database.{key}: got false in a prod stack; allowed: true"
            if db.backup_retention_days < 7:
                yield (
                    f"keel:database.backupRetentionDays: got {db.backup_retention_days} in a prod stack; "
                    "allowed: 7 to 35"
                )
    for name, cache in cfg.caches.items():
        path = f"keel:caches.{name}"
        if not re.match(r"^[a-z][a-z0-9-]{0,19}$", name):
            yield f"{path}: got the name {shown(name)}; cache names are 1-20 lowercase letters, digits or dashes"
        if "queue" in name and cache.maxmemory_policy != "noeviction":
            yield (
                f"{path}.maxmemoryPolicy: got {shown(cache.maxmemory_policy)} for a queue; allowed: 'noeviction' "
                "(an evicting queue silently loses jobs)"
            )
        if cache.multi_az is True and cache.replicas_per_shard == 0:
            yield f"{path}.multiAz: got true with replicasPerShard 0; Multi-AZ needs at least one replica per shard"
        if cfg.environment == "prod" and cache.replicas_per_shard == 0:
            yield f"{path}.replicasPerShard: got 0 in a prod stack; allowed: 1 to 5 (a failover target)"
    if cfg.environment == "prod" and cfg.buckets.force_destroy:
        yield "keel:buckets.forceDestroy: got true in a prod stack; allowed: false"


def _scaling_checks(cfg: StackConfig, name: str, svc: ServiceConfig) -> Iterable[str]:
    path = f"keel:services.{name}.scaleOn"
    scale = svc.scale_on
    if scale is None:
        if svc.kind == "job":
            yield f"{path}: required key is missing; a job runs when its queue has work (scaleOn.queue)"
        return
    kinds = [
        k
        for k, v in (
            ("cpu", scale.cpu),
            ("memory", scale.memory),
            ("requestsPerMinute", scale.requests_per_minute),
            ("queue", scale.queue),
        )
        if v is not None
    ]
    events = [k for k in kinds if k in ("requestsPerMinute", "queue")]
    if not kinds:
        yield f"{path}: got no trigger; set one of cpu, memory, requestsPerMinute or queue"
    elif "cpu" in kinds and "memory" in kinds:
        yield f"{path}: got both cpu and memory; an HPA scales on one resource, pick one"
    elif len(events) > 1:
        yield f"{path}: got {' and '.join(events)}; one KEDA trigger per service (cpu may be added as a floor)"
    elif events and "memory" in kinds:
        yield f"{path}.memory: got a memory floor with {events[0]}; only cpu can be combined with a KEDA trigger"
    if scale.requests_per_minute is not None and svc.ingress is None:
        yield f"{path}.requestsPerMinute: got {scale.requests_per_minute} but the service has no ingress to count"
    if scale.queue is not None and scale.queue.cache not in cfg.caches:
        allowed = ", ".join(sorted(cfg.caches)) or "none configured"
        yield f"{path}.queue.cache: got {shown(scale.queue.cache)}; allowed: {allowed}"
    if svc.kind == "job" and kinds != ["queue"]:
        yield f"{path}: got {', '.join(kinds)} for a job; a job scales on queue only"
    if "cpu" in kinds and svc.resources.cpu in ("0", "0m"):
        yield f"keel:services.{name}.resources.cpu: got {shown(svc.resources.cpu)}; a CPU trigger needs a CPU request"
    if cfg.environment == "prod" and svc.kind == "deployment" and svc.ingress is not None and svc.replicas.min < 2:
        yield (
            f"keel:services.{name}.replicas.min: got {svc.replicas.min} for an exposed service in a prod stack; "
            "allowed: 2 or more (one pod per zone failure)"
        )


def _service_checks(cfg: StackConfig) -> Iterable[str]:
    grants = vocabulary.grants(cfg.caches, email=cfg.email is not None, database=cfg.database is not None)
    routes: dict[tuple[str, str], str] = {}
    if cfg.services and cfg.cluster is None:
        yield "keel:cluster: missing while keel:services is set; services run on the cluster"
    for name, svc in cfg.services.items():
        path = f"keel:services.{name}"
        if not _SERVICE_NAME.match(name):
            yield f"{path}: got the name {shown(name)}; service names are DNS labels: lowercase letters, digits, dashes"
        if (svc.image is None) == (svc.build is None):
            yield f"{path}: got {'both image and build' if svc.image else 'neither image nor build'}; set exactly one"
        if svc.kind == "deployment" and svc.port is None:
            yield f"{path}.port: required key is missing (a deployment serves on a port)"
        if svc.kind == "job" and svc.ingress is not None:
            yield f"{path}.ingress: got an ingress on a job; allowed only on kind: deployment"
        if svc.replicas.min > svc.replicas.max:
            yield f"{path}.replicas.min: got {svc.replicas.min}; must be at most replicas.max ({svc.replicas.max})"
        if svc.gpu and (cfg.cluster is None or cfg.cluster.node_groups.gpu is None):
            yield f"{path}.gpu: got {svc.gpu} but keel:cluster.nodeGroups.gpu is not configured"
        for grant in svc.grants:
            if grant not in grants:
                yield f"{path}.grants: got {shown(grant)}; allowed: {', '.join(sorted(grants))}"
        for other in svc.allow_from:
            if other not in cfg.services or other == name:
                allowed = sorted(n for n in cfg.services if n != name)
                yield f"{path}.allowFrom: got {shown(other)}; allowed: {', '.join(allowed)}"
        yield from _scaling_checks(cfg, name, svc)
        if svc.ingress is not None:
            if cfg.ingress is None:
                yield f"{path}.ingress: got a route but keel:ingress (the ALB) is not configured"
            for route_path in svc.ingress.paths:
                key = (svc.ingress.host, route_path)
                if key in routes:
                    yield (
                        f"{path}.ingress: got {svc.ingress.host}{route_path}, already routed to service "
                        f"{routes[key]!r}; each host and path goes to one service"
                    )
                routes[key] = name
    if cfg.ingress is not None and cfg.ingress.certificate_arn is None and cfg.ingress.hosted_zone_id is None:
        yield (
            "keel:ingress.certificateArn: missing; set certificateArn, or hostedZoneId so keel requests a "
            "DNS-validated certificate"
        )
    if cfg.ingress is not None and cfg.environment == "prod":
        if not cfg.ingress.deletion_protection:
            yield "keel:ingress.deletionProtection: got false in a prod stack; allowed: true"
        if not cfg.ingress.waf.enabled:
            yield "keel:ingress.waf.enabled: got false in a prod stack; allowed: true"


def _operations_checks(cfg: StackConfig) -> Iterable[str]:
    """Alerts and backups: prod is watched, backed up, copied to a second region and locked."""
    alerts, backup = cfg.alerts, cfg.backup
    if cfg.environment == "prod":
        if alerts is None:
            yield "keel:alerts: missing in a prod stack; set at least keel:alerts.emails (who hears the alarms)"
        elif not alerts.emails:
            yield "keel:alerts.emails: got [] in a prod stack; allowed: one or more addresses (someone must be paged)"
        if backup is None:
            yield "keel:backup: missing in a prod stack; set keel:backup.copyRegion and keel:backup.vaultLock"
        else:
            if backup.copy_region is None:
                yield "keel:backup.copyRegion: missing in a prod stack; allowed: a second region for disaster recovery"
            if backup.vault_lock is None:
                yield (
                    "keel:backup.vaultLock: missing in a prod stack; allowed: {mode: governance} or {mode: compliance}"
                )
    if alerts is not None and alerts.prometheus is not None and cfg.cluster is None:
        yield "keel:alerts.prometheus: got a Prometheus stack but keel:cluster is not configured (it runs there)"
    if backup is None:
        return
    if backup.copy_region is not None and backup.copy_region == cfg.region:
        yield (
            f"keel:backup.copyRegion: got {shown(backup.copy_region)}, the stack's own region; allowed: any other "
            "region (a copy in the same region does not survive a regional outage)"
        )
    if backup.completion_window_minutes < backup.start_window_minutes + 60:
        yield (
            f"keel:backup.completionWindowMinutes: got {backup.completion_window_minutes}; must be at least "
            f"startWindowMinutes + 60 ({backup.start_window_minutes + 60})"
        )
    lock = backup.vault_lock
    if lock is None:
        return
    if lock.min_retention_days > lock.max_retention_days:
        yield (
            f"keel:backup.vaultLock.minRetentionDays: got {lock.min_retention_days}; must be at most "
            f"maxRetentionDays ({lock.max_retention_days})"
        )
        return
    for rule_name, rule in backup.rules.items():
        if not lock.min_retention_days <= rule.delete_after_days <= lock.max_retention_days:
            yield (
                f"keel:backup.rules.{rule_name}.deleteAfterDays: got {rule.delete_after_days}; the vault lock allows "
                f"{lock.min_retention_days} to {lock.max_retention_days} (keel:backup.vaultLock)"
            )


def _describe(error: Any) -> str:
    """One pydantic error as ``keel:<path>: got <value>; <what is allowed>``."""
    loc: tuple[Any, ...] = tuple(error["loc"])
    path = _path(loc)
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    field = _field_at(loc)
    if kind == "extra_forbidden":
        keys = _keys_at(loc[:-1])
        return f"{path}: unknown key; allowed keys: {', '.join(keys)}"
    if kind == "missing":
        return f"{path}: required key is missing"
    if kind == "literal_error":
        return f"{path}: got {shown(value)}; allowed: {ctx.get('expected')}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return f"{path}: got {shown(value)}; allowed: {_bounds(field, ctx)}"
    if kind == "value_error":
        return f"{path}: {str(error['msg']).removeprefix('Value error, ')}"
    expected = {
        "int_type": "a whole number",
        "bool_type": "true or false",
        "string_type": "a string",
        "dict_type": "a mapping",
        "list_type": "a list",
        "model_type": "a mapping",
        "model_attributes_type": "a mapping",
    }.get(kind)
    if expected:
        return f"{path}: got {shown(value)}; expected {expected}"
    return f"{path}: got {shown(value)}; {error['msg']}"


def _path(loc: tuple[Any, ...]) -> str:
    if not loc:
        return f"{NAMESPACE}:"
    head, *rest = loc
    out = _NOT_CONFIG.get(str(head)) or f"{NAMESPACE}:{head}"
    for part in rest:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _bounds(field: FieldInfo | None, ctx: Mapping[str, Any]) -> str:
    low = high = None
    for meta in field.metadata if field else ():
        if isinstance(meta, annotated_types.Ge):
            low = meta.ge
        elif isinstance(meta, annotated_types.Le):
            high = meta.le
    if low is not None and high is not None:
        return f"{low} to {high}"
    return ", ".join(f"{'>=' if k == 'ge' else '<=' if k == 'le' else k} {v}" for k, v in ctx.items())


def _model_in(annotation: Any) -> Any:
    """The model class inside ``Model``, ``Model | None``, ``dict[str, Model]`` or ``list[Model]``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType, list, dict, Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _walk(loc: tuple[Any, ...]) -> tuple[type[BaseModel] | None, FieldInfo | None]:
    """Follow a pydantic error location (aliases) through the models to the last field."""
    model: type[BaseModel] | None = StackConfig
    field: FieldInfo | None = None
    dict_key_next = False
    for part in loc:
        if model is None:
            return None, None
        if isinstance(part, int) or dict_key_next:
            dict_key_next = False  # a list index or a mapping key: same model, next part is a field
            continue
        by_alias = {f.alias or n: f for n, f in model.model_fields.items()}
        field = by_alias.get(str(part))
        if field is None:
            return None, None
        model = _model_in(field.annotation)
        dict_key_next = typing.get_origin(field.annotation) is dict
    return model, field


def _field_at(loc: tuple[Any, ...]) -> FieldInfo | None:
    return _walk(loc)[1]


def _keys_at(loc: tuple[Any, ...]) -> list[str]:
    model = _walk(loc)[0] if loc else StackConfig
    if model is None:
        return []
    return sorted(f.alias or n for n, f in model.model_fields.items() if n not in _NOT_CONFIG)


# ---------------------------------------------------------------------------------------------- loading


def raw_config() -> dict[str, str]:
    """Every config value the Pulumi runtime handed this program (``namespace:key`` -> text).

    ``pulumi.Config`` can only look keys up, and we must also see keys nobody asked for (a typo such as
    ``keel:netwrok`` must fail, not be ignored). The runtime holds config in two places: what was set
    in-process (``set_all_config``, used by mocks and the language host) and the ``PULUMI_CONFIG``
    environment the CLI passes. Both are read through ``pulumi.runtime.config``.
    """
    from pulumi.runtime import config as runtime_config

    merged: dict[str, str] = {}
    merged.update({k: str(v) for k, v in runtime_config.get_config_env().items()})
    merged.update({k: str(v) for k, v in runtime_config.CONFIG.get().items()})
    # Look each key up through pulumi.Config too, so per-key PULUMI_CONFIG_<KEY> overrides win as usual.
    for full_key in list(merged):
        namespace, _, key = full_key.partition(":")
        value = pulumi.Config(namespace).get(key)
        if value is not None:
            merged[full_key] = value
    return merged


def load() -> StackConfig:
    """Read and validate this stack's config. Raises :class:`ConfigError` before anything is registered.

    Secrets: ``pulumi.Config.get`` returns a ``secure:`` value's plaintext unmarked (pulumi 3.272
    ``pulumi/config.py``; the warning is commented out), and the engine lists only whole top-level keys as
    secret. The keys it lists go into :attr:`StackConfig.secret_keys`, so the components can keep those values
    secret (:data:`SECRET_CAPABLE`)."""
    from pulumi.runtime.config import is_config_secret

    raw = raw_config()
    return validate(pulumi.get_stack(), raw, [k for k in raw if is_config_secret(k)])
