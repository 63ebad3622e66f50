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
:func:`~components.config.checks.cross_checks`, so the components never branch on the environment name: they
read named choices.

The modules, each importing only those above it:

- ``base``: :class:`Section` (the base of every model), :class:`ConfigError`, :func:`shown`,
  :data:`LogRetentionDays` and the patterns several sections share.
- ``network``: ``keel:network``.
- ``cluster``: ``keel:cluster`` and its node groups.
- ``data``: ``keel:database``, ``keel:caches``, ``keel:buckets`` and ``keel:email``.
- ``services``: ``keel:ingress`` and ``keel:services``.
- ``operations``: ``keel:alerts`` and ``keel:backup``.
- ``stack``: :class:`StackConfig` (the whole namespace), :func:`config_keys` and :data:`SECRET_CAPABLE`.
- ``checks``: the cross-section rules.
- ``errors``: how a pydantic error becomes a ``keel:<path>: ...`` line.
- ``loading``: :func:`validate` and :func:`load`.

Every public name is re-exported here; import from ``components.config``.
"""

from components.config.base import LOG_RETENTION_DAYS, ConfigError, LogRetentionDays, Section, shown
from components.config.cluster import (
    ClusterConfig,
    NodeGroupConfig,
    NodeGroupsConfig,
    ec2_instance_types,
    instance_family,
)
from components.config.data import (
    CACHE_NODE_TYPES,
    DB_INSTANCE_CLASSES,
    POSTGRES_VERSIONS,
    BucketsConfig,
    CacheConfig,
    DatabaseConfig,
    EmailConfig,
)
from components.config.loading import load, raw_config, validate
from components.config.network import DEFAULT_INTERFACE_ENDPOINTS, NatStrategy, NetworkConfig
from components.config.operations import (
    AlertsConfig,
    BackupConfig,
    BackupRuleConfig,
    PrometheusConfig,
    ThresholdsConfig,
    VaultLockConfig,
)
from components.config.services import (
    BuildConfig,
    CdnConfig,
    IngressConfig,
    IngressRouteConfig,
    QueueTriggerConfig,
    ReplicasConfig,
    ResourcesConfig,
    ScaleOnConfig,
    SecretConfig,
    ServiceConfig,
    WafConfig,
    secret_checks,
)
from components.config.stack import NAMESPACE, RESERVED_TAGS, SECRET_CAPABLE, StackConfig, config_keys

__all__ = [
    "CACHE_NODE_TYPES",
    "DB_INSTANCE_CLASSES",
    "DEFAULT_INTERFACE_ENDPOINTS",
    "LOG_RETENTION_DAYS",
    "NAMESPACE",
    "POSTGRES_VERSIONS",
    "RESERVED_TAGS",
    "SECRET_CAPABLE",
    "AlertsConfig",
    "BackupConfig",
    "BackupRuleConfig",
    "BucketsConfig",
    "BuildConfig",
    "CacheConfig",
    "CdnConfig",
    "ClusterConfig",
    "ConfigError",
    "DatabaseConfig",
    "EmailConfig",
    "IngressConfig",
    "IngressRouteConfig",
    "LogRetentionDays",
    "NatStrategy",
    "NetworkConfig",
    "NodeGroupConfig",
    "NodeGroupsConfig",
    "PrometheusConfig",
    "QueueTriggerConfig",
    "ReplicasConfig",
    "ResourcesConfig",
    "ScaleOnConfig",
    "SecretConfig",
    "Section",
    "ServiceConfig",
    "StackConfig",
    "ThresholdsConfig",
    "VaultLockConfig",
    "WafConfig",
    "config_keys",
    "ec2_instance_types",
    "instance_family",
    "load",
    "raw_config",
    "secret_checks",
    "shown",
    "validate",
]
