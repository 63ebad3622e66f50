"""policies/memo.py: pulumi-policy converts a resource's properties once per request, not once per policy."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import json_format, struct_pb2
from pulumi_policy import policy as analyzer
from pulumi_policy.deserialize import deserialize_properties

from policies import memo


def counting() -> tuple[list[str], Any, Any]:
    calls: list[str] = []

    def to_dict(message: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append("to_dict")
        return dict(json_format.MessageToDict(message, *args, **kwargs))

    def deserialize(props: dict[str, Any], proxy_secrets: bool = False) -> Any:
        calls.append(f"deserialize:{proxy_secrets}")
        return deserialize_properties(props, proxy_secrets)

    return calls, to_dict, deserialize


def struct(**values: Any) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def test_one_conversion_per_message_whatever_the_number_of_policies() -> None:
    calls, to_dict, deserialize = counting()
    message_to_dict, deserialize_once = memo.memoized(to_dict, deserialize)
    one, two = struct(a=1, b={"c": "d"}), struct(a=2)
    results = [deserialize_once(message_to_dict(one)) for _ in range(160)]  # what 160 policies do
    assert all(r is results[0] for r in results) and results[0] == {"a": 1, "b": {"c": "d"}}
    assert calls == ["to_dict", "deserialize:False"]
    assert deserialize_once(message_to_dict(two)) == {"a": 2}  # another message: its own conversion
    assert deserialize_once(message_to_dict(one), True) == {"a": 1, "b": {"c": "d"}}  # Remediate's variant
    assert calls == ["to_dict", "deserialize:False", "to_dict", "deserialize:False", "deserialize:True"]
    # options other than the defaults, and dicts that came from elsewhere, are never memoized
    message_to_dict(one, preserving_proto_field_name=True)
    deserialize_once({"x": 1})
    assert calls[-2:] == ["to_dict", "deserialize:False"]


def test_install_patches_pulumi_policy_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(analyzer, "json_format", analyzer.json_format)  # restored after the test
    monkeypatch.setattr(analyzer, "deserialize_properties", analyzer.deserialize_properties)
    assert memo.install() is True
    message = struct(k="v")
    first = analyzer.deserialize_properties(analyzer.json_format.MessageToDict(message))
    assert analyzer.deserialize_properties(analyzer.json_format.MessageToDict(message)) is first == {"k": "v"}
    assert analyzer.json_format.Parse is json_format.Parse  # the rest of json_format is untouched
    assert memo.install() is False  # already installed: nothing patched twice


def test_a_pulumi_policy_that_works_differently_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(analyzer, "deserialize_properties")
    assert memo.install() is False
