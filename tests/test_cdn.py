"""CloudFront in front of the ALB (``keel:ingress.cdn``): one distribution per exposed host, TLS 1.2_2021, caching
only the static paths named, a CloudFront-scope WAF in us-east-1, access logs to the logs bucket, and an ALB that
admits only CloudFront carrying the secret origin header."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from components import upstream
from components.config import ConfigError, validate
from components.ingress import ORIGIN_HEADER, ORIGIN_SECRET_LENGTH
from keel import cost, engine
from keel.engine import Preview
from tests.helpers import REGION, physical_id, policy_doc, run

DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
CERT = "arn:aws:acm:us-east-1:111122223333:certificate/0f6e2c1a-7b7d-4a57-9d55-1f0a3c9e8b21"
CERT_EU = "arn:aws:acm:eu-west-1:111122223333:certificate/0f6e2c1a-7b7d-4a57-9d55-1f0a3c9e8b21"
IMAGE = "111122223333.dkr.ecr.us-east-1.amazonaws.com/web@sha256:" + "a" * 64
ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"


def test_the_facts_keel_uses_are_the_documented_ones() -> None:
    assert upstream.CACHING_DISABLED_POLICY.value == CACHING_DISABLED
    assert upstream.CACHING_OPTIMIZED_POLICY.value == CACHING_OPTIMIZED
    assert upstream.ALL_VIEWER_ORIGIN_REQUEST_POLICY.value == ALL_VIEWER
    assert upstream.CLOUDFRONT_HOSTED_ZONE_ID.value == "Z2FDTNDATAQYW2"
    assert upstream.CLOUDFRONT_ORIGIN_PREFIX_LIST.value == "com.amazonaws.global.cloudfront.origin-facing"
    # the secret fits in a header condition value, and has no character a header condition reads as a wildcard
    assert upstream.ALB_HEADER_VALUE_MAX.value >= ORIGIN_SECRET_LENGTH
    for fact in upstream.EDGE_FACTS:
        assert fact.source.repo and fact.source.version and fact.source.path


# ------------------------------------------------------------------------------------------ prod (the tests' stack)


def distributions(p: Preview) -> dict[str, engine.Step]:
    return {d.inputs["aliases"][0]: d for d in p.of_type(DISTRIBUTION)}


def test_one_distribution_per_host_with_tls_12_2021_and_https_only(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    found = distributions(p)
    assert {host: d.name for host, d in found.items()} == {
        "api.example.com": "keel-prod-cdn-api-example-com",
        "app.example.com": "keel-prod-cdn-app-example-com",
    }
    alb = p.one("aws:lb/loadBalancer:LoadBalancer", "keel-prod")
    secret = p.one("random:index/randomPassword:RandomPassword", "keel-prod-origin-secret")
    acl = p.one("aws:wafv2/webAcl:WebAcl", "keel-prod-cdn")
    for host, d in found.items():
        i = d.inputs
        assert (i["enabled"], i["isIpv6Enabled"], i["httpVersion"], i["priceClass"]) == (
            True,
            True,
            "http2and3",
            "PriceClass_100",
        )
        assert i["viewerCertificate"] == {
            "acmCertificateArn": CERT,  # keel:ingress.certificateArn is in us-east-1: CloudFront can use it
            "sslSupportMethod": "sni-only",
            "minimumProtocolVersion": "TLSv1.2_2021",
        }
        assert i["restrictions"] == {"geoRestriction": {"restrictionType": "none"}}
        assert d.property_dependencies["webAclId"] == [acl.urn]
        assert i["defaultCacheBehavior"] == {
            "targetOriginId": "alb",
            "viewerProtocolPolicy": "redirect-to-https",
            "allowedMethods": ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"],
            "cachedMethods": ["GET", "HEAD"],
            "compress": True,
            "cachePolicyId": CACHING_DISABLED,
            "originRequestPolicyId": ALL_VIEWER,
        }
        [origin] = i["origins"]
        assert origin["originId"] == "alb"
        assert origin["customOriginConfig"] == {
            "httpPort": 80,
            "httpsPort": 443,
            "originProtocolPolicy": "https-only",
            "originSslProtocols": ["TLSv1.2"],
            "originReadTimeout": 60,
        }
        assert origin["customHeaders"] == [{"name": ORIGIN_HEADER, "value": "[secret]"}]
        assert sorted(d.property_dependencies["origins"]) == sorted([alb.urn, secret.urn])
        assert i["tags"]["keel.dev/host"] == host
    # caching on for web's static paths only; the API host caches nothing
    assert "orderedCacheBehaviors" not in found["api.example.com"].inputs
    cached = found["app.example.com"].inputs["orderedCacheBehaviors"]
    assert [(b["pathPattern"], b["cachePolicyId"]) for b in cached] == [
        ("/static/*", CACHING_OPTIMIZED),
        ("/assets/*", CACHING_OPTIMIZED),
    ]
    assert all(
        b["viewerProtocolPolicy"] == "redirect-to-https"
        and b["compress"] is True
        and b["allowedMethods"] == ["GET", "HEAD", "OPTIONS"]
        and b["originRequestPolicyId"] == ALL_VIEWER
        for b in cached
    )


def test_the_origin_header_is_one_secret_shared_by_the_distributions_and_the_listener_rules(
    preview: Callable[[str], Preview],
) -> None:
    p = preview("prod")
    secret = p.one("random:index/randomPassword:RandomPassword", "keel-prod-origin-secret")
    assert (secret.inputs["length"], secret.inputs["special"]) == (ORIGIN_SECRET_LENGTH, False)
    sent = {d.wire_inputs["origins"][0]["customHeaders"][0]["value"]["value"] for d in p.of_type(DISTRIBUTION)}
    rules = p.of_type("aws:lb/listenerRule:ListenerRule")
    required = {
        c["httpHeader"]["values"][0]["value"] for r in rules for c in r.wire_inputs["conditions"] if "httpHeader" in c
    }
    assert len(sent) == 1 and sent == required
    assert re.fullmatch(rf"[A-Za-z0-9]{{{ORIGIN_SECRET_LENGTH}}}", sent.pop())
    assert all(
        any(c.get("httpHeader", {}).get("httpHeaderName") == ORIGIN_HEADER for c in r.inputs["conditions"])
        for r in rules
    )
    assert all(r.property_dependencies["conditions"] == [secret.urn] for r in rules)


def test_the_alb_admits_only_cloudfront_on_443(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    sg = p.one("aws:ec2/securityGroup:SecurityGroup", "keel-prod-alb")
    ingress = [
        r.inputs
        for r in p.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.property_dependencies.get("securityGroupId") == [sg.urn]
    ]
    prefix_list = engine.FakeCloud(REGION).invoke(
        "aws:ec2/getManagedPrefixList:getManagedPrefixList", {"name": upstream.CLOUDFRONT_ORIGIN_PREFIX_LIST.value}
    )["id"]
    assert ingress == [
        {
            "securityGroupId": ingress[0]["securityGroupId"],
            "prefixListId": prefix_list,
            "ipProtocol": "tcp",
            "fromPort": 443,
            "toPort": 443,
            "description": "HTTPS from CloudFront's origin-facing servers only",
        }
    ]
    # no plain-HTTP listener and no regional web ACL: CloudFront redirects viewers and filters them
    assert [listener.inputs["port"] for listener in p.of_type("aws:lb/listener:Listener")] == [443]
    assert not p.of_type("aws:wafv2/webAclAssociation:WebAclAssociation")


def test_access_logs_go_to_the_logs_bucket_through_us_east_1(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    logs = p.one("aws:s3/bucket:Bucket", "keel-prod-logs")
    destination = p.one("aws:cloudwatch/logDeliveryDestination:LogDeliveryDestination", "keel-prod-cdn-logs")
    assert destination.inputs["region"] == "us-east-1"
    assert destination.inputs["outputFormat"] == "w3c"
    assert destination.property_dependencies["deliveryDestinationConfiguration"] == [logs.urn]
    assert p.one("aws:s3/bucketPolicy:BucketPolicy", "keel-prod-logs").urn in destination.dependencies
    for d in p.of_type(DISTRIBUTION):
        source = p.one("aws:cloudwatch/logDeliverySource:LogDeliverySource", d.name)
        assert (source.inputs["logType"], source.inputs["region"]) == ("ACCESS_LOGS", "us-east-1")
        assert source.property_dependencies["resourceArn"] == [d.urn]
        delivery = p.one("aws:cloudwatch/logDelivery:LogDelivery", d.name)
        assert delivery.inputs["region"] == "us-east-1"
        assert delivery.property_dependencies["deliverySourceName"] == [source.urn]
        assert delivery.property_dependencies["deliveryDestinationArn"] == [destination.urn]
        assert delivery.inputs["s3DeliveryConfigurations"] == [
            {"suffixPath": "{DistributionId}/{yyyy}/{MM}/{dd}/{HH}", "enableHiveCompatiblePath": False}
        ]
    statements = policy_doc(p.one("aws:s3/bucketPolicy:BucketPolicy", "keel-prod-logs"))["Statement"]
    [cloudfront] = [s for s in statements if s.get("Sid") == "CloudFrontAccessLogs"]
    bucket = f"arn:aws:s3:::{physical_id(logs)}"
    account = "123456789012"
    assert cloudfront == {
        "Sid": "CloudFrontAccessLogs",
        "Effect": "Allow",
        "Principal": {"Service": "delivery.logs.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"{bucket}/AWSLogs/{account}/CloudFront/*",
        "Condition": {
            "StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceAccount": account},
            "ArnLike": {"aws:SourceArn": f"arn:aws:logs:us-east-1:{account}:delivery-source:*"},
        },
    }
    # without a CDN, the logs bucket admits no CloudFront delivery
    dev = policy_doc(preview("dev").one("aws:s3/bucketPolicy:BucketPolicy", "keel-dev-logs"))["Statement"]
    assert "CloudFrontAccessLogs" not in {s.get("Sid") for s in dev}


def test_cost_prices_each_distribution(preview: Callable[[str], Preview]) -> None:
    estimate = cost.estimate(preview("prod").to_json(), stack="prod")
    table = cost.prices("us-east-1")
    assume, monthly = table["assumptions"], table["monthly"]
    each = (
        monthly["cloudfront.gb"] * assume["cdnGbPerMonthPerDistribution"]
        + monthly["cloudfront.https.10k"] * assume["cdnRequestsPerMonthPerDistribution"] / 10_000
    )
    lines = [item for item in estimate.items if item.description == "CloudFront distribution"]
    assert len(lines) == 2 and all(item.monthly == pytest.approx(each) for item in lines)
    assert each == pytest.approx(0.085 * 100 + 0.01 * 1000)
    delivered = [u for u in estimate.unknown if u["type"] == "aws:cloudwatch/logDelivery:LogDelivery"]
    assert len(delivered) == 2


def test_dev_has_no_cdn(preview: Callable[[str], Preview]) -> None:
    p = preview("dev")
    assert not p.of_type(DISTRIBUTION)
    assert not p.of_type("keel:cdn:Cdn")
    assert not p.of_type("random:index/randomPassword:RandomPassword") or all(
        r.name != "keel-dev-origin-secret" for r in p.of_type("random:index/randomPassword:RandomPassword")
    )


# ------------------------------------------------------------------------------------------ another region


def eu_stack(ingress: dict[str, Any], services: dict[str, Any] | None = None) -> dict[str, str]:
    """A dev stack in eu-west-1 with web and api exposed (dev: no guarantee in the way)."""
    services = services or {
        "web": {"image": IMAGE, "port": 3000, "ingress": {"host": "app.example.com"}},
        "api": {"image": IMAGE, "port": 3001, "ingress": {"host": "api.example.com"}},
    }
    return {
        "aws:region": "eu-west-1",
        "keel:environment": "dev",
        "keel:network": json.dumps({"availabilityZones": 2, "natGateways": "Single"}),
        "keel:cluster": json.dumps(
            {"nodeGroups": {"general": {"instanceTypes": ["m5.large"], "minSize": 1, "maxSize": 2}}}
        ),
        "keel:ingress": json.dumps(ingress),
        "keel:services": json.dumps(services),
    }


def test_outside_us_east_1_the_certificate_and_web_acl_are_made_in_us_east_1() -> None:
    from components.platform import Platform

    raw = eu_stack({"hostedZoneId": "Z0EXAMPLE12345", "waf": {"enabled": True}, "cdn": {}})
    cfg = validate("dev", raw)
    p = run(lambda: Platform("keel-eu", cfg), stack="dev", config=raw)
    certs = {c.name: c for c in p.of_type("aws:acm/certificate:Certificate")}
    assert sorted(certs) == ["keel-eu", "keel-eu-cdn"]
    assert "region" not in certs["keel-eu"].inputs  # the ALB's, in the stack's region
    assert certs["keel-eu-cdn"].inputs["region"] == "us-east-1"
    assert (certs["keel-eu-cdn"].inputs["domainName"], certs["keel-eu-cdn"].inputs["subjectAlternativeNames"]) == (
        "api.example.com",
        ["app.example.com"],
    )
    validation = p.one("aws:acm/certificateValidation:CertificateValidation", "keel-eu-cdn")
    assert validation.inputs["region"] == "us-east-1"
    acl = p.one("aws:wafv2/webAcl:WebAcl", "keel-eu-cdn")
    assert (acl.inputs["scope"], acl.inputs["region"]) == ("CLOUDFRONT", "us-east-1")
    for d in p.of_type(DISTRIBUTION):
        assert d.property_dependencies["viewerCertificate"] == [validation.urn]
        assert d.inputs["viewerCertificate"]["acmCertificateArn"].startswith("arn:aws:acm:us-east-1:")
        # the fake cloud honours the per-resource region: the web ACL's ARN is a us-east-1 global one
        assert d.inputs["webAclId"].startswith("arn:aws:wafv2:us-east-1:") and ":global/webacl/" in d.inputs["webAclId"]
    for delivery in p.of_type("aws:cloudwatch/logDelivery:LogDelivery"):
        assert delivery.inputs["deliveryDestinationArn"].startswith("arn:aws:logs:us-east-1:")


def test_dns_records_point_at_the_distributions_and_keep_their_names() -> None:
    """With a hosted zone each host's A record aliases its distribution (CloudFront's zone, no health evaluation),
    keeps the name the load balancer gave it (an alias of the old parent, so a stack that adds the CDN updates the
    record in place) and gets an AAAA twin."""
    from components.platform import Platform

    raw = eu_stack({"hostedZoneId": "Z0EXAMPLE12345", "cdn": {}})
    p = run(lambda: Platform("keel-eu", validate("dev", raw)), stack="dev", config=raw)
    lb = p.one("keel:ingress:LoadBalancer", "keel-eu")
    found = distributions(p)
    records = {
        (r.inputs["name"], r.inputs["type"]): r
        for r in p.of_type("aws:route53/record:Record")
        if r.inputs.get("aliases")
    }
    assert sorted(records) == [
        ("api.example.com", "A"),
        ("api.example.com", "AAAA"),
        ("app.example.com", "A"),
        ("app.example.com", "AAAA"),
    ]
    for (host, kind), record in records.items():
        [alias] = record.inputs["aliases"]
        assert alias["name"].endswith(".cloudfront.net")
        assert (alias["zoneId"], alias["evaluateTargetHealth"]) == ("Z2FDTNDATAQYW2", False)
        assert record.property_dependencies["aliases"] == [found[host].urn]
        service = "api" if host.startswith("api") else "web"
        assert record.name == f"keel-eu-{service}" + ("-aaaa" if kind == "AAAA" else "")
        # the A record was the load balancer's child: the alias names that URN, so the record is not replaced
        old = f"{lb.urn.split('::')[2]}$aws:route53/record:Record::keel-eu-{service}"
        assert (old in record.aliases[0]) if kind == "A" else record.aliases == []


def test_without_a_cdn_the_alb_records_are_one_per_host() -> None:
    """Two services on one host share one record (named after the first), as CloudFront's are."""
    from components.platform import Platform

    raw = eu_stack(
        {"hostedZoneId": "Z0EXAMPLE12345"},
        {
            "web": {"image": IMAGE, "port": 3000, "ingress": {"host": "app.example.com"}},
            "api": {"image": IMAGE, "port": 3001, "ingress": {"host": "app.example.com", "paths": ["/api/*"]}},
        },
    )
    p = run(lambda: Platform("keel-eu", validate("dev", raw)), stack="dev", config=raw)
    records = [r for r in p.of_type("aws:route53/record:Record") if r.inputs.get("aliases")]
    assert [(r.name, r.inputs["name"], r.inputs["type"]) for r in records] == [("keel-eu-api", "app.example.com", "A")]
    assert records[0].inputs["aliases"][0]["zoneId"] != "Z2FDTNDATAQYW2"  # the ALB's


