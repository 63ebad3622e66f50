"""Load balancer policies: TLS, redirects, logs, header hygiene, desync mitigation, deletion protection and WAF."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from ._util import (
    as_list,
    configured,
    dig,
    is_true,
    of_type,
    public_cidr,
    referenced,
    resource_policy,
    stack_policy,
)

LOAD_BALANCER = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
LISTENER = ("aws:lb/listener:Listener", "aws:alb/listener:Listener")
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
RULE = ("aws:lb/listenerRule:ListenerRule", "aws:alb/listenerRule:ListenerRule")
TLS_POLICIES = (
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
)


def _application(props: Mapping[str, Any]) -> bool:
    return props.get("loadBalancerType", "application") == "application"


def _https(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    if props.get("protocol") != "HTTPS":
        return
    allowed = configured(args, "sslPolicies", list(TLS_POLICIES))
    if props.get("sslPolicy") not in allowed:
        yield f"HTTPS listeners must use a TLS 1.2+ policy such as {TLS_POLICIES[0]} (got {props.get('sslPolicy')})."


def _http_redirects(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if props.get("protocol") != "HTTP":
        return
    actions = as_list(props.get("defaultActions"))
    if not actions or any(a.get("type") != "redirect" or dig(a, "redirect.protocol") != "HTTPS" for a in actions):
        yield "HTTP listeners may only redirect to HTTPS."


def _access_logs(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if _application(props) and not (is_true(dig(props, "accessLogs.enabled")) and dig(props, "accessLogs.bucket")):
        yield "Access logs must go to the logs bucket (accessLogs.enabled with a bucket)."


def _headers(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if _application(props) and not is_true(props.get("dropInvalidHeaderFields")):
        yield "Invalid HTTP header fields must be dropped (dropInvalidHeaderFields: true)."


def _desync(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if _application(props) and props.get("desyncMitigationMode", "defensive") not in ("defensive", "strictest"):
        yield "Desync mitigation must be defensive or strictest."


def _waf_fail_closed(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if _application(props) and is_true(props.get("enableWafFailOpen")):
        yield "Requests must not bypass the WAF when it cannot be reached (enableWafFailOpen: false)."


def _deletion(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if not is_true(props.get("enableDeletionProtection")):
        yield "Deletion protection must be on."


def _public_groups(resources: Sequence[PolicyResource]) -> set[str]:
    """The security groups that admit a public address, whichever way the rule is written: a
    ``SecurityGroupIngressRule``, an ingress ``SecurityGroupRule`` or an inline ``ingress`` block."""
    out = {
        group.urn
        for rule in of_type(resources, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if public_cidr(rule.props.get("cidrIpv4")) or public_cidr(rule.props.get("cidrIpv6"))
        for group in referenced(rule, "securityGroupId")
    }
    out |= {
        group.urn
        for rule in of_type(resources, "aws:ec2/securityGroupRule:SecurityGroupRule")
        if rule.props.get("type") == "ingress"
        and any(
            public_cidr(c) for c in [*as_list(rule.props.get("cidrBlocks")), *as_list(rule.props.get("ipv6CidrBlocks"))]
        )
        for group in referenced(rule, "securityGroupId")
    }
    out |= {
        group.urn
        for group in of_type(resources, "aws:ec2/securityGroup:SecurityGroup")
        for block in as_list(group.props.get("ingress"))
        if any(public_cidr(c) for c in [*as_list(block.get("cidrBlocks")), *as_list(block.get("ipv6CidrBlocks"))])
    }
    return out


def _forwards_only_with_a_header(lb: PolicyResource, resources: Sequence[PolicyResource]) -> bool:
    """Every way the load balancer forwards a request needs a header CloudFront adds: no listener forwards by
    default, and each forwarding rule has an ``httpHeader`` condition. The prefix list admits every CloudFront
    distribution in AWS; only the header tells ours from another account's."""
    listeners = [
        x for x in of_type(resources, *LISTENER) if lb.urn in {r.urn for r in referenced(x, "loadBalancerArn")}
    ]
    if any(a.get("type") == "forward" for x in listeners for a in as_list(x.props.get("defaultActions"))):
        return False
    ours = {x.urn for x in listeners}
    rules = [r for r in of_type(resources, *RULE) if ours & {x.urn for x in referenced(r, "listenerArn")}]
    return all(
        any("httpHeader" in (c or {}) for c in as_list(r.props.get("conditions")))
        for r in rules
        if any(a.get("type") == "forward" for a in as_list(r.props.get("actions")))
    )


