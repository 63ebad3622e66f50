"""keel's policy runner drives any Python CrossGuard pack the way the engine does: a second, minimal pack served
from a scratch folder tells what it was sent (provider, config, number types, enforcement levels)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from keel import policy

MINIMAL_PACK = """
from pulumi_policy import EnforcementLevel, PolicyConfigSchema, PolicyPack, ResourceValidationPolicy


def echo(args, report):
    provider = args.provider.urn if args.provider is not None else None
    config = sorted((args.get_config() or {}).items())
    report(f"provider={provider} config={config!r} replicas={args.props.get('replicas')!r}")


PolicyPack(
    name="minimal",
    enforcement_level=EnforcementLevel.ADVISORY,
    policies=[
        ResourceValidationPolicy(
            name="echo",
            description="Echoes what the engine sent.",
            validate=echo,
            enforcement_level=EnforcementLevel.MANDATORY,
            config_schema=PolicyConfigSchema(
                properties={"threshold": {"type": "number", "default": 3}, "label": {"type": "string"}}
            ),
        ),
        ResourceValidationPolicy(name="quiet", description="Never fires.", validate=lambda args, report: None),
    ],
)
"""

STACK = "urn:pulumi:x::p::pulumi:pulumi:Stack::p-x"
PROVIDER = "urn:pulumi:x::p::pulumi:providers:aws::main"
BUCKET = "urn:pulumi:x::p::aws:s3/bucket:Bucket::b"


def _state(urn: str, parent: str = "", provider: str = "", **inputs: Any) -> dict[str, Any]:
    type_ = urn.split("::")[2]
    return {
        "op": "create",
        "urn": urn,
        "newState": {
            "type": type_,
            "urn": urn,
            "custom": type_ != "pulumi:pulumi:Stack",
            "parent": parent,
            "inputs": inputs,
            "provider": provider,
        },
    }


DOCUMENT = {
    "steps": [
        _state(STACK),
        _state(PROVIDER, STACK, region="us-east-1"),
        _state(BUCKET, STACK, f"{PROVIDER}::provider-id", replicas=0),
    ]
}


@pytest.fixture(scope="module")
def pack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("minimal-pack")
    (folder / "__main__.py").write_text(MINIMAL_PACK)
    # The engine runs <virtualenv>/bin/python, the virtualenv resolved from the pack's folder.
    (folder / "PulumiPolicy.yaml").write_text(
        f"runtime:\n  name: python\n  options:\n    virtualenv: {sys.prefix}\ndescription: a minimal pack\n"
    )
    return folder


def _messages(violations: list[policy.Violation]) -> dict[str, tuple[str, str]]:
    return {v.urn.rsplit("::", 1)[1]: (v.enforcement_level, v.message.splitlines()[-1]) for v in violations}


def test_a_second_pack_gets_what_the_engine_sends(pack_dir: Path) -> None:
    """A properties-only entry keeps the policy's own (mandatory) level; the schema's default fills the rest;
    numbers arrive as floats; ``provider`` is absent for the stack and for provider resources, not empty."""
    found = policy.analyze(DOCUMENT, pack_dir=pack_dir, config={"echo": {"label": "a"}})
    assert {v.policy_pack for v in found} == {"minimal"}
    config = "config=[('label', 'a'), ('threshold', 3.0)]"
    assert _messages(found) == {
        "p-x": ("mandatory", f"provider=None {config} replicas=None"),
        "main": ("mandatory", f"provider=None {config} replicas=None"),
        "b": ("mandatory", f"provider={PROVIDER} {config} replicas=0.0"),
    }


@pytest.mark.parametrize(
    ("config", "level"),
    [
        ({"all": "advisory"}, "advisory"),  # the file's `all` beats the policy's own level
        ({"all": "advisory", "echo": {"enforcementLevel": "mandatory"}}, "mandatory"),  # the entry beats `all`
        ({"echo": "disabled"}, None),
    ],
)
def test_enforcement_level_precedence(pack_dir: Path, config: dict[str, Any], level: str | None) -> None:
    found = policy.analyze({"steps": [DOCUMENT["steps"][2]]}, pack_dir=pack_dir, config=config)
    assert [v.enforcement_level for v in found] == ([level] if level else [])


def test_config_is_validated_against_the_policy_schema(pack_dir: Path) -> None:
    with pytest.raises(
        policy.PolicyConfigError, match=r"^validating policy config: minimal \S+  echo: threshold: 'x' is"
    ):
        policy.analyze(DOCUMENT, pack_dir=pack_dir, config={"echo": {"threshold": "x"}})
    with pytest.raises(policy.PolicyConfigError, match=r"names 'ecko', which the pack 'minimal' does not have"):
        policy.analyze(DOCUMENT, pack_dir=pack_dir, config={"ecko": {"threshold": 1}})


def test_reconcile_configures_every_policy(pack_dir: Path) -> None:
    """Configure carries an entry for every policy of the pack (the engine seeds the map from GetAnalyzerInfo),
    with the policy's own level where the file says nothing."""
    from google.protobuf import empty_pb2

    pack = policy.Pack(pack_dir)
    try:
        info = pack.stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
    finally:
        pack.close()
    configured = policy.reconcile(info, {"echo": {"threshold": 5}})
    assert configured == {
        "echo": policy.PolicyConfig(policy.analyzer_pb2.MANDATORY, {"threshold": 5}),
        "quiet": policy.PolicyConfig(policy.analyzer_pb2.ADVISORY, {}),
    }


