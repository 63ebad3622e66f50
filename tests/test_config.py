"""Stack config validation: every rule with its exact message, and the shipped stacks load."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.config import ConfigError, StackConfig, validate
from keel import stackfiles
from tests.helpers import PROD_OPERATIONS, ROOT, stack_file

PROD = {
    "aws:region": "us-east-1",
    "keel:environment": "prod",
    "keel:network": json.dumps({"cidr": "10.20.0.0/16", "availabilityZones": 3, "natGateways": "OnePerAz"}),
    **PROD_OPERATIONS,
}

ALLOWED_CIDR = (
    "expected an RFC 1918 IPv4 block (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16) with a prefix from /16 to /20"
)


def network(**values: Any) -> dict[str, str]:
    return {"keel:network": json.dumps({"cidr": "10.20.0.0/16", **values})}


CASES: list[tuple[str, dict[str, str], str]] = [
    (
        "wrong type",
        network(availabilityZones="3"),
        "keel:network.availabilityZones: got '3'; expected a whole number",
    ),
    (
        "unknown nested key",
        {"keel:network": json.dumps({"cidrr": "10.0.0.0/16"})},
        "keel:network.cidrr: unknown key; allowed keys: allowSingleNatInProd, availabilityZones, cidr, "
        "flowLogRetentionDays, flowLogTraffic, interfaceEndpoints, natGateways, zoneNames",
    ),
    (
        "unknown top-level key",
        {"keel:netwrok": "{}"},
        "keel:netwrok: unknown key; allowed keys: accountId, alerts, backup, buckets, caches, cluster, database, "
        "email, environment, ingress, network, protect, services, tags",
    ),
    (
        "too many zones",
        network(availabilityZones=7),
        "keel:network.availabilityZones: got 7; allowed: 2 to 6",
    ),
    ("too few zones", network(availabilityZones=1), "keel:network.availabilityZones: got 1; allowed: 2 to 6"),
    (
        "unknown NAT strategy",
        network(natGateways="Two"),
        "keel:network.natGateways: got 'Two'; allowed: 'None', 'Single' or 'OnePerAz'",
    ),
    ("CIDR not a CIDR", network(cidr="10.0.0.0/33"), f"keel:network.cidr: got '10.0.0.0/33'; {ALLOWED_CIDR}"),
    (
        "CIDR with host bits",
        network(cidr="10.0.0.1/16"),
        "keel:network.cidr: got '10.0.0.1/16', which has host bits set; did you mean '10.0.0.0/16'?",
    ),
    (
        "public CIDR",
        network(cidr="8.8.0.0/16"),
        f"keel:network.cidr: got '8.8.0.0/16', which is not private; {ALLOWED_CIDR}",
    ),
    ("CIDR too small", network(cidr="10.0.0.0/24"), f"keel:network.cidr: got '10.0.0.0/24'; {ALLOWED_CIDR}"),
    ("CIDR too large", network(cidr="10.0.0.0/8"), f"keel:network.cidr: got '10.0.0.0/8'; {ALLOWED_CIDR}"),
    ("IPv6 CIDR", network(cidr="fd00::/48"), f"keel:network.cidr: got 'fd00::/48'; {ALLOWED_CIDR}"),
    (
        "single NAT in prod",
        network(natGateways="Single"),
        "keel:network.natGateways: got 'Single' in a prod stack; allowed: 'OnePerAz' (or set "
        "keel:network.allowSingleNatInProd: true to accept that one zone outage cuts egress for all)",
    ),
    (
        "retention not a CloudWatch value",
        network(flowLogRetentionDays=10),
        "keel:network.flowLogRetentionDays: got 10; allowed: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, "
        "400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653",
    ),
    (
        "zone names fewer than zones",
        network(zoneNames=["us-east-1a"]),
        'keel:network.zoneNames: got 1 zone(s) ["us-east-1a"]; must list exactly availabilityZones (3) zones',
    ),
    (
        "zone name malformed",
        network(zoneNames=["east", "us-east-1b", "us-east-1c"]),
        "keel:network.zoneNames: got 'east'; expected availability zone names like 'us-east-1a'",
    ),
    (
        "zone named twice",
        network(zoneNames=["us-east-1a", "us-east-1a", "us-east-1c"]),
        'keel:network.zoneNames: got ["us-east-1a", "us-east-1a", "us-east-1c"]; each zone may appear once',
    ),
    (
        "S3 as an interface endpoint",
        network(interfaceEndpoints=["s3"]),
        "keel:network.interfaceEndpoints: got 's3'; the S3 gateway endpoint is always created, "
        "list interface endpoints only",
    ),
    (
        "network not a mapping",
        {"keel:network": "10.0.0.0/16"},
        "keel:network: got '10.0.0.0/16'; expected a mapping",
    ),
    (
        "unknown environment",
        {"keel:environment": "qa"},
        "keel:environment: got 'qa'; allowed: 'dev', 'staging' or 'prod'",
    ),
    (
        "reserved tag",
        {"keel:tags": json.dumps({"environment": "x"})},
        "keel:tags: got 'environment', which keel sets itself; reserved: environment, stack, managed-by",
    ),
    (
        "tag value not a string",
        {"keel:tags": json.dumps({"team": 3})},
        "keel:tags.team: got 3; expected a string",
    ),
    (
        "malformed account id",
        {"keel:accountId": "1234"},
        "keel:accountId: got '1234'; expected a 12-digit AWS account id",
    ),
    (
        "malformed region",
        {"aws:region": "mars-1"},
        "aws:region: got 'mars-1'; expected an AWS region name like 'us-east-1'",
    ),
    (
        "prod unprotected",
        {"keel:protect": "false"},
        "keel:protect: got false in a prod stack; allowed: true (prod stateful resources are always protected)",
    ),
    ("protect not a boolean", {"keel:protect": "yes"}, "keel:protect: got 'yes'; expected true or false"),
    ("later section not a mapping", {"keel:cluster": "[1]"}, "keel:cluster: got [1]; expected a mapping"),
]


@pytest.mark.parametrize(("raw", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_config_names_key_value_and_allowed(raw: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate("prod", {**PROD, **raw})
    assert caught.value.problems == [message]
    assert message in str(caught.value)


def test_missing_required_keys() -> None:
    with pytest.raises(ConfigError) as caught:
        validate("prod", {k: v for k, v in PROD.items() if k != "keel:environment"})
    assert caught.value.problems == ["keel:environment: required key is missing"]
    with pytest.raises(ConfigError) as caught:
        validate("prod", {k: v for k, v in PROD.items() if k != "aws:region"})
    assert caught.value.problems == ["aws:region: missing; set it with `pulumi config set aws:region us-east-1`"]


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        validate("prod", {**PROD, **network(availabilityZones=9, natGateways="Many")})
    assert caught.value.problems == [
        "keel:network.availabilityZones: got 9; allowed: 2 to 6",
        "keel:network.natGateways: got 'Many'; allowed: 'None', 'Single' or 'OnePerAz'",
    ]


def test_config_error_is_a_clean_pulumi_run_error() -> None:
    import pulumi

    assert issubclass(ConfigError, pulumi.RunError)


def test_single_nat_in_prod_is_an_explicit_opt_in() -> None:
    cfg = validate("prod", {**PROD, **network(natGateways="Single", allowSingleNatInProd=True)})
    assert cfg.network.nat_gateways == "Single"
    dev = validate("dev", {**PROD, "keel:environment": "dev", **network(natGateways="Single")})
    assert dev.network.nat_gateways == "Single"


def test_defaults_are_the_resilient_choice() -> None:
    cfg = validate("prod", {"aws:region": "eu-west-1", "keel:environment": "prod", **PROD_OPERATIONS})
    assert cfg.network.cidr == "10.0.0.0/16"
    assert cfg.network.availability_zones == 3
    assert cfg.network.nat_gateways == "OnePerAz"
    assert cfg.network.interface_endpoints == ["ecr.api", "ecr.dkr", "sts", "logs"]
    assert cfg.protect is True
    assert cfg.account_id is None


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_stacks_are_valid(stack: str) -> None:
    """The tests' stacks (the shipped ones are held to a valid config in tests/test_shipped_stacks.py)."""
    project = stackfiles.load_project(ROOT)
    raw, secrets = stackfiles.load_config(ROOT, stack, project, path=stack_file(stack))
    cfg = validate(stack, raw)
    assert isinstance(cfg, StackConfig)
    assert secrets == []
    assert cfg.all_tags["environment"] == stack
    assert cfg.all_tags["managed-by"] == "pulumi"


