"""``keel watch STACK``: one warm process that re-renders a stack whenever its files change, and prints only what
changed since the last render.

Usage::

    keel watch prod                          # Ctrl-C ends it
    keel watch prod --config-file my.yaml    # as keel preview takes them; --policy-pack-config, --no-policy too

    watcher = Watcher("prod", root)          # in a program or a test
    watcher.step()                           # the first render's summary
    watcher.step({root / "Pulumi.prod.yaml"})   # after a change: the diff lines, policy changes, cost delta

What it watches: the stack's file (or ``--config-file``), ``Pulumi.yaml``, ``__main__.py``, everything under
``components/`` and ``policies/`` (and ``--policy-pack-config``). What it prints after each change: the diff of
``keel diff`` between the last good render and this one (``create``/``update``/``replace``/``delete`` with the
changed inputs, the replacement warnings, the monthly cost before and after), the policy violations that are new
and those that are resolved, or, for a stack file ``keel preview`` would refuse, the same error it prints; the
next good render is diffed against the last good one, so a typo costs nothing.

Why it is fast: the provider SDKs (3-4 s of a cold ``keel preview``) are imported once. Each render still runs the
program afresh, as ``keel preview`` does: ``__main__.py`` is executed again, the engine's settings, the fake cloud
and the recording monitor are new, and the stack file is read again. When a file under ``components/`` changes,
every ``components`` module is dropped from ``sys.modules`` before the run, so the program imports the new code
(reloading is enough: nothing of ``components`` outlives a run anywhere else, and a restart would import the
provider SDKs again for nothing). keel's own modules are not reloaded: restart ``keel watch`` after changing keel
itself.

The policy pack process is kept between renders and started again when a file under ``policies/`` or the policy
config changes (or it died); each render is still its own analysis (``GetAnalyzerInfo``, ``Configure`` with the
policy config read again, every resource, ``AnalyzeStack``). While the pack is kept, an ``Analyze`` request byte for
byte like one it already answered is answered from that (``keel.policy.Session``'s cache). Both rest on the pack's
policies reading only what they are sent and their config, as keel's do: a policy that read the stack's own config
(``pulumi.Config``, which the engine hands a pack when it starts it) would see the config of the pack's start, and
one that read anything else (a clock, a file) would not be run again for an unchanged resource. ``keel preview``
and CI start a new pack for every preview and send every resource.

The cyclic garbage collector is off (as in ``keel preview``) and runs once after each render's output is
printed, while the process waits for the next change; what the first render leaves (the provider SDKs' types,
imported once) is then frozen out of its sight, so that collection walks only what later renders made.
"""

from __future__ import annotations

import gc
import signal
import sys
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from keel import stackfiles

#: What a render depends on, relative to the project root (besides the stack's files).
WATCHED_DIRS = ("components", "policies")
WATCHED_FILES = ("Pulumi.yaml", "__main__.py")
#: Milliseconds without a further change before a batch of changes is rendered (an editor writes a file in
#: several steps), and between checks.
DEBOUNCE_MS = 50
STEP_MS = 20
#: Milliseconds the watch waits for a change before it checks ``stop`` again.
TIMEOUT_MS = 200
NOT_CHECKED = "Policies: not checked (--no-policy)"


@dataclass
class Render:
    """One render: the preview document (violations filled) or the error that stopped it."""

    document: dict[str, Any] | None
    error: str | None
    seconds: float
    estimate: Any = None
    """The document's monthly estimate (``keel.cost.Estimate``), None for an error or a region without prices."""

    @property
    def ok(self) -> bool:
        return self.document is not None


