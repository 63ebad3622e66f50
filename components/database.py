"""Database: RDS PostgreSQL in the isolated subnets, reachable only from the cluster's nodes.

Usage::

    db = Database("keel-prod", cfg.database, protect=True, network=network,
                  client_security_group=cluster.node_security_group, opts=pulumi.ResourceOptions(parent=platform))
    db.endpoint, db.port, db.master_secret_arn
    db.grant_connect(role)   # with keel:database.proxy: rds-db:connect through the proxy, no secret

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
- With ``keel:database.proxy`` (:meth:`Database.grant_connect` lets a role in): ``<n>-db-proxy`` security group
  admitting 5432 only from the client security group, egress only to 5432 of ``<n>-db``'s group, which admits it
  (``<n>-db-from-proxy``); ``<n>-db-proxy`` role that only RDS (for this account) assumes, reading only the master
  secret, decrypting it only through Secrets Manager; ``<n>-db-proxy`` log group (``/aws/rds/proxy/<n>-db-proxy``,
  encrypted, with retention); ``<n>-db-proxy``: the RDS Proxy (name ``<n>-db-proxy``) in the isolated subnets,
  TLS required, IAM authentication required, logging in with the master secret, no debug logging, tagged with the
  instance class's vCPUs (``keel.dev/vcpus``: what the proxy is billed on); its default target group (the pool's
  settings) and its target, the primary.

Depends only on the network and the client security group, never on the EKS cluster.

Outputs: ``instance``, ``replicas``, ``replica_identifiers``, ``reader_endpoints`` (the replicas' addresses),
``endpoint``, ``port``, ``master_secret_arn``, ``security_group``, ``key``, ``max_connections``,
``allocated_storage_gb``, ``proxy``, ``proxy_endpoint`` and ``proxy_arn`` (None without ``keel:database.proxy``), and
what a point-in-time restore goes into: ``subnet_group_name``, ``security_group_id``, ``parameter_group_name``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws

from components import context
from components.config import DatabaseConfig
from components.config.data import ProxyConfig
from components.iam import Statement, document, grant_secret_read, managed_policy, statement
from components.keys import create_key, logs_may_use
from components.network import Network, security_group_admitting

PORT = 5432
LOG_EXPORTS = ("postgresql", "upgrade")
#: The tag on the proxy that carries its instance class's vCPUs: RDS Proxy is billed per vCPU of the database it
#: fronts, which its own inputs do not say (``keel cost`` reads the tag).
VCPUS_TAG = "keel.dev/vcpus"
# vCPUs and memory per size, from the RDS User Guide's "Hardware specifications for DB instance classes"
# (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Concepts.DBInstanceClass.Summary.html): burstable sizes
# have 2 vCPUs up to large; m and r sizes have 2 per large and 4 per xlarge, with 4, 8, 16 or 32 GiB per vCPU.
_VCPUS = {"large": 2, "xlarge": 4}
_BURSTABLE_VCPUS = {"micro": 2, "small": 2, "medium": 2, "large": 2, "xlarge": 4, "2xlarge": 8}
_BURSTABLE_GIB = {"micro": 1, "small": 2, "medium": 4, "large": 8, "xlarge": 16, "2xlarge": 32}
_GIB_PER_VCPU = {"m": 4, "r": 8}


def vcpus(instance_class: str) -> int:
    """vCPUs of an RDS instance class, from its family and size (``db.r6g.xlarge`` -> 4, ``db.t4g.medium`` -> 2)."""
    _, family, size = instance_class.split(".")
    if family.startswith("t"):
        if size not in _BURSTABLE_VCPUS:
            raise ValueError(f"unknown instance size {size!r} in {instance_class!r}")
        return _BURSTABLE_VCPUS[size]
    if size in _VCPUS:
        return _VCPUS[size]
    match = re.fullmatch(r"(\d+)xlarge", size)
    if match is None:
        raise ValueError(f"unknown instance size {size!r} in {instance_class!r}")
    return 4 * int(match.group(1))


def memory_gib(instance_class: str) -> int:
    """Memory of an RDS instance class, from its family and size (``db.r6g.xlarge`` -> 32)."""
    _, family, size = instance_class.split(".")
    if family.startswith("t"):
        return _BURSTABLE_GIB[size]
    return vcpus(instance_class) * _GIB_PER_VCPU[family[0]]


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


def proxy_trust_policy(account: str) -> dict[str, Any]:
    """Only RDS, acting for this account, may assume the proxy's role (RDS User Guide, "Configuring IAM
    authentication for RDS Proxy", https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/rds-proxy-iam-setup.html:
    the role trusts ``rds.amazonaws.com``; ``aws:SourceAccount`` as keel's other service roles)."""
    return document(
        [
            {
                "Effect": "Allow",
                "Principal": {"Service": "rds.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            }
        ]
    )


def proxy_secret_statements(secret_arn: str, key_arn: str, region: str) -> list[Statement]:
    """What the proxy's role may do: read the master secret's value (nothing else, not even ``DescribeSecret``) and
    decrypt it with the database key only through Secrets Manager (RDS User Guide, "Configuring IAM authentication
    for RDS Proxy": ``secretsmanager:GetSecretValue`` on the secrets, ``kms:Decrypt`` with ``kms:ViaService``
    ``secretsmanager.<region>.amazonaws.com``)."""
    return [
        statement("secretsmanager:GetSecretValue", secret_arn, sid="ReadMasterSecret"),
        statement(
            "kms:Decrypt",
            key_arn,
            {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
            sid="DecryptThroughSecretsManager",
        ),
    ]


def proxy_user_arn(partition: str, region: str, account: str, proxy_arn: str, user: str) -> str:
    """The ``rds-db:connect`` resource of ``user`` through a proxy: the proxy's resource id (``prx-...``, the last
    ``:``-separated part of its ARN) where a DB instance's policy names the instance's resource id. AWS: RDS User
    Guide, "Creating and using an IAM policy for IAM database access"
    (``arn:aws:rds-db:<region>:<account>:dbuser:<DbiResourceId>/<user>``) and "Connecting to a database through RDS
    Proxy", IAM authentication (``dbuser:prx-ABCDEFGHIJKL01234/db_user``)."""
    resource_id = proxy_arn.rsplit(":", 1)[-1]
    if not resource_id.startswith("prx-"):
        raise ValueError(f"not an RDS Proxy ARN: {proxy_arn!r} (its last part is {resource_id!r}, not prx-...)")
    return f"arn:{partition}:rds-db:{region}:{account}:dbuser:{resource_id}/{user}"


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
    master_username: str
    proxy: aws.rds.Proxy | None
    """The RDS Proxy (``keel:database.proxy``), None without one."""
    proxy_security_group: aws.ec2.SecurityGroup | None
    proxy_endpoint: pulumi.Output[str] | None
    """Where ``database:connect`` services connect (TLS, IAM token), None without a proxy."""
    proxy_arn: pulumi.Output[str] | None

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
        self.master_username = config.master_username
        self._ctx = ctx
        groups = {kind: f"/aws/rds/instance/{identifier}/{kind}" for kind in LOG_EXPORTS}
        # RDS Proxy logs to /aws/rds/proxy/<proxy name>, creating the group itself (unencrypted, kept forever)
        # unless it exists: created here, as the instance's are.
        proxy_group = f"/aws/rds/proxy/{identifier}-proxy" if config.proxy is not None else None
        self.replica_identifiers = [f"{identifier}-replica-{i + 1}" for i in range(config.read_replicas)]
        replica_groups = {
            replica: {kind: f"/aws/rds/instance/{replica}/{kind}" for kind in LOG_EXPORTS}
            for replica in self.replica_identifiers
        }
        every_group = [
            *groups.values(),
            *(g for rg in replica_groups.values() for g in rg.values()),
            *([proxy_group] if proxy_group else []),
        ]
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
            db_subnet_group_name=subnets.name,
            multi_az=config.multi_az,
            backup_retention_period=config.backup_retention_days,
            backup_window=config.backup_window,
            skip_final_snapshot=not config.final_snapshot,
            final_snapshot_identifier=f"{identifier}-final" if config.final_snapshot else None,
            delete_automated_backups=not protect,
            tags={"Name": identifier, **(backup_tags or {})},
            **self._instance_settings(config, parameters.name, monitoring.arn),
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
        self.proxy = self.proxy_security_group = None
        self.proxy_endpoint = self.proxy_arn = None
        if config.proxy is not None and proxy_group is not None:
            self.proxy = self._proxy(
                f"{identifier}-proxy",
                config,
                config.proxy,
                network=network,
                client=client_security_group,
                log_group=proxy_group,
                protect=protect,
            )
            self.proxy_endpoint = self.proxy.endpoint
            self.proxy_arn = self.proxy.arn
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
                "proxy_endpoint": self.proxy_endpoint,
                "proxy_arn": self.proxy_arn,
            }
        )

    def _proxy(
        self,
        name: str,
        config: DatabaseConfig,
        proxy: ProxyConfig,
        *,
        network: Network,
        client: aws.ec2.SecurityGroup,
        log_group: str,
        protect: bool,
    ) -> aws.rds.Proxy:
        """The RDS Proxy ``name`` in front of the primary, and what it needs (see the module docstring)."""
        child = pulumi.ResourceOptions(parent=self)
        ctx = self._ctx
        self.proxy_security_group = group = security_group_admitting(
            name, network=network, port=PORT, client=client, what="PostgreSQL through RDS Proxy", opts=child
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-to-db",
            security_group_id=group.id,
            referenced_security_group_id=self.security_group.id,
            ip_protocol="tcp",
            from_port=PORT,
            to_port=PORT,
            description="RDS Proxy to the database",
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{self.identifier}-from-proxy",
            security_group_id=self.security_group.id,
            referenced_security_group_id=group.id,
            ip_protocol="tcp",
            from_port=PORT,
            to_port=PORT,
            description="PostgreSQL from the database's RDS Proxy",
            opts=child,
        )
        role = aws.iam.Role(
            name,
            description=f"{name}: RDS Proxy reads the master secret",
            assume_role_policy=json.dumps(proxy_trust_policy(ctx.account)),
            opts=child,
        )
        secret_read = aws.iam.RolePolicy(
            name,
            role=role.id,
            policy=pulumi.Output.all(self.master_secret_arn, self.key.arn).apply(
                lambda values: json.dumps(document(proxy_secret_statements(values[0], values[1], ctx.region)))
            ),
            opts=child,
        )
        logs = aws.cloudwatch.LogGroup(
            name,
            name=log_group,
            kms_key_id=self.key.arn,
            retention_in_days=config.log_retention_days,
            opts=pulumi.ResourceOptions(parent=self, protect=protect),
        )
        # Arguments: pulumi-aws 7.51.1 rds/proxy.py (terraform-provider-aws internal/service/rds/proxy.go).
        # default_auth_scheme NONE: clients authenticate as ``auths`` says (IAM_AUTH would be end-to-end IAM, the
        # proxy logging in to the database with IAM too; RDS API Reference, CreateDBProxy, DefaultAuthScheme).
        # auths: the proxy logs in with the master secret (SECRETS); clients must bring an IAM token (iam_auth
        # REQUIRED; UserAuthConfig.IAMAuth), over SCRAM-SHA-256 between client and proxy (ClientPasswordAuthType).
        created = aws.rds.Proxy(
            name,
            name=name,
            engine_family="POSTGRESQL",
            require_tls=True,
            debug_logging=False,
            default_auth_scheme="NONE",
            idle_client_timeout=proxy.idle_client_timeout_seconds,
            role_arn=role.arn,
            vpc_subnet_ids=network.isolated_subnet_ids,
            vpc_security_group_ids=[group.id],
            auths=[
                aws.rds.ProxyAuthArgs(
                    auth_scheme="SECRETS",
                    description=f"{self.identifier}'s master user, through IAM authentication only",
                    secret_arn=self.master_secret_arn,
                    iam_auth="REQUIRED",
                    client_password_auth_type="POSTGRES_SCRAM_SHA_256",  # noqa: S106 (a scheme, no password)
                )
            ],
            tags={"Name": name, VCPUS_TAG: str(vcpus(config.instance_class))},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[secret_read, logs]),
        )
        # ConnectionPoolConfiguration (RDS API Reference): percentages of the instance's max_connections.
        pool = aws.rds.ProxyDefaultTargetGroup(
            name,
            db_proxy_name=created.name,
            connection_pool_config=aws.rds.ProxyDefaultTargetGroupConnectionPoolConfigArgs(
                connection_borrow_timeout=proxy.connection_borrow_timeout_seconds,
                max_connections_percent=proxy.max_connections_percent,
                max_idle_connections_percent=proxy.max_idle_connections_percent,
            ),
            opts=child,
        )
        aws.rds.ProxyTarget(
            name,
            db_proxy_name=created.name,
            target_group_name=pool.name,
            db_instance_identifier=self.instance.identifier,
            opts=child,
        )
        return created

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
            # No backups of its own: the primary's automated backups, PITR and the backup plan hold the data; a
            # replica is rebuilt from the primary. Nothing to snapshot on deletion either.
            backup_retention_period=0,
            skip_final_snapshot=True,
            delete_automated_backups=False,
            # No backup selection tag: backup selection is unchanged, replicas are not backed up.
            tags={
                "Name": identifier,
                "keel.dev/replica-of": self.identifier,
                "keel.dev/backup-exempt": f"read replica of {self.identifier}, whose backups hold its data",
            },
            **self._instance_settings(config, parameter_group, monitoring_role),
            opts=pulumi.ResourceOptions(
                parent=self, protect=protect, retain_on_delete=protect, depends_on=[*created, source]
            ),
        )

    def _instance_settings(
        self, config: DatabaseConfig, parameter_group: pulumi.Input[str], monitoring_role: pulumi.Input[str]
    ) -> dict[str, Any]:
        """What the primary and each read replica share, set in one place so a replica never drifts from its
        primary: gp3 storage and its autoscaling ceiling, encryption with the database key, the security group,
        never public, the parameter group, the current CA, IAM authentication, the port, maintenance, upgrades,
        deletion protection, log exports, Performance Insights and enhanced monitoring."""
        return {
            "storage_type": "gp3",
            "allocated_storage": config.allocated_storage_gb,
            "max_allocated_storage": config.max_allocated_storage_gb,
            "storage_encrypted": True,
            "kms_key_id": self.key.arn,
            "vpc_security_group_ids": [self.security_group.id],
            "publicly_accessible": False,
            "parameter_group_name": parameter_group,
            "ca_cert_identifier": "rds-ca-rsa2048-g1",
            "iam_database_authentication_enabled": True,
            "port": PORT,
            "copy_tags_to_snapshot": True,
            "maintenance_window": config.maintenance_window,
            "auto_minor_version_upgrade": True,
            "allow_major_version_upgrade": False,
            "deletion_protection": config.deletion_protection,
            "enabled_cloudwatch_logs_exports": list(LOG_EXPORTS),
            "performance_insights_enabled": True,
            "performance_insights_kms_key_id": self.key.arn,
            "performance_insights_retention_period": 7,
            "monitoring_interval": 60,
            "monitoring_role_arn": monitoring_role,
            "apply_immediately": False,
        }

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

    def grant_connect(self, role: aws.iam.Role) -> aws.iam.RolePolicy:
        """Let ``role`` connect through the proxy as the master user with an IAM token: ``<role>-database-connect``,
        exactly ``rds-db:connect`` on that user at this proxy (:func:`proxy_user_arn`), no secret."""
        if self.proxy_arn is None:
            raise ValueError(f"{self.identifier} has no RDS Proxy (keel:database.proxy): nothing to connect through")
        ctx, user = self._ctx, self.master_username
        doc = self.proxy_arn.apply(
            lambda arn: json.dumps(
                document(
                    [
                        statement(
                            "rds-db:connect",
                            proxy_user_arn(ctx.partition, ctx.region, ctx.account, arn, user),
                            sid="ConnectThroughProxy",
                        )
                    ]
                )
            )
        )
        return aws.iam.RolePolicy(
            f"{role.pulumi_resource_name}-database-connect",
            role=role.id,
            policy=doc,
            opts=pulumi.ResourceOptions(parent=role),
        )
