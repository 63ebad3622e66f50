"""LoadBalancer: the internet-facing ALB in front of the exposed services, owned by Pulumi.

Usage::

    lb = LoadBalancer("keel-prod", cfg.ingress, routes=routes, network=network,
                      nodes=cluster.node_security_group, logs_bucket=buckets.buckets["logs"],
                      opts=pulumi.ResourceOptions(parent=platform))
    lb.target_groups["web"].arn, lb.target_groups["web"].arn_suffix

Creates (``<n>`` is the component name):

- ``<n>-alb`` security group: the only place ``0.0.0.0/0`` ingress is allowed, on 80 and 443 only; egress
  only to the node security group on the services' ports, and the matching node ingress rules from the ALB.
  With ``keel:ingress.cdn`` it admits instead only CloudFront's origin-facing prefix list on 443
  (``<n>-alb-cloudfront-443``): nothing on the internet reaches the ALB but CloudFront. ``cdn.restrictOrigin:
  false`` keeps the internet-facing shape (and the ALB's own web ACL) while a live stack's DNS moves to CloudFront.
- ``<n>`` ALB in the public subnets: invalid header fields dropped, desync mitigation ``strictest``, access logs
  to the logs bucket (``alb/``), deletion protection as configured, HTTP/2.
- ``<n>-https`` listener (``ELBSecurityPolicy-TLS13-1-2-2021-06``, the configured certificate or ``<n>`` ACM
  certificate DNS-validated in the hosted zone) whose default action is a 404; ``<n>-http`` redirects to HTTPS
  (not behind a restricted ``cdn``: CloudFront redirects viewers, and nothing reaches port 80).
- With ``cdn``: ``<n>-origin-secret``, a random 32-character alphanumeric value (pulumi-random, a secret output)
  CloudFront sends as the :data:`ORIGIN_HEADER` header; with ``restrictOrigin`` every listener rule also requires
  it, so a request that reached the ALB some other way gets the 404.
- Per exposed service ``<s>``: ``<n>-<s>`` IP target group on the service's ``http`` port with a health check on
  the readiness path and a ``DEREGISTRATION_DELAY_SECONDS`` deregistration delay, and
  ``<n>-<s>-<i>`` listener rules by host and path.
- With a hosted zone (and no ``cdn``: the record then points at the host's distribution), per host the ``A``
  alias record ``<n>-<s>``, ``s`` the host's first service by name.
- With WAF enabled and the ALB not restricted to CloudFront: ``<n>`` WAFv2 web ACL (:func:`web_acl`: AWS managed
  common, known-bad-inputs and IP-reputation rule groups, a per-IP rate limit) and its association. With ``cdn``
  the same rules filter at CloudFront too (``components.cdn``), and only there once the ALB admits nothing else.

Outputs: ``alb``, ``dns_name``, ``zone_id``, ``security_group``, ``target_groups`` (by service name),
``certificate_arn`` (the HTTPS listener's: configured, or the one keel requested once validated),
``origin_secret`` (None without ``cdn``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.config import IngressConfig, WafConfig
from components.network import Network
from components.upstream import CLOUDFRONT_ORIGIN_PREFIX_LIST

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
#: How long a target being deregistered keeps its in-flight requests (the target groups' deregistration delay);
#: the exposed pods' preStop sleep (components/service.py) covers it, so they never stop while the ALB uses them.
DEREGISTRATION_DELAY_SECONDS = 30
#: The header CloudFront adds to every request it forwards (the distributions' origin custom header) and every
#: listener rule requires: the prefix list admits every distribution in AWS, the header only ours.
ORIGIN_HEADER = "X-Origin-Verify"
#: Length of the header's value: alphanumeric (no ``*`` or ``?``, which a header condition treats as wildcards)
#: and within what a header condition value may hold (``components.upstream.ALB_HEADER_VALUE_MAX``).
ORIGIN_SECRET_LENGTH = 32
MANAGED_RULE_GROUPS = (
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
)


@dataclass(frozen=True)
class Route:
    """One exposed service: where it listens and how the ALB reaches it."""

    host: str
    paths: tuple[str, ...]
    port: int
    health_path: str
    priority: int | None = None
    """Pinned priority of the first path's rule (the next paths take the next numbers)."""


def hosts_of(routes: Mapping[str, Route]) -> dict[str, list[str]]:
    """The exposed hosts in order and, for each, its services in name order (the first names the host's DNS
    record)."""
    out: dict[str, list[str]] = {}
    for service, route in sorted(routes.items()):
        out.setdefault(route.host, []).append(service)
    return dict(sorted(out.items()))