def test_reconcile_sends_all_to_every_policy_not_as_a_policy(pack_dir: Path) -> None:
    """``all`` sets the level of every policy (the engine's ``applyConfig``); it is not itself a policy."""
    from google.protobuf import empty_pb2

    pack = policy.Pack(pack_dir)
    try:
        info = pack.stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
    finally:
        pack.close()
    configured = policy.reconcile(info, {"all": "advisory", "quiet": "mandatory"})
    assert configured == {
        "echo": policy.PolicyConfig(policy.analyzer_pb2.ADVISORY, {"threshold": 3}),
        "quiet": policy.PolicyConfig(policy.analyzer_pb2.MANDATORY, {}),
    }


def test_a_pack_that_cannot_start_says_why(tmp_path: Path) -> None:
    (tmp_path / "__main__.py").write_text("from pulumi_policy import PolicyPack\nPolicyPack(name='x', policies=[\n")
    (tmp_path / "PulumiPolicy.yaml").write_text(f"runtime:\n  name: python\n  options:\n    virtualenv: {sys.prefix}\n")
    with pytest.raises(policy.PolicyError, match=r"the policy pack did not start: SyntaxError"):
        policy.analyze(DOCUMENT, pack_dir=tmp_path, config={})


def test_a_virtualenv_that_does_not_exist_is_named(tmp_path: Path) -> None:
    (tmp_path / "PulumiPolicy.yaml").write_text("runtime:\n  name: python\n  options:\n    virtualenv: venv\n")
    with pytest.raises(policy.PolicyError, match=r"its virtualenv 'venv' has no .*/venv/bin/python; create it"):
        policy.Pack(tmp_path)
    (tmp_path / "PulumiPolicy.yaml").write_text("runtime: nodejs\n")
    with pytest.raises(policy.PolicyError, match=r"runtime 'nodejs'; keel runs Python policy packs offline"):
        policy.Pack(tmp_path)


def test_the_shipped_pack_names_the_project_virtualenv() -> None:
    """`pulumi preview --policy-pack policies` runs the pack on the project's .venv (relative to policies/)."""
    import yaml

    manifest = yaml.safe_load((policy.PACK_DIR / "PulumiPolicy.yaml").read_text())
    assert manifest["runtime"] == {"name": "python", "options": {"virtualenv": "../.venv"}}
    # the venv's own bin/python (not the interpreter it links to: that would run outside the venv)
    assert policy.pack_python(policy.PACK_DIR) == policy.PACK_DIR.parent.resolve() / ".venv" / "bin" / "python"
