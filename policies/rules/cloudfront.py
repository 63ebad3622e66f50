"""CloudFront policies: viewer TLS, HTTPS everywhere (viewers and origin), a WAF web ACL and access logs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from ._util import as_list, configured, dig, is_true, of_type, referenced, resource_policy, stack_policy

DISTRIBUTION = ("aws:cloudfront/distribution:Distribution",)
LOG_DELIVERY_SOURCE = "aws:cloudwatch/logDeliverySource:LogDeliverySource"
LOG_DELIVERY = "aws:cloudwatch/logDelivery:LogDelivery"
#: Viewer security policies that allow TLS 1.2 and up only with modern ciphers (CloudFront Developer Guide,
#: "Supported protocols and ciphers between viewers and CloudFront"). TLSv1.2_2018 and _2019 keep CBC ciphers.
TLS_POLICIES = ("TLSv1.2_2021", "TLSv1.2_2025", "TLSv1.3_2025")
_VIEWER_HTTPS = ("redirect-to-https", "https-only")


def _tls(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    cert = props.get("viewerCertificate") or {}
    if is_true(cert.get("cloudfrontDefaultCertificate")) or not cert.get("acmCertificateArn"):
        yield (
            "The distribution must serve its own ACM certificate (viewerCertificate.acmCertificateArn), "
            "not *.cloudfront.net's."
        )
    allowed = configured(args, "minimumProtocolVersions", list(TLS_POLICIES))
    if cert.get("minimumProtocolVersion") not in allowed:
        yield (
            f"Viewers must use TLS 1.2 or later with modern ciphers (minimumProtocolVersion {TLS_POLICIES[0]}); "
            f"got {cert.get('minimumProtocolVersion')}."
        )
    if cert.get("sslSupportMethod") not in (None, "sni-only"):
        yield f"sslSupportMethod {cert.get('sslSupportMethod')} (dedicated IPs) costs $600 a month; use sni-only."


def _https(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    behaviours = [("default", props.get("defaultCacheBehavior") or {})] + [
        (str(b.get("pathPattern")), b) for b in as_list(props.get("orderedCacheBehaviors"))
    ]
    plain = [name for name, b in behaviours if b.get("viewerProtocolPolicy") not in _VIEWER_HTTPS]
    if plain:
        yield f"Viewers must be redirected to HTTPS (viewerProtocolPolicy redirect-to-https) in: {', '.join(plain)}."
    for origin in as_list(props.get("origins")):
        custom = origin.get("customOriginConfig")
        if not custom:
            continue
        if custom.get("originProtocolPolicy") != "https-only":
            yield f"Origin {origin.get('originId')} must be reached over HTTPS only (originProtocolPolicy https-only)."
        weak = [p for p in as_list(custom.get("originSslProtocols")) if p != "TLSv1.2"]
        if weak:
            yield f"Origin {origin.get('originId')} allows {', '.join(map(str, weak))}; allow TLSv1.2 only."


def _waf(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if not props.get("webAclId"):
        yield "The distribution must have a WAF web ACL (webAclId; keel:ingress.waf.enabled)."


def _logged(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    """A distribution logs when it has standard logging (legacy, ``loggingConfig.bucket``) or a v2 delivery: a
    delivery source built from its ARN that a delivery sends somewhere."""
    delivered = {source.urn for d in of_type(resources, LOG_DELIVERY) for source in referenced(d, "deliverySourceName")}
    logged = {
        d.urn
        for s in of_type(resources, LOG_DELIVERY_SOURCE)
        if s.urn in delivered and s.props.get("logType") == "ACCESS_LOGS"
        for d in referenced(s, "resourceArn")
    }
    for d in of_type(resources, *DISTRIBUTION):
        if d.urn not in logged and not dig(d.props, "loggingConfig.bucket"):
            yield (
                d.urn,
                f"Distribution {d.name} has no access logs (a log delivery of its ACCESS_LOGS to the logs bucket).",
            )


POLICIES = [
    resource_policy(
        "aws-cloudfront-viewer-tls",
        "Distributions serve their own certificate with TLS 1.2+ and modern ciphers.",
        Severity.HIGH,
        f"Set viewerCertificate.minimumProtocolVersion to {TLS_POLICIES[0]} with an ACM certificate (sni-only).",
        DISTRIBUTION,
        _tls,
        {"minimumProtocolVersions": {"type": "array", "items": {"type": "string"}}},
    ),
    resource_policy(
        "aws-cloudfront-https",
        "Viewers are redirected to HTTPS and the origin is reached over TLS 1.2 only.",
        Severity.HIGH,
        "Set viewerProtocolPolicy redirect-to-https on every behaviour, and the origin to https-only, TLSv1.2.",
        DISTRIBUTION,
        _https,
    ),
    resource_policy(
        "aws-cloudfront-waf",
        "Distributions have a WAF web ACL.",
        Severity.HIGH,
        "Set keel:ingress.waf.enabled: true (a CLOUDFRONT-scope web ACL in us-east-1).",
        DISTRIBUTION,
        _waf,
    ),
    stack_policy(
        "aws-cloudfront-access-logs",
        "Distributions log requests.",
        Severity.MEDIUM,
        "Keep components/cdn.py's log delivery (ACCESS_LOGS to the logs bucket).",
        _logged,
    ),
]