def rule_priorities(routes: Mapping[str, Route]) -> dict[tuple[str, int], int]:
    """A priority for every (service, path index). Pinned routes use theirs; the others are numbered in order
    (by host, more specific paths first, then service name), ten apart, from 50000 down so they never collide
    with pinned ones (which the config keeps at most 49000). Computed numbers shift when a route is added before
    them: pin the routes of a live stack."""
    out: dict[tuple[str, int], int] = {}
    for name, route in routes.items():
        if route.priority is not None:
            for i in range(len(route.paths)):
                out[(name, i)] = route.priority + i
    rest = sorted(
        (
            (name, i, route.host, path)
            for name, route in routes.items()
            if route.priority is None
            for i, path in enumerate(route.paths)
        ),
        key=lambda r: (r[2], -len(r[3].rstrip("*")), r[0], r[1]),
    )
    for rank, (name, i, _host, _path) in enumerate(rest):
        out[(name, i)] = 49010 + 10 * rank
    return out


class LoadBalancer(pulumi.ComponentResource):
    """The ALB, its listeners, target groups, rules and WAF."""

    alb: aws.lb.LoadBalancer
    dns_name: pulumi.Output[str]
    zone_id: pulumi.Output[str]
    security_group: aws.ec2.SecurityGroup
    target_groups: dict[str, aws.lb.TargetGroup]
    certificate_arn: pulumi.Output[str]
    """The HTTPS listener's certificate: ``certificateArn``, or the one keel requested, once validated."""
    origin_secret: pulumi.Output[str] | None
    """With ``cdn``: the value of :data:`ORIGIN_HEADER` the listener rules require (a secret output)."""

    def __init__(
        self,
        name: str,
        config: IngressConfig,
        *,
        routes: Mapping[str, Route],
        network: Network,
        nodes: aws.ec2.SecurityGroup,
        logs_bucket: aws.s3.Bucket,
        depends_on_logs: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``config``: the ``keel:ingress`` section (certificate, hosted zone, deletion protection, idle timeout,
        WAF). ``routes``: the exposed services by name (built from their ``ingress`` entries). ``network``: the VPC
        and public subnets; ``nodes``: the node security group the ALB forwards to; ``logs_bucket``: where access
        logs go, and ``depends_on_logs`` what must exist before the ALB writes there (the bucket's policy)."""
        super().__init__("keel:ingress:LoadBalancer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Behind the CDN the ALB admits only CloudFront carrying the origin header, unless ``cdn.restrictOrigin``
        # is false (a live stack moving its DNS to CloudFront: the ALB stays open, with its own WAF, meanwhile).
        fronted = config.cdn is not None and config.cdn.restrict_origin
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-alb",
            vpc_id=network.vpc_id,
            description=f"{name}: internet-facing ALB - 80/443 from anywhere, to the nodes' service ports only",
            tags={"Name": f"{name}-alb"},
            opts=child,
        )
        if fronted:
            cloudfront = aws.ec2.get_managed_prefix_list_output(
                name=CLOUDFRONT_ORIGIN_PREFIX_LIST.value, opts=pulumi.InvokeOptions(parent=self)
            )
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-alb-cloudfront-443",
                security_group_id=self.security_group.id,
                prefix_list_id=cloudfront.id,
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                description="HTTPS from CloudFront's origin-facing servers only",
                opts=child,
            )
        for port in () if fronted else (80, 443):
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-alb-{port}",
                security_group_id=self.security_group.id,
                cidr_ipv4="0.0.0.0/0",
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description=f"{'HTTPS' if port == 443 else 'HTTP (redirected to HTTPS)'} from the internet",
                opts=child,
            )
        for port in sorted({route.port for route in routes.values()}):
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-alb-to-nodes-{port}",
                security_group_id=self.security_group.id,
                referenced_security_group_id=nodes.id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description=f"ALB to pods serving on {port}",
                opts=child,
            )
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-nodes-from-alb-{port}",
                security_group_id=nodes.id,
                referenced_security_group_id=self.security_group.id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description=f"Pods serving on {port} from the ALB",
                opts=child,
            )
        self.alb = aws.lb.LoadBalancer(
            name,
            load_balancer_type="application",
            internal=False,
            subnets=network.public_subnet_ids,
            security_groups=[self.security_group.id],
            drop_invalid_header_fields=True,
            desync_mitigation_mode="strictest",
            enable_deletion_protection=config.deletion_protection,
            enable_http2=True,
            idle_timeout=config.idle_timeout_seconds,
            access_logs=aws.lb.LoadBalancerAccessLogsArgs(bucket=logs_bucket.bucket, prefix="alb", enabled=True),
            tags={"Name": name},
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on_logs)),
        )
        self.dns_name = self.alb.dns_name
        self.zone_id = self.alb.zone_id
        self.certificate_arn = (
            pulumi.Output.from_input(config.certificate_arn)
            if config.certificate_arn
            else self._certificate(name, config, routes)
        )
        listener = aws.lb.Listener(
            f"{name}-https",
            load_balancer_arn=self.alb.arn,
            port=443,
            protocol="HTTPS",
            ssl_policy=TLS_POLICY,
            certificate_arn=self.certificate_arn,
            default_actions=[
                aws.lb.ListenerDefaultActionArgs(
                    type="fixed-response",
                    fixed_response=aws.lb.ListenerDefaultActionFixedResponseArgs(
                        content_type="text/plain", status_code="404", message_body="not found"
                    ),
                )
            ],
            opts=child,
        )
        self.origin_secret = None
        if config.cdn is not None:
            self.origin_secret = random.RandomPassword(
                f"{name}-origin-secret", length=ORIGIN_SECRET_LENGTH, special=False, opts=child
            ).result
        if not fronted:
            self._http_redirect(name)
        self.target_groups = {}
        priorities = rule_priorities(routes)
        for service, route in sorted(routes.items()):
            self._route(name, service, route, priorities, listener, network, require_origin=fronted)
        if config.hosted_zone_id and config.cdn is None:
            for host, services in hosts_of(routes).items():
                aws.route53.Record(
                    f"{name}-{services[0]}",
                    zone_id=config.hosted_zone_id,
                    name=host,
                    type="A",
                    aliases=[
                        aws.route53.RecordAliasArgs(
                            name=self.alb.dns_name, zone_id=self.alb.zone_id, evaluate_target_health=True
                        )
                    ],
                    opts=child,
                )
        if config.waf.enabled and not fronted:
            acl = web_acl(name, config.waf, scope="REGIONAL", what="the ALB", opts=child)
            aws.wafv2.WebAclAssociation(name, resource_arn=self.alb.arn, web_acl_arn=acl.arn, opts=child)
        self.register_outputs(
            {
                "dns_name": self.dns_name,
                "security_group": self.security_group.id,
                "target_groups": {k: v.arn for k, v in self.target_groups.items()},
                "certificate_arn": self.certificate_arn,
                "origin_secret": self.origin_secret,
            }
        )

    def _http_redirect(self, name: str) -> None:
        aws.lb.Listener(
            f"{name}-http",
            load_balancer_arn=self.alb.arn,
            port=80,
            protocol="HTTP",
            default_actions=[
                aws.lb.ListenerDefaultActionArgs(
                    type="redirect",
                    redirect=aws.lb.ListenerDefaultActionRedirectArgs(
                        protocol="HTTPS", port="443", status_code="HTTP_301"
                    ),
                )
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _route(
        self,
        name: str,
        service: str,
        route: Route,
        priorities: Mapping[tuple[str, int], int],
        listener: aws.lb.Listener,
        network: Network,
        *,
        require_origin: bool,
    ) -> None:
        """The service's target group and its listener rules (host and path, and with ``require_origin`` the
        origin header CloudFront sends)."""
        child = pulumi.ResourceOptions(parent=self)
        group = aws.lb.TargetGroup(
            f"{name}-{service}",
            port=route.port,
            protocol="HTTP",
            target_type="ip",
            vpc_id=network.vpc_id,
            deregistration_delay=DEREGISTRATION_DELAY_SECONDS,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                path=route.health_path,
                protocol="HTTP",
                matcher="200-399",
                interval=15,
                timeout=5,
                healthy_threshold=2,
                unhealthy_threshold=3,
            ),
            tags={"Name": f"{name}-{service}", "keel.dev/service": service},
            opts=child,
        )
        self.target_groups[service] = group
        for index, path in enumerate(route.paths):
            conditions = [
                aws.lb.ListenerRuleConditionArgs(
                    host_header=aws.lb.ListenerRuleConditionHostHeaderArgs(values=[route.host])
                ),
                aws.lb.ListenerRuleConditionArgs(
                    path_pattern=aws.lb.ListenerRuleConditionPathPatternArgs(values=[path])
                ),
            ]
            if require_origin and self.origin_secret is not None:
                conditions.append(
                    aws.lb.ListenerRuleConditionArgs(
                        http_header=aws.lb.ListenerRuleConditionHttpHeaderArgs(
                            http_header_name=ORIGIN_HEADER, values=[self.origin_secret]
                        )
                    )
                )
            aws.lb.ListenerRule(
                f"{name}-{service}-{index}",
                listener_arn=listener.arn,
                priority=priorities[(service, index)],
                conditions=conditions,
                actions=[aws.lb.ListenerRuleActionArgs(type="forward", target_group_arn=group.arn)],
                opts=child,
            )

    def _certificate(self, name: str, config: IngressConfig, routes: Mapping[str, Route]) -> pulumi.Output[str]:
        hosts = sorted({route.host for route in routes.values()})
        return dns_validated_certificate(
            name, hosts, str(config.hosted_zone_id), opts=pulumi.ResourceOptions(parent=self)
        )


def dns_validated_certificate(
    name: str, hosts: Sequence[str], zone_id: str, *, region: str | None = None, opts: pulumi.ResourceOptions
) -> pulumi.Output[str]:
    """``name`` ACM certificate (ECDSA P-256) for ``hosts`` in ``region`` (None: the provider's), its
    ``name-validation-<i>`` CNAME records in Route 53 zone ``zone_id`` and ``name`` certificate validation: the
    certificate's ARN once it is issued."""
    cert = aws.acm.Certificate(
        name,
        domain_name=hosts[0],
        subject_alternative_names=list(hosts[1:]),
        validation_method="DNS",
        key_algorithm="EC_prime256v1",
        region=region,
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(delete_before_replace=False)),
    )
    records = []
    for index, host in enumerate(hosts):
        option = cert.domain_validation_options.apply(
            lambda opts, h=host: next(o for o in opts if o.domain_name == h)  # type: ignore[misc]
        )
        records.append(
            aws.route53.Record(
                f"{name}-validation-{index}",
                zone_id=zone_id,
                name=option.apply(lambda o: o.resource_record_name),
                type=option.apply(lambda o: o.resource_record_type),
                records=[option.apply(lambda o: o.resource_record_value)],
                ttl=300,
                # ACM gives one domain the same validation record in every certificate of the account (ACM User
                # Guide, "DNS validation"): a second certificate for the same host (the CDN's, in us-east-1) finds
                # the record there already, and is retained so deleting it never removes the record the first
                # one renews with.
                allow_overwrite=True,
                opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(retain_on_delete=region is not None)),
            )
        )
    validation = aws.acm.CertificateValidation(
        name, certificate_arn=cert.arn, validation_record_fqdns=[r.fqdn for r in records], region=region, opts=opts
    )
    return validation.certificate_arn


