"""Bucket replication (``keel:buckets.replication``): config rules both ways, the replica buckets and key in the copy
region, the replication rules and role exactly, the policies that judge them, and what ``keel cost`` says."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pulumi_aws as aws
import pytest

from components.config import BucketsConfig, ConfigError, validate
from components.storage import Buckets, replication_statements, replication_trust
from keel import cost
from keel.engine import Preview, Step
from keel.fake import DEFAULT_ACCOUNT as ACCOUNT
from tests.helpers import OutputsMonitor, physical_id, policy_doc, run
from tests.helpers import stack_config as stack
from tests.test_policy_pack import DELETE, check_resource, check_stack, patch

REPLICATED = ("artifacts", "uploads")
REPLICA_NAMES = (*(f"keel-prod-{b}-replica" for b in REPLICATED), "keel-prod-replica-logs")
CONFIG = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
BUCKET = "aws:s3/bucket:Bucket"
DR_PROVIDER = "pulumi:providers:aws::keel-prod-aws-us-west-2"

# ------------------------------------------------------------------------------------------ config rules

NO_COPY = (
    "keel:buckets.replication.enabled: got true but keel:backup.copyRegion is not set; set keel:backup.copyRegion "
    "(the region the replicas live in) or keel:buckets.replication.enabled: false"
)
CASES: list[tuple[str, dict[str, str], list[str]]] = [
    ("replication without a backup section", stack("dev", buckets={"replication": {"enabled": True}}), [NO_COPY]),
    (
        "replication without a copy region",
        stack("dev", buckets={"replication": {"enabled": True}}, backup={}),
        [NO_COPY],
    ),
    (
        "prod turns replication off",
        stack(buckets={"replication": {"enabled": False}}),
        [
            "keel:buckets.replication.enabled: got false in a prod stack; allowed: true or unset (AWS Backup copies "
            "the buckets to keel:backup.copyRegion every 6 hours; replication keeps that copy minutes behind)"
        ],
    ),
    (
        "prod turns replication time control off",
        stack(buckets={"replication": {"replicationTimeControl": False}}),
        [
            "keel:buckets.replication.replicationTimeControl: got false in a prod stack; allowed: true (without it S3 "
            "bounds no replication time: most objects within 15 minutes, some in hours)"
        ],
    ),
    (
        "prod without a copy region names both keys",
        {**stack(buckets={"replication": {"enabled": True}}), "keel:backup": json.dumps({"vaultLock": {}})},
        [
            NO_COPY,
            "keel:backup.copyRegion: missing in a prod stack; allowed: a second region for disaster recovery",
        ],
    ),
    (
        "not a flag",
        stack("dev", buckets={"replication": {"enabled": "yes"}}),
        ["keel:buckets.replication.enabled: got 'yes'; expected true or false"],
    ),
    (
        "unknown key",
        stack("dev", buckets={"replication": {"rtc": True}}),
        ["keel:buckets.replication.rtc: unknown key; allowed keys: enabled, replicationTimeControl"],
    ),
]


@pytest.mark.parametrize(("raw", "problems"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_replication_config_rules(raw: dict[str, str], problems: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        validate("t", raw)
    assert sorted(err.value.problems) == sorted(problems)


@pytest.mark.parametrize(
    ("raw", "replicates"),
    [
        (stack(), True),  # prod: a copy region, replication unset: on
        (stack(buckets={"replication": {"enabled": True, "replicationTimeControl": True}}), True),
        (stack("staging", alerts={"emails": ["a@example.com"]}, backup={"vaultLock": {}}), False),  # no copy region
        (stack("dev"), False),
        (stack("dev", backup={"copyRegion": "us-west-2"}), True),  # unset follows the copy region
        (stack("dev", backup={"copyRegion": "us-west-2"}, buckets={"replication": {"enabled": False}}), False),
        (
            stack(
                "dev", backup={"copyRegion": "us-west-2"}, buckets={"replication": {"replicationTimeControl": False}}
            ),
            True,
        ),
    ],
)
def test_valid_replication_choices(raw: dict[str, str], replicates: bool) -> None:
    cfg = validate("t", raw)
    assert cfg.buckets.replicates(cfg.backup.copy_region if cfg.backup is not None else None) is replicates


def test_defaults_follow_the_copy_region_with_time_control() -> None:
    replication = BucketsConfig().replication
    assert (replication.enabled, replication.replication_time_control) == (None, True)


# ------------------------------------------------------------------------------------------ the prod stack


def on_copy_provider(step: Step) -> bool:
    return step.provider.rsplit("::", 1)[0].endswith(DR_PROVIDER)


def test_replica_buckets_live_in_the_copy_region_configured_like_their_sources(
    preview: Callable[[str], Preview],
) -> None:
    p = preview("prod")
    key = p.one("aws:kms/key:Key", "keel-prod-storage-replica")
    assert on_copy_provider(key) and key.protect and key.retain_on_delete
    assert key.inputs["enableKeyRotation"] is True
    assert (
        key.inputs["description"]
        == "keel-prod-storage-replica: SSE-KMS of the artifacts and uploads replicas in us-west-2"
    )
    assert on_copy_provider(p.one("aws:kms/alias:Alias", "keel-prod-storage-replica"))
    key_arn = f"arn:aws:kms:us-west-2:{ACCOUNT}:key/{physical_id(key)}"
    logs = p.one(BUCKET, "keel-prod-replica-logs")
    for label in REPLICA_NAMES:
        # every child of a replica, the bucket and its seven configurations, is on the copy region's provider
        children = [s for s in p.steps if s.custom and s.name == label]
        assert {s.type.rsplit(":", 1)[1] for s in children} >= {
            "Bucket",
            "BucketPublicAccessBlock",
            "BucketOwnershipControls",
            "BucketVersioning",
            "BucketServerSideEncryptionConfiguration",
            "BucketPolicy",
            "BucketLifecycleConfiguration",
        }
        assert all(on_copy_provider(s) for s in children), label
        bucket = p.one(BUCKET, label)
        assert (bucket.protect, bucket.retain_on_delete, bucket.inputs["forceDestroy"]) == (True, True, False)
        block = p.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", label).inputs
        assert {k: v for k, v in block.items() if k != "bucket"} == dict.fromkeys(
            ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), True
        )
        assert p.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls", label).inputs["rule"] == {
            "objectOwnership": "BucketOwnerEnforced"
        }
        assert p.one("aws:s3/bucketVersioning:BucketVersioning", label).inputs["versioningConfiguration"] == {
            "status": "Enabled"
        }
        arn = f"arn:aws:s3:::{physical_id(bucket)}"
        statements = policy_doc(p.one("aws:s3/bucketPolicy:BucketPolicy", label))["Statement"]
        assert statements[0] == {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [arn, f"{arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
        sse = p.one(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", label
        ).inputs["rules"]
        rules = {
            r["id"]: r
            for r in p.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", label).inputs["rules"]
        }
        assert rules["abort-incomplete-multipart-uploads"]["abortIncompleteMultipartUpload"] == {
            "daysAfterInitiation": 7
        }
        assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"] == {"noncurrentDays": 90}
        if label == "keel-prod-replica-logs":
            # S3 access logs go to a bucket in the same region, with SSE-S3
            assert sse == [
                {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}, "bucketKeyEnabled": False}
            ]
            assert rules["expire-logs"]["expiration"] == {"days": 365}
            assert statements[1:] == [
                {
                    "Sid": "S3ServerAccessLogs",
                    "Effect": "Allow",
                    "Principal": {"Service": "logging.s3.amazonaws.com"},
                    "Action": "s3:PutObject",
                    "Resource": f"{arn}/s3/*",
                    "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
                }
            ]
            assert bucket.inputs["tags"] == {
                "Name": label,
                "keel.dev/bucket": "logs",
                "keel.dev/backup-exempt": "access logs of the replicas: versioned, expired by lifecycle",
            }
            continue
        name = label.removeprefix("keel-prod-").removesuffix("-replica")
        source = p.one(BUCKET, f"keel-prod-{name}")
        assert sse == [
            {
                "applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": key_arn},
                "bucketKeyEnabled": True,
            }
        ]
        assert len(statements) == 1
        assert "expire-logs" not in rules
        logging = p.one("aws:s3/bucketLogging:BucketLogging", label)
        assert on_copy_provider(logging)
        assert logging.property_dependencies["targetBucket"] == [logs.urn]
        assert logging.inputs["targetPrefix"] == f"s3/{name}/"
        assert bucket.inputs["tags"] == {
            "Name": label,
            "keel.dev/bucket": name,
            "keel.dev/replica-of": physical_id(source),
            "keel.dev/backup-exempt": "replica: its source bucket is in the backup plan",
        }
        assert not on_copy_provider(source)


def test_each_source_replicates_everything_to_its_replica_with_time_control(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    key = p.one("aws:kms/key:Key", "keel-prod-storage-replica")
    role = p.one("aws:iam/role:Role", "keel-prod-replication")
    role_policy = p.one("aws:iam/rolePolicy:RolePolicy", "keel-prod-replication")
    assert sorted(c.name for c in p.of_type(CONFIG)) == ["keel-prod-artifacts", "keel-prod-uploads"]
    for name in REPLICATED:
        config = p.one(CONFIG, f"keel-prod-{name}")
        source = p.one(BUCKET, f"keel-prod-{name}")
        replica = p.one(BUCKET, f"keel-prod-{name}-replica")
        assert not on_copy_provider(config)  # configured on the source, in the source's region
        assert config.inputs == {
            "bucket": physical_id(source),
            "role": f"arn:aws:iam::{ACCOUNT}:role/{physical_id(role)}",
            "rules": [
                {
                    "id": "disaster-recovery",
                    "status": "Enabled",
                    "filter": {"prefix": ""},  # every object
                    "deleteMarkerReplication": {"status": "Enabled"},
                    "sourceSelectionCriteria": {"sseKmsEncryptedObjects": {"status": "Enabled"}},
                    "destination": {
                        "bucket": f"arn:aws:s3:::{physical_id(replica)}",
                        "storageClass": "STANDARD",
                        "encryptionConfiguration": {
                            "replicaKmsKeyId": f"arn:aws:kms:us-west-2:{ACCOUNT}:key/{physical_id(key)}"
                        },
                        "replicationTime": {"status": "Enabled", "time": {"minutes": 15}},
                        "metrics": {"status": "Enabled", "eventThreshold": {"minutes": 15}},
                    },
                }
            ],
        }
        # S3 refuses a replication configuration before both buckets are versioned; the role's rights come first
        versioning = "aws:s3/bucketVersioning:BucketVersioning"
        assert {
            p.one(versioning, f"keel-prod-{name}").urn,
            p.one(versioning, f"keel-prod-{name}-replica").urn,
            role_policy.urn,
        } <= set(config.dependencies)


def test_the_replication_role_has_exactly_what_aws_documents(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    role = p.one("aws:iam/role:Role", "keel-prod-replication")
    assert policy_doc(role, "assumeRolePolicy") == replication_trust(ACCOUNT)
    assert policy_doc(role, "assumeRolePolicy")["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
        }
    ]
    [inline] = [r for r in p.of_type("aws:iam/rolePolicy:RolePolicy") if r.inputs["role"] == physical_id(role)]
    assert not [
        a
        for a in p.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == physical_id(role)
    ]
    arn = {
        n: f"arn:aws:s3:::{physical_id(p.one(BUCKET, f'keel-prod-{n}'))}"
        for n in (*REPLICATED, *(f"{b}-replica" for b in REPLICATED))
    }
    source_key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{physical_id(p.one('aws:kms/key:Key', 'keel-prod-storage'))}"
    replica_key = (
        f"arn:aws:kms:us-west-2:{ACCOUNT}:key/{physical_id(p.one('aws:kms/key:Key', 'keel-prod-storage-replica'))}"
    )
    statements = policy_doc(inline)["Statement"]
    assert statements == replication_statements(
        [(arn[b], arn[f"{b}-replica"]) for b in REPLICATED], source_key, replica_key, "us-east-1", "us-west-2"
    )
    assert [s["Sid"] for s in statements] == [
        "ReadSourceReplicationConfiguration",
        "ReadSourceObjectVersions",
        "WriteReplicas",
        "DecryptSourceObjectsThroughS3",
        "EncryptReplicasThroughS3",
    ]


def test_replication_statements_are_exact() -> None:
    src, dst = "arn:aws:s3:::src", "arn:aws:s3:::dst"
    src_key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/a"
    dst_key = f"arn:aws:kms:us-west-2:{ACCOUNT}:key/b"
    assert replication_statements([(src, dst)], src_key, dst_key, "us-east-1", "us-west-2") == [
        {
            "Sid": "ReadSourceReplicationConfiguration",
            "Effect": "Allow",
            "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
            "Resource": [src],
        },
        {
            "Sid": "ReadSourceObjectVersions",
            "Effect": "Allow",
            "Action": ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"],
            "Resource": [f"{src}/*"],
        },
        {
            "Sid": "WriteReplicas",
            "Effect": "Allow",
            "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
            "Resource": [f"{dst}/*"],
        },
        {
            "Sid": "DecryptSourceObjectsThroughS3",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": src_key,
            "Condition": {
                "StringLike": {
                    "kms:ViaService": "s3.us-east-1.amazonaws.com",
                    "kms:EncryptionContext:aws:s3:arn": [src, f"{src}/*"],  # bucket keys: the bucket's ARN
                }
            },
        },
        {
            "Sid": "EncryptReplicasThroughS3",
            "Effect": "Allow",
            "Action": ["kms:Encrypt", "kms:Decrypt"],  # Decrypt: S3 verifies the replica's bucket key
            "Resource": dst_key,
            "Condition": {
                "StringLike": {
                    "kms:ViaService": "s3.us-west-2.amazonaws.com",
                    "kms:EncryptionContext:aws:s3:arn": [dst, f"{dst}/*"],
                }
            },
        },
    ]


def test_replicas_are_outputs_and_out_of_the_backup_plan(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    outputs = p.steps[0].outputs
    assert outputs["bucketReplicaNames"] == {
        b: physical_id(p.one(BUCKET, f"keel-prod-{b}-replica")) for b in REPLICATED
    }
    for label in REPLICA_NAMES:
        tags = p.one(BUCKET, label).inputs["tags"]
        assert "keel.dev/backup" not in tags and tags["keel.dev/backup-exempt"]


def test_stacks_without_a_copy_region_replicate_nothing(preview: Callable[[str], Preview]) -> None:
    p = preview("dev")
    assert p.of_type(CONFIG) == []
    assert not [s for s in p.steps if "replica" in s.name and s.type.startswith(("aws:s3/", "aws:kms/", "aws:iam/"))]
    assert p.steps[0].outputs["bucketReplicaNames"] == {}


# ------------------------------------------------------------------------------------------ the component alone


def buckets_program(config: BucketsConfig, **kwargs: Any) -> Callable[[], None]:
    def program() -> None:
        copy = aws.Provider("copy", region="us-west-2")
        Buckets("s", config, protect=False, replica_provider=copy, replica_region="us-west-2", **kwargs)

    return program


def test_without_time_control_the_rule_has_no_time_bound() -> None:
    config = BucketsConfig.model_validate({"replication": {"replicationTimeControl": False}}, by_alias=True)
    p = run(buckets_program(config))
    for name in REPLICATED:
        destination = p.one(CONFIG, f"s-{name}").inputs["rules"][0]["destination"]
        assert "replicationTime" not in destination and "metrics" not in destination
        assert destination["storageClass"] == "STANDARD"
    # unprotected stacks (dev) keep unprotected replicas; forceDestroy follows the config
    replica = p.one(BUCKET, "s-uploads-replica")
    assert (replica.protect, replica.retain_on_delete, replica.inputs["forceDestroy"]) == (False, False, False)
    assert replica.provider.rsplit("::", 1)[0].endswith("pulumi:providers:aws::copy")


def test_only_the_buckets_created_are_replicated() -> None:
    p = run(buckets_program(BucketsConfig(), names=("logs", "artifacts")))
    assert [c.name for c in p.of_type(CONFIG)] == ["s-artifacts"]
    assert sorted(b.name for b in p.of_type(BUCKET)) == [
        "s-artifacts",
        "s-artifacts-replica",
        "s-logs",
        "s-replica-logs",
    ]


def test_replication_turned_off_creates_nothing_in_the_copy_region() -> None:
    config = BucketsConfig.model_validate({"replication": {"enabled": False}}, by_alias=True)
    p = run(buckets_program(config))
    assert p.of_type(CONFIG) == [] and p.of_type("aws:iam/role:Role") == []
    assert sorted(b.name for b in p.of_type(BUCKET)) == ["s-artifacts", "s-logs", "s-uploads"]


def test_the_component_registers_its_replicas() -> None:
    monitor = OutputsMonitor()
    p = run(buckets_program(BucketsConfig()), monitor=monitor)
    outputs = monitor.outputs[p.one("keel:storage:Buckets", "s").urn]
    key = p.one("aws:kms/key:Key", "s-storage-replica")
    assert outputs["replica_names"] == {b: physical_id(p.one(BUCKET, f"s-{b}-replica")) for b in REPLICATED}
    assert outputs["replica_key"] == f"arn:aws:kms:us-west-2:{ACCOUNT}:key/{physical_id(key)}"
    assert sorted(outputs["names"]) == ["artifacts", "logs", "uploads"]


def test_replication_needs_the_copy_provider() -> None:
    config = BucketsConfig.model_validate({"replication": {"enabled": True}}, by_alias=True)
    with pytest.raises(Exception, match=re.escape("keel:buckets.replication.enabled: got true but no provider")):
        run(lambda: Buckets("s", config, protect=False))


# ------------------------------------------------------------------------------------------ policies


@pytest.fixture(scope="module")
def prod_doc(preview: Callable[[str], Preview]) -> dict[str, Any]:
    return preview("prod").to_json()


def replication_state(doc: dict[str, Any], name: str = "keel-prod-uploads") -> dict[str, Any]:
    [found] = [
        s["newState"] for s in doc["steps"] if s["newState"]["type"] == CONFIG and s["urn"].endswith(f"::{name}")
    ]
    return dict(found)


POLICY = "aws-s3-bucket-replication-encrypted"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({}, []),
        (
            {"rules.0.sourceSelectionCriteria": DELETE},
            [
                "Replication rule disaster-recovery skips SSE-KMS objects "
                "(sourceSelectionCriteria.sseKmsEncryptedObjects is not Enabled): the data buckets' objects would not "
                "be replicated."
            ],
        ),
        (
            {"rules.0.destination.encryptionConfiguration": DELETE},
            [
                "Replication rule disaster-recovery names no key for the replicas "
                "(destination.encryptionConfiguration.replicaKmsKeyId)."
            ],
        ),
        (
            {"rules.0.destination.encryptionConfiguration.replicaKmsKeyId": "alias/aws/s3"},
            [
                "Replication rule disaster-recovery encrypts replicas with the AWS managed key alias/aws/s3, not a "
                "customer-managed key."
            ],
        ),
        (
            {"rules.0.status": "Disabled", "rules.0.destination.encryptionConfiguration": DELETE},
            [],
        ),  # replicates nothing
    ],
)
def test_replication_encrypted_policy_both_ways(
    prod_doc: dict[str, Any], change: dict[str, Any], expected: list[str]
) -> None:
    state = replication_state(prod_doc)
    changed = {**state, "inputs": patch(state["inputs"], change)}
    assert check_resource(POLICY, changed) == expected


def drop_tag(doc: dict[str, Any], name: str, tag: str) -> dict[str, Any]:
    doc = json.loads(json.dumps(doc))
    for step in doc["steps"]:
        state = step["newState"]
        if state["type"] == BUCKET and step["urn"].endswith(f"::{name}"):
            state["inputs"]["tags"] = {k: v for k, v in state["inputs"]["tags"].items() if k != tag}
    return doc


def drop(doc: dict[str, Any], type_: str, name: str) -> dict[str, Any]:
    doc = json.loads(json.dumps(doc))
    doc["steps"] = [s for s in doc["steps"] if not (s["newState"]["type"] == type_ and s["urn"].endswith(f"::{name}"))]
    return doc


@pytest.mark.parametrize(
    "policy",
    [
        "aws-s3-bucket-complete-configuration",
        "aws-s3-bucket-sse-kms",
        "aws-s3-bucket-access-logging",
        "aws-s3-bucket-lifecycle-keeps-data",
        "aws-backup-stateful-resources-selected",
        "stack-stateful-resources-protected",
    ],
)
def test_the_replicas_pass_the_bucket_policies(prod_doc: dict[str, Any], policy: str) -> None:
    assert check_stack(policy, prod_doc) == []


@pytest.mark.parametrize(
    ("policy", "broken", "expected"),
    [
        (
            "aws-backup-stateful-resources-selected",
            lambda d: drop_tag(d, "keel-prod-uploads-replica", "keel.dev/backup-exempt"),
            [
                (
                    "keel-prod-uploads-replica",
                    "Stateful resource keel-prod-uploads-replica (aws:s3/bucket:Bucket) is in no backup selection: "
                    "give it the plan's tag (keel.dev/backup=<plan>), or say why not in a keel.dev/backup-exempt "
                    "tag.",
                )
            ],
        ),
        (
            "aws-s3-bucket-access-logging",
            lambda d: drop(d, "aws:s3/bucketLogging:BucketLogging", "keel-prod-artifacts-replica"),
            [("keel-prod-artifacts-replica", "Bucket keel-prod-artifacts-replica has no server access logging.")],
        ),
        (
            "aws-s3-bucket-complete-configuration",
            lambda d: drop(d, "aws:s3/bucketVersioning:BucketVersioning", "keel-prod-uploads-replica"),
            [("keel-prod-uploads-replica", "Bucket keel-prod-uploads-replica is missing: versioning.")],
        ),
    ],
)
def test_the_bucket_policies_see_the_replicas(
    prod_doc: dict[str, Any],
    policy: str,
    broken: Callable[[dict[str, Any]], dict[str, Any]],
    expected: list[tuple[str, str]],
) -> None:
    assert check_stack(policy, broken(prod_doc)) == expected


@pytest.mark.parametrize(
    ("policy", "type_", "name"),
    [
        ("aws-iam-role-trust-restricted", "aws:iam/role:Role", "keel-prod-replication"),
        ("aws-iam-policy-scoped-resources", "aws:iam/rolePolicy:RolePolicy", "keel-prod-replication"),
        ("aws-iam-policy-disallow-wildcard-action", "aws:iam/rolePolicy:RolePolicy", "keel-prod-replication"),
        ("aws-s3-bucket-policy-tls-only", "aws:s3/bucketPolicy:BucketPolicy", "keel-prod-uploads-replica"),
        ("aws-s3-bucket-policy-no-public-principal", "aws:s3/bucketPolicy:BucketPolicy", "keel-prod-replica-logs"),
        ("aws-s3-bucket-versioning-enabled", "aws:s3/bucketVersioning:BucketVersioning", "keel-prod-artifacts-replica"),
        (
            "aws-s3-bucket-public-access-block-all",
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            "keel-prod-artifacts-replica",
        ),
        ("aws-kms-key-rotation-enabled", "aws:kms/key:Key", "keel-prod-storage-replica"),
    ],
)
def test_the_replication_resources_pass_their_resource_policies(
    prod_doc: dict[str, Any], policy: str, type_: str, name: str
) -> None:
    [state] = [
        s["newState"] for s in prod_doc["steps"] if s["newState"]["type"] == type_ and s["urn"].endswith(f"::{name}")
    ]
    assert check_resource(policy, state) == []


def test_a_replication_role_trusting_any_account_is_caught(prod_doc: dict[str, Any]) -> None:
    [state] = [
        s["newState"]
        for s in prod_doc["steps"]
        if s["newState"]["type"] == "aws:iam/role:Role" and s["urn"].endswith("::keel-prod-replication")
    ]
    trust = json.loads(state["inputs"]["assumeRolePolicy"])
    del trust["Statement"][0]["Condition"]
    changed = {**state, "inputs": {**state["inputs"], "assumeRolePolicy": json.dumps(trust)}}
    assert check_resource("aws-iam-role-trust-restricted", changed) == [
        "The trust of s3.amazonaws.com must name this account or the source (aws:SourceAccount / aws:SourceArn), so "
        "no other account's resources can use it (confused deputy)."
    ]


# ------------------------------------------------------------------------------------------ cost

TABLE: dict[str, Any] = {
    "region": "us-east-1",
    "currency": "USD",
    "pricesAsOf": "2026-11-01",
    "hoursPerMonth": 730,
    "assumptions": {"spotDiscount": 0.6, "replicatedGbPerMonth": 100},
    "hourly": {},
    "monthly": {"s3.replication.interregion.gb": 0.02, "s3.replication.rtc.gb": 0.015},
}


def replication_step(name: str, rtc: bool) -> dict[str, Any]:
    urn = f"urn:pulumi:t::keel::keel:platform:Platform$keel:storage:Buckets${CONFIG}::{name}"
    destination: dict[str, Any] = {"bucket": "arn:aws:s3:::r", "storageClass": "STANDARD"}
    if rtc:
        destination["replicationTime"] = {"status": "Enabled", "time": {"minutes": 15}}
    rules = [{"id": "disaster-recovery", "status": "Enabled", "destination": destination}]
    return {"op": "create", "urn": urn, "newState": {"type": CONFIG, "urn": urn, "inputs": {"rules": rules}}}


def test_replication_is_priced_per_gb_and_its_storage_is_unknown() -> None:
    estimate = cost.estimate(
        {"steps": [replication_step("with-rtc", True), replication_step("without", False)]}, stack="t", table=TABLE
    )
    assert [
        (i.urn.rsplit("::", 1)[1], i.description, round(i.monthly, 2), i.assumption, i.component)
        for i in estimate.items
    ] == [
        ("with-rtc", "cross-region replication transfer", 2.0, "100 GB replicated a month", "keel:storage:Buckets"),
        ("with-rtc", "S3 Replication Time Control", 1.5, "100 GB replicated a month", "keel:storage:Buckets"),
        ("without", "cross-region replication transfer", 2.0, "100 GB replicated a month", "keel:storage:Buckets"),
    ]
    assert [(u["urn"].rsplit("::", 1)[1], u["missing"]) for u in estimate.unknown] == [
        (
            n,
            "replica storage, requests and replication metrics: depend on the size of the data and how much of it "
            "changes",
        )
        for n in ("with-rtc", "without")
    ]
    assert estimate.complete


def test_keel_cost_prices_the_prod_replication(preview: Callable[[str], Preview]) -> None:
    estimate = cost.estimate(preview("prod").to_json(), stack="prod")
    lines = sorted(
        (i.urn.rsplit("::", 1)[1], i.description, round(i.monthly, 2)) for i in estimate.items if i.type == CONFIG
    )
    # the shipped table: $0.02/GB out of us-east-1 to another region, RTC $0.015/GB, 50 GB a month per bucket
    assert lines == sorted(
        (f"keel-prod-{b}", what, amount)
        for b in REPLICATED
        for what, amount in (("cross-region replication transfer", 1.0), ("S3 Replication Time Control", 0.75))
    )
    replica_key = [i for i in estimate.items if i.urn.endswith("::keel-prod-storage-replica")]
    assert [(i.description, i.monthly) for i in replica_key] == [("KMS key", 1.0)]
