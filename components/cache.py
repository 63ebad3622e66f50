"""Cache: one ElastiCache (Redis OSS or Valkey) replication group, TLS and AUTH, reachable only from nodes.

Usage::

    queue = Cache("keel-prod-queue", cfg.caches["queue"], key=cache_key, label="queue", network=network,
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

With ``crossRegion`` (and ``standby``, the copy region's standby network, key and provider), an ElastiCache Global
Datastore keeps a live copy in ``keel:backup.copyRegion``:

- ``<n>-global``: the global replication group (id ``<AWS's region prefix>-<n>``) with the replication group as its
  primary. It ignores later changes of ``primaryReplicationGroupId``: after a regional failover AWS reports the
  promoted secondary there, which would otherwise replace the datastore.
- ``<n>-standby`` replication group in the copy region joining it: the same shards and replicas (Multi-AZ,
  automatic failover), encrypted with the standby key, the same AUTH token, in ``<n>-standby`` subnet group (the
  standby network's isolated subnets) behind ``<n>-standby`` security group, which admits nobody until a failover
  (the DR cluster's nodes are added then); engine, version, node type, parameter group and encryption flags are
  the primary's (AWS takes them from the datastore; the provider refuses them on a secondary). Tagged
  ``keel.dev/replica-of``, and ``keel.dev/node-type`` and ``keel.dev/shards``: what ``keel cost`` prices it on.
- The AUTH secret is replicated to the copy region (encrypted with the standby key), so clients there can read it.
- The primary's ``autoMinorVersionUpgrade`` is off: AWS turns it off for a global datastore's members and does not
  let it back on (engine upgrades then go through the datastore).

Depends only on the network, the client security group and the key, never on the EKS cluster.

Outputs: ``replication_group``, ``primary_endpoint``, ``configuration_endpoint``, ``port``,
``auth_secret_arn``, ``security_group``, ``cluster_mode``, ``node_ids`` (the nodes' CloudWatch ids),
``replicas_per_shard``, ``evicts``, ``global_datastore`` and ``standby`` (None without ``crossRegion``).
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


def cache_node_suffixes(shards: int, replicas: int, cluster_mode: bool) -> list[str]:
    """What ElastiCache appends to a replication group's id to name its member clusters (nodes): ``-001``,
    ``-002``, ... with cluster mode off; ``-0001-001``, ``-0001-002``, ``-0002-001``, ... with it on. CloudWatch
    reports each node's metrics under that name (the ``CacheClusterId`` dimension)."""
    members = range(1, replicas + 2)
    if not cluster_mode:
        return [f"-{m:03d}" for m in members]
    return [f"-{s:04d}-{m:03d}" for s in range(1, shards + 1) for m in members]


