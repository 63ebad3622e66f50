"""Where one keel process spends its time, for ``make bench`` (``keel/bench.py``); off unless asked for.

Usage::

    KEEL_TIMINGS=/tmp/t.json keel preview prod --json     # writes {"phases": {...}, "marks": {...}} at the end

    with timings.phase("render"):      # adds the block's wall time to "render"
        ...
    timings.add("fakeCloud", seconds)  # adds a measured duration
    timings.mark("programEnd")         # a wall-clock instant (time.time()), for spans across threads

The bench reads the file and prints keel's time above the SDK floor by phase. Measuring costs a
``time.perf_counter()`` pair per call when on, and one attribute test when off.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ENV = "KEEL_TIMINGS"
IMPORTS_ENV = "KEEL_TIMINGS_IMPORTS"

_file = os.environ.get(ENV) or None
_lock = threading.Lock()
_phases: dict[str, float] = {}
_counts: dict[str, int] = {}
_marks: dict[str, float] = {}

enabled = _file is not None


def add(name: str, seconds: float) -> None:
    if not enabled:
        return
    with _lock:
        _phases[name] = _phases.get(name, 0.0) + seconds
        _counts[name] = _counts.get(name, 0) + 1


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    if not enabled:
        yield
        return
    start = time.perf_counter()
    try:
        yield
    finally:
        add(name, time.perf_counter() - start)


def mark(name: str) -> None:
    """Record the wall-clock time of an instant (the first time only)."""
    if enabled:
        with _lock:
            _marks.setdefault(name, time.time())


def preimport() -> None:
    """With ``$KEEL_TIMINGS_IMPORTS`` naming a saved preview: import the provider SDK class of each of its types
    first, as the bench's floor does, and time it as ``sdkImports``. The program then finds them imported, so
    its own phase holds only what it does with them. The same work in another order: only the bench sets it."""
    source = os.environ.get(IMPORTS_ENV)
    if not enabled or not source:
        return
    steps = json.loads(Path(source).read_text())["steps"]
    with phase("sdkImports"):
        for kind in sorted({s["newState"]["type"] for s in steps}):
            import_class(kind)


def import_class(kind: str) -> None:
    """Import the SDK class for a type token, as a program using that type must (``aws:ec2/vpc:Vpc`` is
    ``pulumi_aws.ec2.Vpc``; ``kubernetes:helm.sh/v3:Release`` is ``pulumi_kubernetes.helm.v3.Release``)."""
    import importlib

    package, _, rest = kind.partition(":")
    module_path, _, name = rest.partition(":")
    if package == "pulumi" and module_path == "providers":
        package, module_path, name = name, "index", "Provider"
    if package in {"pulumi", "keel"}:
        return
    # The shortest module that has the class, as a program reaches it (`aws.iam.Role`): importing a file module
    # (`pulumi_aws.iam.role`) first would leave the package's lazily loaded module without its classes.
    parts = [p.split(".")[0] for p in module_path.split("/") if p != "index"]
    for end in range(len(parts) + 1):
        try:
            module = importlib.import_module(".".join([f"pulumi_{package}", *parts[:end]]))
        except ImportError:
            continue
        if hasattr(module, name):
            getattr(module, name)
            return


def write() -> None:
    """Write what was measured to ``$KEEL_TIMINGS`` (nothing when off)."""
    if _file is None:
        return
    mark("exit")
    with _lock:
        data = {"phases": dict(_phases), "counts": dict(_counts), "marks": dict(_marks)}
    Path(_file).write_text(json.dumps(data, indent=2, sort_keys=True))
