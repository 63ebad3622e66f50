"""Benchmark ``keel preview`` against the SDK floor (budget: 1.5 times it). Run by ``make bench``, never a test.

Usage::

    python -m keel.bench prod [--runs 7]

Measures, as whole processes from start to exit (interpreter start-up and imports included, as a user
sees them):

- ``keel preview STACK --json``: the program under keel's recording mocks, plus rendering;
- the SDK floor: a generated program that registers each resource of that same preview by type and name,
  with the same parents and empty inputs, under the Pulumi SDK's own ``set_mocks``, and does nothing else.
  It first imports the provider SDK class of every type it registers (``pulumi_aws.ec2.Vpc`` for
  ``aws:ec2/vpc:Vpc``), because no program can register those types without that import: pulumi-aws alone
  takes about 0.7 s to import its ec2 module here. The floor is what the Pulumi SDK needs for these
  resources; everything above it (config validation, the fake cloud, recording, rendering) is keel's.

Prints the median, min and max of each over ``--runs`` runs, the ratio of the medians and the budgets
(ratio at most 1.5, preview under 5 s). Exits 1 when a budget is exceeded.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RATIO_BUDGET = 1.5
SECONDS_BUDGET = 5.0


def _time(cmd: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)  # noqa: S603 (our own venv scripts)
        times.append(time.perf_counter() - start)
    return times


def floor_program(steps_file: str) -> None:
    """Register every step of a saved preview with empty inputs under the SDK's plain mocks."""
    import asyncio

    import pulumi
    from pulumi.runtime import mocks
    from pulumi.runtime.stack import run_pulumi_func

    doc = json.loads(Path(steps_file).read_text())
    first = doc["steps"][0]["urn"].split("::")
    stack, project = first[0].removeprefix("urn:pulumi:"), first[1]

    class Empty(mocks.Mocks):
        def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            return f"{args.name}-id", {}

        def call(self, args: mocks.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
            return {}

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    mocks.set_mocks(Empty(), project=project, stack=stack, preview=True)

    for kind in {s["newState"]["type"] for s in doc["steps"]}:
        _import_class(kind)

    def register() -> None:
        made: dict[str, pulumi.Resource] = {}
        for step in doc["steps"]:
            state = step["newState"]
            kind, name = state["type"], step["urn"].rsplit("::", 1)[1]
            if kind == "pulumi:pulumi:Stack":
                continue
            opts = pulumi.ResourceOptions(parent=made.get(state["parent"]))
            if kind.startswith("pulumi:providers:"):
                made[step["urn"]] = pulumi.ProviderResource(kind.split(":")[-1], name, {}, opts)
            elif state["custom"]:
                made[step["urn"]] = pulumi.CustomResource(kind, name, {}, opts)
            else:
                made[step["urn"]] = pulumi.ComponentResource(kind, name, None, opts)

    try:
        loop.run_until_complete(run_pulumi_func(register))
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


def _import_class(kind: str) -> None:
    """Import the SDK class for a type token, as a program using that type must."""
    import importlib

    package, _, rest = kind.partition(":")
    module_path, _, name = rest.partition(":")
    if package == "pulumi" and module_path == "providers":
        package, module_path, name = name, "index", "Provider"
    if package in {"pulumi", "keel"}:
        return
    # "helm.sh/v3" is the Python module helm.v3; "ec2/vpc" is ec2 (plus its file module vpc)
    parts = [p.split(".")[0] for p in module_path.split("/") if p != "index"]
    for end in range(len(parts), -1, -1):
        try:
            module = importlib.import_module(".".join([f"pulumi_{package}", *parts[:end]]))
        except ImportError:
            continue
        if hasattr(module, name):
            getattr(module, name)
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m keel.bench")
    parser.add_argument("stack", nargs="?", default="prod")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--floor", metavar="PREVIEW_JSON", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.floor:
        floor_program(args.floor)
        return 0

    keel = str(Path(sys.executable).parent / "keel")
    preview = subprocess.run(  # noqa: S603 (our own venv script)
        [keel, "preview", args.stack, "--json"], check=True, capture_output=True, text=True
    )
    resources = len(json.loads(preview.stdout)["steps"])
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as saved:
        saved.write(preview.stdout)
    ours = _time([keel, "preview", args.stack, "--json"], args.runs)
    floor = _time([sys.executable, "-m", "keel.bench", "--floor", saved.name], args.runs)
    Path(saved.name).unlink()

    ratio = statistics.median(ours) / statistics.median(floor)
    print(f"keel preview {args.stack}: {resources} resources, {args.runs} runs each (wall time, whole process)")
    for label, times in (("keel preview", ours), ("SDK floor", floor)):
        print(
            f"  {label:<13} median {statistics.median(times):6.3f} s   "
            f"min {min(times):6.3f} s   max {max(times):6.3f} s"
        )
    over = ratio > RATIO_BUDGET or statistics.median(ours) > SECONDS_BUDGET
    print(
        f"  ratio {ratio:.2f} (budget {RATIO_BUDGET}); preview budget {SECONDS_BUDGET:.0f} s: "
        f"{'OVER BUDGET' if over else 'within budget'}"
    )
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
