"""Platform: wires one stack's components together.

Usage::

    cfg = config.load()
    platform = Platform(f"keel-{cfg.stack}", PlatformArgs(config=cfg))
    pulumi.export("vpcId", platform.network.vpc_id)

Creates ``<n>-aws``, the AWS provider every child uses (region from ``aws:region``, the stack's tags as
default tags, and ``allowed_account_ids`` when ``keel:accountId`` is set so a wrong profile fails before
anything changes), then the components in dependency order: ``Network``, then (when ``keel:cluster`` is set)
``Cluster`` and its ``ClusterAddons``; later issues add the data tier, edge and workloads. Components receive
objects (``network=...``), never raw ids.

Outputs: ``network``, ``cluster`` and ``addons`` (None without ``keel:cluster``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.addons import ClusterAddons, ClusterAddonsArgs
from components.cluster import Cluster, ClusterArgs
from components.config import StackConfig
from components.network import Network, NetworkArgs


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
        self.register_outputs({"network": self.network.vpc_id, "cluster": self.cluster.name if self.cluster else None})
