"""Kubernetes policies: resources, probes, hardened pods, pinned images, namespaces, tokens, availability, KEDA."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from components.vocabulary import GPU_POOL, GPU_RESOURCE, POOL_LABEL

from ._util import (
    as_list,
    configured,
    dig,
    is_false,
    is_true,
    num,
    number,
    of_type,
    public_cidr,
    resource_policy,
    stack_policy,
    threshold,
)

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
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
NAMESPACE = "kubernetes:core/v1:Namespace"
SERVICE = "kubernetes:core/v1:Service"
BINDINGS = (
    "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
    "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
)
STORAGE_CLASS = "kubernetes:storage.k8s.io/v1:StorageClass"
API_ANNOTATION = "keel.dev/needs-kubernetes-api"
#: Capabilities a restricted pod may add (Kubernetes Pod Security Standards, "Restricted": only NET_BIND_SERVICE).
ADDABLE = ("NET_BIND_SERVICE",)
#: Cluster roles that hand over the cluster or a namespace (Kubernetes "Using RBAC Authorization", user-facing roles).
ADMIN_ROLES = ("cluster-admin", "admin", "edit")
PUBLIC_SUBJECTS = ("system:anonymous", "system:unauthenticated", "system:authenticated")
#: Registries images may come from, by default any account's ECR: each stack's policy config names its own
#: (the accounts that build the images), as prod's and dev's do.
REGISTRIES = ("*.dkr.ecr.*.amazonaws.com",)
_SECRET_ENV = re.compile(r"(PASS|PWD|TOKEN|SECRET|AUTH|API_?KEY|PRIVATE_?KEY|CREDENTIAL)", re.IGNORECASE)
#: A URL carrying a password: ``scheme://user:password@host``.
_URL_CREDENTIALS = re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE)
#: Env names that carry a reference to a secret, not the secret (an ARN, a name, a file path).
_REFERENCE_ENV = re.compile(r"_(ARN|NAME|ID|FILE|PATH|URL|ENDPOINT|REF)$", re.IGNORECASE)
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
        if not is_true(sc.get("runAsNonRoot", pod.get("runAsNonRoot"))):
            yield f"Container {name} must run as non-root (runAsNonRoot)."
        if not is_false(sc.get("allowPrivilegeEscalation")):
            yield f"Container {name} must set allowPrivilegeEscalation: false."
        if "ALL" not in as_list(dig(sc, "capabilities.drop")):
            yield f"Container {name} must drop ALL capabilities."
        if (dig(sc, "seccompProfile.type") or dig(pod, "seccompProfile.type")) not in ("RuntimeDefault", "Localhost"):
            yield f"Container {name} must use the RuntimeDefault seccomp profile."
        if not is_true(sc.get("readOnlyRootFilesystem")):
            yield f"Container {name} must have a read-only root filesystem."
        if is_true(sc.get("privileged")):
            yield f"Container {name} must not be privileged."
        added = [str(a) for a in as_list(dig(sc, "capabilities.add")) if str(a) not in ADDABLE]
        if added:
            yield f"Container {name} must not add capabilities ({', '.join(added)})."
        if sc.get("procMount") not in (None, "Default"):
            yield f"Container {name} must keep the default /proc mask (procMount: Default)."
        apparmor = dig(sc, "appArmorProfile.type") or dig(pod, "appArmorProfile.type")
        if apparmor == "Unconfined":
            yield f"Container {name} must not run AppArmor-unconfined."
        user = num(sc.get("runAsUser", pod.get("runAsUser")), "runAsUser")
        if user == 0:
            yield f"Container {name} must not run as user 0 (root)."


def _pinned(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    digest_only = configured(args, "requireDigest", False) is True
    for c in _containers(args):
        image = str(c.get("image", ""))
        if not _PINNED.search(image.rsplit("/", 1)[-1]):
            yield f"Container {c.get('name')} image {image!r} must be pinned by digest or an immutable tag, not latest."
        elif digest_only and "@sha256:" not in image:
            yield f"Container {c.get('name')} image {image!r} must be pinned by digest (image@sha256:...)."


def _namespace(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if dig(props, "metadata.namespace") in (None, "", "default"):
        yield "Objects must live in an application namespace, not default."


def _token(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    spec = pod_spec(args.resource_type, props)
    if spec is None:
        return
    annotations = dig(props, "metadata.annotations") or {}
    if annotations.get(API_ANNOTATION) == "true":
        return
    if not is_false(spec.get("automountServiceAccountToken")):
        yield (
            f"Pods must not mount a service-account token unless they use the Kubernetes API "
            f"(set automountServiceAccountToken: false, or annotate {API_ANNOTATION}: 'true')."
        )
    projected = [
        str(v.get("name"))
        for v in as_list(spec.get("volumes"))
        if any(s.get("serviceAccountToken") for s in as_list(dig(v, "projected.sources")))
    ]
    if projected:
        yield f"Pods must not mount a service-account token through a projected volume ({', '.join(projected)})."


def _pdb(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    spec = props.get("spec") or {}
    if "maxUnavailable" in spec:
        value = spec["maxUnavailable"]
        if num(value, "maxUnavailable") == 0 or str(value).strip() == "0%":
            yield "maxUnavailable: 0 blocks node drains forever; allow at least one disruption."
    elif str(spec.get("minAvailable")).strip() == "100%":
        yield "minAvailable: 100% blocks node drains forever; allow at least one disruption."


def _spread(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    if args.resource_type != DEPLOYMENT:
        return
    keys = {c.get("topologyKey") for c in as_list(dig(props, "spec.template.spec.topologySpreadConstraints"))}
    if "topology.kubernetes.io/zone" not in keys:
        yield "Replicas must spread over zones (a topologySpreadConstraint on topology.kubernetes.io/zone)."


def _scaling_bounds(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    spec = props.get("spec") or {}
    low = num(spec.get("minReplicas", spec.get("minReplicaCount", 0)), "minimum replicas")
    high = num(spec.get("maxReplicas", spec.get("maxReplicaCount", 100)), "maximum replicas")
    if low is not None and high is not None and low > high:
        yield f"Minimum replicas ({number(low)}) must not exceed the maximum ({number(high)})."


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
    minimum = threshold(args, "minimum", 2)
    exposed = {
        f"{dig(b.props, 'metadata.namespace', '')}/Deployment/{dig(b.props, 'spec.serviceRef.name')}"
        for b in of_type(resources, "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding")
    }
    for scaler in of_type(resources, SCALED_OBJECT, HPA):
        spec = scaler.props.get("spec") or {}
        # Absent, an HPA keeps 1 (autoscaling/v2 default) and a ScaledObject scales to 0 (KEDA's default).
        default = 1 if scaler.resource_type == HPA else 0
        low = num(spec.get("minReplicas", spec.get("minReplicaCount", default)), "minimum replicas")
        if _targets(scaler) in exposed and (low is None or low < minimum):
            yield (
                scaler.urn,
                f"{_targets(scaler)} is exposed and may scale to {number(low)}; keep at least {number(minimum)}.",
            )


def _denies_all_ingress(props: Mapping[str, Any]) -> bool:
    """A default deny: selects every pod of the namespace, governs ingress, and admits nothing."""
    spec = props.get("spec") or {}
    selector = spec.get("podSelector")
    selects_all = (
        isinstance(selector, Mapping) and not selector.get("matchLabels") and not selector.get("matchExpressions")
    )
    return selects_all and "Ingress" in as_list(spec.get("policyTypes")) and not as_list(spec.get("ingress"))


def _network_policies(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    denied = {
        dig(p.props, "metadata.namespace") for p in of_type(resources, NETWORK_POLICY) if _denies_all_ingress(p.props)
    }
    for workload in of_type(resources, *WORKLOADS):
        namespace = dig(workload.props, "metadata.namespace")
        if namespace not in denied:
            yield (
                workload.urn,
                f"Namespace {namespace} runs workloads but has no default-deny NetworkPolicy (podSelector {{}}, "
                "policyTypes [Ingress], no ingress rules).",
            )
            denied.add(namespace)


def _peer_admits_all(peer: Any) -> bool:
    if not isinstance(peer, Mapping) or not peer:
        return True  # an empty peer selects every pod of every namespace and every address
    if public_cidr(dig(peer, "ipBlock.cidr")):
        return True  # internet addresses: only the ALB's subnets reach pods
    namespaces, pods = peer.get("namespaceSelector"), peer.get("podSelector")
    return namespaces is not None and not namespaces and not pods  # every pod of every namespace


def _no_allow_all(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    for i, rule in enumerate(as_list(dig(props, "spec.ingress"))):
        peers = as_list((rule or {}).get("from"))
        if not peers or any(_peer_admits_all(p) for p in peers):
            yield (
                f"Ingress rule {i} admits every source (no 'from', an empty peer, all namespaces or 0.0.0.0/0); "
                "name the pods, namespaces or address ranges."
            )


def _host_access(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    spec = pod_spec(args.resource_type, props) or {}
    shared = [k for k in ("hostNetwork", "hostPID", "hostIPC") if is_true(spec.get(k))]
    if shared:
        yield f"Pods must not share the node's namespaces ({', '.join(shared)})."
    paths = [str(v.get("name")) for v in as_list(spec.get("volumes")) if v.get("hostPath")]
    if paths:
        yield f"Pods must not mount node paths (hostPath volumes: {', '.join(paths)})."
    for c in _containers(args):
        if any(p.get("hostPort") for p in as_list(c.get("ports"))):
            yield f"Container {c.get('name')} must not bind a node port (hostPort)."


def _own_service_account(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    spec = pod_spec(args.resource_type, props)
    if spec is None:
        return
    account = spec.get("serviceAccountName") or spec.get("serviceAccount")
    if not account or account == "default":
        yield "Pods must run under their own service account (serviceAccountName), never the namespace's default."


def _secret_literals(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    for c in _containers(args):
        for env in as_list(c.get("env")):
            name = str(env.get("name", ""))
            secretish = _SECRET_ENV.search(name) and not _REFERENCE_ENV.search(name)
            if "value" in env and (secretish or _URL_CREDENTIALS.match(str(env.get("value") or ""))):
                yield (
                    f"Container {c.get('name')} sets {name} as a literal; a secret comes from a Secret "
                    "(valueFrom.secretKeyRef) or from Secrets Manager at run time, never from the pod spec."
                )


def _trusted_registry(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    allowed = [str(r) for r in configured(args, "registries", list(REGISTRIES))]
    for c in _containers(args):
        image = str(c.get("image", ""))
        first = image.split("/", 1)[0]
        host = first if "/" in image and ("." in first or ":" in first) else "docker.io"
        if not any(fnmatch.fnmatchcase(host, pattern) for pattern in allowed):
            yield f"Container {c.get('name')} pulls from {host}; images come from {', '.join(allowed)}."


def _pod_security(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    name = dig(props, "metadata.name")
    labels = dig(props, "metadata.labels") or {}
    exempt = [str(n) for n in configured(args, "exempt", ["monitoring"])]
    level = labels.get("pod-security.kubernetes.io/enforce")
    if name not in exempt and level != "restricted":
        yield (
            f"Namespace {name} must enforce the restricted Pod Security Standard "
            f"(pod-security.kubernetes.io/enforce: restricted; got {level or 'none'})."
        )


def _cluster_ip(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    kind = dig(props, "spec.type", "ClusterIP")
    if kind in ("LoadBalancer", "NodePort"):
        yield (
            f"Services must be ClusterIP (got {kind}): traffic enters through the ALB and its WAF only "
            "(TargetGroupBinding), never through a load balancer or node port of its own."
        )
    if as_list(dig(props, "spec.externalIPs")):
        yield "Services must not claim externalIPs (CVE-2020-8554: they can intercept other traffic)."


def _admin_bindings(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    role = dig(props, "roleRef.name")
    if role in ADMIN_ROLES:
        yield f"Bindings must not grant {role}; grant a role with the verbs the subject needs."
    public = [str(s.get("name")) for s in as_list(props.get("subjects")) if s.get("name") in PUBLIC_SUBJECTS]
    if public:
        yield f"Bindings must not grant anything to {', '.join(public)}."


def _storage_encrypted(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    if props.get("provisioner") == "ebs.csi.aws.com" and not is_true(dig(props, "parameters.encrypted")):
        yield "EBS volumes must be encrypted (parameters.encrypted: 'true')."
    wanted = configured(args, "reclaimPolicy", "Retain")
    if wanted == "Retain" and props.get("reclaimPolicy", "Delete") != "Retain":
        yield "Volumes must outlive their claim (reclaimPolicy: Retain), so deleting a PVC loses no data."


def _rollout_capacity(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    strategy = dig(props, "spec.strategy") or {}
    if strategy.get("type") == "Recreate":
        yield "Recreate stops every replica before starting new ones; use RollingUpdate."
        return
    value = dig(strategy, "rollingUpdate.maxUnavailable")
    text = str(value).strip() if value is not None else "25%"
    percent = num(text[:-1]) if text.endswith("%") else None
    if (percent is not None and percent > 25) or (percent is None and (num(text) or 0) > 1):
        yield f"A rollout may stop {text} of the replicas at once (maxUnavailable); keep it at 0, 1 or 25% at most."


def _gpu_jobs_fit(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    """A GPU ScaledJob never asks for more GPUs than the GPU pool can hold (each g4dn.xlarge has one)."""
    pool = sum(
        num(dig(g.props, "scalingConfig.maxSize")) or 0
        for g in of_type(resources, "eks:index:ManagedNodeGroup", "aws:eks/nodeGroup:NodeGroup")
        if (g.props.get("labels") or {}).get(POOL_LABEL) == GPU_POOL
    )
    for job in of_type(resources, SCALED_JOB):
        spec = pod_spec(SCALED_JOB, job.props) or {}
        # the resource name holds dots, so it is read from the limits map, not through dig's dotted path
        gpus = sum(
            num((dig(c, "resources.limits") or {}).get(GPU_RESOURCE)) or 0 for c in as_list(spec.get("containers"))
        )
        if not gpus:
            continue
        most = num(dig(job.props, "spec.maxReplicaCount"))
        most = 100.0 if most is None else most  # KEDA's default maxReplicaCount
        if most * gpus > pool:
            yield (
                job.urn,
                f"ScaledJob {job.name} may run {number(most)} jobs of {number(gpus)} GPU(s); the GPU pool holds "
                f"{number(pool)}. Bound maxReplicaCount by the pool (keel:cluster.nodeGroups.gpu.max).",
            )


def _helm_pinned(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    version = str(props.get("version") or "")
    if not re.fullmatch(r"v?\d+\.\d+\.\d+([.-][\w.]+)?", version):
        yield f"Chart {props.get('chart')} must be pinned to an exact version (got {version or 'none'})."
    repo = str(dig(props, "repositoryOpts.repo") or props.get("chart") or "")
    if repo.startswith("http://"):
        yield f"Chart {props.get('chart')} must come over TLS (https:// or oci://), not {repo}."
    floating = sorted(_floating_tags(props.get("values") or {}, ""))
    if floating:
        yield f"Chart {props.get('chart')} values pull floating image tags ({', '.join(floating)}); pin them."


def _floating_tags(values: Any, path: str) -> Iterable[str]:
    """``image.tag: latest`` (or ``image: x:latest``) anywhere in a chart's values."""
    if isinstance(values, Mapping):
        for key, value in values.items():
            here = f"{path}.{key}" if path else str(key)
            if (key == "tag" and str(value).strip() in ("latest", "main", "master") and "image" in path.split(".")) or (
                key == "image" and isinstance(value, str) and value.endswith(":latest")
            ):
                yield here
            else:
                yield from _floating_tags(value, here)
    elif isinstance(values, Sequence) and not isinstance(values, str):
        for i, value in enumerate(values):
            yield from _floating_tags(value, f"{path}.{i}")


