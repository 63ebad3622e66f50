"""Rules that read more than one field, span sections or depend on the environment: :func:`cross_checks`, run
by :func:`~components.config.loading.validate` once every section is valid on its own.

A rule that depends on the environment reads the guarantee it enforces (``cfg.guarantees.protected``, the table
:data:`~components.config.stack.ENVIRONMENTS`), never the environment's name, and its message names the key, the
bad value, the stack's environment and what that environment allows:
``keel:database.multiAz: got false in a prod stack; allowed: true``."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from components import vocabulary
from components.config.base import shown
from components.config.capacity import capacity_checks
from components.config.cluster import instance_family
from components.config.data import CacheConfig, proxy_checks
from components.config.services import SERVICE_NAME, IngressConfig, ServiceConfig, secret_checks
from components.config.stack import StackConfig
from components.upstream import OTEL_PROMETHEUS_ENV
from components.vocabulary import GPU_FAMILIES, GPU_POOL


def cross_checks(cfg: StackConfig) -> Iterable[str]:
    """Every cross-field rule, section by section. Each yields one ``keel:<path>: ...`` problem."""
    yield from _stack_checks(cfg)
    yield from _cluster_checks(cfg)
    yield from _data_checks(cfg)
    yield from _service_checks(cfg)
    yield from secret_checks(cfg.services)
    yield from capacity_checks(cfg)
    yield from _operations_checks(cfg)


def _stack_checks(cfg: StackConfig) -> Iterable[str]:
    """Stack-wide rules: ``protect`` where stateful resources are protected, ``zoneNames`` matches
    ``availabilityZones``, a NAT per zone where the stack must survive a zone."""
    net, env, held = cfg.network, cfg.environment, cfg.guarantees
    if held.protected and not cfg.protect:
        yield f"keel:protect: got false in a {env} stack; allowed: true ({env} stateful resources are always protected)"
    if net.zone_names is not None and len(net.zone_names) != net.availability_zones:
        yield (
            f"keel:network.zoneNames: got {len(net.zone_names)} zone(s) {shown(net.zone_names)}; "
            f"must list exactly availabilityZones ({net.availability_zones}) zones"
        )
    if (
        held.survives_a_zone
        and net.nat_gateways == "Single"
        and net.availability_zones > 1
        and not net.allow_single_nat_in_prod
    ):
        yield (
            f"keel:network.natGateways: got 'Single' in a {env} stack; allowed: 'OnePerAz' "
            "(or set keel:network.allowSingleNatInProd: true to accept that one zone outage cuts egress for all)"
        )


def _cluster_checks(cfg: StackConfig) -> Iterable[str]:
    cluster, env, held = cfg.cluster, cfg.environment, cfg.guarantees
    if cluster is None:
        return
    if cfg.network.nat_gateways == "None":
        yield (
            "keel:network.natGateways: got 'None' with a cluster; nodes pull add-on images from public registries "
            "and call AWS APIs without endpoints for all of them; allowed: 'Single' or 'OnePerAz'"
        )
    if held.private_api and any(ipaddress.ip_network(c).prefixlen == 0 for c in cluster.public_access_cidrs):
        yield (
            f"keel:cluster.publicAccessCidrs: got '0.0.0.0/0' in a {env} stack; allowed: [] (private endpoint only) "
            "or specific CIDRs such as your VPN's"
        )
    for name, group in cluster.node_groups.items():
        path = f"keel:cluster.nodeGroups.{name}"
        if group.min_size > group.max_size:
            yield f"{path}.minSize: got {group.min_size}; must be at most maxSize ({group.max_size})"
        elif not group.min_size <= group.desired <= group.max_size:
            yield (
                f"{path}.desiredSize: got {group.desired}; must be between minSize ({group.min_size}) "
                f"and maxSize ({group.max_size})"
            )
        not_gpu = [t for t in group.instance_types if instance_family(t) not in GPU_FAMILIES]
        if group.gpu and not_gpu:
            yield (
                f"{path}.instanceTypes: got {shown(not_gpu)} in a GPU group; allowed families: "
                f"{', '.join(GPU_FAMILIES)}"
            )
        if not group.gpu and name != GPU_POOL and len(not_gpu) < len(group.instance_types):
            yield (
                f"{path}.instanceTypes: got GPU types {shown(sorted(set(group.instance_types) - set(not_gpu)))} "
                "in a group without gpu: true; set gpu: true or use the gpu group"
            )
    gpu = cluster.node_groups.gpu
    if gpu is not None:
        if not gpu.gpu:
            yield "keel:cluster.nodeGroups.gpu.gpu: got false; the gpu group must set gpu: true"
        if cluster.require_spot_gpus and gpu.capacity_type != "SPOT":
            yield (
                f"keel:cluster.nodeGroups.gpu.capacityType: got {shown(gpu.capacity_type)} while "
                "keel:cluster.requireSpotGpus is true; allowed: 'SPOT' (or set requireSpotGpus: false)"
            )
    if held.protected and not cluster.deletion_protection:
        yield f"keel:cluster.deletionProtection: got false in a {env} stack; allowed: true"


def _data_checks(cfg: StackConfig) -> Iterable[str]:
    db, env, held = cfg.database, cfg.environment, cfg.guarantees
    if (db is not None or cfg.caches) and cfg.cluster is None:
        yield (
            "keel:cluster: missing while keel:database or keel:caches is set; the data tier admits only the "
            "cluster's nodes, so a stack with data stores needs a cluster"
        )
    if db is not None:
        if db.max_allocated_storage_gb < db.allocated_storage_gb:
            yield (
                f"keel:database.maxAllocatedStorageGb: got {db.max_allocated_storage_gb}; must be at least "
                f"allocatedStorageGb ({db.allocated_storage_gb})"
            )
        for key, value, needed in (
            ("multiAz", db.multi_az, held.survives_a_zone),
            ("deletionProtection", db.deletion_protection, held.protected),
            ("finalSnapshot", db.final_snapshot, held.protected),
        ):
            if needed and not value:
                yield f"keel:database.{key}: got false in a {env} stack; allowed: true"
        if held.backed_up and db.backup_retention_days < 7:
            yield (
                f"keel:database.backupRetentionDays: got {db.backup_retention_days} in a {env} stack; allowed: 7 to 35"
            )
        yield from proxy_checks(db)
    for name, cache in cfg.caches.items():
        path = f"keel:caches.{name}"
        if not re.match(r"^[a-z][a-z0-9-]{0,19}$", name):
            yield f"{path}: got the name {shown(name)}; cache names are 1-20 lowercase letters, digits or dashes"
        if "queue" in name and cache.maxmemory_policy != "noeviction":
            yield (
                f"{path}.maxmemoryPolicy: got {shown(cache.maxmemory_policy)} for a queue; allowed: 'noeviction' "
                "(an evicting queue silently loses jobs)"
            )
        if cache.multi_az is True and cache.replicas_per_shard == 0:
            yield f"{path}.multiAz: got true with replicasPerShard 0; Multi-AZ needs at least one replica per shard"
        if held.survives_a_node and cache.replicas_per_shard == 0:
            yield f"{path}.replicasPerShard: got 0 in a {env} stack; allowed: 1 to 5 (a failover target)"
        yield from _cross_region_checks(cfg, path, cache)
    if held.protected and cfg.buckets.force_destroy:
        yield f"keel:buckets.forceDestroy: got true in a {env} stack; allowed: false"
    yield from _replication_checks(cfg)


#: Node sizes ElastiCache Global Datastore does not take (AWS ElastiCache User Guide, "Prerequisites and limitations"
#: of global datastores: "supported on instances of size large and above"), and the burstable families it excludes.
_SMALL_SIZES = ("micro", "small", "medium")


def _cross_region_checks(cfg: StackConfig, path: str, cache: CacheConfig) -> Iterable[str]:
    """A cache copied to another region needs that region and a node type Global Datastore takes; a queue must be
    copied where the stack must survive a region."""
    copy_region = cfg.backup.copy_region if cfg.backup is not None else None
    if cache.cross_region:
        if copy_region is None:
            yield (
                f"{path}.crossRegion: got true but keel:backup.copyRegion is not set; set keel:backup.copyRegion "
                "(where the copy lives) or crossRegion: false"
            )
        _, family, size = cache.node_type.split(".")
        if family.startswith("t") or size in _SMALL_SIZES:
            yield (
                f"{path}.nodeType: got {shown(cache.node_type)} with crossRegion; allowed: a size from large up "
                "outside the burstable t families (ElastiCache Global Datastore), such as 'cache.m6g.large'"
            )
        if copy_region is not None and cfg.backup is not None:
            standby, own = ipaddress.ip_network(cfg.backup.standby_cidr), ipaddress.ip_network(cfg.network.cidr)
            if standby.overlaps(own):
                yield (
                    f"keel:backup.standbyCidr: got {shown(cfg.backup.standby_cidr)}, which overlaps keel:network.cidr "
                    f"({cfg.network.cidr}); allowed: a private block outside it"
                )
    elif cfg.guarantees.survives_a_region and cache.maxmemory_policy == "noeviction":
        yield (
            f"{path}.crossRegion: got false for a queue (maxmemoryPolicy noeviction) in a {cfg.environment} stack; "
            "allowed: true (its waiting jobs are nowhere else: a Global Datastore keeps them in keel:backup.copyRegion)"
        )


def _replication_checks(cfg: StackConfig) -> Iterable[str]:
    """Bucket replication needs a region to replicate to; a stack that must survive a region replicates, within
    S3 Replication Time Control's 15 minutes (bucket RPO under one hour)."""
    replication, env = cfg.buckets.replication, cfg.environment
    copy_region = cfg.backup.copy_region if cfg.backup is not None else None
    if replication.enabled and copy_region is None:
        yield (
            "keel:buckets.replication.enabled: got true but keel:backup.copyRegion is not set; set "
            "keel:backup.copyRegion (the region the replicas live in) or keel:buckets.replication.enabled: false"
        )
    if not cfg.guarantees.survives_a_region:
        return
    if replication.enabled is False:
        yield (
            f"keel:buckets.replication.enabled: got false in a {env} stack; allowed: true or unset (AWS Backup copies "
            "the buckets to keel:backup.copyRegion every 6 hours; replication keeps that copy minutes behind)"
        )
    elif not replication.replication_time_control:
        # "The majority of objects replicate within 15 minutes, but they can sometimes take a couple of hours" without
        # S3 RTC (Amazon S3 User Guide, "Troubleshooting replication"); with it, 99.99% within 15 minutes
        # (Amazon S3 User Guide, "Meeting compliance requirements with S3 Replication Time Control").
        yield (
            f"keel:buckets.replication.replicationTimeControl: got false in a {env} stack; allowed: true (without it "
            "S3 bounds no replication time: most objects within 15 minutes, some in hours)"
        )


