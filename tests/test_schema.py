"""`keel schema`: the JSON Schema of a stack file, generated from the typed model, shipped at
keel/data/stack.schema.json and named by every stack file's first line (editor completion)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from components.config import SECRET_CAPABLE, StackConfig
from keel import schema, stackfiles
from keel.cli import main
from tests.helpers import ROOT, STACKS

REGENERATE = "stale: regenerate it with `keel schema --output keel/data/stack.schema.json`"


def shipped() -> dict[str, Any]:
    return dict(json.loads(schema.SCHEMA_PATH.read_text()))


def stack_files() -> list[Path]:
    """Every shipped stack file (as keel.stackfiles finds them) and every stack file of the tests."""
    root = [stackfiles._stack_file(ROOT, stack) for stack in stackfiles.stacks(ROOT)]
    return root + sorted(STACKS.glob("Pulumi.*.yaml"))


def errors(document: Any) -> list[str]:
    validator = jsonschema.Draft202012Validator(shipped())
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document))


def test_the_shipped_schema_is_current() -> None:
    """keel/data/stack.schema.json is what `keel schema` writes from the model and Pulumi.yaml today."""
    assert schema.render(stackfiles.load_project(ROOT)) == schema.SCHEMA_PATH.read_text(), REGENERATE


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    document = shipped()
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(document)


@pytest.mark.parametrize("path", stack_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_stack_file_is_valid_and_names_the_schema(path: Path) -> None:
    """Each stack file validates against the schema as written (YAML structures, not JSON text), and its first line
    points the YAML language server at the schema, relative to the file."""
    assert errors(yaml.safe_load(path.read_text())) == []
    first = path.read_text().splitlines()[0]
    assert first == schema.modeline(path)
    assert first.endswith(
        "$schema=keel/data/stack.schema.json" if path.parent == ROOT else "../../keel/data/stack.schema.json"
    )


def test_every_keel_key_is_in_the_schema_with_its_docstring() -> None:
    """`config` lists aws:region and every key of StackConfig as keel:<camelCase>; field docstrings are the
    descriptions (pydantic's use_attribute_docstrings), Sphinx markup turned into Markdown, no derived titles."""
    from components.config import config_keys

    config = shipped()["properties"]["config"]
    assert list(config["properties"]) == ["aws:region", *(f"keel:{k}" for k in config_keys())]
    assert config["required"] == ["aws:region", "keel:environment"]  # environment: declared without a default
    network = shipped()["$defs"]["NetworkConfig"]["properties"]
    assert network["availabilityZones"] == {
        "default": 3,
        "description": "How many AZs the subnets span (2 to 6).",
        "maximum": 6,
        "minimum": 2,
        "type": "integer",
    }
    generated = schema.schema(stackfiles.load_project(ROOT))  # descriptions are read only when a schema is made
    caches = generated["properties"]["config"]["properties"]["keel:caches"]
    assert caches["description"].startswith("Replication groups")
    assert StackConfig.model_fields["caches"].description is not None
    assert "``" not in json.dumps(shipped()) and ":data:`" not in json.dumps(shipped())
    retention = network["flowLogRetentionDays"]
    assert retention["enum"][:3] == [1, 3, 5] and retention["default"] == 30


def test_declared_scalars_follow_pulumi_yaml() -> None:
    """keel:accountId is a string (never null: Pulumi.yaml declares it a string) defaulting to ""; keel:protect
    defaults to true."""
    keys = shipped()["properties"]["config"]["properties"]
    assert keys["keel:accountId"]["default"] == ""
    assert keys["keel:accountId"]["anyOf"] == [{"type": "string"}, {"$ref": "#/$defs/Secure"}]
    assert keys["keel:protect"]["type"] == "boolean" and keys["keel:protect"]["default"] is True


def test_secure_values_are_allowed_exactly_where_keel_keeps_them() -> None:
    """`{secure: ...}` only where components.config.SECRET_CAPABLE says keel keeps it; every such key has its place
    in keel.schema.SECURE_AT."""
    assert set(schema.SECURE_AT) == set(SECRET_CAPABLE)
    stack = yaml.safe_load((STACKS / "Pulumi.dev.yaml").read_text())
    secure = {"secure": "v1:AAAA"}
    assert errors({**stack, "config": {**stack["config"], "keel:accountId": secure}}) == []
    wrong = copy.deepcopy(stack)
    wrong["config"]["keel:alerts"]["emails"] = [secure]
    assert errors(wrong) == ["config/keel:alerts/emails/0: {'secure': 'v1:AAAA'} is not of type 'string'"]


CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "a misspelt key",
        {"keel:netwrok": {}},
        ["config: 'keel:netwrok' does not match any of the regexes: '^(?!keel:)[A-Za-z0-9_.-]+:.+$'"],
    ),
    (
        "a key without its namespace",
        {"network": {}},
        ["config: 'network' does not match any of the regexes: '^(?!keel:)[A-Za-z0-9_.-]+:.+$'"],
    ),
    ("another package's key", {"aws:profile": "ops", "pulumi:tags": {"team": "x"}}, []),
    (
        "a number as text",
        {"keel:network": {"availabilityZones": "3"}},
        ["config/keel:network/availabilityZones: '3' is not of type 'integer'"],
    ),
    (
        "out of range",
        {"keel:network": {"availabilityZones": 9}},
        ["config/keel:network/availabilityZones: 9 is greater than the maximum of 6"],
    ),
    (
        "an unknown nested key",
        {"keel:buckets": {"forceDestroyy": True}},
        ["config/keel:buckets: Additional properties are not allowed ('forceDestroyy' was unexpected)"],
    ),
    (
        "a database class off the list",
        {"keel:database": {"instanceClass": "db.r6g.xlarg"}},
        ["config/keel:database/instanceClass: 'db.r6g.xlarg' is not one of ['db.t4g.micro', 'db.t4g.small', "],
    ),
    (
        "a log retention CloudWatch refuses",
        {"keel:network": {"flowLogRetentionDays": 31}},
        ["config/keel:network/flowLogRetentionDays: 31 is not one of [1, 3, 5, 7, "],
    ),
]


@pytest.mark.parametrize(("change", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_schema_flags_what_validation_refuses(change: dict[str, Any], expected: list[str]) -> None:
    stack = yaml.safe_load((STACKS / "Pulumi.dev.yaml").read_text())
    found = errors({**stack, "config": {**stack["config"], **change}})
    assert len(found) == len(expected) and all(f.startswith(e) for f, e in zip(found, expected, strict=True)), found


def test_the_top_level_keys_are_pulumis() -> None:
    stack = yaml.safe_load((STACKS / "Pulumi.prod.yaml").read_text())
    extra = {
        "secretsprovider": "awskms://alias/keel-pulumi-secrets?region=us-east-1",
        "encryptedkey": "AQICAHh...",
        "environment": ["keel/prod"],
    }
    assert errors({**stack, **extra}) == []
    assert errors({**stack, "secretsProvider": "x"}) == [
        ": Additional properties are not allowed ('secretsProvider' was unexpected)"
    ]
    assert errors({}) == [": 'config' is a required property"]


def test_keel_schema_prints_or_writes_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == schema.SCHEMA_PATH.read_text()
    target = tmp_path / "stack.schema.json"
    assert main(["schema", "--output", str(target)]) == 0
    assert target.read_text() == schema.SCHEMA_PATH.read_text()
    assert capsys.readouterr().err == f"wrote {target}\n"
