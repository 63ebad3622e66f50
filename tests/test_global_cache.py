"""A queue that survives the region (``keel:caches.<name>.crossRegion``): an ElastiCache Global Datastore whose
secondary lives in the standby network of ``keel:backup.copyRegion``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from components.config import ConfigError, validate
from keel import cost
from keel.engine import Preview, Step
from tests.helpers import PROD_OPERATIONS, stack_config

GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
GLOBAL = "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup"


def provider_region(p: Preview, step: Step) -> str:
    """The region of the AWS provider a resource is created with (the stack's region for the default)."""
    urn = step.provider.rsplit("::", 1)[0]
    provider = p.by_urn().get(urn)
    return str(provider.inputs.get("region")) if provider is not None else "us-east-1"


def test_the_queue_has_a_live_copy_in_the_copy_region(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    primary = p.one(GROUP, "keel-prod-queue")
    datastore = p.one(GLOBAL, "keel-prod-queue-global")
    assert datastore.inputs["globalReplicationGroupIdSuffix"] == "keel-prod-queue"
    assert datastore.property_dependencies["primaryReplicationGroupId"] == [primary.urn]
    # after a regional failover AWS reports the promoted secondary as the primary: never a replacement
    assert datastore.ignore_changes == ["primaryReplicationGroupId"]
    # AWS turns minor upgrades off on a datastore's members and does not let them back on
    assert primary.inputs["autoMinorVersionUpgrade"] is False
    assert p.one(GROUP, "keel-prod-cache").inputs["autoMinorVersionUpgrade"] is True  # not cross-region

    standby = p.one(GROUP, "keel-prod-queue-standby")
    assert provider_region(p, standby) == "us-west-2"
    assert standby.property_dependencies["globalReplicationGroupId"] == [datastore.urn]
    i = standby.inputs
    # what the provider refuses on a secondary: it is the datastore's
    for inherited in ("engine", "engineVersion", "nodeType", "parameterGroupName", "numNodeGroups"):
        assert inherited not in i
    assert "atRestEncryptionEnabled" not in i and "transitEncryptionEnabled" not in i
    assert (i["replicasPerNodeGroup"], i["automaticFailoverEnabled"], i["multiAzEnabled"]) == (1, True, True)
    assert i["authToken"] == "[secret]"
    assert i["autoMinorVersionUpgrade"] is False
    assert i["finalSnapshotIdentifier"] == "keel-prod-queue-standby-final"
    assert standby.protect and standby.retain_on_delete
    assert i["tags"]["keel.dev/node-type"] == "cache.m6g.large" and i["tags"]["keel.dev/shards"] == "1"
    # the same AUTH token as the primary (clients keep their secret after a failover)
    assert standby.wire_inputs["authToken"] == primary.wire_inputs["authToken"]

    key = p.one("aws:kms/key:Key", "keel-prod-cache-standby")
    assert provider_region(p, key) == "us-west-2"
    assert standby.property_dependencies["kmsKeyId"] == [key.urn]


def test_the_secondary_lives_in_a_standby_network_that_admits_nobody(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    standby = p.one(GROUP, "keel-prod-queue-standby")
    vpc = p.one("aws:ec2/vpc:Vpc", "keel-prod-standby-vpc")
    assert provider_region(p, vpc) == "us-west-2"
    assert vpc.inputs["cidrBlock"] == "10.250.0.0/16"
    # nothing runs there until a failover: no NAT gateway, no interface endpoint (only the free S3 gateway)
    there = [s for s in p.steps if s.name.startswith("keel-prod-standby-")]
    assert not [s for s in there if s.type == "aws:ec2/natGateway:NatGateway"]
    assert [s.inputs["vpcEndpointType"] for s in there if s.type == "aws:ec2/vpcEndpoint:VpcEndpoint"] == ["Gateway"]
    assert all(provider_region(p, s) == "us-west-2" for s in there if s.custom)
    subnets = p.one("aws:elasticache/subnetGroup:SubnetGroup", "keel-prod-queue-standby")
    isolated = {s.urn for s in p.of_type("aws:ec2/subnet:Subnet") if s.name.startswith("keel-prod-standby-isolated-")}
    assert len(isolated) == 3 and set(subnets.property_dependencies["subnetIds"]) == isolated
    group = p.one("aws:ec2/securityGroup:SecurityGroup", "keel-prod-queue-standby")
    assert group.property_dependencies["vpcId"] == [vpc.urn]
    rules = [
        r
        for kind in ("Ingress", "Egress")
        for r in p.of_type(f"aws:vpc/securityGroup{kind}Rule:SecurityGroup{kind}Rule")
        if r.property_dependencies.get("securityGroupId") == [group.urn]
    ]
    assert rules == []  # nobody until a failover
    assert standby.property_dependencies["securityGroupIds"] == [group.urn]
    assert standby.property_dependencies["subnetGroupName"] == [subnets.urn]
    flow = [f for f in p.of_type("aws:ec2/flowLog:FlowLog") if f.name == "keel-prod-standby-vpc"]
    assert len(flow) == 1


def test_the_auth_secret_is_replicated_to_the_copy_region(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    secret = p.one("aws:secretsmanager/secret:Secret", "keel-prod-queue-auth")
    key = p.one("aws:kms/key:Key", "keel-prod-cache-standby")
    [replica] = secret.inputs["replicas"]
    assert replica["region"] == "us-west-2"
    assert key.urn in secret.property_dependencies["replicas"]
    assert "replicas" not in p.one("aws:secretsmanager/secret:Secret", "keel-prod-cache-auth").inputs


def test_cost_prices_the_secondary_from_its_tags(preview: Callable[[str], Preview]) -> None:
    estimate = cost.estimate(preview("prod").to_json(), stack="prod")
    table = cost.prices("us-east-1")
    [line] = [item for item in estimate.items if "global datastore secondary" in item.description]
    assert line.description == "2 x cache.m6g.large (global datastore secondary)"
    assert line.monthly == pytest.approx(2 * table["hourly"]["elasticache.cache.m6g.large"] * table["hoursPerMonth"])
    assert estimate.complete
    assert [u["missing"] for u in estimate.unknown if u["urn"].endswith("::keel-prod-queue-standby")] == [
        "cross-region replication traffic: billed per GB the primary writes"
    ]


def test_dev_has_no_copy(preview: Callable[[str], Preview]) -> None:
    p = preview("dev")
    assert not p.of_type(GLOBAL)
    assert not [v for v in p.of_type("aws:ec2/vpc:Vpc") if "standby" in v.name]


# ------------------------------------------------------------------------------------------ config

CLUSTER = {"nodeGroups": {"general": {"instanceTypes": ["m5.xlarge"], "minSize": 3, "maxSize": 6}}}


def config(queue: dict[str, Any], environment: str = "prod", **extra: Any) -> dict[str, str]:
    raw = stack_config(environment, cluster=CLUSTER, caches={"queue": queue}, **extra)
    if environment != "prod":
        raw.update({k: v for k, v in PROD_OPERATIONS.items() if k == "keel:backup"})
    return raw


QUEUE = {"nodeType": "cache.m6g.large", "replicasPerShard": 1, "maxmemoryPolicy": "noeviction"}

CASES: list[tuple[str, dict[str, str], str]] = [
    (
        "a prod queue without a copy",
        config(QUEUE),
        "keel:caches.queue.crossRegion: got false for a queue (maxmemoryPolicy noeviction) in a prod stack; allowed: "
        "true (its waiting jobs are nowhere else: a Global Datastore keeps them in keel:backup.copyRegion)",
    ),
    (
        "a burstable node",
        config({**QUEUE, "nodeType": "cache.t4g.medium", "crossRegion": True}),
        "keel:caches.queue.nodeType: got 'cache.t4g.medium' with crossRegion; allowed: a size from large up outside "
        "the burstable t families (ElastiCache Global Datastore), such as 'cache.m6g.large'",
    ),
    (
        "no copy region",
        {
            **config({**QUEUE, "crossRegion": True}, "dev"),
            "keel:backup": json.dumps({"vaultLock": {"mode": "governance"}}),
        },
        "keel:caches.queue.crossRegion: got true but keel:backup.copyRegion is not set; set keel:backup.copyRegion "
        "(where the copy lives) or crossRegion: false",
    ),
    (
        "a standby network overlapping the stack's",
        {
            **config({**QUEUE, "crossRegion": True}, network={"cidr": "10.250.0.0/16"}),
        },
        "keel:backup.standbyCidr: got '10.250.0.0/16', which overlaps keel:network.cidr (10.250.0.0/16); allowed: a "
        "private block outside it",
    ),
]


@pytest.mark.parametrize(("raw", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cross_region_config_rules(raw: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate("prod", raw)
    assert message in caught.value.problems


def test_a_copied_queue_and_an_uncopied_cache_pass() -> None:
    raw = stack_config(
        "prod",
        cluster=CLUSTER,
        caches={
            "queue": {**QUEUE, "crossRegion": True},
            "cache": {"nodeType": "cache.t4g.small", "maxmemoryPolicy": "allkeys-lru", "replicasPerShard": 1},
        },
    )
    cfg = validate("prod", raw)
    assert cfg.caches["queue"].cross_region and not cfg.caches["cache"].cross_region
    assert cfg.backup is not None and cfg.backup.standby_cidr == "10.250.0.0/16"