def _scaling_checks(cfg: StackConfig, name: str, svc: ServiceConfig) -> Iterable[str]:
    path = f"keel:services.{name}.scaleOn"
    scale = svc.scale_on
    if scale is None:
        if svc.kind == "job":
            yield f"{path}: required key is missing; a job runs when its queue has work (scaleOn.queue)"
        return
    kinds = [
        k
        for k, v in (
            ("cpu", scale.cpu),
            ("memory", scale.memory),
            ("requestsPerMinute", scale.requests_per_minute),
            ("queue", scale.queue),
        )
        if v is not None
    ]
    events = [k for k in kinds if k in ("requestsPerMinute", "queue")]
    if not kinds:
        yield f"{path}: got no trigger; set one of cpu, memory, requestsPerMinute or queue"
    elif "cpu" in kinds and "memory" in kinds:
        yield f"{path}: got both cpu and memory; an HPA scales on one resource, pick one"
    elif len(events) > 1:
        yield f"{path}: got {' and '.join(events)}; one KEDA trigger per service (cpu may be added as a floor)"
    elif events and "memory" in kinds:
        yield f"{path}.memory: got a memory floor with {events[0]}; only cpu can be combined with a KEDA trigger"
    if scale.requests_per_minute is not None and svc.ingress is None:
        yield f"{path}.requestsPerMinute: got {scale.requests_per_minute} but the service has no ingress to count"
    if scale.queue is not None and scale.queue.cache not in cfg.caches:
        allowed = ", ".join(sorted(cfg.caches)) or "none configured"
        yield f"{path}.queue.cache: got {shown(scale.queue.cache)}; allowed: {allowed}"
    if svc.kind == "job" and kinds != ["queue"]:
        yield f"{path}: got {', '.join(kinds)} for a job; a job scales on queue only"
    if "cpu" in kinds and svc.resources.cpu in ("0", "0m"):
        yield f"keel:services.{name}.resources.cpu: got {shown(svc.resources.cpu)}; a CPU trigger needs a CPU request"


