"""keel diff: created, updated, deleted and replaced resources; secrets stay masked; text and markdown."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from keel import cli, diff
from keel.engine import Preview

Doc = dict[str, Any]


@pytest.fixture(scope="session")
def prod(preview: Callable[[str], Preview]) -> Doc:
    return preview("prod").to_json()


def edit(doc: Doc, name: str, type_: str, **inputs: Any) -> Doc:
    doc = copy.deepcopy(doc)
    for step in doc["steps"]:
        if step["newState"]["type"] == type_ and step["urn"].endswith(f"::{name}"):
            step["newState"]["inputs"].update(inputs)
    return doc


def test_no_change_is_an_empty_diff(prod: Doc) -> None:
    result = diff.compare(prod, prod)
    assert result.resources == []
    assert diff.text(result) == (
        "0 to create, 0 to update, 0 to delete\nMonthly cost: $1,961.75 -> $1,961.75 (+0.00)\n"
    )


def test_created_deleted_and_updated(prod: Doc) -> None:
    head = edit(prod, "keel-prod-web", "aws:lb/targetGroup:TargetGroup", deregistrationDelay=60)
    removed = next(
        s
        for s in head["steps"]
        if s["urn"].endswith("::keel-prod-logs") and s["newState"]["type"] == "aws:s3/bucket:Bucket"
    )
    head["steps"].remove(removed)
    added = copy.deepcopy(removed)
    added["urn"] = added["newState"]["urn"] = added["urn"].replace("keel-prod-logs", "keel-prod-archive")
    head["steps"].append(added)
    result = diff.compare(prod, head)
    assert sorted((r.op, r.name) for r in result.resources) == [
        ("create", "keel-prod-archive"),
        ("delete", "keel-prod-logs"),
        ("update", "keel-prod-web"),
    ]
    assert [r.urn for r in result.resources] == sorted(r.urn for r in result.resources)  # stable order
    update = next(r for r in result.resources if r.op == "update")
    assert [(c.path, c.old, c.new) for c in update.changes] == [("deregistrationDelay", 30, 60)]
    assert update.replaces == []
    deleted = next(r for r in result.resources if r.op == "delete")
    assert deleted.replaces == ["(deleted)"]  # a bucket holds data: deleting it is flagged
    assert result.counts() == {"create": 1, "update": 1, "delete": 1}


def test_stateful_replacement_is_flagged(prod: Doc) -> None:
    head = edit(
        prod, "keel-prod-db", "aws:rds/instance:Instance", identifier="keel-prod-db2", instanceClass="db.r6g.2xlarge"
    )
    result = diff.compare(prod, head)
    [db] = result.resources
    assert [c.path for c in db.changes] == ["identifier", "instanceClass"]
    assert db.replaces == ["identifier"]  # the class changes in place; the identifier forces a new instance
    out = diff.text(result)
    assert "WARNING: 1 stateful resource(s) would be replaced or deleted:" in out
    assert "  ! keel-prod-db (aws:rds/instance:Instance): identifier" in out
    assert "    identifier: keel-prod-db -> keel-prod-db2" in out
    # db.r6g.2xlarge doubles the instance hours: (0.899 - 0.45) x 730 h x 2 (Multi-AZ) = +655.54
    assert "Monthly cost: $1,961.75 -> $2,617.29 (+655.54)" in out


def test_moving_a_backup_vault_to_another_key_is_flagged(prod: Doc) -> None:
    head = edit(prod, "keel-prod", "aws:backup/vault:Vault", kmsKeyArn="arn:aws:kms:us-east-1:123456789012:key/other")
    [vault] = diff.compare(prod, head).resources
    assert vault.replaces == ["kmsKeyArn"]  # a new vault: the recovery points stay behind in the old one
    assert "  ! keel-prod (aws:backup/vault:Vault): kmsKeyArn" in diff.text(diff.compare(prod, head))


def test_policy_documents_diff_by_field_and_secrets_stay_masked(prod: Doc) -> None:
    role_policy = next(
        s["newState"]
        for s in prod["steps"]
        if s["urn"].endswith("::keel-prod-keda") and s["newState"]["type"] == "aws:iam/rolePolicy:RolePolicy"
    )
    doc = json.loads(role_policy["inputs"]["policy"])
    doc["Statement"][0]["Action"] = ["cloudwatch:GetMetricData"]
    head = edit(prod, "keel-prod-keda", "aws:iam/rolePolicy:RolePolicy", policy=json.dumps(doc))
    head = edit(
        head,
        "keel-prod-queue",
        "aws:elasticache/replicationGroup:ReplicationGroup",
        authToken="[secret]",
        nodeType="cache.m6g.xlarge",
    )
    result = diff.compare(prod, head)
    paths = {r.name: [(c.path, c.new) for c in r.changes] for r in result.resources}
    assert paths["keel-prod-keda"] == [("policy.Statement[0].Action", ["cloudwatch:GetMetricData"])]
    assert paths["keel-prod-queue"] == [("nodeType", "cache.m6g.xlarge")]  # the masked token did not "change"


def test_markdown_leads_with_counts_and_folds_details(prod: Doc) -> None:
    head = edit(prod, "keel-prod-db", "aws:rds/instance:Instance", engine="mysql")
    out = diff.markdown(diff.compare(prod, head), title="keel diff prod")
    lines = out.splitlines()
    assert lines[0] == "### keel diff prod"
    assert lines[2] == "**0** to create, **1** to update, **0** to delete"
    assert lines[4] == "Monthly cost: $1,961.75 → $1,961.75 (+0.00)"  # an engine change costs nothing here
    assert "> [!WARNING]" in out
    assert "- `keel-prod-db` (aws:rds/instance:Instance): engine" in out
    assert "<details><summary>1 to update</summary>" in out
    assert "| `keel-prod-db` | `engine` | `postgres` | `mysql` |" in out


def test_cli_exit_codes(prod: Doc, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, head = tmp_path / "base.json", tmp_path / "head.json"
    base.write_text(json.dumps(prod))
    head.write_text(json.dumps(edit(prod, "keel-prod-storage", "aws:kms/key:Key", multiRegion=True)))
    assert cli.main(["diff", str(base), str(head)]) == 0
    assert "! keel-prod-storage (aws:kms/key:Key): multiRegion" in capsys.readouterr().out
    assert cli.main(["diff", str(base), str(head), "--fail-on-replace"]) == 3
    capsys.readouterr()
    assert cli.main(["diff", str(base), str(base), "--fail-on-replace"]) == 0
    capsys.readouterr()
    assert cli.main(["diff", str(base), "nonsense"]) == 2
    assert capsys.readouterr().err == (
        "error: 'nonsense': expected a saved preview file or STACK@GITREF (such as prod@HEAD~1)\n"
    )
    assert cli.main(["diff", str(base), "prod@no-such-ref"]) == 2
    assert capsys.readouterr().err.startswith("error: git rev-parse --verify no-such-ref^{commit}:")


def test_git_revisions_render_in_a_worktree(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["diff", "dev@HEAD", "dev@HEAD", "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "**0** to create, **0** to update, **0** to delete" in out
