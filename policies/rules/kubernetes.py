"""Kubernetes policies: resources, probes, hardened pods, pinned images, namespaces, tokens, availability, KEDA."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from ._util import as_list, dig, of_type, resource_policy, stack_policy

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
WORKLOADS = (
    DEPLOYMENT,
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:apps/v1:DaemonSet",
    "kubernetes:batch/v1:Job",
    "kubernetes:keda.sh/v1alpha1:ScaledJob",
)
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
SCALED_JOB = "kubernetes:keda.sh/v1alpha1:ScaledJob"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
NAMESPACED = (
    *WORKLOADS,
    "kubernetes:core/v1:Service",
    "kubernetes:core/v1:ServiceAccount",
    PDB,
    SCALED_OBJECT,
    HPA,
    "kubernetes:networking.k8s.io/v1:NetworkPolicy",
    "kubernetes:core/v1:ConfigMap",
    "kubernetes:core/v1:Secret",
)
API_ANNOTATION = "keel.dev/needs-kubernetes-api"
_PINNED = re.compile(r"(@sha256:[0-9a-f]{64}$)|(:(?!latest$)[\w][\w.-]*$)")
_SECRETISH = re.compile(r"(password|passwd|token|secret|apikey|api_key)", re.IGNORECASE)


def pod_spec(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    if resource_type == SCALED_JOB:
        return dig(props, "spec.jobTargetRef.template.spec")
    if resource_type in WORKLOADS:
        return dig(props, "spec.template.spec") or dig(props, "spec.jobTemplate.spec.template.spec")
    return None


def _containers(args: ResourceValidationArgs) -> list[Mapping[str, Any]]:
    spec = pod_spec(args.resource_type, args.props) or {}
    return [*as_list(spec.get("initContainers")), *as_list(spec.get("containers"))]


def _resources(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    for c in _containers(args):
        for kind in ("requests", "limits"):
            if not all(dig(c, f"resources.{kind}.{r}") for r in ("cpu", "memory")):
                yield f"Container {c.get('name')} must set cpu and memory {kind}."


def _probes(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    if args.resource_type != DEPLOYMENT:
        return
    for c in _containers(args):
        missing = [p for p in ("readinessProbe", "livenessProbe") if not c.get(p)]
        if missing:
            yield f"Container {c.get('name')} must have {' and '.join(missing)}."


def _hardened(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    spec = pod_spec(args.resource_type, props) or {}
    pod = spec.get("securityContext") or {}
    for c in _containers(args):
        sc = c.get("securityContext") or {}
        name = c.get("name")
        if not (sc.get("runAsNonRoot") or pod.get("runAsNonRoot")):
            yield f"Container {name} must run as non-root (runAsNonRoot)."
        if sc.get("allowPrivilegeEscalation") is not False:
            yield f"Container {name} must set allowPrivilegeEscalation: false."
        if "ALL" not in as_list(dig(sc, "capabilities.drop")):
            yield f"Container {name} must drop ALL capabilities."
        if (dig(sc, "seccompProfile.type") or dig(pod, "seccompProfile.type")) not in ("RuntimeDefault", "Localhost"):
            yield f"Container {name} must use the RuntimeDefault seccomp profile."
        if sc.get("readOnlyRootFilesystem") is not True:
            yield f"Container {name} must have a read-only root filesystem."
        if sc.get("privileged"):
            yield f"Container {name} must not be privileged."


def _pinned(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    for c in _containers(args):
        image = str(c.get("image", ""))
        if not _PINNED.search(image.rsplit("/", 1)[-1]):
            yield f"Container {c.get('name')} image {image!r} must be pinned by digest or an immutable tag, not latest."


def _namespace(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if dig(props, "metadata.namespace") in (None, "", "default"):
        yield "Objects must live in an application namespace, not default."


def _token(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    spec = pod_spec(args.resource_type, props)
    if spec is None:
        return
    annotations = dig(props, "metadata.annotations") or {}
    if spec.get("automountServiceAccountToken") is not False and annotations.get(API_ANNOTATION) != "true":
        yield (
            f"Pods must not mount a service-account token unless they use the Kubernetes API "
            f"(set automountServiceAccountToken: false, or annotate {API_ANNOTATION}: 'true')."
        )


def _pdb(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    spec = props.get("spec") or {}
    if "maxUnavailable" in spec:
        # Numbers reach a pack as protobuf doubles: 0 arrives as 0.0, so compare values, not their text.
        if spec["maxUnavailable"] in (0, "0", "0%"):
            yield "maxUnavailable: 0 blocks node drains forever; allow at least one disruption."
    elif str(spec.get("minAvailable")) == "100%":
        yield "minAvailable: 100% blocks node drains forever; allow at least one disruption."


def _spread(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    if args.resource_type != DEPLOYMENT:
        return
    keys = {c.get("topologyKey") for c in as_list(dig(props, "spec.template.spec.topologySpreadConstraints"))}
    if "topology.kubernetes.io/zone" not in keys:
        yield "Replicas must spread over zones (a topologySpreadConstraint on topology.kubernetes.io/zone)."


def _scaling_bounds(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    spec = props.get("spec") or {}
    low = spec.get("minReplicas", spec.get("minReplicaCount", 0))
    high = spec.get("maxReplicas", spec.get("maxReplicaCount", 100))
    if low is not None and high is not None and int(low) > int(high):
        yield f"Minimum replicas ({int(low)}) must not exceed the maximum ({int(high)})."


def _triggers(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    for trigger in as_list(dig(props, "spec.triggers")):
        metadata = trigger.get("metadata") or {}
        kind = trigger.get("type")
        for key, value in metadata.items():
            if not isinstance(value, str):
                yield f"Trigger {trigger.get('name', kind)} metadata {key} must be a string (KEDA rejects others)."
            if _SECRETISH.search(key) and not key.endswith("FromEnv"):
                yield f"Trigger {trigger.get('name', kind)} puts {key} inline; pass secrets through authenticationRef."
        if kind in ("redis", "redis-cluster", "redis-streams", "redis-cluster-streams"):
            if metadata.get("enableTLS") != "true":
                yield f"Trigger {trigger.get('name', kind)} must connect to Redis over TLS (enableTLS: 'true')."
            if not trigger.get("authenticationRef"):
                yield f"Trigger {trigger.get('name', kind)} must authenticate through an authenticationRef."


def _targets(resource: PolicyResource) -> str:
    ref = dig(resource.props, "spec.scaleTargetRef") or {}
    namespace = dig(resource.props, "metadata.namespace", "")
    return f"{namespace}/{ref.get('kind', 'Deployment')}/{ref.get('name')}"


def _one_scaler(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    keda = {_targets(r) for r in of_type(resources, SCALED_OBJECT)}
    for hpa in of_type(resources, HPA):
        if _targets(hpa) in keda:
            yield hpa.urn, f"{_targets(hpa)} has both an HPA and a ScaledObject; KEDA rejects that. Keep one."


def _no_static_replicas(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    scaled = {_targets(r) for r in of_type(resources, SCALED_OBJECT, HPA)}
    for deployment in of_type(resources, DEPLOYMENT):
        key = f"{dig(deployment.props, 'metadata.namespace', '')}/Deployment/{dig(deployment.props, 'metadata.name')}"
        if key in scaled and dig(deployment.props, "spec.replicas") is not None:
            yield (
                deployment.urn,
                (
                    f"Deployment {key} sets replicas while an autoscaler owns it; every update would "
                    "reset the count. Leave replicas unset."
                ),
            )


def _exposed_min_replicas(resources: Sequence[PolicyResource], args: StackValidationArgs) -> Iterable[tuple[str, str]]:
    minimum = int((args.get_config() or {}).get("minimum", 2))
    exposed = {
        f"{dig(b.props, 'metadata.namespace', '')}/Deployment/{dig(b.props, 'spec.serviceRef.name')}"
        for b in of_type(resources, "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding")
    }
    for scaler in of_type(resources, SCALED_OBJECT, HPA):
        spec = scaler.props.get("spec") or {}
        low = spec.get("minReplicas", spec.get("minReplicaCount"))
        if _targets(scaler) in exposed and low is not None and int(low) < minimum:
            yield scaler.urn, f"{_targets(scaler)} is exposed and may scale to {int(low)}; keep at least {minimum}."


def _network_policies(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    covered = {
        dig(p.props, "metadata.namespace") for p in of_type(resources, "kubernetes:networking.k8s.io/v1:NetworkPolicy")
    }
    for workload in of_type(resources, *WORKLOADS):
        namespace = dig(workload.props, "metadata.namespace")
        if namespace not in covered:
            yield workload.urn, f"Namespace {namespace} runs workloads but has no NetworkPolicy."
            covered.add(namespace)


POLICIES = [
    resource_policy(
        "kubernetes-pod-requests-and-limits",
        "Containers set CPU and memory requests and limits.",
        Severity.MEDIUM,
        "Set keel:services.<name>.resources.",
        WORKLOADS,
        _resources,
    ),
    resource_policy(
        "kubernetes-pod-probes",
        "Servers have readiness and liveness probes.",
        Severity.MEDIUM,
        "Set healthPath; components/service.py adds the probes.",
        WORKLOADS,
        _probes,
    ),
    resource_policy(
        "kubernetes-pod-hardened-security-context",
        "Containers run as non-root, without escalation or capabilities, read-only, with seccomp.",
        Severity.HIGH,
        "Use components/service.py's security context.",
        WORKLOADS,
        _hardened,
    ),
    resource_policy(
        "kubernetes-image-pinned",
        "Images are pinned by digest or an immutable tag.",
        Severity.HIGH,
        "Use image@sha256:... or a release tag.",
        WORKLOADS,
        _pinned,
    ),
    resource_policy(
        "kubernetes-disallow-default-namespace",
        "Nothing runs in the default namespace.",
        Severity.MEDIUM,
        "Set metadata.namespace.",
        NAMESPACED,
        _namespace,
    ),
    resource_policy(
        "kubernetes-no-service-account-token-automount",
        "Pods mount no API token unless they use the Kubernetes API.",
        Severity.MEDIUM,
        "Set automountServiceAccountToken: false.",
        WORKLOADS,
        _token,
    ),
    resource_policy(
        "kubernetes-pdb-allows-disruption",
        "Disruption budgets let nodes drain.",
        Severity.MEDIUM,
        "Use maxUnavailable: 1.",
        (PDB,),
        _pdb,
    ),
    resource_policy(
        "kubernetes-topology-spread",
        "Replicas spread over zones.",
        Severity.LOW,
        "Add topologySpreadConstraints on topology.kubernetes.io/zone.",
        WORKLOADS,
        _spread,
    ),
    resource_policy(
        "kubernetes-scaling-min-below-max",
        "Autoscalers' minimum does not exceed their maximum.",
        Severity.MEDIUM,
        "Fix keel:services.<name>.replicas.",
        (SCALED_OBJECT, SCALED_JOB, HPA),
        _scaling_bounds,
    ),
    resource_policy(
        "keda-trigger-safe-metadata",
        "KEDA trigger metadata is strings, TLS to Redis, secrets only through authenticationRef.",
        Severity.HIGH,
        "Use components/scaling.py's triggers.",
        (SCALED_OBJECT, SCALED_JOB),
        _triggers,
    ),
    stack_policy(
        "keda-no-hpa-and-scaledobject",
        "No workload has both an HPA and a ScaledObject.",
        Severity.HIGH,
        "Keep the ScaledObject (add a cpu trigger) and drop the HPA.",
        _one_scaler,
    ),
    stack_policy(
        "kubernetes-no-static-replicas-when-autoscaled",
        "Autoscaled Deployments leave replicas unset.",
        Severity.MEDIUM,
        "Remove spec.replicas from the Deployment.",
        _no_static_replicas,
    ),
    stack_policy(
        "kubernetes-exposed-min-replicas",
        "Exposed services keep enough replicas to lose one.",
        Severity.MEDIUM,
        "Raise keel:services.<name>.replicas.min.",
        _exposed_min_replicas,
        {"minimum": {"type": "integer", "minimum": 1}},
    ),
    stack_policy(
        "kubernetes-network-policy-per-namespace",
        "Every namespace with workloads has a NetworkPolicy.",
        Severity.MEDIUM,
        "Add a default-deny NetworkPolicy to the namespace.",
        _network_policies,
    ),
]
