"""The whole ``keel:`` namespace of one stack, :class:`StackConfig`, built from the sections; which keys are
config (:func:`config_keys`) and which may hold ``secure:`` values (:data:`SECRET_CAPABLE`); what each
``keel:environment`` promises (:data:`ENVIRONMENTS`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
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

#: The kinds of stack ``keel:environment`` names. A stack's name is free (``Pulumi.<stack>.yaml``); its environment
#: says which guarantees config validation holds it to (:data:`ENVIRONMENTS`) and, in the deploy workflow, in which
#: tier it deploys (dev stacks first, prod stacks last).
Environment = Literal["dev", "staging", "prod"]


@dataclass(frozen=True)
class Guarantees:
    """What config validation holds a stack to, beyond what every stack is held to. Each field is one promise;
    the rules in :mod:`components.config.checks` read these, never an environment's name, and their messages name
    the stack's environment and what it allows."""

    protected: bool
    """``keel:protect`` stays true, and so do the deletion protections that cost nothing: the cluster's, the
    database's (with a final snapshot), the load balancer's; no ``keel:buckets.forceDestroy``."""
    private_api: bool
    """The cluster's public endpoint is never open to ``0.0.0.0/0``."""
    survives_a_node: bool
    """A deployment keeps two replicas (its disruption budget lets a drain take one), a cache a replica."""
    filtered: bool
    """The load balancer has its WAF web ACL."""
    watched: bool
    """``keel:alerts`` with at least one address: someone is paged."""
    backed_up: bool
    """``keel:backup`` with a vault lock, and database backups kept 7 days or more."""
    survives_a_zone: bool
    """What doubles a bill to survive a zone: a Multi-AZ database, a NAT gateway per zone."""
    survives_a_region: bool
    """Recovery points copied to a second region (``keel:backup.copyRegion``), and the artifacts and uploads buckets
    replicated there within S3 Replication Time Control's 15 minutes (``keel:buckets.replication``)."""


#: What each environment is held to. dev holds none of it (cheap, thrown away). staging is prod-shaped and held
#: to every guarantee about safety and correctness, and relaxed only where the guarantee is bought with a second
#: copy of something: a zone (Multi-AZ database, a NAT per zone) or a region (backup copies). prod holds all.
ENVIRONMENTS: dict[str, Guarantees] = {
    "dev": Guarantees(**dict.fromkeys((f.name for f in fields(Guarantees)), False)),
    "staging": Guarantees(
        protected=True,
        private_api=True,
        survives_a_node=True,
        filtered=True,
        watched=True,
        backed_up=True,
        survives_a_zone=False,
        survives_a_region=False,
    ),
    "prod": Guarantees(**dict.fromkeys((f.name for f in fields(Guarantees)), True)),
}


def holding(guarantee: str) -> list[str]:
    """The environments that hold ``guarantee`` (a :class:`Guarantees` field), in :data:`ENVIRONMENTS` order."""
    return [name for name, held in ENVIRONMENTS.items() if getattr(held, guarantee)]


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
    them (not config: filled in by :func:`load`). Only ``accountId`` may be secure today (``SECRET_CAPABLE``), and
    no component reads it from here: kept so a check or a component that needs to know can."""

    region: str
    """``aws:region``: where every regional resource goes."""

    environment: Environment
    """Which kind of stack this is: what validation holds it to (:attr:`guarantees`). Only cross-section
    validation rules read it, through :attr:`guarantees`; it is also the ``environment`` tag."""

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
    def guarantees(self) -> Guarantees:
        """What this stack's environment holds it to (:data:`ENVIRONMENTS`)."""
        return ENVIRONMENTS[self.environment]

    @property
    def all_tags(self) -> dict[str, str]:
        """Config tags plus the ones keel always sets."""
        return {**self.tags, "environment": self.environment, "stack": self.stack, "managed-by": "pulumi"}


#: Keys of ``StackConfig`` that are not ``keel:`` config keys.
NOT_CONFIG = {"stack": None, "region": "aws:region", "secret_keys": None}

#: Keys that may hold ``secure:`` values, and what keel does with them. The engine hands the program the
#: plaintext and marks only the whole top-level key secret (``Config.get`` returns it unmarked), so the program
#: must know where a secret can be and keep it secret there itself. ``keel:services`` holds none: a service's
#: secrets are Secrets Manager secrets whose values never pass through Pulumi (``keel:services.<name>.secrets``).
SECRET_CAPABLE = {
    "accountId": "accepted as the CLI accepts it; an account id is printed in every ARN, so it is not kept secret",
}


def config_keys() -> tuple[str, ...]:
    """The ``keel:`` keys a stack may set (camelCase, without the namespace)."""
    return tuple(field.alias or name for name, field in StackConfig.model_fields.items() if name not in NOT_CONFIG)
