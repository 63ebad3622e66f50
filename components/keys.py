"""Customer-managed KMS keys: one per data concern (database, caches, storage, email), each with an alias.

Usage::

    key = create_key(f"{name}-database", "RDS storage, Performance Insights and the master secret", ctx,
                     service_statements=[logs_may_use(ctx, [group_arn])], protect=True,
                     opts=pulumi.ResourceOptions(parent=self))

Why one key per concern (not one per stack): a key's policy and grants then name one service's principals, a
compromise or a mistaken key deletion touches one concern, and CloudTrail shows per-concern key usage. The cost is
$1 per key and month. Every key rotates yearly, waits 30 days before deletion, and its policy names no wildcard
principal: the account root (so IAM policies decide, as AWS recommends) and specific service principals with
conditions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from components.context import AwsContext
from components.iam import Statement, document


def key_policy(ctx: AwsContext, service_statements: Sequence[Statement] = ()) -> dict[str, Any]:
    return document(
        [
            {
                "Sid": "AccountAdministersKeyThroughIam",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{ctx.partition}:iam::{ctx.account}:root"},
                "Action": "kms:*",
                "Resource": "*",
            },
            *service_statements,
        ]
    )


def logs_may_use(ctx: AwsContext, log_group_arns: Sequence[str]) -> Statement:
    """CloudWatch Logs may use the key, for the named log groups only."""
    return {
        "Sid": "CloudWatchLogsUsesKeyForItsLogGroups",
        "Effect": "Allow",
        "Principal": {"Service": f"logs.{ctx.region}.amazonaws.com"},
        "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
        "Resource": "*",
        "Condition": {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": list(log_group_arns)}},
    }


#: What the account may do with a key it only administers: everything but using it (encrypt, decrypt, data keys)
#: and granting its use (``kms:CreateGrant``), so no IAM policy can open its use outside the key policy.
KEY_ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:Get*",
    "kms:List*",
    "kms:PutKeyPolicy",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)


def secrets_manager_key_policy(ctx: AwsContext) -> dict[str, Any]:
    """The policy of a key that only Secrets Manager uses: the account administers it through IAM, and its
    principals use it only through Secrets Manager in this region (``kms:ViaService``), for this account
    (``kms:CallerAccount``); which principal may read which secret is IAM's to say (the secret's grant). Nobody,
    an administrator included, decrypts with it directly."""
    root = f"arn:{ctx.partition}:iam::{ctx.account}:root"
    return document(
        [
            {
                "Sid": "AccountAdministersKeyThroughIam",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": list(KEY_ADMIN_ACTIONS),
                "Resource": "*",
            },
            {
                "Sid": "AccountUsesKeyThroughSecretsManagerOnly",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        "kms:ViaService": f"secretsmanager.{ctx.region}.amazonaws.com",
                        "kms:CallerAccount": ctx.account,
                    }
                },
            },
        ]
    )


def create_key(
    name: str,
    purpose: str,
    ctx: AwsContext,
    *,
    service_statements: Sequence[Statement] = (),
    policy: Mapping[str, Any] | None = None,
    protect: bool,
    opts: pulumi.ResourceOptions,
) -> aws.kms.Key:
    """A rotating customer-managed key ``<name>`` and its alias ``alias/<name>``. ``policy``: the key policy (None:
    :func:`key_policy` with ``service_statements``). ``opts`` carries the parent (and, outside a component that has
    one, the provider); ``protect`` and ``retainOnDelete`` are merged in."""
    key = aws.kms.Key(
        name,
        description=f"{name}: {purpose}",
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=json.dumps(policy if policy is not None else key_policy(ctx, service_statements)),
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=protect, retain_on_delete=protect)),
    )
    aws.kms.Alias(name, name=f"alias/{name}", target_key_id=key.key_id, opts=opts)
    return key
