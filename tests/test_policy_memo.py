"""policies/memo.py: pulumi-policy converts a resource's properties once per request, not once per policy, and the
pack's results are the same with and without it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf import json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import EnforcementLevel
from pulumi_policy import deserialize as deserialize_module
from pulumi_policy import policy as analyzer
from pulumi_policy import proxy as proxy_module
from pulumi_policy.deserialize import deserialize_properties

from keel import engine, policy
from policies import memo
from policies.rules import ALL
from tests.helpers import policy_config


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
    message_to_dict, deserialize_once, _ = memo.memoized(to_dict, deserialize)
    one, two = struct(a=1, b={"c": "d"}), struct(a=2)
    results = [deserialize_once(message_to_dict(one)) for _ in range(160)]  # what 160 policies do
    assert all(r is results[0] for r in results) and results[0] == {"a": 1, "b": {"c": "d"}}
    assert calls == ["to_dict", "deserialize:False"]
    assert message_to_dict(struct(a=1, b={"c": "d"})) is message_to_dict(one)  # equal content: the same conversion
    assert deserialize_once(message_to_dict(two)) == {"a": 2}  # another message: its own conversion
    assert deserialize_once(message_to_dict(one), True) == {"a": 1, "b": {"c": "d"}}  # Remediate's variant
    assert calls == ["to_dict", "deserialize:False", "to_dict", "deserialize:False", "deserialize:True"]
    # options other than the defaults, and dicts that came from elsewhere, are never memoized
    message_to_dict(one, preserving_proto_field_name=True)
    deserialize_once({"x": 1})
    assert calls[-2:] == ["to_dict", "deserialize:False"]


def proxying() -> tuple[list[Any], Any, Any, Any]:
    """The memo's three functions, with a proxy that keeps each value it wraps (and numbers its proxies)."""
    _, to_dict, deserialize = counting()
    proxies: list[Any] = []

    def proxy(value: Any) -> Any:
        proxies.append(value)
        return ("proxy", len(proxies))

    return (proxies, *memo.memoized(to_dict, deserialize, proxy))


def test_one_proxy_per_converted_value() -> None:
    proxies, message_to_dict, deserialize_once, proxy_once = proxying()
    one = struct(a=1)
    results = [proxy_once(deserialize_once(message_to_dict(one))) for _ in range(160)]
    assert all(r == results[0] for r in results) and len(proxies) == 1
    proxy_once({"a": 1})  # a value the memo did not convert: proxied each time
    proxy_once({"a": 1})
    assert len(proxies) == 3


def test_interleaved_messages_each_keep_their_one_conversion() -> None:
    """``Analyze`` asks for one message many times in a row (the last one looked up is checked first);
    ``AnalyzeStack`` goes through every resource once per policy, so each lookup follows another message's."""
    proxies, message_to_dict, deserialize_once, proxy_once = proxying()
    one, two = struct(a=1), struct(b=2)
    first = {m is one: proxy_once(deserialize_once(message_to_dict(m))) for m in (one, two)}
    for _ in range(3):  # policy after policy, resource after resource
        for message in (one, two, two, one):
            assert proxy_once(deserialize_once(message_to_dict(message))) == first[message is one]
    assert len(proxies) == 2 and first[True] != first[False]
    assert deserialize_once(message_to_dict(two)) == {"b": 2}
    assert deserialize_once(message_to_dict(one)) == {"a": 1}


def test_a_servicer_method_runs_once_per_request_object() -> None:
    seen: list[Any] = []

    def options(self: Any, request: Any) -> Any:
        seen.append(request)
        return object()

    once = memo.per_request(options)
    first, second = struct(a=1), struct(a=1)
    assert once(None, first) is once(None, first)
    assert once(None, second) is not once(None, first)  # equal, but another request: its own result
    assert seen == [first, second] and once.__wrapped__ is options  # type: ignore[attr-defined]


