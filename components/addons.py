"""ClusterAddons: the Helm-installed controllers every keel cluster runs, each with its own Pod Identity role.

Usage::

    addons = ClusterAddons("keel-prod", ClusterAddonsArgs(vpc_id=network.vpc_id), cluster=cluster,
                           opts=pulumi.ResourceOptions(parent=platform))
    addons.keda                  # depend on it before creating ScaledObjects (its CRDs)
    addons.lb_controller         # depend on it before creating TargetGroupBindings (its CRD)

Creates (``<n>`` is the component name), each release pinned in :data:`CHARTS`, on the general pool
(``keel.dev/pool=general``), after the node groups so the pods can schedule:

- ``<n>-cluster-autoscaler``: auto-discovers node groups by their ASG tags, balances similar groups, picks
  the ``least-waste`` expander, removes empty nodes (GPU ones included) after 10 minutes; tolerates nothing.
  Role ``<n>-cluster-autoscaler``: read-only describes on ``*`` (as AWS documents), scaling actions only on
  ASGs tagged ``k8s.io/cluster-autoscaler/<cluster>=owned``.
- ``<n>-nvidia-device-plugin``: a DaemonSet only on GPU nodes (node selector ``nvidia.com/gpu.present=true``
  and the ``nvidia.com/gpu`` toleration; the chart's default affinity admits that label without
  node-feature-discovery); it advertises ``nvidia.com/gpu`` to the scheduler. No AWS role.
- ``<n>-keda``: operator, metrics server and webhooks; the operator serves Prometheus metrics on its ``metrics``
  port; role ``<n>-keda`` may read CloudWatch metrics (the ``aws-cloudwatch`` scaler authenticates with
  ``podIdentity.provider: aws``).
- ``<n>-aws-load-balancer-controller``: cluster name, region and VPC id set; role
  ``<n>-aws-load-balancer-controller`` holds the read-only part of the controller's documented policy and
  registers targets only in target groups of this stack. Pulumi owns the ALB and its target groups
  (``components/ingress.py``), so the controller's only job is ``TargetGroupBinding``: the documented
  permissions to create and delete load balancers, listeners, rules and security groups are left out.

Outputs: ``cluster_autoscaler``, ``nvidia_device_plugin``, ``keda``, ``lb_controller`` (the releases), ``roles``
by chart and ``keda_role`` (scaling grants it the secrets its triggers read).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import context, upstream
from components.cluster import Cluster
from components.iam import PodIdentityRole, PodIdentityRoleArgs, Statement, statement
from components.vocabulary import (
    DEFAULT_KUBERNETES_VERSION,
    GENERAL_POOL,
    GPU_PRESENT_LABEL,
    GPU_TOLERATION,
    pool_selector,
)


@dataclass(frozen=True)
class Chart:
    repo: str
    chart: str
    version: str
    namespace: str
    service_account: str | None = None


#: Every chart keel installs, pinned (README's "Charts" table says why each version). Bump here, re-read the facts
#: components.upstream records for the chart at the new version (a test fails until their versions match), and run
#: `make test`.
CHARTS: dict[str, Chart] = {
    "cluster-autoscaler": Chart(
        "https://kubernetes.github.io/autoscaler", "cluster-autoscaler", "9.59.0", "kube-system", "cluster-autoscaler"
    ),
    "nvidia-device-plugin": Chart(
        "https://nvidia.github.io/k8s-device-plugin", "nvidia-device-plugin", "0.18.2", "nvidia-device-plugin"
    ),
    "keda": Chart("https://kedacore.github.io/charts", "keda", "2.20.2", "keda", "keda-operator"),
    "aws-load-balancer-controller": Chart(
        "https://aws.github.io/eks-charts",
        "aws-load-balancer-controller",
        "1.17.1",
        "kube-system",
        "aws-load-balancer-controller",
    ),
}

#: The cluster autoscaler's minor version must match the cluster's (its README's compatibility table).
AUTOSCALER_IMAGE = {"1.33": "v1.33.1", "1.34": "v1.34.0"}


def autoscaler_statements(ctx: context.AwsContext, cluster_name: str) -> list[Statement]:
    """The cluster autoscaler's documented policy, with the scaling actions limited to this cluster's ASGs."""
    return [
        statement(
            [
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeLaunchConfigurations",
                "autoscaling:DescribeScalingActivities",
                "autoscaling:DescribeTags",
                "ec2:DescribeImages",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplateVersions",
                "ec2:GetInstanceTypesFromInstanceRequirements",
                "eks:DescribeNodegroup",
            ],
            "*",
            sid="ReadOnlyDescribes",
        ),
        statement(
            ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
            ctx.arn("autoscaling", "autoScalingGroup:*:autoScalingGroupName/*"),
            condition={"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}},
            sid="ScaleOwnGroupsOnly",
        ),
    ]


def keda_statements() -> list[Statement]:
    """Read CloudWatch metrics for the ``aws-cloudwatch`` scaler (these actions take no resource ARN)."""
    return [
        statement(
            ["cloudwatch:GetMetricData", "cloudwatch:GetMetricStatistics", "cloudwatch:ListMetrics"],
            "*",
            sid="ReadMetrics",
        )
    ]


def lb_controller_statements(ctx: context.AwsContext, stack: str) -> list[Statement]:
    """The controller's documented read-only permissions, plus target registration in this stack's target
    groups (tagged ``stack=<stack>`` by the provider's default tags)."""
    return [
        statement(
            [
                "ec2:DescribeAccountAttributes",
                "ec2:DescribeAddresses",
                "ec2:DescribeAvailabilityZones",
                "ec2:DescribeInternetGateways",
                "ec2:DescribeVpcs",
                "ec2:DescribeVpcPeeringConnections",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeInstances",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeTags",
                "ec2:GetSecurityGroupsForVpc",
                "elasticloadbalancing:DescribeLoadBalancers",
                "elasticloadbalancing:DescribeLoadBalancerAttributes",
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeListenerCertificates",
                "elasticloadbalancing:DescribeListenerAttributes",
                "elasticloadbalancing:DescribeSSLPolicies",
                "elasticloadbalancing:DescribeRules",
                "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeTargetGroupAttributes",
                "elasticloadbalancing:DescribeTargetHealth",
                "elasticloadbalancing:DescribeTags",
            ],
            "*",
            sid="ReadOnlyDescribes",
        ),
        statement(
            ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"],
            ctx.arn("elasticloadbalancing", "targetgroup/*/*"),
            condition={"StringEquals": {"aws:ResourceTag/stack": stack}},
            sid="BindTargetsOfThisStack",
        ),
    ]


def values(cluster_name: str, region: str, vpc_id: Any, version: str) -> dict[str, dict[str, Any]]:
    """Helm values per chart: the settings that matter, everything else at the chart's default."""
    general = {"nodeSelector": pool_selector(GENERAL_POOL), "tolerations": []}
    return {
        "cluster-autoscaler": {
            "cloudProvider": "aws",
            "awsRegion": region,
            "autoDiscovery": {
                "clusterName": cluster_name,
                "tags": ["k8s.io/cluster-autoscaler/enabled", f"k8s.io/cluster-autoscaler/{cluster_name}"],
            },
            "image": {"tag": AUTOSCALER_IMAGE[version]},
            "rbac": {"serviceAccount": {"create": True, "name": CHARTS["cluster-autoscaler"].service_account}},
            "extraArgs": {
                "balance-similar-node-groups": True,
                "expander": "least-waste",
                "scale-down-unneeded-time": "10m",
                "scale-down-delay-after-add": "10m",
                "skip-nodes-with-local-storage": False,
                # the zone groups of the general pool differ in these labels only: balance them anyway (the chart
                # cuts each key at its first "_", upstream.AUTOSCALER_CHART_REPEATED_FLAG)
                **{
                    f"balancing-ignore-label_{i}": label
                    for i, label in enumerate(upstream.BALANCING_IGNORED_LABELS.value, 1)
                },
            },
            **general,
        },
        # No `affinity`: the chart's default (kept by Helm for an empty map too) admits nodes labelled
        # nvidia.com/gpu.present=true, which keel's GPU nodes are, without node-feature-discovery's labels.
        "nvidia-device-plugin": {
            "nodeSelector": {GPU_PRESENT_LABEL: "true"},
            "tolerations": [GPU_TOLERATION],
            "gfd": {"enabled": False},
            "nfd": {"enabled": False},
        },
        "keda": {
            "serviceAccount": {"operator": {"create": True, "name": CHARTS["keda"].service_account}},
            "podIdentity": {"aws": {"irsa": {"enabled": False}}},
            # Serve the operator's Prometheus metrics on its `metrics` port (8080); observability scrapes them.
            "prometheus": {"operator": {"enabled": True}},
            **general,
        },
        "aws-load-balancer-controller": {
            "clusterName": cluster_name,
            "region": region,
            "vpcId": vpc_id,
            "replicaCount": 2,
            "serviceAccount": {"create": True, "name": CHARTS["aws-load-balancer-controller"].service_account},
            "enableServiceMutatorWebhook": False,
            "createIngressClassResource": False,
            **general,
        },
    }


@dataclass(frozen=True)
class ClusterAddonsArgs:
    """Arguments of :class:`ClusterAddons`."""

    vpc_id: pulumi.Input[str]
    """The cluster's VPC (the load balancer controller must not discover it through IMDS)."""

    version: str = DEFAULT_KUBERNETES_VERSION
    """The cluster's Kubernetes version (selects the autoscaler image)."""


class ClusterAddons(pulumi.ComponentResource):
    """Cluster autoscaler, NVIDIA device plugin, KEDA and the AWS Load Balancer Controller."""

    releases: dict[str, k8s.helm.v3.Release]
    cluster_autoscaler: k8s.helm.v3.Release
    nvidia_device_plugin: k8s.helm.v3.Release
    keda: k8s.helm.v3.Release
    lb_controller: k8s.helm.v3.Release
    roles: dict[str, PodIdentityRole]
    keda_role: PodIdentityRole

    def __init__(
        self, name: str, args: ClusterAddonsArgs, cluster: Cluster, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("keel:addons:ClusterAddons", name, None, opts)
        ctx = context.lookup(pulumi.InvokeOptions(parent=self))
        cluster_name = cluster.cluster_name
        settings = values(cluster_name, ctx.region, args.vpc_id, args.version)
        statements = {
            "cluster-autoscaler": autoscaler_statements(ctx, cluster_name),
            "keda": keda_statements(),
            "aws-load-balancer-controller": lb_controller_statements(ctx, pulumi.get_stack()),
        }
        node_groups = list(cluster.node_groups.values())
        self.releases = {}
        self.roles = {}
        for key, chart in CHARTS.items():
            after: list[pulumi.Resource] = list(node_groups)
            if chart.service_account and key in statements:
                role = PodIdentityRole(
                    f"{name}-{key}",
                    PodIdentityRoleArgs(
                        cluster_name=cluster.name,
                        cluster_arn=cluster.arn,
                        account=ctx.account,
                        namespace=chart.namespace,
                        service_account=chart.service_account,
                        statements=statements[key],
                        description=f"{name}: {key}",
                    ),
                    opts=pulumi.ResourceOptions(parent=self),
                )
                after.append(role)
                self.roles[key] = role
            self.releases[key] = k8s.helm.v3.Release(
                f"{name}-{key}",
                name=key,
                chart=chart.chart,
                version=chart.version,
                repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=chart.repo),
                namespace=chart.namespace,
                create_namespace=chart.namespace != "kube-system",
                atomic=True,
                cleanup_on_fail=True,
                timeout=600,
                values=settings[key],
                opts=pulumi.ResourceOptions(parent=self, provider=cluster.k8s_provider, depends_on=after),
            )
        self.cluster_autoscaler = self.releases["cluster-autoscaler"]
        self.nvidia_device_plugin = self.releases["nvidia-device-plugin"]
        self.keda = self.releases["keda"]
        self.lb_controller = self.releases["aws-load-balancer-controller"]
        self.keda_role = self.roles["keda"]
        self.register_outputs({key: release.name for key, release in self.releases.items()})
