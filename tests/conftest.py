"""Shared fixtures (plain helpers are in tests/helpers.py, imported explicitly).

``preview(stack)`` runs the real ``__main__.py`` with the tests' own stack file, ``tests/stacks/Pulumi.<stack>.yaml``
(as ``keel preview STACK --config-file ...``), once per session and returns the recorded
:class:`keel.engine.Preview` (every registration with its type, name, parent, inputs, options and dependencies).
``aws`` starts a fresh moto server for one test.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Iterator

import pytest
from moto.server import ThreadedMotoServer

from keel import engine
from tests.helpers import REGION, ROOT, free_port, stack_file


@pytest.fixture(scope="session")
def preview() -> Callable[[str], engine.Preview]:
    cache: dict[str, engine.Preview] = {}

    def get(stack: str) -> engine.Preview:
        if stack not in cache:
            cache[stack] = engine.run(stack, ROOT, config_file=stack_file(stack))
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
