"""Service: one workload on the cluster, with its image, identity, pods, disruption budget and network rules.

Usage::

    web = Service("keel-prod-web", cfg.services["web"], service="web", namespace="apps", env={...},
                  grants=[lambda role: buckets.grant_read("uploads", role)], target_group=lb.target_groups["web"],
                  cluster=cluster, addons=addons, opts=pulumi.ResourceOptions(parent=platform))
    web.pod_template          # the pod spec (a job's template for its KEDA ScaledJob)

Creates (``<s>`` is the service name, ``<n>`` the component's resource name ``<stack>-<s>``):

- ``<n>`` ECR repository: immutable tags, scan on push, KMS encryption, a lifecycle policy keeping the last
  images; with ``build``, ``<n>`` docker image built and pushed there, and the pods run its digest.
- ``<n>`` ServiceAccount (no token automount) bound through EKS Pod Identity to ``<n>`` IAM role, whose only
  policies are the intent grants the service's config asks for.
- ``kind: deployment``: ``<n>`` Deployment (requests and limits; readiness, liveness and startup probes; non-root
  uid 10001, no privilege escalation, all capabilities dropped, read-only root filesystem with an emptyDir on
  /tmp, seccomp RuntimeDefault; no service-account token; spread over zones and hosts; on the general pool),
  ``<n>`` PodDisruptionBudget (``maxUnavailable: 1``: a drain never blocks, even on one replica; prod keeps two),
  ``<n>`` ClusterIP Service (the ``http`` port only), and, when exposed, ``<n>`` TargetGroupBinding to its ALB
  target group (after the load balancer controller). An exposed deployment's container sleeps
  ``PRESTOP_SLEEP_SECONDS`` in a preStop ``sleep`` handler (the controller's deregistration plus the target group's
  deregistration delay) within an ``EXPOSED_GRACE_SECONDS`` grace period.
- ``kind: job``: no workload object: ``pod_template`` (GPU limit, GPU node selector and toleration,
  ``restartPolicy: Never``, 2 minutes of grace to checkpoint on a Spot interruption notice) is what the KEDA
  ScaledJob runs.
- Container ports: ``http`` (``port``) and ``metrics`` (``metricsPort``, with ``OTEL_EXPORTER_PROMETHEUS_HOST`` and
  ``_PORT`` set to match); only ``http`` is on the Service, the target group and the NetworkPolicy below.
- ``<n>`` NetworkPolicy admitting, on the service's ``http`` port, the ALB's subnets (when exposed) and the pods of
  the services in ``allowFrom``; the namespace denies all other ingress.
- Per ``secrets`` entry ``<NAME>``: ``<n>-secret-<name>`` Secrets Manager secret (``<name>``: ``NAME`` in lower case,
  ``_`` as ``-``) encrypted with the stack's app-secrets key, recoverable 30 days and protected (and retained) when
  the stack protects, with no value: it is set out of band and never passes through Pulumi; with ``rotateWith``,
  ``<n>-secret-<name>`` rotation by that Lambda every ``everyDays`` (never at once: the first value comes first).
  ``<n>-secrets``, the role's policy reading exactly those secrets and decrypting them only through Secrets
  Manager; the pods get ``<NAME>_SECRET_ARN``.

Connection settings (endpoints, ports, secret ARNs) reach the pods as environment variables; secret values never
do: the service reads them at run time with its role.

Outputs: ``repository_url``, ``image``, ``role_arn``, ``service_account``, ``pod_template``, ``secret_arns`` (by
name).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import context
from components.addons import ClusterAddons
from components.cluster import Cluster
from components.config import ServiceConfig
from components.iam import PodIdentityRole, PodIdentityRoleArgs, grant_secret_read
from components.ingress import DEREGISTRATION_DELAY_SECONDS
from components.upstream import ENDPOINT_PROPAGATION_SECONDS, OTEL_PROMETHEUS_ENV
from components.vocabulary import (
    GENERAL_POOL,
    GPU_POOL,
    GPU_RESOURCE,
    GPU_TOLERATION,
    METRICS_PORT,
    pool_selector,
    secret_variable,
)

UID = 10001
KEEP_IMAGES = 30
SPOT_GRACE_SECONDS = 120
#: The container port the Service, the TargetGroupBinding and the probes use.
HTTP_PORT = "http"
#: An exposed pod's preStop sleep: the ALB sends it new requests until the load balancer controller has seen it
#: terminate and deregistered it, then drains its in-flight requests for the deregistration delay; SIGTERM comes
#: after both, so the app never stops while the ALB still uses it.
PRESTOP_SLEEP_SECONDS = ENDPOINT_PROPAGATION_SECONDS.value + DEREGISTRATION_DELAY_SECONDS
#: What an app has after SIGTERM to close its connections and exit.
APP_SHUTDOWN_SECONDS = 15
#: An exposed pod's terminationGracePeriodSeconds. The countdown starts before the preStop hook
#: (upstream.GRACE_PERIOD_INCLUDES_PRESTOP), so it holds the sleep, the app's shutdown and a few seconds to spare.
EXPOSED_GRACE_SECONDS = 60
#: A deployment the ALB does not reach: Kubernetes' default grace period.
GRACE_SECONDS = 30


def labels(service: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": service, "app.kubernetes.io/part-of": "keel"}


def container_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": UID,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _double_cpu(cpu: str) -> str:
    if cpu.endswith("m"):
        return f"{int(float(cpu[:-1]) * 2)}m"
    return f"{int(float(cpu) * 2000)}m"


def pod_spec(name: str, cfg: ServiceConfig, image: Any, env: Mapping[str, Any]) -> dict[str, Any]:
    """The pod spec every replica (or job pod) runs."""
    limits: dict[str, Any] = {"cpu": _double_cpu(cfg.resources.cpu), "memory": cfg.resources.memory}
    if cfg.gpu:
        limits[GPU_RESOURCE] = str(cfg.gpu)
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "env": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "resources": {"requests": {"cpu": cfg.resources.cpu, "memory": cfg.resources.memory}, "limits": limits},
        "securityContext": container_security_context(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 (an emptyDir: the root FS is read-only)
    }
    ports: list[dict[str, Any]] = []
    if cfg.port is not None:
        probe = {"httpGet": {"path": cfg.health_path, "port": HTTP_PORT}}
        ports.append({"name": HTTP_PORT, "containerPort": cfg.port, "protocol": "TCP"})
        container["readinessProbe"] = {**probe, "periodSeconds": 5, "failureThreshold": 3}
        container["livenessProbe"] = {**probe, "periodSeconds": 10, "failureThreshold": 3}
        container["startupProbe"] = {**probe, "periodSeconds": 5, "failureThreshold": 30}
    if cfg.metrics_port is not None:
        ports.append({"name": METRICS_PORT, "containerPort": cfg.metrics_port, "protocol": "TCP"})
    if ports:
        container["ports"] = ports
    exposed = cfg.kind == "deployment" and cfg.ingress is not None
    if exposed:
        # the kubelet sleeps: no shell or sleep binary needed in the image (upstream.PRESTOP_SLEEP_HANDLER)
        container["lifecycle"] = {"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_SECONDS}}}
    spec: dict[str, Any] = {
        "serviceAccountName": name,
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "fsGroup": UID, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
    }
    if cfg.gpu:
        spec["nodeSelector"] = pool_selector(GPU_POOL)
        spec["tolerations"] = [GPU_TOLERATION]
    else:
        spec["nodeSelector"] = pool_selector(GENERAL_POOL)
    if cfg.kind == "job":
        spec["restartPolicy"] = "Never"
        spec["terminationGracePeriodSeconds"] = SPOT_GRACE_SECONDS
    else:
        spec["terminationGracePeriodSeconds"] = EXPOSED_GRACE_SECONDS if exposed else GRACE_SECONDS
        spec["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": key,
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": labels(name)},
            }
            for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
        ]
    return spec


def metrics_env(cfg: ServiceConfig) -> dict[str, str]:
    """Where an OpenTelemetry SDK's Prometheus exporter serves: on every interface (its default, localhost, is out
    of Prometheus' reach) at the ``metrics`` port; nothing without one."""
    if cfg.metrics_port is None:
        return {}
    host, port = OTEL_PROMETHEUS_ENV.value
    return {host: "0.0.0.0", port: str(cfg.metrics_port)}  # noqa: S104 (the pod's own interfaces; NetworkPolicy guards)


