"""GitHub workflows: valid against the GitHub workflow schema, minimal permissions, no secrets for forks."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.helpers import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"
NAMES = ("pull-request", "pr-comment", "preview", "deploy", "drift")


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((WORKFLOWS / f"{name}.yml").read_text())
    if True in data:  # YAML 1.1 reads the key `on` as a boolean; GitHub reads it as "on"
        data["on"] = data.pop(True)
    return dict(data)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    return dict(json.loads(vendor.joinpath("github-workflows.json").read_text()))


@pytest.mark.parametrize("name", NAMES)
def test_workflow_is_valid(schema: dict[str, Any], name: str) -> None:
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(load(name)), key=str)
    assert errors == []


@pytest.mark.parametrize("name", NAMES)
def test_permissions_are_minimal(name: str) -> None:
    workflow = load(name)
    assert workflow["permissions"] == {"contents": "read"}  # the default for every job
    for job in workflow["jobs"].values():
        granted = job["permissions"]
        assert granted.get("contents") in (None, "read")
        assert set(granted) <= {"contents", "id-token", "pull-requests", "actions"}
        assert all(level in ("read", "write") for level in granted.values())


def test_fork_pull_requests_get_no_secrets_and_no_write_token() -> None:
    workflow = load("pull-request")
    text = (WORKFLOWS / "pull-request.yml").read_text()
    assert set(workflow["on"]) == {"pull_request"}  # never pull_request_target
    assert "secrets." not in text
    assert "vars." not in text
    assert workflow["jobs"]["check"]["permissions"] == {"contents": "read"}
    steps = workflow["jobs"]["check"]["steps"]
    assert steps[0]["with"]["persist-credentials"] is False
    assert any(step.get("run") == "make test" for step in steps)
    # untrusted refs reach the shell through the environment, never through ${{ }} in a script
    assert all("${{" not in step.get("run", "") for step in steps)


def test_the_commenter_never_runs_pull_request_code() -> None:
    workflow = load("pr-comment")
    assert set(workflow["on"]) == {"workflow_run"}
    job = workflow["jobs"]["comment"]
    assert job["permissions"] == {"actions": "read", "pull-requests": "write"}
    uses = [step.get("uses", "") for step in job["steps"]]
    assert not [u for u in uses if u.startswith("actions/checkout")]
    assert not [step for step in job["steps"] if "run" in step]


def test_real_previews_only_for_same_repository_pull_requests() -> None:
    job = load("preview")["jobs"]["preview"]
    assert job["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    assert job["permissions"]["id-token"] == "write"
    pulumi = next(step for step in job["steps"] if step.get("uses", "").startswith("pulumi/actions"))
    assert pulumi["with"]["policyPacks"] == "policies"
    assert pulumi["with"]["comment-on-pr"] is True
    assert not [s for s in job["steps"] if "aws-access-key-id" in s.get("with", {})]  # OIDC only


def test_deploys_are_serialized_and_prod_is_gated() -> None:
    jobs = load("deploy")["jobs"]
    assert jobs["prod"]["needs"] == "dev"
    assert jobs["prod"]["environment"] == "prod"
    for stack, job in jobs.items():
        assert job["concurrency"] == {"group": f"deploy-{stack}", "cancel-in-progress": False}
        pulumi = next(step for step in job["steps"] if step.get("uses", "").startswith("pulumi/actions"))
        assert (pulumi["with"]["command"], pulumi["with"]["stack-name"]) == ("up", stack)
        assert pulumi["with"]["policyPackConfigs"] == f"policies/config.{stack}.json"


def test_drift_fails_on_changes() -> None:
    workflow = load("drift")
    assert "schedule" in workflow["on"]
    pulumi = next(s for s in workflow["jobs"]["drift"]["steps"] if s.get("uses", "").startswith("pulumi/actions"))
    assert pulumi["with"]["refresh"] is True
    assert pulumi["with"]["expect-no-changes"] is True


def test_every_workflow_is_tested() -> None:
    assert sorted(p.stem for p in Path(WORKFLOWS).glob("*.yml")) == sorted(NAMES)


def test_the_schema_rejects_a_broken_workflow(schema: dict[str, Any]) -> None:
    broken = load("drift")
    broken["jobs"]["drift"]["timeout-minutes"] = "an hour"
    del broken["jobs"]["drift"]["runs-on"]
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert list(validator.iter_errors(broken))


FAKE_KEEL = """#!/usr/bin/env bash
# A stand-in keel that logs each call: prod's cost has no prices, `diff` of the new stack `qa` and its preview fail.
echo "$*" >> keel-calls.log
case "$1 $2" in
  "cost report/preview-prod.json") echo "error: no price table" >&2; exit 2 ;;
  "preview qa") echo "error: unknown stack" >&2; exit 2 ;;
  "diff qa@"*) echo "error: cannot diff" >&2; exit 2 ;;
  "preview "*) echo '{"steps": []}' ;;
  "policy "*) echo "Policies: no violations" ;;
  "diff "*) echo "**0** to create" ;;
  "cost "*) echo '{}' ;;
esac
"""


def test_the_pull_request_report_is_written_when_a_step_fails(tmp_path: Path) -> None:
    """The report step runs as GitHub runs it (`bash -eo pipefail`) with a keel whose commands fail for one stack
    or another: every stack still gets its section, the failures are in it, and the verdict says 1."""
    import subprocess

    job = load("pull-request")["jobs"]["check"]
    [step] = [s for s in job["steps"] if s.get("name") == "Previews, policy verdict, diff and cost"]
    assert step["if"] == "${{ !cancelled() }}"
    [upload] = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert upload["if"] == "${{ !cancelled() }}"
    for stack in ("dev", "prod", "qa"):  # stacks come from the files, not from a list
        (tmp_path / f"Pulumi.{stack}.yaml").write_text("config: {}\n")
    keel = tmp_path / ".venv" / "bin" / "keel"
    keel.parent.mkdir(parents=True)
    keel.write_text(FAKE_KEEL)
    keel.chmod(0o755)
    summary = tmp_path / "summary.md"
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "BASE_REF": "main", "PR_NUMBER": "7", "GITHUB_STEP_SUMMARY": str(summary)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    comment = (tmp_path / "report" / "comment.md").read_text()
    assert [line for line in comment.splitlines() if line.startswith("### ")] == ["### dev", "### prod", "### qa"]
    assert "error: unknown stack" in comment and "keel diff failed for qa" in comment
    assert (tmp_path / "report" / "verdict").read_text().strip() == "1"
    assert json.loads((tmp_path / "report" / "cost-prod.json").read_text()) == {"error": "cost not estimated for prod"}
    assert summary.read_text() == comment
    # each stack is rendered once: the policy verdict, the diff's head side and the cost read the saved preview
    calls = (tmp_path / "keel-calls.log").read_text().splitlines()
    for stack in ("dev", "prod", "qa"):
        saved = f"report/preview-{stack}.json"
        assert [c for c in calls if c.split()[1] in (stack, saved) or c.startswith(f"diff {stack}@")] == [
            f"preview {stack} --json",
            f"policy {saved}",
            f"diff {stack}@origin/main {saved} --format markdown",
            f"cost {saved} --json",
        ]
