"""``keel diff BASE HEAD``: what a change does to a stack, with warnings for stateful replacements.

Usage::

    keel diff before.json after.json                    # two saved `keel preview --json` documents
    keel diff prod@origin/main prod@HEAD --format markdown
    keel diff prod@HEAD~1 prod@HEAD --fail-on-replace   # exit 3 when a stateful resource would be replaced

A side ``STACK@GITREF`` renders the stack as it is at that revision: the revision is checked out in a temporary
git worktree and previewed there by its own code (policy pack skipped), then the worktree is removed.

Resources are matched by URN. For each updated resource the changed input paths are listed with old and new
values; values the preview masks as secrets stay ``[secret]``. A change to an input in :data:`REPLACE_ON` of a
stateful type, or the deletion of a stateful resource, is a **replacement warning**: the data it holds would be
lost or moved.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.cost import Estimate

SECRET = "[secret]"  # noqa: S105 (the mask a preview shows instead of a secret)

#: Inputs whose change makes the provider replace a stateful resource (delete and create: its data goes with
#: it). Each entry names the provider documentation it comes from (the "forces new resource" arguments).
REPLACE_ON: dict[str, tuple[str, ...]] = {
    # registry: aws/rds/instance - identifier, engine, storage encryption and key, subnet group, db name
    "aws:rds/instance:Instance": (
        "identifier",
        "engine",
        "dbSubnetGroupName",
        "storageEncrypted",
        "kmsKeyId",
        "dbName",
        "username",
        "availabilityZone",
        "characterSetName",
    ),
    # registry: aws/elasticache/replicationgroup - engine, subnet group, encryption at rest and its key
    "aws:elasticache/replicationGroup:ReplicationGroup": (
        "engine",
        "subnetGroupName",
        "atRestEncryptionEnabled",
        "kmsKeyId",
        "replicationGroupId",
        "clusterMode",
    ),
    # registry: aws/s3/bucket - the bucket name
    "aws:s3/bucket:Bucket": ("bucket", "bucketPrefix"),
    "aws:s3/bucketV2:BucketV2": ("bucket", "bucketPrefix"),
    # registry: aws/kms/key - key spec, usage and multi-region
    "aws:kms/key:Key": ("customerMasterKeySpec", "keySpec", "keyUsage", "multiRegion"),
    # registry: aws/eks/cluster - name, subnets (vpcConfig), encryption config; pulumi-eks passes these through
    "aws:eks/cluster:Cluster": ("name", "vpcConfig.subnetIds", "encryptionConfig", "kubernetesNetworkConfig"),
    "eks:index:Cluster": (
        "name",
        "subnetIds",
        "privateSubnetIds",
        "publicSubnetIds",
        "encryptionConfigKeyArn",
        "vpcId",
    ),
    # registry: aws/secretsmanager/secret - the name
    "aws:secretsmanager/secret:Secret": ("name", "namePrefix"),
    # registry: aws/backup/vault - the name and the encryption key (recovery points stay in the old vault)
    "aws:backup/vault:Vault": ("name", "kmsKeyArn"),
    # registry: aws/cloudwatch/loggroup - the name (the old group's events are not carried over)
    "aws:cloudwatch/logGroup:LogGroup": ("name", "namePrefix"),
}
STATEFUL = tuple(REPLACE_ON)


class DiffError(Exception):
    """A side could not be read or rendered."""


@dataclass(frozen=True)
class Change:
    path: str
    old: Any
    new: Any


@dataclass
class ResourceDiff:
    urn: str
    type: str
    op: str  # create | delete | update
    changes: list[Change] = field(default_factory=list)
    replaces: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]


@dataclass
class Diff:
    resources: list[ResourceDiff]
    cost: tuple[Estimate | None, Estimate | None] = (None, None)
    """Monthly estimates (base, head) from ``keel cost``'s price table; None for a side whose region has none."""

    def of(self, op: str) -> list[ResourceDiff]:
        return [r for r in self.resources if r.op == op]

    @property
    def replacements(self) -> list[ResourceDiff]:
        return [r for r in self.resources if r.replaces]

    def counts(self) -> dict[str, int]:
        return {op: len(self.of(op)) for op in ("create", "update", "delete")}


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value and not (SECRET in value.values() and len(value) == 1):
        out: dict[str, Any] = {}
        for key in sorted(value):
            out.update(_flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        out = {}
        for index, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}[{index}]"))
        return out
    return {prefix: value}


