"""PrometheusStack: kube-prometheus-stack (Prometheus, Alertmanager, Grafana) with keel's alerting rules and
monitors, installed by :class:`~components.observability.Observability` when ``keel:alerts.prometheus`` is set.

Usage::

    stack = PrometheusStack("keel-prod", cfg.alerts.prometheus, thresholds=cfg.alerts.thresholds,
                            cluster=cluster, topic=topic, topic_key=key, namespace="apps",
                            app_namespace=apps, keda=addons.keda, opts=pulumi.ResourceOptions(parent=watch))
    stack.release        # the kube-prometheus-stack Helm release

Creates (``<n>`` is the component name): ``<n>-gp3-encrypted`` StorageClass (EBS CSI, encrypted gp3, volumes
retained when released), ``<n>-monitoring`` namespace, ``<n>-grafana-admin`` password (pulumi-random) and
Secret, ``<n>-alertmanager`` Pod Identity role (publish to the alerts topic only), ``<n>-kube-prometheus-stack``
release (chart pinned in :data:`PROMETHEUS_CHART`, values from :func:`prometheus_values`) and ``<n>-rules``
PrometheusRule (:func:`prometheus_rules`: p95 latency and error rate with the CloudWatch alarms' thresholds,
pod restarts, KEDA scaler errors); with the application namespace, ``<n>-apps`` PodMonitor (the services'
``metrics`` port) and ``<n>-allow-prometheus`` NetworkPolicy admitting Prometheus (only) to that port; with KEDA,
``<n>-keda`` PodMonitor (the operator's ``metrics`` port).

On EKS the control plane is managed: the chart's kube-controller-manager, kube-scheduler and etcd monitors (and
their rules) are off, and so is kube-proxy's (EKS's kube-proxy serves metrics on 127.0.0.1 only). Grafana's
Deployment is replaced, not rolled, on upgrade: its ReadWriteOnce volume cannot attach to two pods at once.
What these values rely on in the charts is recorded in :mod:`components.upstream` (``KPS_*``, ``GRAFANA_*``,
``KEDA_*``) with its source.

Outputs: ``release``.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import context, upstream
from components.alarms import RUNBOOK
from components.cluster import Cluster
from components.config import PrometheusConfig, ThresholdsConfig
from components.iam import PodIdentityRole, PodIdentityRoleArgs, statement
from components.vocabulary import GENERAL_POOL, GPU_TOLERATION, METRICS_PORT, pool_selector

#: The kube-prometheus-stack chart, pinned. Bump here, re-read the facts components.upstream records for it at the
#: new version (KPS_*, GRAFANA_*: a test fails until their versions match), and run `make test`.
PROMETHEUS_CHART = ("https://prometheus-community.github.io/helm-charts", "kube-prometheus-stack", "88.5.3")
MONITORING_NAMESPACE = "monitoring"
#: The KEDA operator's metrics port, as its chart names it (chart value ``prometheus.operator.enabled``,
#: components/addons.py).
KEDA_METRICS_PORT = upstream.KEDA_METRICS_PORT.value
ALERTMANAGER_SERVICE_ACCOUNT = "alertmanager"


def prometheus_rules(t: ThresholdsConfig, namespace: str) -> list[dict[str, Any]]:
    """Alerting rules on the services' request histogram (``http_request_duration_seconds`` with a
    ``status_code`` label: express-prom-bundle's default; its ``_count`` series counts requests by status), on pod
    restarts (kube-state-metrics) and on KEDA's scaler errors."""
    selector = f'namespace="{namespace}"'
    return [
        {
            "name": "keel.services",
            "rules": [
                {
                    "alert": "KeelRequestLatencyP95High",
                    "expr": (
                        "histogram_quantile(0.95, sum by (service, le) "
                        f"(rate(http_request_duration_seconds_bucket{{{selector}}}[5m]))) > {t.alb_p95_ms / 1000:g}"
                    ),
                    "for": "10m",
                    "labels": {"severity": "warning"},
                    "annotations": {
                        "summary": f"{{{{ $labels.service }}}}: p95 latency above {t.alb_p95_ms} ms",
                        "runbook_url": f"{RUNBOOK}#alb-p95",
                    },
                },
                {
                    "alert": "KeelErrorRateHigh",
                    "expr": (
                        "sum by (service) "
                        f'(rate(http_request_duration_seconds_count{{{selector}, status_code=~"5.."}}[5m])) / '
                        f"sum by (service) (rate(http_request_duration_seconds_count{{{selector}}}[5m])) "
                        f"> {t.alb_error_percent / 100:g}"
                    ),
                    "for": "5m",
                    "labels": {"severity": "critical"},
                    "annotations": {
                        "summary": f"{{{{ $labels.service }}}}: more than {t.alb_error_percent:g}% of requests fail",
                        "runbook_url": f"{RUNBOOK}#alb-5xx-rate",
                    },
                },
                {
                    "alert": "KeelPodRestarting",
                    "expr": f"increase(kube_pod_container_status_restarts_total{{{selector}}}[15m]) > 3",
                    "for": "0m",
                    "labels": {"severity": "warning"},
                    "annotations": {
                        "summary": "{{ $labels.pod }} restarted more than 3 times in 15 minutes",
                        "runbook_url": f"{RUNBOOK}#pod-restarts",
                    },
                },
            ],
        },
        {
            "name": "keel.keda",
            "rules": [
                {
                    "alert": "KedaScalerErrors",
                    "expr": (
                        "sum by (namespace, scaledObject, scaler) (increase(keda_scaler_detail_errors_total[5m])) > 0"
                    ),
                    "for": "5m",
                    "labels": {"severity": "warning"},
                    "annotations": {
                        "summary": "KEDA scaler {{ $labels.scaler }} of {{ $labels.scaledObject }} keeps failing",
                        "runbook_url": f"{RUNBOOK}#keda-scaler-errors",
                    },
                }
            ],
        },
    ]


