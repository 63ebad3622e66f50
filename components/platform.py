"""Platform: wires one stack's components together.

Usage::

    cfg = config.load()
    platform = Platform(f"keel-{cfg.stack}", PlatformArgs(config=cfg))
    pulumi.export("vpcId", platform.network.vpc_id)

Creates ``<n>-aws``, the AWS provider every child uses (region from ``aws:region``, the stack's tags as
default tags, and ``allowed_account_ids`` when ``keel:accountId`` is set so a wrong profile fails before
anything changes), then the components in dependency order: ``Network``, then (when ``keel:cluster`` is set)
``Cluster`` and its ``ClusterAddons``, and the data tier (``Database``, a ``Cache`` per ``keel:caches`` entry
with a shared ``<n>-cache`` key, ``Buckets``, ``Email``); later issues add the edge and workloads. Components receive
objects (``network=...``), never raw ids.

Outputs: ``network``, ``cluster`` and ``addons`` (None without ``keel:cluster``), ``database``, ``caches``,
``buckets``, ``email``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components import context
from components.addons import ClusterAddons, ClusterAddonsArgs
from components.cache import Cache, CacheArgs
from components.cluster import Cluster, ClusterArgs
from components.config import StackConfig
from components.database import Database, DatabaseArgs
from components.email import Email, EmailArgs
from components.keys import create_key
from components.network import Network, NetworkArgs
from components.storage import Buckets, BucketsArgs


@dataclass(frozen=True)
class PlatformArgs:
    """Arguments of :class:`Platform`."""

    config: StackConfig
    """The validated stack config; every per-stack choice comes from here."""


class Platform(pulumi.ComponentResource):
    """Everything one stack deploys."""

    provider: aws.Provider
    network: Network
    cluster: Cluster | None
    addons: ClusterAddons | None
    database: Database | None
    caches: dict[str, Cache]
    buckets: Buckets
    email: Email | None

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("keel:platform:Platform", name, None, opts)
        cfg = args.config
        self.provider = aws.Provider(
            f"{name}-aws",
            region=cfg.region,
            allowed_account_ids=[cfg.account_id] if cfg.account_id else None,
            default_tags={"tags": cfg.all_tags},
            opts=pulumi.ResourceOptions(parent=self),
        )
        children = pulumi.ResourceOptions(parent=self, providers=[self.provider])
        self.network = Network(name, NetworkArgs.from_config(cfg.network, protect=cfg.protect), opts=children)
        self.cluster = self.addons = None
        if cfg.cluster is not None:
            self.cluster = Cluster(
                name, ClusterArgs.from_config(cfg.cluster, protect=cfg.protect), network=self.network, opts=children
            )
            self.addons = ClusterAddons(
                name,
                ClusterAddonsArgs(vpc_id=self.network.vpc_id, version=cfg.cluster.version),
                cluster=self.cluster,
                opts=children,
            )
        self._data_tier(name, cfg, children)
        self.register_outputs({"network": self.network.vpc_id, "cluster": self.cluster.name if self.cluster else None})

    def _data_tier(self, name: str, cfg: StackConfig, children: pulumi.ResourceOptions) -> None:
        """Database, caches, buckets and email. They depend on the network and on the node security group
        (created before the control plane), never on the EKS cluster, so they build in parallel with it."""
        self.database = None
        self.caches = {}
        self.email = None
        nodes = self.cluster.node_security_group if self.cluster else None
        if cfg.database is not None and nodes is not None:
            self.database = Database(
                name,
                DatabaseArgs.from_config(cfg.database, protect=cfg.protect),
                network=self.network,
                client_security_group=nodes,
                opts=children,
            )
        if cfg.caches and nodes is not None:
            ctx = context.lookup(pulumi.InvokeOptions(parent=self, provider=self.provider))
            key = create_key(
                f"{name}-cache",
                "ElastiCache data at rest and the AUTH token secrets",
                ctx,
                protect=cfg.protect,
                opts=children,
            )
            for cache_name, cache in cfg.caches.items():
                self.caches[cache_name] = Cache(
                    f"{name}-{cache_name}",
                    CacheArgs(config=cache, key=key, protect=cfg.protect),
                    network=self.network,
                    client_security_group=nodes,
                    opts=children,
                )
        self.buckets = Buckets(name, BucketsArgs.from_config(cfg.buckets, protect=cfg.protect), opts=children)
        if cfg.email is not None:
            self.email = Email(name, EmailArgs.from_config(cfg.email, protect=cfg.protect), opts=children)
