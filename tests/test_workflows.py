"""GitHub workflows: valid against the GitHub workflow schema, minimal permissions, no secrets for forks."""

from __future__ import annotations

import itertools
import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from keel import bootstrap, stackfiles
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
    jobs = load("preview")["jobs"]
    job = jobs["preview"]
    assert job["if"] == jobs["stacks"]["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    assert job["permissions"]["id-token"] == "write"
    pulumi = next(step for step in job["steps"] if step.get("uses", "").startswith("pulumi/actions"))
    assert pulumi["with"]["policyPacks"] == "policies"
    assert pulumi["with"]["comment-on-pr"] is True
    assert not [s for s in job["steps"] if "aws-access-key-id" in s.get("with", {})]  # OIDC only


MATRIX_STACK = "${{ matrix.stack }}"


def role_step(job: dict[str, Any]) -> dict[str, Any]:
    [step] = [s for s in job["steps"] if str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials")]
    return dict(step["with"])


def pulumi_step(job: dict[str, Any]) -> dict[str, Any]:
    [step] = [s for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/actions")]
    return dict(step["with"])


@pytest.mark.parametrize(("name", "job", "role"), [("preview", "preview", "preview"), ("drift", "drift", "preview")])
def test_previews_and_drift_run_every_stack_file_with_its_read_only_role(name: str, job: str, role: str) -> None:
    """One job per stack, from the stack files (the `stacks` job's list), with the role `keel bootstrap` creates for
    it and its own policy config; no stack is named in the workflow."""
    jobs = load(name)["jobs"]
    assert jobs[job]["needs"] == "stacks"
    assert jobs[job]["strategy"]["matrix"] == {"stack": "${{ fromJSON(needs.stacks.outputs.stacks) }}"}
    assert role_step(jobs[job])["role-to-assume"] == (
        "arn:aws:iam::${{ vars.AWS_ACCOUNT_ID }}:role/" + bootstrap.preview_role(MATRIX_STACK)
    )
    pulumi = pulumi_step(jobs[job])
    assert (pulumi["stack-name"], pulumi["policyPackConfigs"]) == (MATRIX_STACK, f"policies/config.{MATRIX_STACK}.json")
    assert "environment" not in jobs[job]  # the deploy roles trust only their environment: previews never get them


def test_deploys_go_tier_by_tier_each_stack_in_its_environment() -> None:
    """A job per kind of stack (keel:environment), in ENVIRONMENTS order, each needing the one before and running
    only if nothing before failed; each stack deploys in the GitHub environment named after it (where its role's
    trust lets it in, and where prod's reviewers gate it), one deployment per stack at a time, never cancelled."""
    from components.config.stack import ENVIRONMENTS

    jobs = load("deploy")["jobs"]
    tiers = list(ENVIRONMENTS)
    assert list(jobs) == ["stacks", *tiers]
    assert jobs[tiers[0]]["needs"] == "stacks"
    assert jobs[tiers[0]]["if"] == f"needs.stacks.outputs.{tiers[0]} != '[]'"
    for before, tier in itertools.pairwise(tiers):
        assert jobs[tier]["needs"] == ["stacks", before]
        assert jobs[tier]["if"] == f"${{{{ !cancelled() && !failure() && needs.stacks.outputs.{tier} != '[]' }}}}"
    for tier in tiers:
        job = jobs[tier]
        assert job["strategy"]["matrix"] == {"stack": f"${{{{ fromJSON(needs.stacks.outputs.{tier}) }}}}"}
        assert job["environment"] == MATRIX_STACK
        assert job["concurrency"] == {"group": f"deploy-{MATRIX_STACK}", "cancel-in-progress": False}
        assert role_step(job)["role-to-assume"] == (
            "arn:aws:iam::${{ vars.AWS_ACCOUNT_ID }}:role/" + bootstrap.deploy_role(MATRIX_STACK)
        )
        pulumi = pulumi_step(job)
        assert (pulumi["command"], pulumi["stack-name"]) == ("up", MATRIX_STACK)
        assert pulumi["policyPackConfigs"] == f"policies/config.{MATRIX_STACK}.json"
    # a failing stack never cancels a sibling's `pulumi up`; prod goes one stack at a time and stops at a failure
    assert [jobs[t]["strategy"]["fail-fast"] for t in tiers] == [False, False, True]
    assert jobs["prod"]["strategy"]["max-parallel"] == 1


def test_drift_fails_on_changes() -> None:
    workflow = load("drift")
    assert "schedule" in workflow["on"]
    pulumi = pulumi_step(workflow["jobs"]["drift"])
    assert pulumi["refresh"] is True
    assert pulumi["expect-no-changes"] is True


LISTING = ("preview", "deploy", "drift")


def listing_step() -> str:
    """The step that lists the stacks, the same in every workflow that needs the list."""
    runs = []
    for name in LISTING:
        job = load(name)["jobs"]["stacks"]
        assert job["permissions"] == {"contents": "read"}
        assert job["outputs"] == {k: f"${{{{ steps.list.outputs.{k} }}}}" for k in ("stacks", "dev", "staging", "prod")}
        [step] = [s for s in job["steps"] if s.get("id") == "list"]
        runs.append(step["run"])
    assert len(set(runs)) == 1, "the stack listing differs between workflows"
    return runs[0]


def run_listing(folder: Path) -> tuple[int, dict[str, list[str]], str]:
    import subprocess

    output = folder / "github-output"
    output.write_text("")
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", listing_step()],
        cwd=folder,
        env={"PATH": "/usr/bin:/bin", "GITHUB_OUTPUT": str(output)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = dict(line.split("=", 1) for line in output.read_text().splitlines())
    return done.returncode, {k: json.loads(v) for k, v in found.items()}, done.stdout + done.stderr


def test_the_listing_finds_every_shipped_stack_in_its_tier(tmp_path: Path) -> None:
    shipped = stackfiles.stacks(ROOT)
    for stack in shipped:
        shutil.copy(ROOT / f"Pulumi.{stack}.yaml", tmp_path)
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path)  # the project file is no stack
    code, found, log = run_listing(tmp_path)
    assert code == 0, log
    assert found["stacks"] == shipped
    project = stackfiles.load_project(ROOT)
    for tier in ("dev", "staging", "prod"):
        assert found[tier] == [
            s for s in shipped if stackfiles.load_config(ROOT, s, project)[0]["keel:environment"] == tier
        ]


def test_a_fourth_stack_file_joins_the_matrix_and_its_tier(tmp_path: Path) -> None:
    """Adding a stack is adding its file: a copy of a shipped stack under a new name (and the other extension), its
    environment quoted and commented as YAML allows, is listed and deployed with its kind; a stack whose environment
    is unknown stops the listing, naming the file, instead of never deploying."""
    shipped = stackfiles.stacks(ROOT)
    for stack in shipped:
        shutil.copy(ROOT / f"Pulumi.{stack}.yaml", tmp_path)
    new = "qa"
    while new in shipped:
        new += "x"
    source = shipped[-1]
    kind = stackfiles.load_config(ROOT, source, stackfiles.load_project(ROOT))[0]["keel:environment"]
    text = (ROOT / f"Pulumi.{source}.yaml").read_text()
    line = f"keel:environment: {kind}"
    assert line in text
    (tmp_path / f"Pulumi.{new}.yml").write_text(text.replace(line, f'keel:environment: "{kind}"  # {new}'))
    code, found, log = run_listing(tmp_path)
    assert code == 0, log
    assert found["stacks"] == sorted([*shipped, new])
    assert [tier for tier in ("dev", "staging", "prod") if new in found[tier]] == [kind]
    (tmp_path / f"Pulumi.{new}.yml").write_text(text.replace(line, "keel:environment: qa"))
    code, _, log = run_listing(tmp_path)
    assert code == 1
    assert f"::error file=Pulumi.{new}.yml::keel:environment: got 'qa'; allowed: dev, staging or prod" in log


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
    # each stack is rendered and analyzed once: the policy verdict (the saved violations, no second run of the pack),
    # the diff's head side and the cost read the saved preview
    calls = (tmp_path / "keel-calls.log").read_text().splitlines()
    for stack in ("dev", "prod", "qa"):
        saved = f"report/preview-{stack}.json"
        assert [c for c in calls if c.split()[1] in (stack, saved) or c.startswith(f"diff {stack}@")] == [
            f"preview {stack} --json",
            f"policy {saved} --saved",
            f"diff {stack}@origin/main {saved} --format markdown",
            f"cost {saved} --json",
        ]
