"""Facts about the Helm charts keel installs, read at the versions it pins."""

from __future__ import annotations

from typing import Any

from components.upstream.base import Fact, Source

# Each chart's facts are read at the chart version keel pins (components.addons.CHARTS, components.prometheus.
# PROMETHEUS_CHART; grafana at the version kube-prometheus-stack pins), or in the application's own repository at the
# chart's appVersion. CHART_FACTS groups them by chart; tests/test_observability.py checks both rules.

_KPS_REPO = "prometheus-community/helm-charts"
_KPS_TAG = "kube-prometheus-stack-88.5.3"
_KPS_DIR = "charts/kube-prometheus-stack"
_KPS_RULES = f"{_KPS_DIR}/templates/prometheus/rules-1.14"
_GRAFANA_REPO = "grafana-community/helm-charts"
_GRAFANA_TAG = "grafana-12.11.1"
_KEDA_CHART_REPO = "kedacore/charts"
_KEDA_CHART_TAG = "v2.20.2"
_NVDP_REPO = "NVIDIA/k8s-device-plugin"
_NVDP_TAG = "v0.18.2"
_NVDP_DIR = "deployments/helm/nvidia-device-plugin"
_CA_REPO = "kubernetes/autoscaler"
_CA_TAG = "cluster-autoscaler-chart-9.59.0"
_CA_DIR = "cluster-autoscaler/charts/cluster-autoscaler"
_LBC_CHART_REPO = "aws/eks-charts"
_LBC_CHART_COMMIT = "9639b8b69c99164b1f09af63427f8046b0634f35"  # "aws-load-balancer-controller: v2.17.1 (#1292)"
_LBC_CHART_DIR = "stable/aws-load-balancer-controller"

# kube-prometheus-stack

KPS_CHART_VERSION: Fact[str] = Fact("88.5.3", Source(_KPS_REPO, _KPS_TAG, f"{_KPS_DIR}/Chart.yaml", 31))
#: prometheus-operator's version.
KPS_APP_VERSION: Fact[str] = Fact("v0.93.1", Source(_KPS_REPO, _KPS_TAG, f"{_KPS_DIR}/Chart.yaml", 33))
#: The grafana subchart (from grafana-community/helm-charts, name at line 62) this chart version pins.
KPS_GRAFANA_CHART_VERSION: Fact[str] = Fact("12.11.1", Source(_KPS_REPO, _KPS_TAG, f"{_KPS_DIR}/Chart.yaml", 63))
#: Control-plane monitors, each (values key, default). On EKS the control plane is managed: no Service or pod of
#: the cluster exposes kube-controller-manager, kube-scheduler or etcd, so their targets never come up.
KPS_KUBE_CONTROLLER_MANAGER: Fact[tuple[str, bool]] = Fact(
    ("kubeControllerManager.enabled", True),
    Source(_KPS_REPO, _KPS_TAG, f"{_KPS_DIR}/values.yaml", 2025),
    "gates its Service and ServiceMonitor (templates/exporters/kube-controller-manager/*.yaml:1)",
)
KPS_KUBE_SCHEDULER: Fact[tuple[str, bool]] = Fact(
    ("kubeScheduler.enabled", True),
    Source(_KPS_REPO, _KPS_TAG, f"{_KPS_DIR}/values.yaml", 2440),
    "gates its Service and ServiceMonitor (templates/exporters/kube-scheduler/*.yaml:1)",
)
KPS_KUBE_ETCD: Fact[tuple[str, bool]] = Fact(
    ("kubeEtcd.enabled", True),
    Source(_KPS_REPO, _KPS_TAG, f"{_KPS_DIR}/values.yaml", 2326),
    "gates its Service and ServiceMonitor (templates/exporters/kube-etcd/*.yaml:1)",
)
#: kube-proxy's monitor scrapes each node's :10249. EKS's kube-proxy add-on binds its metrics to 127.0.0.1:10249
#: (kube-proxy's own default, kubernetes/kubernetes pkg/proxy/apis/config/v1alpha1/defaults.go getDefaultAddresses;
#: eksctl-io/eksctl#4081 shows the add-on's kube-proxy-config ConfigMap), out of Prometheus' reach.
KPS_KUBE_PROXY: Fact[tuple[str, bool]] = Fact(
    ("kubeProxy.enabled", True),
    Source(_KPS_REPO, _KPS_TAG, f"{_KPS_DIR}/values.yaml", 2579),
    "gates its Service and ServiceMonitor (templates/exporters/kube-proxy/*.yaml:1)",
)
#: The default rule groups that alert on those targets are rendered only while the component is enabled (the
#: template's condition, line 7, ANDs it with defaultRules.rules.<group>): turning the component off is enough.
KPS_RULES_CONTROLLER_MANAGER: Fact[str] = Fact(
    "kubeControllerManager.enabled",
    Source(_KPS_REPO, _KPS_TAG, f"{_KPS_RULES}/kubernetes-system-controller-manager.yaml", 7),
    "KubeControllerManagerDown; with defaultRules.rules.kubeControllerManager",
)
KPS_RULES_SCHEDULER_ALERTING: Fact[str] = Fact(
    "kubeScheduler.enabled",
    Source(_KPS_REPO, _KPS_TAG, f"{_KPS_RULES}/kubernetes-system-scheduler.yaml", 7),
    "KubeSchedulerDown; with defaultRules.rules.kubeSchedulerAlerting",
)
KPS_RULES_SCHEDULER_RECORDING: Fact[str] = Fact(
    "kubeScheduler.enabled",
    Source(_KPS_REPO, _KPS_TAG, f"{_KPS_RULES}/kube-scheduler.rules.yaml", 7),
    "with defaultRules.rules.kubeSchedulerRecording",
)
KPS_RULES_ETCD: Fact[str] = Fact(
    "kubeEtcd.enabled",
    Source(_KPS_REPO, _KPS_TAG, f"{_KPS_RULES}/etcd.yaml", 7),
    "etcdMembersDown, etcdInsufficientMembers, ...; with defaultRules.rules.etcd",
)
KPS_RULES_KUBE_PROXY: Fact[str] = Fact(
    "kubeProxy.enabled",
    Source(_KPS_REPO, _KPS_TAG, f"{_KPS_RULES}/kubernetes-system-kube-proxy.yaml", 7),
    "KubeProxyDown; with defaultRules.rules.kubeProxy",
)
#: The label (key, value) of the Prometheus pods (prometheus-operator's StatefulSet): the chart's own Service
#: selects them by it.
KPS_PROMETHEUS_POD_LABEL: Fact[tuple[str, str]] = Fact(
    ("app.kubernetes.io/name", "prometheus"),
    Source(_KPS_REPO, _KPS_TAG, f"{_KPS_DIR}/templates/prometheus/service.yaml", 77),
    "prometheus-operator v0.93.0 pkg/prometheus/server/operator.go:61 sets the same value",
)