def test_the_stacks_differ_as_designed() -> None:
    project = stackfiles.load_project(ROOT)
    dev = validate("dev", stackfiles.load_config(ROOT, "dev", project, path=stack_file("dev"))[0])
    prod = validate("prod", stackfiles.load_config(ROOT, "prod", project, path=stack_file("prod"))[0])
    assert (dev.network.availability_zones, dev.network.nat_gateways, dev.protect) == (2, "Single", False)
    assert (prod.network.availability_zones, prod.network.nat_gateways, prod.protect) == (3, "OnePerAz", True)


# ---------------------------------------------------------------- environments


def test_every_environment_says_what_it_holds() -> None:
    """`keel:environment` admits exactly the kinds ENVIRONMENTS describes (CASES: any other is refused)."""
    from typing import get_args

    from components.config.stack import ENVIRONMENTS, Environment

    assert tuple(ENVIRONMENTS) == get_args(Environment) == ("dev", "staging", "prod")


def test_staging_is_held_to_prod_but_a_zone_and_a_region() -> None:
    """The tests' dev stack (every protection off, one NAT, single-AZ, no replicas) judged as each environment: dev
    passes; staging is refused everything prod is except the NAT per zone, the Multi-AZ database and the copy
    region, and each message names the key, the value, the environment and what it allows."""
    from components.config.stack import holding

    raw = stackfiles.load_config(ROOT, "dev", stackfiles.load_project(ROOT), path=stack_file("dev"))[0]
    problems: dict[str, list[str]] = {}
    for env in ("dev", "staging", "prod"):
        try:
            validate("t", {**raw, "keel:environment": env})
            problems[env] = []
        except ConfigError as err:
            problems[env] = err.problems
    assert problems["dev"] == []
    zone_and_region = [
        "keel:network.natGateways: got 'Single' in a prod stack; allowed: 'OnePerAz' (or set "
        "keel:network.allowSingleNatInProd: true to accept that one zone outage cuts egress for all)",
        "keel:database.multiAz: got false in a prod stack; allowed: true",
        "keel:backup.copyRegion: missing in a prod stack; allowed: a second region for disaster recovery",
        "keel:caches.queue.crossRegion: got false for a queue (maxmemoryPolicy noeviction) in a prod stack; allowed: "
        "true (its waiting jobs are nowhere else: a Global Datastore keeps them in keel:backup.copyRegion)",
    ]
    assert [
        p.replace(" a staging stack", " a prod stack").replace("(staging ", "(prod ") for p in problems["staging"]
    ] == [p for p in problems["prod"] if p not in zone_and_region]
    assert problems["staging"][:3] == [
        "keel:protect: got false in a staging stack; allowed: true (staging stateful resources are always protected)",
        "keel:cluster.deletionProtection: got false in a staging stack; allowed: true",
        "keel:database.deletionProtection: got false in a staging stack; allowed: true",
    ]
    assert (
        "keel:backup.vaultLock: missing in a staging stack; allowed: {mode: governance} or {mode: compliance}"
        in (problems["staging"])
    )
    assert holding("survives_a_zone") == holding("survives_a_region") == ["prod"]
    assert holding("protected") == ["staging", "prod"]


