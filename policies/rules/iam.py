"""IAM policies: no wildcard actions, no admin policies, scoped resources, restricted trust, one way to manage."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from ._util import as_list, document, of_type, referenced, resource_policy, stack_policy, statements

POLICY_DOCS = (
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/policy:Policy",
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
)
ROLE = ("aws:iam/role:Role",)
ATTACHMENTS = (
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:iam/policyAttachment:PolicyAttachment",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
)
ADMIN = ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess")
READ_VERBS = ("Describe", "Get", "List")
#: Actions AWS defines without resource-level permissions: "*" is their only possible resource.
UNSCOPABLE = (
    "cloudwatch:GetMetricData",
    "cloudwatch:GetMetricStatistics",
    "cloudwatch:ListMetrics",
    "ec2:GetSecurityGroupsForVpc",
    "sts:GetCallerIdentity",
)
POD_IDENTITY = "pods.eks.amazonaws.com"


def _allows(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in statements(doc) if s.get("Effect") == "Allow"]


def _no_wildcard_action(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    for st in _allows(document(props.get("policy"))):
        for action in as_list(st.get("Action")):
            if action == "*" or str(action).endswith(":*"):
                yield f"Statement {st.get('Sid', '(no Sid)')} allows {action!r}; list the actions the role needs."


def _scoped_resources(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    for st in _allows(document(props.get("policy"))):
        if "*" not in as_list(st.get("Resource")):
            continue
        scopable = [
            a
            for a in as_list(st.get("Action"))
            if a not in UNSCOPABLE and not str(a).split(":")[-1].startswith(READ_VERBS)
        ]
        if scopable:
            yield (
                f"Statement {st.get('Sid', '(no Sid)')} allows {', '.join(scopable)} on every resource; "
                "name the resources (or a tag condition)."
            )


def _no_admin(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    arn = str(props.get("policyArn", ""))
    if arn.rsplit("/", 1)[-1] in ADMIN and ":aws:policy/" in arn:
        yield f"{arn.rsplit('/', 1)[-1]} is an administrator policy; grant what the role needs instead."


def _trust(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    for st in _allows(document(props.get("assumeRolePolicy"))):
        principal = st.get("Principal")
        values = (
            [principal] if isinstance(principal, str) else [v for vs in (principal or {}).values() for v in as_list(vs)]
        )
        if "*" in values:
            yield "The trust policy lets anyone assume the role (Principal '*')."
        services = as_list((principal or {}).get("Service")) if isinstance(principal, Mapping) else []
        condition = st.get("Condition") or {}
        scoped = any(
            "aws:SourceArn" in c or "aws:SourceAccount" in c for c in condition.values() if isinstance(c, Mapping)
        )
        if POD_IDENTITY in services and not scoped:
            yield "A Pod Identity trust must be limited to this account and cluster (aws:SourceAccount/SourceArn)."


def _management_conflicts(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    separately = {
        r.urn for p in of_type(resources, "aws:iam/rolePolicy:RolePolicy", *ATTACHMENTS) for r in referenced(p, "role")
    }
    for role in of_type(resources, *ROLE):
        if role.urn in separately and (role.props.get("inlinePolicies") or role.props.get("managedPolicyArns")):
            yield (
                role.urn,
                (
                    f"Role {role.name} sets inline or managed policies on the role and as separate "
                    "resources; they undo each other. Use the separate resources only."
                ),
            )


POLICIES = [
    resource_policy(
        "aws-iam-policy-disallow-wildcard-action",
        "Policies list actions, never '*' or 'service:*'.",
        Severity.CRITICAL,
        "Replace the wildcard with the actions the workload calls.",
        POLICY_DOCS,
        _no_wildcard_action,
    ),
    resource_policy(
        "aws-iam-policy-scoped-resources",
        "Actions that can be scoped name their resources.",
        Severity.HIGH,
        "Name the ARNs, or add a tag condition; '*' is for Describe/Get/List only.",
        POLICY_DOCS,
        _scoped_resources,
    ),
    resource_policy(
        "aws-iam-disallow-admin-policies",
        "No role gets an administrator policy.",
        Severity.CRITICAL,
        "Attach a least-privilege policy instead.",
        ATTACHMENTS,
        _no_admin,
    ),
    resource_policy(
        "aws-iam-role-trust-restricted",
        "Trust policies name specific principals, with conditions.",
        Severity.CRITICAL,
        "Name the service or account; add aws:SourceAccount/aws:SourceArn.",
        ROLE,
        _trust,
    ),
    stack_policy(
        "aws-iam-role-policy-management-conflicts",
        "Role policies are managed one way only.",
        Severity.MEDIUM,
        "Use aws.iam.RolePolicy / RolePolicyAttachment only.",
        _management_conflicts,
    ),
]
