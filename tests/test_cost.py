"""keel cost: known totals for a small stack computed by hand, Multi-AZ doubling, Spot, unknown prices."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from keel import cli, cost
from keel.engine import Preview
from tests.helpers import stack_file

#: The buckets the tests' prod stack replicates to its copy region (keel:buckets.replication).
REPLICATED = ("artifacts", "uploads")

TABLE: dict[str, Any] = {
    "region": "us-east-1",
    "currency": "USD",
    "pricesAsOf": "2026-11-01",
    "hoursPerMonth": 730,
    "assumptions": {
        "spotDiscount": 0.6,
        "gpuSpotRange": {"g4dn.xlarge": [0.16, 0.26]},
        "natGbPerMonth": 100,
        "logGbPerMonthPerGroup": 5,
        "albLcuPerHour": 1,
        "nodeRootVolumeGb": 50,
    },
    "hourly": {
        "eks.cluster": 0.10,
        "ec2.m5.xlarge": 0.2,
        "ec2.g4dn.xlarge": 0.5,
        "natgateway": 0.05,
        "vpce.interface.az": 0.01,
        "alb": 0.02,
        "alb.lcu": 0.01,
        "rds.db.r6g.xlarge": 0.5,
        "elasticache.cache.m6g.large": 0.15,
    },
    "monthly": {
        "kms.key": 1.0,
        "secretsmanager.secret": 0.4,
        "wafv2.webacl": 5.0,
        "wafv2.rule": 1.0,
        "rds.gp3.gb": 0.1,
        "ebs.gp3.gb": 0.08,
        "natgateway.gb": 0.05,
        "logs.ingest.gb": 0.5,
        "cloudwatch.alarm.metric": 0.1,
        "cloudwatch.dashboard": 3.0,
    },
}


def step(type_: str, name: str, component: str = "keel:cluster:Cluster", **inputs: Any) -> dict[str, Any]:
    urn = f"urn:pulumi:t::keel::keel:platform:Platform${component}${type_}::{name}"
    return {"op": "create", "urn": urn, "newState": {"type": type_, "urn": urn, "inputs": inputs}}


def doc(*steps: dict[str, Any]) -> dict[str, Any]:
    return {"steps": list(steps)}


OBS = "keel:observability:Observability"


def test_known_totals_computed_by_hand() -> None:
    stack = doc(
        step("eks:index:Cluster", "c"),  # 0.10 x 730 = 73.00
        step(
            "eks:index:ManagedNodeGroup",
            "general",
            instanceTypes=["m5.xlarge"],
            capacityType="ON_DEMAND",
            scalingConfig={"minSize": 2, "desiredSize": 2, "maxSize": 4},
        ),  # 0.2 x 730 x 2 = 292.00
        # + 2 x 50 x 0.08 = 8.00
        step(
            "eks:index:ManagedNodeGroup",
            "gpu",
            instanceTypes=["g4dn.xlarge"],
            capacityType="SPOT",
            taints=[{"key": "nvidia.com/gpu"}],
            scalingConfig={"minSize": 0, "desiredSize": 0, "maxSize": 1},
        ),  # 0
        step(
            "aws:rds/instance:Instance",
            "db",
            "keel:database:Database",
            instanceClass="db.r6g.xlarge",
            multiAz=True,
            allocatedStorage=100,
        ),  # 0.5 x 730 x 2 = 730.00
        # + 100 x 0.1 x 2 = 20.00
        step(
            "aws:elasticache/replicationGroup:ReplicationGroup",
            "q",
            "keel:cache:Cache",
            nodeType="cache.m6g.large",
            numNodeGroups=2,
            replicasPerNodeGroup=1,
        ),  # 0.15 x 730 x 4 = 438.00
        step("aws:ec2/natGateway:NatGateway", "n", "keel:network:Network"),  # 36.50 + 5.00 = 41.50
        step("aws:kms/key:Key", "k", "keel:network:Network"),  # 1.00
        step("aws:cloudwatch/metricAlarm:MetricAlarm", "cpu", OBS, metricName="CPUUtilization"),  # 0.10
        step(
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            "rate",
            OBS,
            metricQueries=[{"id": "e", "expression": "a / b"}, {"id": "a", "metric": {}}, {"id": "b", "metric": {}}],
        ),  # 2 metrics: 0.20
        step("aws:cloudwatch/dashboard:Dashboard", "d", OBS),  # 3.00
    )
    estimate = cost.estimate(stack, stack="t", table=TABLE)
    assert estimate.monthly_total == pytest.approx(1606.80)
    assert estimate.by_component() == {
        "keel:cache:Cache": 438.0,
        "keel:cluster:Cluster": 373.0,
        "keel:database:Database": 750.0,
        "keel:network:Network": 42.5,
        OBS: pytest.approx(3.3),
    }
    assert estimate.gpu_hour == {"spot": 0.2, "onDemand": 0.5, "spotObservedRange": [0.16, 0.26]}
    assert estimate.unknown == []


def test_multi_az_doubles_and_spot_discounts() -> None:
    single = doc(
        step("aws:rds/instance:Instance", "db", instanceClass="db.r6g.xlarge", multiAz=False, allocatedStorage=100)
    )
    double = doc(
        step("aws:rds/instance:Instance", "db", instanceClass="db.r6g.xlarge", multiAz=True, allocatedStorage=100)
    )
    assert cost.estimate(single, stack="t", table=TABLE).monthly_total == 375.0
    assert cost.estimate(double, stack="t", table=TABLE).monthly_total == 750.0
    spot = doc(
        step(
            "eks:index:ManagedNodeGroup",
            "g",
            instanceTypes=["m5.xlarge"],
            capacityType="SPOT",
            scalingConfig={"minSize": 1, "maxSize": 1},
        )
    )
    items = cost.estimate(spot, stack="t", table=TABLE).items
    assert [round(i.monthly, 2) for i in items] == [58.4, 4.0]  # 0.2 x 0.4 x 730; the root volume at full price
    assert items[0].assumption == "desired size 1; Spot at 60% off"


def test_unknown_prices_are_listed_not_zero() -> None:
    stack = doc(
        step("aws:rds/instance:Instance", "db", instanceClass="db.x2g.large", multiAz=False),
        step("eks:index:ManagedNodeGroup", "g", instanceTypes=["z1d.large"], scalingConfig={"minSize": 1}),
        step("aws:kms/key:Key", "k"),
    )
    estimate = cost.estimate(stack, stack="t", table=TABLE)
    assert (estimate.monthly_total, estimate.complete, estimate.unknown) == (1.0, False, [])
    assert [u["missing"] for u in estimate.not_estimated] == [
        "hourly price of db.x2g.large",
        "hourly price of z1d.large",
    ]
    assert estimate.missing_prices() == "hourly price of db.x2g.large (db), hourly price of z1d.large (g)"


def test_a_size_without_a_price_is_never_a_saving(monkeypatch: pytest.MonkeyPatch) -> None:
    """A database moved to a class the table cannot price must not show as the database costing nothing: the
    diff's cost line says the change is unknown and names what has no price."""
    from keel import diff

    monkeypatch.setattr(cost, "prices", lambda region: TABLE)
    before = doc(step("aws:rds/instance:Instance", "db", instanceClass="db.r6g.xlarge", multiAz=True))
    after = doc(step("aws:rds/instance:Instance", "db", instanceClass="db.x2g.large", multiAz=True))
    line = diff.cost_line(diff.compare(before, after))
    assert line == (
        "Monthly cost: not estimated, the change is unknown (no price for head: hourly price of db.x2g.large (db)); "
        "priced part $730.00 -> $0.00"
    )
    assert diff.cost_line(diff.compare(before, before)) == "Monthly cost: $730.00 -> $730.00 (+0.00)"


