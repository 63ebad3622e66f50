"""Facts about EKS, pulumi-eks, the cluster autoscaler and EC2 instances."""

from __future__ import annotations

from typing import NamedTuple

from components.upstream.base import Fact, Source

# Node shapes, kubelet reservations and the DaemonSets on GPU nodes (keel's GPU capacity check, components.capacity)
# and what EKS, pulumi-eks and the cluster autoscaler do with node groups and cluster access (components.cluster).

_PULUMI_EKS = "pulumi/pulumi-eks"
_PULUMI_EKS_TAG = "v4.3.0"
_PULUMI_EKS_NOTE = (
    "keel installs pulumi-eks 4.4.0; the stored snapshot's newest tag is v4.3.0 and the lines are unchanged at its "
    "newest commit 7bf0c1b1 (2026-08-12)"
)
_CA = "kubernetes/autoscaler"
_CA_APP_TAG = "cluster-autoscaler-1.34.0"  # the image keel runs on Kubernetes 1.34 (components.addons.AUTOSCALER_IMAGE)
_CA_AWS = "cluster-autoscaler/cloudprovider/aws"
_NODEADM = "awslabs/amazon-eks-ami"
_NODEADM_TAG = "v20260724"
_NODEADM_DIR = "nodeadm/internal/kubelet"
_KARPENTER = "aws/karpenter-provider-aws"
_KARPENTER_TAG = "v1.14.1"
_KARPENTER_TABLE = "website/content/en/v1.13/reference/instance-types.md"
_EKS_DOCS = "awsdocs/amazon-eks-user-guide"
_CWO = "aws-observability/helm-charts"
_CWO_TAG = "amazon-cloudwatch-observability-6.4.0"
_CWO_VALUES = "charts/amazon-cloudwatch-observability/values.yaml"
_CWO_NOTE = (
    "keel does not pin the add-on's version (EKS installs its default for the cluster version); read at the "
    "newest chart of the snapshot. The add-on's root `tolerations: [{operator: Exists}]` (line 27) applies to "
    "every agent DaemonSet that does not override it"
)


class Requests(NamedTuple):
    """A pod's requests: CPU in millicores, memory in MiB (the sum over its containers)."""

    cpu_m: int
    memory_mi: int


class InstanceShape(NamedTuple):
    """An EC2 instance type as EC2 describes it: vCPUs, memory (MiB), the GPU's model name (EC2's GpuInfo name,
    lowercase), and the ENIs and IPv4 addresses per ENI nodeadm computes max pods from."""

    vcpus: int
    memory_mib: int
    gpu: str
    enis: int
    ips_per_eni: int


# --- cluster access

