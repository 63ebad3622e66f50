"""Stack files are read the way the Pulumi CLI hands config to a program."""

from __future__ import annotations

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


def test_secure_values_are_masked_and_marked_secret(root: Path) -> None:
    config, secrets = load(
        root,
        "s",
        "config:\n  keel:environment: dev\n  keel:token:\n    secure: v1:abc\n"
        "  keel:db: {password: {secure: v1:def}, user: app}\n",
    )
    assert config["keel:token"] == "[secret]"
    assert config["keel:db"] == '{"password":"[secret]","user":"app"}'
    assert secrets == ["keel:db", "keel:token"]


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
