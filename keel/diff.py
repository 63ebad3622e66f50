"""``keel diff BASE [HEAD]``: what a change does to a stack, as ``pulumi preview --diff`` would show it.

Usage::

    keel diff prod                                      # prod@HEAD against the working tree
    keel diff before.json after.json                    # two saved `keel preview --json` documents
    keel diff prod@origin/main prod@HEAD --format markdown
    keel diff prod@HEAD~1 prod@HEAD --fail-on-replace   # exit 3 when a stateful resource would be replaced
    keel diff prod --format json                        # one entry per resource: op, changed paths
    keel diff prod --config-file my.yaml                # prod's config from my.yaml, at HEAD and in the working tree

A side ``STACK@GITREF`` renders the stack as it is at that revision: the revision is checked out in a temporary
git worktree and previewed there by its own code (policy pack skipped), then the worktree is removed. A stack
(or a ``--config-file``) that does not exist at that revision diffs as all-create. Two previews of different stacks
are refused.

Resources are matched by URN; each is a ``create``, ``update``, ``replace`` or ``delete``. An update becomes a
**replace** (``+-``) when a changed input is one its provider marks "forces new resource", whatever the type:
the facts are data, ``keel/data/replacements.json``, one entry per resource type keel registers, each with its
upstream source (terraform-provider-aws ``ForceNew``/``RequiresReplace``, pulumi-kubernetes' immutable fields,
pulumi-eks component inputs), plus the resource's own ``replaceOnChanges`` option. An input that replaces only
depending on live state (``conditional`` there) is shown as **may replace**, with the reason: keel cannot know.

Values are compared element by element: objects by key, lists by index, JSON documents (IAM policies) parsed
first. Values the preview masks as secrets stay ``[secret]``. A replacement (or possible one) or a deletion of a
stateful type (:data:`STATEFUL`: its data would be lost or moved) is a **replacement warning**.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.cost import Estimate
    from keel.stackfiles import StackConfigFile

SECRET = "[secret]"  # noqa: S105 (the mask a preview shows instead of a secret)
REPLACEMENTS = Path(__file__).resolve().parent / "data" / "replacements.json"
OPS = ("create", "update", "replace", "delete")
MARKS = {"create": "+", "update": "~", "replace": "+-", "delete": "-"}

#: The data types themselves (also what a protected stack must retain on delete, keel/policy.py).
DATA = (
    "aws:rds/instance:Instance",
    "aws:elasticache/replicationGroup:ReplicationGroup",
    "aws:s3/bucket:Bucket",
    "aws:s3/bucketV2:BucketV2",
    "aws:kms/key:Key",
    "aws:secretsmanager/secret:Secret",
    "aws:backup/vault:Vault",
)
#: Types whose replacement or deletion loses or moves data (or, for keys, makes data unreadable).
STATEFUL = frozenset(
    {
        *DATA,
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:ecr/repository:Repository",
        "aws:eks/cluster:Cluster",
        "eks:index:Cluster",
    }
)


@functools.cache
def replacements() -> dict[str, dict[str, Any]]:
    """The replacement facts per type token (``forceNew``, ``conditional``, ``source``)."""
    types: dict[str, dict[str, Any]] = json.loads(REPLACEMENTS.read_text())["types"]
    return types


class DiffError(Exception):
    """A side could not be read or rendered, or the two sides cannot be compared."""


@dataclass(frozen=True)
class Change:
    path: str
    old: Any
    new: Any
    replaces: str = ""
    """``always``: the provider replaces the resource for this change; ``may``: it may (see ``why``)."""
    why: str = ""

    def to_json(self) -> dict[str, Any]:
        out = {"path": self.path, "old": self.old, "new": self.new}
        if self.replaces:
            out["replaces"] = self.replaces
        if self.why:
            out["why"] = self.why
        return out


@dataclass
class ResourceDiff:
    urn: str
    type: str
    op: str  # create | update | replace | delete
    changes: list[Change] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]

    @property
    def replaces(self) -> list[str]:
        """What makes this a replacement warning: the paths that (may) replace a stateful resource, or
        ``(deleted)``; empty for anything else."""
        if self.type not in STATEFUL:
            return []
        if self.op == "delete":
            return ["(deleted)"]
        return [c.path + (" (may replace)" if c.replaces == "may" else "") for c in self.changes if c.replaces]

    def to_json(self) -> dict[str, Any]:
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "op": self.op,
            "changes": [c.to_json() for c in self.changes],
            "stateful": self.type in STATEFUL,
            "warning": bool(self.replaces),
        }


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
        return {op: len(self.of(op)) for op in OPS}

    def to_json(self) -> dict[str, Any]:
        before, after = self.cost
        return {
            "counts": self.counts(),
            "cost": {
                "base": before.monthly_total if before is not None and before.complete else None,
                "head": after.monthly_total if after is not None and after.complete else None,
                "line": cost_line(self),
            },
            "replacementWarnings": [r.urn for r in self.replacements],
            "resources": [r.to_json() for r in self.resources],
        }


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves by path: objects by key (``a.b``), lists by index (``a[0]``); empty ones are leaves."""
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key in sorted(value):
            out.update(_flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list) and value:
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


