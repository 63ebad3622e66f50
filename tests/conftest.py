"""Shared fixtures: every test runs Pulumi programs under keel's recording mocks (no cloud, no CLI).

``preview(stack)`` runs the real ``__main__.py`` with ``Pulumi.<stack>.yaml`` once per session and returns the
recorded :class:`keel.engine.Preview` (every registration with its type, name, parent, inputs, options and
dependencies). ``run(program, ...)`` runs a small program (one component) the same way.
"""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from keel import engine

ROOT = Path(__file__).resolve().parent.parent

#: The least a prod stack must say about alerts and backups (config tests start from it).
PROD_OPERATIONS = {
    "keel:alerts": json.dumps({"emails": ["oncall@example.com"]}),
    "keel:backup": json.dumps({"copyRegion": "us-west-2", "vaultLock": {"mode": "governance"}}),
}


def stack_config(environment: str = "prod", **sections: Any) -> dict[str, str]:
    """A stack's raw config: the region, the environment (prod with :data:`PROD_OPERATIONS`) and ``sections``."""
    raw = {"aws:region": "us-east-1", "keel:environment": environment}
    if environment == "prod":
        raw.update(PROD_OPERATIONS)
    raw.update({f"keel:{k}": json.dumps(v) for k, v in sections.items()})
    return raw


@pytest.fixture(scope="session")
def preview() -> Callable[[str], engine.Preview]:
    cache: dict[str, engine.Preview] = {}

    def get(stack: str) -> engine.Preview:
        if stack not in cache:
            cache[stack] = engine.run(stack, ROOT)
        return cache[stack]

    return get


def run(
    program: Callable[[], Any],
    *,
    stack: str = "test",
    config: dict[str, Any] | None = None,
    monitor: engine.RecordingMonitor | None = None,
) -> engine.Preview:
    """Run ``program`` under the recording mocks; ``config`` values that are not strings become JSON."""
    raw = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (config or {}).items()}
    return engine.execute(program, stack=stack, config=raw, monitor=monitor)


def physical_id(step: engine.Step) -> str:
    """The id the fake cloud gave a resource (ids are derived from the URN, so this is the same id)."""
    return engine.FakeCloud("us-east-1").resource(step.type, step.name, step.urn, {})[0]


def policy_doc(step: engine.Step, key: str = "policy") -> Any:
    """A JSON policy document input, parsed."""
    return json.loads(step.inputs[key])


CRDS = ROOT / "tests" / "data" / "crds"


def crd_schema(group_plural: str, version: str) -> dict[str, Any]:
    """The OpenAPI v3 schema of one served CRD version (``targetgroupbindings.elbv2.k8s.aws``, ``v1beta1``)."""
    import yaml

    plural, _, group = group_plural.partition(".")
    doc = yaml.safe_load((CRDS / f"{group}_{plural}.yaml").read_text())
    for served in doc["spec"]["versions"]:
        if served["name"] == version and served.get("served"):
            return dict(served["schema"]["openAPIV3Schema"])
    raise LookupError(f"{group_plural} does not serve {version}")


def k8s_object(step: engine.Step) -> dict[str, Any]:
    """A Kubernetes resource's inputs as the object the API server would receive."""
    return dict(step.inputs)  # a Kubernetes resource's inputs are the object's fields


def sg_rules(p: engine.Preview, sg: engine.Step) -> list[tuple[str, Any, Any, Any]]:
    """Every rule of one security group as (Ingress|Egress, source group name or CIDR, protocol, ports)."""
    urns = p.by_urn()
    out = []
    for kind in ("Ingress", "Egress"):
        for rule in p.of_type(f"aws:vpc/securityGroup{kind}Rule:SecurityGroup{kind}Rule"):
            if rule.property_dependencies.get("securityGroupId") == [sg.urn]:
                source = rule.property_dependencies.get("referencedSecurityGroupId")
                out.append(
                    (
                        kind,
                        urns[source[0]].name if source else rule.inputs.get("cidrIpv4"),
                        rule.inputs["ipProtocol"],
                        (rule.inputs.get("fromPort"), rule.inputs.get("toPort")),
                    )
                )
    return sorted(out, key=str)


REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh moto server for each test, and the standard AWS environment pointing at it."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto keeps its fake accounts in-process: start every test from an empty cloud
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10).close()
    for key, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield endpoint
    server.stop()
