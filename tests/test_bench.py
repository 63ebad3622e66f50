"""keel/bench.py: the SDK floor registers exactly the resources of the preview it is given (a floor that left some out
would flatter keel's ratio), with empty inputs or, for the line shown for information, each resource's own inputs;
and, like keel's program, without per-registration stack traces."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from keel import engine
from tests.helpers import ROOT

# Runs the floor program in a process of its own (it configures the SDK's global mocks), recording every
# registration the SDK's mock monitor receives.
RECORD = """
import json, sys
from google.protobuf import json_format
from pulumi.runtime import mocks
seen = []
register = mocks.MockMonitor.RegisterResource
def recording(self, request):
    seen.append([request.type, request.name, json_format.MessageToDict(request.object), len(request.stackTrace.frames)])
    return register(self, request)
mocks.MockMonitor.RegisterResource = recording
from keel import bench
bench.floor_program(sys.argv[1], sys.argv[2] == "inputs")
print(json.dumps(seen))
"""


def registered(saved: Path, mode: str) -> list[list[Any]]:
    done = subprocess.run(
        [sys.executable, "-c", RECORD, str(saved), mode],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=True,
    )
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("mode", ["empty", "inputs"])
def test_the_floor_registers_every_resource_of_the_preview(
    mode: str, tmp_path: Path, preview: Callable[[str], engine.Preview]
) -> None:
    doc = preview("dev").to_json()
    saved = tmp_path / "dev.json"
    saved.write_text(json.dumps(doc))
    seen = registered(saved, mode)
    steps = [s for s in doc["steps"] if s["newState"]["type"] != "pulumi:pulumi:Stack"]
    assert Counter((kind, name) for kind, name, _, _ in seen if kind != "pulumi:pulumi:Stack") == Counter(
        (s["newState"]["type"], s["urn"].rsplit("::", 1)[1]) for s in steps
    )
    assert len(steps) > 100
    assert all(frames == 0 for _, _, _, frames in seen)  # keel.offline.no_stack_traces, as for keel's program
    sent = {(kind, name): inputs for kind, name, inputs, _ in seen}
    for step in steps:
        state = step["newState"]
        expected = (state["inputs"] if mode == "inputs" and state["custom"] else {}) or {}
        assert sent[(state["type"], step["urn"].rsplit("::", 1)[1])] == expected, step["urn"]
