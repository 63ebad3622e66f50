"""The README's table of policies: every policy of the pack by service, with the level and thresholds each stack's
policy config gives it, as the engine reconciles them, and why a policy does not block where it does not.

``python -m keel.policydoc`` prints the section; ``python -m keel.policydoc --write`` puts it into README.md
between the ``policies:begin`` and ``policies:end`` markers. A test keeps the README equal to it.

Levels come from the pack itself (``GetAnalyzerInfo`` of a started pack) and ``policies/config.<stack>.json``
through :func:`keel.policy.reconcile`, the same path ``keel policy`` takes, so the table cannot drift from what
the gate does."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from google.protobuf import empty_pb2
from pulumi.runtime.proto import analyzer_pb2

from keel import policy

STACKS = ("prod", "dev")
BEGIN, END = "<!-- policies:begin -->", "<!-- policies:end -->"
README = Path(__file__).resolve().parents[1] / "README.md"

#: Why a policy does not block on a stack: every (stack, policy) whose level is not mandatory needs a line here,
#: and a line for a mandatory one is an error (it went stale).
REASONS: dict[tuple[str, str], str] = {
    ("dev", "aws-alb-deletion-protection"): "dev's load balancer goes with the stack when it is torn down",
    ("dev", "aws-alb-waf-associated"): "dev carries no customer traffic; the web ACL and its rules cost ~$10 a month",
    ("dev", "aws-backup-plan-copies-to-another-region"): "dev data is rebuilt, not restored; no `copyRegion`",
    ("dev", "aws-backup-vaults-locked"): "a lock would keep dev's recovery points (and their cost) past a teardown",
    ("dev", "aws-eks-cluster-deletion-protection"): "the dev cluster is torn down and rebuilt at will",
    ("dev", "aws-elasticache-automatic-failover-multi-az"): "one node per dev cache: failover needs a replica",
    ("dev", "aws-elasticache-snapshot-retention"): (
        "dev's caches hold nothing worth restoring (`snapshotRetentionDays: 0` saves the storage); "
        "the finding stays visible on every dev preview"
    ),
    (
        "dev",
        "aws-rds-backups-replicated-to-another-region",
    ): "no `copyRegion` in dev: dev data is not restored elsewhere",
    ("dev", "aws-rds-instance-deletion-protection"): "the dev database is destroyed with its stack",
    ("dev", "aws-rds-instance-final-snapshot"): "the dev database is destroyed with its stack, without a snapshot",
    ("dev", "aws-rds-instance-keeps-automated-backups"): "dev's automated backups go with the instance",
    ("dev", "aws-rds-instance-multi-az"): "a single-AZ dev database costs half",
    ("dev", "aws-secretsmanager-secret-recoverable"): (
        "dev secrets are deleted at once, so a torn-down stack can be brought up again under the same names"
    ),
    ("dev", "stack-stateful-no-force-delete"): "dev's buckets and registries are emptied when the stack is destroyed",
    ("dev", "stack-stateful-resources-protected"): "dev is destroyable: nothing in it is protected",
}

_LEVEL_NAMES: dict[int, str] = {
    analyzer_pb2.ADVISORY: "advisory",
    analyzer_pb2.MANDATORY: "mandatory",
    analyzer_pb2.DISABLED: "off",
}


def service(name: str) -> str:
    """The service a policy is about, from its name: ``aws-rds-...`` is ``rds``, ``kubernetes-...``
    ``kubernetes``."""
    parts = name.split("-")
    return parts[1] if parts[0] == "aws" else parts[0]


def levels(info: Any, root: Path) -> dict[str, dict[str, tuple[str, dict[str, Any]]]]:
    """``{stack: {policy: (level, the properties the stack's file sets)}}``."""
    out: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {}
    for stack in STACKS:
        settings = policy.load_config(policy.config_file(stack, root / "policies"))
        reconciled = policy.reconcile(info, settings)
        out[stack] = {
            name: (
                _LEVEL_NAMES[c.enforcement_level],
                {k: v for k, v in (settings.get(name) or {}).items() if k != "enforcementLevel"}
                if isinstance(settings.get(name), dict)
                else {},
            )
            for name, c in reconciled.items()
        }
    return out


def _cell(level: str, properties: Mapping[str, Any]) -> str:
    if not properties:
        return level
    shown = ", ".join(f"{k} {json.dumps(v) if not isinstance(v, int | float) else v}" for k, v in properties.items())
    return f"{level} ({shown})"


def render(info: Any, by_stack: Mapping[str, Mapping[str, tuple[str, dict[str, Any]]]]) -> str:
    policies: Sequence[Any] = sorted(info.policies, key=lambda p: (service(p.name), p.name))
    lines = [
        BEGIN,
        "",
        f"{len(policies)} policies. Prod's config sets `all: mandatory`: every policy blocks there. Dev's keeps "
        "security the same and relaxes only what costs money or stops a teardown; each exception below says why.",
        "",
        "| service | policy | holds | prod | dev |",
        "| --- | --- | --- | --- | --- |",
    ]
    for p in policies:
        cells = [_cell(*by_stack[stack][p.name]) for stack in ("prod", "dev")]
        lines.append(
            f"| {service(p.name)} | `{p.name}` | {p.description.replace('|', '/')} | {cells[0]} | {cells[1]} |"
        )
    lines += ["", "Not mandatory, and why:", ""]
    for stack in STACKS:
        for p in policies:
            level = by_stack[stack][p.name][0]
            if level != "mandatory":
                lines.append(f"- {stack}, `{p.name}` ({level}): {REASONS.get((stack, p.name), 'NO REASON GIVEN')}.")
    lines += ["", END]
    return "\n".join(lines)


def problems(info: Any, by_stack: Mapping[str, Mapping[str, tuple[str, dict[str, Any]]]]) -> list[str]:
    """Reasons missing for a non-mandatory policy, or kept for a mandatory one."""
    out = []
    for stack in STACKS:
        for name, (level, _) in by_stack[stack].items():
            if level != "mandatory" and (stack, name) not in REASONS:
                out.append(f"{stack}: {name} is {level} without a reason in keel/policydoc.py REASONS")
    out += [
        f"{stack}: {name} is mandatory; drop its stale reason"
        for (stack, name) in REASONS
        if by_stack.get(stack, {}).get(name, ("mandatory",))[0] == "mandatory"
    ]
    return out


def section(root: Path = policy.PACK_DIR.parent) -> tuple[str, list[str]]:
    """The README section and the problems with its reasons, from a started pack."""
    pack = policy.Pack(root / "policies")
    try:
        info = pack.stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=policy.CALL_TIMEOUT)
    finally:
        pack.close()
    by_stack = levels(info, root)
    return render(info, by_stack), problems(info, by_stack)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    text, issues = section()
    for issue in issues:
        print(f"error: {issue}", file=sys.stderr)
    if "--write" in args:
        readme = README.read_text()
        start, end = readme.index(BEGIN), readme.index(END) + len(END)
        README.write_text(readme[:start] + text + readme[end:])
    else:
        print(text)
    return 1 if issues else 0


if __name__ == "__main__":
    raise SystemExit(main())
