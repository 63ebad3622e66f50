"""What keel changes in the Pulumi SDK while it runs a program offline, and why: only what no offline reader
would see. Imports nothing heavy, so ``keel.bench``'s SDK floor can run with the same without paying for keel.

Usage::

    with no_stack_traces():
        loop.run_until_complete(run_in_stack(program))
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def no_stack_traces() -> Iterator[None]:
    """While the program runs offline, the SDK sends no stack trace with a registration.

    Each registration carries the program's call stack for the engine to store (``sourcePosition`` and
    ``stackTrace`` of ``RegisterResourceRequest``): pulumi v3.272.0 ``sdk/python/lib/pulumi/runtime/resource.py``
    builds it in ``_get_stack_trace`` (used by ``register_resource`` and ``read_resource``), with
    ``traceback.extract_stack()``, which reads the source line of every frame, and a ``file://`` URI per frame.
    Neither ``keel.engine.RecordingMonitor`` nor the SDK's own ``MockMonitor`` (``runtime/mocks.py``) reads those two
    fields, and an offline preview shows neither, so under a mock monitor that work is thrown away: about 0.2 s of a
    prod preview, whose resources are registered from deep inside keel's components. Here ``_get_stack_trace`` gives
    an empty trace (the SDK then sends no source position, as for a frame it cannot place); the SDK's own function is
    back when the block ends. A pulumi without that function is left as it is. ``pulumi preview`` and ``pulumi up``
    never run this code: the program runs there under the Python language host, not keel."""
    module = importlib.import_module("pulumi.runtime.resource")
    original = getattr(module, "_get_stack_trace", None)
    if original is None:
        yield
        return
    module._get_stack_trace = _empty_stack_trace  # type: ignore[attr-defined]
    try:
        yield
    finally:
        module._get_stack_trace = original  # type: ignore[attr-defined]


def _empty_stack_trace() -> Any:
    from pulumi.runtime.proto import source_pb2

    return source_pb2.StackTrace()
