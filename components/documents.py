"""Policy-document pieces with no Pulumi in them, so the boto3 tooling (``keel bootstrap``) shares them with the
components without importing the provider SDKs."""

from __future__ import annotations

from typing import Any


def deny_without_tls(sid: str, action: str, resource: str | list[str]) -> dict[str, Any]:
    """A resource-policy statement denying everyone ``action`` on ``resource`` over a connection without TLS."""
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": action,
        "Resource": resource,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def deny_insecure_transport(bucket_arn: str) -> dict[str, Any]:
    """Deny every request to a bucket and its objects that does not use TLS."""
    return deny_without_tls("DenyInsecureTransport", "s3:*", [bucket_arn, f"{bucket_arn}/*"])


def service_uses_key(sid: str, service: str, account: str, source_arn: str | None = None) -> dict[str, Any]:
    """A key-policy statement: an AWS service publishing to an encrypted SNS topic may use the key, only when
    acting for ``account`` (and, given ``source_arn``, only for matching sources)."""
    condition: dict[str, Any] = {"StringEquals": {"aws:SourceAccount": account}}
    if source_arn is not None:
        condition["ArnLike"] = {"aws:SourceArn": source_arn}
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": ["kms:GenerateDataKey*", "kms:Decrypt"],
        "Resource": "*",
        "Condition": condition,
    }


def service_publishes(sid: str, service: str, topic_arn: str, account: str, source_arn: str) -> dict[str, Any]:
    """A topic-policy statement: ``service`` may publish to the topic, for ``account`` and matching sources only."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sns:Publish",
        "Resource": topic_arn,
        "Condition": {"StringEquals": {"aws:SourceAccount": account}, "ArnLike": {"aws:SourceArn": source_arn}},
    }