_INDEX = re.compile(r"\[\d+\]")


def _covers(pattern: str, path: str) -> bool:
    """Whether a replacement path (``a.b``, ``a[*].b``, a whole block ``a``) covers a changed leaf path."""
    general = _INDEX.sub("[*]", path)
    return general == pattern or general.startswith((f"{pattern}.", f"{pattern}["))


def _replacement(type_: str, path: str, replace_on_changes: list[str]) -> tuple[str, str]:
    facts = replacements().get(type_, {})
    if any(p == "*" or _covers(p, path) for p in replace_on_changes):
        return "always", "replaceOnChanges"
    if any(_covers(p, path) for p in facts.get("forceNew", ())):
        return "always", ""
    for pattern, why in (facts.get("conditional") or {}).items():
        if _covers(pattern, path):
            return "may", why
    return "", ""


def _changes(type_: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    before, after = _flatten(_json_inputs(old)), _flatten(_json_inputs(new))
    replace_on = list(new.get("replaceOnChanges") or [])
    changes = []
    for path in sorted(set(before) | set(after)):
        if before.get(path) == after.get(path):
            continue
        if SECRET in (before.get(path), after.get(path)) and path in before and path in after:
            continue  # a masked secret: the preview cannot tell whether it changed
        changes.append(Change(path, before.get(path), after.get(path), *_replacement(type_, path, replace_on)))
    if bool(old.get("protect")) != bool(new.get("protect")):
        changes.append(Change("(protect)", bool(old.get("protect")), bool(new.get("protect"))))
    return changes


def stack_of(document: Mapping[str, Any]) -> str | None:
    """The stack a preview document is of (from its URNs), None when it has no resources."""
    for step in document.get("steps", []):
        return str(step["urn"]).removeprefix("urn:pulumi:").split("::", 1)[0]
    return None


def compare(
    base: Mapping[str, Any],
    head: Mapping[str, Any],
    cost: tuple[Estimate | None, Estimate | None] | None = None,
) -> Diff:
    """The resource changes from ``base`` to ``head`` (two preview documents of one stack). ``cost``: the two
    documents' estimates when the caller has them already (``keel watch``); None: estimated here."""
    stacks = stack_of(base), stack_of(head)
    if None not in stacks and stacks[0] != stacks[1]:
        raise DiffError(
            f"the two previews are of different stacks ({stacks[0]} and {stacks[1]}); diff a stack with itself"
        )
    before = {s["urn"]: s["newState"] for s in base.get("steps", [])}
    after = {s["urn"]: s["newState"] for s in head.get("steps", [])}
    # A resource whose alias names a URN of the base that the head no longer has is that resource, moved or
    # renamed: the engine diffs it against the old state instead of deleting and creating it (pulumi/pulumi
    # pkg/resource/deploy/step_generator.go, generateSteps' alias lookup).
    for urn, state in after.items():
        if urn in before:
            continue
        for alias in state.get("aliases") or []:
            if alias in before and alias not in after:
                before[urn] = before.pop(alias)
                break
    out: list[ResourceDiff] = []
    for urn in sorted(set(before) | set(after)):
        if urn not in before:
            out.append(ResourceDiff(urn, after[urn]["type"], "create"))
        elif urn not in after:
            out.append(ResourceDiff(urn, before[urn]["type"], "delete"))
        else:
            kind = after[urn]["type"]
            changes = _changes(kind, before[urn], after[urn])
            if changes:
                op = "replace" if any(c.replaces == "always" for c in changes) else "update"
                out.append(ResourceDiff(urn, kind, op, changes))
    if cost is None:
        from keel.cost import of_document

        cost = (of_document(base), of_document(head))
    return Diff(out, cost)


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


def load_side(side: str, root: Path, config_file: Path | None = None) -> dict[str, Any]:
    """A preview document from a file or from ``STACK@GITREF`` (``config_file``: the stack's config file, read at
    that revision, instead of ``Pulumi.<stack>.yaml``)."""
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
    return render_at(stack, ref, root, config_file)


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)  # noqa: S603,S607 (git on our repo)
    if done.returncode != 0:
        raise DiffError(f"git {' '.join(args)}: {done.stderr.strip() or 'failed'}")
    return done.stdout.strip()


