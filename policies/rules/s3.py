"""S3 policies: public access, ownership, versioning, encryption, TLS, lifecycle, logging and replication."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from ._util import (
    S3_BUCKET,
    as_list,
    at_least,
    days,
    dig,
    document,
    is_true,
    of_type,
    public_statements,
    referenced,
    resource_policy,
    shown,
    sid,
    stack_policy,
    statements,
    threshold,
)

PAB = ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",)
OWNERSHIP = ("aws:s3/bucketOwnershipControls:BucketOwnershipControls",)
ACL = ("aws:s3/bucketAcl:BucketAcl", "aws:s3/bucketAclV2:BucketAclV2")
VERSIONING = ("aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2")
SSE = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
LIFECYCLE = (
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
)
LOGGING = ("aws:s3/bucketLogging:BucketLogging", "aws:s3/bucketLoggingV2:BucketLoggingV2")
POLICY = ("aws:s3/bucketPolicy:BucketPolicy",)
CORS = (
    "aws:s3/bucketCorsConfiguration:BucketCorsConfiguration",
    "aws:s3/bucketCorsConfigurationV2:BucketCorsConfigurationV2",
)
REPLICATION = ("aws:s3/bucketReplicationConfig:BucketReplicationConfig",)
BLOCKS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
PUBLIC_ACLS = ("public-read", "public-read-write", "authenticated-read")


def _blocks(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    missing = [b for b in BLOCKS if not is_true(props.get(b))]
    if missing:
        yield f"All four public-access blocks must be true; not set: {', '.join(missing)}."


def _no_public_acl(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    acl = props.get("acl")
    if acl in PUBLIC_ACLS:
        yield f"Bucket ACL {acl!r} makes objects public; ACLs stay off (BucketOwnerEnforced)."
    for grant in as_list(dig(props, "accessControlPolicy.grants")):
        if "AllUsers" in str(dig(grant, "grantee.uri", "")) or "AuthenticatedUsers" in str(
            dig(grant, "grantee.uri", "")
        ):
            yield "Bucket ACL grants access to all users; ACLs stay off (BucketOwnerEnforced)."


def _ownership(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if dig(props, "rule.objectOwnership") != "BucketOwnerEnforced":
        yield "Object ownership must be BucketOwnerEnforced (ACLs disabled)."


def _versioning(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if dig(props, "versioningConfiguration.status") != "Enabled":
        yield "Versioning must be Enabled so overwritten and deleted objects can be recovered."


def _tls_only(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    for st in statements(document(props.get("policy"))):
        if st.get("Effect") == "Deny" and dig(st, "Condition.Bool.aws:SecureTransport") in ("false", False):
            return
    yield "The bucket policy must deny requests without TLS (Deny when aws:SecureTransport is false)."


def _no_public_principal(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    for st in public_statements(document(props.get("policy"))):
        yield (
            f"Bucket policy statement {sid(st)} allows any principal ('*') without a condition that pins it to "
            "this account or a source; the bucket would be public."
        )


def _cors(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    for rule in as_list(props.get("corsRules")):
        loose = [
            str(o) for o in as_list(rule.get("allowedOrigins")) if "*" in str(o) or not str(o).startswith("https://")
        ]
        if loose:
            yield f"CORS must name the app's HTTPS origins; not {', '.join(loose)} (keel:storage.corsOrigins)."


def _abort_multipart(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    rules = as_list(props.get("rules"))
    if not any(
        dig(r, "status") == "Enabled" and dig(r, "abortIncompleteMultipartUpload.daysAfterInitiation") for r in rules
    ):
        yield "A lifecycle rule must abort incomplete multipart uploads (they are billed and invisible)."


def _replication_encrypted(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    """S3 replicates SSE-KMS objects only when a rule opts in (``sourceSelectionCriteria.sseKmsEncryptedObjects``),
    and then needs the KMS key, in the destination's region, that encrypts the replicas (``replicaKmsKeyId``)
    (Amazon S3 User Guide, "Replicating encrypted objects"). keel's data buckets are SSE-KMS: a rule without the
    opt-in replicates none of their objects."""
    for rule in as_list(props.get("rules")):
        if dig(rule, "status") != "Enabled":
            continue
        label = rule.get("id") or "(no id)"
        if dig(rule, "sourceSelectionCriteria.sseKmsEncryptedObjects.status") != "Enabled":
            yield (
                f"Replication rule {label} skips SSE-KMS objects (sourceSelectionCriteria.sseKmsEncryptedObjects is "
                "not Enabled): the data buckets' objects would not be replicated."
            )
        key = dig(rule, "destination.encryptionConfiguration.replicaKmsKeyId")
        if not key:
            yield (
                f"Replication rule {label} names no key for the replicas "
                "(destination.encryptionConfiguration.replicaKmsKeyId)."
            )
        elif "alias/aws/" in str(key):
            yield (
                f"Replication rule {label} encrypts replicas with the AWS managed key {key}, not a customer-managed "
                "key."
            )


def _buckets_by_config(resources: Sequence[PolicyResource], types: tuple[str, ...]) -> set[str]:
    return {b.urn for r in of_type(resources, *types) for b in referenced(r, "bucket")}


def _complete(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    wanted = {
        "public-access block": PAB,
        "ownership controls": OWNERSHIP,
        "versioning": VERSIONING,
        "default encryption": SSE,
        "bucket policy": POLICY,
        "lifecycle configuration": LIFECYCLE,
    }
    have = {label: _buckets_by_config(resources, types) for label, types in wanted.items()}
    for bucket in of_type(resources, *S3_BUCKET):
        missing = [label for label, urns in have.items() if bucket.urn not in urns]
        if missing:
            yield bucket.urn, f"Bucket {bucket.name} is missing: {', '.join(missing)}."


def _kms(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    for config in of_type(resources, *SSE):
        for bucket in referenced(config, "bucket"):
            algorithm = dig(config.props, "rules.0.applyServerSideEncryptionByDefault.sseAlgorithm")
            key = dig(config.props, "rules.0.applyServerSideEncryptionByDefault.kmsMasterKeyId")
            tags = bucket.props.get("tags") or {}
            log_bucket = isinstance(tags, Mapping) and tags.get("keel.dev/bucket") == "logs"
            if log_bucket:
                continue
            if algorithm not in ("aws:kms", "aws:kms:dsse"):
                yield config.urn, f"Bucket {bucket.name} must use SSE-KMS (only the ALB logs bucket may use SSE-S3)."
            elif not key or str(key).startswith("alias/aws/"):
                yield config.urn, f"Bucket {bucket.name} must use a customer-managed key (kmsMasterKeyId), not aws/s3."


def _keeps_versions(resources: Sequence[PolicyResource], args: StackValidationArgs) -> Iterable[tuple[str, str]]:
    """Lifecycle rules never expire a data bucket's current objects, and keep old versions long enough to undo
    a bad write. The logs bucket may expire what it holds (its retention)."""
    minimum = threshold(args, "minimumDays", 30)
    for config in of_type(resources, *LIFECYCLE):
        for bucket in referenced(config, "bucket"):
            tags = bucket.props.get("tags") or {}
            logs = isinstance(tags, Mapping) and tags.get("keel.dev/bucket") == "logs"
            for rule in as_list(config.props.get("rules")):
                if dig(rule, "status") != "Enabled":
                    continue
                expires = rule.get("expiration")
                if expires and not logs:
                    yield config.urn, f"Bucket {bucket.name}: rule {rule.get('id')} expires current objects (data)."
                elif expires and not at_least(expires.get("days"), minimum, "expiration.days"):
                    yield config.urn, f"Bucket {bucket.name}: rule {rule.get('id')} keeps logs under {days(minimum)}."
                kept = dig(rule, "noncurrentVersionExpiration.noncurrentDays")
                if kept is not None and not at_least(kept, minimum, "noncurrentDays"):
                    yield (
                        config.urn,
                        f"Bucket {bucket.name}: rule {rule.get('id')} drops old versions after {shown(kept)} days; "
                        f"keep them at least {days(minimum)} to undo a bad write.",
                    )


def _logging(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    logged = _buckets_by_config(resources, LOGGING)
    targets = {b.urn for r in of_type(resources, *LOGGING) for b in referenced(r, "targetBucket")}
    for bucket in of_type(resources, *S3_BUCKET):
        if bucket.urn not in logged and bucket.urn not in targets:
            yield bucket.urn, f"Bucket {bucket.name} has no server access logging."


POLICIES = [
    resource_policy(
        "aws-s3-bucket-public-access-block-all",
        "Buckets block every kind of public access.",
        Severity.CRITICAL,
        "Set all four flags of aws.s3.BucketPublicAccessBlock to true.",
        PAB,
        _blocks,
    ),
    resource_policy(
        "aws-s3-bucket-disallow-public-acl",
        "Buckets grant nothing through ACLs.",
        Severity.CRITICAL,
        "Remove the ACL; use BucketOwnerEnforced ownership and bucket policies.",
        (*ACL, *S3_BUCKET),
        _no_public_acl,
    ),
    resource_policy(
        "aws-s3-bucket-ownership-enforced",
        "Bucket ownership is BucketOwnerEnforced (ACLs off).",
        Severity.HIGH,
        "Set rule.objectOwnership to BucketOwnerEnforced.",
        OWNERSHIP,
        _ownership,
    ),
    resource_policy(
        "aws-s3-bucket-versioning-enabled",
        "Buckets keep object versions.",
        Severity.MEDIUM,
        "Set versioningConfiguration.status to Enabled.",
        VERSIONING,
        _versioning,
    ),
    resource_policy(
        "aws-s3-bucket-policy-tls-only",
        "Bucket policies deny requests without TLS.",
        Severity.HIGH,
        "Add a Deny statement on aws:SecureTransport=false for the bucket and its objects.",
        POLICY,
        _tls_only,
    ),
    resource_policy(
        "aws-s3-bucket-lifecycle-aborts-multipart",
        "Lifecycle rules abort incomplete multipart uploads.",
        Severity.LOW,
        "Add a rule with abortIncompleteMultipartUpload.daysAfterInitiation.",
        LIFECYCLE,
        _abort_multipart,
    ),
    resource_policy(
        "aws-s3-bucket-policy-no-public-principal",
        "Bucket policies grant nothing to anyone ('*') without a restricting condition.",
        Severity.CRITICAL,
        "Name the principals, or pin '*' with aws:SourceAccount / aws:SourceArn / aws:PrincipalOrgID.",
        POLICY,
        _no_public_principal,
    ),
    resource_policy(
        "aws-s3-bucket-cors-restricted-origins",
        "Browsers may use a bucket only from the app's own HTTPS origins.",
        Severity.HIGH,
        "List the app's https:// origins (no '*').",
        CORS,
        _cors,
    ),
    resource_policy(
        "aws-s3-bucket-replication-encrypted",
        "Replication copies SSE-KMS objects and encrypts the replicas with a customer-managed key.",
        Severity.HIGH,
        "Enable sourceSelectionCriteria.sseKmsEncryptedObjects and set destination.encryptionConfiguration."
        "replicaKmsKeyId to a customer-managed key in the destination's region (components/storage.py).",
        REPLICATION,
        _replication_encrypted,
    ),
    stack_policy(
        "aws-s3-bucket-complete-configuration",
        "Every bucket has its protection resources.",
        Severity.HIGH,
        "Create the missing configuration resources for the bucket (components/storage.py).",
        _complete,
    ),
    stack_policy(
        "aws-s3-bucket-sse-kms",
        "Buckets are encrypted with KMS (the ALB logs bucket may use SSE-S3).",
        Severity.HIGH,
        "Set sseAlgorithm aws:kms with a customer-managed key and bucket keys.",
        _kms,
    ),
    stack_policy(
        "aws-s3-bucket-lifecycle-keeps-data",
        "Lifecycle rules never expire data, and keep old versions long enough to undo a bad write.",
        Severity.HIGH,
        "Expire only noncurrent versions, after 30 days or more (the logs bucket may expire its logs).",
        _keeps_versions,
        {"minimumDays": {"type": "integer", "minimum": 1, "default": 30}},
    ),
    stack_policy(
        "aws-s3-bucket-access-logging",
        "Every bucket's access is logged (the log bucket excepted).",
        Severity.MEDIUM,
        "Add aws.s3.BucketLogging targeting the logs bucket.",
        _logging,
    ),
]