#: pulumi-eks turns the creator's admin access on whenever ``authenticationMode`` is set (keel sets ``API``), on the
#: child ``aws:eks/cluster:Cluster``'s ``accessConfig``, and ignores later changes to it (line 752): nothing in
#: keel's inputs to ``eks:index:Cluster`` shows it.
PULUMI_EKS_CREATOR_ADMIN: Fact[bool] = Fact(
    True, Source(_PULUMI_EKS, _PULUMI_EKS_TAG, "nodejs/eks/cluster/cluster.ts", 739), _PULUMI_EKS_NOTE
)
#: ``eks.Cluster``'s arguments at the installed 4.4.0 have no setting for it (``authentication_mode`` and
#: ``access_entries`` only): a resource transform is the one way to turn it off.
PULUMI_EKS_CREATOR_ADMIN_ARG: Fact[str | None] = Fact(
    None,
    Source("pypi.org/project/pulumi-eks", "4.4.0", "pulumi_eks/cluster.py (ClusterArgs.__init__)"),
    "grep for 'creator' or 'access_config' finds nothing in the SDK",
)
#: The engine runs a ``transforms`` option of a packaged (multi-language) component on the children its provider
#: registers too (the older ``transformations`` do not reach them).
TRANSFORMS_REACH_PACKAGED_CHILDREN: Fact[bool] = Fact(
    True,
    Source("pulumi.com", "2026-08", "docs/iac/concepts/resources/options/transformations/"),
    '"Transforms support modifying child resources of packaged components (such as those in awsx and eks) '
    'whereas Transformations do not"',
)
#: A packaged component's Construct answers (and so its outputs, the kubeconfig among them, resolve) only after
#: every registration its program made is done: the access entries exist before keel's Kubernetes provider, built
#: from ``eks.Cluster``'s kubeconfig, talks to the cluster. (The creator's implicit access covered that gap before.)
CONSTRUCT_WAITS_FOR_CHILDREN: Fact[bool] = Fact(
    True,
    Source("pulumi/pulumi", "v3.259.0", "sdk/nodejs/provider/server.ts", 479),
    "`await settings.waitForRPCs()` before the ConstructResponse is sent",
)
#: The setting is read once, at cluster creation: UpdateClusterConfig's ``accessConfig`` carries only
#: ``authenticationMode``, and terraform-provider-aws (under pulumi-aws) forces a new cluster when it changes
#: (keel/data/replacements.json, ``aws:eks/cluster:Cluster``).
EKS_CREATOR_ADMIN_CREATION_ONLY: Fact[bool] = Fact(
    True, Source("docs.aws.amazon.com", "2026-08", "eks/latest/APIReference/API_UpdateAccessConfigRequest.html")
)
#: The access policy a deploy role needs: ``pulumi up`` creates namespaces, CRDs (KEDA, the load balancer
#: controller's TargetGroupBinding), ClusterRoles and webhooks through Helm. AmazonEKSAdminPolicy (line 17) only
#: reads namespaces (line 116) and grants nothing cluster-scoped.
EKS_CLUSTER_ADMIN_POLICY: Fact[str] = Fact(
    "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
    Source(_EKS_DOCS, "4d52b4d0", "latest/ug/manage-access/k8s-access/access-policy-reference.adoc", 127),
    "every API group, resource and verb (line 140)",
)
#: The access policy a preview or drift role needs: ``pulumi preview --refresh`` reads every Kubernetes object keel
#: manages, Helm releases included, whose state lives in Secrets. get, list and watch on every resource, Secrets
#: included (line 152), and nothing else: the narrower AmazonEKSViewPolicy cannot read Secrets.
EKS_ADMIN_VIEW_POLICY: Fact[str] = Fact(
    "arn:aws:eks::aws:cluster-access-policy/AmazonEKSAdminViewPolicy",
    Source(_EKS_DOCS, "4d52b4d0", "latest/ug/manage-access/k8s-access/access-policy-reference.adoc", 154),
    "get, list and watch on every API group and resource (lines 161-164)",
)

# --- the cluster autoscaler (AWS provider) and node groups

