"""Policy pack (network rules so far): each policy against a compliant baseline and one change, both ways."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationArgs,
    Severity,
)

from policies.rules import ALL, network


def check(policy: Any, resource_type: str, props: dict[str, Any]) -> list[str]:
    messages: list[str] = []
    args = ResourceValidationArgs(
        resource_type=resource_type,
        props=props,
        urn=f"urn:pulumi:test::keel::{resource_type}::r",
        name="r",
        opts=PolicyResourceOptions(
            protect=False,
            ignore_changes=[],
            delete_before_replace=None,
            aliases=[],
            additional_secret_outputs=[],
            custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        ),
        provider=None,
    )
    policy.validate(args, lambda message, urn=None: messages.append(message))
    return messages


CASES: list[tuple[Any, str, dict[str, Any], dict[str, Any], list[str]]] = [
    # policy, type, compliant props, one changed property, expected message
    (
        network.default_security_group_no_rules,
        network.DEFAULT_SG,
        {"ingress": [], "egress": []},
        {"egress": [{"protocol": "-1", "cidrBlocks": ["0.0.0.0/0"]}]},
        ["The default security group must have no egress rules; set egress=[] explicitly."],
    ),
    (
        network.default_security_group_no_rules,
        network.DEFAULT_SG,
        {"ingress": [], "egress": []},
        {"ingress": None},
        ["The default security group must have no ingress rules; set ingress=[] explicitly."],
    ),
    (
        network.subnet_no_public_ip_on_launch,
        network.SUBNET,
        {"mapPublicIpOnLaunch": False},
        {"mapPublicIpOnLaunch": True},
        ["Subnets must not assign public IPs on launch; use NAT gateways and load balancers instead."],
    ),
    (
        network.log_group_encrypted_with_retention,
        network.LOG_GROUP,
        {"kmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/k", "retentionInDays": 90},
        {"kmsKeyId": None},
        ["Log groups must be encrypted with a customer-managed KMS key (kmsKeyId)."],
    ),
    (
        network.log_group_encrypted_with_retention,
        network.LOG_GROUP,
        {"kmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/k", "retentionInDays": 90},
        {"retentionInDays": 0},
        ["Log groups must set retentionInDays; without it events are kept (and billed) forever."],
    ),
]


@pytest.mark.parametrize(
    ("policy", "type_", "baseline", "change", "expected"),
    CASES,
    ids=[f"{c[0].name}-{next(iter(c[3]))}" for c in CASES],
)
def test_policy_both_ways(
    policy: Any, type_: str, baseline: dict[str, Any], change: dict[str, Any], expected: list[str]
) -> None:
    assert check(policy, type_, baseline) == []
    assert check(policy, type_, {**baseline, **change}) == expected
    assert check(policy, "aws:s3/bucket:Bucket", {**baseline, **change}) == []  # other types are not judged


def test_policies_are_named_and_graded() -> None:
    names = [p.name for p in ALL]
    assert len(names) == len(set(names))
    for policy in ALL:
        assert policy.name == policy.name.lower() and " " not in policy.name
        assert policy.description and policy.remediation_steps
        if policy.severity in (Severity.CRITICAL, Severity.HIGH):
            assert policy.enforcement_level == EnforcementLevel.MANDATORY
