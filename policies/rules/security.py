"""Keys, SES and secrets: rotation, no wildcard principals, TLS-only mail, secrets under a customer key."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity

from ._util import as_list, dig, document, resource_policy, statements

KEY = ("aws:kms/key:Key",)


def _rotation(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if (
        props.get("enableKeyRotation") is not True
        and props.get("customerMasterKeySpec", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT"
    ):
        yield "Symmetric keys must rotate (enableKeyRotation: true)."


def _no_wildcard_principal(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    for st in statements(document(props.get("policy"))):
        if st.get("Effect") != "Allow":
            continue
        principal = st.get("Principal")
        values = (
            [principal] if isinstance(principal, str) else [v for vs in (principal or {}).values() for v in as_list(vs)]
        )
        if "*" in values:
            yield f"Key policy statement {st.get('Sid', '(no Sid)')} allows any principal ('*')."


def _ses_tls(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if dig(props, "deliveryOptions.tlsPolicy") != "REQUIRE":
        yield "The configuration set must require TLS for delivery (deliveryOptions.tlsPolicy: REQUIRE)."


def _secret_cmk(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if not props.get("kmsKeyId"):
        yield "Secrets must be encrypted with a customer-managed KMS key (kmsKeyId)."


def _topic_cmk(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if not props.get("kmsMasterKeyId"):
        yield "SNS topics must be encrypted (kmsMasterKeyId)."


POLICIES = [
    resource_policy(
        "aws-kms-key-rotation-enabled",
        "Customer-managed keys rotate yearly.",
        Severity.HIGH,
        "Set enableKeyRotation: true.",
        KEY,
        _rotation,
    ),
    resource_policy(
        "aws-kms-key-policy-no-wildcard-principal",
        "Key policies name their principals.",
        Severity.CRITICAL,
        "Replace '*' with the account root or a service principal with conditions.",
        KEY,
        _no_wildcard_principal,
    ),
    resource_policy(
        "aws-sesv2-configuration-set-requires-tls",
        "Mail is delivered over TLS only.",
        Severity.MEDIUM,
        "Set deliveryOptions.tlsPolicy: REQUIRE.",
        ("aws:sesv2/configurationSet:ConfigurationSet",),
        _ses_tls,
    ),
    resource_policy(
        "aws-secretsmanager-secret-cmk",
        "Secrets are encrypted with a customer-managed key.",
        Severity.MEDIUM,
        "Set kmsKeyId on the secret.",
        ("aws:secretsmanager/secret:Secret",),
        _secret_cmk,
    ),
    resource_policy(
        "aws-sns-topic-encrypted",
        "SNS topics are encrypted.",
        Severity.MEDIUM,
        "Set kmsMasterKeyId.",
        ("aws:sns/topic:Topic",),
        _topic_cmk,
    ),
]