# grafana (kube-prometheus-stack's subchart, values under `grafana:`)

GRAFANA_CHART_VERSION: Fact[str] = Fact("12.11.1", Source(_GRAFANA_REPO, _GRAFANA_TAG, "charts/grafana/Chart.yaml", 3))
GRAFANA_APP_VERSION: Fact[str] = Fact("13.2.0", Source(_GRAFANA_REPO, _GRAFANA_TAG, "charts/grafana/Chart.yaml", 5))
#: (values key, default type) of the Deployment's update strategy, rendered as spec.strategy
#: (templates/deployment.yaml:24). A rolling update starts the new pod before the old one releases its
#: ReadWriteOnce volume (persistence.accessModes, line 496): on another node it never starts.
GRAFANA_DEPLOYMENT_STRATEGY: Fact[tuple[str, str]] = Fact(
    ("deploymentStrategy", "RollingUpdate"),
    Source(_GRAFANA_REPO, _GRAFANA_TAG, "charts/grafana/values.yaml", 79),
    "type: RollingUpdate is line 80",
)
#: (values key, default): with type pvc, persistence makes a PersistentVolumeClaim and Grafana stays a Deployment
#: (templates/pvc.yaml:1); a StatefulSet only with type sts/statefulset or useStatefulSet (statefulset.yaml:2).
GRAFANA_PERSISTENCE_TYPE: Fact[tuple[str, str]] = Fact(
    ("persistence.type", "pvc"), Source(_GRAFANA_REPO, _GRAFANA_TAG, "charts/grafana/values.yaml", 490)
)

# keda

KEDA_CHART_VERSION: Fact[str] = Fact("2.20.2", Source(_KEDA_CHART_REPO, _KEDA_CHART_TAG, "keda/Chart.yaml", 11))
KEDA_APP_VERSION: Fact[str] = Fact("2.20.2", Source(_KEDA_CHART_REPO, _KEDA_CHART_TAG, "keda/Chart.yaml", 15))
#: The name of the operator container's Prometheus metrics port, rendered only when the value below is on (line 145).
KEDA_METRICS_PORT: Fact[str] = Fact(
    "metrics", Source(_KEDA_CHART_REPO, _KEDA_CHART_TAG, "keda/templates/manager/deployment.yaml", 147)
)
#: (values key, default) that serves the operator's metrics (on prometheus.operator.port, 8080, line 738).
KEDA_OPERATOR_METRICS: Fact[tuple[str, bool]] = Fact(
    ("prometheus.operator.enabled", False), Source(_KEDA_CHART_REPO, _KEDA_CHART_TAG, "keda/values.yaml", 736)
)
#: The operator pod's label (key, value): ``app: {{ .Values.operator.name }}``, operator.name keda-operator.
KEDA_OPERATOR_POD_LABEL: Fact[tuple[str, str]] = Fact(
    ("app", "keda-operator"),
    Source(_KEDA_CHART_REPO, _KEDA_CHART_TAG, "keda/templates/manager/deployment.yaml", 28),
    "operator.name defaults to keda-operator at keda/values.yaml:88",
)
#: The operator's per-scaler error counter (namespace keda, metricscollectors.go:33; subsystem scaler), with the
#: labels namespace, metric, scaledObject, scaler, triggerIndex, type (line 35).
KEDA_SCALER_ERRORS_METRIC: Fact[str] = Fact(
    "keda_scaler_detail_errors_total", Source("kedacore/keda", "v2.20.2", "pkg/metricscollector/prommetrics.go", 84)
)