# ------------------------------------------------------------------------------------------ config


CASES: list[tuple[str, dict[str, Any], str]] = [
    (
        "unknown service",
        {"certificateArn": CERT, "cdn": {"cachedPaths": {"admin": ["/static/*"]}}},
        "keel:ingress.cdn.cachedPaths: got 'admin', which is not an exposed service; allowed: api, web",
    ),
    (
        "path the ALB sends elsewhere",
        {"certificateArn": CERT, "cdn": {"cachedPaths": {"api": ["/static/*"]}}},
        "keel:ingress.cdn.cachedPaths.api: got '/static/*', which the ALB does not route to api; allowed: paths "
        "under /v1/*",
    ),
    (
        "caching everything",
        {"certificateArn": CERT, "cdn": {"cachedPaths": {"web": ["/*"]}}},
        "keel:ingress.cdn.cachedPaths: web: got '/*'; expected CloudFront path patterns of static files such as "
        "'/static/*' (starting with '/', at most 255 characters, not '/*': caching everything would cache the pages "
        "too)",
    ),
    (
        "certificate outside us-east-1",
        {"certificateArn": CERT_EU, "cdn": {"certificateArn": CERT_EU}},
        "keel:ingress.cdn.certificateArn: got 'arn:aws:acm:eu-west-1:111122223333:certificate/0f6e2c1a-..., a "
        "certificate in eu-west-1; allowed: a certificate in "
        "us-east-1 (the only region CloudFront reads certificates from)",
    ),
    (
        "no certificate CloudFront can use",
        {"certificateArn": CERT_EU, "cdn": {}},
        "keel:ingress.cdn.certificateArn: missing; CloudFront needs a certificate in us-east-1 and "
        "keel:ingress.certificateArn is in eu-west-1: set cdn.certificateArn to one in us-east-1, or "
        "keel:ingress.hostedZoneId so keel requests one there",
    ),
    (
        "unknown price class",
        {"certificateArn": CERT, "cdn": {"priceClass": "PriceClass_1"}},
        "keel:ingress.cdn.priceClass: got 'PriceClass_1'; allowed: 'PriceClass_100', 'PriceClass_200' or "
        "'PriceClass_All'",
    ),
]


