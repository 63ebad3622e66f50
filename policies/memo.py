"""Convert each resource's properties once per request, not once per policy.

pulumi-policy's analyzer (``pulumi_policy/policy.py`` at 1.21.0: ``_PolicyAnalyzerServicer.Analyze`` and
``AnalyzeStack``, and ``_get_provider_resource`` for the provider's properties) converts a resource's properties
from the engine's protobuf Struct, and builds its options and provider objects, for every policy it runs:
``unknown_checking_proxy(deserialize_properties(json_format.MessageToDict(request.properties)))`` inside
``for policy in policies``. With ~160 policies and ~440 resources that was most of the pack's time (the proxy, a
deep copy of the properties wrapped for unknown-value checks, alone 1.4 s of a 1.9 s ``AnalyzeStack`` in prod).
All of these are pure, so this module memoizes them by the identity of their argument (the same protobuf message
object for every policy of one request: upb returns one wrapper per field; then the same dict, the same value):
the first policy converts, the others reuse the result. A message object seen for the first time is looked up by
its serialized bytes too, so a later request with the same properties (the ``AnalyzeStack`` that follows each
resource's ``Analyze``, or the next render of an unchanged resource in a pack ``keel watch`` keeps running) reuses
the conversions as well.

Sharing is safe because no keel policy writes to the properties it is given (pulumi-policy's proxies accept an
item assignment): ``tests/test_policy_memo.py`` runs the whole pack on the tests' stacks with and without the
memo and requires the same diagnostics, so a policy that started writing would fail there.

:func:`install` patches only the names ``pulumi_policy.policy`` looks up, and only when all are there: a
pulumi-policy that works differently keeps its own behaviour (slower, never different).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

#: Messages remembered per thread before the memo starts over (a request's resources and their properties).
LIMIT = 4096

_local = threading.local()


class _Entry:
    """One message's conversions: its dict, its deserialized forms (by ``proxy_secrets``) and their proxies; holding
    the dict and the values keeps their ids from being reused while the entry lives."""

    __slots__ = ("as_dict", "done", "proxies")

    def __init__(self, as_dict: dict[str, Any]) -> None:
        self.as_dict = as_dict
        self.done: dict[bool, Any] = {}
        self.proxies: dict[int, tuple[Any, Any]] = {}
        """id of a deserialized value -> (that value, its proxy)."""


class _Caches:
    """This thread's entries by message id (with the message, so its id is not reused), by dict id and by
    deserialized value id, and the servicer's per-resource results by (method, request id); and the last of each
    looked up, which is what the next policy of the same request asks for (checked first: one identity test instead
    of a thread lookup and a dict lookup, for each of the ~160 policies times ~440 resources)."""

    __slots__ = (
        "by_dict",
        "by_message",
        "by_request",
        "by_value",
        "last_entry",
        "last_message",
        "last_proxied",
        "last_request",
        "last_value",
        "last_value_entry",
    )

    def __init__(self) -> None:
        self.by_message: dict[int, tuple[Any, _Entry]] = {}
        self.by_dict: dict[int, _Entry] = {}
        self.by_value: dict[int, _Entry] = {}
        self.by_request: dict[tuple[str, int], tuple[Any, Any]] = {}
        self.last_message: Any = None
        self.last_entry: _Entry | None = None
        self.last_value: Any = None
        self.last_value_entry: _Entry | None = None
        self.last_proxied: tuple[Any, Any] | None = None
        self.last_request: dict[str, tuple[Any, Any]] = {}


def _caches() -> _Caches:
    """This thread's caches."""
    try:
        caches: _Caches = _local.caches
    except AttributeError:
        caches = _local.caches = _Caches()
    return caches


def _room(caches: _Caches) -> _Caches:
    """``caches``, or new ones past :data:`LIMIT` messages (the thread starts over)."""
    if len(caches.by_message) > LIMIT:
        caches = _local.caches = _Caches()
    return caches