def _json_inputs(state: Mapping[str, Any]) -> dict[str, Any]:
    """Inputs with JSON-document strings (policies) parsed, so a change shows the field that changed."""
    out = {}
    for key, value in (state.get("inputs") or {}).items():
        parsed = value
        if isinstance(value, str) and value[:1] in "{[":
            with contextlib.suppress(json.JSONDecodeError):
                parsed = json.loads(value)
        out[key] = parsed
    return out


def _changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    before, after = _flatten(_json_inputs(old)), _flatten(_json_inputs(new))
    changes = [
        Change(path, before.get(path), after.get(path))
        for path in sorted(set(before) | set(after))
        if before.get(path) != after.get(path)
    ]
    if bool(old.get("protect")) != bool(new.get("protect")):
        changes.append(Change("(protect)", bool(old.get("protect")), bool(new.get("protect"))))
    return changes


def _forces_replacement(type_: str, changes: Iterable[Change]) -> list[str]:
    keys = REPLACE_ON.get(type_, ())
    return sorted({c.path for c in changes for k in keys if c.path == k or c.path.startswith((f"{k}.", f"{k}["))})


def compare(base: Mapping[str, Any], head: Mapping[str, Any]) -> Diff:
    """The resource changes from ``base`` to ``head`` (two preview documents)."""
    before = {s["urn"]: s["newState"] for s in base.get("steps", [])}
    after = {s["urn"]: s["newState"] for s in head.get("steps", [])}
    out: list[ResourceDiff] = []
    for urn in sorted(set(before) | set(after)):
        if urn not in before:
            out.append(ResourceDiff(urn, after[urn]["type"], "create"))
        elif urn not in after:
            kind = before[urn]["type"]
            out.append(ResourceDiff(urn, kind, "delete", replaces=["(deleted)"] if kind in STATEFUL else []))
        else:
            changes = _changes(before[urn], after[urn])
            if changes:
                kind = after[urn]["type"]
                out.append(ResourceDiff(urn, kind, "update", changes, _forces_replacement(kind, changes)))
    from keel.cost import of_document

    return Diff(out, (of_document(base), of_document(head)))


def cost_line(diff: Diff) -> str:
    """The monthly cost change, or why it is not estimated. A side with a resource the table cannot price is
    never shown as a total: leaving a bigger database out would show it as a saving."""
    before, after = diff.cost
    if before is None or after is None:
        return "Monthly cost: not estimated (no price table for the region)"
    missing = [f"{side}: {e.missing_prices()}" for side, e in (("base", before), ("head", after)) if not e.complete]
    if missing:
        return (
            f"Monthly cost: not estimated, the change is unknown (no price for {'; '.join(missing)}); "
            f"priced part ${before.monthly_total:,.2f} -> ${after.monthly_total:,.2f}"
        )
    total_before, total_after = before.monthly_total, after.monthly_total
    return f"Monthly cost: ${total_before:,.2f} -> ${total_after:,.2f} ({total_after - total_before:+,.2f})"


# ------------------------------------------------------------------------------------------ sides