def _fronted(resources: Sequence[PolicyResource]) -> set[str]:
    """The load balancers only CloudFront reaches: the origin of a distribution with a web ACL, whose security
    groups admit no public address (the CloudFront prefix list instead) and whose rules forward only requests
    carrying a header CloudFront adds, so every request went through the distribution's WAF."""
    behind = {
        lb.urn
        for d in of_type(resources, DISTRIBUTION)
        if d.props.get("webAclId")
        for lb in referenced(d, "origins")
        if lb.resource_type in LOAD_BALANCER
    }
    public = _public_groups(resources)
    return {
        lb.urn
        for lb in of_type(resources, *LOAD_BALANCER)
        if lb.urn in behind
        and not any(g.urn in public for g in referenced(lb, "securityGroups"))
        and _forwards_only_with_a_header(lb, resources)
    }


def _waf(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    protected = {
        lb.urn
        for a in of_type(resources, "aws:wafv2/webAclAssociation:WebAclAssociation")
        for lb in referenced(a, "resourceArn")
    } | _fronted(resources)
    for lb in of_type(resources, *LOAD_BALANCER):
        if not is_true(lb.props.get("internal")) and _application(lb.props) and lb.urn not in protected:
            yield (
                lb.urn,
                (
                    f"Internet-facing load balancer {lb.name} has no WAF web ACL, and is not reachable only through a "
                    "CloudFront distribution that has one."
                ),
            )


POLICIES = [
    resource_policy(
        "aws-alb-listener-https-tls12",
        "HTTPS listeners use a TLS 1.2+ policy.",
        Severity.HIGH,
        f"Set sslPolicy to {TLS_POLICIES[0]}.",
        LISTENER,
        _https,
        {"sslPolicies": {"type": "array", "items": {"type": "string"}}},
    ),
    resource_policy(
        "aws-alb-listener-http-redirects-only",
        "Plain HTTP only redirects to HTTPS.",
        Severity.HIGH,
        "Make the HTTP listener's only action a redirect to HTTPS.",
        LISTENER,
        _http_redirects,
    ),
    resource_policy(
        "aws-alb-access-logs",
        "Load balancers log requests.",
        Severity.MEDIUM,
        "Set accessLogs to the logs bucket.",
        LOAD_BALANCER,
        _access_logs,
    ),
    resource_policy(
        "aws-alb-drop-invalid-headers",
        "Load balancers drop invalid header fields.",
        Severity.MEDIUM,
        "Set dropInvalidHeaderFields: true.",
        LOAD_BALANCER,
        _headers,
    ),
    resource_policy(
        "aws-alb-desync-mitigation",
        "Load balancers mitigate HTTP desync.",
        Severity.MEDIUM,
        "Set desyncMitigationMode to defensive or strictest.",
        LOAD_BALANCER,
        _desync,
    ),
    resource_policy(
        "aws-alb-deletion-protection",
        "Load balancers cannot be deleted by accident.",
        Severity.HIGH,
        "Set keel:ingress.deletionProtection: true.",
        LOAD_BALANCER,
        _deletion,
    ),
    resource_policy(
        "aws-alb-waf-fail-closed",
        "Requests never bypass the WAF.",
        Severity.HIGH,
        "Leave enableWafFailOpen unset (false).",
        LOAD_BALANCER,
        _waf_fail_closed,
    ),
    stack_policy(
        "aws-alb-waf-associated",
        "Internet-facing load balancers have a WAF web ACL, theirs or that of the only CloudFront in front of them.",
        Severity.HIGH,
        "Set keel:ingress.waf.enabled: true.",
        _waf,
    ),
]
