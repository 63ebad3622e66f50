"""Database: RDS PostgreSQL in the isolated subnets, reachable only from the cluster's nodes.

Usage::

    db = Database("keel-prod", cfg.database, protect=True, network=network,
                  client_security_group=cluster.node_security_group, opts=pulumi.ResourceOptions(parent=platform))
    db.endpoint, db.port, db.master_secret_arn

Creates (``<n>`` is the component name):

- ``<n>-database`` KMS key and alias: storage, Performance Insights, the master secret and the log groups.
- ``<n>-db`` subnet group (isolated subnets), ``<n>-db`` security group admitting 5432 only from the client
  security group (the node group's), no egress.
- ``<n>-db`` parameter group (``postgres<major>``): ``rds.force_ssl=1``, ``shared_buffers`` 25% and
  ``effective_cache_size`` 75% of the instance class's memory (:func:`tuning`), ``max_connections``,
  ``log_min_duration_statement``.
- ``<n>-db-postgresql`` and ``<n>-db-upgrade`` log groups (``/aws/rds/instance/<n>-db/...``), encrypted, with
  retention, created before RDS would create them without either.
- ``<n>-db-monitoring`` role for enhanced monitoring.
- ``<n>-db``: the instance (identifier ``<n>-db``): gp3 with storage autoscaling, encrypted with the key,
  master password managed by RDS in Secrets Manager (encrypted with the key), IAM authentication, not public,
  Multi-AZ, backups and PITR, log exports, Performance Insights, deletion protection and a final snapshot as
  configured, copy tags to snapshots, automatic minor upgrades; Pulumi ``protect`` when the stack protects.
- ``<n>-db-replica-<i>`` (``keel:database.readReplicas``, i from 1): read replicas of ``<n>-db``
  (``replicate_source_db`` its identifier), same class, key (storage and Performance Insights), parameter group,
  security group and enhanced monitoring, single-AZ in a zone other than the network's first (:func:`replica_zone`),
  not public, no backups of their own (``backup_retention_period=0``, ``skip_final_snapshot``: the primary's backups
  hold the data) and no backup selection tag; deletion protection and ``protect`` as the primary. Each with its
  own ``postgresql`` and ``upgrade`` log groups.

Depends only on the network and the client security group, never on the EKS cluster.

Outputs: ``instance``, ``replicas``, ``replica_identifiers``, ``reader_endpoints`` (the replicas' addresses),
``endpoint``, ``port``, ``master_secret_arn``, ``security_group``, ``key``, ``max_connections``,
``allocated_storage_gb``, and what a point-in-time restore goes into: ``subnet_group_name``, ``security_group_id``,
``parameter_group_name``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

from components import context
from components.config import DatabaseConfig
from components.iam import grant_secret_read, managed_policy
from components.keys import create_key, logs_may_use
from components.network import Network, security_group_admitting

PORT = 5432
LOG_EXPORTS = ("postgresql", "upgrade")
_VCPUS = {"large": 2, "xlarge": 4}
_BURSTABLE_GIB = {"micro": 1, "small": 2, "medium": 4, "large": 8, "xlarge": 16, "2xlarge": 32}
_GIB_PER_VCPU = {"m": 4, "r": 8}


def memory_gib(instance_class: str) -> int:
    """Memory of an RDS instance class, from its family and size (``db.r6g.xlarge`` -> 32)."""
    _, family, size = instance_class.split(".")
    if family.startswith("t"):
        return _BURSTABLE_GIB[size]
    if size in _VCPUS:
        vcpus = _VCPUS[size]
    else:
        match = re.fullmatch(r"(\d+)xlarge", size)
        if match is None:
            raise ValueError(f"unknown instance size {size!r} in {instance_class!r}")
        vcpus = 4 * int(match.group(1))
    return vcpus * _GIB_PER_VCPU[family[0]]


def tuning(instance_class: str, max_connections: int, slow_query_ms: int) -> dict[str, str]:
    """PostgreSQL parameters from the source design. ``shared_buffers`` and ``effective_cache_size`` are
    counted in 8 kB pages, as PostgreSQL expects them."""
    pages = memory_gib(instance_class) * 1024 * 1024 // 8
    return {
        "shared_buffers": str(pages // 4),
        "effective_cache_size": str(pages * 3 // 4),
        "max_connections": str(max_connections),
        "log_min_duration_statement": str(slow_query_ms),
        "rds.force_ssl": "1",
    }


def replica_zone(zones: list[str], index: int) -> str:
    """The zone of read replica ``index`` (0-based): the zones after the network's first, in turn, never the first.
    The primary sets no zone (RDS picks it at creation, and a Multi-AZ failover moves it), so this is "not the
    network's first zone", deterministic across previews; it is not a promise that the primary is elsewhere."""
    if len(zones) < 2:
        raise ValueError(f"read replicas need at least 2 zones; got {zones}")
    return zones[1 + index % (len(zones) - 1)]


