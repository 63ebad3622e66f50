"""Stack files are read the way the Pulumi CLI hands config to a program."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from keel import stackfiles

PROJECT = """\
name: keel
runtime: python
config:
  keel:environment:
    type: string
  keel:protect:
    type: boolean
    default: true
  keel:zones:
    type: integer
    default: 2
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text(PROJECT)
    return tmp_path


def load(root: Path, stack: str, text: str) -> tuple[dict[str, str], list[str]]:
    (root / f"Pulumi.{stack}.yaml").write_text(text)
    return stackfiles.load_config(root, stack, stackfiles.load_project(root))


def test_values_reach_the_program_as_text_and_json(root: Path) -> None:
    config, secrets = load(
        root,
        "s",
        "config:\n  aws:region: eu-west-1\n  keel:environment: dev\n  keel:protect: false\n"
        "  keel:network: {cidr: 10.0.0.0/16, availabilityZones: 2}\n",
    )
    assert config == {
        "aws:region": "eu-west-1",
        "keel:environment": "dev",
        "keel:protect": "false",
        "keel:zones": "2",
        "keel:network": '{"cidr":"10.0.0.0/16","availabilityZones":2}',
    }
    assert secrets == []


def test_secure_values_reach_the_program_as_stand_in_plaintext(root: Path) -> None:
    """As the engine does: plaintext in the config map, whole top-level keys listed as secret (never paths)."""
    (root / "Pulumi.s.yaml").write_text(
        "config:\n  keel:environment: dev\n  keel:token:\n    secure: v1:abc\n"
        "  keel:db: {password: {secure: v1:def}, user: app}\n  keel:accountId: {secure: v1:ghi}\n"
    )
    loaded = stackfiles.load_stack(root, "s", stackfiles.load_project(root))
    token, password = stackfiles.stand_in("keel:token"), stackfiles.stand_in("keel:db.password")
    assert token.startswith("keel-secret-stand-in-") and token != password
    assert loaded.config["keel:token"] == token
    assert loaded.config["keel:db"] == f'{{"password":"{password}","user":"app"}}'
    assert loaded.secret_keys == ["keel:accountId", "keel:db", "keel:token"]
    # an account id must still look like one; AWS prints it in every ARN, so the detector does not follow it
    assert re.fullmatch(r"9\d{11}", loaded.config["keel:accountId"])
    assert loaded.stand_ins == {token: "keel:token", password: "keel:db.password"}


def test_declared_keys_are_required_and_typed(root: Path) -> None:
    with pytest.raises(stackfiles.StackError) as caught:
        load(root, "s", "config:\n  keel:protect: maybe\n")
    assert str(caught.value) == (
        "Pulumi.s.yaml: keel:environment: missing; Pulumi.yaml declares it (string) with no default; "
        'keel:protect: got "maybe"; Pulumi.yaml declares it as boolean'
    )


def test_stacks_and_project_root(root: Path) -> None:
    (root / "Pulumi.b.yaml").write_text("config: {}\n")
    (root / "Pulumi.a.yml").write_text("config: {}\n")
    (root / "sub").mkdir()
    assert stackfiles.stacks(root) == ["a", "b"]
    assert stackfiles.project_root(root / "sub") == root.resolve()
    with pytest.raises(stackfiles.StackError, match=r"^unknown stack 'c'; stacks in this project: a, b$"):
        stackfiles.load_config(root, "c", stackfiles.load_project(root))


def test_no_project_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(stackfiles.StackError, match=r"no Pulumi\.yaml in .* or any folder above it"):
        stackfiles.project_root(tmp_path)


def test_a_config_file_replaces_the_stack_file(root: Path, tmp_path: Path) -> None:
    """`--config-file PATH`, as `pulumi preview` takes it: the config comes from PATH, wherever it is and whatever
    its name, checked against Pulumi.yaml as a stack file is; no Pulumi.<stack>.yaml is needed."""
    elsewhere = tmp_path / "elsewhere" / "my-config.yaml"
    elsewhere.parent.mkdir()
    elsewhere.write_text("config:\n  keel:environment: dev\n")
    (root / "Pulumi.s.yaml").write_text("config:\n  keel:environment: prod\n")
    project = stackfiles.load_project(root)
    loaded = stackfiles.load_stack(root, "s", project, path=elsewhere)
    assert (loaded.path, loaded.config["keel:environment"]) == (elsewhere, "dev")
    assert stackfiles.load_config(root, "new", project, path=elsewhere)[0]["keel:protect"] == "true"
    with pytest.raises(stackfiles.StackError, match=r"^--config-file .*/missing\.yaml: no such file$"):
        stackfiles.load_stack(root, "s", project, path=tmp_path / "missing.yaml")
    elsewhere.write_text("config:\n  keel:protect: maybe\n")
    with pytest.raises(stackfiles.StackError, match=r"^my-config\.yaml: keel:environment: missing"):
        stackfiles.load_stack(root, "s", project, path=elsewhere)