def load_side(side: str, root: Path) -> dict[str, Any]:
    """A preview document from a file or from ``STACK@GITREF``."""
    path = Path(side)
    if path.is_file():
        try:
            doc = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise DiffError(f"{side}: not JSON ({err})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("steps"), list):
            raise DiffError(f"{side}: not a preview document (expected an object with 'steps')")
        return doc
    stack, at, ref = side.partition("@")
    if not at or not stack or not ref:
        raise DiffError(f"{side!r}: expected a saved preview file or STACK@GITREF (such as prod@HEAD~1)")
    return render_at(stack, ref, root)


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)  # noqa: S603,S607 (git on our repo)
    if done.returncode != 0:
        raise DiffError(f"git {' '.join(args)}: {done.stderr.strip() or 'failed'}")
    return done.stdout.strip()


def render_at(stack: str, ref: str, root: Path) -> dict[str, Any]:
    """Preview ``stack`` as its code and config are at git revision ``ref`` (in a temporary worktree)."""
    commit = _git(root, "rev-parse", "--verify", f"{ref}^{{commit}}")
    with tempfile.TemporaryDirectory(prefix="keel-diff-") as tmp:
        worktree = Path(tmp) / "tree"
        _git(root, "worktree", "add", "--detach", str(worktree), commit)
        try:
            env = {**os.environ, "PYTHONPATH": str(worktree), "KEEL_PROJECT": str(worktree)}
            code = "import sys; from keel.cli import main; sys.exit(main(sys.argv[1:]))"
            done = subprocess.run(  # noqa: S603 - our interpreter, our code at that revision
                [sys.executable, "-c", code, "preview", stack, "--json", "--no-policy"],
                cwd=worktree,
                capture_output=True,
                text=True,
                env=env,
                check=False,
                timeout=600,
            )
            if done.returncode != 0:
                raise DiffError(f"{stack}@{ref}: the preview failed: {done.stderr.strip().splitlines()[-1:]}")
            doc: dict[str, Any] = json.loads(done.stdout)
            return doc
        finally:
            _git(root, "worktree", "remove", "--force", str(worktree))


# ------------------------------------------------------------------------------------------ output


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."


def text(diff: Diff) -> str:
    counts = diff.counts()
    lines = [
        f"{counts['create']} to create, {counts['update']} to update, {counts['delete']} to delete",
        cost_line(diff),
    ]
    if diff.replacements:
        lines.append(f"WARNING: {len(diff.replacements)} stateful resource(s) would be replaced or deleted:")
        lines += [f"  ! {r.name} ({r.type}): {', '.join(r.replaces)}" for r in diff.replacements]
    for op, mark in (("create", "+"), ("update", "~"), ("delete", "-")):
        for r in diff.of(op):
            lines.append(f"{mark} {r.name}  {r.type}")
            lines += [f"    {c.path}: {_show(c.old)} -> {_show(c.new)}" for c in r.changes]
    return "\n".join(lines) + "\n"


def markdown(diff: Diff, title: str = "keel diff") -> str:
    counts = diff.counts()
    out = [
        f"### {title}",
        "",
        f"**{counts['create']}** to create, **{counts['update']}** to update, **{counts['delete']}** to delete",
        "",
        cost_line(diff).replace("->", "→"),
        "",
    ]
    if diff.replacements:
        out += [f"> [!WARNING]\n> {len(diff.replacements)} stateful resource(s) would be replaced or deleted:", ""]
        out += [f"- `{r.name}` ({r.type}): {', '.join(r.replaces)}" for r in diff.replacements]
        out.append("")
    for op in ("create", "update", "delete"):
        items = diff.of(op)
        if not items:
            continue
        out += [f"<details><summary>{len(items)} to {op}</summary>", ""]
        if op == "update":
            out += ["| resource | input | old | new |", "| --- | --- | --- | --- |"]
            out += [
                f"| `{r.name}` | `{c.path}` | `{_show(c.old)}` | `{_show(c.new)}` |" for r in items for c in r.changes
            ]
        else:
            out += [f"- `{r.name}` ({r.type})" for r in items]
        out += ["", "</details>", ""]
    return "\n".join(out)
