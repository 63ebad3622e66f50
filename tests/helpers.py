"""Plain helpers the tests import explicitly (fixtures live in conftest.py).

The tests' own stacks are under ``tests/stacks`` (README there): ``stack_file(stack)``, ``policy_config_file(stack)``
and ``fixture_flags(stack)`` name them; exact counts and names are asserted on those, never on the shipped
``Pulumi.<stack>.yaml``. ``run(program, ...)`` runs a small program (one component) under keel's recording mocks.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from keel import engine

ROOT = Path(__file__).resolve().parent.parent
#: The tests' own stacks: Pulumi.<stack>.yaml and policies/config.<stack>.json, as the project lays them out.
STACKS = ROOT / "tests" / "stacks"
REGION = "us-east-1"

#: The least a prod stack must say about alerts and backups (config tests start from it).
PROD_OPERATIONS = {
    "keel:alerts": json.dumps({"emails": ["oncall@example.com"]}),
    "keel:backup": json.dumps({"copyRegion": "us-west-2", "vaultLock": {"mode": "governance"}}),
}


def stack_file(stack: str) -> Path:
    """The tests' config file of ``stack`` (``keel ... --config-file``)."""
    return STACKS / f"Pulumi.{stack}.yaml"


def policy_config_file(stack: str) -> Path:
    """The tests' policy config of ``stack`` (``keel ... --policy-pack-config``)."""
    return STACKS / "policies" / f"config.{stack}.json"


def policy_config(stack: str) -> dict[str, Any]:
    """The tests' policy config of ``stack``, parsed."""
    return dict(json.loads(policy_config_file(stack).read_text()))


def fixture_flags(stack: str) -> list[str]:
    """The keel flags that render ``stack`` from the tests' files: ``--config-file`` and ``--policy-pack-config``."""
    return ["--config-file", str(stack_file(stack)), "--policy-pack-config", str(policy_config_file(stack))]


def stack_config(environment: str = "prod", **sections: Any) -> dict[str, str]:
    """A stack's raw config: the region, the environment (prod with :data:`PROD_OPERATIONS`) and ``sections``."""
    raw = {"aws:region": REGION, "keel:environment": environment}
    if environment == "prod":
        raw.update(PROD_OPERATIONS)
    raw.update({f"keel:{k}": json.dumps(v) for k, v in sections.items()})
    return raw


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


class OutputsMonitor(engine.RecordingMonitor):
    """The recording monitor, also keeping what each component registers as its outputs."""

    def __init__(self) -> None:
        super().__init__(engine.FakeCloud(REGION))
        self.outputs: dict[str, dict[str, Any]] = {}

    def RegisterResourceOutputs(self, request: Any) -> Any:
        self.outputs[request.urn] = json_format.MessageToDict(request.outputs)
        return super().RegisterResourceOutputs(request)


def physical_id(step: engine.Step) -> str:
    """The id the fake cloud gave a resource (ids are derived from the URN, so this is the same id)."""
    return engine.FakeCloud(REGION).resource(step.type, step.name, step.urn, {})[0]


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


def _python_patterns(schema: Any) -> Any:
    """A CRD schema with its Go (RE2) ``pattern`` regexes made Python ones: RE2 takes an inline flag group anywhere
    (prometheus-operator writes ``^(?i)(abort|warn)?$``), Python only at the start (``(?i)^(abort|warn)?$``)."""
    if isinstance(schema, dict):
        out = {k: _python_patterns(v) for k, v in schema.items()}
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and pattern.startswith("^(?i)"):
            out["pattern"] = "(?i)^" + pattern[len("^(?i)") :]
        return out
    if isinstance(schema, list):
        return [_python_patterns(v) for v in schema]
    return schema


def _crd_kinds() -> dict[tuple[str, str, str], dict[str, Any]]:
    """(group, version, kind) -> the OpenAPI v3 schema, for every served version of every CRD under tests/data/crds."""
    import yaml

    out = {}
    for path in sorted(CRDS.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        for served in doc["spec"]["versions"]:
            if served.get("served"):
                key = (doc["spec"]["group"], served["name"], doc["spec"]["names"]["kind"])
                out[key] = dict(_python_patterns(served["schema"]["openAPIV3Schema"]))
    return out


def kubernetes_schema_problems(steps: Iterable[Mapping[str, Any]], version: str) -> list[str]:
    """Every Kubernetes object of a preview document's ``steps`` checked against its schema: core and built-in
    API objects strictly with kubernetes-validate at the cluster's ``version`` (``1.34.0``), custom resources with
    their CRD under tests/data/crds (jsonschema); Helm releases are not API objects and are skipped. A problem names
    the resource and what is wrong; [] when all pass. A Secret's ``stringData``, which the preview masks
    (``[secret]``), is left out."""
    import jsonschema
    import kubernetes_validate

    crds = _crd_kinds()
    problems = []
    for step in steps:
        state = step["newState"]
        type_ = str(state["type"])
        if not type_.startswith("kubernetes:") or not state.get("custom", True) or "helm.sh" in type_:
            continue
        name = str(state["urn"]).rsplit("::", 1)[1]
        manifest = dict(state.get("inputs") or {})
        if manifest.get("stringData") == "[secret]":
            del manifest["stringData"]
        if not manifest.get("kind") or not manifest.get("apiVersion") or not manifest.get("metadata", {}).get("name"):
            problems.append(f"{name} ({type_}): no apiVersion, kind or metadata.name")
            continue
        group, _, api_version = str(manifest["apiVersion"]).rpartition("/")
        schema = crds.get((group, api_version, str(manifest["kind"])))
        try:
            if schema is not None:
                jsonschema.validate(manifest, schema)
            else:
                kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{name} ({type_}): no schema; add its CRD under {CRDS}")
        except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as err:
            problems.append(f"{name} ({type_}): {getattr(err, 'message', err)}")
    return problems


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