@pytest.mark.parametrize(("ingress", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_cdn_config_rules(ingress: dict[str, Any], message: str) -> None:
    raw = eu_stack(
        ingress,
        {
            "web": {"image": IMAGE, "port": 3000, "ingress": {"host": "app.example.com"}},
            "api": {"image": IMAGE, "port": 3001, "ingress": {"host": "api.example.com", "paths": ["/v1/*"]}},
        },
    )
    with pytest.raises(ConfigError) as caught:
        validate("dev", raw)
    assert caught.value.problems == [message]


def test_a_good_cdn_config_passes() -> None:
    raw = eu_stack({"certificateArn": CERT_EU, "cdn": {"certificateArn": CERT, "cachedPaths": {"web": ["/_next/*"]}}})
    cfg = validate("dev", raw)
    assert cfg.ingress is not None and cfg.ingress.cdn is not None
    assert cfg.ingress.cdn.cached_paths == {"web": ["/_next/*"]}
    assert cfg.ingress.cdn.price_class == "PriceClass_100"


def test_adding_the_cdn_updates_the_host_records_in_place() -> None:
    """keel diff follows aliases as the engine does: the A record moves from the load balancer to the CDN
    component (an update of its alias target), it is not deleted and created."""
    from components.platform import Platform
    from keel.diff import compare

    def render(ingress: dict[str, Any]) -> dict[str, Any]:
        raw = eu_stack(ingress)
        return run(lambda: Platform("keel-eu", validate("dev", raw)), stack="dev", config=raw).to_json()

    diff = compare(render({"hostedZoneId": "Z0EXAMPLE12345"}), render({"hostedZoneId": "Z0EXAMPLE12345", "cdn": {}}))
    records = {r.urn.rsplit("::", 1)[1]: r for r in diff.resources if r.type == "aws:route53/record:Record"}
    for service in ("api", "web"):
        a = records[f"keel-eu-{service}"]
        assert a.op == "update" and "$keel:cdn:Cdn$" in a.urn
        assert sorted(c.path for c in a.changes) == [
            "aliases[0].evaluateTargetHealth",
            "aliases[0].name",
            "aliases[0].zoneId",
        ]
        assert records[f"keel-eu-{service}-aaaa"].op == "create"
    assert not [r for r in diff.resources if r.op == "delete" and r.type == "aws:route53/record:Record"]


def test_restrict_origin_false_keeps_the_alb_open_while_dns_moves() -> None:
    """A live stack adds the CDN with restrictOrigin false: the distributions are built and send the header, but
    the ALB still admits the internet on 80/443, redirects HTTP, keeps its own web ACL and requires no header, so
    requests that still resolve to it are served. Then restrictOrigin true closes it."""
    from components.platform import Platform

    def render(restrict: bool) -> Preview:
        raw = eu_stack(
            {"hostedZoneId": "Z0EXAMPLE12345", "waf": {"enabled": True}, "cdn": {"restrictOrigin": restrict}}
        )
        return run(lambda: Platform("keel-eu", validate("dev", raw)), stack="dev", config=raw)

    moving, closed = render(False), render(True)
    for p, restricted in ((moving, False), (closed, True)):
        cidrs = sorted(
            r.inputs.get("cidrIpv4") or r.inputs["prefixListId"][:3]
            for r in p.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
            if r.name.startswith("keel-eu-alb-")
        )
        assert cidrs == (["pl-"] if restricted else ["0.0.0.0/0", "0.0.0.0/0"])
        assert len(p.of_type("aws:lb/listener:Listener")) == (1 if restricted else 2)
        assert bool(p.of_type("aws:wafv2/webAclAssociation:WebAclAssociation")) is not restricted
        headers = [
            c
            for r in p.of_type("aws:lb/listenerRule:ListenerRule")
            for c in r.inputs["conditions"]
            if "httpHeader" in c
        ]
        assert bool(headers) is restricted
        assert len(p.of_type(DISTRIBUTION)) == 2  # CloudFront sends the header either way
        assert all(d.inputs["origins"][0]["customHeaders"] for d in p.of_type(DISTRIBUTION))


def test_a_cached_path_is_listed_once() -> None:
    raw = eu_stack({"certificateArn": CERT, "cdn": {"cachedPaths": {"web": ["/static/*", "/static/*"]}}})
    with pytest.raises(ConfigError) as caught:
        validate("dev", raw)
    assert caught.value.problems == [
        "keel:ingress.cdn.cachedPaths: web: got '/static/*' twice; list each path pattern once"
    ]


def test_the_cdn_certificate_validation_records_are_retained() -> None:
    """ACM gives a host the same validation record in both certificates: deleting the CDN's certificate must not
    delete the record the ALB's renews with."""
    from components.platform import Platform

    raw = eu_stack({"hostedZoneId": "Z0EXAMPLE12345", "cdn": {}})
    p = run(lambda: Platform("keel-eu", validate("dev", raw)), stack="dev", config=raw)
    records = {r.name: r for r in p.of_type("aws:route53/record:Record") if "-validation-" in r.name}
    assert sorted(records) == [
        "keel-eu-cdn-validation-0",
        "keel-eu-cdn-validation-1",
        "keel-eu-validation-0",
        "keel-eu-validation-1",
    ]
    assert all(r.retain_on_delete is r.name.startswith("keel-eu-cdn-") for r in records.values())