def render_at(stack: str, ref: str, root: Path, config_file: Path | None = None) -> dict[str, Any]:
    """Preview ``stack`` as its code and config are at git revision ``ref`` (in a temporary worktree); a stack
    whose file does not exist there is an empty preview, so everything in the other side is a create.

    ``config_file`` (``--config-file``): the stack's config is that file as it is at ``ref`` (a file of the
    checkout), put in the worktree as ``Pulumi.<stack>.yaml``, so the revision's own keel renders it whether or not
    it knows the option."""
    commit = _git(root, "rev-parse", "--verify", f"{ref}^{{commit}}")
    prefix = _git(root, "rev-parse", "--show-prefix")
    if config_file is not None:
        relative = _in_checkout(config_file, root)
        present = bool(_git(root, "ls-tree", "--name-only", commit, "--", relative.as_posix()))
    else:
        relative = None
        files = _git(root, "ls-tree", "--name-only", commit, "--", prefix or ".").splitlines()
        present = any(Path(f).name in (f"Pulumi.{stack}.yaml", f"Pulumi.{stack}.yml") for f in files)
    if not present:
        return {"steps": [], "changeSummary": {}, "policyViolations": []}
    with tempfile.TemporaryDirectory(prefix="keel-diff-") as tmp:
        worktree = Path(tmp) / "tree"
        _git(root, "worktree", "add", "--detach", str(worktree), commit)
        try:
            project = worktree / prefix
            if relative is not None:
                for suffix in ("yaml", "yml"):
                    (project / f"Pulumi.{stack}.{suffix}").unlink(missing_ok=True)
                (project / f"Pulumi.{stack}.yaml").write_bytes((project / relative).read_bytes())
            env = {**os.environ, "PYTHONPATH": str(project), "KEEL_PROJECT": str(project)}
            # The revision's own `main`, with the two process settings of `keel.cli.entry` (no cyclic GC, no
            # teardown: 4 s of a prod render), made here since an older revision's keel has no `entry`.
            code = (
                "import gc, os, sys; gc.disable(); from keel.cli import main; code = main(sys.argv[1:]); "
                "sys.stdout.flush(); sys.stderr.flush(); os._exit(code)"
            )
            done = subprocess.run(  # noqa: S603 - our interpreter, our code at that revision
                [sys.executable, "-c", code, "preview", stack, "--json", "--no-policy"],
                cwd=project,
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


def _in_checkout(config_file: Path, root: Path) -> Path:
    """``config_file`` relative to the project folder ``root``: a ``STACK@GITREF`` side reads it at that revision,
    so it must be a file of the checkout."""
    try:
        return config_file.resolve().relative_to(root.resolve())
    except ValueError:
        raise DiffError(
            f"--config-file {config_file}: not in the checkout {root}; a STACK@GITREF side reads it at that revision"
        ) from None


def render_worktree(stack: str, root: Path, loaded: StackConfigFile | None = None) -> dict[str, Any]:
    """Preview ``stack`` as the working tree has it (the head side of ``keel diff STACK``); ``loaded``: its
    config, when already read."""
    from keel import engine

    result = engine.run(stack, root, loaded=loaded)
    if result.leaks:
        raise DiffError("; ".join(str(leak) for leak in result.leaks))
    return result.to_json()


# ------------------------------------------------------------------------------------------ output


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    return json.dumps(value) if not isinstance(value, str) else value


def _tag(change: Change) -> str:
    if change.replaces == "always":
        return "  (forces replacement)" if change.why != "replaceOnChanges" else "  (replaceOnChanges)"
    if change.replaces == "may":
        return f"  (may replace: {change.why})"
    return ""


def _summary(counts: dict[str, int], bold: str = "") -> str:
    return ", ".join(f"{bold}{counts[op]}{bold} to {op}" for op in OPS)


def text(diff: Diff) -> str:
    lines = [_summary(diff.counts()), cost_line(diff)]
    if diff.replacements:
        lines.append(f"WARNING: {len(diff.replacements)} stateful resource(s) would be replaced or deleted:")
        lines += [f"  ! {r.name} ({r.type}): {', '.join(r.replaces)}" for r in diff.replacements]
    for op in OPS:
        for r in diff.of(op):
            lines.append(f"{MARKS[op]} {r.name}  {r.type}")
            lines += [f"    {c.path}: {_show(c.old)} -> {_show(c.new)}{_tag(c)}" for c in r.changes]
    return "\n".join(lines) + "\n"


def _cell(value: str) -> str:
    return "`" + value.replace("|", "\\|").replace("`", "'") + "`"


def markdown(diff: Diff, title: str = "keel diff") -> str:
    out = [f"### {title}", "", _summary(diff.counts(), "**"), "", cost_line(diff).replace("->", "→"), ""]
    if diff.replacements:
        out += [f"> [!WARNING]\n> {len(diff.replacements)} stateful resource(s) would be replaced or deleted:", ""]
        out += [f"- `{r.name}` ({r.type}): {', '.join(r.replaces)}" for r in diff.replacements]
        out.append("")
    for op in OPS:
        items = diff.of(op)
        if not items:
            continue
        out += [f"<details><summary>{len(items)} to {op}</summary>", ""]
        if op in ("update", "replace"):
            out += ["| resource | type | input | old | new | |", "| --- | --- | --- | --- | --- | --- |"]
            out += [
                f"| `{r.name}` | `{r.type}` | {_cell(c.path)} | {_cell(_show(c.old))} | {_cell(_show(c.new))} "
                f"| {_tag(c).strip()} |"
                for r in items
                for c in r.changes
            ]
        else:
            out += [f"- `{r.name}` ({r.type})" for r in items]
        out += ["", "</details>", ""]
    return "\n".join(out)