# nvidia-device-plugin

NVIDIA_DEVICE_PLUGIN_CHART_VERSION: Fact[str] = Fact(
    "0.18.2", Source(_NVDP_REPO, _NVDP_TAG, f"{_NVDP_DIR}/Chart.yaml", 5)
)
NVIDIA_DEVICE_PLUGIN_APP_VERSION: Fact[str] = Fact(
    "0.18.2", Source(_NVDP_REPO, _NVDP_TAG, f"{_NVDP_DIR}/Chart.yaml", 6)
)
#: The default affinity (line 64) requires one of three nodeSelectorTerms (ORed): two node-feature-discovery labels
#: (lines 70, 76) or this (label, value), so a node keel labels with it qualifies without NFD.
NVIDIA_DEVICE_PLUGIN_AFFINITY_LABEL: Fact[tuple[str, str]] = Fact(
    ("nvidia.com/gpu.present", "true"),
    Source(_NVDP_REPO, _NVDP_TAG, f"{_NVDP_DIR}/values.yaml", 82),
    "a user's `affinity: {}` does not clear it: Helm merges a user table into the chart's default table and only "
    "null removes a default (helm/helm pkg/chartutil/coalesce.go, coalesceTablesFullKey)",
)

# cluster-autoscaler

CLUSTER_AUTOSCALER_CHART_VERSION: Fact[str] = Fact("9.59.0", Source(_CA_REPO, _CA_TAG, f"{_CA_DIR}/Chart.yaml", 14))
CLUSTER_AUTOSCALER_APP_VERSION: Fact[str] = Fact(
    "1.35.0",
    Source(_CA_REPO, _CA_TAG, f"{_CA_DIR}/Chart.yaml", 2),
    "keel sets image.tag to the cluster's minor (components.addons.AUTOSCALER_IMAGE)",
)

# aws-load-balancer-controller (aws/eks-charts tags no chart versions: the commit that released 1.17.1)

LB_CONTROLLER_CHART_VERSION: Fact[str] = Fact(
    "1.17.1", Source(_LBC_CHART_REPO, _LBC_CHART_COMMIT, f"{_LBC_CHART_DIR}/Chart.yaml", 4)
)
LB_CONTROLLER_APP_VERSION: Fact[str] = Fact(
    "v2.17.1", Source(_LBC_CHART_REPO, _LBC_CHART_COMMIT, f"{_LBC_CHART_DIR}/Chart.yaml", 5)
)

#: Every fact of this section by chart (as keel names its release): the chart's version first, its appVersion
#: second.
CHART_FACTS: dict[str, tuple[Fact[Any], ...]] = {
    "kube-prometheus-stack": (
        KPS_CHART_VERSION,
        KPS_APP_VERSION,
        KPS_GRAFANA_CHART_VERSION,
        KPS_KUBE_CONTROLLER_MANAGER,
        KPS_KUBE_SCHEDULER,
        KPS_KUBE_ETCD,
        KPS_KUBE_PROXY,
        KPS_RULES_CONTROLLER_MANAGER,
        KPS_RULES_SCHEDULER_ALERTING,
        KPS_RULES_SCHEDULER_RECORDING,
        KPS_RULES_ETCD,
        KPS_RULES_KUBE_PROXY,
        KPS_PROMETHEUS_POD_LABEL,
    ),
    "grafana": (GRAFANA_CHART_VERSION, GRAFANA_APP_VERSION, GRAFANA_DEPLOYMENT_STRATEGY, GRAFANA_PERSISTENCE_TYPE),
    "keda": (
        KEDA_CHART_VERSION,
        KEDA_APP_VERSION,
        KEDA_METRICS_PORT,
        KEDA_OPERATOR_METRICS,
        KEDA_OPERATOR_POD_LABEL,
        KEDA_SCALER_ERRORS_METRIC,
    ),
    "nvidia-device-plugin": (
        NVIDIA_DEVICE_PLUGIN_CHART_VERSION,
        NVIDIA_DEVICE_PLUGIN_APP_VERSION,
        NVIDIA_DEVICE_PLUGIN_AFFINITY_LABEL,
    ),
    "cluster-autoscaler": (CLUSTER_AUTOSCALER_CHART_VERSION, CLUSTER_AUTOSCALER_APP_VERSION),
    "aws-load-balancer-controller": (LB_CONTROLLER_CHART_VERSION, LB_CONTROLLER_APP_VERSION),
}