def _service_checks(cfg: StackConfig) -> Iterable[str]:
    db = cfg.database
    grants = vocabulary.grants(
        cfg.caches, email=cfg.email is not None, database=db is not None, proxy=db is not None and db.proxy is not None
    )
    routes: dict[tuple[str, str], str] = {}
    if cfg.services and cfg.cluster is None:
        yield "keel:cluster: missing while keel:services is set; services run on the cluster"
    for name, svc in cfg.services.items():
        path = f"keel:services.{name}"
        if not SERVICE_NAME.match(name):
            yield f"{path}: got the name {shown(name)}; service names are DNS labels: lowercase letters, digits, dashes"
        if (svc.image is None) == (svc.build is None):
            yield f"{path}: got {'both image and build' if svc.image else 'neither image nor build'}; set exactly one"
        if svc.kind == "deployment" and svc.port is None:
            yield f"{path}.port: required key is missing (a deployment serves on a port)"
        if svc.kind == "job" and svc.ingress is not None:
            yield f"{path}.ingress: got an ingress on a job; allowed only on kind: deployment"
        if svc.replicas.min > svc.replicas.max:
            yield f"{path}.replicas.min: got {svc.replicas.min}; must be at most replicas.max ({svc.replicas.max})"
        if cfg.guarantees.survives_a_node and svc.kind == "deployment" and svc.replicas.min < 2:
            # Its PodDisruptionBudget (maxUnavailable: 1) lets a node drain evict one pod at a time: with one
            # replica that is the whole service, down until the pod is rescheduled and ready again.
            yield (
                f"{path}.replicas.min: got {svc.replicas.min} for a deployment in a {cfg.environment} stack; "
                "allowed: 2 or more "
                "(a node drain or a zone failure takes one pod; its disruption budget allows one at a time)"
            )
        if svc.metrics_port is not None and svc.metrics_port == svc.port:
            yield (
                f"{path}.metricsPort: got {svc.metrics_port}, the service's port; allowed: any other port from 1024 "
                "to 65535, or null (no metrics): the ALB forwards to port, so metrics there would be public"
            )
        if svc.metrics_port is not None:
            for variable in sorted(set(svc.env) & set(OTEL_PROMETHEUS_ENV.value)):
                yield f"{path}.env: got {shown(variable)}, which keel sets from metricsPort; set metricsPort instead"
        if svc.gpu and (cfg.cluster is None or cfg.cluster.node_groups.gpu is None):
            yield f"{path}.gpu: got {svc.gpu} but keel:cluster.nodeGroups.gpu is not configured"
        for grant in svc.grants:
            if grant == vocabulary.DATABASE_CONNECT_GRANT and grant not in grants:
                yield (
                    f"{path}.grants: got {shown(grant)} but keel:database.proxy is not set; set keel:database.proxy "
                    "({} takes the defaults) to connect through RDS Proxy"
                    + (f", or grant {shown(vocabulary.DATABASE_GRANT)}" if db is not None else "")
                )
            elif grant not in grants:
                yield f"{path}.grants: got {shown(grant)}; allowed: {', '.join(sorted(grants))}"
        if {vocabulary.DATABASE_GRANT, vocabulary.DATABASE_CONNECT_GRANT} <= set(svc.grants):
            yield (
                f"{path}.grants: got both {shown(vocabulary.DATABASE_GRANT)} and "
                f"{shown(vocabulary.DATABASE_CONNECT_GRANT)}; pick one (DATABASE_HOST is the instance with the "
                "first, the proxy with the second)"
            )
        for other in svc.allow_from:
            if other not in cfg.services or other == name:
                allowed = sorted(n for n in cfg.services if n != name)
                yield f"{path}.allowFrom: got {shown(other)}; allowed: {', '.join(allowed)}"
        yield from _scaling_checks(cfg, name, svc)
        if svc.ingress is not None:
            if cfg.ingress is None:
                yield f"{path}.ingress: got a route but keel:ingress (the ALB) is not configured"
            for route_path in svc.ingress.paths:
                key = (svc.ingress.host, route_path)
                if key in routes:
                    yield (
                        f"{path}.ingress: got {svc.ingress.host}{route_path}, already routed to service "
                        f"{routes[key]!r}; each host and path goes to one service"
                    )
                routes[key] = name
    if cfg.ingress is not None and cfg.ingress.certificate_arn is None and cfg.ingress.hosted_zone_id is None:
        yield (
            "keel:ingress.certificateArn: missing; set certificateArn, or hostedZoneId so keel requests a "
            "DNS-validated certificate"
        )
    if cfg.ingress is not None:
        if cfg.guarantees.protected and not cfg.ingress.deletion_protection:
            yield f"keel:ingress.deletionProtection: got false in a {cfg.environment} stack; allowed: true"
        if cfg.guarantees.filtered and not cfg.ingress.waf.enabled:
            yield f"keel:ingress.waf.enabled: got false in a {cfg.environment} stack; allowed: true"
        if cfg.ingress.cdn is not None:
            yield from _cdn_checks(cfg, cfg.ingress)