#: The ASG template the autoscaler builds a node from (scale from zero) takes the ASG's first zone for the node's
#: ``topology.kubernetes.io/zone`` (a multi-zone group is logged and still gets one zone): a pod whose EBS volume
#: is in another zone is "helped" by a node that lands in the wrong one.
AUTOSCALER_TEMPLATE_FIRST_ZONE: Fact[bool] = Fact(True, Source(_CA, _CA_APP_TAG, f"{_CA_AWS}/aws_manager.go", 184))
#: The AWS README: pods with EBS volumes need one ASG per zone with ``--balance-similar-node-groups`` (or a
#: single-zone ASG).
AUTOSCALER_ONE_GROUP_PER_ZONE: Fact[str] = Fact(
    "balance-similar-node-groups", Source(_CA, _CA_APP_TAG, f"{_CA_AWS}/README.md", 483)
)
#: Labels the AWS comparator ignores when it decides two groups are similar (``--balance-similar-node-groups``):
#: every other label must be present on both nodes with the same value (compare_nodegroups.go:67).
AUTOSCALER_AWS_IGNORED_LABELS: Fact[tuple[str, ...]] = Fact(
    (
        "alpha.eksctl.io/instance-id",
        "alpha.eksctl.io/nodegroup-name",
        "eks.amazonaws.com/nodegroup",
        "k8s.amazonaws.com/eniConfig",
        "lifecycle",
        "topology.ebs.csi.aws.com/zone",
    ),
    Source(_CA, _CA_APP_TAG, "cluster-autoscaler/processors/nodegroupset/aws_nodegroups.go", 28),
)
AUTOSCALER_BASIC_IGNORED_LABELS: Fact[tuple[str, ...]] = Fact(
    (
        "kubernetes.io/hostname",
        "failure-domain.beta.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/region",
        "topology.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "beta.kubernetes.io/fluentd-ds-ready",
        "kops.k8s.io/instancegroup",
    ),
    Source(_CA, _CA_APP_TAG, "cluster-autoscaler/processors/nodegroupset/compare_nodegroups.go", 34),
)
#: Labels that differ between keel's per-zone groups (or between a node and a group's template) and that neither
#: list ignores, each with where it comes from: they go to ``--balancing-ignore-label`` (FAQ.md:984).
#: ``topology.k8s.aws/zone-id``: the cloud controller manager sets it on every node (kubernetes/cloud-provider-aws
#: v1.34.3 pkg/providers/v1/well_known_labels.go:22). ``nodegroup-name``: the template reads every ``eks:`` ASG tag
#: as a label (aws_manager.go:408), and EKS tags a managed group's ASG ``eks:nodegroup-name`` (line 302 reads it).
#: ``eks.amazonaws.com/sourceLaunchTemplateVersion``: EKS labels nodes of a group with a launch template with its id
#: and version (kubernetes/autoscaler#3230, awsdocs/amazon-eks-user-guide#411); keel's zones share one template,
#: so the id is the same, but the version differs while a new one rolls out group by group.
#: The cluster-autoscaler chart passes each ``extraArgs`` key up to its first ``_`` as the flag's name, so one flag
#: is given several times as ``balancing-ignore-label_1``, ``balancing-ignore-label_2``, ...
AUTOSCALER_CHART_REPEATED_FLAG: Fact[str] = Fact(
    "^[^_]+",
    Source(
        "kubernetes/autoscaler",
        "cluster-autoscaler-chart-9.59.0",
        "cluster-autoscaler/charts/cluster-autoscaler/templates/deployment.yaml",
        138,
    ),
)
BALANCING_IGNORED_LABELS: Fact[tuple[str, ...]] = Fact(
    ("topology.k8s.aws/zone-id", "nodegroup-name", "eks.amazonaws.com/sourceLaunchTemplateVersion"),
    Source(_CA, _CA_APP_TAG, "cluster-autoscaler/FAQ.md", 984),
)
#: The label the AWS provider reads as "this node has a GPU" (its GPULabel), so a new GPU node whose device plugin
#: has not advertised ``nvidia.com/gpu`` yet is not taken for a node without GPUs (README.md:283: set it on GPU
#: nodes, the value is the GPU type, "nvidia-tesla-k80" on P2, line 286).
AUTOSCALER_GPU_LABEL: Fact[str] = Fact(
    "k8s.amazonaws.com/accelerator", Source(_CA, _CA_APP_TAG, f"{_CA_AWS}/aws_cloud_provider.go", 38)
)
#: The GPU types the AWS provider knows by name (its metrics name any other value "not-listed").
AUTOSCALER_GPU_TYPES: Fact[tuple[str, ...]] = Fact(
    (
        "nvidia-tesla-k80",
        "nvidia-tesla-p100",
        "nvidia-tesla-v100",
        "nvidia-tesla-t4",
        "nvidia-tesla-a100",
        "nvidia-a10g",
        "nvidia-l4",
        "nvidia-l40s",
    ),
    Source(_CA, _CA_APP_TAG, f"{_CA_AWS}/aws_cloud_provider.go", 44),
)
#: A template node's allocatable is its whole capacity (EC2's vCPUs and memory): the autoscaler scales a group up
#: for a pod that then does not fit on the real node (kubelet reservations, DaemonSets). keel checks the fit itself.
AUTOSCALER_TEMPLATE_ALLOCATABLE_IS_CAPACITY: Fact[bool] = Fact(
    True, Source(_CA, _CA_APP_TAG, f"{_CA_AWS}/aws_manager.go", 292)
)

