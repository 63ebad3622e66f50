"""Buckets: the ``artifacts``, ``uploads`` and ``logs`` S3 buckets, intent-based grants on them, and their replicas.

Usage::

    buckets = Buckets("keel-prod", cfg.buckets, protect=True,
                      replica_provider=aws.Provider("keel-prod-aws-us-west-2", region="us-west-2"),
                      replica_region="us-west-2", opts=pulumi.ResourceOptions(parent=platform))
    buckets.grant_read("artifacts", role)          # an aws.iam.RolePolicy with exactly what reading needs
    buckets.grant_read_write("uploads", role)

Creates (``<n>`` is the component name; ``<b>`` each of ``artifacts``, ``uploads``, ``logs``):

- ``<n>-storage`` KMS key and alias (SSE-KMS of artifacts and uploads, with S3 bucket keys).
- ``<n>-<b>`` bucket, and for each: ``<n>-<b>`` public-access block (all four), ownership controls
  (``BucketOwnerEnforced``: ACLs off), versioning, default encryption (SSE-KMS; ``logs`` uses SSE-S3 because ALB
  log delivery requires it), a bucket policy denying any request without TLS, a lifecycle configuration (abort
  incomplete multipart uploads after 7 days, expire non-current versions, expire logs), and server access
  logging into ``logs`` (except ``logs`` itself).
- ``logs``' policy also lets the region's ELB log-delivery account write ALB logs under ``alb/`` and the S3
  logging service write access logs under ``s3/``, each only for this account; with ``cloudfront_logs``
  (``keel:ingress.cdn``), CloudFront's log delivery under ``AWSLogs/<account>/CloudFront/``
  (:func:`cloudfront_logs_statement`).
- ``<n>-uploads`` CORS for the configured web origins.

With replication (``keel:buckets.replication``; on by default whenever ``replica_region``, the backup copy region,
is given), S3 Cross-Region Replication keeps a copy of artifacts and uploads there (``<r>`` each of them):

- through ``replica_provider``, in the copy region: ``<n>-storage-replica`` KMS key and alias; ``<n>-<r>-replica``
  buckets configured like their sources (public-access block, ownership, versioning, SSE-KMS with bucket keys on
  the replica key, the TLS-only policy, the same lifecycle) and tagged ``keel.dev/replica-of``; and
  ``<n>-replica-logs`` (SSE-S3, the same lifecycle as ``logs``), which receives the replicas' access logs (S3
  delivers access logs only within a region).
- ``<n>-replication`` IAM role that only S3, for this account, may assume, and its ``<n>-replication`` policy: what
  AWS documents for replicating SSE-KMS objects, on exactly these buckets and keys.
- ``<n>-<r>`` replication configuration on each source: every object, SSE-KMS objects included, replicated to
  ``<n>-<r>-replica`` as STANDARD, encrypted with the replica key; delete markers replicated; with
  ``replicationTimeControl`` S3 RTC (99.99% of objects within 15 minutes) and its metrics.

Stateful: ``forceDestroy`` only when configured (dev), ``protect`` and ``retainOnDelete`` when the stack
protects, replicas alike. With ``backup_tags`` (``Backup.tag``), artifacts and uploads carry the backup plan's
selection tag; ``logs`` does not (access logs are versioned and expire by lifecycle, and it carries
``keel.dev/backup-exempt``), nor do the replicas (each carries ``keel.dev/backup-exempt``: its source is backed up).

Recovery point: a regional outage loses what S3 had not yet replicated, 15 minutes at most for 99.99% of objects
with RTC (AWS Backup's copies are 6 hours old at worst). Objects written before replication was turned on are not
replicated (an S3 Batch Replication job copies them); until then the backup copies cover them.

Outputs: ``buckets`` and ``policies`` (by name), ``names``, ``key``; ``replicas`` (by name), ``replica_names``,
``replica_key``, ``replica_logs``, ``replication_role`` and ``replication`` (by name): empty or None without
replication.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from components import context
from components.config import BucketsConfig
from components.documents import deny_insecure_transport
from components.iam import Statement, document, statement
from components.keys import create_key
from components.upstream import CLOUDFRONT_LOG_PREFIX, CLOUDFRONT_REGION, LOG_DELIVERY_PRINCIPAL

NAMES = ("artifacts", "uploads", "logs")
BACKED_UP = ("artifacts", "uploads")
#: The buckets replicated to the copy region: the data (``logs`` is access logs, kept where they were written).
REPLICATED = BACKED_UP
#: How long S3 Replication Time Control takes to replicate 99.99% of new objects, in minutes, and the threshold of
#: its missed-threshold events: the only value the API takes (Amazon S3 User Guide, "Meeting compliance requirements
#: with S3 Replication Time Control"; pulumi-aws 7.51.1 ``pulumi_aws/s3/_inputs.py``,
#: ``BucketReplicationConfigRuleDestinationReplicationTimeTimeArgs.minutes``: "Valid values: `15`").
RTC_MINUTES = 15


def access_log_delivery(bucket_arn: str, account: str) -> Statement:
    """The S3 logging service may write access logs under ``s3/``, for this account's buckets only."""
    return {
        "Sid": "S3ServerAccessLogs",
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"{bucket_arn}/s3/*",
        "Condition": {"StringEquals": {"aws:SourceAccount": account}},
    }