def prometheus_values(
    cfg: PrometheusConfig, topic_arn: pulumi.Input[str], region: str, grafana_secret: str
) -> dict[str, Any]:
    """kube-prometheus-stack values: persistent encrypted volumes, Alertmanager to the alerts topic, Grafana's
    admin from a Secret and its Deployment recreated on upgrade (its volume is ReadWriteOnce), every rule and
    monitor in the cluster selected, no monitors (nor their rules) for what EKS does not let Prometheus reach
    (controller manager, scheduler, etcd, kube-proxy), and the general pool for everything but node-exporter
    (which runs on every node, GPU ones included)."""
    storage = "gp3-encrypted"

    def claim(gb: int) -> dict[str, Any]:
        return {
            "volumeClaimTemplate": {
                "spec": {
                    "storageClassName": storage,
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": f"{gb}Gi"}},
                }
            }
        }

    general = {"nodeSelector": pool_selector(GENERAL_POOL)}
    return {
        "fullnameOverride": "kps",
        "prometheus": {
            "prometheusSpec": {
                "retention": f"{cfg.retention_days}d",
                "storageSpec": claim(cfg.storage_gb),
                "ruleSelectorNilUsesHelmValues": False,
                "podMonitorSelectorNilUsesHelmValues": False,
                "serviceMonitorSelectorNilUsesHelmValues": False,
                **general,
            }
        },
        "alertmanager": {
            "serviceAccount": {"create": True, "name": ALERTMANAGER_SERVICE_ACCOUNT},
            "alertmanagerSpec": {"storage": claim(cfg.alertmanager_storage_gb), **general},
            "config": {
                "route": {
                    "receiver": "alerts-topic",
                    "group_by": ["alertname", "namespace", "service"],
                    "routes": [{"receiver": "null", "matchers": ['alertname=~"Watchdog|InfoInhibitor"']}],
                },
                "receivers": [
                    {"name": "null"},
                    {
                        "name": "alerts-topic",
                        "sns_configs": [
                            {
                                "topic_arn": topic_arn,
                                "sigv4": {"region": region},
                                "subject": "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }}",
                                "send_resolved": True,
                            }
                        ],
                    },
                ],
            },
        },
        "grafana": {
            "admin": {"existingSecret": grafana_secret, "userKey": "admin-user", "passwordKey": "admin-password"},
            "persistence": {"enabled": True, "storageClassName": storage, "size": f"{cfg.grafana_storage_gb}Gi"},
            # the old pod must release the ReadWriteOnce volume before the new one can mount it
            "deploymentStrategy": {"type": "Recreate"},
            **general,
        },
        # EKS manages the control plane: nothing in the cluster serves these components' metrics
        "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeEtcd": {"enabled": False},
        # EKS's kube-proxy add-on serves metrics on 127.0.0.1:10249 only: KubeProxyDown would fire forever
        "kubeProxy": {"enabled": False},
        "prometheusOperator": general,
        "kube-state-metrics": general,
        "prometheus-node-exporter": {"tolerations": [GPU_TOLERATION]},
    }


