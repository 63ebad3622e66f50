"""`keel watch`: each render runs afresh, prints what changed since the last good one (diff lines, policy
violations new and resolved, the cost before and after) or the config error, and Ctrl-C ends it cleanly."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import pytest

from keel import watch
from tests.helpers import ROOT, policy_config_file, stack_file


def edit(path: Path, pattern: str, value: str) -> None:
    text = path.read_text()
    changed = re.sub(pattern, value, text, count=1)
    assert changed != text, pattern
    path.write_text(changed)


@pytest.fixture
def dev_file(tmp_path: Path) -> Path:
    """A copy of the tests' dev stack file, for the test to edit."""
    path = tmp_path / "Pulumi.dev.yaml"
    shutil.copy(stack_file("dev"), path)
    return path


def test_a_change_prints_its_diff_lines_and_a_bad_value_its_error_until_fixed(
    dev_file: Path, request: pytest.FixtureRequest
) -> None:
    watcher = watch.Watcher("dev", ROOT, config_file=dev_file, policy_config=policy_config_file("dev"))
    request.addfinalizer(watcher.close)  # its warm pack process, which would outlive the test
    first = watcher.step()
    assert re.match(r"\[\d\d:\d\d:\d\d\] dev: start; rendered in \d+\.\d\d s \(\d+ resources\)\n", first)
    assert re.search(r"^Monthly cost: \$[\d,]+\.\d\d$", first, re.M)
    assert re.search(r"^Policies: \d+ violation\(s\), 0 mandatory$", first, re.M)  # dev's advisories
    cost = re.search(r"^Monthly cost: (\$[\d,]+\.\d\d)$", first, re.M)
    assert cost is not None

    edit(dev_file, r"maxAllocatedStorageGb: 100", "maxAllocatedStorageGb: 200")
    changed = watcher.step({dev_file})
    assert changed.splitlines()[1:] == [
        "0 to create, 1 to update, 0 to replace, 0 to delete",
        f"Monthly cost: {cost[1]} -> {cost[1]} (+0.00)",
        "~ keel-dev-db  aws:rds/instance:Instance",
        "    maxAllocatedStorage: 100 -> 200",
        re.search(r"^Policies: no change .*$", changed, re.M)[0],  # type: ignore[index]
    ]
    assert f"dev: {dev_file}" in changed.splitlines()[0]  # the file that changed, outside the project: in full

    edit(dev_file, r"maxAllocatedStorageGb: 200", "maxAllocatedStorageGb: lots")
    broken = watcher.step({dev_file})
    assert broken.splitlines()[1:] == [
        "error: stack 'dev': invalid stack config (1 problem(s)):",
        "  - keel:database.maxAllocatedStorageGb: got 'lots'; expected a whole number",
        "(still showing changes against the last good render)",
    ]

    edit(dev_file, r"maxAllocatedStorageGb: lots", "maxAllocatedStorageGb: 300")
    fixed = watcher.step({dev_file})
    assert "    maxAllocatedStorage: 200 -> 300" in fixed.splitlines()  # against the last good render


def test_renders_run_afresh_a_b_a_gives_a_back(dev_file: Path) -> None:
    """No state leaks from one render into the next: A, then B, then A again is A's exact preview."""
    watcher = watch.Watcher("dev", ROOT, config_file=dev_file, policy=False)
    original = dev_file.read_text()
    a = watcher.render()
    edit(dev_file, r"flowLogRetentionDays: \d+", "flowLogRetentionDays: 60")
    b = watcher.render({dev_file})
    dev_file.write_text(original)
    again = watcher.render({dev_file})
    assert a.document is not None and b.document is not None and again.document is not None
    assert json.dumps(again.document, sort_keys=True) == json.dumps(a.document, sort_keys=True)
    assert json.dumps(b.document, sort_keys=True) != json.dumps(a.document, sort_keys=True)


def document(*states: dict[str, Any], violations: list[dict[str, str]] | None = None) -> dict[str, Any]:
    steps = [{"op": "create", "urn": s["urn"], "newState": s} for s in states]
    return {"steps": steps, "changeSummary": {"create": len(steps)}, "policyViolations": violations or []}


