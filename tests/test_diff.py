"""keel diff: created, updated, deleted and replaced resources; secrets stay masked; text and markdown."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from keel import cli, diff, stackfiles
from keel.engine import Preview
from tests.helpers import ROOT, stack_file

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
        "0 to create, 0 to update, 0 to replace, 0 to delete\nMonthly cost: $2,618.99 -> $2,618.99 (+0.00)\n"
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
    assert [(c.path, c.old, c.new, c.replaces) for c in update.changes] == [("deregistrationDelay", 30, 60, "")]
    assert update.replaces == []
    deleted = next(r for r in result.resources if r.op == "delete")
    assert deleted.replaces == ["(deleted)"]  # a bucket holds data: deleting it is flagged
    assert result.counts() == {"create": 1, "update": 1, "replace": 0, "delete": 1}


def test_stateful_replacement_is_flagged(prod: Doc) -> None:
    """terraform-provider-aws renames an RDS instance in place (identifier is not ForceNew) and changes its class
    in place; a new customer key (kmsKeyId: ForceNew) is a new instance."""
    head = edit(
        prod, "keel-prod-db", "aws:rds/instance:Instance", identifier="keel-prod-db2", instanceClass="db.r6g.2xlarge"
    )
    [db] = diff.compare(prod, head).resources
    assert (db.op, [(c.path, c.replaces) for c in db.changes]) == (
        "update",
        [("identifier", ""), ("instanceClass", "")],
    )
    head = edit(head, "keel-prod-db", "aws:rds/instance:Instance", kmsKeyId="arn:aws:kms:us-east-1:123456789012:key/x")
    result = diff.compare(prod, head)
    [db] = result.resources
    assert db.op == "replace" and db.replaces == ["kmsKeyId"]
    out = diff.text(result)
    assert "WARNING: 1 stateful resource(s) would be replaced or deleted:" in out
    assert "  ! keel-prod-db (aws:rds/instance:Instance): kmsKeyId" in out
    assert "+- keel-prod-db  aws:rds/instance:Instance" in out
    assert "    kmsKeyId: " in out and "-> arn:aws:kms:us-east-1:123456789012:key/x  (forces replacement)" in out
    # db.r6g.2xlarge doubles the instance hours: (0.899 - 0.45) x 730 h x 2 (Multi-AZ) = +655.54 (the edit is the
    # primary's only, not the replica's). The base, $2,355.45, is $1,963.75 before read replicas plus the
    # replica's 0.45 x 730 h (328.50) + 100 GB x 0.115 (11.50) + 2 log groups x 5 GB x 0.5 (5.00)
    # + 4 alarms x 0.1 (0.40) = 345.40, plus the RDS Proxy's 0.015 x 4 vCPUs x 730 h (43.80) and its log group
    # (2.50) = 46.30 (so $2,355.45), plus the CDN's two distributions at 100 GB out (8.50) and 10 million HTTPS
    # requests (10.00) each = 37.00, and the replication of two buckets at 50 GB a month: transfer (1.00) and RTC
    # (0.75) each = 3.50, and the replica key (1.00) = 41.50 (so $2,396.95), plus the queue's Global Datastore
    # secondary, 2 x cache.m6g.large (0.149 x 730 h x 2 = 217.54), the standby network's flow-log group (2.50) and
    # the two keys there (2.00) = 222.04.
    assert "Monthly cost: $2,618.99 -> $3,274.53 (+655.54)" in out


def test_a_replacement_of_any_type_is_a_replace(prod: Doc) -> None:
    """Not only stateful types: a Deployment's selector is immutable (pulumi-kubernetes diff.go), a security
    group's description is ForceNew. Each is a replace (+-), without a data-loss warning."""
    selector = {"matchLabels": {"app.kubernetes.io/name": "web2"}}
    head = edit(
        prod,
        "keel-prod-web",
        "kubernetes:apps/v1:Deployment",
        spec={**_inputs(prod, "keel-prod-web", "kubernetes:apps/v1:Deployment")["spec"], "selector": selector},
    )
    [web] = diff.compare(prod, head).resources
    assert (web.op, web.replaces) == ("replace", [])
    assert [c.path for c in web.changes if c.replaces == "always"] == [
        "spec.selector.matchLabels.app.kubernetes.io/name",
        "spec.selector.matchLabels.app.kubernetes.io/part-of",
    ]
    [group] = [s for s in prod["steps"] if s["newState"]["type"] == "aws:ec2/securityGroup:SecurityGroup"][:1]
    head = edit(prod, group["urn"].rsplit("::", 1)[1], "aws:ec2/securityGroup:SecurityGroup", description="new words")
    [sg] = diff.compare(prod, head).resources
    assert (sg.op, [c.replaces for c in sg.changes]) == ("replace", ["always"])


