"""Network policies: open ingress, descriptions, the default security group, flow logs, subnets, rule conflicts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from ._util import (
    as_list,
    at_least,
    days,
    is_false,
    is_true,
    num,
    number,
    of_type,
    public_cidr,
    referenced,
    resource_policy,
    shown,
    stack_policy,
    threshold,
)

DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SUBNET = "aws:ec2/subnet:Subnet"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE = ("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",)
EGRESS_RULE = ("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",)
LEGACY_RULE = ("aws:ec2/securityGroupRule:SecurityGroupRule",)
LOAD_BALANCER = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
OPEN = ("0.0.0.0/0", "::/0")


def _default_sg_no_rules(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    for direction in ("ingress", "egress"):
        rules = props.get(direction)
        if rules is None or rules:
            yield f"The default security group must have no {direction} rules; set {direction}=[] explicitly."


def _subnet_no_public_ip(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if is_true(props.get("mapPublicIpOnLaunch")):
        yield "Subnets must not assign public IPs on launch; use NAT gateways and load balancers instead."


def _log_group(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    if not props.get("kmsKeyId"):
        yield "Log groups must be encrypted with a customer-managed KMS key (kmsKeyId)."
    value = props.get("retentionInDays")
    minimum = threshold(args, "minimumDays", 7)
    if num(value, "retentionInDays") in (None, 0):
        yield "Log groups must set retentionInDays; without it events are kept (and billed) forever."
    elif not at_least(value, minimum, "retentionInDays"):
        yield f"Log groups must keep events at least {days(minimum)} (retentionInDays is {shown(value)})."


def _descriptions(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    description = str(props.get("description") or "")
    if not description or description == "Managed by Pulumi":
        yield "Security groups and their rules must say what they admit (description)."
    for rule in [*as_list(props.get("ingress")), *as_list(props.get("egress"))]:
        if isinstance(rule, Mapping) and not rule.get("description"):
            yield "Every inline rule must have a description."


def _inline_open(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    for rule in as_list(props.get("ingress")):
        cidrs = [*as_list(rule.get("cidrBlocks")), *as_list(rule.get("ipv6CidrBlocks"))]
        if any(public_cidr(c) for c in cidrs):
            yield "Inline ingress from 0.0.0.0/0 is not allowed; open only the ALB, on 80/443, with separate rules."


def _open_ingress(resources: Sequence[PolicyResource], args: StackValidationArgs) -> Iterable[tuple[str, str]]:
    allowed_ports = {80, 443}
    alb_groups = {sg.urn for lb in of_type(resources, *LOAD_BALANCER) for sg in referenced(lb, "securityGroups")}
    for rule in of_type(resources, *INGRESS_RULE, *LEGACY_RULE):
        props = rule.props
        if rule.resource_type in LEGACY_RULE and props.get("type") != "ingress":
            continue
        cidrs = [props.get("cidrIpv4"), props.get("cidrIpv6"), *as_list(props.get("cidrBlocks"))]
        if not any(public_cidr(c) for c in cidrs if c):
            continue
        groups = {g.urn for g in referenced(rule, "securityGroupId")}
        ports = {props.get("fromPort"), props.get("toPort")}
        if not groups & alb_groups or not ports <= allowed_ports or props.get("fromPort") != props.get("toPort"):
            yield (
                rule.urn,
                (
                    f"Ingress from the internet is allowed only into the ALB's security group on 80 or 443; "
                    f"rule {rule.name} opens {number(props.get('fromPort'))}-{number(props.get('toPort'))}."
                ),
            )


def _flow_logs(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    logged: set[str] = set()
    for log in of_type(resources, "aws:ec2/flowLog:FlowLog"):
        vpcs = {v.urn for v in referenced(log, "vpcId")}
        if log.props.get("trafficType") != "ALL":
            yield log.urn, f"Flow log {log.name} must record ALL traffic (got {log.props.get('trafficType')})."
        elif not log.props.get("logDestination"):
            yield log.urn, f"Flow log {log.name} has no destination."
        else:
            logged |= vpcs
    for vpc in of_type(resources, "aws:ec2/vpc:Vpc"):
        if vpc.urn not in logged:
            yield vpc.urn, f"VPC {vpc.name} has no flow log."


#: Resources that hold data, and the property that names their security groups.
DATA_STORE_GROUPS = {
    "aws:rds/instance:Instance": "vpcSecurityGroupIds",
    "aws:rds/cluster:Cluster": "vpcSecurityGroupIds",
    "aws:elasticache/replicationGroup:ReplicationGroup": "securityGroupIds",
}


def _data_store_sources(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    groups: dict[str, str] = {}
    for store in resources:
        if store.resource_type in DATA_STORE_GROUPS:
            for g in referenced(store, DATA_STORE_GROUPS[store.resource_type]):
                # The first store named: a database's read replicas share its group and come after it.
                groups.setdefault(g.urn, store.name)
    for rule in of_type(resources, *INGRESS_RULE, *LEGACY_RULE):
        if rule.resource_type in LEGACY_RULE and rule.props.get("type") != "ingress":
            continue
        into = [groups[g.urn] for g in referenced(rule, "securityGroupId") if g.urn in groups]
        if into and not (rule.props.get("referencedSecurityGroupId") or rule.props.get("sourceSecurityGroupId")):
            yield (
                rule.urn,
                f"Rule {rule.name} admits addresses into {into[0]}'s security group; data stores admit only "
                "security groups (the nodes'), never CIDR ranges or prefix lists.",
            )


def _ports_named(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    """Ingress names its protocol and ports; all traffic only between members of one group (nodes to nodes)."""
    protocol = str(props.get("ipProtocol", props.get("protocol", "")))
    source = props.get("referencedSecurityGroupId") or props.get("sourceSecurityGroupId")
    if props.get("type", "ingress") != "ingress":
        return
    itself = is_true(props.get("self")) or (source is not None and source == props.get("securityGroupId"))
    if protocol in ("-1", "all") and not itself:
        yield "Ingress must name a protocol and ports; all traffic (-1) is only for a group admitting itself."
    elif protocol not in ("-1", "all"):
        low, high = num(props.get("fromPort")), num(props.get("toPort"))
        if low is not None and high is not None and low <= 0 and high >= 65535 and not itself:
            yield "Ingress must name the ports it needs, not 0-65535."


def _rule_conflicts(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    with_rules = {
        g.urn
        for r in of_type(resources, *INGRESS_RULE, *EGRESS_RULE, *LEGACY_RULE)
        for g in referenced(r, "securityGroupId")
    }
    for group in of_type(resources, SECURITY_GROUP):
        if group.urn in with_rules and (group.props.get("ingress") or group.props.get("egress")):
            yield (
                group.urn,
                (
                    f"Security group {group.name} has inline rules and separate rule resources; "
                    "they overwrite each other on every update. Use separate rules only."
                ),
            )


def _default_sg_managed(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    managed = {v.urn for g in of_type(resources, DEFAULT_SG) for v in referenced(g, "vpcId")}
    for vpc in of_type(resources, "aws:ec2/vpc:Vpc"):
        if vpc.urn not in managed:
            yield (
                vpc.urn,
                f"VPC {vpc.name}'s default security group is not managed: unmanaged, it admits all traffic between "
                "its members and out (aws.ec2.DefaultSecurityGroup with no rules).",
            )


def _tier(subnet: PolicyResource) -> str:
    tags = subnet.props.get("tags") or {}
    return str(tags.get("keel.dev/tier", "")) if isinstance(tags, Mapping) else ""


def _private_routes(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    """Private subnets reach the internet through NAT only; isolated ones not at all."""
    tiers: dict[str, set[str]] = {}
    for association in of_type(resources, "aws:ec2/routeTableAssociation:RouteTableAssociation"):
        for table in referenced(association, "routeTableId"):
            tiers.setdefault(table.urn, set()).update(_tier(s) for s in referenced(association, "subnetId"))
    for route in of_type(resources, "aws:ec2/route:Route"):
        for table in referenced(route, "routeTableId"):
            served = tiers.get(table.urn, set()) & {"private", "isolated"}
            to_gateway = any(
                g.resource_type == "aws:ec2/internetGateway:InternetGateway" for g in referenced(route, "gatewayId")
            ) or str(route.props.get("gatewayId", "")).startswith("igw-")
            if (
                "isolated" in served
                and (route.props.get("destinationCidrBlock") or route.props.get("destinationIpv6CidrBlock")) in OPEN
            ):
                yield route.urn, f"Route {route.name} gives isolated subnets a way out; isolated subnets have none."
            elif served and to_gateway:
                yield route.urn, f"Route {route.name} sends private subnets to the internet gateway; use NAT."


DATA_SUBNET_GROUPS = ("aws:rds/subnetGroup:SubnetGroup", "aws:elasticache/subnetGroup:SubnetGroup")


def _data_isolated(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    for group in of_type(resources, *DATA_SUBNET_GROUPS):
        exposed = sorted({s.name for s in referenced(group, "subnetIds") if _tier(s) != "isolated"})
        if exposed:
            yield (
                group.urn,
                f"Subnet group {group.name} spans subnets that are not isolated ({', '.join(exposed)}); data "
                "stores live in the isolated tier, with no route out.",
            )


def _log_groups_precreated(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    """A log stream the stack turns on has a log group the stack made (encrypted, with retention); otherwise the
    service creates one itself, unencrypted and kept forever."""
    names = {str(g.props.get("name")) for g in of_type(resources, LOG_GROUP)}
    # A name the provider picks (no name input) is known only after creation: not judged here.
    for cluster in of_type(resources, "eks:index:Cluster", "aws:eks/cluster:Cluster"):
        wanted = f"/aws/eks/{cluster.props.get('name')}/cluster"
        if cluster.props.get("name") and as_list(cluster.props.get("enabledClusterLogTypes")) and wanted not in names:
            yield cluster.urn, f"Cluster {cluster.name} logs to {wanted}, which the stack does not create."
    for db in of_type(resources, "aws:rds/instance:Instance"):
        for kind in as_list(db.props.get("enabledCloudwatchLogsExports")) if db.props.get("identifier") else []:
            wanted = f"/aws/rds/instance/{db.props.get('identifier')}/{kind}"
            if wanted not in names:
                yield db.urn, f"Database {db.name} exports to {wanted}, which the stack does not create."


def _private_subnets(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    for subnet in of_type(resources, SUBNET):
        tags = subnet.props.get("tags") or {}
        if tags.get("keel.dev/tier") in ("private", "isolated") and not is_false(
            subnet.props.get("mapPublicIpOnLaunch")
        ):
            yield (
                subnet.urn,
                f"Subnet {subnet.name} is {tags['keel.dev/tier']} and must set mapPublicIpOnLaunch: false.",
            )


POLICIES = [
    resource_policy(
        "aws-ec2-default-security-group-no-rules",
        "The VPC's default security group has no rules.",
        Severity.HIGH,
        "Manage it with aws.ec2.DefaultSecurityGroup(ingress=[], egress=[]).",
        (DEFAULT_SG,),
        _default_sg_no_rules,
    ),
    resource_policy(
        "aws-ec2-subnet-disallow-public-ip-on-launch",
        "Subnets do not give instances public IPs on launch.",
        Severity.MEDIUM,
        "Set map_public_ip_on_launch=False; NAT gateways use Elastic IPs.",
        (SUBNET,),
        _subnet_no_public_ip,
    ),
    resource_policy(
        "aws-cloudwatch-log-group-encrypted-with-retention",
        "CloudWatch log groups are KMS-encrypted and keep events long enough, not forever.",
        Severity.HIGH,
        "Set kms_key_id to a customer-managed key and retention_in_days from the stack config.",
        (LOG_GROUP,),
        _log_group,
        {"minimumDays": {"type": "integer", "minimum": 1, "default": 7}},
    ),
    resource_policy(
        "aws-ec2-security-group-descriptions",
        "Security groups and rules say what they admit.",
        Severity.LOW,
        "Give the group and each rule a description.",
        (SECURITY_GROUP, *INGRESS_RULE, *EGRESS_RULE),
        _descriptions,
    ),
    resource_policy(
        "aws-ec2-security-group-disallow-inline-open-ingress",
        "No inline rule opens a group to the world.",
        Severity.CRITICAL,
        "Remove the rule; only the ALB is open, on 80/443.",
        (SECURITY_GROUP,),
        _inline_open,
    ),
    stack_policy(
        "aws-ec2-ingress-open-only-to-alb",
        "Only the ALB accepts traffic from anywhere, on 80 and 443.",
        Severity.CRITICAL,
        "Admit a security group or the VPC CIDR instead of 0.0.0.0/0.",
        _open_ingress,
    ),
    resource_policy(
        "aws-ec2-ingress-rules-name-ports",
        "Ingress rules name a protocol and ports.",
        Severity.HIGH,
        "Set ipProtocol tcp/udp with fromPort/toPort.",
        (*INGRESS_RULE, *LEGACY_RULE),
        _ports_named,
    ),
    stack_policy(
        "aws-ec2-data-stores-admit-security-groups-only",
        "Databases and caches admit security groups, never address ranges.",
        Severity.HIGH,
        "Admit the node security group (referencedSecurityGroupId), not a CIDR.",
        _data_store_sources,
    ),
    stack_policy(
        "aws-ec2-vpc-default-security-group-managed",
        "Every VPC's default security group is managed, with no rules.",
        Severity.HIGH,
        "Create aws.ec2.DefaultSecurityGroup(ingress=[], egress=[]) for the VPC (components/network.py does).",
        _default_sg_managed,
    ),
    stack_policy(
        "aws-ec2-private-subnets-no-internet-route",
        "Private subnets reach the internet only through NAT; isolated ones not at all.",
        Severity.HIGH,
        "Route private tables to a NAT gateway; give isolated tables no default route.",
        _private_routes,
    ),
    stack_policy(
        "aws-data-stores-in-isolated-subnets",
        "Databases and caches live in isolated subnets.",
        Severity.HIGH,
        "Use the network's isolated subnets for the subnet group.",
        _data_isolated,
    ),
    stack_policy(
        "aws-cloudwatch-log-groups-precreated",
        "Every log stream the stack turns on goes to a log group the stack creates.",
        Severity.HIGH,
        "Create the log group before the cluster or database (components/cluster.py, database.py).",
        _log_groups_precreated,
    ),
    stack_policy(
        "aws-ec2-vpc-flow-logs",
        "Every VPC has flow logs of all traffic.",
        Severity.MEDIUM,
        "Create aws.ec2.FlowLog for the VPC (components/network.py does).",
        _flow_logs,
    ),
    stack_policy(
        "aws-ec2-security-group-rule-conflicts",
        "Security groups are managed one way only.",
        Severity.MEDIUM,
        "Move inline rules to aws.vpc.SecurityGroupIngressRule/EgressRule.",
        _rule_conflicts,
    ),
    stack_policy(
        "aws-ec2-private-subnets-no-public-ip",
        "Private and isolated subnets never assign public IPs.",
        Severity.HIGH,
        "Set mapPublicIpOnLaunch: false.",
        _private_subnets,
    ),
]
