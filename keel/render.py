"""Terminal rendering of a preview: a resource tree (component -> children) and a summary by type.

Usage::

    render.preview(console(), preview)     # rich Console; plain text when not a terminal

Everything that comes from the program or the pack (resource names, type tokens, ARNs, outputs, messages) is
printed literally: it goes into :class:`rich.text.Text` objects, which rich never parses for markup or emoji
codes. A type token such as ``keel:email:Email`` would otherwise print as ``keel✉Email`` (``:email:`` is an
emoji code), a ``:secret:`` ARN would be garbled and ``[secret]`` would vanish as an unknown markup tag.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict

from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from keel.engine import Preview, Step


def console() -> Console:
    """A console that never substitutes emoji codes; piped output is not wrapped (long type tokens)."""
    out = Console(emoji=False, highlight=False)
    return out if out.is_terminal else Console(emoji=False, highlight=False, width=200)


def _label(step: Step) -> Text:
    flags = []
    if step.protect:
        flags.append("protected")
    if step.retain_on_delete:
        flags.append("retained")
    label = Text.assemble(("+", "green"), " ", step.name, "  ", (step.type, "dim"))
    if flags:
        label.append(f"  ({', '.join(flags)})", style="dim")
    return label


def tree(preview: Preview) -> Tree:
    children: dict[str, list[Step]] = defaultdict(list)
    roots: list[Step] = []
    urns = {s.urn for s in preview.steps}
    for step in preview.steps:
        if step.parent and step.parent in urns:
            children[step.parent].append(step)
        else:
            roots.append(step)
    top = Tree(Text.assemble((preview.project, "bold"), " / ", (preview.stack, "bold"), "  (offline preview)"))

    def add(node: Tree, step: Step) -> None:
        branch = node.add(_label(step))
        for child in sorted(children[step.urn], key=lambda s: (s.custom, s.type, s.name)):
            add(branch, child)

    for step in sorted(roots, key=lambda s: (s.type != "pulumi:pulumi:Stack", s.type, s.name)):
        add(top, step)
    return top


def summary(preview: Preview) -> Table:
    counts = Counter(s.type for s in preview.steps)
    table = Table(title=f"{len(preview.steps)} resources to create", title_justify="left")
    table.add_column("type")
    table.add_column("count", justify="right")
    for type_, count in sorted(counts.items()):
        table.add_row(Text(type_), str(count))
    return table


def preview(console: Console, result: Preview) -> None:
    console.print(tree(result))
    console.print()
    console.print(summary(result))
    stack = next((s for s in result.steps if s.type == "pulumi:pulumi:Stack"), None)
    if stack is not None and stack.outputs:
        console.print()
        console.print(Text("Outputs", style="bold"))
        for key, value in sorted(stack.outputs.items()):
            console.print(Text(f"  {key}: {json.dumps(value, sort_keys=True)}"))


def finding(violation: dict[str, str]) -> str:
    """A violation after its level, as one line: the policy, the resource (or ``stack``), the message's last line."""
    where = violation["urn"].rsplit("::", 1)[-1] if violation["urn"] else "stack"
    return f"{violation['policyName']}  {where}: {violation['message'].splitlines()[-1]}"


def violations(console: Console, found: list[dict[str, str]]) -> None:
    """Policy violations grouped by severity, mandatory ones marked."""
    console.print()
    if not found:
        console.print(Text("Policies: no violations", style="green"))
        return
    mandatory = sum(1 for v in found if v["enforcementLevel"] == "mandatory")
    console.print(Text(f"Policies: {len(found)} violation(s), {mandatory} mandatory", style="bold"))
    for severity in ("critical", "high", "medium", "low", ""):
        group = [v for v in found if v["severity"] == severity]
        if not group:
            continue
        console.print(Text(f"  {severity or 'unrated'}", style="bold"))
        for v in group:
            level = v["enforcementLevel"]
            console.print(Text.assemble("    ", (level, "red" if level == "mandatory" else ""), f"  {finding(v)}"))
