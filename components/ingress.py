"""LoadBalancer: the internet-facing ALB in front of the exposed services, owned by Pulumi.

Usage::

    lb = LoadBalancer("keel-prod", cfg.ingress, routes=routes, network=network,
                      nodes=cluster.node_security_group, logs_bucket=buckets.buckets["logs"],
                      opts=pulumi.ResourceOptions(parent=platform))
    lb.target_groups["web"].arn, lb.target_groups["web"].arn_suffix

Creates (``<n>`` is the component name):

- ``<n>-alb`` security group: the only place ``0.0.0.0/0`` ingress is allowed, on 80 and 443 only; egress
  only to the node security group on the services' ports, and the matching node ingress rules from the ALB.
- ``<n>`` ALB in the public subnets: invalid header fields dropped, desync mitigation ``strictest``, access logs
  to the logs bucket (``alb/``), deletion protection as configured, HTTP/2.
- ``<n>-https`` listener (``ELBSecurityPolicy-TLS13-1-2-2021-06``, the configured certificate or ``<n>`` ACM
  certificate DNS-validated in the hosted zone) whose default action is a 404; ``<n>-http`` redirects to HTTPS.
- Per exposed service ``<s>``: ``<n>-<s>`` IP target group on the service's ``http`` port with a health check on
  the readiness path and a ``DEREGISTRATION_DELAY_SECONDS`` deregistration delay, and
  ``<n>-<s>-<i>`` listener rules by host and path; ``<n>-<s>`` alias record when a hosted zone is set.
- With WAF enabled: ``<n>`` WAFv2 web ACL (AWS managed common, known-bad-inputs and IP-reputation rule groups,
  a per-IP rate limit) and its association.

Outputs: ``alb``, ``dns_name``, ``zone_id``, ``security_group``, ``target_groups`` (by service name),
``certificate_arn`` (the HTTPS listener's: configured, or the one keel requested once validated).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.config import IngressConfig
from components.network import Network

TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
#: How long a target being deregistered keeps its in-flight requests (the target groups' deregistration delay);
#: the exposed pods' preStop sleep (components/service.py) covers it, so they never stop while the ALB uses them.
DEREGISTRATION_DELAY_SECONDS = 30
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
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-alb",
            vpc_id=network.vpc_id,
            description=f"{name}: internet-facing ALB - 80/443 from anywhere, to the nodes' service ports only",
            tags={"Name": f"{name}-alb"},
            opts=child,
        )
        for port in (80, 443):
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
            opts=child,
        )
        self.target_groups = {}
        priorities = rule_priorities(routes)
        for service, route in sorted(routes.items()):
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
                aws.lb.ListenerRule(
                    f"{name}-{service}-{index}",
                    listener_arn=listener.arn,
                    priority=priorities[(service, index)],
                    conditions=[
                        aws.lb.ListenerRuleConditionArgs(
                            host_header=aws.lb.ListenerRuleConditionHostHeaderArgs(values=[route.host])
                        ),
                        aws.lb.ListenerRuleConditionArgs(
                            path_pattern=aws.lb.ListenerRuleConditionPathPatternArgs(values=[path])
                        ),
                    ],
                    actions=[aws.lb.ListenerRuleActionArgs(type="forward", target_group_arn=group.arn)],
                    opts=child,
                )
            if config.hosted_zone_id:
                aws.route53.Record(
                    f"{name}-{service}",
                    zone_id=config.hosted_zone_id,
                    name=route.host,
                    type="A",
                    aliases=[
                        aws.route53.RecordAliasArgs(
                            name=self.alb.dns_name, zone_id=self.alb.zone_id, evaluate_target_health=True
                        )
                    ],
                    opts=child,
                )
        if config.waf.enabled:
            self._waf(name, config)
        self.register_outputs(
            {
                "dns_name": self.dns_name,
                "security_group": self.security_group.id,
                "target_groups": {k: v.arn for k, v in self.target_groups.items()},
                "certificate_arn": self.certificate_arn,
            }
        )

    def _certificate(self, name: str, config: IngressConfig, routes: Mapping[str, Route]) -> pulumi.Output[str]:
        child = pulumi.ResourceOptions(parent=self)
        hosts = sorted({route.host for route in routes.values()})
        cert = aws.acm.Certificate(
            name,
            domain_name=hosts[0],
            subject_alternative_names=hosts[1:],
            validation_method="DNS",
            key_algorithm="EC_prime256v1",
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=False),
        )
        records = []
        for index, host in enumerate(hosts):
            option = cert.domain_validation_options.apply(
                lambda opts, h=host: next(o for o in opts if o.domain_name == h)  # type: ignore[misc]
            )
            records.append(
                aws.route53.Record(
                    f"{name}-validation-{index}",
                    zone_id=str(config.hosted_zone_id),
                    name=option.apply(lambda o: o.resource_record_name),
                    type=option.apply(lambda o: o.resource_record_type),
                    records=[option.apply(lambda o: o.resource_record_value)],
                    ttl=300,
                    allow_overwrite=True,
                    opts=child,
                )
            )
        validation = aws.acm.CertificateValidation(
            name, certificate_arn=cert.arn, validation_record_fqdns=[r.fqdn for r in records], opts=child
        )
        return validation.certificate_arn

    def _waf(self, name: str, config: IngressConfig) -> None:
        child = pulumi.ResourceOptions(parent=self)

        def visibility(metric: str) -> aws.wafv2.WebAclVisibilityConfigArgs:
            return aws.wafv2.WebAclVisibilityConfigArgs(
                cloudwatch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
            )

        rules = [
            aws.wafv2.WebAclRuleArgs(
                name=group,
                priority=index,
                override_action=aws.wafv2.WebAclRuleOverrideActionArgs(
                    none=aws.wafv2.WebAclRuleOverrideActionNoneArgs()
                ),
                statement=aws.wafv2.WebAclRuleStatementArgs(
                    managed_rule_group_statement=aws.wafv2.WebAclRuleStatementManagedRuleGroupStatementArgs(
                        vendor_name="AWS", name=group
                    )
                ),
                visibility_config=aws.wafv2.WebAclRuleVisibilityConfigArgs(
                    cloudwatch_metrics_enabled=True, metric_name=group, sampled_requests_enabled=True
                ),
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
                        limit=config.waf.rate_limit_per_5min, aggregate_key_type="IP", evaluation_window_sec=300
                    )
                ),
                visibility_config=aws.wafv2.WebAclRuleVisibilityConfigArgs(
                    cloudwatch_metrics_enabled=True, metric_name="rate-limit-per-ip", sampled_requests_enabled=True
                ),
            )
        )
        acl = aws.wafv2.WebAcl(
            name,
            scope="REGIONAL",
            description=f"{name}: managed protections and a per-IP rate limit for the ALB",
            default_action=aws.wafv2.WebAclDefaultActionArgs(allow=aws.wafv2.WebAclDefaultActionAllowArgs()),
            rules=rules,
            visibility_config=visibility(name),
            opts=child,
        )
        aws.wafv2.WebAclAssociation(name, resource_arn=self.alb.arn, web_acl_arn=acl.arn, opts=child)
