"""The README's table of policies: every policy of the pack by service, with the level and thresholds each stack's
policy config gives it (a column per ``Pulumi.<stack>.yaml``, found, never listed), as the engine reconciles them,
and why a policy does not block where it does not.

``python -m keel.policydoc`` prints the section; ``python -m keel.policydoc --write`` puts it into README.md
between the ``policies:begin`` and ``policies:end`` markers. A test keeps the README equal to it.

Levels come from the pack itself (``GetAnalyzerInfo`` of a started pack) and ``policies/config.<stack>.json``
through :func:`keel.policy.reconcile`, the same path ``keel policy`` takes, so the table cannot drift from what
the gate does. Reasons are given per kind of stack (``keel:environment``), so a stack copied from another of its
kind, with the same policy config, needs no new reason."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from google.protobuf import empty_pb2
from pulumi.runtime.proto import analyzer_pb2

from keel import policy, stackfiles

#: Columns in this order: the strictest kind of stack first; stacks of one kind by name.
ENVIRONMENT_ORDER = ("prod", "staging", "dev")
BEGIN, END = "<!-- policies:begin -->", "<!-- policies:end -->"
README = Path(__file__).resolve().parents[1] / "README.md"

#: Why a policy does not block in a kind of stack, by (``keel:environment``, policy): every (stack, policy) whose
#: level is not mandatory needs the line of its stack's environment, and a line no stack of that environment needs
#: is an error (it went stale).
REASONS: dict[tuple[str, str], str] = {
    ("staging", "aws-backup-plan-copies-to-another-region"): (
        "staging has no `copyRegion`: a second region's copy of every recovery point is disaster recovery, and "
        "staging's data is not worth its storage and cross-region transfer"
    ),
    ("staging", "aws-rds-backups-replicated-to-another-region"): (
        "no `copyRegion` in staging: its automated backups stay in its own region"
    ),
    ("staging", "aws-rds-instance-multi-az"): (
        "staging's database is single-AZ, half the instance and storage cost; Multi-AZ keeps the endpoint, so "
        "staging loses availability in a zone outage, not what a release is rehearsed against"
    ),
    ("dev", "aws-alb-deletion-protection"): "dev's load balancer goes with the stack when it is torn down",
    ("dev", "aws-alb-waf-associated"): "dev carries no customer traffic; the web ACL and its rules cost ~$10 a month",
    ("dev", "aws-cloudfront-waf"): "as the ALB's: waf.enabled false also leaves a dev CDN without a web ACL",
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


def stacks(root: Path) -> dict[str, str]:
    """``{stack: its keel:environment}`` for every ``Pulumi.<stack>.yaml`` at ``root``, strictest kind first."""
    project = stackfiles.load_project(root)
    found = {
        stack: stackfiles.load_config(root, stack, project)[0].get("keel:environment", "")
        for stack in stackfiles.stacks(root)
    }
    rank = {env: i for i, env in enumerate(ENVIRONMENT_ORDER)}
    return dict(sorted(found.items(), key=lambda item: (rank.get(item[1], len(rank)), item[0])))


def levels(info: Any, root: Path, names: Sequence[str]) -> dict[str, dict[str, tuple[str, dict[str, Any]]]]:
    """``{stack: {policy: (level, the properties the stack's file sets)}}``."""
    out: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {}
    for stack in names:
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


def _summary(stack: str, by_policy: Mapping[str, tuple[str, dict[str, Any]]]) -> str:
    relaxed = sum(level != "mandatory" for level, _ in by_policy.values())
    return f"{stack}: every policy blocks" if not relaxed else f"{stack}: all but {relaxed} block"


def render(
    info: Any,
    by_stack: Mapping[str, Mapping[str, tuple[str, dict[str, Any]]]],
    environments: Mapping[str, str],
) -> str:
    """The section: ``by_stack`` in column order, ``environments`` each stack's ``keel:environment``."""
    policies: Sequence[Any] = sorted(info.policies, key=lambda p: (service(p.name), p.name))
    names = list(by_stack)
    lines = [
        BEGIN,
        "",
        f"{len(policies)} policies, a column per stack (its `policies/config.<stack>.json`): "
        + "; ".join(_summary(stack, by_stack[stack]) for stack in names)
        + ". Security is the same everywhere; what does not block costs money or stops a teardown, and says why "
        "below (the reasons are per `keel:environment`).",
        "",
        "| service | policy | holds | " + " | ".join(names) + " |",
        "| --- | --- | --- | " + " | ".join("---" for _ in names) + " |",
    ]
    for p in policies:
        cells = [_cell(*by_stack[stack][p.name]) for stack in names]
        lines.append(
            f"| {service(p.name)} | `{p.name}` | {p.description.replace('|', '/')} | " + " | ".join(cells) + " |"
        )
    lines += ["", "Not mandatory, and why:", ""]
    for stack in names:
        for p in policies:
            level = by_stack[stack][p.name][0]
            if level != "mandatory":
                reason = REASONS.get((environments[stack], p.name), "NO REASON GIVEN")
                lines.append(f"- {stack}, `{p.name}` ({level}): {reason}.")
    lines += ["", END]
    return "\n".join(lines)


def problems(
    by_stack: Mapping[str, Mapping[str, tuple[str, dict[str, Any]]]], environments: Mapping[str, str]
) -> list[str]:
    """Reasons missing for a non-mandatory policy, or kept where every stack of the environment has it mandatory."""
    out = []
    needed: set[tuple[str, str]] = set()
    for stack, by_policy in by_stack.items():
        env = environments[stack]
        for name, (level, _) in by_policy.items():
            if level == "mandatory":
                continue
            needed.add((env, name))
            if (env, name) not in REASONS:
                out.append(
                    f"{stack}: {name} is {level} without a reason for keel:environment {env!r} in keel/policydoc.py "
                    "REASONS"
                )
    out += [
        f"{env}: {name} is mandatory in every {env} stack; drop its stale reason"
        for (env, name) in REASONS
        if (env, name) not in needed
    ]
    return out


def section(root: Path = policy.PACK_DIR.parent) -> tuple[str, list[str]]:
    """The README section and the problems with its reasons, from a started pack."""
    pack = policy.Pack(root / "policies")
    try:
        info = pack.stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=policy.CALL_TIMEOUT)
    finally:
        pack.close()
    environments = stacks(root)
    by_stack = levels(info, root, list(environments))
    return render(info, by_stack, environments), problems(by_stack, environments)


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
