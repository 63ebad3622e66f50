"""Platform: every output its docstring lists is registered, under the same name, naming the right child."""

from __future__ import annotations

import re
from typing import Any

from components import platform as platform_module
from components.config import validate
from components.platform import Platform
from keel import engine, stackfiles
from tests.helpers import REGION, ROOT, OutputsMonitor, run, stack_file


def documented_outputs() -> list[str]:
    """The names in the ``Outputs:`` paragraph of the Platform module's docstring."""
    doc = platform_module.__doc__ or ""
    paragraph = doc.split("Outputs:", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"``(\w+)``", paragraph)


def render(stack: str) -> tuple[engine.Preview, dict[str, Any]]:
    loaded = stackfiles.load_stack(ROOT, stack, stackfiles.load_project(ROOT), path=stack_file(stack))
    cfg = validate(stack, loaded.config, loaded.secret_keys)
    monitor = OutputsMonitor()
    p = run(lambda: Platform(f"keel-{stack}", cfg), stack=stack, config=loaded.config, monitor=monitor)
    platform = p.one("keel:platform:Platform", f"keel-{stack}")
    return p, monitor.outputs[platform.urn]


def test_the_docstring_lists_every_child_component() -> None:
    assert documented_outputs() == [
        "network",
        "cluster",
        "addons",
        "database",
        "caches",
        "buckets",
        "email",
        "load_balancer",
        "cdn",
        "services",
        "scaling",
        "backup",
        "observability",
    ]


def test_prod_registers_every_documented_output_as_its_child() -> None:
    p, outputs = render("prod")
    assert sorted(outputs) == sorted(documented_outputs())
    singles = {
        "network": "keel:network:Network",
        "cluster": "keel:cluster:Cluster",
        "addons": "keel:addons:ClusterAddons",
        "database": "keel:database:Database",
        "buckets": "keel:storage:Buckets",
        "email": "keel:email:Email",
        "load_balancer": "keel:ingress:LoadBalancer",
        "cdn": "keel:cdn:Cdn",
        "backup": "keel:backup:Backup",
        "observability": "keel:observability:Observability",
    }
    for key, type_ in singles.items():
        assert outputs[key] == p.one(type_, "keel-prod").urn, key
    caches = {s.name: s.urn for s in p.of_type("keel:cache:Cache")}
    assert outputs["caches"] == {name.removeprefix("keel-prod-"): urn for name, urn in caches.items()}
    assert outputs["services"] == {s.name.removeprefix("keel-prod-"): s.urn for s in p.of_type("keel:service:Service")}
    assert outputs["scaling"] == {s.name.removeprefix("keel-prod-"): s.urn for s in p.of_type("keel:scaling:Scaling")}
    assert outputs["services"] and outputs["scaling"] and outputs["caches"]


def test_a_stack_without_optional_children_registers_them_empty() -> None:
    """Without a cluster there is no add-on, workload or cache: those outputs are None, the maps empty."""
    raw = {
        "aws:region": REGION,
        "keel:environment": "dev",
        "keel:network": '{"availabilityZones": 2, "natGateways": "Single"}',
    }
    cfg = validate("dev", raw)
    monitor = OutputsMonitor()
    p = run(lambda: Platform("keel-dev", cfg), stack="dev", config=raw, monitor=monitor)
    outputs = monitor.outputs[p.one("keel:platform:Platform", "keel-dev").urn]
    # a None output is not serialized (the SDK drops None properties): the absent children are simply not there
    assert sorted(outputs) == ["buckets", "caches", "network", "scaling", "services"]
    assert outputs["network"] == p.one("keel:network:Network", "keel-dev").urn
    assert outputs["buckets"] == p.one("keel:storage:Buckets", "keel-dev").urn
    assert outputs["caches"] == outputs["services"] == outputs["scaling"] == {}