# --- GPU instance types: capacity (EC2), kubelet reservations (nodeadm, AL2023)

#: By GPU family, the GPU's model as EC2 names it (Karpenter's generated table of EC2 DescribeInstanceTypes,
#: ``karpenter.k8s.aws/instance-gpu-name``; the line is g4dn's, the others: g5 9751, g6 10228, g6e 10506, gr6 11126,
#: p3dn 25139, p4d 25175, p4de 25211, p5 25247, p5e 25318, p5en 25354). p3 is no longer in the table (a retired
#: generation): it carries the same Tesla V100 as p3dn.
GPU_NAME_BY_FAMILY: Fact[dict[str, str]] = Fact(
    {
        "g4dn": "t4",
        "g5": "a10g",
        "g6": "l4",
        "g6e": "l40s",
        "gr6": "l4",
        "p3": "v100",
        "p3dn": "v100",
        "p4d": "a100",
        "p4de": "a100",
        "p5": "h100",
        "p5e": "h200",
        "p5en": "h200",
    },
    Source(_KARPENTER, _KARPENTER_TAG, _KARPENTER_TABLE, 9508),
)


def _shape(vcpus: int, memory: int, gpu: str, enis: int, ips: int, line: int, eni_line: int) -> Fact[InstanceShape]:
    return Fact(
        InstanceShape(vcpus, memory, gpu, enis, ips),
        Source(_KARPENTER, _KARPENTER_TAG, _KARPENTER_TABLE, line),
        f"vCPUs, memory and GPU name (instance-cpu, instance-memory, instance-gpu-name); ENIs and IPv4 per ENI from "
        f"{_NODEADM}@{_NODEADM_TAG} {_NODEADM_DIR}/instance-info.jsonl:{eni_line}",
    )


