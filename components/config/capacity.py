"""Capacity rules that span ``keel:cluster``, ``keel:network``, ``keel:services`` and ``keel:alerts``:
:func:`capacity_checks`, for :func:`~components.config.checks.cross_checks`.

- The general pool is one managed node group per zone (``components.cluster``), each with its share of
  ``minSize``/``maxSize``/``desiredSize`` (:func:`~components.config.cluster.zone_shares`): every zone's group needs
  a maximum of at least one node, so ``maxSize`` must be at least the zone count.
- A GPU service's requests must fit the GPU pool's smallest instance type once kubelet's reservations and the
  DaemonSets on GPU nodes are taken (:func:`components.capacity.room`): the cluster autoscaler would start a node
  for it anyway (its template offers the whole instance) and the pod would stay pending. Instance types keel has
  no facts for are not judged (``components.upstream.GPU_INSTANCE_SHAPES`` lists those it has).
"""

from __future__ import annotations

from collections.abc import Iterable

from components import capacity
from components.config.base import shown
from components.config.stack import StackConfig
from components.upstream import Requests
from components.vocabulary import GENERAL_POOL


def zone_count(cfg: StackConfig) -> int:
    """The zones the stack's subnets (and so the general pool's groups) are in."""
    return len(cfg.network.zone_names) if cfg.network.zone_names else cfg.network.availability_zones


def capacity_checks(cfg: StackConfig) -> Iterable[str]:
    """Each yields one ``keel:<path>: ...`` problem."""
    cluster = cfg.cluster
    if cluster is None:
        return
    zones = zone_count(cfg)
    general = cluster.node_groups.general
    if general.max_size < zones:
        yield (
            f"keel:cluster.nodeGroups.{GENERAL_POOL}.maxSize: got {general.max_size}; the general pool is one node "
            f"group per zone and each needs room for a node: at least {zones} (the stack's zones)"
        )
    gpu = cluster.node_groups.gpu
    if gpu is None:
        return
    alerts = cfg.alerts
    insights = alerts is not None and alerts.container_insights
    prometheus = alerts is not None and alerts.prometheus is not None
    rooms = {
        t: capacity.room(t, container_insights=insights, prometheus=prometheus)
        for t in gpu.instance_types
        if capacity.shape(t) is not None
    }
    if not rooms:
        return
    for name, svc in cfg.services.items():
        if not svc.gpu:
            continue
        asked = Requests(capacity.cpu_millicores(svc.resources.cpu), capacity.memory_mib(svc.resources.memory))
        for key, index, unit, value in (("cpu", 0, "m", svc.resources.cpu), ("memory", 1, "Mi", svc.resources.memory)):
            left, tightest = min((room[index], t) for t, room in rooms.items())
            if asked[index] > left:
                yield (
                    f"keel:services.{name}.resources.{key}: got {shown(value)}; a {tightest} node of "
                    f"keel:cluster.nodeGroups.gpu has {left}{unit} left for it after kubelet's reservations and the "
                    f"DaemonSets on GPU nodes: request at most {left}{unit} or use a larger instance type"
                )