def db(**inputs: Any) -> dict[str, Any]:
    urn = "urn:pulumi:dev::keel::keel:platform:Platform$aws:rds/instance:Instance::keel-dev-db"
    return {"type": "aws:rds/instance:Instance", "urn": urn, "custom": True, "inputs": inputs}


def violation(policy: str, level: str = "mandatory") -> dict[str, str]:
    return {
        "policyPack": "keel",
        "policyName": policy,
        "enforcementLevel": level,
        "severity": "high",
        "urn": db()["urn"],
        "message": f"{policy} says no",
    }


def test_a_description_names_replacements_and_policy_changes() -> None:
    before = watch.Render(document(db(dbName="app"), violations=[violation("a")]), None, 1.0)
    after = watch.Render(document(db(dbName="other"), violations=[violation("b", "advisory")]), None, 1.0)
    assert watch.describe(before, after).splitlines() == [
        "0 to create, 0 to update, 1 to replace, 0 to delete",
        "Monthly cost: not estimated (no price table for the region)",
        "WARNING: 1 stateful resource(s) would be replaced or deleted:",
        "  ! keel-dev-db (aws:rds/instance:Instance): dbName",
        "+- keel-dev-db  aws:rds/instance:Instance",
        "    dbName: app -> other  (forces replacement)",
        "Policies: 1 new, 1 resolved (0 mandatory now)",
        "  + advisory  b  keel-dev-db: b says no",
        "  - mandatory  a  keel-dev-db: a says no",
    ]
    same = watch.Render(document(db(dbName="other"), violations=[violation("b", "advisory")]), None, 1.0)
    assert watch.describe(after, same).splitlines() == [
        "no resource changes",
        "Policies: no change (1 violation(s), 0 mandatory)",
    ]


def project_copy(tmp_path: Path) -> Path:
    """The project's program, components and pack in a folder of their own, for a test to edit its code."""
    root = tmp_path / "project"
    root.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("components", "policies"):
        shutil.copytree(ROOT / name, root / name, ignore=ignore)
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, root / name)
    shutil.copy(stack_file("dev"), root / "Pulumi.dev.yaml")
    return root


def read_until(stream: IO[str], pattern: str, seconds: float = 120.0) -> str:
    """What ``stream`` prints until a line matching ``pattern`` (a failure after ``seconds``)."""
    found: list[str] = []
    done = threading.Event()

    def read() -> None:
        for line in stream:
            found.append(line)
            if re.search(pattern, line):
                done.set()
                return
        done.set()

    threading.Thread(target=read, daemon=True).start()
    assert done.wait(seconds), "".join(found)
    return "".join(found)


class Noting(watch.Watcher):
    """A watcher that notes which files each batch of changes named instead of rendering."""

    def step(self, changed: Any = ()) -> str:
        return ",".join(sorted(str(Path(p).relative_to(self.root)) for p in changed)) or "start"


def replace(path: Path, text: str) -> None:
    """Save as vim, JetBrains' safe write and ``sed -i`` do: a new file renamed over the old one."""
    fresh = path.with_name(f".{path.name}.tmp")
    fresh.write_text(text)
    os.replace(fresh, path)