def test_a_conditional_replacement_says_keel_cannot_know(prod: Doc) -> None:
    head = edit(prod, "keel-prod-queue", "aws:elasticache/replicationGroup:ReplicationGroup", engineVersion="6.2")
    [queue] = diff.compare(prod, head).resources
    [change] = queue.changes
    assert (queue.op, change.replaces) == ("update", "may")
    assert "downgrade" in change.why.lower()
    assert queue.replaces == ["engineVersion (may replace)"]  # a cache holds data: warned all the same


def test_every_registered_type_has_replacement_facts(preview: Callable[[str], Preview]) -> None:
    """keel diff can only call a change a replace if it knows the type: every type the stacks register has an
    entry, with its source."""
    facts = diff.replacements()
    registered = {s.type for name in ("dev", "prod") for s in preview(name).steps}
    assert sorted(registered - set(facts)) == []
    assert all(facts[t]["source"] for t in registered)
    assert set(facts["aws:rds/parameterGroup:ParameterGroup"]["forceNew"]) >= {"description", "family", "name"}
    assert "spec.selector" in facts["kubernetes:apps/v1:Deployment"]["forceNew"]


def test_a_new_instance_class_does_not_replace_the_parameter_group(prod: Doc) -> None:
    """The parameter group's description is ForceNew: it must not name the instance class, or a resize would
    replace the group (keel's own making)."""
    [group] = [s["newState"] for s in prod["steps"] if s["newState"]["type"] == "aws:rds/parameterGroup:ParameterGroup"]
    assert group["inputs"]["description"] == "keel-prod: TLS only, tuned to the instance class"
    assert group["ignoreChanges"] == ["description"]


def test_lists_compare_by_element_and_json_has_one_entry_per_resource(prod: Doc) -> None:
    subnets = _inputs(prod, "keel-prod-db", "aws:rds/subnetGroup:SubnetGroup")["subnetIds"]
    head = edit(prod, "keel-prod-db", "aws:rds/subnetGroup:SubnetGroup", subnetIds=[*subnets[:2], "subnet-new"])
    result = diff.compare(prod, head)
    [group] = result.resources
    assert [(c.path, c.old, c.new) for c in group.changes] == [("subnetIds[2]", subnets[2], "subnet-new")]
    doc = result.to_json()
    assert doc["counts"] == {"create": 0, "update": 1, "replace": 0, "delete": 0}
    assert doc["resources"] == [
        {
            "urn": group.urn,
            "type": "aws:rds/subnetGroup:SubnetGroup",
            "name": "keel-prod-db",
            "op": "update",
            "changes": [{"path": "subnetIds[2]", "old": subnets[2], "new": "subnet-new"}],
            "stateful": False,
            "warning": False,
        }
    ]


def test_two_stacks_are_refused(prod: Doc, preview: Callable[[str], Preview]) -> None:
    with pytest.raises(diff.DiffError, match=r"^the two previews are of different stacks \(dev and prod\)"):
        diff.compare(preview("dev").to_json(), prod)
    assert diff.compare({"steps": []}, prod).counts()["create"] == len(prod["steps"])  # a new stack: all create


def _inputs(doc: Doc, name: str, type_: str) -> dict[str, Any]:
    [found] = [
        s["newState"]["inputs"]
        for s in doc["steps"]
        if s["newState"]["type"] == type_ and s["urn"].endswith(f"::{name}")
    ]
    return copy.deepcopy(found)


def test_moving_a_backup_vault_to_another_key_is_flagged(prod: Doc) -> None:
    head = edit(prod, "keel-prod", "aws:backup/vault:Vault", kmsKeyArn="arn:aws:kms:us-east-1:123456789012:key/other")
    [vault] = diff.compare(prod, head).resources
    assert (vault.op, vault.replaces) == ("replace", ["kmsKeyArn"])  # the recovery points stay in the old vault
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
    # element by element: the first action stays, the other two go
    assert paths["keel-prod-keda"] == [("policy.Statement[0].Action[1]", None), ("policy.Statement[0].Action[2]", None)]
    assert paths["keel-prod-queue"] == [("nodeType", "cache.m6g.xlarge")]  # the masked token did not "change"