def test_staging_takes_one_nat_a_single_az_database_and_no_copy_region() -> None:
    raw = {
        **PROD,
        "keel:environment": "staging",
        **network(natGateways="Single"),
        "keel:backup": json.dumps({"vaultLock": {"mode": "governance"}}),
    }
    cfg = validate("staging", raw)
    assert (cfg.network.nat_gateways, cfg.backup and cfg.backup.copy_region) == ("Single", None)
    assert cfg.all_tags["environment"] == "staging"
    with pytest.raises(ConfigError) as caught:
        validate("staging", {**raw, "keel:backup": "{}"})
    assert caught.value.problems == [
        "keel:backup.vaultLock: missing in a staging stack; allowed: {mode: governance} or {mode: compliance}"
    ]
    with pytest.raises(ConfigError) as caught:
        validate("staging", {k: v for k, v in raw.items() if k != "keel:backup"})
    assert caught.value.problems == ["keel:backup: missing in a staging stack; set keel:backup.vaultLock"]


def _stack_types(path: Any) -> tuple[set[str], set[str], set[str]]:
    """The EC2 instance types, RDS classes and ElastiCache node types a stack file names."""
    import yaml

    config = yaml.safe_load(path.read_text())["config"]
    groups = (config.get("keel:cluster") or {}).get("nodeGroups", {}).values()
    return (
        {t for group in groups for t in group.get("instanceTypes", [])},
        {c for c in [(config.get("keel:database") or {}).get("instanceClass")] if c},
        {c.get("nodeType") for c in (config.get("keel:caches") or {}).values() if c.get("nodeType")},
    )