def _covers(route: str, path: str) -> bool:
    """Whether ALB path pattern ``route`` sends ``path`` (a CloudFront pattern) to its service: ``/*`` and
    ``/static/*`` cover ``/static/css/*``; an exact route covers only itself."""
    return path == route or (route.endswith("*") and path.startswith(route[:-1]))


def _cdn_checks(cfg: StackConfig, ingress: IngressConfig) -> Iterable[str]:
    """CloudFront needs a certificate in us-east-1, and caches only paths the ALB sends to the service named."""
    cdn = ingress.cdn
    assert cdn is not None
    exposed = {name: svc.ingress for name, svc in cfg.services.items() if svc.ingress is not None}
    for service, paths in cdn.cached_paths.items():
        route = exposed.get(service)
        if route is None:
            yield (
                f"keel:ingress.cdn.cachedPaths: got {shown(service)}, which is not an exposed service; "
                f"allowed: {', '.join(sorted(exposed)) or 'none (no service has an ingress)'}"
            )
            continue
        for path in paths:
            others = [s for s, ps in cdn.cached_paths.items() if s < service and path in ps and s in exposed]
            if others and exposed[others[0]].host == route.host:
                yield (
                    f"keel:ingress.cdn.cachedPaths.{service}: got {shown(path)}, which {others[0]} on the same host "
                    "lists too; CloudFront takes each path pattern once per distribution"
                )
            if not any(_covers(r, path) for r in route.paths):
                yield (
                    f"keel:ingress.cdn.cachedPaths.{service}: got {shown(path)}, which the ALB does not route to "
                    f"{service}; allowed: paths under {', '.join(route.paths)}"
                )
    own = ingress.certificate_arn
    if cdn.certificate_arn is None and not (own and own.split(":")[3] == "us-east-1") and not ingress.hosted_zone_id:
        yield (
            f"keel:ingress.cdn.certificateArn: missing; CloudFront needs a certificate in us-east-1 and "
            f"keel:ingress.certificateArn is in {own.split(':')[3] if own else 'no region (not set)'}: set "
            "cdn.certificateArn to one in us-east-1, or keel:ingress.hostedZoneId so keel requests one there"
        )


