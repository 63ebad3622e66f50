"""Terminal rendering of a preview: a resource tree (component -> children) and a summary by type.

Usage::

    render.preview(console, preview)     # rich Console; plain text when not a terminal
"""

from __future__ import annotations

from collections import Counter, defaultdict

from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from keel.engine import Preview, Step


def _label(step: Step) -> str:
    flags = []
    if step.protect:
        flags.append("protected")
    if step.retain_on_delete:
        flags.append("retained")
    suffix = f"  [dim]({', '.join(flags)})[/dim]" if flags else ""
    return f"[green]+[/green] {step.name}  [dim]{step.type}[/dim]{suffix}"


def tree(preview: Preview) -> Tree:
    children: dict[str, list[Step]] = defaultdict(list)
    roots: list[Step] = []
    urns = {s.urn for s in preview.steps}
    for step in preview.steps:
        if step.parent and step.parent in urns:
            children[step.parent].append(step)
        else:
            roots.append(step)
    top = Tree(f"[bold]{preview.project}[/bold] / [bold]{preview.stack}[/bold]  (offline preview)")

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
        table.add_row(type_, str(count))
    return table


def preview(console: Console, result: Preview) -> None:
    console.print(tree(result))
    console.print()
    console.print(summary(result))
    stack = next((s for s in result.steps if s.type == "pulumi:pulumi:Stack"), None)
    if stack is not None and stack.outputs:
        console.print()
        console.print("[bold]Outputs[/bold]")
        for key, value in sorted(stack.outputs.items()):
            console.print(f"  {key}: {value}", highlight=False)


def violations(console: Console, found: list[dict[str, str]]) -> None:
    """Policy violations grouped by severity, mandatory ones marked."""
    console.print()
    if not found:
        console.print("[green]Policies: no violations[/green]")
        return
    mandatory = sum(1 for v in found if v["enforcementLevel"] == "mandatory")
    console.print(f"[bold]Policies: {len(found)} violation(s), {mandatory} mandatory[/bold]")
    for severity in ("critical", "high", "medium", "low", ""):
        group = [v for v in found if v["severity"] == severity]
        if not group:
            continue
        console.print(f"  [bold]{severity or 'unrated'}[/bold]")
        for v in group:
            level = "[red]mandatory[/red]" if v["enforcementLevel"] == "mandatory" else v["enforcementLevel"]
            where = v["urn"].rsplit("::", 1)[-1] if v["urn"] else "stack"
            message = v["message"].splitlines()[-1]
            console.print(f"    {level}  {v['policyName']}  {where}: {message}", highlight=False)
