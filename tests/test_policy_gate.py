"""The prod gate's regression suite: single insecure or unreliable changes to the prod preview, each of which
`keel policy --stack prod` must block (exit 1) with a new mandatory violation naming the policy that owns it.

Each case is one change a reviewer would block: one input of one resource set or removed, one resource dropped,
or one resource option changed. Running the pack costs about a second and a half, so the cases run in batches:
a batch holds cases on different resources, and every violation of a batch must be one some case of the batch
expects (so no case hides behind another's finding, and no finding goes unexplained)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from keel import cli, policy
from keel.engine import Preview
from policies.rules import ALL
from tests.helpers import ROOT, policy_config, policy_config_file
from tests.test_policy_pack import DELETE, KEEP_ONE_IMAGE, check_resource, check_stack, patch

Doc = dict[str, Any]


@dataclass(frozen=True)
class Case:
    """``change`` sets dotted input paths (DELETE removes one); ``drop`` removes the resource; ``top`` sets
    resource options (``protect``). ``expect``: the (policy, resource reported) pairs the change must add, all
    mandatory; ``at`` defaults to the changed resource."""

    id: str
    type: str
    name: str
    policy: str
    change: dict[str, Any] = field(default_factory=dict)
    drop: bool = False
    top: dict[str, Any] = field(default_factory=dict)
    at: str | None = None
    also: tuple[tuple[str, str], ...] = ()

    @property
    def expect(self) -> set[tuple[str, str]]:
        return {(self.policy, self.at or self.name), *self.also}


def apply(doc: Doc, case: Case) -> None:
    """Apply one case to ``doc`` in place; the resource must exist exactly once."""
    found = [
        step
        for step in doc["steps"]
        if step["newState"]["type"] == case.type and step["urn"].endswith(f"::{case.name}")
    ]
    assert len(found) == 1, (case.id, len(found))
    step = found[0]
    if case.drop:
        doc["steps"].remove(step)
        return
    step["newState"]["inputs"] = patch(step["newState"]["inputs"], case.change)
    step["newState"].update(case.top)


def statement_policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


TLS_DENY = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": "*",
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
RDS = "aws:rds/instance:Instance"
CACHE = "aws:elasticache/replicationGroup:ReplicationGroup"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
ALB = "aws:lb/loadBalancer:LoadBalancer"
NODE_GROUP = "eks:index:ManagedNodeGroup"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
WEB = "spec.template.spec.containers.0"

CASES: list[Case] = [
    # ---------------------------------------------------------------- database
    Case("rds-retention-short", RDS, "keel-prod-db", "aws-rds-instance-backup-retention", {"backupRetentionPeriod": 3}),
    Case(
        "rds-iam-auth-off",
        RDS,
        "keel-prod-db",
        "aws-rds-instance-iam-authentication",
        {"iamDatabaseAuthenticationEnabled": False},
    ),
    Case("rds-unencrypted", RDS, "keel-prod-db", "aws-rds-instance-storage-encrypted-cmk", {"storageEncrypted": False}),
    Case("rds-public", RDS, "keel-prod-db", "aws-rds-instance-disallow-public-access", {"publiclyAccessible": True}),
    Case("rds-single-az", RDS, "keel-prod-db", "aws-rds-instance-multi-az", {"multiAz": False}),
    Case("rds-no-final-snapshot", RDS, "keel-prod-db", "aws-rds-instance-final-snapshot", {"skipFinalSnapshot": True}),
    Case("rds-expired-ca", RDS, "keel-prod-db", "aws-rds-instance-current-ca", {"caCertIdentifier": "rds-ca-2019"}),
    Case(
        "rds-no-log-exports", RDS, "keel-prod-db", "aws-rds-instance-log-exports", {"enabledCloudwatchLogsExports": []}
    ),
    Case("rds-unprotected", RDS, "keel-prod-db", "stack-stateful-resources-protected", top={"protect": False}),
    Case(
        "rds-plain-connections",
        "aws:rds/parameterGroup:ParameterGroup",
        "keel-prod-db",
        "aws-rds-parameter-group-force-ssl",
        {"parameters.4.value": "0"},
    ),
    Case(
        "rds-backups-not-replicated",
        "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication",
        "keel-prod-db-pitr",
        "aws-rds-backups-replicated-to-another-region",
        drop=True,
        at="keel-prod-db",
    ),
    # ---------------------------------------------------------------- caches
    Case(
        "cache-tls-preferred",
        CACHE,
        "keel-prod-cache",
        "aws-elasticache-in-transit-encryption-auth",
        {"transitEncryptionMode": "preferred"},
    ),
    Case(
        "cache-no-replica",
        CACHE,
        "keel-prod-queue",
        "aws-elasticache-automatic-failover-multi-az",
        {"replicasPerNodeGroup": 0},
    ),
    Case(
        "cache-no-snapshots",
        CACHE,
        "keel-prod-cache",
        "aws-elasticache-snapshot-retention",
        {"snapshotRetentionLimit": 1},
    ),
    Case(
        "queue-evicts",
        "aws:elasticache/parameterGroup:ParameterGroup",
        "keel-prod-queue",
        "aws-elasticache-queue-noeviction",
        {"parameters.0.value": "allkeys-lru"},
    ),
    # ---------------------------------------------------------------- buckets
    Case(
        "bucket-versioning-suspended",
        "aws:s3/bucketVersioning:BucketVersioning",
        "keel-prod-artifacts",
        "aws-s3-bucket-versioning-enabled",
        {"versioningConfiguration.status": "Suspended"},
    ),
    Case(
        "bucket-public-acls-honoured",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "keel-prod-uploads",
        "aws-s3-bucket-public-access-block-all",
        {"ignorePublicAcls": False},
    ),
    Case(
        "bucket-policy-public-read",
        "aws:s3/bucketPolicy:BucketPolicy",
        "keel-prod-artifacts",
        "aws-s3-bucket-policy-no-public-principal",
        {
            "policy": statement_policy(
                TLS_DENY, {"Sid": "PublicRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}
            )
        },
    ),
    Case(
        "bucket-access-log-removed",
        "aws:s3/bucketLogging:BucketLogging",
        "keel-prod-uploads",
        "aws-s3-bucket-access-logging",
        drop=True,
    ),
    Case(
        "bucket-cors-any-origin",
        "aws:s3/bucketCorsConfiguration:BucketCorsConfiguration",
        "keel-prod-uploads",
        "aws-s3-bucket-cors-restricted-origins",
        {"corsRules.0.allowedOrigins": ["*"]},
    ),
    Case(
        "bucket-force-destroy",
        "aws:s3/bucket:Bucket",
        "keel-prod-artifacts",
        "stack-stateful-no-force-delete",
        {"forceDestroy": True},
    ),
    Case(
        "bucket-multipart-never-aborted",
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "keel-prod-logs",
        "aws-s3-bucket-lifecycle-aborts-multipart",
        {"rules": [{"id": "expire", "status": "Enabled", "filter": {"prefix": ""}, "expiration": {"days": 90}}]},
    ),
    # ---------------------------------------------------------------- cluster and nodes
    Case(
        "eks-fewer-log-types",
        "eks:index:Cluster",
        "keel-prod-eks",
        "aws-eks-cluster-control-plane-logs",
        {"enabledClusterLogTypes": ["api", "audit"]},
    ),
    Case(
        "gpu-on-demand",
        NODE_GROUP,
        "keel-prod-gpu",
        "aws-eks-gpu-node-group-spot-tainted-from-zero",
        {"capacityType": "ON_DEMAND"},
    ),
    Case(
        "general-one-node",
        NODE_GROUP,
        "keel-prod-general-us-east-1b",
        "aws-eks-node-group-minimum-size",
        {"scalingConfig.minSize": 0},  # the pool's minimum: 1 + 0 + 0
        at="keel-prod-general-us-east-1a",
    ),
    Case(
        "gpu-without-autoscaler-gpu-label",
        NODE_GROUP,
        "keel-prod-gpu",
        "aws-eks-gpu-node-group-spot-tainted-from-zero",
        {"labels": {"keel.dev/pool": "gpu", "nvidia.com/gpu.present": "true"}},
    ),
    Case(
        "imds-hop-limit-2",
        TEMPLATE,
        "keel-prod-general",
        "aws-ec2-launch-template-imdsv2",
        {"metadataOptions.httpPutResponseHopLimit": 2},
    ),
    Case(
        "node-volume-unencrypted",
        TEMPLATE,
        "keel-prod-gpu",
        "aws-ec2-launch-template-encrypted-volumes",
        {"blockDeviceMappings.0.ebs.encrypted": "false"},
    ),
    Case(
        "pod-identity-default-sa",
        "aws:eks/podIdentityAssociation:PodIdentityAssociation",
        "keel-prod-web",
        "aws-eks-pod-identity-own-service-account",
        {"serviceAccount": "default"},
    ),
    # ---------------------------------------------------------------- network
    Case(
        "flow-log-removed",
        "aws:ec2/flowLog:FlowLog",
        "keel-prod-vpc",
        "aws-ec2-vpc-flow-logs",
        drop=True,
        at="keel-prod-vpc",
    ),
    Case(
        "cache-open-to-world",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "keel-prod-cache-from-nodes",
        "aws-ec2-ingress-open-only-to-alb",
        {"referencedSecurityGroupId": DELETE, "cidrIpv4": "0.0.0.0/0"},
        also=(("aws-ec2-data-stores-admit-security-groups-only", "keel-prod-cache-from-nodes"),),
    ),
    Case(
        "db-all-protocols",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "keel-prod-db-from-nodes",
        "aws-ec2-ingress-rules-name-ports",
        {"ipProtocol": "-1", "fromPort": DELETE, "toPort": DELETE},
    ),
    Case(
        "log-retention-a-week",
        "aws:cloudwatch/logGroup:LogGroup",
        "keel-prod-flow-logs",
        "aws-cloudwatch-log-group-encrypted-with-retention",
        {"retentionInDays": 7},
    ),
    # ---------------------------------------------------------------- edge
    Case("alb-no-access-logs", ALB, "keel-prod", "aws-alb-access-logs", {"accessLogs.enabled": False}),
    Case(
        "alb-keeps-invalid-headers",
        ALB,
        "keel-prod",
        "aws-alb-drop-invalid-headers",
        {"dropInvalidHeaderFields": False},
    ),
    Case(
        "alb-tls10",
        "aws:lb/listener:Listener",
        "keel-prod-https",
        "aws-alb-listener-https-tls12",
        {"sslPolicy": "ELBSecurityPolicy-2016-08"},
    ),
    Case(
        "waf-group-counts",
        "aws:wafv2/webAcl:WebAcl",
        "keel-prod-cdn",
        "aws-wafv2-web-acl-rules-block",
        {"rules.0.overrideAction": {"count": {}}},
    ),
    # ---------------------------------------------------------------- identity, keys, secrets, messaging
    Case(
        "iam-all-buckets",
        "aws:iam/rolePolicy:RolePolicy",
        "keel-prod-api-uploads-read-write",
        "aws-iam-policy-scoped-resources",
        {"policy": statement_policy({"Effect": "Allow", "Action": ["s3:PutObject"], "Resource": "arn:aws:s3:::*/*"})},
    ),
    Case(
        "iam-trust-anyone",
        "aws:iam/role:Role",
        "keel-prod-keda",
        "aws-iam-role-trust-restricted",
        {
            "assumeRolePolicy": statement_policy(
                {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
            )
        },
    ),
    Case(
        "kms-no-rotation",
        "aws:kms/key:Key",
        "keel-prod-cache",
        "aws-kms-key-rotation-enabled",
        {"enableKeyRotation": False},
    ),
    Case(
        "kms-short-window",
        "aws:kms/key:Key",
        "keel-prod-storage",
        "aws-kms-key-deletion-window",
        {"deletionWindowInDays": 7},
    ),
    Case(
        "secret-aws-key",
        "aws:secretsmanager/secret:Secret",
        "keel-prod-cache-auth",
        "aws-secretsmanager-secret-cmk",
        {"kmsKeyId": DELETE},
    ),
    Case(
        "secret-no-recovery",
        "aws:secretsmanager/secret:Secret",
        "keel-prod-queue-auth",
        "aws-secretsmanager-secret-recoverable",
        {"recoveryWindowInDays": 0},
    ),
    Case(
        "topic-unencrypted",
        "aws:sns/topic:Topic",
        "keel-prod-alerts",
        "aws-sns-topic-encrypted",
        {"kmsMasterKeyId": DELETE},
    ),
    Case(
        "topic-public",
        "aws:sns/topicPolicy:TopicPolicy",
        "keel-prod-email-events",
        "aws-sns-topic-policy-no-public-principal",
        {"policy": statement_policy({"Effect": "Allow", "Principal": "*", "Action": "sns:Publish"})},
    ),
    Case(
        "alarm-silent",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "keel-prod-db-cpu",
        "aws-cloudwatch-alarm-notifies",
        {"alarmActions": []},
    ),
    Case(
        "ecr-mutable",
        "aws:ecr/repository:Repository",
        "keel-prod-api",
        "aws-ecr-repository-immutable-tags",
        {"imageTagMutability": "MUTABLE"},
    ),
    Case(
        "ecr-no-scan",
        "aws:ecr/repository:Repository",
        "keel-prod-web",
        "aws-ecr-repository-scan-on-push",
        {"imageScanningConfiguration.scanOnPush": False},
    ),
    Case(
        "ses-tls-optional",
        "aws:sesv2/configurationSet:ConfigurationSet",
        "keel-prod",
        "aws-sesv2-configuration-set-requires-tls",
        {"deliveryOptions.tlsPolicy": "OPTIONAL"},
    ),
    # ---------------------------------------------------------------- backups
    Case(
        "vault-unlocked",
        "aws:backup/vaultLockConfiguration:VaultLockConfiguration",
        "keel-prod-dr",
        "aws-backup-vaults-locked",
        drop=True,
    ),
    Case(
        "backups-stay-home",
        "aws:backup/plan:Plan",
        "keel-prod",
        "aws-backup-plan-copies-to-another-region",
        {"rules.0.copyActions": []},
    ),
    # ---------------------------------------------------------------- workloads
    Case(
        "web-no-limits",
        DEPLOYMENT,
        "keel-prod-web",
        "kubernetes-pod-requests-and-limits",
        {f"{WEB}.resources.limits": DELETE},
    ),
    Case("api-no-readiness", DEPLOYMENT, "keel-prod-api", "kubernetes-pod-probes", {f"{WEB}.readinessProbe": DELETE}),
    Case(
        "engine-privileged",
        DEPLOYMENT,
        "keel-prod-forecast-engine",
        "kubernetes-pod-hardened-security-context",
        {f"{WEB}.securityContext.privileged": True},
    ),
    Case(
        "trainer-host-network",
        "kubernetes:keda.sh/v1alpha1:ScaledJob",
        "keel-prod-forecast-trainer",
        "kubernetes-pod-no-host-access",
        {"spec.jobTargetRef.template.spec.hostNetwork": True},
    ),
    Case(
        "api-scaledobject-min-over-max",
        "kubernetes:keda.sh/v1alpha1:ScaledObject",
        "keel-prod-api",
        "kubernetes-scaling-min-below-max",
        {"spec.minReplicaCount": 6},
    ),
    Case(
        "web-pdb-blocks-drains",
        "kubernetes:policy/v1:PodDisruptionBudget",
        "keel-prod-web",
        "kubernetes-pdb-allows-disruption",
        {"spec.maxUnavailable": 0},
    ),
    Case(
        "default-deny-opened",
        "kubernetes:networking.k8s.io/v1:NetworkPolicy",
        "keel-prod-apps-default-deny",
        "kubernetes-network-policy-no-allow-all",
        {"spec.ingress": [{}]},
        also=(("kubernetes-network-policy-per-namespace", "keel-prod-web"),),
    ),
    Case(
        "namespace-privileged",
        "kubernetes:core/v1:Namespace",
        "keel-prod-apps",
        "kubernetes-namespace-pod-security-restricted",
        {"metadata.labels": {"pod-security.kubernetes.io/enforce": "privileged"}},
    ),
    Case(
        "service-node-port",
        "kubernetes:core/v1:Service",
        "keel-prod-web",
        "kubernetes-service-cluster-ip-only",
        {"spec.type": "NodePort"},
    ),
    Case(
        "storage-unencrypted",
        "kubernetes:storage.k8s.io/v1:StorageClass",
        "keel-prod-gp3-encrypted",
        "kubernetes-storage-class-encrypted",
        {"parameters.encrypted": "false"},
    ),
    Case(
        "default-sg-unmanaged",
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
        "keel-prod-default-sg",
        "aws-ec2-vpc-default-security-group-managed",
        drop=True,
        at="keel-prod-vpc",
    ),
    Case(
        "private-route-to-igw",
        "aws:ec2/route:Route",
        "keel-prod-private-us-east-1b-default",
        "aws-ec2-private-subnets-no-internet-route",
        {"natGatewayId": DELETE, "gatewayId": "igw-0123456789abcdef0"},
    ),
    Case("redis-6", CACHE, "keel-prod-queue", "aws-elasticache-supported-engine-version", {"engineVersion": "6.2"}),
    Case(
        "cni-ignores-network-policies",
        "eks:index:Cluster",
        "keel-prod-eks",
        "aws-eks-network-policies-enforced",
        {"vpcCniOptions.enableNetworkPolicy": False},
    ),
    Case("alb-waf-fail-open", ALB, "keel-prod", "aws-alb-waf-fail-closed", {"enableWafFailOpen": True}),
    Case("kms-disabled", "aws:kms/key:Key", "keel-prod-email", "aws-kms-key-enabled", {"isEnabled": False}),
    Case(
        "alerts-unheard",
        "aws:sns/topicSubscription:TopicSubscription",
        "keel-prod-alerts-0",
        "aws-sns-alarm-topics-subscribed",
        drop=True,
        at="keel-prod-alerts",
    ),
    Case(
        "dkim-1024",
        "aws:sesv2/emailIdentity:EmailIdentity",
        "keel-prod",
        "aws-sesv2-email-identity-dkim-2048",
        {"dkimSigningAttributes.nextSigningKeyLength": "RSA_1024_BIT"},
    ),
    Case(
        "ecr-keeps-one-image",
        "aws:ecr/lifecyclePolicy:LifecyclePolicy",
        "keel-prod-api",
        "aws-ecr-lifecycle-keeps-rollback-images",
        {"policy": KEEP_ONE_IMAGE},
    ),
    Case(
        "uploads-old-versions-a-day",
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "keel-prod-uploads",
        "aws-s3-bucket-lifecycle-keeps-data",
        {"rules.1.noncurrentVersionExpiration.noncurrentDays": 1},
    ),
    Case(
        "iam-read-every-secret",
        "aws:iam/rolePolicy:RolePolicy",
        "keel-prod-api-secrets",
        "aws-iam-policy-scoped-resources",
        {"policy": statement_policy({"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"})},
    ),
    Case(
        "backup-trust-any-account",
        "aws:iam/role:Role",
        "keel-prod-backup",
        "aws-iam-role-trust-restricted",
        {
            "assumeRolePolicy": statement_policy(
                {"Effect": "Allow", "Principal": {"Service": "backup.amazonaws.com"}, "Action": "sts:AssumeRole"}
            )
        },
    ),
    Case(
        "access-entry-account-root",
        "eks:index:Cluster",
        "keel-prod-eks",
        "aws-eks-cluster-access-entries",
        {"accessEntries.admin-0.principalArn": "arn:aws:iam::111122223333:root"},
    ),
    Case(
        "web-recreate",
        DEPLOYMENT,
        "keel-prod-web",
        "kubernetes-rollout-keeps-capacity",
        {"spec.strategy": {"type": "Recreate"}},
    ),
    Case(
        "trainer-unbounded",
        "kubernetes:keda.sh/v1alpha1:ScaledJob",
        "keel-prod-forecast-trainer",
        "kubernetes-gpu-jobs-fit-the-pool",
        {"spec.maxReplicaCount": 20},
    ),
    Case(
        "keda-chart-unpinned",
        "kubernetes:helm.sh/v3:Release",
        "keel-prod-keda",
        "kubernetes-helm-release-pinned",
        {"version": DELETE},
    ),
    Case(
        "eks-unprotected",
        "eks:index:Cluster",
        "keel-prod-eks",
        "stack-stateful-resources-protected",
        top={"protect": False},
    ),
    Case(
        "web-image-docker-hub",
        DEPLOYMENT,
        "keel-prod-web",
        "kubernetes-image-trusted-registry",
        {f"{WEB}.image": "docker.io/library/nginx:1.27.2"},
        also=(("kubernetes-image-pinned", "keel-prod-web"),),  # prod also wants a digest
    ),
    Case(
        "api-token-literal",
        DEPLOYMENT,
        "keel-prod-api",
        "kubernetes-no-secret-literals-in-env",
        {f"{WEB}.env.0": {"name": "STRIPE_API_KEY", "value": "sk_live_x"}},
    ),
    Case(
        "engine-default-sa",
        DEPLOYMENT,
        "keel-prod-forecast-engine",
        "kubernetes-pod-own-service-account",
        {"spec.template.spec.serviceAccountName": "default"},
    ),
    Case(
        "nodes-open-to-half-the-internet",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "keel-prod-nodes-from-control-plane",
        "aws-ec2-ingress-open-only-to-alb",
        {"referencedSecurityGroupId": DELETE, "cidrIpv4": "0.0.0.0/1"},
    ),
    Case(
        "db-free-storage-alarm-dropped",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "keel-prod-db-free-storage",
        "aws-cloudwatch-databases-alarmed",
        drop=True,
        at="keel-prod-db",
    ),
    Case(
        "cache-cpu-alarm-never-fires",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "keel-prod-db-cpu",
        "aws-cloudwatch-alarm-can-fire",
        {"threshold": 1000},
    ),
    Case(
        "cache-applies-now",
        CACHE,
        "keel-prod-cache",
        "aws-data-stores-change-in-maintenance-window",
        {"applyImmediately": True},
    ),
    Case(
        "control-plane-log-group-dropped",
        "aws:cloudwatch/logGroup:LogGroup",
        "keel-prod-control-plane",
        "aws-cloudwatch-log-groups-precreated",
        drop=True,
        at="keel-prod-eks",
    ),
    Case(
        "container-logs-off",
        "aws:eks/addon:Addon",
        "keel-prod-cloudwatch-observability",
        "aws-eks-container-logs-shipped",
        {"configurationValues": json.dumps({"containerLogs": {"enabled": False}})},
    ),
    Case(
        "grafana-default-admin",
        "kubernetes:helm.sh/v3:Release",
        "keel-prod-kube-prometheus-stack",
        "kubernetes-monitoring-stack-safe-defaults",
        {"values.grafana.admin": {}},
    ),
    Case(
        "backup-key-foreign-admin",
        "aws:kms/key:Key",
        "keel-prod-backup",
        "aws-resource-policies-own-account",
        {
            "policy": statement_policy(
                {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::999988887777:root"}, "Action": "kms:*"}
            )
        },
    ),
    Case(
        "daily-backup-yearly",
        "aws:backup/plan:Plan",
        "keel-prod",
        "aws-backup-plan-frequency",
        {"rules.1.schedule": "cron(0 7 1 1 ? *)"},
    ),
    Case(
        "log-group-unprotected",
        "aws:cloudwatch/logGroup:LogGroup",
        "keel-prod-flow-logs",
        "stack-stateful-resources-protected",
        top={"protect": False},
    ),
    Case(
        "api-external-ip",
        "kubernetes:core/v1:Service",
        "keel-prod-api",
        "kubernetes-service-cluster-ip-only",
        {"spec.externalIPs": ["203.0.113.10"]},
    ),
    Case(
        "api-proc-unmasked",
        DEPLOYMENT,
        "keel-prod-api",
        "kubernetes-pod-hardened-security-context",
        {f"{WEB}.securityContext.procMount": "Unmasked"},
    ),
    Case(
        "bucket-not-retained",
        "aws:s3/bucket:Bucket",
        "keel-prod-uploads",
        policy.RETAINED_CHECK,
        top={"retainOnDelete": False},
    ),
    Case(
        "db-key-not-retained",
        "aws:kms/key:Key",
        "keel-prod-database",
        policy.RETAINED_CHECK,
        top={"retainOnDelete": False},
    ),
    Case(
        "secret-policy-public",
        "aws:secretsmanager/secret:Secret",
        "keel-prod-cache-auth",
        "aws-secretsmanager-secret-policy-no-public-principal",
        {"policy": statement_policy({"Effect": "Allow", "Principal": "*", "Action": "secretsmanager:GetSecretValue"})},
    ),
    Case(
        "waf-rate-limit-huge",
        "aws:wafv2/webAcl:WebAcl",
        "keel-prod-cdn",
        "aws-wafv2-web-acl-baseline-rules",
        {"rules.3.statement.rateBasedStatement.limit": 2000000000},
    ),
    Case(
        "alarm-to-unknown-topic",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "keel-prod-db-connections",
        "aws-sns-alarm-topics-subscribed",
        {"alarmActions": ["arn:aws:sns:us-east-1:123456789012:nobody"]},
        top={"propertyDependencies": {}},
    ),
    Case(
        "web-image-foreign-ecr",
        DEPLOYMENT,
        "keel-prod-web",
        "kubernetes-image-trusted-registry",
        {f"{WEB}.image": "999988887777.dkr.ecr.us-east-1.amazonaws.com/keel-web@sha256:" + "a" * 64},
    ),
    Case(
        "engine-image-by-tag",
        DEPLOYMENT,
        "keel-prod-forecast-engine",
        "kubernetes-image-pinned",
        {f"{WEB}.image": "111122223333.dkr.ecr.us-east-1.amazonaws.com/keel-forecast-engine:v1"},
    ),
    Case(
        "api-db-pass-literal",
        DEPLOYMENT,
        "keel-prod-api",
        "kubernetes-no-secret-literals-in-env",
        {f"{WEB}.env.1": {"name": "DB_PASS", "value": "hunter2"}},
    ),
    Case(
        "alert-rules-dropped",
        "kubernetes:monitoring.coreos.com/v1:PrometheusRule",
        "keel-prod-rules",
        "kubernetes-service-alert-rules-present",
        drop=True,
        at="keel-prod-kube-prometheus-stack",
    ),
    Case(
        "web-exposed-single-replica",
        "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
        "keel-prod-web",
        "kubernetes-exposed-min-replicas",
        {"spec.minReplicas": 1},
    ),
]


def batches(cases: list[Case]) -> list[list[Case]]:
    """Greedy: each case goes into the first batch where no other case expects one of its findings (a policy at
    a resource) or drops, or is dropping, its resource. A batch may change several inputs of one resource: each
    case's own run of its policy (``test_each_change_alone_trips_its_policy``) shows which change a finding comes
    from."""
    out: list[tuple[set[tuple[str, str]], set[tuple[str, str]], list[Case]]] = []
    for case in cases:
        key = (case.type, case.name)
        for dropped, expected, members in out:
            clash = key in dropped or (case.drop and any((m.type, m.name) == key for m in members))
            if not clash and not case.expect & expected:
                break
        else:
            dropped, expected, members = set(), set(), []
            out.append((dropped, expected, members))
        if case.drop:
            dropped.add(key)
        expected.update(case.expect)
        members.append(case)
    return [members for _, _, members in out]


PROD_CONFIG = {k: v for k, v in policy_config("prod").items() if isinstance(v, dict)}


@pytest.fixture(scope="module")
def prod(preview: Callable[[str], Preview]) -> Doc:
    return preview("prod").to_json()


def test_each_change_alone_trips_its_policy(prod: Doc) -> None:
    """In process, one case at a time: the change alone makes its policy report at the expected resource (the
    batches below then show, through the real protocol and prod's config, that each finding blocks)."""
    from pulumi_policy import ResourceValidationPolicy

    from policies.rules import ALL as POLICIES

    kinds = {p.name: isinstance(p, ResourceValidationPolicy) for p in POLICIES}
    silent = []
    for case in CASES:
        doc = copy.deepcopy(prod)
        apply(doc, case)
        for name, at in sorted(case.expect):
            if name == policy.RETAINED_CHECK:  # keel's own check, not the pack's
                found = any(v.urn.endswith(f"::{at}") for v in policy.retained(doc["steps"], "mandatory"))
            elif kinds[name]:
                [changed] = [
                    s["newState"]
                    for s in doc["steps"]
                    if s["urn"].endswith(f"::{at}") and s["newState"]["type"] == case.type
                ]
                found = bool(check_resource(name, changed, PROD_CONFIG.get(name)))
            else:
                found = any(where == at for where, _ in check_stack(name, doc, PROD_CONFIG.get(name)))
            if not found:
                silent.append((case.id, name, at))
    assert silent == []


def test_the_suite_is_broad() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
    assert len({c.policy for c in CASES}) >= 40
    names = {p.name for p in ALL} | {policy.RETAINED_CHECK}
    assert all(p in names for c in CASES for p, _ in c.expect)


@pytest.mark.parametrize("batch", batches(CASES), ids=lambda b: f"{b[0].id}+{len(b) - 1}")
def test_prod_blocks_each_insecure_change(
    prod: Doc, batch: list[Case], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = copy.deepcopy(prod)
    for case in batch:
        apply(doc, case)
    saved = tmp_path / "preview.json"
    saved.write_text(json.dumps(doc))
    flags = ["--stack", "prod", "--policy-pack-config", str(policy_config_file("prod"))]
    assert cli.main(["policy", str(saved), "--json", *flags]) == 1
    violations = json.loads(capsys.readouterr().out)["policyViolations"]
    found = {(v["policyName"], v["urn"].rsplit("::", 1)[1]): v["enforcementLevel"] for v in violations}
    expected = set().union(*(c.expect for c in batch))
    missing = {c.id: sorted(c.expect - found.keys()) for c in batch if not c.expect <= found.keys()}
    assert missing == {}, "changes the gate let through"
    assert {k: v for k, v in found.items() if v != "mandatory"} == {}, "findings that would not block"
    assert sorted(found.keys() - expected) == [], "findings no case of the batch explains"


def test_prod_config_makes_every_policy_mandatory() -> None:
    """The test prod stack's policy config (as the shipped one, README's table): `all: mandatory`, so every policy
    of the pack blocks, whatever its severity; the batches above count on it."""
    pack = policy.Pack(stack="prod")
    try:
        info = pack.stub.GetAnalyzerInfo(policy.empty_pb2.Empty(), timeout=policy.CALL_TIMEOUT)
    finally:
        pack.close()
    levels = policy.reconcile(info, policy.load_config(policy_config_file("prod")))
    assert {name for name, c in levels.items() if c.enforcement_level != policy.analyzer_pb2.MANDATORY} == set()
    assert len(levels) == len(ALL)


def test_readme_lists_every_policy_with_its_levels_and_reasons() -> None:
    """The README's table is what the pack and the stack configs say (regenerate: python -m keel.policydoc
    --write), a column per stack file found, and every policy that does not block on a stack says why."""
    from keel import policydoc, stackfiles

    text, problems = policydoc.section()
    assert problems == []
    readme = policydoc.README.read_text()
    assert readme[readme.index(policydoc.BEGIN) : readme.index(policydoc.END) + len(policydoc.END)] == text
    shipped = policydoc.stacks(ROOT)
    assert sorted(shipped) == stackfiles.stacks(ROOT)
    assert f"| service | policy | holds | {' | '.join(shipped)} |" in text
    [row] = [line for line in text.splitlines() if line.startswith("| rds | `aws-rds-instance-multi-az` |")]
    levels = [cell.strip() for cell in row.strip("|").split("|")][3:]
    assert levels == [
        "off" if policy_config_of(stack).get("aws-rds-instance-multi-az") == "disabled" else "mandatory"
        for stack in shipped
    ]


def policy_config_of(stack: str) -> dict[str, Any]:
    return dict(json.loads(policy.config_file(stack, ROOT / "policies").read_text()))


def test_reasons_are_per_environment_so_a_copied_stack_needs_none(monkeypatch: pytest.MonkeyPatch) -> None:
    """A reason covers every stack of its `keel:environment`: a fourth stack copied from one of its kind, with the
    same policy config, adds a column and needs no new reason; a stack relaxing what its kind gives no reason for is
    reported, and so is a reason no stack of the kind needs any more."""
    from keel import policydoc

    environments = policydoc.stacks(ROOT)
    first = next(iter(environments))
    kind = environments[first]
    monkeypatch.setattr(policydoc, "REASONS", {(kind, "relaxed"): "why"})
    levels: dict[str, tuple[str, dict[str, Any]]] = {"kept": ("mandatory", {}), "relaxed": ("off", {})}
    assert policydoc.problems({first: levels}, environments) == []
    assert policydoc.problems({first: levels, "fourth": levels}, {**environments, "fourth": kind}) == []
    flipped: dict[str, tuple[str, dict[str, Any]]] = {"kept": ("advisory", {}), "relaxed": ("mandatory", {})}
    assert policydoc.problems({first: flipped}, environments) == [
        f"{first}: kept is advisory without a reason for keel:environment {kind!r} in keel/policydoc.py REASONS",
        f"{kind}: relaxed is mandatory in every {kind} stack; drop its stale reason",
    ]