def cloudfront_logs_statement(bucket_arn: str, account: str) -> Statement:
    """CloudFront's access logs (standard logging v2, delivered from us-east-1 by CloudWatch Logs' vended-log
    delivery) under ``AWSLogs/<account>/CloudFront/``: the statement the CloudWatch Logs User Guide ("Logs sent to
    Amazon S3" [V2]) asks for, pinned to this account and to delivery sources in us-east-1."""
    prefix = CLOUDFRONT_LOG_PREFIX.value.format(account=account)
    partition = bucket_arn.split(":")[1]
    return {
        "Sid": "CloudFrontAccessLogs",
        "Effect": "Allow",
        "Principal": {"Service": LOG_DELIVERY_PRINCIPAL.value},
        "Action": "s3:PutObject",
        "Resource": f"{bucket_arn}/{prefix}*",
        "Condition": {
            "StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceAccount": account},
            "ArnLike": {"aws:SourceArn": f"arn:{partition}:logs:{CLOUDFRONT_REGION.value}:{account}:delivery-source:*"},
        },
    }


def logs_bucket_statements(
    bucket_arn: str, elb_account_arn: str, account: str, *, cloudfront: bool = False
) -> list[Statement]:
    """Who may write into the logs bucket: ALB log delivery (the region's ELB account) under ``alb/``, the S3
    logging service under ``s3/`` for this account's buckets and, with ``cloudfront``, CloudFront's log delivery
    (:func:`cloudfront_logs_statement`)."""
    return [
        {
            "Sid": "AlbAccessLogs",
            "Effect": "Allow",
            "Principal": {"AWS": elb_account_arn},
            "Action": "s3:PutObject",
            "Resource": f"{bucket_arn}/alb/AWSLogs/{account}/*",
        },
        access_log_delivery(bucket_arn, account),
        *([cloudfront_logs_statement(bucket_arn, account)] if cloudfront else []),
    ]


