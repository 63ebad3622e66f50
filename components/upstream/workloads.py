"""Facts about what Kubernetes, the AWS Load Balancer Controller, KEDA and OpenTelemetry do with keel's workloads."""

from __future__ import annotations

from components.upstream.base import Fact, Source

# The load balancer controller's code at the app version of its chart (1.17.1, app v2.17.1), and the chart as
# aws/eks-charts released it (the same files are the controller repository's helm/ folder at v2.17.1).
_LBC = "kubernetes-sigs/aws-load-balancer-controller"
_LBC_VERSION = "v2.17.1"
_LBC_CHART = "aws/eks-charts"
_LBC_CHART_VERSION = "9639b8b"  # "aws-load-balancer-controller: v2.17.1 (#1292)": eks-charts tags no chart versions
_LBC_CHART_PATH = "stable/aws-load-balancer-controller"
# KEDA's code at the app version of its chart (keda 2.20.2, app 2.20.2), and its docs for that minor.
_KEDA = "kedacore/keda"
_KEDA_VERSION = "v2.20.2"
_KEDA_DOCS = "kedacore/keda-docs@a55c5d3 content/docs/2.20"

#: The namespace label (key, value) that makes the load balancer controller's pod mutating webhook
#: (``mpod.elbv2.k8s.aws``) see a namespace's pods: its namespaceSelector is ``key In [value]``.
LB_READINESS_GATE_LABEL: Fact[tuple[str, str]] = Fact(
    ("elbv2.k8s.aws/pod-readiness-gate-inject", "enabled"),
    Source(_LBC_CHART, _LBC_CHART_VERSION, f"{_LBC_CHART_PATH}/templates/webhook.yaml", 31),
    f"the value 'enabled' is line 34; {_LBC}@{_LBC_VERSION} docs/deploy/pod_readiness_gate.md:6 says the same",
)
#: The webhook injects a target-health readiness gate only for TargetGroupBindings of this target type (and only
#: into pods the binding's Service selects): a new pod is Ready only once its target is healthy in the ALB.
LB_READINESS_GATE_TARGET_TYPE: Fact[str] = Fact(
    "ip", Source(_LBC, _LBC_VERSION, "pkg/inject/pod_readiness/pod_readiness_gate.go", 73)
)
#: ``--enable-pod-readiness-gate-inject`` defaults to true; the chart passes the flag only when
#: ``enablePodReadinessGateInject`` is set (the chart's templates/deployment.yaml:88), which keel leaves unset.
LB_READINESS_GATE_INJECT_DEFAULT: Fact[bool] = Fact(
    True, Source(_LBC, _LBC_VERSION, "pkg/inject/pod_readiness/pod_readiness_gate_config.go", 14)
)
#: The pod webhook's failurePolicy (chart value ``podMutatorWebhookConfig.failurePolicy``): with the controller
#: down, pods of the labelled namespace are still created, only without the gate.
LB_POD_WEBHOOK_FAILURE_POLICY: Fact[str] = Fact(
    "Ignore", Source(_LBC_CHART, _LBC_CHART_VERSION, f"{_LBC_CHART_PATH}/values.yaml", 473)
)
#: How long endpoint removal takes to propagate after a pod starts terminating, as AWS's EKS guide sizes the
#: preStop sleep for it; the load balancer controller learns of it through the same EndpointSlice watch and then
#: calls the ELB API to deregister the target (lines 363-369), so the ALB keeps sending new requests meanwhile.
ENDPOINT_PROPAGATION_SECONDS: Fact[int] = Fact(
    10,
    Source("aws/aws-eks-best-practices", "dc0243a", "latest/bpg/networking/loadbalancing.adoc", 357),
    "the guide's example (`sleep 10`); no upstream bound exists, it depends on API server and ELB API load",
)
#: The container lifecycle handler that sleeps in the kubelet (``lifecycle.preStop.sleep.seconds``): no shell or
#: ``sleep`` binary needed in the image.
PRESTOP_SLEEP_HANDLER: Fact[str] = Fact(
    "sleep", Source("kubernetes/api", "kubernetes-1.33.0", "core/v1/types.go", 2980)
)
#: The Kubernetes minor from which the ``PodLifecycleSleepAction`` gate is on by default (beta; GA in 1.34).
SLEEP_ACTION_ON_BY_DEFAULT_SINCE: Fact[str] = Fact(
    "1.30",
    Source("kubernetes/enhancements", "64765b4", "keps/sig-node/3960-pod-lifecycle-sleep-action/kep.yaml", 29),
    "stable: v1.34 (line 30); kubernetes/kubernetes pkg/features/kube_features.go lists 1.30 Beta default true",
)
#: The grace period counts from before the preStop hook runs: preStop time is spent out of
#: terminationGracePeriodSeconds, and API validation refuses a sleep longer than the grace period
#: (kubernetes/enhancements keps/sig-node/4818-allow-zero-value-for-sleep-action-of-prestop-hook/README.md:120).
GRACE_PERIOD_INCLUDES_PRESTOP: Fact[bool] = Fact(
    True, Source("kubernetes/api", "kubernetes-1.33.0", "core/v1/types.go", 3068)
)
#: The OpenTelemetry Prometheus exporter's default port, where keel's services serve ``/metrics``.
OTEL_PROMETHEUS_PORT: Fact[int] = Fact(
    9464,
    Source(
        "open-telemetry/opentelemetry-specification",
        "v1.60.0",
        "specification/metrics/sdk_exporters/prometheus.md",
        118,
    ),
)
#: The exporter binds ``localhost`` by default, where Prometheus cannot reach it.
OTEL_PROMETHEUS_HOST_DEFAULT: Fact[str] = Fact(
    "localhost",
    Source(
        "open-telemetry/opentelemetry-specification",
        "v1.60.0",
        "specification/metrics/sdk_exporters/prometheus.md",
        110,
    ),
)
#: The environment variables (host, port) an OpenTelemetry SDK reads for its Prometheus exporter.
OTEL_PROMETHEUS_ENV: Fact[tuple[str, str]] = Fact(
    ("OTEL_EXPORTER_PROMETHEUS_HOST", "OTEL_EXPORTER_PROMETHEUS_PORT"),
    Source(
        "open-telemetry/opentelemetry-specification",
        "v1.60.0",
        "specification/configuration/sdk-environment-variables.md",
        234,
    ),
    "status Development; the port is line 235",
)
#: KEDA's ``aws-cloudwatch`` trigger defaults, in seconds. The query window ends at now - metricEndTimeOffset,
#: truncated to metricStatPeriod, starts metricCollectionTime before that (line 186), and the newest datapoint
#: wins (ScanByTimestampDescending, line 226): with offset 0 that is the minute that has just ended, which
#: CloudWatch may not have complete yet (KEDA's docs: "the latest datapoint ... might not be accurate").
KEDA_CLOUDWATCH_DEFAULTS: Fact[dict[str, int]] = Fact(
    {"metricCollectionTime": 300, "metricStatPeriod": 300, "metricEndTimeOffset": 0},
    Source(_KEDA, _KEDA_VERSION, "pkg/scalers/aws_cloudwatch_scaler.go", 44),
    f"metricStatPeriod line 47, metricEndTimeOffset line 48; docs: {_KEDA_DOCS}/scalers/aws-cloudwatch.md:75",
)
#: KEDA refuses a metricCollectionTime that is not a multiple of metricStatPeriod.
KEDA_CLOUDWATCH_COLLECTION_IS_A_MULTIPLE: Fact[bool] = Fact(
    True, Source(_KEDA, _KEDA_VERSION, "pkg/scalers/aws_cloudwatch_scaler.go", 88)
)
#: The only minReplicaCount at which a ScaledObject's cooldownPeriod does anything (keel sets no
#: idleReplicaCount): it is the wait before scaling to zero; 1 to N is the HPA's. KEDA's admission webhook warns
#: "CooldownPeriod is configured but is not relevant" otherwise. A ScaledJob has no cooldownPeriod field.
KEDA_COOLDOWN_ONLY_AT_MIN_REPLICAS: Fact[int] = Fact(
    0,
    Source(_KEDA, _KEDA_VERSION, "apis/keda/v1alpha1/scaledobject_webhook.go", 352),
    f"docs: {_KEDA_DOCS}/reference/scaledobject-spec.md:91",
)