def web_acl(
    name: str,
    config: WafConfig,
    *,
    scope: str,
    what: str,
    region: str | None = None,
    opts: pulumi.ResourceOptions | None = None,
) -> aws.wafv2.WebAcl:
    """``name`` WAFv2 web ACL of ``scope`` (``REGIONAL`` for the ALB, ``CLOUDFRONT`` for the distributions, then
    in ``region`` us-east-1): AWS's baseline managed rule groups (:data:`MANAGED_RULE_GROUPS`, keeping their
    actions) and a per-IP rate limit over 5 minutes, every rule with metrics and sampled requests."""

    def visibility(metric: str) -> aws.wafv2.WebAclRuleVisibilityConfigArgs:
        return aws.wafv2.WebAclRuleVisibilityConfigArgs(
            cloudwatch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
        )

    rules = [
        aws.wafv2.WebAclRuleArgs(
            name=group,
            priority=index,
            override_action=aws.wafv2.WebAclRuleOverrideActionArgs(none=aws.wafv2.WebAclRuleOverrideActionNoneArgs()),
            statement=aws.wafv2.WebAclRuleStatementArgs(
                managed_rule_group_statement=aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementArgs(
                    vendor_name="AWS", name=group
                )
            ),
            visibility_config=visibility(group),
        )
        for index, group in enumerate(MANAGED_RULE_GROUPS, start=1)
    ]
    rules.append(
        aws.wafv2.WebAclRuleArgs(
            name="rate-limit-per-ip",
            priority=len(rules) + 1,
            action=aws.wafv2.WebAclRuleActionArgs(block=aws.wafv2.WebAclRuleActionBlockArgs()),
            statement=aws.wafv2.WebAclRuleStatementArgs(
                rate_based_statement=aws.wafv2.WebAclRuleStatementRateBasedStatementArgs(
                    limit=config.rate_limit_per_5min, aggregate_key_type="IP", evaluation_window_sec=300
                )
            ),
            visibility_config=visibility("rate-limit-per-ip"),
        )
    )
    return aws.wafv2.WebAcl(
        name,
        scope=scope,
        region=region,
        description=f"{name}: managed protections and a per-IP rate limit for {what}",
        default_action=aws.wafv2.WebAclDefaultActionArgs(allow=aws.wafv2.WebAclDefaultActionAllowArgs()),
        rules=rules,
        visibility_config=aws.wafv2.WebAclVisibilityConfigArgs(
            cloudwatch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
        ),
        opts=opts,
    )