@dataclass
class Watcher:
    """Renders one stack on demand, each time afresh, and describes each render against the last good one."""

    stack: str
    root: Path
    config_file: Path | None = None
    policy_config: Path | None = None
    policy: bool = True
    traceback: bool = False
    """Print a program failure's traceback (to stderr) besides its one-line error."""
    last: Render | None = field(default=None, init=False)
    """The last render that produced a preview (the base of the next diff)."""
    _pack: Any = field(default=None, init=False, repr=False)
    _answers: dict[bytes, Any] = field(default_factory=dict, init=False, repr=False)

    def close(self) -> None:
        """Stop the policy pack this watcher keeps running."""
        if self._pack is not None:
            self._pack.close()
            self._pack = None

    def watched(self) -> list[Path]:
        """The files and folders whose changes trigger a render."""
        stack_file = self.config_file or self.root / f"Pulumi.{self.stack}.yaml"
        paths = [stack_file, *(self.root / f for f in WATCHED_FILES), *(self.root / d for d in WATCHED_DIRS)]
        if self.policy_config is not None:
            paths.append(self.policy_config)
        return [p.resolve() for p in paths if p.exists()]

    def render(self, changed: Collection[Path] = ()) -> Render:
        """Run the program afresh (components reloaded when one of their files changed) and, unless ``policy`` is
        off, the policy pack on it (started again when a file under ``policies/`` or the policy config changed)."""
        components = (self.root / "components").resolve()
        if any(components in Path(p).resolve().parents for p in changed):
            _drop_modules("components")
        start = time.perf_counter()
        document, error = self._render(changed)
        seconds = time.perf_counter() - start
        estimate = None
        if document is not None:
            from keel.cost import of_document

            estimate = of_document(document)
        return Render(document, error, seconds, estimate)

    def _render(self, changed: Collection[Path]) -> tuple[dict[str, Any] | None, str | None]:
        """What ``keel preview STACK --json`` does, as (document, None), or (None, the messages it would print)."""
        from keel import policy, session

        try:
            loaded = stackfiles.load_stack(
                self.root, self.stack, stackfiles.load_project(self.root), path=self.config_file
            )
        except stackfiles.StackError as err:
            return None, f"error: {err}"
        try:
            if self.policy:
                self._keep_pack(loaded, changed)
            outcome = session.preview(
                self.stack,
                self.root,
                loaded,
                analyze=self.policy,
                policy_config=self.policy_config,
                pack=self._pack,
                cache=self._answers,
                traceback=self.traceback,
            )
        except policy.PolicyError as err:  # the pack could not be started
            self.close()
            return None, f"error: {err}"
        if outcome.document is None:
            return None, "\n".join(f"error: {message}" for message in outcome.errors)
        return outcome.document, None

    def _keep_pack(self, loaded: stackfiles.StackConfigFile, changed: Collection[Path]) -> None:
        """Start the policy pack, or start it again when its code or its config changed (or it died); its answers
        are kept only as long as the pack."""
        from keel import policy

        policies = (self.root / "policies").resolve()
        moved = [
            p
            for p in map(lambda path: Path(path).resolve(), changed)
            if policies in p.parents or (self.policy_config is not None and p == self.policy_config.resolve())
        ]
        if self._pack is not None and (moved or self._pack.process.poll() is not None):
            self.close()
        if self._pack is None:
            self._answers = {}
            project = str(loaded.project["name"])
            self._pack = policy.Pack(self.root / "policies", stack=self.stack, project=project, config=loaded.config)

    def step(self, changed: Collection[Path] = ()) -> str:
        """Render and describe the result: the first render in full (counts, cost, violations), each later one by
        what changed since the last good one."""
        current = self.render(changed)
        what = ", ".join(sorted(_shown(p, self.root) for p in changed)) or "start"
        head = f"[{datetime.now():%H:%M:%S}] {self.stack}: {what}; rendered in {current.seconds:.2f} s"
        if not current.ok:
            return f"{head}\n{current.error}\n(still showing changes against the last good render)\n"
        assert current.document is not None
        resources = len(current.document["steps"])
        body = _first(current) if self.last is None or self.last.document is None else describe(self.last, current)
        self.last = current
        return f"{head} ({resources} resources)\n{body}"

    def run(self, out: Callable[[str], None], stop: Any = None) -> None:
        """Render once, then again after every change, until ``stop`` (a ``threading.Event``) is set or Ctrl-C."""
        import watchfiles

        folders, accept = _watch_plan(self.watched())
        changes = watchfiles.watch(
            *folders,
            watch_filter=accept,
            recursive=False,
            debounce=DEBOUNCE_MS,
            step=STEP_MS,
            stop_event=stop,
            raise_interrupt=False,
            rust_timeout=TIMEOUT_MS,
            yield_on_timeout=True,
        )
        # The watch is in place before the first render (its first, empty, batch): a change made while a render
        # runs is never missed, it is the next batch.
        next(changes, None)
        gc.disable()  # as in keel preview; collected below, between renders
        try:
            out(self.step())
            gc.collect()
            gc.freeze()  # the provider SDKs and the rest of the first render: never walked again
            for batch in changes:
                changed = {Path(path) for _, path in batch}
                if changed and not (stop is not None and stop.is_set()):
                    out(self.step(changed))
                    gc.collect()
        finally:
            self.close()


def _watch_plan(paths: Collection[Path]) -> tuple[list[Path], Callable[[Any, str], bool]]:
    """What to hand ``watchfiles`` for ``paths`` (files and folders): the folder of each file, and each folder with its
    subfolders, every one watched on its own (not recursively), and a filter that passes the files named and the
    sources under the folders.

    A file is watched through its folder, not by itself: an editor that saves by writing a new file and renaming it
    over the old one (vim, JetBrains' safe write, ``sed -i``) replaces the very file a watch on it follows, so every
    save after the first would go unseen. The project root is watched without its subfolders (``.venv``); a folder
    made under ``components/`` or ``policies/`` after the watch began is watched from the next start."""
    files = {p for p in paths if not p.is_dir()}
    trees = [p for p in paths if p.is_dir()]
    folders = {f.parent for f in files}
    for tree in trees:
        folders.add(tree)
        folders.update(
            d
            for d in tree.rglob("*")
            if d.is_dir()
            and not any(part == "__pycache__" or part.startswith(".") for part in d.relative_to(tree).parts)
        )

    def accept(change: Any, path: str) -> bool:
        where = Path(path)
        return where in files or (any(tree in where.parents for tree in trees) and _relevant(change, path))

    return sorted(folders), accept