def context_digest(folder: Path) -> str:
    """A digest of a build context (file names and contents), so a changed context gets a new image tag."""
    digest = hashlib.sha256()
    if folder.is_dir():
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def secret_resource_name(component: str, secret: str) -> str:
    """The resource name of a service's secret: ``keel-prod-api`` and ``STRIPE_KEY`` ->
    ``keel-prod-api-secret-stripe-key`` (one name per secret: secret names are upper snake case)."""
    return f"{component}-secret-{secret.lower().replace('_', '-')}"


def ecr_lifecycle_policy(keep: int = KEEP_IMAGES) -> dict[str, Any]:
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"keep the last {keep} images",
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep},
                "action": {"type": "expire"},
            }
        ]
    }


class Service(pulumi.ComponentResource):
    """One workload of the platform."""

    repository: aws.ecr.Repository
    repository_url: pulumi.Output[str]
    image: pulumi.Output[str]
    role: PodIdentityRole
    role_arn: pulumi.Output[str]
    service_account: k8s.core.v1.ServiceAccount
    pod_template: pulumi.Output[dict[str, Any]]
    deployment: k8s.apps.v1.Deployment | None
    secrets: dict[str, aws.secretsmanager.Secret]
    """The service's own secrets, by name (``keel:services.<s>.secrets``)."""
    secret_arns: dict[str, pulumi.Output[str]]
    """Their ARNs, by name: where ``aws secretsmanager put-secret-value`` puts each value."""

    def __init__(
        self,
        name: str,
        config: ServiceConfig,
        *,
        service: str,
        namespace: str,
        cluster: Cluster,
        addons: ClusterAddons,
        env: Mapping[str, pulumi.Input[str]] | None = None,
        grants: Sequence[Callable[[aws.iam.Role], pulumi.Resource]] = (),
        target_group: aws.lb.TargetGroup | None = None,
        alb_cidrs: Sequence[str] = (),
        project_root: str = ".",
        protect: bool = True,
        secrets_key: aws.kms.Key | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``config``: the service's ``keel:services`` entry; ``service``: its name there (the pods' label, the
        service account's name); ``namespace``: the application namespace; ``cluster``, ``addons``: where it runs
        and the load balancer controller its binding waits for.

        ``env``: connection settings for the container (None: only the config's ``env``). ``grants``: intent grants
        attached to the service's role (``lambda role: buckets.grant_read("artifacts", role)``). ``target_group``:
        the ALB target group its pods are bound to (None: not exposed). ``alb_cidrs``: where the ALB's traffic
        comes from (its subnets), admitted by the NetworkPolicy. ``project_root``: where ``build.context`` is
        resolved from. ``protect``: True, the ECR repository keeps its images when the stack is destroyed, and the
        service's secrets are protected, retained and recoverable for 30 days. ``secrets_key``: the key the
        service's secrets are encrypted with (the stack's app-secrets key; required when ``config.secrets`` is set).
        """
        super().__init__("keel:service:Service", name, None, opts)
        ctx = context.lookup(pulumi.InvokeOptions(parent=self))
        child = pulumi.ResourceOptions(parent=self)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=cluster.k8s_provider)
        self.repository = aws.ecr.Repository(
            name,
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS")],
            force_delete=not protect,
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            name, repository=self.repository.name, policy=json.dumps(ecr_lifecycle_policy()), opts=child
        )
        self.repository_url = self.repository.repository_url
        self.image = self._image(name, config, project_root, ctx)

        self.role = PodIdentityRole(
            name,
            PodIdentityRoleArgs(
                cluster_name=cluster.name,
                cluster_arn=cluster.arn,
                account=ctx.account,
                namespace=namespace,
                service_account=service,
                description=f"{name}: the {service} service",
            ),
            opts=child,
        )
        self.role_arn = self.role.role_arn
        policies = [grant(self.role.role) for grant in grants]
        self.secrets, self.secret_arns = {}, {}
        if config.secrets:
            if secrets_key is None:
                raise ValueError(f"{name}: secrets {', '.join(config.secrets)} need secrets_key")
            policies.append(self._secrets(name, service, config, secrets_key, protect, ctx.region))
        meta: Any = {"name": service, "namespace": namespace, "labels": labels(service)}
        self.service_account = k8s.core.v1.ServiceAccount(
            name, metadata=meta, automount_service_account_token=False, opts=k8s_opts
        )
        container_env: dict[str, pulumi.Input[str]] = {
            "AWS_REGION": ctx.region,
            "SERVICE_NAME": service,
            **config.env,  # plain values only: config validation refuses secure values and secret-like names
            **metrics_env(config),  # after config's env: metricsPort is the one place the port is set
            **(env or {}),
            **{secret_variable(secret): arn for secret, arn in self.secret_arns.items()},
        }
        # Values stay Outputs inside the spec: each is serialized on its own, so a secret stays one secret leaf
        # (and an unknown one leaf) instead of turning the whole pod spec secret (or unknown).
        spec = self.image.apply(lambda image: pod_spec(service, config, image, container_env))
        self.pod_template = spec.apply(lambda s: {"metadata": {"labels": labels(service)}, "spec": s})
        self.deployment = None
        if config.kind == "deployment":
            self._deployment(name, service, config, namespace, target_group, addons, policies, k8s_opts)
        self._network_policy(name, service, config, namespace, alb_cidrs, k8s_opts)
        self.register_outputs(
            {
                "repository_url": self.repository_url,
                "image": self.image,
                "role_arn": self.role_arn,
                "service_account": service,
                "secret_arns": self.secret_arns,
            }
        )

    def _secrets(
        self, name: str, service: str, cfg: ServiceConfig, key: aws.kms.Key, protect: bool, region: str
    ) -> aws.iam.RolePolicy:
        """One secret per ``secrets`` entry, without a value (set out of band, so it never passes through Pulumi's
        state), rotated by its Lambda when one is named; the role's policy to read exactly those secrets."""
        for secret, options in cfg.secrets.items():
            resource = secret_resource_name(name, secret)
            created = aws.secretsmanager.Secret(
                resource,
                description=f"{name}: {secret} of the {service} service; its value is set out of band",
                kms_key_id=key.arn,
                recovery_window_in_days=30 if protect else 0,
                tags={"keel.dev/service": service, "keel.dev/secret": secret},
                opts=pulumi.ResourceOptions(parent=self, protect=protect, retain_on_delete=protect),
            )
            if options.rotate_with is not None:
                aws.secretsmanager.SecretRotation(
                    resource,
                    secret_id=created.arn,
                    rotation_lambda_arn=options.rotate_with,
                    rotation_rules=aws.secretsmanager.SecretRotationRotationRulesArgs(
                        automatically_after_days=options.every_days
                    ),
                    # the secret has no value until one is put: the first rotation waits for its schedule
                    rotate_immediately=False,
                    opts=pulumi.ResourceOptions(parent=self),
                )
            self.secrets[secret] = created
            self.secret_arns[secret] = created.arn
        return grant_secret_read("secrets", self.role.role, list(self.secret_arns.values()), key.arn, region)

    def _image(self, name: str, cfg: ServiceConfig, project_root: str, ctx: context.AwsContext) -> pulumi.Output[str]:
        if cfg.image is not None:
            return pulumi.Output.from_input(cfg.image)
        assert cfg.build is not None  # config validation: exactly one of image and build
        # Imported only for a service that builds its image: pulumi-docker takes 0.35 s to import, and a stack of
        # prebuilt images never uses it.
        import pulumi_docker as docker

        context = cfg.build.context
        token = aws.ecr.get_authorization_token_output(
            registry_id=self.repository.registry_id, opts=pulumi.InvokeOptions(parent=self)
        )
        built = docker.Image(
            name,
            # tags are immutable: each build context gets its own tag, derived from its content
            image_name=self.repository.repository_url.apply(
                lambda url: f"{url}:{pulumi.get_stack()}-{context_digest(Path(project_root) / context)[:12]}"
            ),
            build=docker.DockerBuildArgs(
                context=f"{project_root}/{cfg.build.context}",
                dockerfile=f"{project_root}/{cfg.build.context}/{cfg.build.dockerfile}",
                platform="linux/amd64",
            ),
            registry=docker.RegistryArgs(
                server=self.repository.repository_url,
                username=token.user_name,
                password=pulumi.Output.secret(token.password),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return built.repo_digest

    def _deployment(
        self,
        name: str,
        service: str,
        cfg: ServiceConfig,
        namespace: str,
        target_group: aws.lb.TargetGroup | None,
        addons: ClusterAddons,
        policies: Sequence[pulumi.Resource],
        k8s_opts: pulumi.ResourceOptions,
    ) -> None:
        """``policies``: the role's grants, which the pods need from their first start."""
        meta: Any = {"name": service, "namespace": namespace, "labels": labels(service)}
        selector = {"matchLabels": labels(service)}
        autoscaled = cfg.scale_on is not None
        deployment_spec: Any = {
            "selector": selector,
            "template": self.pod_template,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "revisionHistoryLimit": 5,
        }
        if not autoscaled:
            deployment_spec["replicas"] = cfg.replicas.min
        self.deployment = k8s.apps.v1.Deployment(
            name,
            metadata=meta,
            spec=deployment_spec,
            opts=pulumi.ResourceOptions.merge(
                k8s_opts,
                pulumi.ResourceOptions(
                    depends_on=[self.service_account, self.role, *policies],
                    # the autoscaler owns the replica count (issue: scaling) when the service scales
                    ignore_changes=["spec.replicas"] if autoscaled else None,
                ),
            ),
        )
        pdb_spec: Any = {"maxUnavailable": 1, "selector": selector}
        k8s.policy.v1.PodDisruptionBudget(name, metadata=meta, spec=pdb_spec, opts=k8s_opts)
        assert cfg.port is not None  # config validation: deployments have a port
        service_spec: Any = {
            "type": "ClusterIP",
            "selector": labels(service),
            # only the ALB's port: the metrics port stays off the Service (and so off the target group)
            "ports": [{"name": HTTP_PORT, "port": cfg.port, "targetPort": HTTP_PORT, "protocol": "TCP"}],
        }
        k8s.core.v1.Service(name, metadata=meta, spec=service_spec, opts=k8s_opts)
        if target_group is not None:
            k8s.apiextensions.CustomResource(
                name,
                api_version="elbv2.k8s.aws/v1beta1",
                kind="TargetGroupBinding",
                metadata=meta,
                spec={
                    "serviceRef": {"name": service, "port": cfg.port},
                    "targetGroupARN": target_group.arn,
                    "targetType": "ip",
                },
                # the controller's webhook refuses to change a binding's target group: replace the binding instead
                opts=pulumi.ResourceOptions.merge(
                    k8s_opts,
                    pulumi.ResourceOptions(
                        depends_on=[addons.lb_controller],
                        replace_on_changes=["spec.targetGroupARN"],
                        delete_before_replace=True,
                    ),
                ),
            )

    def _network_policy(
        self,
        name: str,
        service: str,
        cfg: ServiceConfig,
        namespace: str,
        alb_cidrs: Sequence[str],
        k8s_opts: pulumi.ResourceOptions,
    ) -> None:
        if cfg.port is None:
            return  # a job serves nothing: the namespace's default deny covers it
        sources: list[dict[str, Any]] = [{"ipBlock": {"cidr": cidr}} for cidr in alb_cidrs]
        sources += [{"podSelector": {"matchLabels": labels(other)}} for other in sorted(cfg.allow_from)]
        spec: Any = {"podSelector": {"matchLabels": labels(service)}, "policyTypes": ["Ingress"]}
        # the http port only: the metrics port is admitted to Prometheus alone, by the monitoring side's policy
        spec["ingress"] = [{"from": sources, "ports": [{"protocol": "TCP", "port": cfg.port}]}] if sources else []
        meta: Any = {"name": f"{service}-ingress", "namespace": namespace, "labels": labels(service)}
        k8s.networking.v1.NetworkPolicy(name, metadata=meta, spec=spec, opts=k8s_opts)