#: Parameters PostgreSQL reads only at start: applied at the next reboot, never by surprise.
STATIC_PARAMETERS = ("shared_buffers", "max_connections")


class Database(pulumi.ComponentResource):
    """RDS PostgreSQL for the platform's services."""

    instance: aws.rds.Instance
    replicas: list[aws.rds.Instance]
    replica_identifiers: list[str]
    reader_endpoints: list[pulumi.Output[str]]
    """The read replicas' addresses (``keel:database.readReplicas``), in order."""
    endpoint: pulumi.Output[str]
    port: int
    master_secret_arn: pulumi.Output[str]
    security_group: aws.ec2.SecurityGroup
    security_group_id: pulumi.Output[str]
    subnet_group_name: pulumi.Output[str]
    """The DB subnet group (isolated subnets) a restored instance goes into."""
    parameter_group_name: pulumi.Output[str]
    """The parameter group (TLS only, tuning) a restored instance must use."""
    key: aws.kms.Key
    region: str
    database_name: str
    identifier: str
    max_connections: int
    """The ``max_connections`` the parameter group sets (the connections alarm's ceiling)."""
    allocated_storage_gb: int
    """The storage allocated at creation (the free-storage alarm's reference)."""

    def __init__(
        self,
        name: str,
        config: DatabaseConfig,
        *,
        network: Network,
        client_security_group: aws.ec2.SecurityGroup,
        protect: bool = True,
        backup_tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``config``: the ``keel:database`` section (engine, sizing, backups, log retention, protection).
        ``network``: the isolated subnets it lives in; ``client_security_group``: the only group admitted on 5432.
        ``protect``: True puts ``protect`` and ``retainOnDelete`` on the instance and its key.
        ``backup_tags``: None or empty, no backup plan selects the instance; ``Backup.tag``, the plan picks it up."""
        super().__init__("keel:database:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ctx = context.lookup(pulumi.InvokeOptions(parent=self))
        identifier = f"{name}-db"
        self.identifier = identifier
        self.max_connections = config.max_connections
        self.allocated_storage_gb = config.allocated_storage_gb
        self.database_name = config.database_name
        groups = {kind: f"/aws/rds/instance/{identifier}/{kind}" for kind in LOG_EXPORTS}
        self.replica_identifiers = [f"{identifier}-replica-{i + 1}" for i in range(config.read_replicas)]
        replica_groups = {
            replica: {kind: f"/aws/rds/instance/{replica}/{kind}" for kind in LOG_EXPORTS}
            for replica in self.replica_identifiers
        }
        every_group = [*groups.values(), *(g for rg in replica_groups.values() for g in rg.values())]
        self.key = create_key(
            f"{name}-database",
            "RDS storage, Performance Insights, the master secret and PostgreSQL logs",
            ctx,
            service_statements=[logs_may_use(ctx, [ctx.arn("logs", f"log-group:{g}") for g in every_group])],
            protect=protect,
            opts=pulumi.ResourceOptions(parent=self),
        )
        subnets = aws.rds.SubnetGroup(
            identifier, subnet_ids=network.isolated_subnet_ids, description=f"{name}: isolated subnets", opts=child
        )
        self.security_group = security_group_admitting(
            identifier, network=network, port=PORT, client=client_security_group, what="PostgreSQL", opts=child
        )
        major = config.engine_version.split(".")[0]
        parameters = aws.rds.ParameterGroup(
            identifier,
            family=f"postgres{major}",
            # The description forces a new parameter group (terraform-provider-aws rds/parameter_group.go:
            # ForceNew), so it names nothing that changes: a new instance class retunes the parameters in place.
            # Stacks created before keep their old description (ignore_changes): no replacement of keel's making.
            description=f"{name}: TLS only, tuned to the instance class",
            parameters=[
                aws.rds.ParameterGroupParameterArgs(
                    name=key, value=value, apply_method="pending-reboot" if key in STATIC_PARAMETERS else "immediate"
                )
                for key, value in tuning(config.instance_class, config.max_connections, config.slow_query_ms).items()
            ],
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(ignore_changes=["description"])),
        )
        log_groups = self._log_groups(identifier, groups, config.log_retention_days, protect)
        monitoring = aws.iam.Role(
            f"{identifier}-monitoring",
            description=f"{name}: RDS enhanced monitoring",
            assume_role_policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "monitoring.rds.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                            "Condition": {"StringEquals": {"aws:SourceAccount": ctx.account}},
                        }
                    ],
                }
            ),
            opts=child,
        )
        monitoring_policy = aws.iam.RolePolicyAttachment(
            f"{identifier}-monitoring",
            role=monitoring.name,
            policy_arn=managed_policy(ctx.partition, "service-role/AmazonRDSEnhancedMonitoringRole"),
            opts=child,
        )
        self.instance = aws.rds.Instance(
            identifier,
            identifier=identifier,
            engine="postgres",
            engine_version=config.engine_version,
            instance_class=config.instance_class,
            db_name=config.database_name,
            username=config.master_username,
            manage_master_user_password=True,
            master_user_secret_kms_key_id=self.key.arn,
            iam_database_authentication_enabled=True,
            port=PORT,
            storage_type="gp3",
            allocated_storage=config.allocated_storage_gb,
            max_allocated_storage=config.max_allocated_storage_gb,
            storage_encrypted=True,
            kms_key_id=self.key.arn,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=[self.security_group.id],
            publicly_accessible=False,
            multi_az=config.multi_az,
            parameter_group_name=parameters.name,
            ca_cert_identifier="rds-ca-rsa2048-g1",
            backup_retention_period=config.backup_retention_days,
            backup_window=config.backup_window,
            maintenance_window=config.maintenance_window,
            copy_tags_to_snapshot=True,
            auto_minor_version_upgrade=True,
            allow_major_version_upgrade=False,
            deletion_protection=config.deletion_protection,
            skip_final_snapshot=not config.final_snapshot,
            final_snapshot_identifier=f"{identifier}-final" if config.final_snapshot else None,
            delete_automated_backups=not protect,
            enabled_cloudwatch_logs_exports=list(LOG_EXPORTS),
            performance_insights_enabled=True,
            performance_insights_kms_key_id=self.key.arn,
            performance_insights_retention_period=7,
            monitoring_interval=60,
            monitoring_role_arn=monitoring.arn,
            apply_immediately=False,
            tags={"Name": identifier, **(backup_tags or {})},
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=protect,
                retain_on_delete=protect,
                depends_on=[*log_groups, monitoring_policy],
            ),
        )
        self.replicas = [
            self._replica(
                replica,
                config,
                source=self.instance,
                zone=replica_zone(network.availability_zones, index),
                parameter_group=parameters.name,
                monitoring_role=monitoring.arn,
                log_groups=replica_groups[replica],
                protect=protect,
            )
            for index, replica in enumerate(self.replica_identifiers)
        ]
        self.reader_endpoints = [replica.address for replica in self.replicas]
        self.region = ctx.region
        self.subnet_group_name = subnets.name
        self.security_group_id = self.security_group.id
        self.parameter_group_name = parameters.name
        self.endpoint = self.instance.address
        self.port = PORT
        self.master_secret_arn = self.instance.master_user_secrets.apply(
            lambda secrets: str(secrets[0].secret_arn or "") if secrets else ""
        )
        self.register_outputs(
            {
                "endpoint": self.endpoint,
                "port": self.port,
                "master_secret_arn": self.master_secret_arn,
                "security_group": self.security_group.id,
                "subnet_group_name": self.subnet_group_name,
                "parameter_group_name": self.parameter_group_name,
                "max_connections": self.max_connections,
                "allocated_storage_gb": self.allocated_storage_gb,
                "reader_endpoints": self.reader_endpoints,
            }
        )

    def _replica(
        self,
        identifier: str,
        config: DatabaseConfig,
        *,
        source: aws.rds.Instance,
        zone: str,
        parameter_group: pulumi.Input[str],
        monitoring_role: pulumi.Input[str],
        log_groups: Mapping[str, str],
        protect: bool,
    ) -> aws.rds.Instance:
        """One read replica of ``source`` (see the module docstring). Engine, version, master user, database
        name and subnet group come from the source (a same-region ``replicate_source_db`` is the source's
        identifier, and the provider refuses a subnet group unless it is an ARN)."""
        created = self._log_groups(identifier, log_groups, config.log_retention_days, protect)
        return aws.rds.Instance(
            identifier,
            identifier=identifier,
            replicate_source_db=source.identifier,
            instance_class=config.instance_class,
            availability_zone=zone,
            multi_az=False,
            storage_type="gp3",
            allocated_storage=config.allocated_storage_gb,
            max_allocated_storage=config.max_allocated_storage_gb,
            storage_encrypted=True,
            kms_key_id=self.key.arn,
            vpc_security_group_ids=[self.security_group.id],
            publicly_accessible=False,
            parameter_group_name=parameter_group,
            ca_cert_identifier="rds-ca-rsa2048-g1",
            iam_database_authentication_enabled=True,
            port=PORT,
            # No backups of its own: the primary's automated backups, PITR and the backup plan hold the data; a
            # replica is rebuilt from the primary. Nothing to snapshot on deletion either.
            backup_retention_period=0,
            skip_final_snapshot=True,
            delete_automated_backups=False,
            copy_tags_to_snapshot=True,
            maintenance_window=config.maintenance_window,
            auto_minor_version_upgrade=True,
            allow_major_version_upgrade=False,
            deletion_protection=config.deletion_protection,
            enabled_cloudwatch_logs_exports=list(LOG_EXPORTS),
            performance_insights_enabled=True,
            performance_insights_kms_key_id=self.key.arn,
            performance_insights_retention_period=7,
            monitoring_interval=60,
            monitoring_role_arn=monitoring_role,
            apply_immediately=False,
            # No backup selection tag: backup selection is unchanged, replicas are not backed up.
            tags={
                "Name": identifier,
                "keel.dev/replica-of": self.identifier,
                "keel.dev/backup-exempt": f"read replica of {self.identifier}, whose backups hold its data",
            },
            opts=pulumi.ResourceOptions(
                parent=self, protect=protect, retain_on_delete=protect, depends_on=[*created, source]
            ),
        )

    def _log_groups(
        self, identifier: str, groups: Mapping[str, str], retention_days: int, protect: bool
    ) -> list[aws.cloudwatch.LogGroup]:
        """An instance's PostgreSQL log groups (``<identifier>-<kind>``), created before RDS would create them
        unencrypted and kept forever: on the database key, with the configured retention."""
        return [
            aws.cloudwatch.LogGroup(
                f"{identifier}-{kind}",
                name=group,
                kms_key_id=self.key.arn,
                retention_in_days=retention_days,
                opts=pulumi.ResourceOptions(parent=self, protect=protect),
            )
            for kind, group in groups.items()
        ]

    def grant_secret_read(self, role: aws.iam.Role) -> aws.iam.RolePolicy:
        """Let ``role`` read the master secret (and decrypt it through Secrets Manager only)."""
        return grant_secret_read("database-secret", role, self.master_secret_arn, self.key.arn, self.region)