def _monitoring_values(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    """kube-prometheus-stack: Grafana's admin from a Secret (the chart's default password is public), and
    Alertmanager's default route reaching a receiver."""
    if props.get("chart") != "kube-prometheus-stack":
        return
    values = props.get("values") or {}
    if dig(values, "grafana.enabled", True) is not False and not dig(values, "grafana.admin.existingSecret"):
        yield "Grafana's admin must come from a Secret (grafana.admin.existingSecret); the chart's default is public."
    route = dig(values, "alertmanager.config.route") or {}
    if dig(values, "alertmanager.enabled", True) is not False and route.get("receiver") in (None, "", "null"):
        yield "Alertmanager's default route must reach a receiver (alertmanager.config.route.receiver), not null."


def _alert_rules(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    """With Prometheus in the stack, the services' alert rules are there too (latency, errors, restarts)."""
    releases = [
        r
        for r in of_type(resources, "kubernetes:helm.sh/v3:Release")
        if r.props.get("chart") == "kube-prometheus-stack"
    ]
    rules = [
        rule
        for r in of_type(resources, "kubernetes:monitoring.coreos.com/v1:PrometheusRule")
        for group in as_list(dig(r.props, "spec.groups"))
        for rule in as_list(group.get("rules"))
        if rule.get("alert")
    ]
    for release in releases:
        if not rules:
            yield (
                release.urn,
                "Prometheus runs but no PrometheusRule alerts on the services (components/prometheus.py).",
            )


def _pdb_per_deployment(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    budgets = [
        (dig(b.props, "metadata.namespace"), dict(dig(b.props, "spec.selector.matchLabels") or {}))
        for b in of_type(resources, PDB)
    ]
    for deployment in of_type(resources, DEPLOYMENT):
        namespace = dig(deployment.props, "metadata.namespace")
        labels = dict(dig(deployment.props, "spec.template.metadata.labels") or {})
        if not any(ns == namespace and sel and sel.items() <= labels.items() for ns, sel in budgets):
            yield (
                deployment.urn,
                f"Deployment {namespace}/{dig(deployment.props, 'metadata.name')} has no PodDisruptionBudget; "
                "a node drain could take all its replicas at once.",
            )


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
        {"requireDigest": {"type": "boolean", "default": False}},
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
        "Every namespace with workloads has a default-deny ingress NetworkPolicy.",
        Severity.HIGH,
        "Keep the namespace's default-deny-ingress NetworkPolicy (podSelector {}, no ingress rules).",
        _network_policies,
    ),
    resource_policy(
        "kubernetes-network-policy-no-allow-all",
        "No NetworkPolicy rule admits every source.",
        Severity.HIGH,
        "Name the peers of each ingress rule (pods, namespaces, or the ALB's subnets).",
        (NETWORK_POLICY,),
        _no_allow_all,
    ),
    resource_policy(
        "kubernetes-pod-no-host-access",
        "Pods share nothing with their node: network, PID and IPC namespaces, paths, ports.",
        Severity.CRITICAL,
        "Remove hostNetwork/hostPID/hostIPC, hostPath volumes and hostPort.",
        WORKLOADS,
        _host_access,
    ),
    resource_policy(
        "kubernetes-pod-own-service-account",
        "Pods run under their own service account, never default.",
        Severity.HIGH,
        "Set serviceAccountName (components/service.py creates one per service).",
        WORKLOADS,
        _own_service_account,
    ),
    resource_policy(
        "kubernetes-no-secret-literals-in-env",
        "No secret is written into a pod spec.",
        Severity.HIGH,
        "Read the secret from Secrets Manager at run time (its ARN in env) or from a Secret (secretKeyRef).",
        WORKLOADS,
        _secret_literals,
    ),
    resource_policy(
        "kubernetes-image-trusted-registry",
        "Images come from the registries the stack's policy config names (ECR of known accounts).",
        Severity.HIGH,
        "Push the image to ECR (keel:services.<name>.image).",
        WORKLOADS,
        _trusted_registry,
        {"registries": {"type": "array", "items": {"type": "string"}}},
    ),
    resource_policy(
        "kubernetes-namespace-pod-security-restricted",
        "Namespaces enforce the restricted Pod Security Standard (monitoring excepted).",
        Severity.HIGH,
        "Label the namespace pod-security.kubernetes.io/enforce: restricted.",
        (NAMESPACE,),
        _pod_security,
        # monitoring: node-exporter reads the node's /proc and /sys on the host network, which only the
        # privileged level admits; nothing else runs there.
        {"exempt": {"type": "array", "items": {"type": "string"}, "default": ["monitoring"]}},
    ),
    resource_policy(
        "kubernetes-service-cluster-ip-only",
        "Services are internal; traffic enters through the ALB and its WAF only.",
        Severity.CRITICAL,
        "Use type ClusterIP and a TargetGroupBinding.",
        (SERVICE,),
        _cluster_ip,
    ),
    resource_policy(
        "kubernetes-no-admin-role-bindings",
        "No binding grants cluster-admin, admin or edit, or anything to anonymous users.",
        Severity.CRITICAL,
        "Bind a Role with the verbs the subject needs.",
        BINDINGS,
        _admin_bindings,
    ),
    resource_policy(
        "kubernetes-storage-class-encrypted",
        "Storage classes create encrypted volumes that outlive their claims.",
        Severity.HIGH,
        "Set parameters.encrypted: 'true' and reclaimPolicy: Retain.",
        (STORAGE_CLASS,),
        _storage_encrypted,
        {"reclaimPolicy": {"type": "string", "enum": ["Retain", "Delete"], "default": "Retain"}},
    ),
    resource_policy(
        "kubernetes-rollout-keeps-capacity",
        "Rollouts keep most replicas serving.",
        Severity.MEDIUM,
        "Use RollingUpdate with maxUnavailable 0 (components/service.py).",
        (DEPLOYMENT,),
        _rollout_capacity,
    ),
    stack_policy(
        "kubernetes-gpu-jobs-fit-the-pool",
        "GPU jobs never outnumber the GPU pool.",
        Severity.MEDIUM,
        "Keep the ScaledJob's maxReplicaCount within the GPU node group's max.",
        _gpu_jobs_fit,
    ),
    resource_policy(
        "kubernetes-helm-release-pinned",
        "Helm charts are pinned to an exact version and fetched over TLS.",
        Severity.HIGH,
        "Set an exact chart version and an https:// or oci:// repository.",
        ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart"),
        _helm_pinned,
    ),
    resource_policy(
        "kubernetes-monitoring-stack-safe-defaults",
        "Grafana's admin comes from a Secret and Alertmanager routes alerts somewhere.",
        Severity.HIGH,
        "Keep grafana.admin.existingSecret and the alerts-topic receiver (components/prometheus.py).",
        ("kubernetes:helm.sh/v3:Release", "kubernetes:helm.sh/v4:Chart"),
        _monitoring_values,
    ),
    stack_policy(
        "kubernetes-service-alert-rules-present",
        "Where Prometheus runs, alert rules watch the services.",
        Severity.MEDIUM,
        "Keep the keel PrometheusRule (components/prometheus.py).",
        _alert_rules,
    ),
    stack_policy(
        "kubernetes-deployment-has-disruption-budget",
        "Every Deployment has a PodDisruptionBudget.",
        Severity.MEDIUM,
        "components/service.py creates one per service; keep it.",
        _pdb_per_deployment,
    ),
]