def read_statements(bucket_arn: str, key_arn: str | None, region: str) -> list[Statement]:
    """Read objects and list the bucket; decrypt through S3 only."""
    out = [
        statement("s3:ListBucket", bucket_arn, sid="ListBucket"),
        statement(["s3:GetObject", "s3:GetObjectVersion"], f"{bucket_arn}/*", sid="ReadObjects"),
    ]
    if key_arn:
        out.append(
            statement(
                "kms:Decrypt",
                key_arn,
                {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
                sid="DecryptThroughS3",
            )
        )
    return out


def read_write_statements(bucket_arn: str, key_arn: str | None, region: str) -> list[Statement]:
    """Read, write and delete objects (no bucket configuration, no ACLs); encrypt and decrypt through S3."""
    out = [
        statement("s3:ListBucket", bucket_arn, sid="ListBucket"),
        statement(
            ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
            f"{bucket_arn}/*",
            sid="ReadWriteObjects",
        ),
    ]
    if key_arn:
        out.append(
            statement(
                ["kms:Decrypt", "kms:GenerateDataKey"],
                key_arn,
                {"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
                sid="UseKeyThroughS3",
            )
        )
    return out


def replication_trust(account: str) -> dict[str, Any]:
    """Only S3, acting for this account's buckets, may assume the replication role. The Amazon S3 User Guide's trust
    policy ("Setting up permissions for live replication") names ``s3.amazonaws.com`` without a condition;
    ``aws:SourceAccount`` is keel's confused-deputy rule for every service trust (policy
    ``aws-iam-role-trust-restricted``), so another account's bucket cannot replicate with this role."""
    return document(
        [
            {
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            }
        ]
    )


def _bucket_and_objects(arns: Sequence[str]) -> list[str]:
    """The encryption context S3 gives KMS for these buckets: the bucket's ARN with S3 Bucket Keys, the object's
    without (a request may turn bucket keys off for its object)."""
    return [arn for bucket in arns for arn in (bucket, f"{bucket}/*")]


def replication_statements(
    pairs: Sequence[tuple[str, str]],
    source_key_arn: str,
    replica_key_arn: str,
    source_region: str,
    replica_region: str,
) -> list[Statement]:
    """What S3 needs to replicate SSE-KMS objects from each source to its replica (``pairs``: source and replica
    bucket ARNs), as the Amazon S3 User Guide lists it: "Setting up permissions for live replication" (read the
    source's replication configuration, list it, read object versions with their ACLs and tags; replicate objects,
    deletes and tags into the replica) and "Replicating encrypted objects" (``kms:Decrypt`` of the source key through
    S3 in the source region, ``kms:Encrypt`` of the replica key through S3 in the replica region, each only for these
    buckets; with S3 Bucket Keys the encryption context is the bucket's ARN). ``kms:Decrypt`` of the replica key
    too: "the AWS KMS key policy for the KMS key that's used to encrypt the object replica must include the
    ``kms:Decrypt`` permission", which S3 calls to verify the replica's bucket key (same page, "S3 Bucket Keys and
    replication"); keel's key policies leave that to IAM. No ``kms:GenerateDataKey``: that is for plaintext source
    objects, and every object here is encrypted (SSE-KMS by default, SSE-S3 at least)."""
    sources = [source for source, _ in pairs]
    replicas = [replica for _, replica in pairs]
    return [
        statement(
            ["s3:GetReplicationConfiguration", "s3:ListBucket"], sources, sid="ReadSourceReplicationConfiguration"
        ),
        statement(
            ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"],
            [f"{source}/*" for source in sources],
            sid="ReadSourceObjectVersions",
        ),
        statement(
            ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
            [f"{replica}/*" for replica in replicas],
            sid="WriteReplicas",
        ),
        statement(
            "kms:Decrypt",
            source_key_arn,
            {
                "StringLike": {
                    "kms:ViaService": f"s3.{source_region}.amazonaws.com",
                    "kms:EncryptionContext:aws:s3:arn": _bucket_and_objects(sources),
                }
            },
            sid="DecryptSourceObjectsThroughS3",
        ),
        statement(
            ["kms:Encrypt", "kms:Decrypt"],
            replica_key_arn,
            {
                "StringLike": {
                    "kms:ViaService": f"s3.{replica_region}.amazonaws.com",
                    "kms:EncryptionContext:aws:s3:arn": _bucket_and_objects(replicas),
                }
            },
            sid="EncryptReplicasThroughS3",
        ),
    ]


def replication_rule(
    replica_arn: pulumi.Input[str], replica_key_arn: pulumi.Input[str], *, time_control: bool
) -> aws.s3.BucketReplicationConfigRuleArgs:
    """The one rule of a source's replication configuration: every object to ``replica_arn``.

    - ``filter`` with an empty prefix: every object, and the current schema (which delete-marker replication needs).
    - ``sseKmsEncryptedObjects``: S3 replicates SSE-KMS objects only when the rule opts in, and then requires the
      replica key (Amazon S3 User Guide, "Replicating encrypted objects"); the replica is encrypted with
      ``replica_key_arn``, a key in the replica's region.
    - ``deleteMarkerReplication``: a delete in the source (a delete marker) shows in the replica, so a failover reads
      what the application last saw. It deletes no data: S3 never replicates the deletion of a version (a request
      naming a version ID), so the replica keeps every version until its own lifecycle expires it (Amazon S3 User
      Guide, "What does Amazon S3 replicate?", "How delete operations affect replication").
    - No ``replicaModifications``: that syncs changes made on a replica back, for two-way replication; nothing writes
      to the replicas here.
    - ``STANDARD``: the replica is ready to serve in a failover, without a retrieval step or minimum duration.
    - ``time_control``: S3 Replication Time Control, 99.99% of new objects within 15 minutes, which needs replication
      metrics; their ``OperationMissedThreshold`` event fires past 15 minutes (Amazon S3 User Guide, "Meeting
      compliance requirements with S3 Replication Time Control")."""
    rtc: dict[str, Any] = (
        {
            "replication_time": aws.s3.BucketReplicationConfigRuleDestinationReplicationTimeArgs(
                status="Enabled",
                time=aws.s3.BucketReplicationConfigRuleDestinationReplicationTimeTimeArgs(minutes=RTC_MINUTES),
            ),
            "metrics": aws.s3.BucketReplicationConfigRuleDestinationMetricsArgs(
                status="Enabled",
                event_threshold=aws.s3.BucketReplicationConfigRuleDestinationMetricsEventThresholdArgs(
                    minutes=RTC_MINUTES
                ),
            ),
        }
        if time_control
        else {}
    )
    return aws.s3.BucketReplicationConfigRuleArgs(
        id="disaster-recovery",
        status="Enabled",
        filter=aws.s3.BucketReplicationConfigRuleFilterArgs(prefix=""),
        delete_marker_replication=aws.s3.BucketReplicationConfigRuleDeleteMarkerReplicationArgs(status="Enabled"),
        source_selection_criteria=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaArgs(
            sse_kms_encrypted_objects=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaSseKmsEncryptedObjectsArgs(
                status="Enabled"
            )
        ),
        destination=aws.s3.BucketReplicationConfigRuleDestinationArgs(
            bucket=replica_arn,
            storage_class="STANDARD",
            encryption_configuration=aws.s3.BucketReplicationConfigRuleDestinationEncryptionConfigurationArgs(
                replica_kms_key_id=replica_key_arn
            ),
            **rtc,
        ),
    )


@dataclasses.dataclass(frozen=True)
class _Configured:
    """What one bucket's configuration created that others wait for."""

    block: aws.s3.BucketPublicAccessBlock
    versioning: aws.s3.BucketVersioning
    policy: aws.s3.BucketPolicy


class Buckets(pulumi.ComponentResource):
    """The platform's S3 buckets."""

    buckets: dict[str, aws.s3.Bucket]
    policies: dict[str, aws.s3.BucketPolicy]
    key: aws.kms.Key
    region: str
    replicas: dict[str, aws.s3.Bucket]
    """The replica of each replicated bucket, by the source's name; empty without replication."""
    replica_key: aws.kms.Key | None
    """The replicas' KMS key in the copy region; None without replication."""
    replica_logs: aws.s3.Bucket | None
    """The copy region's bucket of the replicas' access logs; None without replication."""
    replication_role: aws.iam.Role | None
    """The role S3 assumes to replicate; None without replication."""
    replication: dict[str, aws.s3.BucketReplicationConfig]
    """Each source's replication configuration, by the source's name; empty without replication."""

    def __init__(
        self,
        name: str,
        config: BucketsConfig,
        *,
        protect: bool = True,
        names: Sequence[str] = NAMES,
        backup_tags: Mapping[str, str] | None = None,
        replica_provider: aws.Provider | None = None,
        replica_region: str | None = None,
        cloudfront_logs: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``config``: the ``keel:buckets`` section (CORS origins, version and log retention, force-destroy,
        replication). ``protect``: True puts ``protect`` and ``retainOnDelete`` on the buckets and the keys.
        ``names``: which buckets to create (``logs`` always: it receives the others' access logs). ``backup_tags``:
        None or empty, no backup plan selects the buckets; ``Backup.tag``, artifacts and uploads are backed up.
        ``replica_region``: the region replicas go to (``keel:backup.copyRegion``; None: nowhere, so no
        replication), with ``replica_provider``, an AWS provider for that region. ``cloudfront_logs``: the logs
        bucket admits CloudFront's access logs (``keel:ingress.cdn``)."""
        super().__init__("keel:storage:Buckets", name, None, opts)
        ctx = context.lookup(pulumi.InvokeOptions(parent=self))
        self.region = ctx.region
        self.key = create_key(
            f"{name}-storage",
            "SSE-KMS of the artifacts and uploads buckets",
            ctx,
            protect=protect,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # An Output, not a blocking invoke: only the logs bucket's policy needs it.
        elb_account = aws.elb.get_service_account_output(opts=pulumi.InvokeOptions(parent=self)).arn
        kept = pulumi.ResourceOptions(parent=self, protect=protect, retain_on_delete=protect)
        child = pulumi.ResourceOptions(parent=self)
        self.buckets = {}
        self.policies = {}
        versioning: dict[str, aws.s3.BucketVersioning] = {}
        for bucket_name in ("logs", *[n for n in names if n != "logs"]):
            tags = {"Name": f"{name}-{bucket_name}", "keel.dev/bucket": bucket_name}
            if bucket_name == "logs":
                tags["keel.dev/backup-exempt"] = "access logs: versioned, expired by lifecycle"
            if bucket_name in BACKED_UP:
                tags.update(backup_tags or {})
            bucket = aws.s3.Bucket(f"{name}-{bucket_name}", force_destroy=config.force_destroy, tags=tags, opts=kept)
            self.buckets[bucket_name] = bucket
            logs = bucket_name == "logs"

            def policy(arns: list[str], logs: bool = logs) -> str:
                statements = [deny_insecure_transport(arns[0])]
                if logs:
                    statements += logs_bucket_statements(arns[0], arns[1], ctx.account, cloudfront=cloudfront_logs)
                return json.dumps(document(statements))

            configured = self._configure(
                f"{name}-{bucket_name}",
                bucket,
                config,
                key=None if logs else self.key,
                policy=pulumi.Output.all(bucket.arn, elb_account).apply(policy),
                expire_logs=logs,
                log_target=None if logs else self.buckets["logs"],
                log_prefix=f"s3/{bucket_name}/",
                opts=child,
            )
            self.policies[bucket_name] = configured.policy
            versioning[bucket_name] = configured.versioning
            if bucket_name == "uploads" and config.cors_origins:
                aws.s3.BucketCorsConfiguration(
                    f"{name}-{bucket_name}",
                    bucket=bucket.id,
                    cors_rules=[
                        aws.s3.BucketCorsConfigurationCorsRuleArgs(
                            allowed_origins=list(config.cors_origins),
                            allowed_methods=["GET", "PUT", "POST", "HEAD"],
                            allowed_headers=["*"],
                            expose_headers=["ETag"],
                            max_age_seconds=3000,
                        )
                    ],
                    opts=child,
                )
        self.replicas = {}
        self.replication = {}
        self.replica_key = self.replica_logs = self.replication_role = None
        if config.replicates(replica_region):
            if replica_provider is None or replica_region is None:
                raise ValueError(
                    f"keel:buckets.replication.enabled: got true but no provider for a copy region "
                    f"(replica_region {replica_region!r}); keel:backup.copyRegion names it"
                )
            self._replicate(name, config, ctx, replica_provider, replica_region, protect, versioning)
        self.register_outputs(
            {
                "names": {k: b.bucket for k, b in self.buckets.items()},
                "replica_names": {k: b.bucket for k, b in self.replicas.items()},
                "replica_key": self.replica_key.arn if self.replica_key is not None else None,
            }
        )

    def _configure(
        self,
        label: str,
        bucket: aws.s3.Bucket,
        config: BucketsConfig,
        *,
        key: aws.kms.Key | None,
        policy: pulumi.Input[str],
        expire_logs: bool,
        log_target: aws.s3.Bucket | None,
        log_prefix: str,
        opts: pulumi.ResourceOptions,
    ) -> _Configured:
        """What every bucket gets, each named ``label``: the public-access block, ownership, versioning, default
        encryption (SSE-KMS with bucket keys on ``key``; None: SSE-S3, for a bucket that receives logs), the bucket
        ``policy``, the lifecycle (``expire_logs``: its objects are logs, expired after ``logRetentionDays``) and
        access logging into ``log_target`` (None: it is the logs bucket). ``opts``: the parent, and the provider of a
        bucket in another region."""
        block = aws.s3.BucketPublicAccessBlock(
            label,
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=opts,
        )
        aws.s3.BucketOwnershipControls(
            label,
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=opts,
        )
        versioning = aws.s3.BucketVersioning(
            label,
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=opts,
        )
        sse = (
            aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="AES256"
            )
            if key is None
            else aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="aws:kms", kms_master_key_id=key.arn
            )
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            label,
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=sse, bucket_key_enabled=key is not None
                )
            ],
            opts=opts,
        )
        bucket_policy = aws.s3.BucketPolicy(
            label,
            bucket=bucket.id,
            policy=policy,
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[block])),
        )
        rules: list[Any] = [
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="abort-incomplete-multipart-uploads",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                    days_after_initiation=7
                ),
            ),
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-noncurrent-versions",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=config.noncurrent_version_days
                ),
            ),
        ]
        if expire_logs:
            rules.append(
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-logs",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=config.log_retention_days),
                )
            )
        aws.s3.BucketLifecycleConfiguration(label, bucket=bucket.id, rules=rules, opts=opts)
        if log_target is not None:
            aws.s3.BucketLogging(
                label,
                bucket=bucket.id,
                target_bucket=log_target.id,
                target_prefix=log_prefix,
                opts=opts,
            )
        return _Configured(block, versioning, bucket_policy)

    # ------------------------------------------------------------------ replication

    def _replicate(
        self,
        name: str,
        config: BucketsConfig,
        ctx: context.AwsContext,
        provider: aws.Provider,
        region: str,
        protect: bool,
        versioning: Mapping[str, aws.s3.BucketVersioning],
    ) -> None:
        """The replica key, buckets and logs bucket in ``region`` (through ``provider``), the role S3 replicates
        with, and a replication configuration on each replicated source."""
        there = pulumi.ResourceOptions(parent=self, provider=provider)
        kept_there = pulumi.ResourceOptions.merge(
            there, pulumi.ResourceOptions(protect=protect, retain_on_delete=protect)
        )
        # The copy provider differs from the stack's only in its region (as in Backup): no lookup needed.
        copy_ctx = dataclasses.replace(ctx, region=region)
        replica_key = self.replica_key = create_key(
            f"{name}-storage-replica",
            f"SSE-KMS of the artifacts and uploads replicas in {region}",
            copy_ctx,
            protect=protect,
            opts=there,
        )
        # S3 delivers access logs only to a bucket in the source's region and account, with SSE-S3 default
        # encryption (Amazon S3 API Reference, "LoggingEnabled": TargetBucket), so the replicas log here.
        logs_label = f"{name}-replica-logs"
        logs = self.replica_logs = aws.s3.Bucket(
            logs_label,
            force_destroy=config.force_destroy,
            tags={
                "Name": logs_label,
                "keel.dev/bucket": "logs",
                "keel.dev/backup-exempt": "access logs of the replicas: versioned, expired by lifecycle",
            },
            opts=kept_there,
        )
        self._configure(
            logs_label,
            logs,
            config,
            key=None,
            policy=logs.arn.apply(
                lambda arn: json.dumps(
                    document([deny_insecure_transport(arn), access_log_delivery(arn, copy_ctx.account)])
                )
            ),
            expire_logs=True,
            log_target=None,
            log_prefix="",
            opts=there,
        )
        replica_versioning: dict[str, aws.s3.BucketVersioning] = {}
        for bucket_name in [n for n in REPLICATED if n in self.buckets]:
            label = f"{name}-{bucket_name}-replica"
            replica = self.replicas[bucket_name] = aws.s3.Bucket(
                label,
                force_destroy=config.force_destroy,
                tags={
                    "Name": label,
                    "keel.dev/bucket": bucket_name,
                    "keel.dev/replica-of": self.buckets[bucket_name].bucket,
                    "keel.dev/backup-exempt": "replica: its source bucket is in the backup plan",
                },
                opts=kept_there,
            )
            replica_versioning[bucket_name] = self._configure(
                label,
                replica,
                config,
                key=replica_key,
                policy=replica.arn.apply(lambda arn: json.dumps(document([deny_insecure_transport(arn)]))),
                expire_logs=False,
                log_target=logs,
                log_prefix=f"s3/{bucket_name}/",
                opts=there,
            ).versioning
        child = pulumi.ResourceOptions(parent=self)
        role = self.replication_role = aws.iam.Role(
            f"{name}-replication",
            description=f"{name}: S3 replicates artifacts and uploads to {region}",
            assume_role_policy=json.dumps(replication_trust(ctx.account)),
            opts=child,
        )
        sources = [self.buckets[n].arn for n in self.replicas]
        replicas = [r.arn for r in self.replicas.values()]
        role_policy = aws.iam.RolePolicy(
            f"{name}-replication",
            role=role.id,
            policy=pulumi.Output.all(self.key.arn, replica_key.arn, *sources, *replicas).apply(
                lambda arns: json.dumps(
                    document(
                        replication_statements(
                            list(zip(arns[2 : 2 + len(sources)], arns[2 + len(sources) :], strict=True)),
                            arns[0],
                            arns[1],
                            ctx.region,
                            region,
                        )
                    )
                )
            ),
            opts=child,
        )
        for bucket_name, replica in self.replicas.items():
            # Both buckets must be versioned before S3 accepts the configuration (terraform-provider-aws
            # website/docs/r/s3_bucket_replication_configuration.html.markdown: "Must have bucket versioning enabled
            # first"); the role's policy first too, or the first objects would fail to replicate.
            self.replication[bucket_name] = aws.s3.BucketReplicationConfig(
                f"{name}-{bucket_name}",
                bucket=self.buckets[bucket_name].id,
                role=role.arn,
                rules=[
                    replication_rule(
                        replica.arn, replica_key.arn, time_control=config.replication.replication_time_control
                    )
                ],
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[versioning[bucket_name], replica_versioning[bucket_name], role_policy],
                ),
            )

    # ------------------------------------------------------------------ grants

    def _grant(self, bucket_name: str, role: aws.iam.Role, mode: str) -> aws.iam.RolePolicy:
        bucket = self.buckets[bucket_name]
        key_arn = None if bucket_name == "logs" else self.key.arn
        build = read_statements if mode == "read" else read_write_statements
        doc = pulumi.Output.all(bucket.arn, key_arn).apply(
            lambda arns: json.dumps(document(build(arns[0], arns[1], self.region)))
        )
        return aws.iam.RolePolicy(
            f"{role.pulumi_resource_name}-{bucket_name}-{mode}",
            role=role.id,
            policy=doc,
            opts=pulumi.ResourceOptions(parent=role),
        )

    def grant_read(self, bucket_name: str, role: aws.iam.Role) -> aws.iam.RolePolicy:
        """Let ``role`` list the bucket and read its objects (and decrypt them through S3)."""
        return self._grant(bucket_name, role, "read")

    def grant_read_write(self, bucket_name: str, role: aws.iam.Role) -> aws.iam.RolePolicy:
        """Let ``role`` read, write and delete the bucket's objects."""
        return self._grant(bucket_name, role, "read-write")