def test_a_file_saved_by_renaming_over_it_is_seen_every_time(tmp_path: Path) -> None:
    """A watch on the stack file itself would follow the replaced file and miss every save after the first; the
    watch is on its folder. Sources anywhere under components/ and policies/ count; the rest of the root does not."""
    root = tmp_path.resolve()
    for name in (
        "Pulumi.yaml",
        "__main__.py",
        "Pulumi.dev.yaml",
        "components/config/models.py",
        "policies/rules/s3.py",
    ):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("# 1\n")
    (root / ".venv" / "lib").mkdir(parents=True)
    seen: list[str] = []
    stop = threading.Event()
    watcher = Noting("dev", root, policy=False)
    thread = threading.Thread(target=watcher.run, args=(seen.append, stop), daemon=True)
    thread.start()

    def after(change: Any) -> str:
        count = len(seen)
        change()
        deadline = time.monotonic() + 10
        while len(seen) == count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(seen) == count + 1, seen
        return seen[-1]

    try:
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.02)
        assert seen == ["start"]
        for n in (2, 3):  # the second save is the one a watch on the file itself misses
            assert after(lambda n=n: replace(root / "Pulumi.dev.yaml", f"# {n}\n")) == "Pulumi.dev.yaml"
        assert after(lambda: replace(root / "__main__.py", "# 2\n")) == "__main__.py"
        (root / ".venv" / "lib" / "site.py").write_text("# not the project's\n")
        (root / "README.md").write_text("# not a source\n")
        assert after(lambda: replace(root / "components/config/models.py", "# 2\n")) == "components/config/models.py"
        assert after(lambda: (root / "policies/rules/s3.py").write_text("# 2\n")) == "policies/rules/s3.py"
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_keel_watch_follows_stack_and_component_changes_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """The command itself, on a copy of the project: a stack file edit and a change under components/ (reloaded:
    the new code runs) each print their diff; SIGINT (Ctrl-C) ends it with exit 0 and no traceback."""
    root = project_copy(tmp_path)
    keel = str(Path(sys.executable).parent / "keel")
    process = subprocess.Popen(
        [keel, "watch", "dev", "--no-policy"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        started = read_until(process.stdout, r"^Policies: ")
        assert "keel watch dev: watching Pulumi.dev.yaml, Pulumi.yaml, __main__.py, components, policies" in started
        assert re.search(r"dev: start; rendered in .* \(\d+ resources\)", started)
        assert "\nPolicies: not checked (--no-policy)\n" in started  # never "no violations" when nothing ran

        time.sleep(0.3)
        edit(root / "Pulumi.dev.yaml", r"maxAllocatedStorageGb: 100", "maxAllocatedStorageGb: 150")
        stacked = read_until(process.stdout, r"^Policies: ")
        assert "dev: Pulumi.dev.yaml; rendered in" in stacked
        assert "    maxAllocatedStorage: 100 -> 150\n" in stacked

        time.sleep(0.3)
        keys = root / "components" / "keys.py"
        edit(keys, r'description=f"\{name\}: \{purpose\}"', 'description=f"{name} - {purpose}"')
        coded = read_until(process.stdout, r"^Policies: ")
        assert "dev: components/keys.py; rendered in" in coded
        assert re.search(r"^~ keel-dev-\S+  aws:kms/key:Key$", coded, re.M), coded
        assert re.search(r"^    description: keel-dev-\S+: .* -> keel-dev-\S+ - ", coded, re.M), coded
        assert re.search(r"^0 to create, \d+ to update, 0 to replace, 0 to delete$", coded, re.M), coded
    finally:
        process.send_signal(signal.SIGINT)
        try:
            out, err = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0, err
    assert out.endswith("keel watch: stopped\n")
    assert "Traceback" not in err


def test_the_packs_policies_read_only_what_they_are_sent() -> None:
    """What lets keel watch keep its pack and its Analyze answers between renders: no module of the pack imports
    anything that could read the stack's config, the environment, a file, a clock or chance; only pure libraries,
    pulumi-policy's types, the pack's own modules and the constants it shares with the program (which themselves
    import only the standard library's pure modules)."""
    import ast

    pure = {"__future__", "typing", "collections", "collections.abc", "re", "json", "fnmatch", "ipaddress"}
    pure |= {"dataclasses", "functools"}
    runtime = {"gc", "threading", "memo", "rules", "pulumi_policy", "pulumi_policy.proxy"}  # __main__ and memo.py
    shared = {"components.upstream", "components.upstream.base", "components.vocabulary"}
    shared |= {f"components.upstream.{p.stem}" for p in (ROOT / "components" / "upstream").glob("*.py")}
    found = {}
    paths = [*(ROOT / "policies").rglob("*.py"), *(ROOT / "components" / "upstream").glob("*.py")]
    for path in sorted([*paths, ROOT / "components" / "vocabulary.py"]):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = ["." * node.level + (node.module or "")]
            else:
                continue
            for name in names:
                if not (name.startswith(".") or name in pure | runtime | shared):
                    found[f"{path.relative_to(ROOT)}:{node.lineno}"] = name
    assert found == {}
