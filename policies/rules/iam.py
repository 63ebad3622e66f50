"""IAM policies: no wildcard actions, no admin policies, scoped resources, restricted trust, one way to manage."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from ._util import (
    as_list,
    aws_principals,
    document,
    of_type,
    pins,
    principals,
    referenced,
    resource_policy,
    service_principals,
    sid,
    stack_policy,
    statements,
)

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
#: AWS managed policies that grant a whole service (the "...FullAccess" family is matched by name too).
BROAD = ("SecretsManagerReadWrite", "AmazonS3FullAccess", "AmazonEC2FullAccess", "AmazonRDSFullAccess")
#: The resource part of an ARN that names every resource of its type: ``*``, ``key/*``, ``secret:*``, ``tg/*/*``.
_WIDE_PART = re.compile(r"^([\w.-]+[/:])?\*([/:]\*)*$")
#: Verbs that read metadata only. ``Get`` is not among them: ``secretsmanager:GetSecretValue``, ``s3:GetObject``
#: and ``ssm:GetParameter`` read data, so a ``Get`` on every resource needs naming (or an UNSCOPABLE entry).
READ_VERBS = ("Describe", "List")
#: Actions AWS defines without resource-level permissions: "*" is their only possible resource.
UNSCOPABLE = (
    "cloudwatch:GetMetricData",
    "cloudwatch:GetMetricStatistics",
    "cloudwatch:ListMetrics",
    "ec2:GetInstanceTypesFromInstanceRequirements",
    "ec2:GetSecurityGroupsForVpc",
    "sts:GetCallerIdentity",
)
POD_IDENTITY = "pods.eks.amazonaws.com"
#: Service principals whose role trust takes no aws:SourceAccount/SourceArn: EC2 (instance profiles) and the EKS
#: cluster role (the EKS User Guide's cluster role trust policy has no condition).
UNPINNABLE_SERVICES = ("ec2.amazonaws.com", "eks.amazonaws.com")


def _allows(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in statements(doc) if s.get("Effect") == "Allow"]


def _wide(resource: Any) -> bool:
    """``*``, or an ARN naming every resource of a type: ``arn:aws:s3:::*``, ``...:key/*``, ``...:secret:*``,
    ``...:targetgroup/*/*`` (an S3 ARN is wide only when its bucket part is a wildcard)."""
    text = str(resource)
    if text == "*":
        return True
    parts = text.split(":", 5)
    if len(parts) < 6:
        return False
    if parts[2] == "s3":
        return "*" in parts[5].split("/", 1)[0]
    return _WIDE_PART.match(parts[5]) is not None


def _tag_scoped(statement: Mapping[str, Any]) -> bool:
    """A condition on the resource's tags (``aws:ResourceTag/...`` or a service's ``...:ResourceTag/...``)."""
    return any(
        "resourcetag/" in str(key).lower()
        for operator, clauses in (statement.get("Condition") or {}).items()
        if "Not" not in operator and isinstance(clauses, Mapping)
        for key in clauses
    )


def _no_wildcard_action(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    for st in _allows(document(props.get("policy"))):
        if "NotAction" in st:
            yield f"Statement {sid(st)} allows everything but a list (NotAction); list the actions the role needs."
        for action in as_list(st.get("Action")):
            if action == "*" or str(action).endswith(":*"):
                yield f"Statement {sid(st)} allows {action!r}; list the actions the role needs."


def _scoped_resources(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    for st in _allows(document(props.get("policy"))):
        if "NotResource" in st:
            yield f"Statement {sid(st)} allows every resource but a list (NotResource); name the resources."
            continue
        if _tag_scoped(st) or not any(_wide(r) for r in as_list(st.get("Resource"))):
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


def _broad(arn: Any) -> str | None:
    name = str(arn).rsplit("/", 1)[-1]
    is_broad = ":aws:policy/" in str(arn) and (name in ADMIN or name.endswith("FullAccess") or name in BROAD)
    return name if is_broad else None


def _no_admin(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    arns = [props.get("policyArn")] if args.resource_type in ATTACHMENTS else as_list(props.get("managedPolicyArns"))
    for name in filter(None, map(_broad, arns)):
        yield f"{name} is an administrator policy; grant what the role needs instead."
    for inline in as_list(props.get("inlinePolicies")) if args.resource_type in ROLE else []:
        for st in _allows(document(inline.get("policy"))):
            if "*" in as_list(st.get("Action")) or "NotAction" in st:
                yield f"Inline policy {inline.get('name')} allows every action; grant what the role needs instead."


def _trust(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    for st in _allows(document(props.get("assumeRolePolicy"))):
        if any("*" in str(v) for v in principals(st)):
            yield "The trust policy lets anyone assume the role (a '*' principal)."
        services, accounts, pinned = service_principals(st), aws_principals(st), pins(st)
        if POD_IDENTITY in services and not {"aws:sourcearn", "aws:sourceaccount"} <= pinned:
            yield (
                "A Pod Identity trust must be limited to this account and cluster (aws:SourceAccount and an "
                "aws:SourceArn naming the cluster, without wildcards)."
            )
        elif [s for s in services if s not in UNPINNABLE_SERVICES] and not pinned & {
            "aws:sourcearn",
            "aws:sourceaccount",
        }:
            yield (
                f"The trust of {', '.join(map(str, services))} must name this account or the source "
                "(aws:SourceAccount / aws:SourceArn), so no other account's resources can use it (confused deputy)."
            )
        if accounts and not pinned & {"sts:externalid", "aws:principalorgid", "aws:multifactorauthpresent"}:
            yield (
                f"A trust to AWS principals ({', '.join(map(str, accounts))}) needs a condition: sts:ExternalId for "
                "another account, aws:PrincipalOrgID or MFA for people."
            )


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
        (*ATTACHMENTS, *ROLE),
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
