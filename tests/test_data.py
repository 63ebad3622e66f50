"""Data tier: database, caches, buckets, email and keys, per stack; grants; independence from EKS; secrets."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from components.config import BucketsConfig, ConfigError, EmailConfig, validate
from components.database import memory_gib, replica_zone, tuning
from components.email import Email, dns_records, send_statements
from components.storage import Buckets, read_statements, read_write_statements
from keel import cli
from keel.engine import Preview, Step
from keel.fake import digest
from tests.helpers import PROD_OPERATIONS, fixture_flags, physical_id, policy_doc, run, sg_rules

ACCOUNT = "123456789012"
CLUSTER = {"nodeGroups": {"general": {"instanceTypes": ["m5.xlarge"], "minSize": 2, "maxSize": 4}}}

# ------------------------------------------------------------------------------------------ config rules


def stack(environment: str = "prod", **sections: Any) -> dict[str, str]:
    raw = {"aws:region": "us-east-1", "keel:environment": environment, "keel:cluster": json.dumps(CLUSTER)}
    if environment == "prod":
        raw.update(PROD_OPERATIONS)
    raw.update({f"keel:{k}": json.dumps(v) for k, v in sections.items()})
    return raw


DB = {"instanceClass": "db.r6g.xlarge"}
CASES: list[tuple[str, dict[str, str], str]] = [
    (
        "evicting queue",
        stack(caches={"queue": {"maxmemoryPolicy": "allkeys-lru"}}),
        "keel:caches.queue.maxmemoryPolicy: got 'allkeys-lru' for a queue; allowed: 'noeviction' (an evicting queue "
        "silently loses jobs)",
    ),
    (
        "multi-AZ without replicas",
        stack("dev", caches={"cache": {"replicasPerShard": 0, "multiAz": True}}),
        "keel:caches.cache.multiAz: got true with replicasPerShard 0; Multi-AZ needs at least one replica per shard",
    ),
    (
        "prod cache without a replica",
        stack(caches={"cache": {"replicasPerShard": 0, "maxmemoryPolicy": "allkeys-lru"}}),
        "keel:caches.cache.replicasPerShard: got 0 in a prod stack; allowed: 1 to 5 (a failover target)",
    ),
    (
        "unknown eviction policy",
        stack(caches={"cache": {"maxmemoryPolicy": "lru"}}),
        "keel:caches.cache.maxmemoryPolicy: got 'lru'; allowed: 'noeviction', 'allkeys-lru', 'allkeys-lfu', "
        "'allkeys-random', 'volatile-lru', 'volatile-lfu', 'volatile-random' or 'volatile-ttl'",
    ),
    (
        "bad cache node type",
        stack(caches={"cache": {"nodeType": "m6g.large", "maxmemoryPolicy": "allkeys-lru"}}),
        "keel:caches.cache.nodeType: got 'm6g.large'; not an ElastiCache node type keel accepts (families t4g, t3, "
        "m6g, m7g, r6g, r7g); did you mean 'cache.m6g.large'?",
    ),
    (
        "bad cache name",
        stack(caches={"Queue_1": {"maxmemoryPolicy": "allkeys-lru"}}),
        "keel:caches.Queue_1: got the name 'Queue_1'; cache names are 1-20 lowercase letters, digits or dashes",
    ),
    (
        "bad instance class",
        stack(database={"instanceClass": "db.x1.huge"}),
        "keel:database.instanceClass: got 'db.x1.huge'; not an RDS instance class keel accepts (families t4g, t3, "
        "m6g, m7g, m6i, m7i, r6g, r7g, r6i, r7i); for example 'db.r6g.xlarge'",
    ),
    (
        "unsupported engine",
        stack(database={**DB, "engineVersion": "12"}),
        "keel:database.engineVersion: got '12'; allowed: 15, 16, 17",
    ),
    (
        "storage ceiling below size",
        stack(database={**DB, "allocatedStorageGb": 200, "maxAllocatedStorageGb": 100}),
        "keel:database.maxAllocatedStorageGb: got 100; must be at least allocatedStorageGb (200)",
    ),
    (
        "prod single-AZ",
        stack(database={**DB, "multiAz": False}),
        "keel:database.multiAz: got false in a prod stack; allowed: true",
    ),
    (
        "prod without deletion protection",
        stack(database={**DB, "deletionProtection": False}),
        "keel:database.deletionProtection: got false in a prod stack; allowed: true",
    ),
    (
        "prod without final snapshot",
        stack(database={**DB, "finalSnapshot": False}),
        "keel:database.finalSnapshot: got false in a prod stack; allowed: true",
    ),
    (
        "prod short backups",
        stack(database={**DB, "backupRetentionDays": 3}),
        "keel:database.backupRetentionDays: got 3 in a prod stack; allowed: 7 to 35",
    ),
    (
        "backup retention out of range",
        stack(database={**DB, "backupRetentionDays": 40}),
        "keel:database.backupRetentionDays: got 40; allowed: 1 to 35",
    ),
    (
        "bad backup window",
        stack(database={**DB, "backupWindow": "3am"}),
        "keel:database.backupWindow: got '3am'; expected a UTC window such as '03:00-04:00'",
    ),
    (
        "bad master user",
        stack(database={**DB, "masterUsername": "Admin-1"}),
        "keel:database.masterUsername: got 'Admin-1'; expected a lowercase identifier (letters, digits, underscores; "
        "a letter first)",
    ),
    (
        "prod force destroy",
        stack(buckets={"forceDestroy": True}),
        "keel:buckets.forceDestroy: got true in a prod stack; allowed: false",
    ),
    (
        "wildcard CORS origin",
        stack(buckets={"corsOrigins": ["*"]}),
        "keel:buckets.corsOrigins: got '*'; expected HTTPS origins such as 'https://app.example.com' (no path, no "
        "wildcard)",
    ),
    (
        "bad email domain",
        stack(email={"domain": "Example"}),
        "keel:email.domain: got 'Example'; expected a lowercase domain name such as 'example.com'",
    ),
    (
        "bad hosted zone",
        stack(email={"domain": "example.com", "hostedZoneId": "zone-1"}),
        "keel:email.hostedZoneId: got 'zone-1'; expected a Route 53 hosted zone id such as 'Z0123456789ABC'",
    ),
    ("missing email domain", stack(email={}), "keel:email.domain: required key is missing"),
    (
        "negative read replicas",
        stack(database={**DB, "readReplicas": -1}),
        "keel:database.readReplicas: got -1; allowed: 0 to 5",
    ),
    (
        "too many read replicas",
        stack(database={**DB, "readReplicas": 6}),
        "keel:database.readReplicas: got 6; allowed: 0 to 5",
    ),
    (
        "read replicas not a number",
        stack(database={**DB, "readReplicas": "two"}),
        "keel:database.readReplicas: got 'two'; expected a whole number",
    ),
]


@pytest.mark.parametrize(("raw", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_data_config_rules(raw: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate(raw["keel:environment"], raw)
    assert caught.value.problems == [message]


def test_data_stores_need_a_cluster() -> None:
    raw = stack(database=DB)
    del raw["keel:cluster"]
    with pytest.raises(ConfigError) as caught:
        validate("prod", raw)
    assert caught.value.problems == [
        "keel:cluster: missing while keel:database or keel:caches is set; the data tier admits only the cluster's "
        "nodes, so a stack with data stores needs a cluster"
    ]


# ------------------------------------------------------------------------------------------ database


@pytest.mark.parametrize(
    ("instance_class", "gib"),
    [
        ("db.t4g.micro", 1),
        ("db.t4g.medium", 4),
        ("db.m6g.large", 8),
        ("db.r6g.large", 16),
        ("db.r6g.xlarge", 32),
        ("db.r7g.2xlarge", 64),
        ("db.m7i.4xlarge", 64),
        ("db.r6i.16xlarge", 512),
    ],
)
def test_memory_of_instance_classes(instance_class: str, gib: int) -> None:
    assert memory_gib(instance_class) == gib


def test_tuning_follows_the_source_design() -> None:
    # db.r6g.xlarge: 32 GiB = 4,194,304 pages of 8 kB
    assert tuning("db.r6g.xlarge", 200, 500) == {
        "shared_buffers": "1048576",  # 25%: 8 GiB
        "effective_cache_size": "3145728",  # 75%: 24 GiB
        "max_connections": "200",
        "log_min_duration_statement": "500",
        "rds.force_ssl": "1",
    }


def children_of(p: Preview, type_: str, name: str) -> list[Step]:
    component = p.one(type_, name)
    return [s for s in p.steps if s.urn.startswith(component.urn.rsplit("::", 1)[0] + "$")]


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_database_per_stack(preview: Callable[[str], Preview], env: str) -> None:
    p = preview(env)
    prod = env == "prod"
    db = p.one("aws:rds/instance:Instance", f"keel-{env}-db")
    key = p.one("aws:kms/key:Key", f"keel-{env}-database")
    i = db.inputs
    assert (i["engine"], i["engineVersion"]) == ("postgres", "16")
    assert i["instanceClass"] == ("db.r6g.xlarge" if prod else "db.t4g.medium")
    assert i["storageType"] == "gp3"
    assert (i["allocatedStorage"], i["maxAllocatedStorage"]) == ((100, 500) if prod else (20, 100))
    assert i["storageEncrypted"] is True
    assert i["manageMasterUserPassword"] is True
    assert "password" not in i
    assert i["iamDatabaseAuthenticationEnabled"] is True
    assert i["publiclyAccessible"] is False
    assert i["multiAz"] is prod
    assert i["deletionProtection"] is prod
    assert i["skipFinalSnapshot"] is not prod
    assert i.get("finalSnapshotIdentifier") == (f"keel-{env}-db-final" if prod else None)
    assert i["backupRetentionPeriod"] == (14 if prod else 3)
    assert i["copyTagsToSnapshot"] is True
    assert i["autoMinorVersionUpgrade"] is True
    assert i["enabledCloudwatchLogsExports"] == ["postgresql", "upgrade"]
    assert i["performanceInsightsEnabled"] is True
    assert i["monitoringInterval"] == 60
    for field in ("kmsKeyId", "masterUserSecretKmsKeyId", "performanceInsightsKmsKeyId"):
        assert db.property_dependencies[field] == [key.urn], field
    assert (db.protect, db.retain_on_delete) == (prod, prod)
    assert (key.protect, key.inputs["enableKeyRotation"]) == (prod, True)
    subnets = p.one("aws:rds/subnetGroup:SubnetGroup", f"keel-{env}-db")
    assert sorted(p.by_urn()[u].name.split("-")[2] for u in subnets.property_dependencies["subnetIds"]) == [
        "isolated"
    ] * (3 if prod else 2)
    params = {
        x["name"]: x["value"]
        for x in p.one("aws:rds/parameterGroup:ParameterGroup", f"keel-{env}-db").inputs["parameters"]
    }
    assert params["rds.force_ssl"] == "1"
    assert params["max_connections"] == "200"
    for kind in ("postgresql", "upgrade"):
        group = p.one("aws:cloudwatch/logGroup:LogGroup", f"keel-{env}-db-{kind}")
        assert group.inputs["name"] == f"/aws/rds/instance/keel-{env}-db/{kind}"
        assert group.property_dependencies["kmsKeyId"] == [key.urn]
        assert group.urn in db.dependencies


def test_read_replica_copies_the_primary_in_another_zone(preview: Callable[[str], Preview]) -> None:
    """prod sets keel:database.readReplicas: 1: one replica of keel-prod-db with the primary's key, parameter group,
    security group and class, outside the first zone, with no backups and no backup selection tag."""
    p = preview("prod")
    db = p.one("aws:rds/instance:Instance", "keel-prod-db")
    replica = p.one("aws:rds/instance:Instance", "keel-prod-db-replica-1")
    key = p.one("aws:kms/key:Key", "keel-prod-database")
    i = replica.inputs
    assert i["identifier"] == "keel-prod-db-replica-1"
    assert i["replicateSourceDb"] == db.inputs["identifier"] == "keel-prod-db"
    assert replica.property_dependencies["replicateSourceDb"] == [db.urn]
    assert i["instanceClass"] == db.inputs["instanceClass"] == "db.r6g.xlarge"
    assert i["storageEncrypted"] is True
    for field in ("kmsKeyId", "performanceInsightsKmsKeyId"):
        assert replica.property_dependencies[field] == [key.urn], field
        assert i[field] == db.inputs[field], field
    assert i["performanceInsightsEnabled"] is True
    assert i["parameterGroupName"] == db.inputs["parameterGroupName"]
    assert i["vpcSecurityGroupIds"] == db.inputs["vpcSecurityGroupIds"]
    # The network's zones in order are us-east-1a, -1b, -1c: the replica takes the second, never the first.
    assert p.one("aws:ec2/subnet:Subnet", "keel-prod-isolated-us-east-1b").inputs["availabilityZone"] == "us-east-1b"
    assert i["availabilityZone"] == "us-east-1b"
    assert i["multiAz"] is False
    assert i["publiclyAccessible"] is False
    assert i["backupRetentionPeriod"] == 0
    assert i["skipFinalSnapshot"] is True
    assert i["deletionProtection"] is True
    assert i["copyTagsToSnapshot"] is True and i["autoMinorVersionUpgrade"] is True
    assert i["iamDatabaseAuthenticationEnabled"] is True
    assert (i["monitoringInterval"], i["monitoringRoleArn"]) == (60, db.inputs["monitoringRoleArn"])
    # A same-region replica takes the source's subnet group, engine, master user and database name.
    for field in ("dbSubnetGroupName", "engine", "username", "dbName", "manageMasterUserPassword", "password"):
        assert field not in i, field
    assert "keel.dev/backup" not in i["tags"] and "keel.dev/backup" in db.inputs["tags"]
    assert i["tags"]["keel.dev/backup-exempt"].startswith("read replica of keel-prod-db")
    assert (replica.protect, replica.retain_on_delete) == (True, True)
    for kind in ("postgresql", "upgrade"):
        group = p.one("aws:cloudwatch/logGroup:LogGroup", f"keel-prod-db-replica-1-{kind}")
        assert group.inputs["name"] == f"/aws/rds/instance/keel-prod-db-replica-1/{kind}"
        assert group.property_dependencies["kmsKeyId"] == [key.urn]
        assert group.urn in replica.dependencies


def test_no_read_replica_by_default(preview: Callable[[str], Preview]) -> None:
    p = preview("dev")
    assert [s.name for s in p.of_type("aws:rds/instance:Instance")] == ["keel-dev-db"]


@pytest.mark.parametrize(
    ("zones", "index", "zone"),
    [(["a", "b", "c"], 0, "b"), (["a", "b", "c"], 1, "c"), (["a", "b", "c"], 2, "b"), (["a", "b"], 4, "b")],
)
def test_replica_zone_is_never_the_first(zones: list[str], index: int, zone: str) -> None:
    assert replica_zone(zones, index) == zone


def test_data_stores_admit_only_the_nodes(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    sg = "aws:ec2/securityGroup:SecurityGroup"
    # the database admits the nodes and its RDS Proxy (keel:database.proxy), which admits only the nodes
    assert sg_rules(p, p.one(sg, "keel-prod-db")) == [
        ("Ingress", "keel-prod-db-proxy", "tcp", (5432, 5432)),
        ("Ingress", "keel-prod-nodes", "tcp", (5432, 5432)),
    ]
    assert sg_rules(p, p.one(sg, "keel-prod-db-proxy")) == [
        ("Egress", "keel-prod-db", "tcp", (5432, 5432)),
        ("Ingress", "keel-prod-nodes", "tcp", (5432, 5432)),
    ]
    for cache in ("queue", "cache"):
        group = p.one(sg, f"keel-prod-{cache}")
        assert sg_rules(p, group) == [("Ingress", "keel-prod-nodes", "tcp", (6379, 6379))]
        assert "ingress" not in group.inputs and "egress" not in group.inputs


# ------------------------------------------------------------------------------------------ caches

CACHES = {
    # env, name: (node type, shards, replicas, policy, cluster mode, failover/multi-AZ, snapshots)
    ("prod", "queue"): ("cache.m6g.large", 1, 1, "noeviction", "disabled", True, 7),
    ("prod", "cache"): ("cache.m6g.large", 2, 1, "allkeys-lru", "enabled", True, 7),
    ("dev", "queue"): ("cache.t4g.small", 1, 0, "noeviction", "disabled", False, 1),
    ("dev", "cache"): ("cache.t4g.small", 1, 0, "allkeys-lru", "disabled", False, 0),
}


@pytest.mark.parametrize(("env", "name"), list(CACHES))
def test_cache_per_stack(preview: Callable[[str], Preview], env: str, name: str) -> None:
    p = preview(env)
    node, shards, replicas, policy, mode, failover, snapshots = CACHES[(env, name)]
    group = p.one("aws:elasticache/replicationGroup:ReplicationGroup", f"keel-{env}-{name}")
    i = group.inputs
    assert (i["nodeType"], i["numNodeGroups"], i["replicasPerNodeGroup"]) == (node, shards, replicas)
    assert i["clusterMode"] == mode
    assert (i["automaticFailoverEnabled"], i["multiAzEnabled"]) == (failover or mode == "enabled", failover)
    assert i["transitEncryptionEnabled"] is True
    assert i["transitEncryptionMode"] == "required"
    assert i["authToken"] == "[secret]"
    assert i["atRestEncryptionEnabled"] is True
    assert group.property_dependencies["kmsKeyId"] == [p.one("aws:kms/key:Key", f"keel-{env}-cache").urn]
    assert i["snapshotRetentionLimit"] == snapshots
    assert (group.protect, group.retain_on_delete) == (env == "prod", env == "prod")
    params = p.one("aws:elasticache/parameterGroup:ParameterGroup", f"keel-{env}-{name}").inputs
    assert params["family"] == "redis7"
    assert sorted((x["name"], x["value"]) for x in params["parameters"]) == [
        ("cluster-enabled", "yes" if mode == "enabled" else "no"),
        ("maxmemory-policy", policy),
    ]
    secret = p.one("aws:secretsmanager/secret:Secret", f"keel-{env}-{name}-auth")
    assert secret.property_dependencies["kmsKeyId"] == group.property_dependencies["kmsKeyId"]
    assert (
        p.one("aws:secretsmanager/secretVersion:SecretVersion", f"keel-{env}-{name}-auth").inputs["secretString"]
        == "[secret]"
    )


def test_no_secret_value_in_preview_or_outputs(
    preview: Callable[[str], Preview], capsys: pytest.CaptureFixture[str]
) -> None:
    p = preview("prod")
    tokens = []
    for step in p.of_type("random:index/randomPassword:RandomPassword"):
        assert step.inputs["length"] >= 32
        tokens.append(digest("password", digest(step.urn))[: step.inputs["length"]])
    assert len(tokens) == 4  # the two caches' AUTH tokens, Grafana's admin password and the CDN's origin header
    as_json = json.dumps(p.to_json())  # what `keel preview --json` prints (tests/test_cli.py checks the shape)
    assert cli.main(["preview", "prod", *fixture_flags("prod")]) == 0
    as_text = capsys.readouterr().out
    for token in tokens:
        assert token not in as_json
        assert token not in as_text
    stack_outputs = p.steps[0].outputs
    assert not [k for k in stack_outputs if "token" in k.lower() or "password" in k.lower()]


# ------------------------------------------------------------------------------------------ buckets


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_buckets(preview: Callable[[str], Preview], env: str) -> None:
    p = preview(env)
    prod = env == "prod"
    key = p.one("aws:kms/key:Key", f"keel-{env}-storage")
    logs_bucket = p.one("aws:s3/bucket:Bucket", f"keel-{env}-logs")
    for name in ("artifacts", "uploads", "logs"):
        label = f"keel-{env}-{name}"
        bucket = p.one("aws:s3/bucket:Bucket", label)
        assert bucket.inputs["forceDestroy"] is not prod
        assert (bucket.protect, bucket.retain_on_delete) == (prod, prod)
        block = p.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", label).inputs
        assert {
            k: block[k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        } == dict.fromkeys(("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), True)
        assert p.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls", label).inputs["rule"] == {
            "objectOwnership": "BucketOwnerEnforced"
        }
        assert p.one("aws:s3/bucketVersioning:BucketVersioning", label).inputs["versioningConfiguration"] == {
            "status": "Enabled"
        }
        sse = p.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", label)
        rule = sse.inputs["rules"][0]
        if name == "logs":
            assert rule == {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}, "bucketKeyEnabled": False}
        else:
            assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
            assert rule["bucketKeyEnabled"] is True
            assert sse.property_dependencies["rules"] == [key.urn] or key.urn in sse.dependencies
        bucket_arn = f"arn:aws:s3:::{physical_id(bucket)}"
        statements = policy_doc(p.one("aws:s3/bucketPolicy:BucketPolicy", label))["Statement"]
        assert statements[0] == {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
        rules = {
            r["id"]: r
            for r in p.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", label).inputs["rules"]
        }
        assert rules["abort-incomplete-multipart-uploads"]["abortIncompleteMultipartUpload"] == {
            "daysAfterInitiation": 7
        }
        assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"] == {
            "noncurrentDays": 90 if prod else 7
        }
        if name == "logs":
            assert rules["expire-logs"]["expiration"] == {"days": 365 if prod else 30}
            # prod has a CDN: its access logs arrive too (tests/test_cdn.py checks that statement exactly)
            assert [s["Sid"] for s in statements] == [
                "DenyInsecureTransport",
                "AlbAccessLogs",
                "S3ServerAccessLogs",
                *(["CloudFrontAccessLogs"] if prod else []),
            ]
            assert statements[1]["Principal"] == {"AWS": "arn:aws:iam::127311923021:root"}
            assert statements[1]["Resource"] == f"{bucket_arn}/alb/AWSLogs/{ACCOUNT}/*"
            assert statements[2]["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
        else:
            assert len(statements) == 1
            logging = p.one("aws:s3/bucketLogging:BucketLogging", label)
            assert logging.property_dependencies["targetBucket"] == [logs_bucket.urn]
            assert logging.inputs["targetPrefix"] == f"s3/{name}/"
    cors = p.one("aws:s3/bucketCorsConfiguration:BucketCorsConfiguration", f"keel-{env}-uploads").inputs["corsRules"]
    assert cors[0]["allowedOrigins"] == (["https://app.example.com"] if prod else ["https://app.dev.example.com"])
    assert cors[0]["allowedMethods"] == ["GET", "PUT", "POST", "HEAD"]


BUCKET = "arn:aws:s3:::b"
KEY = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k"
VIA_S3 = {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}


def test_grant_documents_are_exact() -> None:
    assert read_statements(BUCKET, KEY, "us-east-1") == [
        {"Sid": "ListBucket", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": BUCKET},
        {
            "Sid": "ReadObjects",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": f"{BUCKET}/*",
        },
        {"Sid": "DecryptThroughS3", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY, "Condition": VIA_S3},
    ]
    assert read_write_statements(BUCKET, KEY, "us-east-1") == [
        {"Sid": "ListBucket", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": BUCKET},
        {
            "Sid": "ReadWriteObjects",
            "Effect": "Allow",
            "Action": [
                "s3:GetObject",
                "s3:GetObjectVersion",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
            ],
            "Resource": f"{BUCKET}/*",
        },
        {
            "Sid": "UseKeyThroughS3",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": KEY,
            "Condition": VIA_S3,
        },
    ]
    identity = f"arn:aws:ses:us-east-1:{ACCOUNT}:identity/example.com"
    config_set = f"arn:aws:ses:us-east-1:{ACCOUNT}:configuration-set/s"
    assert send_statements(identity, config_set) == [
        {
            "Sid": "SendAsIdentity",
            "Effect": "Allow",
            "Action": ["ses:SendEmail", "ses:SendRawEmail"],
            "Resource": [identity, config_set],
        }
    ]


def test_grants_attach_to_the_role() -> None:
    import pulumi_aws as aws

    def program() -> None:
        buckets = Buckets("s", BucketsConfig(), protect=False)
        role = aws.iam.Role("svc", assume_role_policy="{}")
        buckets.grant_read("artifacts", role)
        buckets.grant_read_write("uploads", role)
        email = Email("m", EmailConfig.model_validate({"domain": "example.com"}, by_alias=True), protect=False)
        email.grant_send(role)

    p = run(program)
    by_name = {s.name: s for s in p.of_type("aws:iam/rolePolicy:RolePolicy")}
    assert sorted(by_name) == ["svc-artifacts-read", "svc-email-send", "svc-uploads-read-write"]
    artifacts = physical_id(p.one("aws:s3/bucket:Bucket", "s-artifacts"))
    key = physical_id(p.one("aws:kms/key:Key", "s-storage"))
    assert policy_doc(by_name["svc-artifacts-read"])["Statement"] == read_statements(
        f"arn:aws:s3:::{artifacts}", f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{key}", "us-east-1"
    )
    assert policy_doc(by_name["svc-email-send"])["Statement"] == send_statements(
        f"arn:aws:ses:us-east-1:{ACCOUNT}:identity/example.com",
        f"arn:aws:ses:us-east-1:{ACCOUNT}:configuration-set/m-mail",
    )
    role = p.one("aws:iam/role:Role", "svc")
    assert all(s.property_dependencies["role"] == [role.urn] for s in by_name.values())


# ------------------------------------------------------------------------------------------ email


def test_email_identity_and_configuration_set(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    config_set = p.one("aws:sesv2/configurationSet:ConfigurationSet", "keel-prod")
    assert config_set.inputs["deliveryOptions"] == {"tlsPolicy": "REQUIRE"}
    assert config_set.inputs["reputationOptions"] == {"reputationMetricsEnabled": True}
    identity = p.one("aws:sesv2/emailIdentity:EmailIdentity", "keel-prod")
    assert identity.inputs["emailIdentity"] == "example.com"
    assert identity.inputs["dkimSigningAttributes"] == {"nextSigningKeyLength": "RSA_2048_BIT"}
    assert (
        p.one(
            "aws:sesv2/emailIdentityMailFromAttributes:EmailIdentityMailFromAttributes", "keel-prod-mail-from"
        ).inputs["mailFromDomain"]
        == "mail.example.com"
    )
    topic = p.one("aws:sns/topic:Topic", "keel-prod-email-events")
    assert topic.property_dependencies["kmsMasterKeyId"] == [p.one("aws:kms/key:Key", "keel-prod-email").urn]
    destination = p.one(
        "aws:sesv2/configurationSetEventDestination:ConfigurationSetEventDestination", "keel-prod-events"
    ).inputs["eventDestination"]
    assert destination["matchingEventTypes"] == ["BOUNCE", "COMPLAINT", "REJECT", "DELIVERY_DELAY"]
    topic_policy = policy_doc(p.one("aws:sns/topicPolicy:TopicPolicy", "keel-prod-email-events"))["Statement"]
    assert topic_policy[0]["Principal"] == {"Service": "ses.amazonaws.com"}
    assert topic_policy[0]["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    assert not p.of_type("aws:route53/record:Record")  # no hosted zone configured: records are exported


def test_dns_records_for_the_domain() -> None:
    cfg = EmailConfig.model_validate({"domain": "example.com", "dmarcPolicy": "reject"}, by_alias=True)
    assert dns_records(cfg, "eu-west-1", ["t1", "t2", "t3"]) == [
        {"name": "t1._domainkey.example.com", "type": "CNAME", "value": "t1.dkim.amazonses.com"},
        {"name": "t2._domainkey.example.com", "type": "CNAME", "value": "t2.dkim.amazonses.com"},
        {"name": "t3._domainkey.example.com", "type": "CNAME", "value": "t3.dkim.amazonses.com"},
        {"name": "mail.example.com", "type": "MX", "value": "10 feedback-smtp.eu-west-1.amazonses.com"},
        {"name": "mail.example.com", "type": "TXT", "value": "v=spf1 include:amazonses.com ~all"},
        {
            "name": "_dmarc.example.com",
            "type": "TXT",
            "value": "v=DMARC1; p=reject; rua=mailto:dmarc-reports@example.com",
        },
    ]


def test_hosted_zone_gets_the_records() -> None:
    cfg = EmailConfig.model_validate({"domain": "example.com", "hostedZoneId": "Z0123456789ABC"}, by_alias=True)
    p = run(lambda: Email("m", cfg, protect=False))
    records = sorted((r.inputs["type"], r.inputs["name"]) for r in p.of_type("aws:route53/record:Record"))
    assert [r[0] for r in records] == ["CNAME", "CNAME", "CNAME", "MX", "TXT", "TXT"]
    assert all(r.inputs["zoneId"] == "Z0123456789ABC" for r in p.of_type("aws:route53/record:Record"))
    assert ("TXT", "_dmarc.example.com") in records


# ------------------------------------------------------------------------------------------ keys and independence


def test_every_key_rotates_and_names_no_wildcard_principal(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    keys = p.of_type("aws:kms/key:Key")
    assert sorted(k.name for k in keys) == [
        "keel-prod-app-secrets",
        "keel-prod-backup",
        "keel-prod-backup-dr",
        "keel-prod-cache",
        "keel-prod-cache-standby",
        "keel-prod-cluster",
        "keel-prod-database",
        "keel-prod-email",
        "keel-prod-logs",
        "keel-prod-observability",
        "keel-prod-standby-logs",
        "keel-prod-storage",
        "keel-prod-storage-replica",
    ]
    for key in keys:
        assert key.inputs["enableKeyRotation"] is True
        assert key.protect is True
        for statement in policy_doc(key)["Statement"]:
            assert statement["Principal"] != "*"
            assert "*" not in json.dumps(statement["Principal"])


DATA_COMPONENTS = ("keel:database:Database", "keel:cache:Cache", "keel:storage:Buckets", "keel:email:Email")


def test_data_tier_never_waits_for_the_cluster(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    urns = p.by_urn()
    data = [s for s in p.steps if any(f"{t}$" in s.urn or s.type == t for t in DATA_COMPONENTS)]
    data.append(p.one("aws:kms/key:Key", "keel-prod-cache"))
    assert len(data) > 60

    def closure(step: Step) -> set[str]:
        seen: set[str] = set()
        todo = [*step.dependencies, *(u for us in step.property_dependencies.values() for u in us)]
        while todo:
            urn = todo.pop()
            if urn in seen:
                continue
            seen.add(urn)
            if urn in urns:
                todo += urns[urn].dependencies
        return seen

    for step in data:
        for urn in closure(step):
            qualified = urn.split("::")[2]
            assert not qualified.startswith(("kubernetes:", "pulumi:providers:kubernetes")), (step.name, urn)
            assert "eks:index:" not in qualified, (step.name, urn)
            assert "aws:eks/" not in qualified, (step.name, urn)
