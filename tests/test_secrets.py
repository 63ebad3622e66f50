"""Secrets as the engine handles them: plaintext to the program, the top-level key listed as secret. The program
keeps what it reads from a secret key secret, and `keel preview` fails when a secret reaches an input unmarked."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from components.config import ConfigError, validate
from keel import cli, engine, stackfiles
from tests.helpers import ROOT, stack_config, stack_file


def test_a_secret_read_unmarked_is_caught_with_its_key_and_input() -> None:
    """`Config.get` returns a secure value's plaintext unmarked: a program that passes it on leaks it into the
    state. The recording monitor finds the stand-in outside any secret envelope."""
    token = stackfiles.stand_in("keel:token")

    def program() -> None:
        plain = pulumi.Config("keel").get("token")
        aws.s3.Bucket("leaky", tags={"token": plain or ""})
        aws.s3.Bucket("kept", tags={"token": pulumi.Config("keel").get_secret("token")})  # type: ignore[dict-item]

    monitor = engine.RecordingMonitor(engine.FakeCloud("us-east-1"), stand_ins={token: "keel:token"})
    preview = engine.execute(
        program,
        stack="t",
        config={"aws:region": "us-east-1", "keel:token": token},
        secret_keys=["keel:token"],
        monitor=monitor,
    )
    assert [(leak.config_path, leak.urn.rsplit("::", 1)[1], leak.input_path) for leak in preview.leaks] == [
        ("keel:token", "leaky", "tags.token")
    ]
    assert str(preview.leaks[0]) == (
        "secret config keel:token reaches leaky (aws:s3/bucket:Bucket) tags.token unmarked; read it with "
        "get_secret*/Output.secret so it stays secret"
    )
    assert preview.one("aws:s3/bucket:Bucket", "kept").inputs["tags"] == {"token": "[secret]"}


def test_a_secure_value_outside_the_keys_that_keep_it_is_refused() -> None:
    raw = stack_config("dev", alerts={"emails": ["oncall@example.com"]})
    with pytest.raises(ConfigError) as err:
        validate("dev", raw, secret_keys=["keel:alerts"])
    assert err.value.problems == [
        "keel:alerts: holds a secure value; keel keeps secure values only in keel:services, keel:accountId "
        "(this key's values reach resources in plain text)"
    ]
    assert validate("dev", raw, secret_keys=["aws:region"]).secret_keys == frozenset()


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout with the project's code, for a stack shaped as the tests' dev stack holding secure values."""
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    for name in ("components", "policies"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _stack_with(scratch: Path, name: str, extra: dict[str, Any]) -> None:
    import yaml

    doc = yaml.safe_load(stack_file("dev").read_text())
    config = doc["config"]
    config["keel:services"]["api"]["env"] = {"LOG_LEVEL": "info", "PARTNER_TOKEN": {"secure": "v1:AAAA"}}
    config.update(extra)
    (scratch / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(doc))


def test_secure_env_stays_secret_through_the_deployment(scratch: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A `secure:` env value (and a secure account id, accepted as the CLI accepts it) previews with no leak: the
    Deployment carries it as a secret leaf; the rest of the pod spec stays readable."""
    _stack_with(scratch, "sec", {"keel:accountId": {"secure": "v1:BBBB"}})
    assert cli.main(["preview", "sec", "--json", "--no-policy"]) == 0
    doc = json.loads(capsys.readouterr().out)
    [api] = [s["newState"] for s in doc["steps"] if s["urn"].endswith("Deployment::keel-sec-api")]
    env = {e["name"]: e["value"] for e in api["inputs"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PARTNER_TOKEN"] == "[secret]" and env["LOG_LEVEL"] == "[secret]"  # the whole key is secret
    assert env["SERVICE_NAME"] == "api" and api["inputs"]["spec"]["selector"]["matchLabels"]
    assert stackfiles.stand_in("keel:services.api.env.PARTNER_TOKEN") not in json.dumps(doc)


def test_a_leak_fails_the_preview_naming_key_and_input(scratch: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same stack through a program that forgets to keep env secret: exit 1, the config key and the input."""
    _stack_with(scratch, "leak", {})
    service = scratch / "components"
    service.unlink()
    shutil.copytree(ROOT / "components", service)
    path = service / "service.py"
    source = path.read_text()
    assert source.count("if secret_env:") == 1  # the one place Service keeps config env secret
    path.write_text(source.replace("if secret_env:", "if False:"))
    (scratch / "policies").unlink()
    shutil.copytree(ROOT / "policies", scratch / "policies")
    code = _run_keel(scratch, "preview", "leak", "--no-policy")
    assert code.returncode == 1, code.stderr
    assert (
        "error: stack 'leak': secret config keel:services.api.env.PARTNER_TOKEN reaches keel-leak-api "
        "(kubernetes:apps/v1:Deployment) spec.template.spec.containers[0].env[" in code.stderr
    )


def _run_keel(cwd: Path, *args: str) -> Any:
    """keel in a fresh process (the scratch checkout's own components, not the ones this process imported)."""
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-m", "keel.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