def unpatched(monkeypatch: pytest.MonkeyPatch) -> None:
    """pulumi-policy as it ships (another test in this process may have run the pack's __main__, which installs
    the memo): every name memo.install patches, restored after the test."""
    monkeypatch.setattr(analyzer, "json_format", json_format)
    monkeypatch.setattr(analyzer, "deserialize_properties", deserialize_module.deserialize_properties)
    monkeypatch.setattr(analyzer, "unknown_checking_proxy", proxy_module.unknown_checking_proxy)
    servicer = analyzer._PolicyAnalyzerServicer
    for name in ("_get_resource_options", "_get_provider_resource"):
        method = getattr(servicer, name)
        monkeypatch.setattr(servicer, name, getattr(method, "__wrapped__", method))


def test_install_patches_pulumi_policy_once(monkeypatch: pytest.MonkeyPatch) -> None:
    unpatched(monkeypatch)
    assert memo.install() is True
    message = struct(k="v")
    first = analyzer.deserialize_properties(analyzer.json_format.MessageToDict(message))
    assert analyzer.deserialize_properties(analyzer.json_format.MessageToDict(message)) is first == {"k": "v"}
    assert analyzer.json_format.Parse is json_format.Parse  # the rest of json_format is untouched
    assert memo.install() is False  # already installed: nothing patched twice
    assert analyzer.unknown_checking_proxy is not proxy_module.unknown_checking_proxy
    assert analyzer._PolicyAnalyzerServicer._get_resource_options.__wrapped__  # type: ignore[attr-defined]


@pytest.mark.parametrize("missing", ["deserialize_properties", "unknown_checking_proxy"])
def test_a_pulumi_policy_that_works_differently_is_left_alone(monkeypatch: pytest.MonkeyPatch, missing: str) -> None:
    unpatched(monkeypatch)
    monkeypatch.delattr(analyzer, missing)
    assert memo.install() is False
    assert analyzer.json_format is json_format  # nothing patched


def diagnostics(steps: list[engine.Step], stack: str) -> list[tuple[str, str, str]]:
    """Every diagnostic of the whole pack on these resources (``Analyze`` per resource, then ``AnalyzeStack``), as
    the engine would request them, from a servicer built in this process."""
    servicer = analyzer._PolicyAnalyzerServicer("keel", "0.0.1", ALL, EnforcementLevel.MANDATORY)
    levels = policy.reconcile(servicer.GetAnalyzerInfo(None, None), policy_config(stack))
    configure = analyzer_pb2.ConfigureAnalyzerRequest()
    for name, config in levels.items():
        configure.policyConfig[name].enforcementLevel = config.enforcement_level  # type: ignore[assignment]
        configure.policyConfig[name].properties.CopyFrom(policy.to_struct(config.properties))
    servicer.Configure(configure, None)
    states = [{**s.to_json()["newState"], "inputs": s.wire_inputs} for s in steps]
    providers = policy._providers([{"newState": state} for state in states])
    resources = [policy._resource(state, providers) for state in states]
    found = []
    for resource in resources:
        request = analyzer_pb2.AnalyzeRequest(
            type=resource.type, properties=resource.properties, urn=resource.urn, name=resource.name
        )
        request.options.CopyFrom(resource.options)
        if resource.HasField("provider"):
            request.provider.CopyFrom(resource.provider)
        found += [(resource.urn, d.policyName, d.message) for d in servicer.Analyze(request, None).diagnostics]
    stacked = servicer.AnalyzeStack(analyzer_pb2.AnalyzeStackRequest(resources=resources), None)
    return sorted(found + [(d.urn, d.policyName, d.message) for d in stacked.diagnostics])


def test_the_pack_finds_the_same_with_and_without_the_memo(
    monkeypatch: pytest.MonkeyPatch, preview: Callable[[str], engine.Preview]
) -> None:
    """The memo shares one conversion of each resource among all policies: were a policy to write to its
    properties (pulumi-policy's proxies allow it) or its options, the next policies would see it, and the
    diagnostics of the whole pack on the tests' dev stack would differ from pulumi-policy's own."""
    steps = preview("dev").steps
    unpatched(monkeypatch)
    plain = diagnostics(steps, "dev")
    assert memo.install() is True
    assert diagnostics(steps, "dev") == plain
    assert plain  # dev has advisories: the comparison is not of two empty lists
