"""What a GPU node has room for: its allocatable resources minus the DaemonSets keel puts on it. Pure: no Pulumi.

Usage::

    from components.capacity import room, allocatable, gpu_node_daemonsets
    allocatable("g4dn.xlarge")                     # Requests(cpu_m=3920, memory_mi=14481)
    room("g4dn.xlarge", container_insights=True, prometheus=True)   # what a GPU job may request on it

Every number comes from :mod:`components.upstream` (section "EKS, EC2"), each with its source:

- **capacity**: EC2's vCPUs and memory of the instance type, less the memory the kernel and firmware keep
  (:data:`~components.upstream.VM_MEMORY_OVERHEAD`, an estimate rounded up to a MiB: the node's real MemTotal is
  only known once it runs);
- **max pods** as nodeadm computes it on AL2023 (ENIs x (IPv4 per ENI - 1) + 2), capped as a managed node group
  caps it (110 below 30 vCPUs, 250 from there);
- **allocatable** = capacity - kube-reserved (CPU by nodeadm's ranges, memory 11 MiB per max pod + 255 MiB) -
  system-reserved (nodeadm sets none) - the hard eviction threshold (100 MiB of memory);
- **DaemonSets on GPU nodes**: the EKS add-ons' node agents (kube-proxy, aws-node, ebs-csi-node,
  eks-pod-identity-agent), the NVIDIA device plugin, node-exporter with the Prometheus stack, and with Container
  Insights the CloudWatch agent, Fluent Bit and the DCGM exporter (on the GPU types of its node affinity).

The cluster autoscaler does not do this: its scale-from-zero template offers a pod the whole instance
(:data:`~components.upstream.AUTOSCALER_TEMPLATE_ALLOCATABLE_IS_CAPACITY`), so a job that only fits that template
gets a node it cannot run on, and stays pending. :func:`components.config.capacity.capacity_checks` refuses it.
"""

from __future__ import annotations

import math

from components.upstream import (
    GPU_INSTANCE_SHAPES,
    GPU_NODE_DAEMONSETS,
    MNG_MAX_PODS_CAP,
    NODEADM_EVICTION_MEMORY_MI,
    NODEADM_KUBE_RESERVED_CPU,
    NODEADM_KUBE_RESERVED_MEMORY,
    VM_MEMORY_OVERHEAD,
    InstanceShape,
    Requests,
)


def shape(instance_type: str) -> InstanceShape | None:
    """The instance type's vCPUs, memory, GPU and ENIs, or None when keel has no facts for it."""
    fact = GPU_INSTANCE_SHAPES.get(instance_type)
    return fact.value if fact is not None else None


def eni_max_pods(instance_type: str) -> int:
    """Max pods as nodeadm computes it without a custom expression (ENI-based)."""
    s = _known(instance_type)
    return s.enis * (s.ips_per_eni - 1) + 2


def max_pods(instance_type: str) -> int:
    """Max pods on a managed node group's node: nodeadm's value under the group's cap."""
    threshold, below, above = MNG_MAX_PODS_CAP.value
    s = _known(instance_type)
    return min(eni_max_pods(instance_type), below if s.vcpus < threshold else above)


def kube_reserved(instance_type: str, pods: int | None = None) -> Requests:
    """nodeadm's kube-reserved for the instance type (``pods``: the max pods it assumes, :func:`max_pods` by
    default)."""
    s = _known(instance_type)
    total = s.vcpus * 1000
    cpu = sum(
        (min(total, high) - low) * share // 10000 for low, high, share in NODEADM_KUBE_RESERVED_CPU.value if total > low
    )
    per_pod, base = NODEADM_KUBE_RESERVED_MEMORY.value
    return Requests(cpu, per_pod * (max_pods(instance_type) if pods is None else pods) + base)


def capacity(instance_type: str) -> Requests:
    """CPU and memory the node reports: EC2's figures less the estimated kernel and firmware share of memory."""
    s = _known(instance_type)
    return Requests(s.vcpus * 1000, s.memory_mib - math.ceil(s.memory_mib * VM_MEMORY_OVERHEAD.value))


def allocatable(instance_type: str, pods: int | None = None) -> Requests:
    """capacity - kube-reserved - system-reserved (none) - the memory eviction threshold."""
    cap, reserved = capacity(instance_type), kube_reserved(instance_type, pods)
    return Requests(cap.cpu_m - reserved.cpu_m, cap.memory_mi - reserved.memory_mi - NODEADM_EVICTION_MEMORY_MI.value)


def gpu_node_daemonsets(instance_type: str, *, container_insights: bool, prometheus: bool) -> dict[str, Requests]:
    """The DaemonSets on a GPU node of ``instance_type`` and their requests, for a stack with (or without)
    Container Insights and the Prometheus stack."""
    on = {"always", *(["container-insights", "dcgm"] if container_insights else []), *(["prometheus"] * prometheus)}
    return {name: fact.value.requests for name, fact in GPU_NODE_DAEMONSETS.items() if fact.value.when in on}


def room(instance_type: str, *, container_insights: bool, prometheus: bool) -> Requests:
    """What one more pod may request on an empty GPU node: allocatable minus its DaemonSets."""
    left = allocatable(instance_type)
    daemons = gpu_node_daemonsets(instance_type, container_insights=container_insights, prometheus=prometheus)
    return Requests(
        left.cpu_m - sum(r.cpu_m for r in daemons.values()),
        left.memory_mi - sum(r.memory_mi for r in daemons.values()),
    )


def cpu_millicores(quantity: str) -> int:
    """A CPU quantity as keel's config accepts it (``250m``, ``2``, ``1.5``) in millicores."""
    if quantity.endswith("m"):
        return int(quantity[:-1])
    return round(float(quantity) * 1000)


def memory_mib(quantity: str) -> int:
    """A memory quantity as keel's config accepts it (``512Mi``, ``12Gi``) in MiB."""
    if quantity.endswith("Gi"):
        return int(quantity[:-2]) * 1024
    return int(quantity.removesuffix("Mi"))


def _known(instance_type: str) -> InstanceShape:
    s = shape(instance_type)
    if s is None:
        raise KeyError(f"no facts for instance type {instance_type!r} (components.upstream.GPU_INSTANCE_SHAPES)")
    return s