@dataclass(frozen=True)
class Standby:
    """Where a cache's cross-region secondary lives: the standby network and the key in the copy region, and the
    provider for that region."""

    network: Network
    key: aws.kms.Key
    provider: aws.Provider
    region: str


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
    node_ids: list[pulumi.Output[str]]
    """Each member node's id (the ``CacheClusterId`` dimension of its CloudWatch metrics)."""
    replicas_per_shard: int
    evicts: bool
    """True: the cache may evict keys under memory pressure (any ``maxmemoryPolicy`` but ``noeviction``)."""
    global_datastore: aws.elasticache.GlobalReplicationGroup | None
    standby: aws.elasticache.ReplicationGroup | None
    """The secondary in the copy region (``crossRegion``), None without one."""

    def __init__(
        self,
        name: str,
        config: CacheConfig,
        *,
        key: aws.kms.Key,
        network: Network,
        client_security_group: aws.ec2.SecurityGroup,
        protect: bool = True,
        label: str = "cache",
        standby: Standby | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``config``: a ``keel:caches.<name>`` entry (engine, node type, shards, replicas, eviction policy).
        ``key``: the customer-managed key for data at rest and the AUTH secret (shared by a stack's caches).
        ``network``: the isolated subnets; ``client_security_group``: the only group admitted on the Redis port.
        ``protect``: True puts ``protect`` on the group and keeps a final snapshot when it is deleted.
        ``label``: the cache's config name (``queue``), which names the grants made on it. ``standby``: where the
        ``crossRegion`` copy goes (required with it)."""
        super().__init__("keel:cache:Cache", name, None, opts)
        if config.cross_region and standby is None:
            raise ValueError(f"{name}: crossRegion needs a standby (the copy region's network, key and provider)")
        child = pulumi.ResourceOptions(parent=self)
        version, family = ENGINE[config.engine]
        self.cluster_mode = config.cluster_mode
        self.key = key
        self.label = label
        self.region = context.lookup(pulumi.InvokeOptions(parent=self)).region
        group = aws.elasticache.ParameterGroup(
            name,
            family=family,
            description=f"{name}: maxmemory-policy {config.maxmemory_policy}",
            parameters=[
                aws.elasticache.ParameterGroupParameterArgs(name=k, value=v) for k, v in parameters(config).items()
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
            kms_key_id=key.arn,
            recovery_window_in_days=30 if protect else 0,
            replicas=[aws.secretsmanager.SecretReplicaArgs(region=standby.region, kms_key_id=standby.key.arn)]
            if config.cross_region and standby is not None
            else None,
            opts=pulumi.ResourceOptions(parent=self, protect=protect, retain_on_delete=protect),
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-auth",
            secret_id=secret.id,
            # RandomPassword.result is a secret output (pulumi-random declares it so), and secrecy flows through
            # apply: the secret string is a Pulumi secret in state and previews.
            secret_string=token.result.apply(lambda t: json.dumps({"authToken": t})),
            opts=child,
        )
        failover = config.replicas_per_shard > 0
        self.replication_group = aws.elasticache.ReplicationGroup(
            name,
            description=(
                f"{name}: {config.engine} {version}, {config.shards} shard(s) x {config.replicas_per_shard} replica(s)"
            ),
            engine=config.engine,
            engine_version=version,
            node_type=config.node_type,
            port=PORT,
            num_node_groups=config.shards,
            replicas_per_node_group=config.replicas_per_shard,
            cluster_mode="enabled" if config.cluster_mode else "disabled",
            automatic_failover_enabled=failover or config.cluster_mode,
            multi_az_enabled=config.multi_az_enabled,
            parameter_group_name=group.name,
            subnet_group_name=subnets.name,
            security_group_ids=[self.security_group.id],
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            auth_token=token.result,
            at_rest_encryption_enabled=True,
            kms_key_id=key.arn,
            snapshot_retention_limit=config.snapshot_retention_days,
            snapshot_window="02:00-03:00",
            maintenance_window="sun:05:30-sun:06:30",
            final_snapshot_identifier=f"{name}-final" if protect else None,
            auto_minor_version_upgrade=not config.cross_region,
            apply_immediately=False,
            tags={"Name": name},
            opts=pulumi.ResourceOptions(parent=self, protect=protect, retain_on_delete=protect),
        )
        self.global_datastore = self.standby = None
        if config.cross_region and standby is not None:
            self._cross_region(name, config, standby, token.result, protect)
        self.primary_endpoint = self.replication_group.primary_endpoint_address
        self.configuration_endpoint = self.replication_group.configuration_endpoint_address
        self.port = PORT
        self.auth_secret_arn = secret.arn
        self.replicas_per_shard = config.replicas_per_shard
        self.evicts = config.maxmemory_policy != "noeviction"
        self.node_ids = [
            pulumi.Output.concat(self.replication_group.id, suffix)
            for suffix in cache_node_suffixes(config.shards, config.replicas_per_shard, config.cluster_mode)
        ]
        self.register_outputs(
            {
                "primary_endpoint": self.primary_endpoint,
                "configuration_endpoint": self.configuration_endpoint,
                "port": self.port,
                "auth_secret_arn": self.auth_secret_arn,
                "security_group": self.security_group.id,
                "cluster_mode": self.cluster_mode,
                "node_ids": self.node_ids,
                "replicas_per_shard": self.replicas_per_shard,
                "evicts": self.evicts,
                "global_datastore": self.global_datastore.global_replication_group_id
                if self.global_datastore
                else None,
                "standby": self.standby.id if self.standby else None,
            }
        )

    def _cross_region(
        self, name: str, config: CacheConfig, standby: Standby, token: pulumi.Output[str], protect: bool
    ) -> None:
        """The global datastore and its secondary in the copy region (see the module docstring)."""
        self.global_datastore = aws.elasticache.GlobalReplicationGroup(
            f"{name}-global",
            global_replication_group_id_suffix=name,
            primary_replication_group_id=self.replication_group.id,
            global_replication_group_description=f"{name}: a live copy in {standby.region}",
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["primaryReplicationGroupId"]),
        )
        there = pulumi.ResourceOptions(parent=self, provider=standby.provider)
        subnets = aws.elasticache.SubnetGroup(
            f"{name}-standby",
            subnet_ids=standby.network.isolated_subnet_ids,
            description=f"{name}: the standby network's isolated subnets",
            opts=there,
        )
        group = aws.ec2.SecurityGroup(
            f"{name}-standby",
            vpc_id=standby.network.vpc_id,
            description=f"{name} standby: admits no client until a failover (add the DR cluster's nodes then)",
            tags={"Name": f"{name}-standby"},
            opts=there,
        )
        failover = config.replicas_per_shard > 0
        # A secondary takes its engine, version, node type, parameter group and encryption flags from the datastore:
        # terraform-provider-aws v6.58.0 internal/service/elasticache/replication_group.go marks them ConflictsWith
        # global_replication_group_id (read through lonegunmanb/terraform-provider-aws-index). AWS turns
        # AutoMinorVersionUpgrade off on a datastore's members (ElastiCache User Guide, global datastores,
        # "Prerequisites and limitations"); AUTH needs TLS, which the secondary inherits.
        self.standby = aws.elasticache.ReplicationGroup(
            f"{name}-standby",
            description=f"{name}: the global datastore's secondary in {standby.region}",
            global_replication_group_id=self.global_datastore.global_replication_group_id,
            replicas_per_node_group=config.replicas_per_shard,
            port=PORT,
            # The secondary inherits Multi-AZ and automatic failover from the primary; the provider does not
            # suppress the drift, so they are stated (and it refuses Multi-AZ without automatic failover).
            automatic_failover_enabled=failover or config.cluster_mode,
            multi_az_enabled=config.multi_az_enabled,
            subnet_group_name=subnets.name,
            security_group_ids=[group.id],
            auth_token=token,
            kms_key_id=standby.key.arn,
            snapshot_retention_limit=config.snapshot_retention_days,
            snapshot_window="02:00-03:00",
            maintenance_window="sun:05:30-sun:06:30",
            final_snapshot_identifier=f"{name}-standby-final" if protect else None,
            auto_minor_version_upgrade=False,
            apply_immediately=False,
            tags={
                "Name": f"{name}-standby",
                "keel.dev/replica-of": name,
                "keel.dev/node-type": config.node_type,
                "keel.dev/shards": str(config.shards),
            },
            opts=pulumi.ResourceOptions.merge(there, pulumi.ResourceOptions(protect=protect, retain_on_delete=protect)),
        )

    @property
    def endpoint(self) -> pulumi.Output[str]:
        """Where clients connect: the configuration endpoint in cluster mode, else the primary endpoint."""
        return self.configuration_endpoint if self.cluster_mode else self.primary_endpoint

    def grant_connect(self, role: aws.iam.Role) -> aws.iam.RolePolicy:
        """Let ``role`` read the AUTH token secret (decrypting it through Secrets Manager only)."""
        return grant_secret_read(f"cache-{self.label}", role, self.auth_secret_arn, self.key.arn, self.region)
