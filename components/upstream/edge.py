"""CloudFront and the AWS facts the CDN in front of the ALB relies on (``components.cdn``, ``components.ingress``).

AWS publishes these as documentation, not code: each cites the page (read on the date given as its version).
"""

from __future__ import annotations

from typing import Any

from components.upstream.base import Fact, Source

_DOCS = "docs.aws.amazon.com"
_READ = "2026-12-02"
_CF = "AmazonCloudFront/latest/DeveloperGuide"


def _page(path: str) -> Source:
    return Source(_DOCS, _READ, path)


#: The managed prefix list of CloudFront's origin-facing servers: the only sources an origin behind CloudFront
#: needs to admit. In a security group it weighs 55 rules against the rules-per-group quota (60 by default).
CLOUDFRONT_ORIGIN_PREFIX_LIST: Fact[str] = Fact(
    "com.amazonaws.global.cloudfront.origin-facing",
    _page(f"{_CF}/LocationsOfEdgeServers.html#managed-prefix-list"),
    note="weight 55 in a security group",
)
CLOUDFRONT_PREFIX_LIST_WEIGHT: Fact[int] = Fact(
    55, _page("vpc/latest/userguide/working-with-aws-managed-prefix-lists.html")
)
#: The hosted zone of every CloudFront alias record (Route 53 API reference, AliasTarget.HostedZoneId).
CLOUDFRONT_HOSTED_ZONE_ID: Fact[str] = Fact("Z2FDTNDATAQYW2", _page("Route53/latest/APIReference/API_AliasTarget.html"))
#: Managed cache policies (ids are the same in every account).
CACHING_DISABLED_POLICY: Fact[str] = Fact(
    "4135ea2d-6df8-44a3-9df3-4b5a84be39ad",
    _page(f"{_CF}/using-managed-cache-policies.html#managed-cache-policy-caching-disabled"),
)
CACHING_OPTIMIZED_POLICY: Fact[str] = Fact(
    "658327ea-f89d-4fab-a63d-7e88639e58f6",
    _page(f"{_CF}/using-managed-cache-policies.html#managed-cache-caching-optimized"),
)
#: Managed origin request policy ``AllViewer``: every viewer header (Host among them), cookie and query string
#: goes to the origin. Forwarding Host is what lets CloudFront check the ALB's certificate against the site's name
#: rather than the ALB's own DNS name, which no certificate of ours covers.
ALL_VIEWER_ORIGIN_REQUEST_POLICY: Fact[str] = Fact(
    "216adef6-5c7f-47e4-b989-5492eafa07d3",
    _page(f"{_CF}/using-managed-origin-request-policies.html#managed-origin-request-policy-all-viewer"),
)
ORIGIN_CERTIFICATE_MATCHES_HOST: Fact[bool] = Fact(
    True,
    _page(f"{_CF}/using-https-cloudfront-to-custom-origin.html"),
    note="the origin certificate must match the origin domain name, or the Host header when it is forwarded",
)
#: CloudFront reads viewer certificates from ACM in us-east-1 only, and WAF web ACLs of scope CLOUDFRONT live there.
CLOUDFRONT_REGION: Fact[str] = Fact("us-east-1", _page(f"{_CF}/cnames-and-https-requirements.html"))
#: The viewer TLS policy the issue asks for: TLS 1.2 and up with the 2021 cipher list.
CLOUDFRONT_TLS_POLICY: Fact[str] = Fact(
    "TLSv1.2_2021", _page(f"{_CF}/secure-connections-supported-viewer-protocols-ciphers.html")
)
#: Standard logging (v2) delivers through CloudWatch Logs' vended-log delivery: a delivery source (the
#: distribution, log type ``ACCESS_LOGS``, created in us-east-1), a destination (the S3 bucket) and a delivery.
#: Unlike standard logging (legacy) it needs no bucket ACLs, so the logs bucket keeps ``BucketOwnerEnforced``.
CLOUDFRONT_LOG_TYPE: Fact[str] = Fact("ACCESS_LOGS", _page(f"{_CF}/standard-logging.html"))
#: Where those logs land: AWS prepends ``AWSLogs/<account>/CloudFront/`` to the delivery's suffix path
#: (pulumi-aws 7.51.1 sdk/python/pulumi_aws/cloudwatch/_inputs.py, LogDeliveryS3DeliveryConfigurationArgs).
CLOUDFRONT_LOG_PREFIX: Fact[str] = Fact(
    "AWSLogs/{account}/CloudFront/",
    Source("pulumi/pulumi-aws", "v7.51.1", "sdk/python/pulumi_aws/cloudwatch/_inputs.py"),
)
#: The bucket-policy statement vended-log delivery needs on an S3 destination: ``delivery.logs.amazonaws.com``
#: may ``s3:PutObject`` with ``s3:x-amz-acl: bucket-owner-full-control``, pinned to the source account and to
#: ``arn:aws:logs:<source-region>:<account>:*`` (CloudWatch Logs User Guide, "Logs sent to Amazon S3" [V2]).
LOG_DELIVERY_PRINCIPAL: Fact[str] = Fact(
    "delivery.logs.amazonaws.com", _page("AmazonCloudWatch/latest/logs/AWS-logs-infrastructure-V2-S3.html")
)
#: pulumi-aws 7 gives every regional resource a ``region`` argument, so one provider can place a web ACL or a
#: certificate in us-east-1 (pulumi-aws v7 migration guide, "Enhanced region support").
PER_RESOURCE_REGION: Fact[bool] = Fact(
    True, Source("www.pulumi.com", "v7.0.0", "registry/packages/aws/how-to-guides/7-0-migration/")
)
#: An ALB listener rule's HTTP header condition values are at most 128 characters and ``*`` and ``?`` are
#: wildcards: the origin secret is alphanumeric (Elastic Load Balancing User Guide, "Listener rules", HTTP header
#: conditions).
ALB_HEADER_VALUE_MAX: Fact[int] = Fact(128, _page("elasticloadbalancing/latest/application/rule-condition-types.html"))

EDGE_FACTS: tuple[Fact[Any], ...] = (
    CLOUDFRONT_ORIGIN_PREFIX_LIST,
    CLOUDFRONT_PREFIX_LIST_WEIGHT,
    CLOUDFRONT_HOSTED_ZONE_ID,
    CACHING_DISABLED_POLICY,
    CACHING_OPTIMIZED_POLICY,
    ALL_VIEWER_ORIGIN_REQUEST_POLICY,
    ORIGIN_CERTIFICATE_MATCHES_HOST,
    CLOUDFRONT_REGION,
    CLOUDFRONT_TLS_POLICY,
    CLOUDFRONT_LOG_TYPE,
    CLOUDFRONT_LOG_PREFIX,
    LOG_DELIVERY_PRINCIPAL,
    PER_RESOURCE_REGION,
    ALB_HEADER_VALUE_MAX,
)
