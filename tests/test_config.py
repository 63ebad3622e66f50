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
        {"keel:environment": "staging"},
        "keel:environment: got 'staging'; allowed: 'dev' or 'prod'",
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
