"""Cache: one ElastiCache (Redis OSS or Valkey) replication group, TLS and AUTH, reachable only from nodes.

Usage::

    queue = Cache("keel-prod-queue", CacheArgs(config=cfg.caches["queue"], key=cache_key), network=network,
                  client_security_group=cluster.node_security_group, opts=pulumi.ResourceOptions(parent=platform))
    queue.primary_endpoint, queue.port, queue.auth_secret_arn, queue.cluster_mode

Creates (``<n>`` is the component name):

- ``<n>`` parameter group (``redis7`` or ``valkey8``) with ``maxmemory-policy`` and ``cluster-enabled`` matching
  the shard count; ``<n>`` subnet group on the isolated subnets.
- ``<n>`` security group admitting 6379 only from the client security group (the nodes'), no egress.
- ``<n>-auth`` random AUTH token (pulumi-random, 64 alphanumerics) stored in the ``<n>-auth`` Secrets Manager
  secret, encrypted with the cache key. The token is a Pulumi secret: it never appears in plain config, preview
  output or stack outputs.
- ``<n>``: the replication group: TLS in transit (required), AUTH, at-rest encryption with the key, cluster
  mode from the shard count, automatic failover and Multi-AZ whenever there is a replica, snapshots kept as
  configured, a final snapshot and Pulumi ``protect`` when the stack protects.

Depends only on the network, the client security group and the key, never on the EKS cluster.

Outputs: ``replication_group``, ``primary_endpoint``, ``configuration_endpoint``, ``port``,
``auth_secret_arn``, ``security_group``, ``cluster_mode``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components import context
from components.config import CacheConfig
from components.iam import grant_secret_read
from components.network import Network, security_group_admitting

PORT = 6379
ENGINE = {"redis": ("7.1", "redis7"), "valkey": ("8.0", "valkey8")}


def parameters(cfg: CacheConfig) -> dict[str, str]:
    return {"maxmemory-policy": cfg.maxmemory_policy, "cluster-enabled": "yes" if cfg.cluster_mode else "no"}


@dataclass(frozen=True)
class CacheArgs:
    """Arguments of :class:`Cache`."""

    config: CacheConfig
    """Engine, node type, shards, replicas and eviction policy from ``keel:caches.<name>``."""

    key: aws.kms.Key
    """The customer-managed key for data at rest and the AUTH secret (shared by a stack's caches)."""

    protect: bool = True
    """True: Pulumi ``protect`` on the group and a final snapshot when it is deleted."""

    label: str = "cache"
    """The cache's config name (``queue``): names the grants made on it."""


class Cache(pulumi.ComponentResource):
    """An encrypted, authenticated Redis-compatible replication group."""

    replication_group: aws.elasticache.ReplicationGroup
    primary_endpoint: pulumi.Output[str]
    configuration_endpoint: pulumi.Output[str]
    port: int
    auth_secret_arn: pulumi.Output[str]
    security_group: aws.ec2.SecurityGroup
    cluster_mode: bool
    key: aws.kms.Key
    region: str
    label: str
    config: CacheConfig

    def __init__(
        self,
        name: str,
        args: CacheArgs,
        network: Network,
        client_security_group: aws.ec2.SecurityGroup,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("keel:cache:Cache", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        version, family = ENGINE[cfg.engine]
        self.cluster_mode = cfg.cluster_mode
        self.config = cfg
        self.key = args.key
        self.label = args.label
        self.region = context.lookup(pulumi.InvokeOptions(parent=self)).region
        group = aws.elasticache.ParameterGroup(
            name,
            family=family,
            description=f"{name}: maxmemory-policy {cfg.maxmemory_policy}",
            parameters=[
                aws.elasticache.ParameterGroupParameterArgs(name=k, value=v) for k, v in parameters(cfg).items()
            ],
            opts=child,
        )
        subnets = aws.elasticache.SubnetGroup(
            name, subnet_ids=network.isolated_subnet_ids, description=f"{name}: isolated subnets", opts=child
        )
        self.security_group = security_group_admitting(
            name, network=network, port=PORT, client=client_security_group, what="Redis (TLS)", opts=child
        )
        token = random.RandomPassword(f"{name}-auth", length=64, special=False, opts=child)
        secret = aws.secretsmanager.Secret(
            f"{name}-auth",
            description=f"{name}: ElastiCache AUTH token",
            kms_key_id=args.key.arn,
            recovery_window_in_days=30 if args.protect else 0,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect),
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-auth",
            secret_id=secret.id,
            # RandomPassword.result is a secret output (pulumi-random declares it so), and secrecy flows through
            # apply: the secret string is a Pulumi secret in state and previews.
            secret_string=token.result.apply(lambda t: json.dumps({"authToken": t})),
            opts=child,
        )
        failover = cfg.replicas_per_shard > 0
        self.replication_group = aws.elasticache.ReplicationGroup(
            name,
            description=f"{name}: {cfg.engine} {version}, {cfg.shards} shard(s) x {cfg.replicas_per_shard} replica(s)",
            engine=cfg.engine,
            engine_version=version,
            node_type=cfg.node_type,
            port=PORT,
            num_node_groups=cfg.shards,
            replicas_per_node_group=cfg.replicas_per_shard,
            cluster_mode="enabled" if cfg.cluster_mode else "disabled",
            automatic_failover_enabled=failover or cfg.cluster_mode,
            multi_az_enabled=cfg.multi_az_enabled,
            parameter_group_name=group.name,
            subnet_group_name=subnets.name,
            security_group_ids=[self.security_group.id],
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            auth_token=token.result,
            at_rest_encryption_enabled=True,
            kms_key_id=args.key.arn,
            snapshot_retention_limit=cfg.snapshot_retention_days,
            snapshot_window="02:00-03:00",
            maintenance_window="sun:05:30-sun:06:30",
            final_snapshot_identifier=f"{name}-final" if args.protect else None,
            auto_minor_version_upgrade=True,
            apply_immediately=False,
            tags={"Name": name},
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, retain_on_delete=args.protect),
        )
        self.primary_endpoint = self.replication_group.primary_endpoint_address
        self.configuration_endpoint = self.replication_group.configuration_endpoint_address
        self.port = PORT
        self.auth_secret_arn = secret.arn
        self.register_outputs(
            {
                "primary_endpoint": self.primary_endpoint,
                "configuration_endpoint": self.configuration_endpoint,
                "port": self.port,
                "auth_secret_arn": self.auth_secret_arn,
                "security_group": self.security_group.id,
                "cluster_mode": self.cluster_mode,
            }
        )

    @property
    def endpoint(self) -> pulumi.Output[str]:
        """Where clients connect: the configuration endpoint in cluster mode, else the primary endpoint."""
        return self.configuration_endpoint if self.cluster_mode else self.primary_endpoint

    def grant_connect(self, role: aws.iam.Role) -> aws.iam.RolePolicy:
        """Let ``role`` read the AUTH token secret (decrypting it through Secrets Manager only)."""
        return grant_secret_read(f"cache-{self.label}", role, self.auth_secret_arn, self.key.arn, self.region)
