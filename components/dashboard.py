"""The CloudWatch dashboard of :class:`~components.observability.Observability`: the golden signals (traffic,
errors, latency, saturation) of each tier, one row per tier.

Usage::

    body = dashboard_body(ctx.region, database, nodes, load_balancer, cluster.name, asgs)
    aws.cloudwatch.Dashboard(name, dashboard_name=name, dashboard_body=pulumi.Output.json_dumps(body))

Creates no resources: :func:`dashboard_body` builds the dashboard's body (Outputs inside, so serialize it with
``pulumi.Output.json_dumps``) and :class:`~components.observability.Observability` creates the ``<n>``
dashboard from it. Rows: the ALB (requests, 5xx, p95 per target group), the database (CPU, connections,
latency), the caches (memory, engine CPU, evictions per node) and the node groups (nodes per group, CPU,
pending pods); a tier that is not deployed has no row.

Outputs: the body, ``{"widgets": [...]}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi

from components.alarms import SAMPLES_PER_INSTANCE
from components.database import Database
from components.ingress import LoadBalancer


def _widget(title: str, metrics: list[list[Any]], x: int, y: int, stat: str, region: str) -> dict[str, Any]:
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": 8,
        "height": 6,
        "properties": {
            "title": title,
            "region": region,
            "stat": stat,
            "period": 300,
            "view": "timeSeries",
            "metrics": metrics,
        },
    }


def dashboard_body(
    region: str,
    database: Database | None,
    nodes: Mapping[str, Sequence[pulumi.Input[str]]],
    load_balancer: LoadBalancer | None,
    cluster_name: pulumi.Input[str] | None,
    asgs: Mapping[str, pulumi.Input[str]],
) -> dict[str, Any]:
    """The golden signals (traffic, errors, latency, saturation) of each tier, one row per tier: ``nodes`` are the
    caches' node ids by cache, ``asgs`` the node groups' Auto Scaling groups by group."""
    widgets: list[dict[str, Any]] = []
    row = 0
    if load_balancer is not None:
        lb = load_balancer.alb.arn_suffix
        ns = "AWS/ApplicationELB"
        groups = load_balancer.target_groups
        widgets += [
            _widget("ALB requests", [[ns, "RequestCount", "LoadBalancer", lb]], 0, row, "Sum", region),
            _widget(
                "ALB 5xx",
                [
                    [ns, "HTTPCode_Target_5XX_Count", "LoadBalancer", lb],
                    [ns, "HTTPCode_ELB_5XX_Count", "LoadBalancer", lb],
                ],
                8,
                row,
                "Sum",
                region,
            ),
            _widget(
                "Target p95 response time (s)",
                [
                    [ns, "TargetResponseTime", "LoadBalancer", lb, "TargetGroup", g.arn_suffix, {"label": svc}]
                    for svc, g in groups.items()
                ],
                16,
                row,
                "p95",
                region,
            ),
        ]
        row += 6
    if database is not None:
        ns, dim = "AWS/RDS", ["DBInstanceIdentifier", database.identifier]
        widgets += [
            _widget("RDS CPU %", [[ns, "CPUUtilization", *dim]], 0, row, "Average", region),
            _widget("RDS connections", [[ns, "DatabaseConnections", *dim]], 8, row, "Maximum", region),
            _widget(
                "RDS latency (s)", [[ns, "ReadLatency", *dim], [ns, "WriteLatency", *dim]], 16, row, "Average", region
            ),
        ]
        row += 6
    if nodes:
        ns = "AWS/ElastiCache"
        for x, (title, metric, stat) in enumerate(
            (
                ("Redis memory %", "DatabaseMemoryUsagePercentage", "Maximum"),
                ("Redis engine CPU %", "EngineCPUUtilization", "Average"),
                ("Redis evictions", "Evictions", "Sum"),
            )
        ):
            metrics = [[ns, metric, "CacheClusterId", node] for ids in nodes.values() for node in ids]
            widgets.append(_widget(title, metrics, 8 * x, row, stat, region))
        row += 6
    if cluster_name is not None:
        cpu = [["AWS/EC2", "CPUUtilization", "AutoScalingGroupName", asg, {"label": g}] for g, asg in asgs.items()]
        counts: list[list[Any]] = [
            [{"expression": f"FILL(s{i}, 0) / {SAMPLES_PER_INSTANCE}", "label": g, "id": f"n{i}"}]
            for i, g in enumerate(asgs)
        ] + [[*m[:4], {"id": f"s{i}", "stat": "SampleCount", "visible": False}] for i, m in enumerate(cpu)]
        widgets += [
            _widget("Nodes per group", counts, 0, row, "SampleCount", region),
            _widget(
                "Node CPU % per group",
                cpu,
                8,
                row,
                "Average",
                region,
            ),
            _widget(
                "Pods pending",
                [["ContainerInsights", "pod_status_pending", "ClusterName", cluster_name]],
                16,
                row,
                "Maximum",
                region,
            ),
        ]
    return {"widgets": widgets}
