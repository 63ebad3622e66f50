"""Benchmark keel's two loops against their budgets. Run by ``make bench``, never a test.

Usage::

    python -m keel.bench prod [--runs 7] [--only cold|watch]

**Cold preview** (budget: 1.5 times the floor). Whole processes from start to exit (interpreter start-up and
imports included, as a user sees them), interleaved run by run:

- ``keel preview STACK --json``: the program under keel's recording mocks, the policy pack, rendering;
- the SDK floor: a generated program that registers each resource of that same preview by type and name,
  with the same parents and empty inputs, under the Pulumi SDK's own ``set_mocks``, and does nothing else.
  It first imports the provider SDK class of every type it registers (``pulumi_aws.ec2.Vpc`` for
  ``aws:ec2/vpc:Vpc``), because no program can register those types without that import. It runs with the same
  two process settings as ``keel.cli.entry`` (the cyclic GC off, no interpreter teardown) and, as keel's program
  does, without the SDK's per-registration stack traces (``keel.offline``), so none of these counts as keel's
  gain. The floor is what the Pulumi SDK needs for these resources; everything above it is keel's or the
  cost of the program's real inputs;
- for information, the floor again with each resource's own inputs (plain values from the saved preview, through
  the SDK's generic resource classes, each answered with its inputs): what the SDK needs for these resources with
  these inputs, without a program's typed classes, chained outputs and imports;
- for information, ``keel preview STACK --json --no-policy``: keel without the pack, which splits keel's time above
  the floor into the program's share and the pack's.

Then three instrumented runs of each (``keel.timings``: ``KEEL_TIMINGS``, keel importing the floor's classes first)
print where the time goes: start-up, SDK imports, the program (of which the fake cloud and recording), the pack's
start, the per-resource analysis left after the program, the stack policies, rendering, exit.

**Warm re-render** (budget: under 2 s): ``keel watch STACK`` on a copy of the stack file, one value edited
(:data:`EDITED`), timed from the write to the last line of the re-render's output (:func:`watch_bench`).

Exits 1 when a budget is exceeded.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keel import timings
from keel.offline import no_stack_traces
from keel.timings import import_class

RATIO_BUDGET = 1.5
WATCH_BUDGET = 2.0


def floor_program(steps_file: str, inputs: bool = False) -> None:
    """Register every step of a saved preview with empty inputs under the SDK's plain mocks. ``inputs``: with the
    step's own inputs instead (plain values, through the SDK's generic resource classes), the mocks answering each
    with its inputs as a provider's preview does: what the SDK alone needs to register these resources with these
    inputs, shown beside the floor for information (the budget is against the floor)."""
    import asyncio

    import pulumi
    from pulumi.runtime import mocks
    from pulumi.runtime.stack import run_pulumi_func

    doc = json.loads(Path(steps_file).read_text())
    first = doc["steps"][0]["urn"].split("::")
    stack, project = first[0].removeprefix("urn:pulumi:"), first[1]

    class Empty(mocks.Mocks):
        def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            return f"{args.name}-id", dict(args.inputs) if inputs else {}

        def call(self, args: mocks.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
            return {}

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    with no_stack_traces():  # set_mocks registers the root stack, as keel's program does inside its block
        mocks.set_mocks(Empty(), project=project, stack=stack, preview=True)

    with timings.phase("sdkImports"):
        for kind in sorted({s["newState"]["type"] for s in doc["steps"]}):
            import_class(kind)

    def register() -> None:
        made: dict[str, pulumi.Resource] = {}
        for step in doc["steps"]:
            state = step["newState"]
            kind, name = state["type"], step["urn"].rsplit("::", 1)[1]
            if kind == "pulumi:pulumi:Stack":
                continue
            opts = pulumi.ResourceOptions(parent=made.get(state["parent"]))
            props = dict(state.get("inputs") or {}) if inputs else {}
            if kind.startswith("pulumi:providers:"):
                made[step["urn"]] = pulumi.ProviderResource(kind.split(":")[-1], name, props, opts)
            elif state["custom"]:
                made[step["urn"]] = pulumi.CustomResource(kind, name, props, opts)
            else:
                made[step["urn"]] = pulumi.ComponentResource(kind, name, None, opts)

    timings.mark("programStart")
    try:
        with no_stack_traces():  # as keel runs its program (keel.offline says why)
            loop.run_until_complete(run_pulumi_func(register))
    finally:
        timings.mark("programEnd")
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


@dataclass
class Run:
    """One whole process: its wall time and, when instrumented, what ``keel.timings`` wrote."""

    seconds: float
    marks: dict[str, float] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)

    def span(self, start: str, end: str) -> float | None:
        if start in self.marks and end in self.marks:
            return self.marks[end] - self.marks[start]
        return None


def _run(cmd: list[str], timed: bool, env: dict[str, str] | None = None) -> Run:
    """Run ``cmd`` to its end; with ``timed``, with ``KEEL_TIMINGS`` set and the spawn and end instants added to
    its marks."""
    env = {**os.environ, **(env or {})}
    report = None
    if timed:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
            report = Path(handle.name)
        env[timings.ENV] = str(report)
    spawn, start = time.time(), time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)  # noqa: S603 (our own venv scripts)
    run = Run(time.perf_counter() - start)
    if report is not None:
        data = json.loads(report.read_text() or "{}")
        report.unlink()
        run.marks = {"spawn": spawn, **data.get("marks", {}), "end": spawn + run.seconds}
        run.phases = data.get("phases", {})
    return run


def floor_main(steps_file: str, inputs: bool = False) -> None:
    """The floor as a process: the same two process settings keel's own entry point makes (``keel.cli.entry``: the
    cyclic garbage collector off, no interpreter teardown at exit), so that neither counts as keel's gain (nor does
    ``keel.offline.no_stack_traces``, which :func:`floor_program` runs with)."""
    gc.disable()
    timings.mark("main")
    floor_program(steps_file, inputs)
    timings.write()
    sys.stdout.flush()
    os._exit(0)


def _median(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _seconds(value: float | None) -> str:
    return "      -" if value is None else f"{value:6.2f} s"


def breakdown(ours: list[Run], floor: list[Run]) -> list[tuple[str, float | None, float | None]]:
    """``(phase, keel, floor)`` medians over instrumented runs, in the order a preview goes through them."""

    def spans(runs: list[Run], start: str, end: str) -> float | None:
        return _median(r.span(start, end) for r in runs)

    def phases(runs: list[Run], name: str) -> float | None:
        return _median(r.phases.get(name) for r in runs)

    def after_program(runs: list[Run], end: str) -> float | None:
        return _median(max(0.0, s) if (s := r.span("programEnd", end)) is not None else None for r in runs)

    sdk_ours, sdk_floor = phases(ours, "sdkImports"), phases(floor, "sdkImports")
    program_ours = _median((r.span("programStart", "programEnd") or 0.0) for r in ours if "programStart" in r.marks)
    return [
        ("interpreter start, keel's own imports", spans(ours, "spawn", "main"), spans(floor, "spawn", "main")),
        ("stack file (read, secrets)", phases(ours, "stackFile"), None),
        ("policy pack started, ready after", spans(ours, "main", "packReady"), None),
        ("provider SDK imports (the same classes)", sdk_ours, sdk_floor),
        ("program: components and SDK registrations", program_ours, spans(floor, "programStart", "programEnd")),
        ("  of which the fake cloud", phases(ours, "fakeCloud"), None),
        ("  of which recording (monitor, fake cloud included)", phases(ours, "recording"), None),
        ("per-resource analysis, left after the program", after_program(ours, "analysisDone"), None),
        ("stack policies (AnalyzeStack)", phases(ours, "stackPolicies"), None),
        ("rendering (document, JSON)", phases(ours, "render"), None),
        ("exit", spans(ours, "exit", "end"), spans(floor, "exit", "end")),
    ]


#: The one value ``watch_bench`` edits back and forth in a copy of the stack file (an in-place update of the database).
EDITED = re.compile(r"(maxAllocatedStorageGb:\s*)(\d+)")


def watch_bench(stack: str, runs: int) -> tuple[list[float], list[float]]:
    """``keel watch STACK`` (with its policy pack) on a copy of the stack file: edit one value, time until the
    re-render's output is printed, ``runs`` times. Returns (edit to printed, the render's own time) in seconds."""
    import queue
    import shutil
    import signal
    import threading

    source = Path.cwd() / f"Pulumi.{stack}.yaml"
    folder = Path(tempfile.mkdtemp())
    copy = folder / source.name
    shutil.copy(source, copy)
    if not EDITED.search(copy.read_text()):
        raise SystemExit(f"{source.name} has no maxAllocatedStorageGb to edit")
    keel = str(Path(sys.executable).parent / "keel")
    process = subprocess.Popen(  # noqa: S603 (our own venv script)
        [keel, "watch", stack, "--config-file", str(copy)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    lines: queue.Queue[tuple[float, str]] = queue.Queue()

    def read(stream: Any) -> None:
        for line in stream:
            lines.put((time.perf_counter(), line))

    threading.Thread(target=read, args=(process.stdout,), daemon=True).start()

    def until_render() -> tuple[float, float]:
        """(when the render's last line was printed, the render time it reports)."""
        rendered = 0.0
        while True:
            at, line = lines.get(timeout=120)
            if found := re.search(r"rendered in (\d+\.\d+) s", line):
                rendered = float(found[1])
            if line.startswith(("Policies:", "(still showing")):
                return at, rendered

    printed, rendered = [], []
    try:
        until_render()
        for _ in range(runs):
            time.sleep(1.5)  # as a person edits: the collection after the last render is over
            text = copy.read_text()
            value = int(EDITED.search(text)[2])  # type: ignore[index]
            new = value + 100 if value < 1000 else value - 100
            start = time.perf_counter()
            copy.write_text(EDITED.sub(rf"\g<1>{new}", text, count=1))
            at, took = until_render()
            printed.append(at - start)
            rendered.append(took)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        shutil.rmtree(folder)
    return printed, rendered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m keel.bench")
    parser.add_argument("stack", nargs="?", default="prod")
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each (default 7)")
    parser.add_argument("--floor", metavar="PREVIEW_JSON", help=argparse.SUPPRESS)
    parser.add_argument("--inputs", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=("cold", "watch"), help="run only the cold preview or the watch benchmark")
    args = parser.parse_args(argv)
    if args.floor:
        floor_main(args.floor, args.inputs)
        return 0

    over = False
    if args.only != "watch":
        over = cold(args.stack, args.runs) or over
    if args.only != "cold":
        over = warm(args.stack, args.runs) or over
    return 1 if over else 0


def warm(stack: str, runs: int) -> bool:
    """The watch benchmark's report; True when over budget."""
    printed, rendered = watch_bench(stack, runs)
    print(f"keel watch {stack}: one value of the stack file edited, {runs} times (with the policy pack)")
    print(
        f"  edit to printed  median {statistics.median(printed):5.2f} s   min {min(printed):5.2f} s   "
        f"max {max(printed):5.2f} s"
    )
    print(f"  render alone     median {statistics.median(rendered):5.2f} s")
    over = statistics.median(printed) >= WATCH_BUDGET
    print(f"warm re-render (budget under {WATCH_BUDGET:.0f} s): " + ("OVER BUDGET" if over else "within budget"))
    return over


def cold(stack: str, runs: int) -> bool:
    """The cold preview's report against the floor; True when over budget."""
    keel = str(Path(sys.executable).parent / "keel")
    preview = subprocess.run(  # noqa: S603 (our own venv script)
        [keel, "preview", stack, "--json"], check=False, capture_output=True, text=True
    )
    if not preview.stdout.strip():
        raise SystemExit(f"keel preview {stack} failed:\n{preview.stderr}")
    resources = len(json.loads(preview.stdout)["steps"])
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as saved:
        saved.write(preview.stdout)
    ours_cmd = [keel, "preview", stack, "--json"]
    floor_cmd = [sys.executable, "-m", "keel.bench", "--floor", saved.name]
    try:
        # interleaved, so that a slow minute on the machine slows both alike
        ours, floor, same, bare = [], [], [], []
        for _ in range(runs):
            ours.append(_run(ours_cmd, timed=False).seconds)
            bare.append(_run([*ours_cmd, "--no-policy"], timed=False).seconds)
            floor.append(_run(floor_cmd, timed=False).seconds)
            same.append(_run([*floor_cmd, "--inputs"], timed=False).seconds)
        timed_ours = [_run(ours_cmd, timed=True, env={timings.IMPORTS_ENV: saved.name}) for _ in range(3)]
        timed_floor = [_run(floor_cmd, timed=True) for _ in range(3)]
    finally:
        Path(saved.name).unlink()

    ratio = statistics.median(ours) / statistics.median(floor)
    print(f"keel preview {stack} --json: {resources} resources, {runs} runs each, interleaved")
    print("(wall time of whole processes; both with the cyclic GC off and no interpreter teardown, as keel runs)")
    for label, times in (("keel preview", ours), ("no pack", bare), ("SDK floor", floor), ("same inputs", same)):
        print(
            f"  {label:<13} median {statistics.median(times):6.2f} s   "
            f"min {min(times):6.2f} s   max {max(times):6.2f} s"
        )
    print(f"  ratio {ratio:.2f} (budget {RATIO_BUDGET})")
    same_ratio, over_same = (
        statistics.median(same) / statistics.median(floor),
        statistics.median(ours) / statistics.median(same),
    )
    print(
        f"  (same inputs: the floor with the resources' inputs, {same_ratio:.2f}x the floor; keel {over_same:.2f}x it)"
    )
    print(
        f"  (no pack: keel preview --no-policy, {statistics.median(bare) / statistics.median(floor):.2f}x the floor;"
        f" the pack adds {statistics.median(ours) - statistics.median(bare):.2f} s)"
    )
    print("where the time goes (median of 3 instrumented runs each; keel imports the floor's classes first):")
    print(f"  {'':<52} {'keel':>8} {'floor':>8}")
    for label, mine, theirs in breakdown(timed_ours, timed_floor):
        print(f"  {label:<52} {_seconds(mine):>8} {_seconds(theirs):>8}")
    over = ratio > RATIO_BUDGET
    print("cold preview: " + ("OVER BUDGET" if over else "within budget"))
    return over


if __name__ == "__main__":
    sys.exit(main())
