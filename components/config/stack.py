"""The whole ``keel:`` namespace of one stack, :class:`StackConfig`, built from the sections; which keys are
config (:func:`config_keys`) and which may hold ``secure:`` values (:data:`SECRET_CAPABLE`)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator

from components.config.base import REGION_NAME, Section, shown
from components.config.cluster import ClusterConfig
from components.config.data import BucketsConfig, CacheConfig, DatabaseConfig, EmailConfig
from components.config.network import NetworkConfig
from components.config.operations import AlertsConfig, BackupConfig
from components.config.services import IngressConfig, ServiceConfig

#: The Pulumi config namespace of every keel key.
NAMESPACE = "keel"

#: Tags keel sets on every resource itself; stack config may not override them.
RESERVED_TAGS = ("environment", "stack", "managed-by")

_ACCOUNT = re.compile(r"^\d{12}$")
_TAG_KEY = re.compile(r"^[\w.:/=+\-@ ]{1,128}$")


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


class StackConfig(Section):
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
        if not REGION_NAME.match(value):
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
NOT_CONFIG = {"stack": None, "region": "aws:region", "secret_keys": None}

#: Keys that may hold ``secure:`` values, and what keel does with them. The engine hands the program the
#: plaintext and marks only the whole top-level key secret (``Config.get`` returns it unmarked), so the program
#: must know where a secret can be and keep it secret there itself.
SECRET_CAPABLE = {
    "services": "every env value of every service is kept secret",
    "accountId": "accepted as the CLI accepts it; an account id is printed in every ARN, so it is not kept secret",
}


def config_keys() -> tuple[str, ...]:
    """The ``keel:`` keys a stack may set (camelCase, without the namespace)."""
    return tuple(field.alias or name for name, field in StackConfig.model_fields.items() if name not in NOT_CONFIG)