#: The GPU instance types keel can size (single-GPU g4dn, g5 and g6, xlarge to 8xlarge); the line is the type's
#: heading in the table. A GPU pool may list other types: the capacity check skips them (and says so).
GPU_INSTANCE_SHAPES: dict[str, Fact[InstanceShape]] = {
    "g4dn.xlarge": _shape(4, 16384, "t4", 3, 10, 9492, 365),
    "g4dn.2xlarge": _shape(8, 32768, "t4", 3, 10, 9526, 361),
    "g4dn.4xlarge": _shape(16, 65536, "t4", 3, 10, 9560, 362),
    "g4dn.8xlarge": _shape(32, 131072, "t4", 4, 15, 9594, 363),
    "g5.xlarge": _shape(4, 16384, "a10g", 4, 15, 9735, 373),
    "g5.2xlarge": _shape(8, 32768, "a10g", 4, 15, 9769, 369),
    "g5.4xlarge": _shape(16, 65536, "a10g", 8, 30, 9803, 371),
    "g5.8xlarge": _shape(32, 131072, "a10g", 8, 30, 9837, 372),
    "g6.xlarge": _shape(4, 16384, "l4", 4, 15, 10212, 387),
    "g6.2xlarge": _shape(8, 32768, "l4", 4, 15, 10246, 383),
    "g6.4xlarge": _shape(16, 65536, "l4", 8, 30, 10280, 385),
    "g6.8xlarge": _shape(32, 131072, "l4", 8, 30, 10314, 386),
}
#: What the same table lists as allocatable (CPU millicores, memory MiB) with its own max pods (ENI-based): the
#: independent result keel's computation must reproduce where the managed node group's cap does not apply.
KARPENTER_ALLOCATABLE: dict[str, Fact[tuple[Requests, int]]] = {
    name: Fact(value, Source(_KARPENTER, _KARPENTER_TAG, _KARPENTER_TABLE, line), "(cpu, memory), pods")
    for name, value, line in (
        ("g4dn.xlarge", (Requests(3920, 14481), 29), 9520),
        ("g4dn.2xlarge", (Requests(7910, 29636), 29), 9554),
        ("g4dn.4xlarge", (Requests(15890, 59946), 29), 9588),
        ("g4dn.8xlarge", (Requests(31850, 120248), 58), 9622),
        ("g5.xlarge", (Requests(3920, 14162), 58), 9763),
        ("g5.2xlarge", (Requests(7910, 29317), 58), 9797),
        ("g6.xlarge", (Requests(3920, 14162), 58), 10240),
        ("g6.2xlarge", (Requests(7910, 29317), 58), 10274),
    )
}
#: The kernel and firmware keep part of an instance's memory (the node's MemTotal is below EC2's figure); before a
#: node exists its share can only be estimated: Karpenter's default estimate, as a fraction of EC2's memory (rounded
#: up to a MiB). keel subtracts it so that the check errs on the safe side.
VM_MEMORY_OVERHEAD: Fact[float] = Fact(0.075, Source(_KARPENTER, _KARPENTER_TAG, "pkg/operator/options/options.go", 58))
#: nodeadm's max pods without a custom expression: ENIs x (IPv4 per ENI - 1) + 2.
NODEADM_MAX_PODS: Fact[str] = Fact(
    "enis * (ips_per_eni - 1) + 2", Source(_NODEADM, _NODEADM_TAG, f"{_NODEADM_DIR}/eni_max_pods.go", 76)
)
#: A managed node group without a custom AMI (keel's launch template sets none) caps max pods in the node's user
#: data: 110 below 30 vCPUs, 250 from there (the cap wins over nodeadm's value).
MNG_MAX_PODS_CAP: Fact[tuple[int, int, int]] = Fact(
    (30, 110, 250),
    Source(_EKS_DOCS, "3a23761d", "latest/ug/nodes/choosing-instance-type.adoc", 114),
    "(vCPUs threshold, cap below it, cap from it)",
)
#: kube-reserved CPU: 6% of the first core, 1% of the second, 0.5% of cores 3-4, 0.25% of the rest (ranges in
#: millicores, percentages in hundredths of a percent: line 417).
NODEADM_KUBE_RESERVED_CPU: Fact[tuple[tuple[int, int, int], ...]] = Fact(
    ((0, 1000, 600), (1000, 2000, 100), (2000, 4000, 50), (4000, 1 << 31, 25)),
    Source(_NODEADM, _NODEADM_TAG, f"{_NODEADM_DIR}/config.go", 416),
    "(from millicores, to millicores, reserved in 1/10000)",
)
#: kube-reserved memory in MiB: 11 per pod the node may run, plus 255.
NODEADM_KUBE_RESERVED_MEMORY: Fact[tuple[int, int]] = Fact(
    (11, 255), Source(_NODEADM, _NODEADM_TAG, f"{_NODEADM_DIR}/config.go", 443), "(MiB per max pod, MiB)"
)
#: nodeadm sets no system-reserved (only its cgroup, line 275); the hard eviction threshold keeps 100Mi free.
NODEADM_EVICTION_MEMORY_MI: Fact[int] = Fact(100, Source(_NODEADM, _NODEADM_TAG, f"{_NODEADM_DIR}/config.go", 111))

# --- DaemonSets that run on keel's GPU nodes (tainted nvidia.com/gpu=true:NoSchedule), with their requests


class DaemonSetOnGpuNodes(NamedTuple):
    """A DaemonSet keel installs (directly or through an EKS add-on) that lands on GPU nodes: its pod's requests
    and when it is there (``always``, ``container-insights``, ``prometheus``; ``dcgm`` is Container Insights' GPU
    exporter, only on the instance types of its node affinity)."""

    requests: Requests
    when: str


