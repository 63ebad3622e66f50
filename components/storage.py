"""Buckets: the ``artifacts``, ``uploads`` and ``logs`` S3 buckets, and intent-based grants on them.

Usage::

    buckets = Buckets("keel-prod", cfg.buckets, protect=True,
                      opts=pulumi.ResourceOptions(parent=platform))
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
  logging service write access logs under ``s3/``, each only for this account.
- ``<n>-uploads`` CORS for the configured web origins.

Stateful: ``forceDestroy`` only when configured (dev), ``protect`` and ``retainOnDelete`` when the stack
protects. With ``backup_tags`` (``Backup.tag``), artifacts and uploads carry the backup plan's selection tag;
``logs`` does not (access logs are versioned and expire by lifecycle, and it carries ``keel.dev/backup-exempt``).

Outputs: ``buckets`` and ``policies`` (by name), ``names``, ``key``.
"""

from __future__ import annotations

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

NAMES = ("artifacts", "uploads", "logs")
BACKED_UP = ("artifacts", "uploads")


def logs_bucket_statements(bucket_arn: str, elb_account_arn: str, account: str) -> list[Statement]:
    """Who may write into the logs bucket: ALB log delivery (the region's ELB account) under ``alb/``, and the
    S3 logging service under ``s3/`` for this account's buckets."""
    return [
        {
            "Sid": "AlbAccessLogs",
            "Effect": "Allow",
            "Principal": {"AWS": elb_account_arn},
            "Action": "s3:PutObject",
            "Resource": f"{bucket_arn}/alb/AWSLogs/{account}/*",
        },
        {
            "Sid": "S3ServerAccessLogs",
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": f"{bucket_arn}/s3/*",
            "Condition": {"StringEquals": {"aws:SourceAccount": account}},
        },
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


class Buckets(pulumi.ComponentResource):
    """The platform's S3 buckets."""

    buckets: dict[str, aws.s3.Bucket]
    policies: dict[str, aws.s3.BucketPolicy]
    key: aws.kms.Key
    region: str

    def __init__(
        self,
        name: str,
        config: BucketsConfig,
        *,
        protect: bool = True,
        names: Sequence[str] = NAMES,
        backup_tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``config``: the ``keel:buckets`` section (CORS origins, version and log retention, force-destroy).
        ``protect``: True puts ``protect`` and ``retainOnDelete`` on the buckets and the key. ``names``: which
        buckets to create (``logs`` always: it receives the others' access logs). ``backup_tags``: None or empty,
        no backup plan selects the buckets; ``Backup.tag``, artifacts and uploads are backed up."""
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
        self.buckets = {}
        self.policies = {}
        for bucket_name in ("logs", *[n for n in names if n != "logs"]):
            tags = {"Name": f"{name}-{bucket_name}", "keel.dev/bucket": bucket_name}
            if bucket_name == "logs":
                tags["keel.dev/backup-exempt"] = "access logs: versioned, expired by lifecycle"
            if bucket_name in BACKED_UP:
                tags.update(backup_tags or {})
            self.buckets[bucket_name] = aws.s3.Bucket(
                f"{name}-{bucket_name}", force_destroy=config.force_destroy, tags=tags, opts=kept
            )
            self._configure(bucket_name, config, ctx, elb_account)
        self.register_outputs({"names": {k: b.bucket for k, b in self.buckets.items()}})

    def _configure(
        self, bucket_name: str, config: BucketsConfig, ctx: context.AwsContext, elb_account: pulumi.Output[str]
    ) -> None:
        label = f"{self.pulumi_resource_name}-{bucket_name}"
        bucket = self.buckets[bucket_name]
        child = pulumi.ResourceOptions(parent=self)
        block = aws.s3.BucketPublicAccessBlock(
            label,
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            label,
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        aws.s3.BucketVersioning(
            label,
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child,
        )
        sse = (
            aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="AES256"
            )
            if bucket_name == "logs"
            else aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="aws:kms", kms_master_key_id=self.key.arn
            )
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            label,
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=sse, bucket_key_enabled=bucket_name != "logs"
                )
            ],
            opts=child,
        )

        def policy(arns: list[str]) -> str:
            statements = [deny_insecure_transport(arns[0])]
            if bucket_name == "logs":
                statements += logs_bucket_statements(arns[0], arns[1], ctx.account)
            return json.dumps(document(statements))

        self.policies[bucket_name] = aws.s3.BucketPolicy(
            label,
            bucket=bucket.id,
            policy=pulumi.Output.all(bucket.arn, elb_account).apply(policy),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[block]),
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
        if bucket_name == "logs":
            rules.append(
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-logs",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=config.log_retention_days),
                )
            )
        aws.s3.BucketLifecycleConfiguration(label, bucket=bucket.id, rules=rules, opts=child)
        if bucket_name != "logs":
            aws.s3.BucketLogging(
                label,
                bucket=bucket.id,
                target_bucket=self.buckets["logs"].id,
                target_prefix=f"s3/{bucket_name}/",
                opts=child,
            )
        if bucket_name == "uploads" and config.cors_origins:
            aws.s3.BucketCorsConfiguration(
                label,
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