class PrometheusStack(pulumi.ComponentResource):
    """kube-prometheus-stack with keel's alerting rules and monitors, configured by ``keel:alerts.prometheus``.

    Creates ``<n>-gp3-encrypted`` StorageClass (EBS CSI, encrypted gp3, volumes retained when released),
    ``<n>-monitoring`` namespace, ``<n>-grafana-admin`` password (pulumi-random) and Secret,
    ``<n>-alertmanager`` Pod Identity role (publish to the alerts topic only), ``<n>-kube-prometheus-stack``
    release and ``<n>-rules`` PrometheusRule; with the application namespace, ``<n>-apps`` PodMonitor and
    ``<n>-allow-prometheus`` NetworkPolicy admitting Prometheus (only) to the application pods; with KEDA,
    ``<n>-keda`` PodMonitor. Each waits for the release (its CRDs) and for the namespace it lives in.

    ``config`` is the ``keel:alerts.prometheus`` section (retention, volume sizes). Keyword parameters:

    - ``thresholds``: the same latency and error thresholds the CloudWatch alarms use (``keel:alerts.thresholds``).
    - ``cluster``: the cluster it runs in (its Kubernetes provider, name and ARN, its first node group).
    - ``topic``: the alerts topic Alertmanager publishes to.
    - ``topic_key``: the alerts topic's key: Alertmanager may use it through SNS. None: the topic is not
      encrypted with a customer-managed key.
    - ``namespace``: the application namespace the rules and the pod monitor watch.
    - ``app_namespace``: that namespace's resource. None: no services, so no pod monitor and no NetworkPolicy.
    - ``keda``: the KEDA release. None: no KEDA pod monitor.
    """

    release: k8s.helm.v3.Release

    def __init__(
        self,
        name: str,
        config: PrometheusConfig,
        *,
        thresholds: ThresholdsConfig,
        cluster: Cluster,
        topic: aws.sns.Topic,
        topic_key: aws.kms.Key | None = None,
        namespace: str = "apps",
        app_namespace: k8s.core.v1.Namespace | None = None,
        keda: k8s.helm.v3.Release | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("keel:observability:PrometheusStack", name, None, opts)
        ctx = context.lookup(pulumi.InvokeOptions(parent=self))
        kube = pulumi.ResourceOptions(parent=self, provider=cluster.k8s_provider)
        storage = k8s.storage.v1.StorageClass(
            f"{name}-gp3-encrypted",
            metadata={"name": "gp3-encrypted"},
            provisioner="ebs.csi.aws.com",
            parameters={"type": "gp3", "encrypted": "true"},
            reclaim_policy="Retain",
            volume_binding_mode="WaitForFirstConsumer",
            allow_volume_expansion=True,
            opts=kube,
        )
        monitoring = k8s.core.v1.Namespace(
            f"{name}-{MONITORING_NAMESPACE}",
            metadata={
                "name": MONITORING_NAMESPACE,
                # node-exporter needs the host's network and PID namespaces: privileged is enforced, the
                # restricted profile still warns and audits everything else.
                "labels": {
                    "pod-security.kubernetes.io/enforce": "privileged",
                    "pod-security.kubernetes.io/audit": "restricted",
                    "pod-security.kubernetes.io/warn": "restricted",
                },
            },
            opts=kube,
        )
        in_namespace = pulumi.ResourceOptions.merge(kube, pulumi.ResourceOptions(depends_on=[monitoring]))
        password = random.RandomPassword(
            f"{name}-grafana-admin", length=32, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        secret = k8s.core.v1.Secret(
            f"{name}-grafana-admin",
            metadata={"name": "grafana-admin", "namespace": MONITORING_NAMESPACE},
            string_data={"admin-user": "admin", "admin-password": password.result},
            opts=in_namespace,
        )
        key_arn = topic_key.arn if topic_key is not None else None
        alertmanager = PodIdentityRole(
            f"{name}-alertmanager",
            PodIdentityRoleArgs(
                cluster_name=cluster.name,
                cluster_arn=cluster.arn,
                account=ctx.account,
                namespace=MONITORING_NAMESPACE,
                service_account=ALERTMANAGER_SERVICE_ACCOUNT,
                statements=[
                    statement("sns:Publish", topic.arn, sid="PublishAlerts"),
                    *(
                        [
                            statement(
                                ["kms:GenerateDataKey*", "kms:Decrypt"],
                                key_arn,
                                {"StringEquals": {"kms:ViaService": f"sns.{ctx.region}.amazonaws.com"}},
                                sid="EncryptThroughSns",
                            )
                        ]
                        if key_arn is not None
                        else []
                    ),
                ],
                description=f"{name}: Alertmanager publishes to the alerts topic",
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        repo, chart, version = PROMETHEUS_CHART
        self.release = k8s.helm.v3.Release(
            f"{name}-kube-prometheus-stack",
            name="kube-prometheus-stack",
            chart=chart,
            version=version,
            repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=repo),
            namespace=MONITORING_NAMESPACE,
            create_namespace=False,
            atomic=True,
            cleanup_on_fail=True,
            timeout=900,
            values=prometheus_values(config, topic.arn, ctx.region, "grafana-admin"),
            opts=pulumi.ResourceOptions.merge(
                kube,
                pulumi.ResourceOptions(
                    depends_on=[
                        monitoring,
                        secret,
                        storage,
                        alertmanager,
                        cluster.ebs_csi,  # the volumes' driver: without it the PVCs stay Pending
                        *cluster.pools[GENERAL_POOL],  # the general nodes its pods schedule on
                    ]
                ),
            ),
        )
        after_release = pulumi.ResourceOptions.merge(kube, pulumi.ResourceOptions(depends_on=[self.release]))
        k8s.apiextensions.CustomResource(
            f"{name}-rules",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata={"name": "keel", "namespace": MONITORING_NAMESPACE},
            spec={"groups": prometheus_rules(thresholds, namespace)},
            opts=after_release,
        )
        if app_namespace is not None:
            self._scrape_services(name, namespace, kube, [self.release, app_namespace])
        if keda is not None:
            k8s.apiextensions.CustomResource(
                f"{name}-keda",
                api_version="monitoring.coreos.com/v1",
                kind="PodMonitor",
                metadata={"name": "keda-operator", "namespace": "keda"},
                spec={
                    "selector": {"matchLabels": {"app": "keda-operator"}},
                    "podMetricsEndpoints": [{"port": KEDA_METRICS_PORT, "path": "/metrics", "honorLabels": True}],
                },
                opts=pulumi.ResourceOptions.merge(kube, pulumi.ResourceOptions(depends_on=[self.release, keda])),
            )
        self.register_outputs({"release": self.release.name})

    def _scrape_services(
        self, name: str, namespace: str, kube: pulumi.ResourceOptions, after: list[pulumi.Resource]
    ) -> None:
        """A PodMonitor for the services' ``metrics`` ports and the NetworkPolicy that lets Prometheus (only) in, on
        that port only: the ``http`` port the ALB forwards to does not serve metrics."""
        opts = pulumi.ResourceOptions.merge(kube, pulumi.ResourceOptions(depends_on=after))
        k8s.apiextensions.CustomResource(
            f"{name}-apps",
            api_version="monitoring.coreos.com/v1",
            kind="PodMonitor",
            metadata={"name": "keel-services", "namespace": namespace},
            spec={
                "selector": {"matchLabels": {"app.kubernetes.io/part-of": "keel"}},
                "podMetricsEndpoints": [
                    {
                        "port": METRICS_PORT,
                        "path": "/metrics",
                        "relabelings": [
                            {
                                "sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
                                "targetLabel": "service",
                            }
                        ],
                    }
                ],
            },
            opts=opts,
        )
        allow: Any = {
            "podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "keel"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": MONITORING_NAMESPACE}},
                            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": METRICS_PORT}],
                }
            ],
        }
        k8s.networking.v1.NetworkPolicy(
            f"{name}-allow-prometheus",
            metadata={"name": "allow-prometheus-scrape", "namespace": namespace},
            spec=allow,
            opts=opts,
        )