def test_every_stack_files_types_and_classes_are_on_the_lists() -> None:
    """The shipped stacks and the tests' stacks use only listed EC2 types, RDS classes and ElastiCache node types."""
    from components.config import CACHE_NODE_TYPES, DB_INSTANCE_CLASSES, ec2_instance_types
    from tests.helpers import STACKS

    files = [ROOT / f"Pulumi.{s}.yaml" for s in stackfiles.stacks(ROOT)] + sorted(STACKS.glob("Pulumi.*.yaml"))
    assert len(files) >= 4
    for path in files:
        ec2, db, cache = _stack_types(path)
        assert ec2 and ec2 <= ec2_instance_types()[1], path
        assert db <= set(DB_INSTANCE_CLASSES) and cache <= set(CACHE_NODE_TYPES), path


def test_the_lists_say_where_they_come_from() -> None:
    """EC2: botocore's own model, named with its version. RDS: each class is a size EC2 has (``db.`` dropped) and
    one the database tuning can size. ElastiCache: each type is in the node-type list botocore ships with the
    ElastiCache API reference (the ``CacheNode`` shape's documentation)."""
    import re

    import botocore
    import botocore.session

    from components.config import CACHE_NODE_TYPES, DB_INSTANCE_CLASSES, ec2_instance_types
    from components.database import memory_gib

    session = botocore.session.get_session()
    version, ec2 = ec2_instance_types()
    assert version == botocore.__version__
    assert ec2 == set(session.get_service_model("ec2").shape_for("InstanceType").enum)
    assert len(DB_INSTANCE_CLASSES) == len(set(DB_INSTANCE_CLASSES)) == 76
    for name in DB_INSTANCE_CLASSES:
        assert name.removeprefix("db.") in ec2, name
        assert memory_gib(name) >= 1
    documented = session.get_service_model("elasticache").shape_for("CacheNode").documentation
    assert len(CACHE_NODE_TYPES) == len(set(CACHE_NODE_TYPES)) == 34
    assert set(CACHE_NODE_TYPES) <= set(re.findall(r"cache\.[a-z0-9]+\.[a-z0-9]+", documented))


@pytest.mark.parametrize(
    ("section", "value", "message"),
    [
        (
            {"database": {"instanceClass": "db.r6g.2xlarg"}},
            "db.r6g.2xlarg",
            "keel:database.instanceClass: got 'db.r6g.2xlarg'; not an RDS instance class keel accepts (families t4g, "
            "t3, m6g, m7g, m6i, m7i, r6g, r7g, r6i, r7i); did you mean 'db.r6g.2xlarge'?",
        ),
        (
            {"database": {"instanceClass": "db.t4g.nano"}},
            "db.t4g.nano",
            "keel:database.instanceClass: got 'db.t4g.nano'; not an RDS instance class keel accepts (families t4g, "
            "t3, m6g, m7g, m6i, m7i, r6g, r7g, r6i, r7i); did you mean 'db.t4g.small'?",
        ),
        (
            {"caches": {"queue": {"nodeType": "cache.m6g.larg"}}},
            "cache.m6g.larg",
            "keel:caches.queue.nodeType: got 'cache.m6g.larg'; not an ElastiCache node type keel accepts (families "
            "t4g, t3, m6g, m7g, r6g, r7g); did you mean 'cache.m6g.large'?",
        ),
    ],
    ids=["rds typo", "rds size the family lacks", "elasticache typo"],
)
def test_a_typo_in_a_class_is_refused_with_a_suggestion(section: dict[str, Any], value: str, message: str) -> None:
    raw = {**PROD, **{f"keel:{k}": json.dumps(v) for k, v in section.items()}}
    with pytest.raises(ConfigError) as caught:
        validate("prod", raw)
    assert message in caught.value.problems
