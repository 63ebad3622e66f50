"""keel: one stack of the platform. Thin on purpose: load and validate config, build, export.

Invalid config raises ``components.config.ConfigError`` (a ``pulumi.RunError``) here, before any resource is
registered, so ``pulumi preview`` prints the problems without a traceback.

Every output is in README.md's table of stack outputs (what it is, who reads it); a test holds the two together.
"""

import pulumi

from components import config
from components.platform import Platform

cfg = config.load()
platform = Platform(f"keel-{cfg.stack}", cfg)

pulumi.export("region", cfg.region)
pulumi.export("vpcId", platform.network.vpc_id)
pulumi.export("availabilityZones", platform.network.availability_zones)
pulumi.export("publicSubnetIds", platform.network.public_subnet_ids)
pulumi.export("privateSubnetIds", platform.network.private_subnet_ids)
pulumi.export("isolatedSubnetIds", platform.network.isolated_subnet_ids)
pulumi.export("natGatewayIds", platform.network.nat_gateway_ids)
if platform.cluster is not None:
    cluster = platform.cluster
    pulumi.export("clusterName", cluster.name)
    pulumi.export("clusterEndpoint", cluster.endpoint)
    # It names the cluster's endpoint and CA, no credential (`aws eks get-token` runs as whoever uses it); kept
    # secret all the same, as an admin's file, so neither `pulumi stack output` nor a preview prints it.
    pulumi.export("kubeconfig", pulumi.Output.secret(cluster.kubeconfig))
    pulumi.export("nodeRoleArn", cluster.node_role.arn)
    pulumi.export("nodeSecurityGroupId", cluster.node_security_group.id)
    pulumi.export("controlPlaneSecurityGroupId", cluster.control_plane_security_group.id)
if platform.database is not None:
    db = platform.database
    pulumi.export("databaseEndpoint", db.endpoint)
    pulumi.export("databaseSecretArn", db.master_secret_arn)
    pulumi.export("databaseSubnetGroupName", db.subnet_group_name)
    pulumi.export("databaseSecurityGroupId", db.security_group_id)
    pulumi.export("databaseParameterGroupName", db.parameter_group_name)
    pulumi.export("databaseReaderEndpoints", db.reader_endpoints)
    if db.proxy_endpoint is not None:
        pulumi.export("databaseProxyEndpoint", db.proxy_endpoint)
pulumi.export(
    "cacheEndpoints",
    {
        name: cache.configuration_endpoint if cache.cluster_mode else cache.primary_endpoint
        for name, cache in platform.caches.items()
    },
)
pulumi.export("cacheAuthSecretArns", {name: cache.auth_secret_arn for name, cache in platform.caches.items()})
pulumi.export(
    "cacheGlobalDatastores",
    {
        name: {"id": cache.global_datastore.global_replication_group_id, "secondary": cache.standby.id}
        for name, cache in platform.caches.items()
        if cache.global_datastore is not None and cache.standby is not None
    },
)
pulumi.export("bucketNames", {name: bucket.bucket for name, bucket in platform.buckets.buckets.items()})
pulumi.export("bucketReplicaNames", {name: bucket.bucket for name, bucket in platform.buckets.replicas.items()})
if platform.email is not None:
    pulumi.export("emailDnsRecords", platform.email.dns_records)
if platform.load_balancer is not None:
    pulumi.export("albDnsName", platform.load_balancer.dns_name)
    pulumi.export("certificateArn", platform.load_balancer.certificate_arn)
if platform.cdn is not None:
    pulumi.export("cdnDomainNames", platform.cdn.domain_names)
pulumi.export("repositoryUrls", {name: svc.repository_url for name, svc in platform.services.items()})
pulumi.export("serviceRoleArns", {name: svc.role_arn for name, svc in platform.services.items()})
pulumi.export(
    "serviceSecretArns", {name: dict(svc.secret_arns) for name, svc in platform.services.items() if svc.secret_arns}
)
if platform.observability is not None:
    pulumi.export("alertsTopicArn", platform.observability.topic_arn)
    if platform.observability.dashboard is not None:
        pulumi.export("dashboardName", platform.observability.dashboard.dashboard_name)
if platform.backup is not None:
    pulumi.export("backupVaultName", platform.backup.vault_name)
    if platform.backup.copy_vault is not None:
        pulumi.export("backupCopyVaultArn", platform.backup.copy_vault.arn)
