"""keel/offline.py: while keel runs a program, the SDK builds no stack trace per registration (nothing offline reads
it), and what keel records is the same as with the SDK's own stack traces."""

from __future__ import annotations

import contextlib
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from pulumi.runtime import resource as sdk_resource

from keel import engine, offline


class Component(pulumi.ComponentResource):
    """Resources registered from inside a component, as keel's are."""

    def __init__(self, name: str) -> None:
        super().__init__("test:index:Component", name)
        key = aws.kms.Key(f"{name}-key", enable_key_rotation=True, opts=pulumi.ResourceOptions(parent=self))
        aws.s3.Bucket(
            f"{name}-bucket",
            tags={"key": key.arn},
            opts=pulumi.ResourceOptions(parent=self, protect=True, depends_on=[key]),
        )
        self.register_outputs({})


class Seeing(engine.RecordingMonitor):
    """Records what each registration carried of the program's call stack."""

    def __init__(self) -> None:
        super().__init__(engine.FakeCloud("us-east-1"))
        self.frames: dict[str, int] = {}
        self.positions: dict[str, bool] = {}

    def RegisterResource(self, request: Any) -> Any:
        self.frames[request.name] = len(request.stackTrace.frames)
        self.positions[request.name] = request.HasField("sourcePosition")
        return super().RegisterResource(request)


def run(monitor: engine.RecordingMonitor) -> engine.Preview:
    return engine.execute(lambda: Component("c"), stack="t", config={"aws:region": "us-east-1"}, monitor=monitor)


def test_the_pinned_sdk_has_the_function_keel_replaces() -> None:
    """The pinned pulumi builds the trace in ``_get_stack_trace``: were it renamed, the setting would silently do
    nothing (and the bench's figures would change), so this fails first."""
    assert callable(getattr(sdk_resource, "_get_stack_trace", None))


def test_registrations_carry_no_stack_trace_while_keel_runs_and_the_sdk_is_restored_after() -> None:
    original = sdk_resource._get_stack_trace
    monitor = Seeing()
    run(monitor)
    assert set(monitor.frames) == {"keel-t", "c", "c-key", "c-bucket"}
    assert all(count == 0 for count in monitor.frames.values())
    assert not any(monitor.positions.values())
    assert sdk_resource._get_stack_trace is original  # the SDK's own, once the program has run


def test_the_recorded_preview_is_the_same_with_the_sdks_stack_traces(monkeypatch: pytest.MonkeyPatch) -> None:
    quick = run(engine.RecordingMonitor(engine.FakeCloud("us-east-1")))
    monkeypatch.setattr(engine, "no_stack_traces", contextlib.nullcontext)
    seeing = Seeing()
    full = run(seeing)
    assert seeing.frames["c-key"] > 0 and seeing.positions["c-bucket"]  # the SDK did send its traces this time
    assert full.to_json() == quick.to_json()
    assert quick.one("aws:s3/bucket:Bucket", "c-bucket").protect is True


def test_a_pulumi_without_the_function_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(sdk_resource, "_get_stack_trace")
    with offline.no_stack_traces():
        assert not hasattr(sdk_resource, "_get_stack_trace")
    assert not hasattr(sdk_resource, "_get_stack_trace")
