"""IAM helpers shared by components: policy documents and EKS Pod Identity roles.

Usage::

    role = PodIdentityRole(f"{name}-keda", PodIdentityRoleArgs(
        cluster_name=cluster.name, cluster_arn=cluster.arn, namespace="keda", service_account="keda-operator",
        statements=[statement(["cloudwatch:GetMetricData"], "*")]), opts=child)

``PodIdentityRole`` (``keel:iam:PodIdentityRole``) creates ``<n>`` (an IAM role only the EKS Pod Identity
service may assume, and only for this account and cluster), ``<n>`` inline policy when statements are given,
one ``<n>-<i>`` attachment per managed policy ARN, and (unless ``associate`` is false) ``<n>`` pod identity
association binding the role to one service account. Outputs: ``role``, ``role_arn``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

Statement = dict[str, Any]


def statement(
    actions: Sequence[str] | str,
    resources: Sequence[str] | pulumi.Input[str],
    condition: dict[str, Any] | None = None,
    sid: str | None = None,
) -> Statement:
    """One Allow statement, with the keys in the order AWS prints them. A resource may be an Output (a role's
    inline policy serializes it with ``Output.json_dumps``)."""
    out: Statement = {}
    if sid:
        out["Sid"] = sid
    out["Effect"] = "Allow"
    out["Action"] = list(actions) if not isinstance(actions, str) else actions
    out["Resource"] = list(resources) if isinstance(resources, (list, tuple)) else resources
    if condition:
        out["Condition"] = condition
    return out


def document(statements: Sequence[Statement]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def pod_identity_trust(account: str, cluster_arn: str) -> dict[str, Any]:
    """Trust policy of a Pod Identity role: the EKS Pod Identity service, acting for one cluster of one
    account, may assume the role and tag the session (the agent tags it with the pod's namespace and SA)."""
    return document(
        [
            {
                "Effect": "Allow",
                "Principal": {"Service": "pods.eks.amazonaws.com"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account},
                    "ArnEquals": {"aws:SourceArn": cluster_arn},
                },
            }
        ]
    )


def managed_policy(partition: str, name: str) -> str:
    return f"arn:{partition}:iam::aws:policy/{name}"


@dataclass(frozen=True)
class PodIdentityRoleArgs:
    """Arguments of :class:`PodIdentityRole`."""

    cluster_name: pulumi.Input[str]
    """The EKS cluster the association belongs to (an Output, so the association waits for the cluster)."""

    cluster_arn: str
    """The cluster's ARN, for the trust policy's ``aws:SourceArn`` condition."""

    account: str
    """The account id, for the trust policy's ``aws:SourceAccount`` condition."""

    namespace: str
    """Kubernetes namespace of the service account."""

    service_account: str
    """Name of the service account whose pods get the role."""

    statements: Sequence[Statement] = ()
    """Inline policy statements (values may be Outputs, such as a topic's ARN). Empty: no inline policy."""

    managed_policy_arns: Sequence[str] = field(default_factory=tuple)
    """AWS managed policies to attach (only where AWS publishes the least-privilege policy itself)."""

    description: str = ""
    """Shown on the IAM role."""

    associate: bool = True
    """True: create the pod identity association here. False: the caller binds the role itself (an EKS
    add-on's ``podIdentityAssociations`` does, for add-on service accounts)."""


class PodIdentityRole(pulumi.ComponentResource):
    """An IAM role for one Kubernetes service account, bound through EKS Pod Identity."""

    role: aws.iam.Role
    role_arn: pulumi.Output[str]
    association: aws.eks.PodIdentityAssociation | None

    def __init__(self, name: str, args: PodIdentityRoleArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("keel:iam:PodIdentityRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = aws.iam.Role(
            name,
            description=args.description or f"Pod Identity role of {args.namespace}/{args.service_account}",
            assume_role_policy=json.dumps(pod_identity_trust(args.account, args.cluster_arn)),
            opts=child,
        )
        policies: list[pulumi.Resource] = []
        if args.statements:
            policies.append(
                aws.iam.RolePolicy(
                    name, role=self.role.id, policy=pulumi.Output.json_dumps(document(args.statements)), opts=child
                )
            )
        for index, arn in enumerate(args.managed_policy_arns):
            policies.append(
                aws.iam.RolePolicyAttachment(f"{name}-{index}", role=self.role.name, policy_arn=arn, opts=child)
            )
        self.association = None
        if args.associate:
            self.association = aws.eks.PodIdentityAssociation(
                name,
                cluster_name=args.cluster_name,
                namespace=args.namespace,
                service_account=args.service_account,
                role_arn=self.role.arn,
                opts=pulumi.ResourceOptions(parent=self, depends_on=policies),
            )
        self.role_arn = self.role.arn
        self.register_outputs({"role_arn": self.role_arn})


def secret_read_statements(secret_arns: str | Sequence[str], key_arn: str, region: str) -> list[Statement]:
    """Read Secrets Manager secrets (one ARN, or a list of them), decrypting them only through Secrets Manager."""
    return [
        statement(["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], secret_arns, sid="ReadSecret"),
        statement(
            "kms:Decrypt",
            key_arn,
            {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
            sid="DecryptThroughSecretsManager",
        ),
    ]


def grant_secret_read(
    label: str,
    role: aws.iam.Role,
    secret_arn: pulumi.Input[str] | list[pulumi.Input[str]],
    key_arn: pulumi.Input[str],
    region: str,
) -> aws.iam.RolePolicy:
    """Attach :func:`secret_read_statements` to ``role`` as ``<role>-<label>``: one secret (``Resource`` its ARN) or
    a list of secrets encrypted with the same key (``Resource`` the list)."""
    many = isinstance(secret_arn, list)
    arns = list(secret_arn) if isinstance(secret_arn, list) else [secret_arn]
    doc = pulumi.Output.all(key_arn, *arns).apply(
        lambda values: json.dumps(
            document(secret_read_statements(list(values[1:]) if many else values[1], values[0], region))
        )
    )
    return aws.iam.RolePolicy(
        f"{role.pulumi_resource_name}-{label}", role=role.id, policy=doc, opts=pulumi.ResourceOptions(parent=role)
    )
