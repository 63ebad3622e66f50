"""Scaling: the HPA or KEDA object that sizes one Service, from its ``replicas`` and ``scaleOn``.

Usage::

    Scaling("keel-prod-web-scaling", cfg.services["web"], service="web", namespace="apps", region="us-east-1",
            target_group=lb.target_groups.get("web"), caches=platform.caches, workload=services["web"],
            keda=addons.keda, opts=pulumi.ResourceOptions(parent=platform, ...))

What each ``scaleOn`` becomes (``<n>`` is the component name):

- ``{cpu: N}`` or ``{memory: N}``: ``<n>`` ``autoscaling/v2`` HorizontalPodAutoscaler on the resource's average
  utilization, with a 5-minute scale-down stabilization and rate limits both ways (no flapping).
- ``{requestsPerMinute: N}``: ``<n>`` KEDA ScaledObject with an ``aws-cloudwatch`` trigger on
  ``AWS/ApplicationELB RequestCountPerTarget`` of the service's target group (``metricStat: Sum`` over 60 s, so
  the target is N per replica per minute; the window ends a minute early, past the minute CloudWatch may still be
  filling in), authenticated by ``<n>-aws`` TriggerAuthentication (``podIdentity.provider: aws``: KEDA's own Pod
  Identity role, which may read CloudWatch metrics); plus a CPU trigger as a floor when ``cpu`` is set too.
- ``{queue: {cache, list, length}}``: ``<n>`` ScaledObject with a ``redis`` (``redis-cluster`` for a cluster-mode
  cache) trigger on the list's length over TLS; the AUTH token comes from ``<n>-redis`` TriggerAuthentication,
  which reads it from the cache's Secrets Manager secret (``awsSecretManager`` with KEDA's Pod Identity role):
  never inline, and never copied into a Kubernetes Secret.
- ``kind: job`` with ``queue``: ``<n>`` ScaledJob running the service's pod template, from 0 to ``replicas.max``
  jobs, one job per waiting item (``accurate`` strategy counts running jobs), gradual rollouts that never kill
  a running job, kept history of successful and failed jobs.

Every object depends on the KEDA release (its CRDs) and on the workload it scales. A ScaledObject sets
``cooldownPeriod`` only with ``replicas.min: 0``, the only case where KEDA uses it (the wait before scaling to zero);
a ScaledJob has no such field.

Outputs: ``kind`` (``hpa``, ``scaledobject`` or ``scaledjob``) and ``object`` (the Kubernetes resource).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.cache import Cache
from components.config import ServiceConfig
from components.service import Service, labels
from components.upstream import KEDA_COOLDOWN_ONLY_AT_MIN_REPLICAS

POLLING_SECONDS = 30
COOLDOWN_SECONDS = 300
#: RequestCountPerTarget is summed per minute (metricStatPeriod) over the last two minutes (metricCollectionTime)
#: and KEDA takes the newest sum. Ending the window a minute early skips the minute that has just ended, which
#: CloudWatch may still be filling in (upstream.KEDA_CLOUDWATCH_DEFAULTS: the offset defaults to 0).
CLOUDWATCH_PERIOD_SECONDS = 60
CLOUDWATCH_COLLECTION_SECONDS = 2 * CLOUDWATCH_PERIOD_SECONDS
CLOUDWATCH_END_OFFSET_SECONDS = CLOUDWATCH_PERIOD_SECONDS


def hpa_behavior() -> dict[str, Any]:
    """Scale up fast (double or +2 pods every 30 s), down slowly (half every minute after 5 quiet minutes)."""
    return {
        "scaleUp": {
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Percent", "value": 100, "periodSeconds": 30},
                {"type": "Pods", "value": 2, "periodSeconds": 30},
            ],
        },
        "scaleDown": {
            "stabilizationWindowSeconds": COOLDOWN_SECONDS,
            "selectPolicy": "Min",
            "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
        },
    }


def hpa_spec(service: str, cfg: ServiceConfig) -> dict[str, Any]:
    scale = cfg.scale_on
    assert scale is not None
    resource, target = ("cpu", scale.cpu) if scale.cpu is not None else ("memory", scale.memory)
    return {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": service},
        "minReplicas": cfg.replicas.min,
        "maxReplicas": cfg.replicas.max,
        "metrics": [
            {
                "type": "Resource",
                "resource": {"name": resource, "target": {"type": "Utilization", "averageUtilization": target}},
            }
        ],
        "behavior": hpa_behavior(),
    }


def cloudwatch_trigger(target_group_suffix: str, requests_per_minute: int, region: str, auth: str) -> dict[str, Any]:
    """RequestCountPerTarget of one target group, summed over a minute: N is the per-replica target."""
    return {
        "type": "aws-cloudwatch",
        "name": "requests-per-target",
        # The metric is already per target: "Value" makes the HPA compute replicas x metric / target (the
        # default AverageValue would divide the per-target figure again and ignore the replica count).
        "metricType": "Value",
        "authenticationRef": {"name": auth},
        "metadata": {
            "namespace": "AWS/ApplicationELB",
            "metricName": "RequestCountPerTarget",
            "dimensionName": "TargetGroup",
            "dimensionValue": target_group_suffix,
            "metricStat": "Sum",
            "metricStatPeriod": str(CLOUDWATCH_PERIOD_SECONDS),
            "metricCollectionTime": str(CLOUDWATCH_COLLECTION_SECONDS),
            "metricEndTimeOffset": str(CLOUDWATCH_END_OFFSET_SECONDS),
            "targetMetricValue": str(requests_per_minute),
            "minMetricValue": "0",
            "awsRegion": region,
        },
    }


def redis_trigger(
    endpoint: str, port: int, cluster_mode: bool, list_name: str, length: int, auth: str
) -> dict[str, Any]:
    address_key = "addresses" if cluster_mode else "address"
    return {
        "type": "redis-cluster" if cluster_mode else "redis",
        "name": "queue-length",
        "authenticationRef": {"name": auth},
        "metadata": {
            address_key: f"{endpoint}:{port}",
            "listName": list_name,
            "listLength": str(length),
            "enableTLS": "true",
        },
    }


def cpu_trigger(utilization: int) -> dict[str, Any]:
    return {"type": "cpu", "name": "cpu-floor", "metricType": "Utilization", "metadata": {"value": str(utilization)}}


def trigger_auth_cloudwatch() -> dict[str, Any]:
    return {"podIdentity": {"provider": "aws"}}


def trigger_auth_redis(secret_arn: str, region: str) -> dict[str, Any]:
    return {
        "awsSecretManager": {
            "podIdentity": {"provider": "aws"},
            "region": region,
            "secrets": [{"parameter": "password", "name": secret_arn, "secretKey": "authToken"}],
        }
    }


class Scaling(pulumi.ComponentResource):
    """The autoscaling object of one service."""

    kind: str
    object: pulumi.CustomResource

    def __init__(
        self,
        name: str,
        config: ServiceConfig,
        *,
        service: str,
        namespace: str,
        region: str,
        workload: Service,
        keda: pulumi.Resource,
        target_group: aws.lb.TargetGroup | None = None,
        caches: Mapping[str, Cache] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``config``: the service's ``keel:services`` entry (its ``replicas`` and ``scaleOn``); ``service``: its
        name (the Deployment's, the pods' label); ``namespace``, ``region``: where it runs. ``workload``: the
        Service it sizes; ``keda``: the KEDA release its objects wait for. ``target_group``: the service's ALB target
        group (``requestsPerMinute``). ``caches``: the stack's caches by name (``queue`` triggers; None: none)."""
        super().__init__("keel:scaling:Scaling", name, None, opts)
        caches = caches or {}
        scale = config.scale_on
        assert scale is not None  # Platform creates a Scaling only for services with scaleOn
        after = [keda, workload]
        meta: Any = {"name": service, "namespace": namespace, "labels": labels(service)}
        keda_opts = pulumi.ResourceOptions(parent=self, depends_on=after)

        if scale.requests_per_minute is None and scale.queue is None:
            self.kind = "hpa"
            spec: Any = hpa_spec(service, config)
            self.object = k8s.autoscaling.v2.HorizontalPodAutoscaler(
                name, metadata=meta, spec=spec, opts=pulumi.ResourceOptions(parent=self, depends_on=[workload])
            )
            self.register_outputs({"kind": self.kind})
            return

        triggers: list[pulumi.Input[Any]] = []
        if scale.requests_per_minute is not None:
            assert target_group is not None  # config validation: requestsPerMinute needs ingress
            auth = f"{service}-aws"
            self._trigger_auth(f"{name}-aws", auth, namespace, trigger_auth_cloudwatch(), keda_opts)
            triggers.append(
                target_group.arn_suffix.apply(
                    lambda suffix: cloudwatch_trigger(suffix, scale.requests_per_minute or 0, region, auth)
                )
            )
        if scale.queue is not None:
            cache = caches[scale.queue.cache]
            auth = f"{service}-redis"
            queue = scale.queue
            self._trigger_auth(
                f"{name}-redis",
                auth,
                namespace,
                cache.auth_secret_arn.apply(lambda arn: trigger_auth_redis(arn, region)),
                keda_opts,
            )
            triggers.append(
                cache.endpoint.apply(
                    lambda host: redis_trigger(host, cache.port, cache.cluster_mode, queue.list, queue.length, auth)
                )
            )
        if scale.cpu is not None:
            triggers.append(cpu_trigger(scale.cpu))

        if config.kind == "job":
            self.kind = "scaledjob"
            job_spec: Any = {
                "jobTargetRef": {
                    "parallelism": 1,
                    "completions": 1,
                    "backoffLimit": config.backoff_limit,
                    "template": workload.pod_template,
                },
                "pollingInterval": POLLING_SECONDS,
                "minReplicaCount": config.replicas.min,
                "maxReplicaCount": config.replicas.max,
                "successfulJobsHistoryLimit": 3,
                "failedJobsHistoryLimit": 5,
                "scalingStrategy": {"strategy": "accurate"},
                "rollout": {"strategy": "gradual"},
                "triggers": triggers,
            }
            self.object = k8s.apiextensions.CustomResource(
                name, api_version="keda.sh/v1alpha1", kind="ScaledJob", metadata=meta, spec=job_spec, opts=keda_opts
            )
        else:
            self.kind = "scaledobject"
            object_spec: Any = {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": service},
                "minReplicaCount": config.replicas.min,
                "maxReplicaCount": config.replicas.max,
                "pollingInterval": POLLING_SECONDS,
                "advanced": {"horizontalPodAutoscalerConfig": {"behavior": hpa_behavior()}},
                "triggers": triggers,
            }
            if config.replicas.min == KEDA_COOLDOWN_ONLY_AT_MIN_REPLICAS.value:
                # the wait before scaling to zero; above zero the HPA's scale-down window paces scale-in
                object_spec["cooldownPeriod"] = COOLDOWN_SECONDS
            self.object = k8s.apiextensions.CustomResource(
                name,
                api_version="keda.sh/v1alpha1",
                kind="ScaledObject",
                metadata=meta,
                spec=object_spec,
                opts=keda_opts,
            )
        self.register_outputs({"kind": self.kind})

    def _trigger_auth(
        self, name: str, auth: str, namespace: str, spec: Any, opts: pulumi.ResourceOptions
    ) -> k8s.apiextensions.CustomResource:
        return k8s.apiextensions.CustomResource(
            name,
            api_version="keda.sh/v1alpha1",
            kind="TriggerAuthentication",
            metadata={"name": auth, "namespace": namespace},
            spec=spec,
            opts=opts,
        )
