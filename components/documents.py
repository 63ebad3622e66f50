"""Policy-document pieces with no Pulumi in them, so the boto3 tooling (``keel bootstrap``) shares them with the
components without importing the provider SDKs."""

from __future__ import annotations

from typing import Any


def deny_insecure_transport(bucket_arn: str) -> dict[str, Any]:
    """Deny every request to a bucket and its objects that does not use TLS."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
