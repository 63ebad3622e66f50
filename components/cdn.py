"""Cdn: CloudFront in front of the ALB for every exposed host (``keel:ingress.cdn``).

Usage::

    cdn = Cdn("keel-prod", cfg.ingress, routes=routes, load_balancer=lb, logs_bucket=buckets.buckets["logs"],
              depends_on_logs=[buckets.policies["logs"]], opts=pulumi.ResourceOptions(parent=platform))
    cdn.distributions["app.example.com"].domain_name

Creates (``<n>`` is the component name, ``<h>`` each exposed host with dots as dashes, ``app-example-com``):

- ``<n>-cdn`` WAFv2 web ACL of scope ``CLOUDFRONT`` in us-east-1, whatever the stack's region (the same rules as
  the ALB's: ``components.ingress.web_acl``), when ``keel:ingress.waf.enabled``.
- The viewer certificate, in us-east-1 (the only region CloudFront reads): ``cdn.certificateArn``; else
  ``keel:ingress.certificateArn`` when it is in us-east-1; else the ALB's own when keel requested it in a
  us-east-1 stack; else ``<n>-cdn`` ACM certificate requested in us-east-1 and DNS-validated in the hosted zone.
- ``<n>-cdn-<h>`` distribution per host: aliases the host, one origin (the ALB's DNS name, HTTPS only, TLS 1.2,
  the :data:`components.ingress.ORIGIN_HEADER` secret header), viewer TLS ``TLSv1.2_2021`` with SNI, HTTP
  redirected to HTTPS, compression, HTTP/2 and 3, IPv6, the configured price class and the web ACL. The default
  behaviour caches nothing (managed ``CachingDisabled``) and forwards everything the viewer sent (managed
  ``AllViewer``, so the ALB's host rules match and CloudFront checks the ALB's certificate against the host); each
  of ``cdn.cachedPaths`` of the host's services is cached (managed ``CachingOptimized``).
- Access logs (standard logging v2, no bucket ACLs needed): ``<n>-cdn-logs`` delivery destination (the logs
  bucket, W3C format) and per distribution ``<n>-cdn-<h>`` delivery source (``ACCESS_LOGS``) and delivery, all in
  us-east-1; objects land under ``AWSLogs/<account>/CloudFront/<distribution id>/`` (the logs bucket's policy
  admits the delivery service there: ``components.storage.cloudfront_logs_statement``).
- With a hosted zone: per host the ``A`` record (``<n>-<s>``, ``s`` the host's first service: the name the load
  balancer gave it before, so it is updated in place, never deleted and created) and an ``AAAA`` record
  (``<n>-<s>-aaaa``), aliases of the distribution.

Outputs: ``distributions`` (by host), ``domain_names`` (by host), ``web_acl`` (None without WAF).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components import context
from components.config import IngressConfig
from components.ingress import ORIGIN_HEADER, LoadBalancer, Route, dns_validated_certificate, hosts_of, web_acl
from components.upstream import (
    ALL_VIEWER_ORIGIN_REQUEST_POLICY,
    CACHING_DISABLED_POLICY,
    CACHING_OPTIMIZED_POLICY,
    CLOUDFRONT_HOSTED_ZONE_ID,
    CLOUDFRONT_LOG_TYPE,
    CLOUDFRONT_REGION,
    CLOUDFRONT_TLS_POLICY,
)

ORIGIN_ID = "alb"
ALL_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
#: CloudFront waits this long for the ALB's response; 60 s is the most it allows without a quota increase
#: (CloudFront Developer Guide, "Response timeout (custom origins only)").
MAX_ORIGIN_READ_TIMEOUT = 60
#: The delivery's object path after ``AWSLogs/<account>/CloudFront/`` (CloudFront Developer Guide, "Configure
#: standard logging (v2)", partitioning variables).
LOG_SUFFIX_PATH = "{DistributionId}/{yyyy}/{MM}/{dd}/{HH}"


def label(host: str) -> str:
    """A host as a resource-name part: ``app.example.com`` -> ``app-example-com``."""
    return host.replace(".", "-")


class Cdn(pulumi.ComponentResource):
    """CloudFront distributions, their web ACL, certificate, access logs and DNS records."""

    distributions: dict[str, aws.cloudfront.Distribution]
    domain_names: dict[str, pulumi.Output[str]]
    web_acl: aws.wafv2.WebAcl | None
    certificate_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        config: IngressConfig,
        *,
        routes: Mapping[str, Route],
        load_balancer: LoadBalancer,
        logs_bucket: aws.s3.Bucket,
        depends_on_logs: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``config``: the ``keel:ingress`` section (``cdn`` set; ``waf``, the certificates and the hosted zone).
        ``routes``: the exposed services by name; ``load_balancer``: the origin, built with ``cdn`` (it holds the
        origin secret); ``logs_bucket`` receives the access logs once ``depends_on_logs`` (its policy) exists."""
        super().__init__("keel:cdn:Cdn", name, None, opts)
        cdn = config.cdn
        if cdn is None or load_balancer.origin_secret is None:
            raise ValueError("Cdn needs keel:ingress.cdn and a load balancer built with it")
        child = pulumi.ResourceOptions(parent=self)
        edge = CLOUDFRONT_REGION.value
        ctx = context.lookup(pulumi.InvokeOptions(parent=self))
        hosts = hosts_of(routes)
        self.web_acl = (
            web_acl(f"{name}-cdn", config.waf, scope="CLOUDFRONT", region=edge, what="CloudFront", opts=child)
            if config.waf.enabled
            else None
        )
        self.certificate_arn = self._certificate(name, config, list(hosts), load_balancer, ctx.region)
        destination = aws.cloudwatch.LogDeliveryDestination(
            f"{name}-cdn-logs",
            name=f"{name}-cdn-logs",
            region=edge,
            output_format="w3c",
            delivery_destination_configuration=aws.cloudwatch.LogDeliveryDestinationDeliveryDestinationConfigurationArgs(
                destination_resource_arn=logs_bucket.arn
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on_logs)),
        )
        self.distributions = {}
        for host, services in hosts.items():
            cached = [path for service in services for path in cdn.cached_paths.get(service, [])]
            distribution = self._distribution(
                f"{name}-cdn-{label(host)}",
                host,
                cached,
                config,
                load_balancer,
                min(config.idle_timeout_seconds, MAX_ORIGIN_READ_TIMEOUT),
            )
            self.distributions[host] = distribution
            source = aws.cloudwatch.LogDeliverySource(
                f"{name}-cdn-{label(host)}",
                name=f"{name}-cdn-{label(host)}"[:60],
                region=edge,
                log_type=CLOUDFRONT_LOG_TYPE.value,
                resource_arn=distribution.arn,
                opts=child,
            )
            aws.cloudwatch.LogDelivery(
                f"{name}-cdn-{label(host)}",
                region=edge,
                delivery_source_name=source.name,
                delivery_destination_arn=destination.arn,
                s3_delivery_configurations=[
                    aws.cloudwatch.LogDeliveryS3DeliveryConfigurationArgs(
                        suffix_path=LOG_SUFFIX_PATH, enable_hive_compatible_path=False
                    )
                ],
                opts=child,
            )
            if config.hosted_zone_id:
                self._records(name, services[0], host, config.hosted_zone_id, distribution, load_balancer)
        self.domain_names = {host: d.domain_name for host, d in self.distributions.items()}
        self.register_outputs(
            {
                "distributions": {host: d.id for host, d in self.distributions.items()},
                "domain_names": self.domain_names,
                "web_acl": self.web_acl.arn if self.web_acl is not None else None,
            }
        )

    def _certificate(
        self, name: str, config: IngressConfig, hosts: list[str], load_balancer: LoadBalancer, region: str
    ) -> pulumi.Output[str]:
        """The viewer certificate in us-east-1, the first of those the module docstring lists."""
        assert config.cdn is not None
        edge = CLOUDFRONT_REGION.value
        if config.cdn.certificate_arn:
            return pulumi.Output.from_input(config.cdn.certificate_arn)
        if config.certificate_arn and config.certificate_arn.split(":")[3] == edge:
            return pulumi.Output.from_input(config.certificate_arn)
        if config.certificate_arn is None and region == edge:
            return load_balancer.certificate_arn
        # Config validation guarantees a hosted zone here (components/config/checks.py _cdn_checks).
        return dns_validated_certificate(
            f"{name}-cdn", hosts, str(config.hosted_zone_id), region=edge, opts=pulumi.ResourceOptions(parent=self)
        )

    def _distribution(
        self,
        resource_name: str,
        host: str,
        cached: list[str],
        config: IngressConfig,
        load_balancer: LoadBalancer,
        read_timeout: int,
    ) -> aws.cloudfront.Distribution:
        assert config.cdn is not None and load_balancer.origin_secret is not None
        return aws.cloudfront.Distribution(
            resource_name,
            enabled=True,
            comment=f"{host}: CloudFront in front of the ALB",
            aliases=[host],
            is_ipv6_enabled=True,
            http_version="http2and3",
            price_class=config.cdn.price_class,
            web_acl_id=self.web_acl.arn if self.web_acl is not None else None,
            origins=[
                aws.cloudfront.DistributionOriginArgs(
                    origin_id=ORIGIN_ID,
                    domain_name=load_balancer.dns_name,
                    custom_origin_config=aws.cloudfront.DistributionOriginCustomOriginConfigArgs(
                        http_port=80,
                        https_port=443,
                        origin_protocol_policy="https-only",
                        origin_ssl_protocols=["TLSv1.2"],
                        origin_read_timeout=read_timeout,
                    ),
                    custom_headers=[
                        aws.cloudfront.DistributionOriginCustomHeaderArgs(
                            name=ORIGIN_HEADER, value=load_balancer.origin_secret
                        )
                    ],
                )
            ],
            default_cache_behavior=aws.cloudfront.DistributionDefaultCacheBehaviorArgs(
                target_origin_id=ORIGIN_ID,
                viewer_protocol_policy="redirect-to-https",
                allowed_methods=ALL_METHODS,
                cached_methods=["GET", "HEAD"],
                compress=True,
                cache_policy_id=CACHING_DISABLED_POLICY.value,
                origin_request_policy_id=ALL_VIEWER_ORIGIN_REQUEST_POLICY.value,
            ),
            ordered_cache_behaviors=[
                aws.cloudfront.DistributionOrderedCacheBehaviorArgs(
                    path_pattern=path,
                    target_origin_id=ORIGIN_ID,
                    viewer_protocol_policy="redirect-to-https",
                    allowed_methods=["GET", "HEAD", "OPTIONS"],
                    cached_methods=["GET", "HEAD"],
                    compress=True,
                    cache_policy_id=CACHING_OPTIMIZED_POLICY.value,
                    origin_request_policy_id=ALL_VIEWER_ORIGIN_REQUEST_POLICY.value,
                )
                for path in cached
            ]
            or None,
            viewer_certificate=aws.cloudfront.DistributionViewerCertificateArgs(
                acm_certificate_arn=self.certificate_arn,
                ssl_support_method="sni-only",
                minimum_protocol_version=CLOUDFRONT_TLS_POLICY.value,
            ),
            restrictions=aws.cloudfront.DistributionRestrictionsArgs(
                geo_restriction=aws.cloudfront.DistributionRestrictionsGeoRestrictionArgs(restriction_type="none")
            ),
            tags={"Name": resource_name, "keel.dev/host": host},
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _records(
        self,
        name: str,
        service: str,
        host: str,
        zone_id: str,
        distribution: aws.cloudfront.Distribution,
        load_balancer: LoadBalancer,
    ) -> None:
        target = [
            aws.route53.RecordAliasArgs(
                name=distribution.domain_name, zone_id=CLOUDFRONT_HOSTED_ZONE_ID.value, evaluate_target_health=False
            )
        ]
        aws.route53.Record(
            f"{name}-{service}",
            zone_id=zone_id,
            name=host,
            type="A",
            aliases=target,
            # The load balancer created this record (pointing at the ALB) before the stack had a CDN.
            opts=pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(parent=load_balancer)]),
        )
        aws.route53.Record(
            f"{name}-{service}-aaaa",
            zone_id=zone_id,
            name=host,
            type="AAAA",
            aliases=target,
            opts=pulumi.ResourceOptions(parent=self),
        )
