"""Network: exact children per stack, routing, CIDR plan, endpoints, flow logs and the default SG."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable

import pytest

from components.config import NetworkConfig
from components.context import AwsContext
from components.keys import key_policy, logs_may_use
from components.network import (
    Network,
    flow_log_trust_policy,
    flow_log_write_policy,
    plan_subnets,
)
from keel.engine import Preview, Step
from tests.helpers import policy_doc, run

SUBNET = "aws:ec2/subnet:Subnet"
ROUTE = "aws:ec2/route:Route"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
NAT = "aws:ec2/natGateway:NatGateway"
EIP = "aws:ec2/eip:Eip"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
ACCOUNT = "123456789012"

EXPECTED_COUNTS = {
    # type: (dev, prod)
    "aws:ec2/vpc:Vpc": (1, 1),
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": (1, 1),
    "aws:ec2/internetGateway:InternetGateway": (1, 1),
    SUBNET: (6, 9),
    ROUTE_TABLE: (4, 5),  # public, isolated, one private per zone
    "aws:ec2/routeTableAssociation:RouteTableAssociation": (6, 9),
    EIP: (1, 3),
    NAT: (1, 3),
    ROUTE: (3, 4),  # public default + one private default per zone
    ENDPOINT: (5, 5),  # s3 gateway + ecr.api, ecr.dkr, sts, logs
    "aws:ec2/securityGroup:SecurityGroup": (1, 1),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": (1, 1),
    "aws:kms/key:Key": (1, 1),
    "aws:kms/alias:Alias": (1, 1),
    "aws:cloudwatch/logGroup:LogGroup": (1, 1),
    "aws:iam/role:Role": (1, 1),
    "aws:iam/rolePolicy:RolePolicy": (1, 1),
    "aws:ec2/flowLog:FlowLog": (1, 1),
}


def network(**keys: object) -> NetworkConfig:
    """A ``keel:network`` section from its camelCase keys, validated as a stack file's would be."""
    return NetworkConfig.model_validate(keys, by_alias=True)


def children(p: Preview) -> list[Step]:
    network = p.one("keel:network:Network", f"keel-{p.stack}")
    return [s for s in p.steps if s.parent == network.urn]


@pytest.mark.parametrize(("stack", "column"), [("dev", 0), ("prod", 1)])
def test_exact_children_per_stack(preview: Callable[[str], Preview], stack: str, column: int) -> None:
    p = preview(stack)
    counts: dict[str, int] = {}
    for step in children(p):
        counts[step.type] = counts.get(step.type, 0) + 1
    assert counts == {t: c[column] for t, c in EXPECTED_COUNTS.items()}
    zones = ["us-east-1a", "us-east-1b"] if stack == "dev" else ["us-east-1a", "us-east-1b", "us-east-1c"]
    # prod's standby network in the copy region (tests/test_global_cache.py) is another Network
    assert sorted(s.name for s in p.of_type(SUBNET) if "-standby-" not in s.name) == sorted(
        f"keel-{stack}-{tier}-{az}" for tier in ("public", "private", "isolated") for az in zones
    )


def _zone_of_route(p: Preview, route: Step) -> tuple[str, str]:
    """(zone of the route table's private subnet, zone of the NAT the route targets), from dependencies."""
    urns = p.by_urn()
    nat = urns[route.property_dependencies["natGatewayId"][0]]
    nat_subnet = urns[nat.property_dependencies["subnetId"][0]]
    table = urns[route.property_dependencies["routeTableId"][0]]
    return table.name.removeprefix(f"keel-{p.stack}-private-"), nat_subnet.inputs["availabilityZone"]