def test_markdown_leads_with_counts_and_folds_details(prod: Doc) -> None:
    head = edit(prod, "keel-prod-db", "aws:rds/instance:Instance", engine="mysql")
    out = diff.markdown(diff.compare(prod, head), title="keel diff prod")
    lines = out.splitlines()
    assert lines[0] == "### keel diff prod"
    assert lines[2] == "**0** to create, **0** to update, **1** to replace, **0** to delete"
    assert lines[4] == "Monthly cost: $2,618.99 → $2,618.99 (+0.00)"  # an engine change costs nothing here
    assert "> [!WARNING]" in out
    assert "- `keel-prod-db` (aws:rds/instance:Instance): engine" in out
    assert "<details><summary>1 to replace</summary>" in out
    assert (
        "| `keel-prod-db` | `aws:rds/instance:Instance` | `engine` | `postgres` | `mysql` | (forces replacement) |"
        in out
    )


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
    stack = stackfiles.stacks(ROOT)[0]  # any stack the project ships
    assert cli.main(["diff", f"{stack}@HEAD", f"{stack}@HEAD", "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert "**0** to create, **0** to update, **0** to replace, **0** to delete" in out


def test_diff_stack_alone_is_head_against_the_working_tree(capsys: pytest.CaptureFixture[str]) -> None:
    # the tests' dev stack: at HEAD (all create until that file is committed) against the working tree
    assert cli.main(["diff", "dev", "--format", "json", "--config-file", str(stack_file("dev"))]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"counts", "cost", "replacementWarnings", "resources"}
    assert all(r["op"] in ("create", "update", "replace", "delete") for r in report["resources"])
    assert all(r["urn"].startswith("urn:pulumi:dev::keel::") for r in report["resources"])
    assert cli.main(["diff", "qa"]) == 2
    known = ", ".join(stackfiles.stacks(ROOT))
    assert capsys.readouterr().err == f"error: unknown stack 'qa'; stacks in this project: {known}\n"


def test_a_config_file_is_read_at_each_revision(tmp_path: Path) -> None:
    """`keel diff ... --config-file PATH`: a STACK@GITREF side renders PATH as it is at that revision, under the
    stack's name, even where no Pulumi.STACK.yaml exists; where PATH does not exist the side is empty (all create).
    In a scratch clone of the project's HEAD, with one commit adding the file."""
    import subprocess

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=keel", "-c", "user.email=keel@example.com", "-c", "commit.gpgsign=false", *args],
            cwd=repo,
            check=True,
            capture_output=True,
        )

    repo = tmp_path / "repo"
    subprocess.run(["git", "clone", "--quiet", "--shared", str(ROOT), str(repo)], check=True, capture_output=True)
    config = repo / "stacks" / "qa.yaml"
    config.parent.mkdir()
    shutil.copy(stack_file("dev"), config)
    git("add", "stacks/qa.yaml")
    git("commit", "--quiet", "-m", "qa")
    assert diff.load_side("qa@HEAD~1", repo, config)["steps"] == []  # not there yet
    result = diff.compare({"steps": []}, diff.load_side("qa@HEAD", repo, config))
    assert {r.op for r in result.resources} == {"create"}
    assert all(r.urn.startswith("urn:pulumi:qa::keel::") for r in result.resources)
    assert "keel-qa-vpc" in {r.name for r in result.resources}
    with pytest.raises(diff.DiffError, match=r"^--config-file .*: not in the checkout"):
        diff.load_side("qa@HEAD", repo, stack_file("dev"))


def test_a_read_replica_is_diffed_as_a_stateful_instance(prod: Doc) -> None:
    """A replica is an aws:rds/instance:Instance like its source, with the same replacement facts: a new zone
    (availabilityZone: ForceNew) replaces it, and keel diff warns, as for any instance: a replaced replica is rebuilt
    from the primary (its readers lose it for as long as that takes), and --fail-on-replace holds it for review.
    Dropping replicateSourceDb promotes it in place (terraform-provider-aws: not ForceNew)."""
    name, rds = "keel-prod-db-replica-1", "aws:rds/instance:Instance"
    [replica] = diff.compare(prod, edit(prod, name, rds, availabilityZone="us-east-1c")).resources
    assert (replica.name, replica.op, replica.replaces) == (name, "replace", ["availabilityZone"])
    out = diff.text(diff.compare(prod, edit(prod, name, rds, availabilityZone="us-east-1c")))
    assert f"  ! {name} ({rds}): availabilityZone" in out
    promoted = copy.deepcopy(prod)
    for step in promoted["steps"]:
        if step["urn"].endswith(f"::{name}") and step["newState"]["type"] == rds:
            del step["newState"]["inputs"]["replicateSourceDb"]
    [replica] = diff.compare(prod, promoted).resources
    assert (replica.op, replica.replaces) == ("update", [])
