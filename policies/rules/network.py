"""Network policies: VPC, subnets, security groups, flow logs."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
)

DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SUBNET = "aws:ec2/subnet:Subnet"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


def _default_sg_no_rules(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != DEFAULT_SG:
        return
    for direction in ("ingress", "egress"):
        rules = args.props.get(direction)
        if rules is None or rules:
            report(f"The default security group must have no {direction} rules; set {direction}=[] explicitly.", None)


def _subnet_no_public_ip(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == SUBNET and args.props.get("mapPublicIpOnLaunch") is True:
        report("Subnets must not assign public IPs on launch; use NAT gateways and load balancers instead.", None)


def _log_group_encrypted(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != LOG_GROUP:
        return
    if not args.props.get("kmsKeyId"):
        report("Log groups must be encrypted with a customer-managed KMS key (kmsKeyId).", None)
    if not args.props.get("retentionInDays"):
        report("Log groups must set retentionInDays; without it events are kept (and billed) forever.", None)


default_security_group_no_rules = ResourceValidationPolicy(
    name="aws-ec2-default-security-group-no-rules",
    description="The VPC's default security group has no ingress or egress rules.",
    validate=_default_sg_no_rules,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    remediation_steps="Manage it with aws.ec2.DefaultSecurityGroup(ingress=[], egress=[]).",
)

subnet_no_public_ip_on_launch = ResourceValidationPolicy(
    name="aws-ec2-subnet-disallow-public-ip-on-launch",
    description="Subnets do not give instances public IPs on launch.",
    validate=_subnet_no_public_ip,
    enforcement_level=EnforcementLevel.ADVISORY,
    severity=Severity.MEDIUM,
    remediation_steps="Set map_public_ip_on_launch=False; NAT gateways use Elastic IPs.",
)

log_group_encrypted_with_retention = ResourceValidationPolicy(
    name="aws-cloudwatch-log-group-encrypted-with-retention",
    description="CloudWatch log groups are KMS-encrypted and have a retention period.",
    validate=_log_group_encrypted,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    remediation_steps="Set kms_key_id to a customer-managed key and retention_in_days from the stack config.",
)

POLICIES = [
    default_security_group_no_rules,
    subnet_no_public_ip_on_launch,
    log_group_encrypted_with_retention,
]