def _operations_checks(cfg: StackConfig) -> Iterable[str]:
    """Alerts and backups: where the environment says so, the stack is watched, backed up and locked, and its
    recovery points are copied to a second region."""
    alerts, backup, env, held = cfg.alerts, cfg.backup, cfg.environment, cfg.guarantees
    if held.watched:
        if alerts is None:
            yield f"keel:alerts: missing in a {env} stack; set at least keel:alerts.emails (who hears the alarms)"
        elif not alerts.emails:
            yield f"keel:alerts.emails: got [] in a {env} stack; allowed: one or more addresses (someone must be paged)"
    if held.backed_up or held.survives_a_region:
        needed = [k for k, h in (("copyRegion", held.survives_a_region), ("vaultLock", held.backed_up)) if h]
        if backup is None:
            yield f"keel:backup: missing in a {env} stack; set {' and '.join(f'keel:backup.{k}' for k in needed)}"
        else:
            if held.survives_a_region and backup.copy_region is None:
                yield (
                    f"keel:backup.copyRegion: missing in a {env} stack; allowed: a second region for disaster recovery"
                )
            if held.backed_up and backup.vault_lock is None:
                yield (
                    f"keel:backup.vaultLock: missing in a {env} stack; allowed: {{mode: governance}} or "
                    "{mode: compliance}"
                )
    if alerts is not None and alerts.prometheus is not None and cfg.cluster is None:
        yield "keel:alerts.prometheus: got a Prometheus stack but keel:cluster is not configured (it runs there)"
    if backup is None:
        return
    if backup.copy_region is not None and backup.copy_region == cfg.region:
        yield (
            f"keel:backup.copyRegion: got {shown(backup.copy_region)}, the stack's own region; allowed: any other "
            "region (a copy in the same region does not survive a regional outage)"
        )
    if backup.completion_window_minutes < backup.start_window_minutes + 60:
        yield (
            f"keel:backup.completionWindowMinutes: got {backup.completion_window_minutes}; must be at least "
            f"startWindowMinutes + 60 ({backup.start_window_minutes + 60})"
        )
    lock = backup.vault_lock
    if lock is None:
        return
    if lock.min_retention_days > lock.max_retention_days:
        yield (
            f"keel:backup.vaultLock.minRetentionDays: got {lock.min_retention_days}; must be at most "
            f"maxRetentionDays ({lock.max_retention_days})"
        )
        return
    for rule_name, rule in backup.rules.items():
        if not lock.min_retention_days <= rule.delete_after_days <= lock.max_retention_days:
            yield (
                f"keel:backup.rules.{rule_name}.deleteAfterDays: got {rule.delete_after_days}; the vault lock allows "
                f"{lock.min_retention_days} to {lock.max_retention_days} (keel:backup.vaultLock)"
            )
