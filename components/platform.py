"""Platform: wires one stack's components together.

Usage::

    cfg = config.load()
    platform = Platform(f"keel-{cfg.stack}", cfg)
    pulumi.export("vpcId", platform.network.vpc_id)

Creates ``<n>-aws``, the AWS provider every child uses (region from ``aws:region``, the stack's tags as
default tags, and ``allowed_account_ids`` when ``keel:accountId`` is set so a wrong profile fails before
anything changes), then the components in dependency order: ``Network``, then (when ``keel:cluster`` is set)
``Cluster`` and its ``ClusterAddons``; ``Backup`` (with ``keel:backup``; ``<n>-aws-<copyRegion>``, the same provider
for the copy region, when one is set), so the data tier can carry its selection tag; the data tier (``Database``,
a ``Cache`` per ``keel:caches`` entry with a shared ``<n>-cache`` key, ``Buckets``, ``Email``); the ``apps``
namespace (Pod Security ``restricted``; the load balancer controller's readiness gates), the ``LoadBalancer`` (and
the ``Cdn`` in front of it with ``keel:ingress.cdn``),
``<n>-app-secrets`` (the key of the services' own secrets, used only through Secrets Manager; when a service has
``secrets``) and a ``Service`` and ``Scaling`` per ``keel:services`` entry; and last ``Observability`` (with
``keel:alerts``), which watches all of them. Components receive objects (``network=...``), never raw ids.

Outputs: ``network``, ``cluster`` and ``addons`` (None without ``keel:cluster``), ``database``, ``caches``,
``buckets``, ``email``, ``load_balancer``, ``cdn``, ``services``, ``scaling``, ``backup``, ``observability``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_aws as aws

from components import context
from components.addons import ClusterAddons, ClusterAddonsArgs
from components.backup import Backup
from components.cache import Cache, Standby
from components.cdn import Cdn
from components.cluster import Cluster
from components.config import NetworkConfig, StackConfig
from components.database import Database
from components.email import Email
from components.ingress import LoadBalancer, Route
from components.keys import create_key, secrets_manager_key_policy
from components.network import Network
from components.observability import Observability
from components.scaling import Scaling
from components.service import Service
from components.storage import Buckets
from components.upstream import LB_READINESS_GATE_LABEL
from components.vocabulary import cache_prefix

#: Pod Security Admission for the application namespace: every pod must meet the "restricted" profile.
APP_NAMESPACE = "apps"
PSA_LABELS = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
}
#: The load balancer controller injects a target-health readiness gate into the namespace's pods behind a
#: TargetGroupBinding: a new pod is Ready only once the ALB sees it healthy, so a rollout (maxUnavailable: 0) never
#: leaves a target group without healthy targets. With the controller down, pods start without the gate.
READINESS_GATE_LABELS = dict([LB_READINESS_GATE_LABEL.value])


class Platform(pulumi.ComponentResource):
    """Everything one stack deploys."""

    provider: aws.Provider
    network: Network
    standby_network: Network | None
    """The copy region's standby network (caches with ``crossRegion``), None without one."""
    cluster: Cluster | None
    addons: ClusterAddons | None
    database: Database | None
    caches: dict[str, Cache]
    buckets: Buckets
    email: Email | None
    load_balancer: LoadBalancer | None
    cdn: Cdn | None
    services: dict[str, Service]
    scaling: dict[str, Scaling]
    app_secrets_key: aws.kms.Key | None
    """The key of the services' own secrets (``keel:services.<name>.secrets``), None when no service has one."""
    backup: Backup | None
    observability: Observability | None
    app_namespace: Any
    """The application namespace (a ``kubernetes.core.v1.Namespace``), None without services."""

    def __init__(self, name: str, config: StackConfig, *, opts: pulumi.ResourceOptions | None = None) -> None:
        """``config``: the validated stack config; every per-stack choice comes from there."""
        super().__init__("keel:platform:Platform", name, None, opts)
        cfg = config
        self.provider = self._aws_provider(f"{name}-aws", cfg.region, cfg)
        children = pulumi.ResourceOptions(parent=self, providers=[self.provider])
        self.network = Network(name, cfg.network, protect=cfg.protect, opts=children)
        self.cluster = self.addons = None
        if cfg.cluster is not None:
            self.cluster = Cluster(name, cfg.cluster, network=self.network, protect=cfg.protect, opts=children)
            self.addons = ClusterAddons(
                name,
                ClusterAddonsArgs(vpc_id=self.network.vpc_id, version=cfg.cluster.version),
                cluster=self.cluster,
                opts=children,
            )
        self.backup = None
        self.copy_provider: aws.Provider | None = None
        if cfg.backup is not None:
            copy = cfg.backup.copy_region
            copy_provider = self._aws_provider(f"{name}-aws-{copy}", copy, cfg) if copy is not None else None
            self.copy_provider = copy_provider
            self.backup = Backup(
                name,
                cfg.backup,
                protect=cfg.protect,
                copy_provider=copy_provider,
                opts=children,
            )
        self._data_tier(name, cfg, children)
        self._workloads(name, cfg, children)
        self.observability = None
        if cfg.alerts is not None:
            self.observability = Observability(
                name,
                cfg.alerts,
                network=self.network,
                cluster=self.cluster,
                node_groups=cfg.cluster.node_groups if cfg.cluster is not None else None,
                database=self.database,
                caches=self.caches,
                load_balancer=self.load_balancer,
                backup=self.backup,
                app_namespace=self.app_namespace,
                keda=self.addons.keda if self.addons else None,
                namespace=APP_NAMESPACE,
                gpu_jobs=tuple(n for n, s in cfg.services.items() if s.kind == "job" and s.gpu),
                protect=cfg.protect,
                opts=children,
            )
        self.register_outputs(self._outputs())

    def _outputs(self) -> dict[str, Any]:
        """Every output the module docstring lists, by the same name: each child component's URN (None when the
        stack has none; a map by name for caches, services and scaling)."""
        children: dict[str, pulumi.Resource | dict[str, Any] | None] = {
            "network": self.network,
            "cluster": self.cluster,
            "addons": self.addons,
            "database": self.database,
            "caches": dict(self.caches),
            "buckets": self.buckets,
            "email": self.email,
            "load_balancer": self.load_balancer,
            "cdn": self.cdn,
            "services": dict(self.services),
            "scaling": dict(self.scaling),
            "backup": self.backup,
            "observability": self.observability,
        }
        return {
            key: {k: v.urn for k, v in child.items()} if isinstance(child, dict) else child and child.urn
            for key, child in children.items()
        }

    def _aws_provider(self, resource_name: str, region: str, cfg: StackConfig) -> aws.Provider:
        """An AWS provider for ``region`` with the stack's default tags and, when pinned, its only account."""
        return aws.Provider(
            resource_name,
            region=region,
            allowed_account_ids=[cfg.account_id] if cfg.account_id else None,
            default_tags={"tags": cfg.all_tags},
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _data_tier(self, name: str, cfg: StackConfig, children: pulumi.ResourceOptions) -> None:
        """Database, caches, buckets and email. They depend on the network and on the node security group
        (created before the control plane), never on the EKS cluster, so they build in parallel with it."""
        self.database = None
        self.standby_network = None
        self.caches = {}
        self.email = None
        nodes = self.cluster.node_security_group if self.cluster else None
        backup_tags = self.backup.tag if self.backup else None
        if cfg.database is not None and nodes is not None:
            self.database = Database(
                name,
                cfg.database,
                protect=cfg.protect,
                backup_tags=backup_tags,
                network=self.network,
                client_security_group=nodes,
                opts=children,
            )
            if self.backup is not None:
                self.backup.replicate_point_in_time("db", self.database.instance, cfg.database.backup_retention_days)
        if cfg.caches and nodes is not None:
            ctx = context.lookup(pulumi.InvokeOptions(parent=self, provider=self.provider))
            key = create_key(
                f"{name}-cache",
                "ElastiCache data at rest and the AUTH token secrets",
                ctx,
                protect=cfg.protect,
                opts=children,
            )
            standby = self._standby(name, cfg, ctx) if any(c.cross_region for c in cfg.caches.values()) else None
            for cache_name, cache in cfg.caches.items():
                self.caches[cache_name] = Cache(
                    f"{name}-{cache_name}",
                    cache,
                    key=key,
                    protect=cfg.protect,
                    label=cache_name,
                    network=self.network,
                    client_security_group=nodes,
                    standby=standby if cache.cross_region else None,
                    opts=children,
                )
        self.buckets = Buckets(
            name,
            cfg.buckets,
            protect=cfg.protect,
            backup_tags=backup_tags,
            replica_provider=self.copy_provider,
            replica_region=cfg.backup.copy_region if cfg.backup is not None else None,
            cloudfront_logs=cfg.ingress is not None and cfg.ingress.cdn is not None,
            opts=children,
        )
        if cfg.email is not None:
            self.email = Email(name, cfg.email, protect=cfg.protect, opts=children)

    def _standby(self, name: str, cfg: StackConfig, ctx: context.AwsContext) -> Standby:
        """The standby network in the copy region (``keel:backup.standbyCidr``, the stack's zone count, no NAT and
        no interface endpoint: nothing runs there until a failover; flow logs as the stack's) and the key of the
        caches' secondaries there."""
        assert cfg.backup is not None and cfg.backup.copy_region is not None and self.copy_provider is not None
        region = cfg.backup.copy_region
        there = pulumi.ResourceOptions(parent=self, providers=[self.copy_provider])
        self.standby_network = Network(
            f"{name}-standby",
            NetworkConfig.model_validate(
                {
                    "cidr": cfg.backup.standby_cidr,
                    "availabilityZones": cfg.network.availability_zones,
                    "natGateways": "None",
                    "interfaceEndpoints": [],
                    "flowLogRetentionDays": cfg.network.flow_log_retention_days,
                }
            ),
            protect=cfg.protect,
            opts=there,
        )
        key = create_key(
            f"{name}-cache-standby",
            "the caches' cross-region secondaries and their AUTH secret replicas",
            dataclasses.replace(ctx, region=region),
            protect=cfg.protect,
            opts=there,
        )
        return Standby(network=self.standby_network, key=key, provider=self.copy_provider, region=region)

    def _workloads(self, name: str, cfg: StackConfig, children: pulumi.ResourceOptions) -> None:
        """The ALB and one Service per ``keel:services`` entry, in the application namespace."""
        import pulumi_kubernetes as k8s

        self.load_balancer = None
        self.cdn = None
        self.app_namespace = None
        self.app_secrets_key = None
        self.services = {}
        self.scaling = {}
        if not cfg.services or self.cluster is None or self.addons is None:
            return
        if any(svc.secrets for svc in cfg.services.values()):
            ctx = context.lookup(pulumi.InvokeOptions(parent=self, provider=self.provider))
            self.app_secrets_key = create_key(
                f"{name}-app-secrets",
                "the services' own secrets, used only through Secrets Manager",
                ctx,
                policy=secrets_manager_key_policy(ctx),
                protect=cfg.protect,
                opts=children,
            )
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=self.cluster.k8s_provider)
        self.app_namespace = namespace = k8s.core.v1.Namespace(
            f"{name}-{APP_NAMESPACE}",
            metadata={"name": APP_NAMESPACE, "labels": {**PSA_LABELS, **READINESS_GATE_LABELS}},
            opts=k8s_opts,
        )
        deny: Any = {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": []}
        k8s.networking.v1.NetworkPolicy(
            f"{name}-{APP_NAMESPACE}-default-deny",
            metadata={"name": "default-deny-ingress", "namespace": APP_NAMESPACE},
            spec=deny,
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[namespace])),
        )
        routes = {
            svc_name: Route(svc.ingress.host, tuple(svc.ingress.paths), svc.port, svc.health_path, svc.ingress.priority)
            for svc_name, svc in cfg.services.items()
            if svc.ingress is not None and svc.port is not None
        }
        if cfg.ingress is not None and routes:
            self.load_balancer = LoadBalancer(
                name,
                cfg.ingress,
                routes=routes,
                network=self.network,
                nodes=self.cluster.node_security_group,
                logs_bucket=self.buckets.buckets["logs"],
                depends_on_logs=[self.buckets.policies["logs"]],
                opts=children,
            )
            if cfg.ingress.cdn is not None:
                self.cdn = Cdn(
                    name,
                    cfg.ingress,
                    routes=routes,
                    load_balancer=self.load_balancer,
                    logs_bucket=self.buckets.buckets["logs"],
                    depends_on_logs=[self.buckets.policies["logs"]],
                    opts=children,
                )
        for svc_name, svc in cfg.services.items():
            env, grants = self._connections(svc_name, svc.grants)
            target = self.load_balancer.target_groups.get(svc_name) if self.load_balancer else None
            self.services[svc_name] = Service(
                f"{name}-{svc_name}",
                svc,
                service=svc_name,
                namespace=APP_NAMESPACE,
                env=env,
                grants=grants,
                target_group=target,
                alb_cidrs=self.network.public_subnet_cidrs if target is not None else (),
                protect=cfg.protect,
                secrets_key=self.app_secrets_key,
                cluster=self.cluster,
                addons=self.addons,
                opts=pulumi.ResourceOptions.merge(children, pulumi.ResourceOptions(depends_on=[namespace])),
            )
        self._scaling(name, cfg)

    def _connections(
        self, service: str, grants: list[str]
    ) -> tuple[dict[str, pulumi.Input[str]], list[Callable[[aws.iam.Role], pulumi.Resource]]]:
        """For each intent grant: the environment variables that locate the resource and the policy to attach.
        Only granted resources are described to the pod."""
        env: dict[str, pulumi.Input[str]] = {}
        attach: list[Callable[[aws.iam.Role], pulumi.Resource]] = []
        for grant in grants:
            target, _, access = grant.partition(":")
            if target in ("artifacts", "uploads", "logs"):
                bucket = target
                env[f"BUCKET_{bucket.upper()}"] = self.buckets.buckets[bucket].bucket
                grant_fn = self.buckets.grant_read if access == "read" else self.buckets.grant_read_write
                attach.append(functools.partial(grant_fn, bucket))
            elif target == "email" and self.email is not None:
                email = self.email
                env["SES_CONFIGURATION_SET"] = email.configuration_set.configuration_set_name
                env["SES_IDENTITY"] = email.identity.email_identity
                attach.append(email.grant_send)
            elif target == "database" and access == "connect" and self.database is not None:
                db = self.database
                assert db.proxy_endpoint is not None  # config validation offers database:connect only with a proxy
                # Through RDS Proxy with an IAM token for DATABASE_USER (no secret read). The proxy presents an ACM
                # certificate chaining to Amazon Trust Services' roots (Amazon Root CA 1-4, Starfield Services Root
                # G2), not the RDS CA: verify-full needs those roots (AmazonRootCA1.pem from amazontrust.com/
                # repository, or the OS store), not global-bundle.pem. AWS: RDS User Guide, "RDS Proxy concepts"
                # (RDS Proxy uses certificates from ACM); Knowledge Center "rds-aurora-mysql-connect-proxy".
                env.update(
                    {
                        "DATABASE_HOST": db.proxy_endpoint,
                        "DATABASE_PORT": str(db.port),
                        "DATABASE_NAME": db.database_name,
                        "DATABASE_USER": db.master_username,
                        # Not DATABASE_IAM_AUTH: kubernetes-no-secret-literals-in-env reads *AUTH* names as secrets.
                        "DATABASE_IAM_LOGIN": "true",
                        "DATABASE_SSLMODE": "verify-full",
                    }
                )
                attach.append(db.grant_connect)
            elif target == "database" and access == "secret" and self.database is not None:
                db = self.database
                env.update(
                    {
                        "DATABASE_HOST": db.endpoint,
                        "DATABASE_PORT": str(db.port),
                        "DATABASE_NAME": db.database_name,
                        "DATABASE_SECRET_ARN": db.master_secret_arn,
                        "DATABASE_SSLMODE": "verify-full",
                    }
                )
                attach.append(db.grant_secret_read)
            elif target in self.caches:
                cache = self.caches[target]
                prefix = cache_prefix(target)
                env.update(
                    {
                        f"{prefix}_HOST": cache.endpoint,
                        f"{prefix}_PORT": str(cache.port),
                        f"{prefix}_TLS": "true",
                        f"{prefix}_CLUSTER_MODE": str(cache.cluster_mode).lower(),
                        f"{prefix}_AUTH_SECRET_ARN": cache.auth_secret_arn,
                    }
                )
                attach.append(cache.grant_connect)
            else:  # pragma: no cover - config validation lists the grants that exist
                raise ValueError(f"keel:services.{service}.grants: got {grant!r}")
        return env, attach

    def _scaling(self, name: str, cfg: StackConfig) -> None:
        """One HPA, ScaledObject or ScaledJob per service with ``scaleOn``; KEDA's role may read the AUTH
        secrets of the caches its queue triggers watch."""
        assert self.cluster is not None and self.addons is not None
        watched = sorted(
            {
                svc.scale_on.queue.cache
                for svc in cfg.services.values()
                if svc.scale_on is not None and svc.scale_on.queue is not None
            }
        )
        for cache_name in watched:
            self.caches[cache_name].grant_connect(self.addons.keda_role.role)
        region = self.cluster.region
        scaling_opts = pulumi.ResourceOptions(parent=self, providers=[self.provider, self.cluster.k8s_provider])
        for svc_name, svc in cfg.services.items():
            if svc.scale_on is None:
                continue
            target = self.load_balancer.target_groups.get(svc_name) if self.load_balancer else None
            self.scaling[svc_name] = Scaling(
                f"{name}-{svc_name}",
                svc,
                service=svc_name,
                namespace=APP_NAMESPACE,
                region=region,
                target_group=target,
                caches=self.caches,
                workload=self.services[svc_name],
                keda=self.addons.keda,
                opts=scaling_opts,
            )
