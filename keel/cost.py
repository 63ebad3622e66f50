"""``keel cost STACK``: a monthly estimate of a preview, per resource and per component.

Usage::

    estimate = cost.estimate(preview_document, stack="prod")
    estimate.monthly_total, estimate.items, estimate.unknown, estimate.gpu_hour

Prices come from ``keel/data/prices-<region>.json`` (on-demand list prices with their date and source; Spot as a
configurable discount, with the GPU's observed Spot range stated). What is priced, and how:

- EKS control plane per hour; EC2 node groups at their desired size (the minimum when none is set), Spot at
  the discount, plus their gp3 root volumes. The general pool is one group per zone, each priced at its share of
  the pool's desired size: the items sum to the pool;
- NAT gateways per hour plus an assumed processed volume; interface endpoints per hour per zone;
- RDS instance hours and gp3 storage, both doubled for Multi-AZ (a read replica: single-AZ, its own storage);
  RDS Proxy per vCPU-hour of the instance it fronts (the ``keel.dev/vcpus`` tag the database puts on it);
  ElastiCache nodes (shards x (1 + replicas)), a global datastore's secondary at this region's rate (its cross-region
  traffic under ``unknown``);
- the ALB's base hours plus an assumed LCU load; WAF web ACLs and their rules; CloudFront distributions at an
  assumed volume out and number of HTTPS requests each (CloudFront's always-free tier is not subtracted);
- KMS keys and Secrets Manager secrets per month; log groups at an assumed ingestion volume;
- S3 Cross-Region Replication: the inter-region transfer of an assumed replicated volume per bucket, and S3
  Replication Time Control on the same volume when the rule turns it on;
- CloudWatch alarms per metric they read, dashboards per month.

Backup storage, replica storage and Container Insights observations depend on data and load, not on the preview:
they are listed in ``unknown`` with what they depend on.

A priced resource whose size is missing from the table is listed in ``not_estimated`` and makes the estimate
incomplete (``complete`` is False): it is never counted as zero, so a bigger database can never look like a
saving. ``keel cost`` and ``keel diff`` then say "not estimated" and name what has no price.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data"


class CostError(Exception):
    """No price table for the region, or a malformed one."""


@dataclass(frozen=True)
class Item:
    urn: str
    type: str
    component: str
    description: str
    monthly: float
    assumption: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "component": self.component,
            "description": self.description,
            "monthly": round(self.monthly, 2),
            "assumption": self.assumption,
        }


@dataclass
class Estimate:
    stack: str
    region: str
    currency: str
    prices_as_of: str
    items: list[Item] = field(default_factory=list)
    unknown: list[dict[str, str]] = field(default_factory=list)
    """Costs that depend on usage, not on the preview (backup storage, Container Insights observations)."""
    not_estimated: list[dict[str, str]] = field(default_factory=list)
    """Resources keel prices whose size has no price in the table: the total leaves them out."""
    gpu_hour: dict[str, float] = field(default_factory=dict)

    @property
    def monthly_total(self) -> float:
        """The sum of the priced items: a lower bound when :attr:`complete` is False."""
        return round(sum(i.monthly for i in self.items), 2)

    @property
    def complete(self) -> bool:
        """True when every resource keel prices had a price in the table."""
        return not self.not_estimated

    def missing_prices(self) -> str:
        """What has no price, for a message: ``db.x2g.large (keel-prod-db), ...``."""
        return ", ".join(f"{m['missing']} ({m['urn'].rsplit('::', 1)[-1]})" for m in self.not_estimated)

    def by_component(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for item in self.items:
            out[item.component] = out.get(item.component, 0.0) + item.monthly
        return {k: round(v, 2) for k, v in sorted(out.items())}

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "region": self.region,
            "currency": self.currency,
            "pricesAsOf": self.prices_as_of,
            "monthlyTotal": self.monthly_total,
            "complete": self.complete,
            "items": [i.to_json() for i in self.items],
            "unknown": self.unknown,
            "notEstimated": self.not_estimated,
            "gpuHour": self.gpu_hour,
        }


def prices(region: str) -> dict[str, Any]:
    path = DATA / f"prices-{region}.json"
    if not path.is_file():
        known = sorted(p.stem.removeprefix("prices-") for p in DATA.glob("prices-*.json"))
        raise CostError(f"no price table for region {region!r}; tables exist for: {', '.join(known)}")
    table: dict[str, Any] = json.loads(path.read_text())
    return table


#: AWS's normalization factors: on-demand prices within the families of ``perFamily`` scale by these.
_SIZE_UNITS = {"nano": 0.25, "micro": 0.5, "small": 1.0, "medium": 2.0, "large": 4.0, "xlarge": 8.0}


def _units(size: str) -> float | None:
    if size in _SIZE_UNITS:
        return _SIZE_UNITS[size]
    count = size.removesuffix("xlarge")
    return 8.0 * int(count) if size.endswith("xlarge") and count.isdigit() else None


def hourly_price(table: Mapping[str, Any], key: str) -> float | None:
    """The hourly price of ``rds.db.r6g.2xlarge``-like keys: an exact entry, else the family's reference size
    scaled by the normalization factors; None when the table has neither."""
    if key in table["hourly"]:
        return float(table["hourly"][key])
    family, _, size = key.rpartition(".")
    reference = (table.get("perFamily") or {}).get(family)
    units, base = _units(size), _units(str(reference["size"])) if reference else None
    if reference is None or units is None or base is None:
        return None
    return round(float(reference["hourly"]) * units / base, 4)


def _component(urn: str) -> str:
    """The keel component a resource belongs to (``keel:cluster:Cluster``), or its own type at the top."""
    qualified = urn.split("::")[2]
    chain = [t for t in qualified.split("$") if t.startswith("keel:") and t != "keel:platform:Platform"]
    return chain[0] if chain else qualified.split("$")[-1]


def estimate(
    document: Mapping[str, Any], *, stack: str, region: str = "us-east-1", table: Mapping[str, Any] | None = None
) -> Estimate:
    table = dict(table) if table is not None else prices(region)
    hours = float(table["hoursPerMonth"])
    hourly: Mapping[str, float] = table["hourly"]
    monthly: Mapping[str, float] = table["monthly"]
    assume: Mapping[str, Any] = table["assumptions"]
    spot = 1.0 - float(assume["spotDiscount"])
    out = Estimate(stack=stack, region=table["region"], currency=table["currency"], prices_as_of=table["pricesAsOf"])

    def add(state: Mapping[str, Any], description: str, amount: float, assumption: str = "") -> None:
        out.items.append(Item(state["urn"], state["type"], _component(state["urn"]), description, amount, assumption))

    def unknown(state: Mapping[str, Any], what: str) -> None:
        out.unknown.append({"urn": state["urn"], "type": state["type"], "missing": what})

    def unpriced(state: Mapping[str, Any], what: str) -> None:
        out.not_estimated.append({"urn": state["urn"], "type": state["type"], "missing": what})

    for step in document.get("steps", []):
        s = step["newState"]
        kind, i = s["type"], s.get("inputs") or {}
        if kind == "eks:index:Cluster":
            add(s, "EKS control plane", hourly["eks.cluster"] * hours)
        elif kind == "eks:index:ManagedNodeGroup":
            types = list(i.get("instanceTypes") or [])
            scaling = i.get("scalingConfig") or {}
            count = int(scaling.get("desiredSize", scaling.get("minSize", 0)) or 0)
            key = f"ec2.{types[0]}" if types else ""
            if key not in hourly:
                unpriced(s, f"hourly price of {types[0] if types else 'an instance type'}")
                continue
            factor = spot if i.get("capacityType") == "SPOT" else 1.0
            label = "Spot" if factor < 1 else "on demand"
            add(
                s,
                f"{count} x {types[0]} {label}",
                hourly[key] * factor * hours * count,
                f"desired size {count}; Spot at {assume['spotDiscount']:.0%} off"
                if factor < 1
                else f"desired size {count}",
            )
            disk = monthly["ebs.gp3.gb"] * float(assume["nodeRootVolumeGb"]) * count
            if count:
                add(s, f"{count} x {assume['nodeRootVolumeGb']} GB gp3 root volumes", disk)
            if i.get("taints") and types:
                out.gpu_hour = {
                    "spot": round(hourly[key] * spot, 4),
                    "onDemand": hourly[key],
                    "spotObservedRange": assume["gpuSpotRange"].get(types[0], []),
                }
        elif kind == "aws:ec2/natGateway:NatGateway":
            gb = float(assume["natGbPerMonth"])
            add(
                s,
                "NAT gateway",
                hourly["natgateway"] * hours + monthly["natgateway.gb"] * gb,
                f"{gb:.0f} GB processed a month",
            )
        elif kind == "aws:ec2/vpcEndpoint:VpcEndpoint" and i.get("vpcEndpointType") == "Interface":
            zones = len(i.get("subnetIds") or [])
            add(s, f"interface endpoint in {zones} zone(s)", hourly["vpce.interface.az"] * hours * zones)
        elif kind == "aws:rds/instance:Instance":
            rds_hourly = hourly_price(table, f"rds.{i.get('instanceClass')}")
            if rds_hourly is None:
                unpriced(s, f"hourly price of {i.get('instanceClass')}")
                continue
            copies = 2 if i.get("multiAz") else 1
            storage = float(i.get("allocatedStorage") or 0)
            add(
                s,
                f"{i.get('instanceClass')} x {copies} ({'Multi-AZ' if copies == 2 else 'single-AZ'})"
                + (" read replica" if i.get("replicateSourceDb") else ""),
                rds_hourly * hours * copies,
            )
            add(
                s,
                f"{storage:.0f} GB gp3 x {copies}",
                monthly["rds.gp3.gb"] * storage * copies,
                "allocated storage (autoscaling may grow it)",
            )
        elif kind == "aws:rds/proxy:Proxy":
            # RDS Proxy on provisioned instances: per vCPU-hour of the database it fronts, at least 2 vCPUs
            # (aws.amazon.com/rds/proxy/pricing/). Its inputs do not name the instance: the Database component
            # tags the proxy with the instance class's vCPUs (components.database.VCPUS_TAG).
            tagged = str((i.get("tags") or {}).get("keel.dev/vcpus", ""))
            if "rds.proxy.vcpu" not in hourly or not tagged.isdigit():
                unpriced(s, "RDS Proxy vCPUs (tag keel.dev/vcpus) or the hourly price rds.proxy.vcpu")
                continue
            billed = max(int(tagged), 2)
            add(
                s,
                f"RDS Proxy, {billed} vCPU(s)",
                hourly["rds.proxy.vcpu"] * billed * hours,
                f"the database's {tagged} vCPU(s), billed at least 2",
            )
        elif kind == "aws:elasticache/replicationGroup:ReplicationGroup":
            # A global datastore's secondary names no node type or shard count (it takes the primary's): the Cache
            # component tags them on it (keel.dev/node-type, keel.dev/shards).
            tags = i.get("tags") or {}
            node_type = i.get("nodeType") or tags.get("keel.dev/node-type")
            node_hourly = hourly_price(table, f"elasticache.{node_type}")
            if node_hourly is None:
                unpriced(s, f"hourly price of {node_type or 'the node type (keel.dev/node-type)'}")
                continue
            shards = int(i.get("numNodeGroups") or tags.get("keel.dev/shards") or 1)
            nodes = shards * (1 + int(i.get("replicasPerNodeGroup") or 0))
            secondary = "globalReplicationGroupId" in i
            add(
                s,
                f"{nodes} x {node_type}" + (" (global datastore secondary)" if secondary else ""),
                node_hourly * hours * nodes,
                "priced at this stack's region's rate" if secondary else "",
            )
            if secondary:
                unknown(s, "cross-region replication traffic: billed per GB the primary writes")
        elif kind == "aws:lb/loadBalancer:LoadBalancer":
            lcu = float(assume["albLcuPerHour"])
            add(s, "ALB", (hourly["alb"] + hourly["alb.lcu"] * lcu) * hours, f"{lcu:.0f} LCU on average")
        elif kind == "aws:cloudfront/distribution:Distribution":
            # aws.amazon.com/cloudfront/pricing (pay as you go): data transfer out to the internet, the first 10 TB
            # from North America and Europe, and HTTPS requests there per 10,000.
            gb = float(assume["cdnGbPerMonthPerDistribution"])
            requests = float(assume["cdnRequestsPerMonthPerDistribution"])
            add(
                s,
                "CloudFront distribution",
                monthly["cloudfront.gb"] * gb + monthly["cloudfront.https.10k"] * requests / 10_000,
                f"{gb:.0f} GB out and {requests / 1e6:.0f} million HTTPS requests a month; free tier not subtracted",
            )
        elif kind == "aws:cloudwatch/logDelivery:LogDelivery":
            unknown(s, "access log delivery to S3: billed per GB of logs, which depends on the traffic")
        elif kind == "aws:wafv2/webAcl:WebAcl":
            rules = len(i.get("rules") or [])
            add(
                s,
                f"WAF web ACL with {rules} rule(s)",
                monthly["wafv2.webacl"] + monthly["wafv2.rule"] * rules,
                "request charges not included",
            )
        elif kind == "aws:kms/key:Key":
            add(s, "KMS key", monthly["kms.key"], "API requests not included")
        elif kind == "aws:secretsmanager/secret:Secret":
            add(s, "secret", monthly["secretsmanager.secret"])
        elif kind == "aws:cloudwatch/metricAlarm:MetricAlarm":
            # Standard-resolution alarms are billed per metric they read; a metric-math alarm reads several.
            metrics = [q for q in i.get("metricQueries") or [] if "metric" in q] or [i]
            add(s, f"alarm on {len(metrics)} metric(s)", monthly["cloudwatch.alarm.metric"] * len(metrics))
        elif kind == "aws:cloudwatch/dashboard:Dashboard":
            add(s, "CloudWatch dashboard", monthly["cloudwatch.dashboard"], "the account's first 3 are free")
        elif kind == "aws:backup/vault:Vault":
            unknown(s, "backup storage: depends on the size of the data and how much changes between backups")
        elif kind == "aws:s3/bucketReplicationConfig:BucketReplicationConfig":
            # aws.amazon.com/s3/pricing (Replication): S3 CRR bills inter-region data transfer out of the source
            # region per GB replicated, and S3 Replication Time Control a further fee per GB it replicates; the
            # replica's storage and PUT requests are billed as any object's in the destination region.
            gb = float(assume["replicatedGbPerMonth"])
            enabled = [r for r in i.get("rules") or [] if r.get("status") == "Enabled"]
            assumed = f"{gb:.0f} GB replicated a month"
            add(s, "cross-region replication transfer", monthly["s3.replication.interregion.gb"] * gb, assumed)
            time_control = [((r.get("destination") or {}).get("replicationTime") or {}).get("status") for r in enabled]
            if "Enabled" in time_control:
                add(s, "S3 Replication Time Control", monthly["s3.replication.rtc.gb"] * gb, assumed)
            unknown(
                s,
                "replica storage, requests and replication metrics: depend on the size of the data and how much "
                "of it changes",
            )
        elif kind == "aws:eks/addon:Addon" and i.get("addonName") == "amazon-cloudwatch-observability":
            unknown(s, "Container Insights observations: depend on the number of pods, nodes and containers")
        elif kind == "aws:cloudwatch/logGroup:LogGroup":
            gb = float(assume["logGbPerMonthPerGroup"])
            add(s, "log ingestion", monthly["logs.ingest.gb"] * gb, f"{gb:.0f} GB ingested a month")
    return out


def region_of(document: Mapping[str, Any]) -> str:
    """The region the stack's AWS provider targets (the first explicit one), us-east-1 when none says."""
    for step in document.get("steps", []):
        state = step["newState"]
        if state["type"] == "pulumi:providers:aws" and (state.get("inputs") or {}).get("region"):
            return str(state["inputs"]["region"])
    return "us-east-1"


def of_document(document: Mapping[str, Any]) -> Estimate | None:
    """The document's monthly estimate, or None when its region has no price table."""
    try:
        return estimate(document, stack="", region=region_of(document))
    except CostError:
        return None
