"""Node pools: the labels, GPU model and autoscaler tags of keel's managed node groups (pure functions).

Usage::

    node_labels("gpu", cfg.cluster.node_groups.gpu)    # {"keel.dev/pool": "gpu", "nvidia.com/gpu.present": "true", ...}
    autoscaler_tags("keel-prod", "gpu", group)         # the ASG tags the cluster autoscaler scales from zero with
    first_asg_name(cluster.node_groups["gpu"])         # the Auto Scaling group EKS made for a managed node group

:class:`~components.cluster.Cluster` creates the groups; these say what the nodes carry and what the autoscaler reads
about them (sources in :mod:`components.upstream`).
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks

from components.config import NodeGroupConfig, instance_family
from components.upstream import AUTOSCALER_GPU_LABEL, AUTOSCALER_GPU_TYPES, GPU_NAME_BY_FAMILY
from components.vocabulary import GPU_PRESENT_LABEL, GPU_RESOURCE, GPU_TAINT, GPU_TAINT_EFFECT, pool_selector

AUTOSCALER_PREFIX = "k8s.io/cluster-autoscaler"


def gpus_per_instance(instance_type: str) -> int:
    """NVIDIA GPUs in one instance of a GPU type (the scale-from-zero resource tag)."""
    family, _, size = instance_type.partition(".")
    if family in ("p3dn", "p4d", "p4de", "p5", "p5e", "p5en") or size in ("48xlarge", "metal"):
        return 8
    if family == "p3" and size == "16xlarge":
        return 8
    if size in ("12xlarge", "24xlarge") or (family == "p3" and size == "8xlarge"):
        return 4
    return 1


def accelerator(instance_types: Sequence[str]) -> str:
    """The ``k8s.amazonaws.com/accelerator`` value of a GPU group: its GPU model as the cluster autoscaler's AWS
    provider names it (``nvidia-tesla-t4`` for g4dn, ``nvidia-a10g`` for g5; ``nvidia-<model>`` for a model it does
    not list). A group whose types carry different models (a Spot fallback from g4dn to g5) gets every model it may
    start, in the types' order, joined by ``_`` (``nvidia-tesla-t4_nvidia-a10g``): a node's label cannot name the
    one it got, and naming only the first would be wrong on the others."""
    known = AUTOSCALER_GPU_TYPES.value
    names: list[str] = []
    for instance_type in instance_types:
        model = GPU_NAME_BY_FAMILY.value.get(instance_family(instance_type))
        if model is None:
            continue
        name = next((n for n in (f"nvidia-{model}", f"nvidia-tesla-{model}") if n in known), f"nvidia-{model}")
        if name not in names:
            names.append(name)
    return "_".join(names) or "nvidia"


def node_labels(group_name: str, group: NodeGroupConfig) -> dict[str, str]:
    """The labels of a pool's nodes (every group of the pool has the same): the pool, the configured ones, and on
    GPU nodes ``nvidia.com/gpu.present`` and the autoscaler's GPU label."""
    labels = {**pool_selector(group_name), **group.labels}
    if group.gpu:
        labels[GPU_PRESENT_LABEL] = "true"
        labels[AUTOSCALER_GPU_LABEL.value] = accelerator(group.instance_types)
    return labels


def autoscaler_tags(cluster_name: str, group_name: str, group: NodeGroupConfig) -> dict[str, str]:
    """The tags the cluster autoscaler reads from a group's ASG: auto-discovery, and the node template
    (labels, taints, GPU count) it needs to scale a group up from zero nodes."""
    template = f"{AUTOSCALER_PREFIX}/node-template"
    tags = {
        f"{AUTOSCALER_PREFIX}/enabled": "true",
        f"{AUTOSCALER_PREFIX}/{cluster_name}": "owned",
        f"{template}/label/eks.amazonaws.com/capacityType": group.capacity_type,
    }
    for key, value in node_labels(group_name, group).items():
        tags[f"{template}/label/{key}"] = value
    if group.gpu:
        tags[f"{template}/taint/{GPU_TAINT['key']}"] = f"{GPU_TAINT['value']}:{GPU_TAINT_EFFECT}"
        gpus = min(gpus_per_instance(t) for t in group.instance_types)
        tags[f"{template}/resources/{GPU_RESOURCE}"] = str(gpus)
    return tags


def first_asg_name(node_group: eks.ManagedNodeGroup) -> pulumi.Output[str]:
    """The name of the Auto Scaling group EKS created for a managed node group."""

    def from_group(group: aws.eks.NodeGroup) -> pulumi.Output[str]:
        return group.resources.apply(lambda res: str(next(iter(res[0].autoscaling_groups or [])).name))

    return node_group.node_group.apply(from_group)


def tag_slug(tag_key: str, cluster_name: str) -> str:
    """A short, stable resource name for an autoscaler tag: ``ca-enabled``, ``ca-owned``,
    ``ca-label-keel-dev-pool``, ``ca-taint-nvidia-com-gpu``, ``ca-resources-nvidia-com-gpu``."""
    rest = tag_key.removeprefix(f"{AUTOSCALER_PREFIX}/")
    if rest == cluster_name:
        return "ca-owned"
    rest = rest.removeprefix("node-template/")
    return "ca-" + rest.replace("/", "-").replace(".", "-")
