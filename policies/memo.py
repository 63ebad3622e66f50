"""Deserialize each resource's properties once per request, not once per policy.

pulumi-policy's analyzer (``pulumi_policy/policy.py`` at 1.21.0: ``_PolicyAnalyzerServicer.Analyze`` and
``AnalyzeStack``) converts a resource's properties from the engine's protobuf Struct for every policy it runs:
``deserialize_properties(json_format.MessageToDict(request.properties))`` inside ``for policy in policies``. With
~160 policies and ~440 resources that is most of the pack's time. Both functions are pure, so this module memoizes
them by the identity of the protobuf message (the same message object for every policy of one request: upb returns
one wrapper per field): the first policy converts, the others reuse the result. Policies read their properties
through pulumi-policy's read-only ``unknown_checking_proxy``; none mutates them, so sharing changes nothing they see.

:func:`install` patches only the two names ``pulumi_policy.policy`` looks up, and only when both are there: a
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
    """One message, its dict and its deserialized forms (by ``proxy_secrets``); holding the message and the dict
    keeps their ids from being reused while the entry lives."""

    __slots__ = ("as_dict", "done", "message")

    def __init__(self, message: Any, as_dict: dict[str, Any]) -> None:
        self.message = message
        self.as_dict = as_dict
        self.done: dict[bool, Any] = {}


def _caches() -> tuple[dict[int, _Entry], dict[int, _Entry]]:
    """This thread's entries by message id and by dict id (started over past :data:`LIMIT`)."""
    by_message: dict[int, _Entry] | None = getattr(_local, "by_message", None)
    if by_message is None or len(by_message) > LIMIT:
        _local.by_message, _local.by_dict = {}, {}
    return _local.by_message, _local.by_dict


def memoized(
    to_dict: Callable[..., dict[str, Any]], deserialize: Callable[..., Any]
) -> tuple[Callable[..., dict[str, Any]], Callable[..., Any]]:
    """``MessageToDict`` and ``deserialize_properties`` that compute once per message object (per thread)."""

    def message_to_dict(message: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if args or kwargs:
            return to_dict(message, *args, **kwargs)
        by_message, by_dict = _caches()
        entry = by_message.get(id(message))
        if entry is None or entry.message is not message:
            entry = _Entry(message, to_dict(message))
            by_message[id(message)] = by_dict[id(entry.as_dict)] = entry
        return entry.as_dict

    def deserialize_properties(props: dict[str, Any], proxy_secrets: bool = False) -> Any:
        entry = _caches()[1].get(id(props))
        if entry is None or entry.as_dict is not props:
            return deserialize(props, proxy_secrets)
        if proxy_secrets not in entry.done:
            entry.done[proxy_secrets] = deserialize(props, proxy_secrets)
        return entry.done[proxy_secrets]

    return message_to_dict, deserialize_properties


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
    if json_format is None or deserialize is None or isinstance(json_format, _JsonFormat):
        return False
    to_dict, deserialize_once = memoized(json_format.MessageToDict, deserialize)
    setattr(analyzer, "json_format", _JsonFormat(json_format, to_dict))  # noqa: B010 (a module attribute, patched)
    setattr(analyzer, "deserialize_properties", deserialize_once)  # noqa: B010
    return True
