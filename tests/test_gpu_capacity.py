"""Issue 17 item 7c: the GPU job's requests leave room for the DaemonSets that run on GPU nodes.

The cluster autoscaler starts a GPU node for a pending job from a template that offers the whole instance
(components.upstream.AUTOSCALER_TEMPLATE_ALLOCATABLE_IS_CAPACITY); the real node has kubelet's reservations taken
and runs a DaemonSet pod per node agent first. A job that does not fit what is left gets its node and stays pending.
Every number below is a fact of components.upstream (section "EKS, EC2") with its source; components.capacity
computes allocatable and the DaemonSets' sum from them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from components import capacity
from components.config import ConfigError, validate
from components.config.capacity import capacity_checks
from components.upstream import (
    GPU_INSTANCE_SHAPES,
    GPU_NODE_DAEMONSETS,
    KARPENTER_ALLOCATABLE,
    MNG_MAX_PODS_CAP,
    NODEADM_EVICTION_MEMORY_MI,
    NODEADM_KUBE_RESERVED_CPU,
    NODEADM_KUBE_RESERVED_MEMORY,
    NODEADM_MAX_PODS,
    VM_MEMORY_OVERHEAD,
    Requests,
)
from components.vocabulary import GPU_RESOURCE, GPU_TOLERATION
from keel import stackfiles
from keel.engine import Preview, Step
from tests.helpers import ROOT, stack_file

RELEASE = "kubernetes:helm.sh/v3:Release"
ADDON = "aws:eks/addon:Addon"


def loaded(stack: str) -> dict[str, str]:
    return dict(stackfiles.load_stack(ROOT, stack, stackfiles.load_project(ROOT), path=stack_file(stack)).config)


def gpu_jobs(p: Preview) -> dict[str, dict[str, Any]]:
    """The pod spec of each rendered GPU workload (a ScaledJob's job template), by service."""
    out = {}
    for step in p.of_type("kubernetes:keda.sh/v1alpha1:ScaledJob"):
        spec = step.inputs["spec"]["jobTargetRef"]["template"]["spec"]
        if any(GPU_RESOURCE in (c.get("resources", {}).get("limits") or {}) for c in spec["containers"]):
            out[step.inputs["metadata"]["name"]] = spec
    return out


def pod_requests(spec: dict[str, Any]) -> Requests:
    """A pod's effective requests: the sum over its containers, or its largest init container if larger."""

    def of(containers: list[dict[str, Any]]) -> list[Requests]:
        out = []
        for c in containers:
            asked = (c.get("resources") or {}).get("requests") or {}
            out.append(
                Requests(
                    capacity.cpu_millicores(asked.get("cpu", "0m")), capacity.memory_mib(asked.get("memory", "0Mi"))
                )
            )
        return out

    main = of(spec["containers"])
    init = of(spec.get("initContainers") or [])
    cpu = max([sum(r.cpu_m for r in main), *(r.cpu_m for r in init)])
    memory = max([sum(r.memory_mi for r in main), *(r.memory_mi for r in init)])
    return Requests(cpu, memory)


def gpu_types(p: Preview) -> list[str]:
    (group,) = [g for g in p.of_type("eks:index:ManagedNodeGroup") if g.inputs.get("taints")]
    return list(group.inputs["instanceTypes"])


def daemonsets_on_gpu_nodes(p: Preview, instance_type: str) -> dict[str, Requests]:
    """The DaemonSets of the rendered stack that land on a GPU node, read from what the preview installs: the EKS
    add-ons' node agents, the device plugin and node-exporter (with the GPU toleration keel gives them), and the
    Container Insights add-on's agents."""
    addons = {a.inputs["addonName"]: a for a in p.of_type(ADDON)}
    releases = {r.inputs["chart"]: r for r in p.of_type(RELEASE)}
    cluster: Step = p.of_type("eks:index:Cluster")[0]
    present = {
        "kube-proxy": cluster.inputs["kubeProxyAddonOptions"]["enabled"] is True,
        "aws-node": "vpcCniOptions" in cluster.inputs,  # pulumi-eks's vpc-cni add-on
        "ebs-csi-node": "aws-ebs-csi-driver" in addons,
        "eks-pod-identity-agent": "eks-pod-identity-agent" in addons,
        "nvidia-device-plugin": GPU_TOLERATION in releases["nvidia-device-plugin"].inputs["values"]["tolerations"],
        "node-exporter": "kube-prometheus-stack" in releases
        and GPU_TOLERATION
        in releases["kube-prometheus-stack"].inputs["values"]["prometheus-node-exporter"]["tolerations"],
        "cloudwatch-agent": "amazon-cloudwatch-observability" in addons,
        "fluent-bit": "amazon-cloudwatch-observability" in addons
        and json.loads(addons["amazon-cloudwatch-observability"].inputs["configurationValues"])["containerLogs"][
            "enabled"
        ],
        "dcgm-exporter": "amazon-cloudwatch-observability" in addons,
    }
    assert set(present) == set(GPU_NODE_DAEMONSETS)
    rendered = {name: GPU_NODE_DAEMONSETS[name].value.requests for name, on in present.items() if on}
    # components.capacity (what config validation uses) selects the same set from the config
    assert rendered == capacity.gpu_node_daemonsets(
        instance_type,
        container_insights="amazon-cloudwatch-observability" in addons,
        prometheus="kube-prometheus-stack" in releases,
    )
    return rendered


@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_gpu_jobs_fit_every_gpu_instance_type_after_the_daemonsets(
    preview: Callable[[str], Preview], stack: str
) -> None:
    p = preview(stack)
    jobs = gpu_jobs(p)
    assert "forecast-trainer" in jobs
    types = gpu_types(p)
    assert types == {"prod": ["g4dn.xlarge"], "dev": ["g4dn.xlarge", "g5.xlarge"]}[stack]
    for instance_type in types:
        node = capacity.allocatable(instance_type)
        daemons = daemonsets_on_gpu_nodes(p, instance_type)
        used = Requests(sum(r.cpu_m for r in daemons.values()), sum(r.memory_mi for r in daemons.values()))
        for name, spec in jobs.items():
            asked = pod_requests(spec)
            assert asked.cpu_m <= node.cpu_m - used.cpu_m, (stack, instance_type, name, asked, node, used)
            assert asked.memory_mi <= node.memory_mi - used.memory_mi, (stack, instance_type, name, asked, node, used)


def test_the_prod_trainer_on_a_g4dn_xlarge_by_the_numbers(preview: Callable[[str], Preview]) -> None:
    """The same sum written out for the tests' prod stack (Container Insights and the Prometheus stack on)."""
    p = preview("prod")
    assert pod_requests(gpu_jobs(p)["forecast-trainer"]) == Requests(3000, 12 * 1024)
    shape = GPU_INSTANCE_SHAPES["g4dn.xlarge"].value
    assert (shape.vcpus, shape.memory_mib, shape.enis, shape.ips_per_eni) == (4, 16384, 3, 10)
    assert capacity.max_pods("g4dn.xlarge") == 3 * (10 - 1) + 2 == 29
    # kube-reserved: 6% of core 1 + 1% of core 2 + 0.5% of cores 3-4; 11 MiB x 29 pods + 255 MiB
    assert capacity.kube_reserved("g4dn.xlarge") == Requests(60 + 10 + 10, 11 * 29 + 255)
    # 16384 MiB less ceil(7.5%) for the kernel and firmware, less kube-reserved, less the 100Mi eviction threshold
    assert capacity.allocatable("g4dn.xlarge") == Requests(4000 - 80, 16384 - 1229 - 574 - 100)
    daemons = daemonsets_on_gpu_nodes(p, "g4dn.xlarge")
    assert daemons == {
        "kube-proxy": Requests(100, 0),
        "aws-node": Requests(25, 0),
        "ebs-csi-node": Requests(30, 104),
        "eks-pod-identity-agent": Requests(0, 0),
        "nvidia-device-plugin": Requests(0, 0),
        "node-exporter": Requests(0, 0),
        "cloudwatch-agent": Requests(250, 128),
        "fluent-bit": Requests(50, 25),
        "dcgm-exporter": Requests(250, 128),
    }
    assert capacity.room("g4dn.xlarge", container_insights=True, prometheus=True) == Requests(3920 - 705, 14481 - 385)
    # 215m and 1808Mi to spare


def test_dev_without_container_insights_agents_has_more_room() -> None:
    base = capacity.room("g5.xlarge", container_insights=True, prometheus=False)
    bare = capacity.room("g5.xlarge", container_insights=False, prometheus=False)
    assert Requests(bare.cpu_m - base.cpu_m, bare.memory_mi - base.memory_mi) == Requests(550, 281)


@pytest.mark.parametrize("instance_type", sorted(KARPENTER_ALLOCATABLE))
def test_allocatable_matches_karpenters_published_table(instance_type: str) -> None:
    """An independent check of the arithmetic: Karpenter's generated table (AL2023, the same nodeadm reservations
    and memory overhead) lists the allocatable of each type for the max pods it assumes."""
    published, pods = KARPENTER_ALLOCATABLE[instance_type].value
    assert pods == capacity.eni_max_pods(instance_type)
    assert capacity.allocatable(instance_type, pods) == published


def test_managed_node_groups_cap_max_pods() -> None:
    threshold, below, above = MNG_MAX_PODS_CAP.value
    assert (threshold, below, above) == (30, 110, 250)
    assert capacity.eni_max_pods("g5.4xlarge") == 8 * 29 + 2 == 234
    assert capacity.max_pods("g5.4xlarge") == 110  # 16 vCPUs: the group's cap wins, less memory reserved
    assert capacity.max_pods("g5.xlarge") == 58


def test_the_reservation_facts_are_nodeadms() -> None:
    assert NODEADM_MAX_PODS.value == "enis * (ips_per_eni - 1) + 2"
    assert NODEADM_KUBE_RESERVED_CPU.value[:3] == ((0, 1000, 600), (1000, 2000, 100), (2000, 4000, 50))
    assert NODEADM_KUBE_RESERVED_MEMORY.value == (11, 255)
    assert NODEADM_EVICTION_MEMORY_MI.value == 100
    assert VM_MEMORY_OVERHEAD.value == 0.075


def test_every_gpu_type_a_stack_allows_is_one_keel_can_size() -> None:
    """The config check skips instance types without facts: none of the shipped or test stacks' GPU types may be
    one of them."""
    project = stackfiles.load_project(ROOT)
    sources = [(f"tests/stacks {s}", loaded(s)) for s in ("prod", "dev")] + [
        (stack, dict(stackfiles.load_stack(ROOT, stack, project).config)) for stack in stackfiles.stacks(ROOT)
    ]
    for stack, source in sources:
        cluster = json.loads(source.get("keel:cluster", "{}"))
        for instance_type in cluster.get("nodeGroups", {}).get("gpu", {}).get("instanceTypes", []):
            assert capacity.shape(instance_type) is not None, (stack, instance_type)


def with_trainer(stack: str, **resources: str) -> dict[str, str]:
    raw = loaded(stack)
    services = json.loads(raw["keel:services"])
    services["forecast-trainer"]["resources"] = {**services["forecast-trainer"]["resources"], **resources}
    raw["keel:services"] = json.dumps(services)
    return raw


def test_config_refuses_a_gpu_job_that_cannot_fit_the_smallest_gpu_type() -> None:
    assert list(capacity_checks(validate("prod", loaded("prod")))) == []
    assert list(capacity_checks(validate("dev", loaded("dev")))) == []
    with pytest.raises(ConfigError) as err:  # validation runs the check: nothing is registered
        validate("prod", with_trainer("prod", cpu="3500m", memory="14Gi"))
    assert err.value.problems == [
        "keel:services.forecast-trainer.resources.cpu: got '3500m'; a g4dn.xlarge node of keel:cluster.nodeGroups.gpu "
        "has 3215m left for it after kubelet's reservations and the DaemonSets on GPU nodes: request at most 3215m or "
        "use a larger instance type",
        "keel:services.forecast-trainer.resources.memory: got '14Gi'; a g4dn.xlarge node of "
        "keel:cluster.nodeGroups.gpu has 14096Mi left for it after kubelet's reservations and the DaemonSets on GPU "
        "nodes: request at most 14096Mi or use a larger instance type",
    ]
    # a pool of several types is judged by the one with the least room: dev's g5.xlarge reserves more (58 pods)
    with pytest.raises(ConfigError) as err:
        validate("dev", with_trainer("dev", memory="13900Mi"))
    (problem,) = err.value.problems
    assert problem.startswith("keel:services.forecast-trainer.resources.memory: got '13900Mi'; a g5.xlarge node ")


def test_a_job_that_fits_only_the_autoscalers_template_is_refused() -> None:
    """The autoscaler builds a scale-from-zero node with allocatable = capacity
    (AUTOSCALER_TEMPLATE_ALLOCATABLE_IS_CAPACITY): it would start a g4dn.xlarge for 3900m, which the real node
    cannot give (3215m after reservations and DaemonSets), and the job would pend on an idle GPU. keel refuses it."""
    from components.upstream import AUTOSCALER_TEMPLATE_ALLOCATABLE_IS_CAPACITY

    assert AUTOSCALER_TEMPLATE_ALLOCATABLE_IS_CAPACITY.value is True
    with pytest.raises(ConfigError) as err:
        validate("prod", with_trainer("prod", cpu="3900m"))
    [problem] = err.value.problems
    assert problem.startswith("keel:services.forecast-trainer.resources.cpu: got '3900m'; a g4dn.xlarge node ")
    assert "has 3215m left for it" in problem