def memoized(
    to_dict: Callable[..., dict[str, Any]], deserialize: Callable[..., Any], proxy: Callable[[Any], Any] | None = None
) -> tuple[Callable[..., dict[str, Any]], Callable[..., Any], Callable[[Any], Any]]:
    """``MessageToDict``, ``deserialize_properties`` and ``unknown_checking_proxy`` that compute once per message
    content (a message object is looked up by identity first, then by its serialized bytes). ``proxy`` None: the
    third is the identity (for tests of the first two)."""
    proxy = proxy or (lambda value: value)
    # Entries by the message's serialized bytes, shared by every thread: another request with equal properties
    # (the ``AnalyzeStack`` after the ``Analyze`` of a resource, or the next preview of an unchanged resource in a
    # pack that ``keel watch`` keeps) reuses the conversions. Started over past LIMIT entries.
    by_content: dict[bytes, _Entry] = {}
    lock = threading.Lock()

    def _entry(message: Any) -> _Entry:
        key = message.SerializeToString(deterministic=True)
        entry = by_content.get(key)
        if entry is None:
            entry = _Entry(to_dict(message))
            with lock:
                if len(by_content) > LIMIT:
                    by_content.clear()
                by_content[key] = entry
        return entry

    def message_to_dict(message: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if args or kwargs:
            return to_dict(message, *args, **kwargs)
        caches = _caches()
        if message is caches.last_message:
            return caches.last_entry.as_dict  # type: ignore[union-attr]  # set with last_message
        known = caches.by_message.get(id(message))
        if known is None or known[0] is not message:
            caches = _room(caches)
            known = caches.by_message[id(message)] = (message, _entry(message))
            caches.by_dict[id(known[1].as_dict)] = known[1]
        caches.last_message, caches.last_entry = message, known[1]
        return known[1].as_dict

    def deserialize_properties(props: dict[str, Any], proxy_secrets: bool = False) -> Any:
        caches = _caches()
        entry = caches.last_entry
        if entry is None or entry.as_dict is not props:
            entry = caches.by_dict.get(id(props))
            if entry is None or entry.as_dict is not props:
                return deserialize(props, proxy_secrets)
        value = entry.done.get(proxy_secrets)
        if value is None:
            value = entry.done[proxy_secrets] = deserialize(props, proxy_secrets)
        if value is not caches.last_value:
            caches.by_value[id(value)] = entry
            caches.last_value, caches.last_value_entry = value, entry
        return value

    def unknown_checking_proxy(value: Any) -> Any:
        caches = _caches()
        last = caches.last_proxied
        if last is not None and last[0] is value:
            return last[1]
        entry = caches.last_value_entry if value is caches.last_value else caches.by_value.get(id(value))
        if entry is None:
            return proxy(value)
        known = entry.proxies.get(id(value))
        if known is None or known[0] is not value:
            known = entry.proxies[id(value)] = (value, proxy(value))
        caches.last_proxied = known
        return known[1]

    return message_to_dict, deserialize_properties, unknown_checking_proxy


def per_request(method: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """A servicer method of one request message (``_get_resource_options``, ``_get_provider_resource``) computed once
    per message object (per thread), not once per policy."""
    key = method.__name__

    def once(self: Any, request: Any) -> Any:
        caches = _caches()
        last = caches.last_request.get(key)
        if last is not None and last[0] is request:
            return last[1]
        known = caches.by_request.get((key, id(request)))
        if known is None or known[0] is not request:
            known = caches.by_request[(key, id(request))] = (request, method(self, request))
        caches.last_request[key] = known
        return known[1]

    once.__name__ = method.__name__
    once.__wrapped__ = method  # type: ignore[attr-defined]
    return once


class _JsonFormat:
    """``google.protobuf.json_format`` with a memoized ``MessageToDict``."""

    def __init__(self, module: Any, message_to_dict: Callable[..., dict[str, Any]]) -> None:
        self._module = module
        self.MessageToDict = message_to_dict

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


def install() -> bool:
    """Patch pulumi-policy's analyzer module; False (nothing changed) when it does not look as expected."""
    try:
        from pulumi_policy import policy as analyzer
    except ImportError:  # pragma: no cover - the pack always has pulumi-policy
        return False
    json_format = getattr(analyzer, "json_format", None)
    deserialize = getattr(analyzer, "deserialize_properties", None)
    proxy = getattr(analyzer, "unknown_checking_proxy", None)
    if json_format is None or deserialize is None or proxy is None or isinstance(json_format, _JsonFormat):
        return False
    servicer = getattr(analyzer, "_PolicyAnalyzerServicer", None)
    methods = ("_get_resource_options", "_get_provider_resource")
    if servicer is None or not all(callable(getattr(servicer, m, None)) for m in methods):
        return False
    to_dict, deserialize_once, proxy_once = memoized(json_format.MessageToDict, deserialize, proxy)
    setattr(analyzer, "json_format", _JsonFormat(json_format, to_dict))  # noqa: B010 (a module attribute, patched)
    setattr(analyzer, "deserialize_properties", deserialize_once)  # noqa: B010
    setattr(analyzer, "unknown_checking_proxy", proxy_once)  # noqa: B010
    for name in methods:
        setattr(servicer, name, per_request(getattr(servicer, name)))
    return True
