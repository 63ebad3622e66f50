"""Shared fixtures (plain helpers are in tests/helpers.py, imported explicitly).

``preview(stack)`` runs the real ``__main__.py`` with the tests' own stack file, ``tests/stacks/Pulumi.<stack>.yaml``
(as ``keel preview STACK --config-file ...``), once per session and returns the recorded
:class:`keel.engine.Preview` (every registration with its type, name, parent, inputs, options and dependencies).
``aws`` starts a fresh moto server for one test.

Garbage collection: the tests render stacks in-process, each render allocating millions of objects of which the
provider SDKs' types live as long as the process. With the collector's defaults a worker spent seconds per render
walking them; the youngest generation is collected every 100,000 allocations instead of 700 here, and what is
loaded by the end of collection is frozen out of the collector's sight (as ``keel watch`` does after its first
render). Memory stays bounded: the collector still runs.
"""

from __future__ import annotations

import fcntl
import gc
import pickle
import urllib.request
from collections.abc import Callable, Iterator

import pytest
from moto.server import ThreadedMotoServer

from keel import engine
from tests.helpers import REGION, ROOT, free_port, stack_file


def pytest_configure(config: pytest.Config) -> None:
    gc.set_threshold(100_000, 50, 100)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session")
def preview(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Callable[[str], engine.Preview]:
    """Each of the tests' stacks rendered once per test session. Under pytest-xdist the workers share one render
    through the session's common temporary folder (the first to ask renders, under a file lock, and the others
    load its pickled :class:`~keel.engine.Preview`), instead of each worker rendering every stack again."""
    cache: dict[str, engine.Preview] = {}
    shared = tmp_path_factory.getbasetemp().parent if worker_id != "master" else None

    def render(stack: str) -> engine.Preview:
        return engine.run(stack, ROOT, config_file=stack_file(stack))

    def get(stack: str) -> engine.Preview:
        if stack in cache:
            return cache[stack]
        if shared is None:
            cache[stack] = render(stack)
            return cache[stack]
        saved = shared / f"keel-preview-{stack}.pickle"
        with (shared / f"keel-preview-{stack}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if saved.is_file():
                cache[stack] = pickle.loads(saved.read_bytes())  # written by this session's other worker
            else:
                cache[stack] = render(stack)
                saved.write_bytes(pickle.dumps(cache[stack]))
        return cache[stack]

    return get


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh moto server for each test, and the standard AWS environment pointing at it."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # moto keeps its fake accounts in-process: start every test from an empty cloud
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10).close()
    for key, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield endpoint
    server.stop()