def test_prod_routes_each_private_zone_through_its_own_nat(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    private_routes = [r for r in p.of_type(ROUTE) if "-private-" in r.name]
    assert len(private_routes) == 3
    pairs = sorted(_zone_of_route(p, r) for r in private_routes)
    assert pairs == [("us-east-1a", "us-east-1a"), ("us-east-1b", "us-east-1b"), ("us-east-1c", "us-east-1c")]
    for route in private_routes:
        assert route.inputs["destinationCidrBlock"] == "0.0.0.0/0"
    for nat in p.of_type(NAT):
        assert nat.inputs["connectivityType"] == "public"
        assert (
            nat.name.removeprefix("keel-prod-nat-")
            == p.by_urn()[nat.property_dependencies["subnetId"][0]].inputs["availabilityZone"]
        )
        assert p.by_urn()[nat.property_dependencies["subnetId"][0]].name.startswith("keel-prod-public-")


def test_dev_routes_both_zones_through_the_single_nat(preview: Callable[[str], Preview]) -> None:
    p = preview("dev")
    pairs = sorted(_zone_of_route(p, r) for r in p.of_type(ROUTE) if "-private-" in r.name)
    assert pairs == [("us-east-1a", "us-east-1a"), ("us-east-1b", "us-east-1a")]


def test_public_route_goes_to_the_internet_gateway_and_isolated_has_none(
    preview: Callable[[str], Preview],
) -> None:
    p = preview("prod")
    public = p.one(ROUTE, "keel-prod-public-default")
    assert public.inputs["destinationCidrBlock"] == "0.0.0.0/0"
    assert p.by_urn()[public.property_dependencies["gatewayId"][0]].type == "aws:ec2/internetGateway:InternetGateway"
    isolated_table = p.one(ROUTE_TABLE, "keel-prod-isolated")
    assert not [r for r in p.of_type(ROUTE) if isolated_table.urn in r.dependencies]
    assert "routes" not in isolated_table.inputs  # no inline routes: only the local route


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_subnets_are_disjoint_inside_the_vpc_and_tagged_by_tier(preview: Callable[[str], Preview], stack: str) -> None:
    p = preview(stack)
    vpc = ipaddress.IPv4Network(p.one("aws:ec2/vpc:Vpc", f"keel-{stack}-vpc").inputs["cidrBlock"])
    subnets = [s for s in children(p) if s.type == SUBNET]
    nets = [ipaddress.IPv4Network(s.inputs["cidrBlock"]) for s in subnets]
    assert all(n.subnet_of(vpc) for n in nets)
    assert all(not a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])
    for s in subnets:
        assert s.inputs["mapPublicIpOnLaunch"] is False
        tier = s.name.split("-")[2]
        assert s.inputs["tags"]["keel.dev/tier"] == tier
        assert ("kubernetes.io/role/elb" in s.inputs["tags"]) == (tier == "public")
        assert ("kubernetes.io/role/internal-elb" in s.inputs["tags"]) == (tier == "private")