GPU_NODE_DAEMONSETS: dict[str, Fact[DaemonSetOnGpuNodes]] = {
    # EKS add-ons keel installs with every cluster
    "kube-proxy": Fact(
        DaemonSetOnGpuNodes(Requests(100, 0), "always"),
        Source("eksctl-io/eksctl", "v0.230.0", "pkg/addons/default/testdata/sample-1.25.json", 91),
        "the add-on's DaemonSet as EKS installs it (EKS publishes no manifest; eksctl keeps a copy of a cluster's): "
        "100m CPU, no memory; tolerates every taint (operator: Exists, line 135)",
    ),
    "aws-node": Fact(
        DaemonSetOnGpuNodes(Requests(25, 0), "always"),
        Source("aws/amazon-vpc-cni-k8s", "v1.23.0", "charts/aws-vpc-cni/values.yaml", 190),
        "aws-node 25m CPU; the network policy agent (nodeAgent.resources, line 57) and the init container request "
        "nothing; tolerates every taint (line 201). pulumi-eks installs the newest vpc-cni add-on version",
    ),
    "ebs-csi-node": Fact(
        DaemonSetOnGpuNodes(Requests(30, 104), "always"),
        Source(
            "kubernetes-sigs/aws-ebs-csi-driver",
            "helm-chart-aws-ebs-csi-driver-2.64.0",
            "charts/aws-ebs-csi-driver/values.yaml",
            415,
        ),
        "ebs-plugin 10m/40Mi (node.resources); node-driver-registrar and liveness-probe 10m/32Mi each, the "
        "template's defaults when their resources are empty (templates/_node.tpl:242, 273); node.tolerateAllTaints "
        "is true (values.yaml:410, templates/_node.tpl:50)",
    ),
    "eks-pod-identity-agent": Fact(
        DaemonSetOnGpuNodes(Requests(0, 0), "always"),
        Source("aws/eks-pod-identity-agent", "v0.1.37", "charts/eks-pod-identity-agent/values.yaml", 165),
        "resources: {}; tolerates every taint (line 177)",
    ),
    # Helm releases keel installs
    "nvidia-device-plugin": Fact(
        DaemonSetOnGpuNodes(Requests(0, 0), "always"),
        Source("NVIDIA/k8s-device-plugin", "v0.18.2", "deployments/helm/nvidia-device-plugin/values.yaml", 62),
        "resources: {}; keel gives it the GPU toleration (components.addons)",
    ),
    "node-exporter": Fact(
        DaemonSetOnGpuNodes(Requests(0, 0), "prometheus"),
        Source(
            "prometheus-community/helm-charts",
            "prometheus-node-exporter-4.56.1",
            "charts/prometheus-node-exporter/values.yaml",
            334,
        ),
        "kube-prometheus-stack 88.5.3's subchart (its Chart.yaml:59); resources: {}; keel gives it the GPU "
        "toleration (components.prometheus)",
    ),
    # The amazon-cloudwatch-observability add-on (Container Insights)
    "cloudwatch-agent": Fact(
        DaemonSetOnGpuNodes(Requests(250, 128), "container-insights"),
        Source(_CWO, _CWO_TAG, _CWO_VALUES, 751),
        _CWO_NOTE,
    ),
    "fluent-bit": Fact(
        DaemonSetOnGpuNodes(Requests(50, 25), "container-insights"),
        Source(_CWO, _CWO_TAG, _CWO_VALUES, 47),
        "keel turns containerLogs on. " + _CWO_NOTE,
    ),
    "dcgm-exporter": Fact(
        DaemonSetOnGpuNodes(Requests(250, 128), "dcgm"),
        Source(_CWO, _CWO_TAG, _CWO_VALUES, 815),
        "its node affinity (line 838) lists NVIDIA instance types, every type of GPU_INSTANCE_SHAPES among them "
        "(lines 855-886). " + _CWO_NOTE,
    ),
}
