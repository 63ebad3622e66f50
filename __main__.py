"""keel: one stack of the platform. Thin on purpose: load and validate config, build, export.

Invalid config raises ``components.config.ConfigError`` (a ``pulumi.RunError``) here, before any resource is
registered, so ``pulumi preview`` prints the problems without a traceback.
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
    pulumi.export("clusterName", platform.cluster.name)
    pulumi.export("clusterEndpoint", platform.cluster.endpoint)
if platform.database is not None:
    pulumi.export("databaseEndpoint", platform.database.endpoint)
    pulumi.export("databaseSecretArn", platform.database.master_secret_arn)
pulumi.export(
    "cacheEndpoints",
    {
        name: cache.configuration_endpoint if cache.cluster_mode else cache.primary_endpoint
        for name, cache in platform.caches.items()
    },
)
pulumi.export("bucketNames", {name: bucket.bucket for name, bucket in platform.buckets.buckets.items()})
if platform.email is not None:
    pulumi.export("emailDnsRecords", platform.email.dns_records)
if platform.load_balancer is not None:
    pulumi.export("albDnsName", platform.load_balancer.dns_name)
if platform.observability is not None:
    pulumi.export("alertsTopicArn", platform.observability.topic_arn)
    if platform.observability.dashboard is not None:
        pulumi.export("dashboardName", platform.observability.dashboard.dashboard_name)
if platform.backup is not None:
    pulumi.export("backupVaultName", platform.backup.vault_name)
    if platform.backup.copy_vault is not None:
        pulumi.export("backupCopyVaultArn", platform.backup.copy_vault.arn)