def test_vpc_has_dns_and_the_default_security_group_is_empty(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    vpc = p.one("aws:ec2/vpc:Vpc", "keel-prod-vpc")
    assert vpc.inputs["cidrBlock"] == "10.20.0.0/16"
    assert vpc.inputs["enableDnsSupport"] is True
    assert vpc.inputs["enableDnsHostnames"] is True
    default_sg = p.one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup", "keel-prod-default-sg")
    assert default_sg.inputs["ingress"] == []
    assert default_sg.inputs["egress"] == []
    assert default_sg.property_dependencies["vpcId"] == [vpc.urn]


def test_endpoints_and_their_security_group(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    endpoints = {e.inputs["serviceName"]: e for e in children(p) if e.type == ENDPOINT}
    assert sorted(endpoints) == [
        "com.amazonaws.us-east-1.ecr.api",
        "com.amazonaws.us-east-1.ecr.dkr",
        "com.amazonaws.us-east-1.logs",
        "com.amazonaws.us-east-1.s3",
        "com.amazonaws.us-east-1.sts",
    ]
    urns = p.by_urn()
    s3 = endpoints.pop("com.amazonaws.us-east-1.s3")
    assert s3.inputs["vpcEndpointType"] == "Gateway"
    assert sorted(urns[u].name for u in s3.property_dependencies["routeTableIds"]) == [
        "keel-prod-private-us-east-1a",
        "keel-prod-private-us-east-1b",
        "keel-prod-private-us-east-1c",
    ]
    sg = p.one("aws:ec2/securityGroup:SecurityGroup", "keel-prod-endpoints")
    for endpoint in endpoints.values():
        assert endpoint.inputs["vpcEndpointType"] == "Interface"
        assert endpoint.inputs["privateDnsEnabled"] is True
        assert sorted(urns[u].name for u in endpoint.property_dependencies["subnetIds"]) == [
            "keel-prod-private-us-east-1a",
            "keel-prod-private-us-east-1b",
            "keel-prod-private-us-east-1c",
        ]
        assert endpoint.property_dependencies["securityGroupIds"] == [sg.urn]
    assert "ingress" not in sg.inputs and "egress" not in sg.inputs  # rules are separate resources
    rules = [
        r for r in p.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") if sg.urn in r.dependencies
    ]
    assert len(rules) == 1
    assert {k: v for k, v in rules[0].inputs.items() if k != "securityGroupId"} == {
        "cidrIpv4": "10.20.0.0/16",
        "fromPort": 443,
        "toPort": 443,
        "ipProtocol": "tcp",
        "description": "HTTPS to the interface endpoints from the VPC",
    }
    assert not [
        r for r in p.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule") if sg.urn in r.dependencies
    ]


@pytest.mark.parametrize(("stack", "retention", "protected"), [("dev", 14, False), ("prod", 90, True)])
def test_flow_logs_encrypted_with_retention(
    preview: Callable[[str], Preview], stack: str, retention: int, protected: bool
) -> None:
    p = preview(stack)
    name = f"keel-{stack}"
    key = p.one("aws:kms/key:Key", f"{name}-logs")
    group = p.one("aws:cloudwatch/logGroup:LogGroup", f"{name}-flow-logs")
    flow = p.one("aws:ec2/flowLog:FlowLog", f"{name}-vpc")
    role = p.one("aws:iam/role:Role", f"{name}-flow-logs")
    write = p.one("aws:iam/rolePolicy:RolePolicy", f"{name}-flow-logs")
    group_arn = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/{name}/vpc/flow-logs"

    assert key.inputs["enableKeyRotation"] is True
    assert key.inputs["deletionWindowInDays"] == 30
    ctx = AwsContext("us-east-1", ACCOUNT, "aws")
    assert policy_doc(key) == key_policy(ctx, [logs_may_use(ctx, [group_arn])])
    assert (key.protect, group.protect) == (protected, protected)

    assert group.inputs["name"] == f"/{name}/vpc/flow-logs"
    assert group.inputs["retentionInDays"] == retention
    assert group.property_dependencies["kmsKeyId"] == [key.urn]

    assert flow.inputs["trafficType"] == "ALL"
    assert flow.inputs["logDestinationType"] == "cloud-watch-logs"
    assert flow.inputs["maxAggregationInterval"] == 60
    assert flow.property_dependencies["logDestination"] == [group.urn]
    assert flow.property_dependencies["iamRoleArn"] == [role.urn]
    assert write.urn in flow.dependencies  # the role can write before the flow log starts

    assert policy_doc(role, "assumeRolePolicy") == flow_log_trust_policy("aws", "us-east-1", ACCOUNT)
    assert policy_doc(write) == flow_log_write_policy("aws", "us-east-1", ACCOUNT, group_arn)


def test_flow_log_iam_documents_are_least_privilege() -> None:
    group_arn = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/keel-prod/vpc/flow-logs"
    assert flow_log_trust_policy("aws", "us-east-1", ACCOUNT)["Statement"] == [
        {
            "Effect": "Allow",
            "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": ACCOUNT},
                "ArnLike": {"aws:SourceArn": f"arn:aws:ec2:us-east-1:{ACCOUNT}:vpc-flow-log/*"},
            },
        }
    ]
    assert flow_log_write_policy("aws", "us-east-1", ACCOUNT, group_arn)["Statement"] == [
        {
            "Sid": "WriteFlowLogGroup",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            "Resource": [group_arn, f"{group_arn}:*"],
        },
        {
            "Sid": "FindFlowLogGroup",
            "Effect": "Allow",
            "Action": "logs:DescribeLogGroups",
            "Resource": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:*",
        },
    ]
    ctx = AwsContext("us-east-1", ACCOUNT, "aws")
    key_statements = key_policy(ctx, [logs_may_use(ctx, [group_arn])])["Statement"]
    assert [s["Principal"] for s in key_statements] == [
        {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        {"Service": "logs.us-east-1.amazonaws.com"},
    ]
    assert key_statements[1]["Condition"] == {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": [group_arn]}}
    assert "*" not in json.dumps([s["Principal"] for s in key_statements])


def test_no_nat_means_no_internet_route_from_private_subnets() -> None:
    p = run(lambda: Network("n", network(cidr="10.30.0.0/16", availabilityZones=2, natGateways="None")))
    assert not p.of_type(NAT)
    assert not p.of_type(EIP)
    assert [r.name for r in p.of_type(ROUTE)] == ["n-public-default"]


def test_pinned_zones_are_used_in_order() -> None:
    p = run(
        lambda: Network("n", network(cidr="10.30.0.0/16", availabilityZones=2, zoneNames=["us-east-1d", "us-east-1b"]))
    )
    private = {
        s.inputs["availabilityZone"]: s.inputs["cidrBlock"]
        for s in p.of_type(SUBNET)
        if s.name.startswith("n-private-")
    }
    assert private == {"us-east-1d": "10.30.0.0/19", "us-east-1b": "10.30.32.0/19"}


def test_more_zones_than_the_region_offers_is_a_clear_error() -> None:
    import pulumi

    with pytest.raises(
        pulumi.RunError,
        match=r"keel:network.availabilityZones: got 7; this region offers 6 zone\(s\) without opt-in \(us-east-1a, ",
    ):
        # past the config's bound (6), as a region with fewer zones would be: the component checks what is offered
        wanted = network(cidr="10.30.0.0/16").model_copy(update={"availability_zones": 7})
        run(lambda: Network("n", wanted))


@pytest.mark.parametrize("prefix", [16, 17, 18, 19, 20])
@pytest.mark.parametrize("zones", [2, 3, 4, 5, 6])
def test_subnet_plan_is_disjoint_inside_and_stable_as_zones_grow(prefix: int, zones: int) -> None:
    vpc = ipaddress.IPv4Network(f"10.0.0.0/{prefix}")
    plan = plan_subnets(vpc, zones)
    nets = [n for zone in plan for n in zone]
    assert len(nets) == 3 * zones
    assert all(n.subnet_of(vpc) for n in nets)
    assert all(not a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1 :])
    assert plan == plan_subnets(vpc, 6)[:zones]  # adding zones never moves an existing subnet
    # room to grow: private subnets get 1/8 of the VPC, public and isolated 1/64 each
    assert {z.private.prefixlen for z in plan} == {prefix + 3}
    assert {z.public.prefixlen for z in plan} == {z.isolated.prefixlen for z in plan} == {prefix + 6}


def test_subnet_plan_of_a_16() -> None:
    plan = plan_subnets(ipaddress.IPv4Network("10.20.0.0/16"), 3)
    assert [tuple(map(str, z)) for z in plan] == [
        ("10.20.192.0/22", "10.20.0.0/19", "10.20.224.0/22"),
        ("10.20.196.0/22", "10.20.32.0/19", "10.20.228.0/22"),
        ("10.20.200.0/22", "10.20.64.0/19", "10.20.232.0/22"),
    ]
    with pytest.raises(ValueError, match="zones: got 7; allowed: 1 to 6"):
        plan_subnets(ipaddress.IPv4Network("10.20.0.0/16"), 7)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_aws_resource_uses_the_platform_provider_with_stack_tags(
    preview: Callable[[str], Preview], stack: str
) -> None:
    p = preview(stack)
    provider = p.one("pulumi:providers:aws", f"keel-{stack}-aws")
    assert provider.inputs["region"] == "us-east-1"
    assert json.loads(provider.inputs["defaultTags"])["tags"] == {
        "team": "platform",
        "costCenter": "ml",
        "environment": stack,
        "stack": stack,
        "managed-by": "pulumi",
    }
    aws_steps = [s for s in p.steps if s.custom and s.type.startswith("aws:")]
    assert aws_steps
    # prod's disaster-recovery vault, its lock, its key and the replicated database backups live in the copy region,
    # on a provider of their own
    # with the same tags; everything else is on the platform's provider
    # and so do the bucket replicas, their key and their logs bucket (tests/test_replication.py names them)
    replicas = {"keel-prod-storage-replica", "keel-prod-artifacts-replica", "keel-prod-uploads-replica"}
    replicas |= {"keel-prod-replica-logs"}
    # and the queue's Global Datastore secondary, its key and the standby network (tests/test_global_cache.py)
    replicas |= {"keel-prod-cache-standby", "keel-prod-queue-standby"}
    replicas |= {s.name for s in aws_steps if s.name.startswith("keel-prod-standby-")}
    elsewhere = {"keel-prod-backup-dr", "keel-prod-dr", "keel-prod-db-pitr", *replicas} if stack == "prod" else set()
    assert {s.provider.rsplit("::", 1)[0] for s in aws_steps if s.name not in elsewhere} == {provider.urn}
    if stack == "prod":
        dr = p.one("pulumi:providers:aws", "keel-prod-aws-us-west-2")
        assert dr.inputs["region"] == "us-west-2"
        assert dr.inputs["defaultTags"] == provider.inputs["defaultTags"]
        there = [s for s in aws_steps if s.provider.rsplit("::", 1)[0] == dr.urn]
        assert {s.name for s in there} >= replicas
        assert sorted((s.type, s.name) for s in there if s.name not in replicas) == [
            ("aws:backup/vault:Vault", "keel-prod-dr"),
            ("aws:backup/vaultLockConfiguration:VaultLockConfiguration", "keel-prod-dr"),
            ("aws:kms/alias:Alias", "keel-prod-backup-dr"),
            ("aws:kms/key:Key", "keel-prod-backup-dr"),
            ("aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication", "keel-prod-db-pitr"),
        ]
