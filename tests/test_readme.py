"""README.md: its tables render, its links resolve inside the repository, and it can be navigated (a table of
contents naming every section, a "How to" section with the tasks people come for)."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markdown_it.token import Token

from tests.helpers import ROOT

README = ROOT / "README.md"


def text() -> str:
    return README.read_text()


def tokens() -> list[Token]:
    return MarkdownIt("commonmark").enable("table").parse(text())


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but ``-`` and ``_`` dropped, spaces to ``-``."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def headings() -> list[tuple[int, str]]:
    out = []
    toks = tokens()
    for i, tok in enumerate(toks):
        if tok.type == "heading_open":
            out.append((int(tok.tag[1]), toks[i + 1].content))
    return out


def table_blocks() -> list[list[str]]:
    """Every run of lines that starts with ``|`` outside code fences: what the author meant as a table."""
    blocks: list[list[str]] = []
    fenced = False
    current: list[str] = []
    for line in text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("|"):
            current.append(line)
            continue
        if current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    return blocks


def cells(row: str) -> list[str]:
    """A table row's cells: split on ``|`` outside code spans and not escaped."""
    out, cell, code = [], "", False
    body = row.strip()[1:-1] if row.strip().endswith("|") else row.strip()[1:]
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            cell += body[i : i + 2]
            i += 2
            continue
        if ch == "`":
            code = not code
        if ch == "|" and not code:
            out.append(cell.strip())
            cell = ""
        else:
            cell += ch
        i += 1
    out.append(cell.strip())
    return out


def test_every_table_renders_with_all_its_rows_and_cells() -> None:
    """A table line cut off by a blank line, a missing separator row or a row with more cells than the header
    renders as a paragraph or loses cells on GitHub. markdown-it (CommonMark + GFM tables) must see each block as
    one table with as many rows as lines, and every row must have the header's cell count."""
    blocks = table_blocks()
    rendered = [t for t in tokens() if t.type == "table_open"]
    assert len(blocks) == len(rendered) > 5
    for block in blocks:
        assert len(block) >= 3, block[0]  # header, separator, at least one row
        assert re.fullmatch(r"\|( *:?-{3,}:? *\|)+", block[1].replace(" ", "")), block[:2]
        width = len(cells(block[0]))
        for row in block[2:]:
            assert len(cells(row)) == width, row


def test_internal_links_resolve_to_headings() -> None:
    anchors = {slug(h) for _, h in headings()}
    links = re.findall(r"\]\(#([^)]+)\)", text())
    assert links
    assert sorted({link for link in links if link not in anchors}) == []


def test_links_and_paths_stay_inside_the_repository() -> None:
    """Relative links point at files of the repository; nothing sends a reader to a file outside it."""
    body = text()
    assert not re.search(r"\.\./(shared|DESIGN|STYLE)|\b(DESIGN|STYLE)\.md\b", body)
    assert not re.findall(r"\]\(\.\./", body)
    for target in re.findall(r"\]\((?!https?://|#|mailto:)([^)#\s]+)", body):
        assert (ROOT / target).exists(), target


def test_the_table_of_contents_names_every_section() -> None:
    body = text()
    start = body.index("## Contents")
    toc = body[start : body.index("\n## ", start + 1)]
    listed = re.findall(r"\[[^\]]+\]\(#([^)]+)\)", toc)
    sections = [slug(h) for level, h in headings() if level == 2 and h != "Contents"]
    assert listed[: len(sections)] == sections or [s for s in listed if s in sections] == sections


def test_how_to_covers_what_people_come_for() -> None:
    body = text()
    section = body[body.index("## How to") : body.index("\n## ", body.index("## How to") + 1)]
    for task in (
        "Add a service",
        "Change sizes",
        "Add a stack",
        "Give a service a secret",
        "Rotate a secret",
        "Read the kubeconfig",
    ):
        assert f"### {task}" in section, task


def test_the_add_a_stack_recipe_is_five_lines_or_fewer() -> None:
    body = text()
    start = body.index("### Add a stack")
    recipe = body[start : body.index("\n### ", start + 1)]
    fence = re.search(r"```sh\n(.*?)```", recipe, re.S)
    assert fence is not None
    steps = [line for line in fence.group(1).splitlines() if line.strip() and not line.strip().startswith("#")]
    assert 1 <= len(steps) <= 5