def test_keel_cost_says_not_estimated(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from keel import engine

    stack = doc(
        step("aws:rds/instance:Instance", "db", instanceClass="db.x2g.large", multiAz=False),
        step("aws:kms/key:Key", "k"),
    )

    class Fake:
        def to_json(self) -> dict[str, Any]:
            return stack

    monkeypatch.setattr(engine, "run", lambda *a, **k: Fake())
    monkeypatch.setattr(cost, "prices", lambda region: TABLE)
    assert cli.main(["cost", "dev"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(
        "dev: not estimated: no price for hourly price of db.x2g.large (db); the resources priced come to $1.00 a "
        "month, the rest is unknown"
    )
    assert cli.main(["cost", "dev", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["complete"], report["monthlyTotal"]) == (False, 1.0)
    assert report["notEstimated"] == [
        {
            "urn": stack["steps"][0]["urn"],
            "type": "aws:rds/instance:Instance",
            "missing": "hourly price of db.x2g.large",
        }
    ]


def test_the_stacks_are_fully_priced(
    preview: Callable[[str], Preview], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for name in ("prod", "dev"):
        estimate = cost.estimate(preview(name).to_json(), stack=name)
        # priced by data and load, not by the preview: said so, never counted as zero
        assert sorted((u["type"], u["urn"].rsplit("::", 1)[1]) for u in estimate.unknown) == sorted(
            [
                ("aws:backup/vault:Vault", f"keel-{name}"),
                *([("aws:backup/vault:Vault", "keel-prod-dr")] if name == "prod" else []),
                *(
                    (("aws:s3/bucketReplicationConfig:BucketReplicationConfig", f"keel-prod-{b}") for b in REPLICATED)
                    if name == "prod"
                    else ()
                ),
                ("aws:eks/addon:Addon", f"keel-{name}-cloudwatch-observability"),
                # the queue's cross-region replication traffic, and prod's CloudFront access logs: billed per GB
                *(
                    [("aws:elasticache/replicationGroup:ReplicationGroup", "keel-prod-queue-standby")]
                    if name == "prod"
                    else []
                ),
                *(
                    (
                        ("aws:cloudwatch/logDelivery:LogDelivery", f"keel-prod-cdn-{h}-example-com")
                        for h in ("api", "app")
                    )
                    if name == "prod"
                    else ()
                ),
            ]
        )
        assert estimate.monthly_total > 0
    saved = tmp_path / "preview-prod.json"  # the report's shape, from the render above (not a second one)
    saved.write_text(json.dumps(preview("prod").to_json()))
    assert cli.main(["cost", str(saved), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {
        "stack",
        "region",
        "currency",
        "pricesAsOf",
        "monthlyTotal",
        "complete",
        "items",
        "unknown",
        "notEstimated",
        "gpuHour",
    }
    assert report["complete"] is True
    assert report["gpuHour"]["onDemand"] == 0.526
    assert set(report["items"][0]) == {"urn", "type", "component", "description", "monthly", "assumption"}
    assert round(sum(i["monthly"] for i in report["items"]), 2) == pytest.approx(report["monthlyTotal"], abs=0.05)


def test_missing_price_table_is_a_clear_error() -> None:
    with pytest.raises(cost.CostError, match=r"^no price table for region 'eu-west-9'; tables exist for: us-east-1$"):
        cost.prices("eu-west-9")


def test_the_price_table_covers_every_family_the_config_accepts() -> None:
    """Every RDS class and ElastiCache node type the stack config accepts has a price in the us-east-1 table (the
    family's reference price scaled by AWS's normalization factors, or an exact entry)."""
    from components.config import CACHE_NODE_TYPES, DB_INSTANCE_CLASSES

    table = cost.prices("us-east-1")
    for prefix, names in (("rds", DB_INSTANCE_CLASSES), ("elasticache", CACHE_NODE_TYPES)):
        for name in names:
            assert cost.hourly_price(table, f"{prefix}.{name}") is not None, name
    assert cost.hourly_price(table, "rds.db.r6g.4xlarge") == pytest.approx(0.225 * 32 / 4)
    assert cost.hourly_price(table, "rds.db.r6g.xlarge") == 0.45  # an exact entry wins
    assert cost.hourly_price(table, "rds.db.x2g.large") is None


def test_keel_cost_reads_a_saved_preview(
    preview: Callable[[str], Preview], tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The PR workflow renders each stack once: `keel cost FILE.json` prices the saved document, naming its stack."""
    document = preview("prod").to_json()
    saved = tmp_path / "preview-prod.json"
    saved.write_text(json.dumps(document))
    assert cli.main(["cost", str(saved), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == cost.estimate(document, stack="prod", region=cost.region_of(document)).to_json()
    assert report["stack"] == "prod"
    assert cli.main(["cost", str(saved), "--config-file", str(stack_file("prod"))]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --config-file applies to a stack name; a saved preview was rendered already"
    )
    assert cli.main(["cost", str(tmp_path / "missing.json")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'missing.json'}: no such file (a saved preview: " + (
        "keel preview STACK --json > FILE)"
    )
    (tmp_path / "broken.json").write_text('{"resources": []}')
    assert cli.main(["cost", str(tmp_path / "broken.json")]) == 2
    assert "not a preview document (expected an object with 'steps')" in capsys.readouterr().err


def test_the_general_pool_is_priced_over_its_zone_groups(preview: Callable[[str], Preview]) -> None:
    """The general pool is one node group per zone, each at its share of the desired size (prod: 1, 1, 0 of 2):
    the items sum to the pool's configured size, so splitting it changes no price."""
    document = preview("prod").to_json()
    table = cost.prices("us-east-1")
    estimate = cost.estimate(document, stack="prod", table=table)
    general = [i for i in estimate.items if i.type == "eks:index:ManagedNodeGroup" and "::keel-prod-general-" in i.urn]
    nodes = [i for i in general if "root volumes" not in i.description]
    assert [(i.urn.rsplit("::", 1)[1], i.description) for i in nodes] == [
        ("keel-prod-general-us-east-1a", "1 x m5.xlarge on demand"),
        ("keel-prod-general-us-east-1b", "1 x m5.xlarge on demand"),
        ("keel-prod-general-us-east-1c", "0 x m5.xlarge on demand"),
    ]
    hours = table["hoursPerMonth"]
    assert sum(i.monthly for i in nodes) == pytest.approx(2 * table["hourly"]["ec2.m5.xlarge"] * hours)
    disks = sum(i.monthly for i in general if "root volumes" in i.description)
    assert disks == pytest.approx(2 * table["assumptions"]["nodeRootVolumeGb"] * table["monthly"]["ebs.gp3.gb"])


def test_a_read_replica_is_priced_single_az_with_its_storage() -> None:
    replica = doc(
        step(
            "aws:rds/instance:Instance",
            "db-replica-1",
            "keel:database:Database",
            instanceClass="db.r6g.xlarge",
            replicateSourceDb="db",
            multiAz=False,
            allocatedStorage=100,
        )
    )
    items = cost.estimate(replica, stack="t", table=TABLE).items
    assert [i.description for i in items] == [
        "db.r6g.xlarge x 1 (single-AZ) read replica",
        "100 GB gp3 x 1",
    ]
    assert cost.estimate(replica, stack="t", table=TABLE).monthly_total == 375.0  # as a single-AZ instance


def test_keel_cost_prod_lists_the_read_replica(preview: Callable[[str], Preview]) -> None:
    """prod's replica: db.r6g.xlarge at 0.45 x 730 h = 328.50, 100 GB x 0.115 = 11.50 (keel's price table)."""
    estimate = cost.of_document(preview("prod").to_json())
    assert estimate is not None
    lines = {(i.description, round(i.monthly, 2)) for i in estimate.items if i.urn.endswith("::keel-prod-db-replica-1")}
    assert lines == {("db.r6g.xlarge x 1 (single-AZ) read replica", 328.5), ("100 GB gp3 x 1", 11.5)}
