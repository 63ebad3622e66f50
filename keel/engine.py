"""Run the Pulumi program offline and record what it registers.

Usage::

    preview = engine.run("prod")                 # Preview: steps, stack outputs
    engine.run("prod", config_file=Path("my.yaml"))   # prod with the config of my.yaml (`--config-file`)
    preview.to_json()                            # the `pulumi preview --json` shape

How: the program (``__main__.py``) runs exactly as the Python language host runs it, in
``pulumi.runtime.run_in_stack``, but against :class:`RecordingMonitor` instead of the engine. The monitor
answers every registration from :class:`keel.fake.FakeCloud` and records what the engine would record: type,
name, parent, inputs (engine wire names, so camelCase; secrets shown as ``[secret]``), protect,
retainOnDelete, provider reference and ``dependencies``. Those last few are only on the RegisterResource
request (a ``Mocks.new_resource`` callback never sees them), which is why the monitor, not a ``Mocks``
subclass, does the recording. Custom resources without an explicit provider get the engine's default
provider (``pulumi:providers:<pkg>::default_<version>``), recorded as a step of its own as the engine does.
While the program runs, the SDK attaches no call stack to a registration (:func:`keel.offline.no_stack_traces`:
no mock monitor reads it).

Secrets: the program gets a stand-in plaintext for each ``secure:`` config value (``keel.stackfiles``), as the
engine hands it the decrypted value. The monitor looks for each stand-in in every registered input and
registered output; one found outside a secret is a :class:`Leak` (the real engine would store it in plain
text), and ``keel preview`` fails on it, naming the config key and the input. No Pulumi tool checks this.

Errors: :class:`StackError` for an unknown stack or unreadable stack file; the program's own
``ConfigError`` (invalid config) and any other exception propagate unchanged for the CLI to map to exit codes.
"""

from __future__ import annotations

import asyncio
import os
import runpy
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi.runtime
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import rpc, settings
from pulumi.runtime.mocks import MockEngine, MockMonitor, Mocks, MockSettings
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.stack import run_in_stack

from keel import stackfiles, timings
from keel.fake import DEFAULT_ACCOUNT, FakeCloud
from keel.offline import no_stack_traces

SIG = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"  # noqa: S105 (a wire signature, not a secret)
OUTPUT_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"
UNKNOWN = rpc.UNKNOWN
SECRET_SHOWN = "[secret]"  # noqa: S105 (the mask shown instead of a secret)

StackError = stackfiles.StackError


