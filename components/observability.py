"""Observability: CloudWatch alarms to an encrypted SNS topic, a dashboard, Container Insights and (optionally)
the kube-prometheus-stack.

Usage::

    watch = Observability("keel-prod", cfg.alerts, network=network, cluster=cluster,
                          node_groups=cfg.cluster.node_groups, database=database, caches=caches,
                          load_balancer=lb, backup=backup, protect=True,
                          opts=pulumi.ResourceOptions(parent=platform))
    watch.topic          # the alerts topic; every alarm's alarm and OK action
    watch.alarms         # by key: "db-cpu", "queue-memory", "web-p95", ...

Creates (``<n>`` is the component name):

- ``<n>-observability`` KMS key and alias: the alerts topic and the Container Insights log groups. Its policy
  lets CloudWatch (alarms named ``<n>-*`` of this account) and CloudWatch Logs (those log groups) use it.
- ``<n>-alerts`` SNS topic on that key, its policy (CloudWatch alarms of this account publish; nothing
  without TLS), and ``<n>-alerts-<i>`` e-mail subscriptions.
- ``<n>-<key>`` CloudWatch alarms, each an :class:`~components.alarms.AlarmSpec` from the ``*_alarms`` functions of
  :mod:`components.alarms` (thresholds from ``keel:alerts.thresholds``), each naming its runbook entry in the README
  (``README.md#<runbook>``): database CPU, connections, free storage and replication-slot lag; per read replica lag,
  CPU, connections and free storage; per cache memory, engine CPU, replication lag (with replicas) and evictions
  (``noeviction`` caches); the ALB's 5xx rate and, per target group, p95 response time and unhealthy hosts; port
  allocation errors per NAT gateway; each pool without GPUs at its maximum size (the general pool's nodes summed over
  its per-zone groups: one zone's group at its share is normal, the pool at its ``maxSize`` is not); per GPU job, a job
  pending with no GPU node running; backup jobs that failed, expired or were aborted, and failed copies. Node counts are
  read from the instances' ``AWS/EC2`` samples (see :mod:`components.alarms`).
- ``<n>`` CloudWatch dashboard with the golden signals of the ALB, database, caches and node groups
  (:mod:`components.dashboard`).
- With ``containerInsights``: ``<n>-containerinsights-<kind>`` log groups (application, dataplane, host,
  performance: retention and KMS, created before the add-on would create them without either),
  ``<n>-cloudwatch-agent`` Pod Identity role (``CloudWatchAgentServerPolicy``) and the
  ``amazon-cloudwatch-observability`` EKS add-on (enhanced Container Insights, accelerated-compute (GPU)
  metrics, container logs).
- With ``prometheus``: :class:`~components.prometheus.PrometheusStack`.

Outputs: ``topic``, ``topic_arn``, ``alarms`` (by key), ``dashboard``, ``prometheus`` (None without it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import context
from components.alarms import (
    RUNBOOK,
    SAMPLES_PER_INSTANCE,
    AlarmSpec,
    backup_alarms,
    cache_alarms,
    database_alarms,
    database_replica_alarms,
    gpu_job_alarms,
    instances,
    load_balancer_alarms,
    nat_alarms,
)
from components.backup import Backup
from components.cache import Cache
from components.cluster import AddonRole, Cluster, addon_with_role
from components.config import AlertsConfig, NodeGroupsConfig, ThresholdsConfig
from components.dashboard import dashboard_body
from components.database import Database
from components.documents import deny_without_tls, service_publishes, service_uses_key
from components.iam import document
from components.ingress import LoadBalancer
from components.keys import create_key, logs_may_use
from components.network import Network
from components.nodes import first_asg_name
from components.prometheus import PrometheusStack
from components.vocabulary import GENERAL_POOL

#: Log groups the Container Insights add-on writes: ``/aws/containerinsights/<cluster>/<kind>``.
CONTAINER_INSIGHTS_LOGS = ("application", "dataplane", "host", "performance")


class Observability(pulumi.ComponentResource):
    """Alarms, the alerts topic, the dashboard, Container Insights and the optional Prometheus stack,
    configured by ``keel:alerts``.

    ``config`` is the ``keel:alerts`` section: recipients, thresholds, Container Insights, dashboard and
    Prometheus. Keyword parameters (what it watches, then stack-wide choices):

    - ``network``: its NAT gateways get port-allocation alarms.
    - ``cluster``: the EKS cluster (its name, node groups' Auto Scaling groups, Kubernetes provider). None: no
      node-group or GPU alarms, no Container Insights, no Prometheus.
    - ``node_groups``: the cluster's node groups as configured (``keel:cluster.nodeGroups``): each pool without
      GPUs gets one at-maximum alarm at its ``maxSize``, over the sum of its groups (one per zone); the GPU group
      is the one GPU jobs wait for. Required with ``cluster``; None without one.
    - ``database``: None: no database alarms or dashboard row.
    - ``caches``: by label; each gets memory, CPU, replication-lag and eviction alarms. None: none.
    - ``load_balancer``: None: no ALB alarms or dashboard row.
    - ``backup``: None: no backup-job alarms.
    - ``app_namespace``: the application namespace's resource (Prometheus scrapes there). None: no services.
    - ``keda``: the KEDA release (Prometheus scrapes it). None: no KEDA.
    - ``namespace``: the application namespace (GPU jobs pend there; Prometheus scrapes there).
    - ``gpu_jobs``: services of ``kind: job`` that request GPUs: each gets a "GPU unavailable while jobs wait"
      alarm.
    - ``protect``: True: ``protect`` on the key and the log groups.
    """

    key: aws.kms.Key
    topic: aws.sns.Topic
    topic_arn: pulumi.Output[str]
    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    specs: list[AlarmSpec]
    dashboard: aws.cloudwatch.Dashboard | None
    log_groups: dict[str, aws.cloudwatch.LogGroup]
    container_insights: aws.eks.Addon | None
    prometheus: PrometheusStack | None

    def __init__(
        self,
        name: str,
        config: AlertsConfig,
        *,
        network: Network,
        cluster: Cluster | None = None,
        node_groups: NodeGroupsConfig | None = None,
        database: Database | None = None,
        caches: Mapping[str, Cache] | None = None,
        load_balancer: LoadBalancer | None = None,
        backup: Backup | None = None,
        app_namespace: k8s.core.v1.Namespace | None = None,
        keda: k8s.helm.v3.Release | None = None,
        namespace: str = "apps",
        gpu_jobs: Sequence[str] = (),
        protect: bool = True,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        if (cluster is None) != (node_groups is None):
            raise ValueError(f"Observability {name}: pass node_groups (the cluster's config) with cluster, or neither")
        super().__init__("keel:observability:Observability", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ctx = context.lookup(pulumi.InvokeOptions(parent=self))
        insights = config.container_insights and cluster is not None
        groups = (
            {kind: f"/aws/containerinsights/{cluster.cluster_name}/{kind}" for kind in CONTAINER_INSIGHTS_LOGS}
            if insights and cluster is not None
            else {}
        )
        alarm_arns = ctx.arn("cloudwatch", f"alarm:{name}-*")
        self.key = create_key(
            f"{name}-observability",
            "the alerts topic and the Container Insights log groups",
            ctx,
            service_statements=[
                service_uses_key(
                    "CloudWatchAlarmsPublishToTheEncryptedTopic", "cloudwatch.amazonaws.com", ctx.account, alarm_arns
                ),
                *([logs_may_use(ctx, [ctx.arn("logs", f"log-group:{g}") for g in groups.values()])] if groups else []),
            ],
            protect=protect,
            opts=child,
        )
        self.topic = aws.sns.Topic(f"{name}-alerts", name=f"{name}-alerts", kms_master_key_id=self.key.arn, opts=child)
        self.topic_arn = self.topic.arn
        aws.sns.TopicPolicy(
            f"{name}-alerts",
            arn=self.topic.arn,
            policy=self.topic.arn.apply(
                lambda arn: json.dumps(
                    document(
                        [
                            service_publishes(
                                "CloudWatchAlarmsPublish", "cloudwatch.amazonaws.com", arn, ctx.account, alarm_arns
                            ),
                            deny_without_tls("DenyPublishWithoutTls", "sns:Publish", arn),
                        ]
                    )
                )
            ),
            opts=child,
        )
        for index, email in enumerate(config.emails):
            aws.sns.TopicSubscription(
                f"{name}-alerts-{index}", topic=self.topic.arn, protocol="email", endpoint=email, opts=child
            )

        # What alarms and dashboard both read, worked out once: each cache's node ids, each node group's ASG (by
        # the group's name: general-<az>, gpu) and each pool's ASGs in zone order.
        nodes = {label: cache.node_ids for label, cache in (caches or {}).items()}
        asgs = {g: first_asg_name(group) for g, group in cluster.node_groups.items()} if cluster is not None else {}
        pools = (
            {
                pool: [asgs[g] for g, group in cluster.node_groups.items() if group in members]
                for pool, members in cluster.pools.items()
            }
            if cluster is not None
            else {}
        )
        self.specs = self._specs(
            config.thresholds,
            network,
            cluster,
            node_groups,
            database,
            caches or {},
            nodes,
            pools,
            load_balancer,
            backup,
            insights,
            namespace,
            gpu_jobs,
        )
        self.alarms = {spec.key: self._alarm(name, spec) for spec in self.specs}
        self.dashboard = None
        if config.dashboard:
            self.dashboard = aws.cloudwatch.Dashboard(
                name,
                dashboard_name=name,
                dashboard_body=pulumi.Output.json_dumps(
                    dashboard_body(ctx.region, database, nodes, load_balancer, cluster.name if cluster else None, asgs)
                ),
                opts=child,
            )

        self.log_groups = {}
        self.container_insights = None
        if insights and cluster is not None:
            self._container_insights(name, config, cluster, ctx, groups, protect)
        self.prometheus = None
        if config.prometheus is not None and cluster is not None:
            self.prometheus = PrometheusStack(
                name,
                config.prometheus,
                thresholds=config.thresholds,
                cluster=cluster,
                topic=self.topic,
                topic_key=self.key,
                namespace=namespace,
                app_namespace=app_namespace,
                keda=keda,
                opts=child,
            )
        self.register_outputs(
            {
                "topic_arn": self.topic_arn,
                "alarms": sorted(self.alarms),
                "dashboard": self.dashboard.dashboard_name if self.dashboard else None,
            }
        )

    @staticmethod
    def _specs(
        t: ThresholdsConfig,
        network: Network,
        cluster: Cluster | None,
        node_groups: NodeGroupsConfig | None,
        database: Database | None,
        caches: Mapping[str, Cache],
        nodes: Mapping[str, Sequence[pulumi.Input[str]]],
        pools: Mapping[str, Sequence[pulumi.Input[str]]],
        load_balancer: LoadBalancer | None,
        backup: Backup | None,
        insights: bool,
        namespace: str,
        gpu_jobs: Sequence[str],
    ) -> list[AlarmSpec]:
        specs: list[AlarmSpec] = []
        if database is not None:
            specs += database_alarms(database.identifier, t, database.max_connections, database.allocated_storage_gb)
            specs += database_replica_alarms(
                database.replica_identifiers, t, database.max_connections, database.allocated_storage_gb
            )
        for label, cache in caches.items():
            specs += cache_alarms(label, nodes[label], t, evicting=cache.evicts, replicas=cache.replicas_per_shard)
        if load_balancer is not None:
            specs += load_balancer_alarms(
                load_balancer.alb.arn_suffix,
                {svc: group.arn_suffix for svc, group in load_balancer.target_groups.items()},
                t,
            )
        specs += nat_alarms([nat.id for nat in network.nat_gateways])
        if cluster is not None and node_groups is not None:
            gpu_asg = None
            for pool, group in node_groups.items():
                if group.gpu:
                    gpu_asg = pools[pool][0]
                else:
                    specs.append(pool_at_max_alarm(pool, pools[pool], group.max_size, t))
            if gpu_asg is not None and insights:
                for job in gpu_jobs:
                    specs += gpu_job_alarms(job, cluster.name, namespace, gpu_asg, t)
        if backup is not None:
            specs += backup_alarms(backup.vault_name, backup.copy_vault is not None)
        return specs

    def _alarm(self, name: str, spec: AlarmSpec) -> aws.cloudwatch.MetricAlarm:
        common: dict[str, Any] = {
            "name": f"{name}-{spec.key}",
            "alarm_description": f"{spec.summary}. Runbook: {RUNBOOK}#{spec.runbook}",
            "comparison_operator": spec.comparison,
            "threshold": spec.threshold,
            "evaluation_periods": spec.periods,
            "datapoints_to_alarm": spec.periods,
            "treat_missing_data": spec.missing,
            "alarm_actions": [self.topic.arn],
            "ok_actions": [self.topic.arn],
        }
        if spec.metric is not None:
            m = spec.metric
            stat: dict[str, Any] = {"extended_statistic": m.stat} if m.stat.startswith("p") else {"statistic": m.stat}
            return aws.cloudwatch.MetricAlarm(
                f"{name}-{spec.key}",
                namespace=m.namespace,
                metric_name=m.name,
                dimensions=dict(m.dimensions),
                period=m.period,
                **stat,
                **common,
                opts=pulumi.ResourceOptions(parent=self),
            )
        queries = [
            aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id="alarm", expression=spec.expression, label=spec.summary, return_data=True
            ),
            *[
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id=query_id,
                    return_data=False,
                    metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                        namespace=m.namespace,
                        metric_name=m.name,
                        dimensions=dict(m.dimensions),
                        period=m.period,
                        stat=m.stat,
                    ),
                )
                for query_id, m in spec.metrics.items()
            ],
        ]
        return aws.cloudwatch.MetricAlarm(
            f"{name}-{spec.key}", metric_queries=queries, **common, opts=pulumi.ResourceOptions(parent=self)
        )

    def _container_insights(
        self,
        name: str,
        cfg: AlertsConfig,
        cluster: Cluster,
        ctx: context.AwsContext,
        groups: Mapping[str, str],
        protect: bool,
    ) -> None:
        kept = pulumi.ResourceOptions(parent=self, protect=protect)
        for kind, group in groups.items():
            self.log_groups[kind] = aws.cloudwatch.LogGroup(
                f"{name}-containerinsights-{kind}",
                name=group,
                kms_key_id=self.key.arn,
                retention_in_days=cfg.log_retention_days,
                opts=kept,
            )
        self.container_insights = addon_with_role(
            cluster,
            ctx,
            AddonRole(
                addon="amazon-cloudwatch-observability",
                resource_name=f"{name}-cloudwatch-observability",
                role_name=f"{name}-cloudwatch-agent",
                namespace="amazon-cloudwatch",
                service_account="cloudwatch-agent",
                policy="CloudWatchAgentServerPolicy",
                description=f"{name}: CloudWatch agent and Fluent Bit of Container Insights",
                configuration=container_insights_configuration(),
            ),
            parent=self,
            depends_on=[*self.log_groups.values(), cluster.pod_identity_agent, *cluster.pools[GENERAL_POOL]],
        )


def pool_at_max_alarm(pool: str, asgs: Sequence[pulumi.Input[str]], max_size: int, t: ThresholdsConfig) -> AlarmSpec:
    """``<pool>-at-max``: the pool's running nodes, summed over its groups' ASGs (``s0``, ``s1``, ... in zone order),
    at its configured ``maxSize`` for ``nodeGroupAtMaxMinutes``. One alarm per pool, not per zone: a zone's group
    at its share of the maximum is the normal state of a small pool (prod's 4 over 3 zones gives 2, 1 and 1), and
    the operator's answer (raise ``maxSize``) is the pool's."""
    ids = [f"s{index}" for index in range(len(asgs))]
    total = " + ".join(f"FILL({i}, 0)" for i in ids)
    return AlarmSpec(
        f"{pool}-at-max",
        "node-group-at-max",
        f"Node pool {pool} at its maximum size ({max_size} nodes over {len(ids)} group(s)) for "
        f"{t.node_group_at_max_minutes} minutes",
        max_size,
        "GreaterThanOrEqualToThreshold",
        t.node_group_at_max_minutes // 5,
        expression=f"({total}) / {SAMPLES_PER_INSTANCE}" if len(ids) > 1 else f"{total} / {SAMPLES_PER_INSTANCE}",
        metrics={i: instances(asg) for i, asg in zip(ids, asgs, strict=True)},
    )


def container_insights_configuration() -> dict[str, Any]:
    """The add-on's configuration: enhanced Container Insights (pod status, per-pod metrics) with GPU metrics,
    and container logs through Fluent Bit. It replaces the add-on's default agent config, so it keeps only what
    keel uses (no Application Signals)."""
    return {
        "agent": {
            "config": {
                "logs": {
                    "metrics_collected": {
                        "kubernetes": {"enhanced_container_insights": True, "accelerated_compute_metrics": True}
                    }
                }
            }
        },
        "containerLogs": {"enabled": True},
    }
