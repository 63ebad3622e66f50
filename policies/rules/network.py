"""Network policies: open ingress, descriptions, the default security group, flow logs, subnets, rule conflicts."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from ._util import as_list, number, of_type, referenced, resource_policy, stack_policy

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
    if props.get("mapPublicIpOnLaunch") is True:
        yield "Subnets must not assign public IPs on launch; use NAT gateways and load balancers instead."


def _log_group(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if not props.get("kmsKeyId"):
        yield "Log groups must be encrypted with a customer-managed KMS key (kmsKeyId)."
    if not props.get("retentionInDays"):
        yield "Log groups must set retentionInDays; without it events are kept (and billed) forever."


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
        if any(c in OPEN for c in cidrs):
            yield "Inline ingress from 0.0.0.0/0 is not allowed; open only the ALB, on 80/443, with separate rules."


def _open_ingress(resources: Sequence[PolicyResource], args: StackValidationArgs) -> Iterable[tuple[str, str]]:
    allowed_ports = {80, 443}
    alb_groups = {sg.urn for lb in of_type(resources, *LOAD_BALANCER) for sg in referenced(lb, "securityGroups")}
    for rule in of_type(resources, *INGRESS_RULE, *LEGACY_RULE):
        props = rule.props
        if rule.resource_type in LEGACY_RULE and props.get("type") != "ingress":
            continue
        cidrs = [props.get("cidrIpv4"), props.get("cidrIpv6"), *as_list(props.get("cidrBlocks"))]
        if not any(c in OPEN for c in cidrs):
            continue
        groups = {g.urn for g in referenced(rule, "securityGroupId")}
        ports = {props.get("fromPort"), props.get("toPort")}
        if not groups & alb_groups or not ports <= allowed_ports or props.get("fromPort") != props.get("toPort"):
            yield (
                rule.urn,
                (
                    f"Ingress from anywhere is allowed only into the ALB's security group on 80 or 443; "
                    f"rule {rule.name} opens {number(props.get('fromPort'))}-{number(props.get('toPort'))}."
                ),
            )


def _flow_logs(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    logged = {v.urn for log in of_type(resources, "aws:ec2/flowLog:FlowLog") for v in referenced(log, "vpcId")}
    for vpc in of_type(resources, "aws:ec2/vpc:Vpc"):
        if vpc.urn not in logged:
            yield vpc.urn, f"VPC {vpc.name} has no flow log."


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


def _private_subnets(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    for subnet in of_type(resources, SUBNET):
        tags = subnet.props.get("tags") or {}
        if (
            tags.get("keel.dev/tier") in ("private", "isolated")
            and subnet.props.get("mapPublicIpOnLaunch") is not False
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
        "CloudWatch log groups are KMS-encrypted and have a retention period.",
        Severity.HIGH,
        "Set kms_key_id to a customer-managed key and retention_in_days from the stack config.",
        (LOG_GROUP,),
        _log_group,
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
    stack_policy(
        "aws-ec2-vpc-flow-logs",
        "Every VPC has flow logs.",
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