def _relevant(change: Any, path: str) -> bool:
    """Source and config files; not editor swap files, caches or bytecode."""
    name = Path(path).name
    if "__pycache__" in Path(path).parts or name.startswith(".") or name.endswith(("~", ".swp", ".pyc")):
        return False
    return name.endswith((".py", ".yaml", ".yml", ".json"))


def _shown(path: Path, root: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _drop_modules(package: str) -> None:
    """Forget every module of ``package``, so the next import reads its files again."""
    for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
        del sys.modules[name]


def _violations(document: dict[str, Any]) -> list[str]:
    """Every violation's line, one per violation (as ``keel preview`` counts and lists them)."""
    from keel.render import finding

    return sorted(f"{v['enforcementLevel']}  {finding(v)}" for v in document.get("policyViolations", []))


def _mandatory(document: dict[str, Any]) -> int:
    from keel.policy import mandatory_in

    return mandatory_in(document)


def _cost(render: Render) -> str:
    estimate = render.estimate
    if estimate is None:
        return "Monthly cost: not estimated (no price table for the region)"
    if not estimate.complete:
        return f"Monthly cost: not estimated (no price for {estimate.missing_prices()})"
    return f"Monthly cost: ${estimate.monthly_total:,.2f}"


def _first(render: Render) -> str:
    assert render.document is not None
    found = _violations(render.document)
    lines = [_cost(render)]
    if "policyViolations" not in render.document:
        lines.append(NOT_CHECKED)
    elif found:
        lines.append(f"Policies: {len(found)} violation(s), {_mandatory(render.document)} mandatory")
        lines += [f"  {v}" for v in found]
    else:
        lines.append("Policies: no violations")
    return "\n".join(lines) + "\n"


def describe(before: Render, after: Render) -> str:
    """What changed from one good render to the next: ``keel diff``'s text (counts, cost line, replacement
    warnings, each resource with its changed inputs) and the policy violations that appeared or went away."""
    from keel import diff

    assert before.document is not None and after.document is not None
    result = diff.compare(before.document, after.document, cost=(before.estimate, after.estimate))
    found = _violations(after.document)
    old, new = set(_violations(before.document)), set(found)
    lines = []
    if result.resources:
        lines.append(diff.text(result).rstrip("\n"))
    else:
        lines.append("no resource changes")
    if new - old or old - new:
        counts = f"{len(new - old)} new, {len(old - new)} resolved"
        lines.append(f"Policies: {counts} ({_mandatory(after.document)} mandatory now)")
        lines += [f"  + {v}" for v in sorted(new - old)]
        lines += [f"  - {v}" for v in sorted(old - new)]
    elif new:
        lines.append(f"Policies: no change ({len(found)} violation(s), {_mandatory(after.document)} mandatory)")
    elif "policyViolations" not in after.document:
        lines.append(NOT_CHECKED)
    else:
        lines.append("Policies: no violations")
    return "\n".join(lines) + "\n"


def main(
    stack: str,
    root: Path,
    *,
    config_file: Path | None,
    policy_config: Path | None,
    policy: bool,
    traceback: bool = False,
    out: Callable[[str], None] | None = None,
    stop: Any = None,
) -> int:
    """``keel watch``: 0 when stopped (Ctrl-C or ``stop``), 2 when the stack cannot be watched at all."""
    printer = out or _print
    watcher = Watcher(stack, root, config_file, policy_config, policy, traceback)
    try:
        stackfiles.load_stack(root, stack, stackfiles.load_project(root), path=config_file)
    except stackfiles.StackError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    printer(f"keel watch {stack}: watching {', '.join(_shown(p, root) for p in watcher.watched())} (Ctrl-C to stop)\n")
    stop = stop or threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C asks the loop to stop (between renders, or once the render under way is printed) instead of
        # raising wherever the program happens to be; a second Ctrl-C interrupts at once.
        def interrupt(signum: int, frame: Any) -> None:
            if stop.is_set():
                raise KeyboardInterrupt
            stop.set()

        previous = signal.signal(signal.SIGINT, interrupt)
    try:
        watcher.run(printer, stop)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    printer("keel watch: stopped\n")
    return 0


def _print(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