@dataclass
class Step:
    """One resource the preview would create: the ``steps[]`` entry of ``pulumi preview --json``."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    inputs: dict[str, Any]
    protect: bool = False
    retain_on_delete: bool = False
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    provider: str = ""
    ignore_changes: list[str] = field(default_factory=list)
    replace_on_changes: list[str] = field(default_factory=list)
    delete_before_replace: bool = False
    aliases: list[str] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    wire_inputs: dict[str, Any] = field(default_factory=dict, repr=False)
    """The inputs as the engine holds them (secret envelopes with their plaintext): what an analyzer is sent.
    Never printed: ``inputs`` is the masked view."""

    def to_json(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "type": self.type,
            "urn": self.urn,
            "custom": self.custom,
            "parent": self.parent,
            "inputs": self.inputs,
            "protect": self.protect,
            "retainOnDelete": self.retain_on_delete,
            "dependencies": self.dependencies,
            "propertyDependencies": self.property_dependencies,
            "provider": self.provider,
        }
        if self.ignore_changes:
            state["ignoreChanges"] = self.ignore_changes
        if self.replace_on_changes:
            state["replaceOnChanges"] = self.replace_on_changes
        if self.delete_before_replace:
            state["deleteBeforeReplace"] = True
        if self.aliases:
            state["aliases"] = self.aliases
        if self.outputs:
            state["outputs"] = self.outputs
        return {"op": "create", "urn": self.urn, "newState": state}


@dataclass(frozen=True)
class Leak:
    """A secret config value that reached a registered input (or an output) without being marked secret: it
    would be stored in plain text in the state and shown by every preview."""

    config_path: str
    urn: str
    input_path: str

    def __str__(self) -> str:
        name, type_ = self.urn.rsplit("::", 1)[-1], self.urn.split("::")[2].rsplit("$", 1)[-1]
        return (
            f"secret config {self.config_path} reaches {name} ({type_}) {self.input_path} unmarked; read it with "
            "get_secret*/Output.secret so it stays secret"
        )


def find_leaks(value: Any, urn: str, stand_ins: Mapping[str, str], path: str = "") -> list[Leak]:
    """Every place in a wire value (``MessageToDict`` of a registration's Struct) where a stand-in plaintext
    appears outside a secret: a secret envelope, or an output value marked secret, is where it belongs."""
    if not stand_ins:
        return []
    if isinstance(value, str):
        return [Leak(config, urn, path or "(value)") for plain_text, config in stand_ins.items() if plain_text in value]
    if isinstance(value, list):
        return [leak for i, item in enumerate(value) for leak in find_leaks(item, urn, stand_ins, f"{path}[{i}]")]
    if isinstance(value, dict):
        sig = value.get(SIG)
        if sig == SECRET_SIG or (sig == OUTPUT_SIG and value.get("secret")):
            return []
        if sig == OUTPUT_SIG:
            return find_leaks(value.get("value"), urn, stand_ins, path)
        return [
            leak
            for key, item in value.items()
            for leak in find_leaks(item, urn, stand_ins, f"{path}.{key}" if path else str(key))
        ]
    return []


@dataclass
class Preview:
    """What one offline run of the program would do."""

    stack: str
    project: str
    steps: list[Step]
    leaks: list[Leak] = field(default_factory=list)
    """Secret config values that reached a registered input unmarked (see :func:`find_leaks`)."""

    def by_urn(self) -> dict[str, Step]:
        return {s.urn: s for s in self.steps}

    def of_type(self, type_: str) -> list[Step]:
        """Every step of one type token, in preview order."""
        return [s for s in self.steps if s.type == type_]

    def one(self, type_: str, name: str) -> Step:
        """The single step with this type and name (raises if there is not exactly one)."""
        found = [s for s in self.steps if s.type == type_ and s.name == name]
        if len(found) != 1:
            raise LookupError(f"{len(found)} steps of type {type_} named {name!r}")
        return found[0]

    def to_json(self) -> dict[str, Any]:
        counts: dict[str, int] = {"create": len(self.steps)}
        return {
            "steps": [s.to_json() for s in self.steps],
            "changeSummary": counts,
            "policyViolations": [],
        }


def plain(value: Any) -> Any:
    """A wire value (``MessageToDict`` of a Struct) as preview JSON shows it: secrets masked, integral
    numbers as integers, output values unwrapped. Resource references and assets keep their signature."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        sig = value.get(SIG)
        if sig == SECRET_SIG:
            return SECRET_SHOWN
        if sig == OUTPUT_SIG:
            if value.get("secret"):
                return SECRET_SHOWN
            return plain(value["value"]) if "value" in value else UNKNOWN
        return {k: plain(v) for k, v in value.items()}
    return value


def _integral(value: Any) -> Any:
    """Struct numbers are doubles; give integral ones back as ints, as the engine's property values do."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral(v) for v in value]
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    return value


class _Mocks(Mocks):
    """The ``Mocks`` half: invokes and reads. Registrations go through :class:`RecordingMonitor`."""

    def __init__(self, cloud: FakeCloud) -> None:
        self.cloud = cloud

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        # A bare dict means "no check failures" to the mock monitor.
        with timings.phase("fakeCloud"):
            return self.cloud.invoke(args.token, args.args, args.provider or "")

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        return self.cloud.resource(args.typ, args.name, f"{args.typ}::{args.name}", args.inputs)


class RecordingMonitor(MockMonitor):
    """A mock resource monitor that answers from the fake cloud and records every registration."""

    def __init__(
        self,
        cloud: FakeCloud,
        on_step: Callable[[Step], None] | None = None,
        stand_ins: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(_Mocks(cloud))
        self.cloud = cloud
        self.steps: dict[str, Step] = {}
        self.on_step = on_step
        self.stand_ins = dict(stand_ins or {})
        """Stand-in plaintext of each secure config value -> its config path (``keel.stackfiles``)."""
        self.leaks: list[Leak] = []
        self._lock = threading.Lock()

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """The engine's URN: the type is qualified by the parent's whole type chain (the stack excluded).
        The SDK's mock monitor keeps only the parent's last type, which differs from real URNs as soon as
        components nest."""
        if parent:
            qualified = parent.split("::")[2]
            if qualified != "pulumi:pulumi:Stack":
                type_ = f"{qualified}${type_}"
        return f"urn:pulumi:{settings.get_stack()}::{settings.get_project()}::{type_}::{name}"

    def _alias_urns(self, request: Any) -> list[str]:
        """The URNs a resource's alias specs name (the SDK sends specs when the monitor supports ``aliasSpecs``,
        as the mock monitor says it does): each field left unset is the resource's own, and the parent is the
        resource's unless the spec names one or says ``noParent`` (pulumi/pulumi pkg/resource/deploy
        source_eval.go, resmon.RegisterResource's alias handling)."""
        out = []
        for alias in request.aliases:
            if alias.urn:
                out.append(alias.urn)
                continue
            spec = alias.spec
            parent = "" if spec.noParent else (spec.parentUrn or request.parent)
            out.append(self.make_urn(parent, spec.type or request.type, spec.name or request.name))
        return out

    def RegisterResource(self, request: Any) -> Any:
        with timings.phase("recording"):
            return self._register(request)

    def _register(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        wire = json_format.MessageToDict(request.object)
        leaks = find_leaks(wire, urn, self.stand_ins)
        custom = bool(request.custom)
        provider = request.provider
        if custom and not provider and not request.type.startswith("pulumi:providers:"):
            provider = self._default_provider(request.type, request.version)
        step = Step(
            urn=urn,
            type=request.type,
            name=request.name,
            custom=custom,
            parent=request.parent,
            inputs=plain(wire),
            wire_inputs=wire,
            protect=request.HasField("protect") and request.protect,
            retain_on_delete=request.HasField("retainOnDelete") and request.retainOnDelete,
            dependencies=sorted(set(request.dependencies)),
            property_dependencies={
                k: sorted(v.urns) for k, v in sorted(request.propertyDependencies.items()) if v.urns
            },
            provider=provider,
            ignore_changes=list(request.ignoreChanges),
            replace_on_changes=list(request.replaceOnChanges),
            delete_before_replace=bool(request.deleteBeforeReplace),
            aliases=sorted({*request.aliasURNs, *self._alias_urns(request)}),
        )
        with self._lock:
            self.steps[urn] = step
            self.leaks += leaks
        if self.on_step is not None:
            self.on_step(step)
        if request.type == "pulumi:pulumi:Stack":
            return resource_pb2.RegisterResourceResponse(urn=urn)

        if not custom and not request.remote:
            # A local component: the engine records it and returns no id or state.
            return resource_pb2.RegisterResourceResponse(urn=urn)

        # The wire form, not `rpc.deserialize_properties`: that would rebuild referenced resources (and
        # schedule their RPCs) on this worker thread's event loop. References and secrets stay as the
        # engine would hand them to a provider, and go back to the program the same way.
        inputs = _integral(wire)
        with self._lock, timings.phase("fakeCloud"):
            resource_id, state = self.cloud.resource(request.type, request.name, urn, inputs, provider)
            self.resources[urn] = MockMonitor.ResourceRegistration(urn, resource_id, state)
            for child_urn, child_id, child_state in self.cloud.virtual:
                self.resources[child_urn] = MockMonitor.ResourceRegistration(child_urn, child_id, child_state)
            self.cloud.virtual.clear()
        # What the engine does for `additionalSecretOutputs` (RandomPassword.result, an AUTH token): those
        # outputs come back as secrets, so everything built from them stays secret.
        for key in request.additionalSecretOutputs:
            if key in state and not (isinstance(state[key], dict) and state[key].get(SIG) == SECRET_SIG):
                state = {**state, key: {SIG: SECRET_SIG, "value": state[key]}}
        # The state is already in wire form (plain JSON values, reference and secret signatures): build the
        # Struct directly instead of awaiting the SDK's serializer on this worker thread.
        obj = json_format.ParseDict(state, struct_pb2.Struct())
        return resource_pb2.RegisterResourceResponse(urn=urn, id=resource_id, object=obj)

    def RegisterResourceOutputs(self, request: Any) -> Any:
        outputs = json_format.MessageToDict(request.outputs)
        leaks = [
            Leak(leak.config_path, leak.urn, f"output {leak.input_path}")
            for leak in find_leaks(outputs, request.urn, self.stand_ins)
        ]
        with self._lock:
            self.leaks += leaks
            step = self.steps.get(request.urn)
            if step is not None and step.type == "pulumi:pulumi:Stack":
                step.outputs = plain(json_format.MessageToDict(request.outputs))
        return super().RegisterResourceOutputs(request)

    def _default_provider(self, type_: str, version: str) -> str:
        package = type_.split(":", 1)[0]
        name = "default_" + version.replace(".", "_") if version else "default"
        urn = f"urn:pulumi:{settings.get_stack()}::{settings.get_project()}::pulumi:providers:{package}::{name}"
        provider_id = f"{package}-{name}-provider"
        with self._lock:
            created = urn not in self.steps
            if created:
                self.steps[urn] = Step(
                    urn=urn,
                    type=f"pulumi:providers:{package}",
                    name=name,
                    custom=True,
                    parent="",
                    inputs={"version": version} if version else {},
                )
        if created and self.on_step is not None:
            self.on_step(self.steps[urn])
        return f"{urn}::{provider_id}"


def ordered(steps: dict[str, Step]) -> list[Step]:
    """Steps in a stable order the engine could have used: every resource after its parent and its
    dependencies, ties broken by URN."""
    out: list[Step] = []
    seen: set[str] = set()

    def visit(urn: str) -> None:
        if urn in seen or urn not in steps:
            return
        seen.add(urn)
        step = steps[urn]
        visit(step.parent)
        provider_urn = step.provider.rsplit("::", 1)[0] if step.provider else ""
        visit(provider_urn)
        for dep in step.dependencies:
            visit(dep)
        out.append(step)

    for urn in sorted(steps):
        visit(urn)
    return out


def execute(
    program: Callable[[], Any],
    *,
    stack: str,
    project: str = "keel",
    config: dict[str, str] | None = None,
    secret_keys: list[str] | None = None,
    cloud: FakeCloud | None = None,
    monitor: RecordingMonitor | None = None,
) -> Preview:
    """Run ``program`` as the language host would (inside ``run_in_stack``) against a fresh
    :class:`RecordingMonitor`, with ``config`` as the stack config, and return what it registered.

    Tests call this with a small program (one component); :func:`run` calls it with ``__main__.py``. Pass
    ``monitor`` to inspect what was registered even when the program raises.
    """
    config = dict(config or {})
    cloud = cloud or FakeCloud(
        region=config.get("aws:region", "us-east-1"), account=config.get("keel:accountId") or DEFAULT_ACCOUNT
    )
    monitor = monitor or RecordingMonitor(cloud)
    settings.reset_options(project=project, stack=stack, preview=True)
    settings.configure(
        MockSettings(
            monitor=monitor,
            engine=MockEngine(None),
            project=project,
            stack=stack,
            dry_run=True,
            organization="organization",
            callbacks=None,
        )
    )
    pulumi.runtime.set_all_config(config, secret_keys or [])
    saved_env = os.environ.pop("PULUMI_CONFIG", None)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    timings.mark("programStart")
    try:
        with no_stack_traces():
            loop.run_until_complete(run_in_stack(program))
    finally:
        timings.mark("programEnd")
        _close(loop)
        asyncio.set_event_loop(None)
        if saved_env is not None:
            os.environ["PULUMI_CONFIG"] = saved_env
    return Preview(stack=stack, project=project, steps=ordered(monitor.steps), leaks=list(monitor.leaks))


def _close(loop: asyncio.AbstractEventLoop) -> None:
    """Close the loop after joining its worker threads. The SDK gives each worker thread an event loop of its
    own; joined here, those loops are collected while the interpreter is whole, instead of failing noisily in
    ``BaseEventLoop.__del__`` at exit."""
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()


def run(
    stack: str,
    root: Path | None = None,
    on_step: Callable[[Step], None] | None = None,
    loaded: stackfiles.StackConfigFile | None = None,
    config_file: Path | None = None,
) -> Preview:
    """Run the project's program for ``stack`` with the config of ``Pulumi.<stack>.yaml``, or of ``config_file``
    when given (``pulumi preview --config-file``). ``on_step`` sees every step as it is registered (``keel preview``
    streams them to the policy pack). ``loaded``: the stack's config when the caller has already read it (None:
    read here)."""
    root = stackfiles.use_checkout(root or stackfiles.project_root())
    loaded = loaded or stackfiles.load_stack(root, stack, stackfiles.load_project(root), path=config_file)
    project, config, secret_keys = loaded.project, loaded.config, loaded.secret_keys
    main = root / str(project.get("main") or "__main__.py")
    if main.is_dir():
        main = main / "__main__.py"
    return execute(
        lambda: runpy.run_path(str(main), run_name="__main__"),
        stack=stack,
        project=str(project["name"]),
        config=config,
        secret_keys=secret_keys,
        monitor=RecordingMonitor(
            FakeCloud(
                region=config.get("aws:region", "us-east-1"), account=config.get("keel:accountId") or DEFAULT_ACCOUNT
            ),
            on_step,
            loaded.stand_ins,
        ),
    )
