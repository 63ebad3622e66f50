"""Run the CrossGuard policy pack on a preview, the way the Pulumi engine runs it.

Usage::

    violations = policy.analyze(preview_document)            # the `--json` document of `keel preview`
    policy.mandatory(violations)                              # the ones that fail a deployment

How: the pack (``policies/``) is started as its own process, as the engine's Python language host starts one
(``<virtualenv>/bin/python -u -m pulumi.policy`` in its folder, see :class:`Pack`); it prints the port of its
analyzer gRPC server. We then call, over ``pulumi.runtime.proto.analyzer_pb2_grpc``: ``GetAnalyzerInfo``,
``ConfigureStack``, ``Configure`` with the stack's policy config,
``Analyze`` once per resource and ``AnalyzeStack`` once with all of them, sending inputs as the engine sends them
(a protobuf Struct of the engine's property values) together with the resource options and the provider's
properties. The results are the same diagnostics ``pulumi preview --policy-pack policies`` prints.

Policy config: ``policies/config.<stack>.json``, the same file ``pulumi preview --policy-pack-config`` takes, or
the file ``keel ... --policy-pack-config PATH`` names. Every stack has one; a stack without it is a
:class:`PolicyConfigError` naming the file (``keel`` exits 2), never a silent fall back to the pack's defaults. It
is applied as the engine applies it (:func:`reconcile`): an entry that sets only properties keeps the policy's own
enforcement level, and every policy is configured.

Any CrossGuard pack can be driven, not only keel's own: :class:`Pack` starts whatever ``PulumiPolicy.yaml`` in
the pack's folder describes, with the interpreter of the virtualenv its runtime options name.
"""

from __future__ import annotations

import json
import os
import queue
import select
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from keel import EXIT_FAILED, EXIT_USAGE, timings
from keel.diff import DATA

PACK_DIR = Path(__file__).resolve().parent.parent / "policies"
_LEVELS = {
    analyzer_pb2.ADVISORY: "advisory",
    analyzer_pb2.MANDATORY: "mandatory",
    analyzer_pb2.DISABLED: "disabled",
    analyzer_pb2.REMEDIATE: "remediate",
}
_LEVEL_VALUES = {v: k for k, v in _LEVELS.items()}
_SEVERITIES = {0: "", 1: "low", 2: "medium", 3: "high", 4: "critical"}
SEVERITY_ORDER = ("critical", "high", "medium", "low", "")
STARTUP_TIMEOUT = 60.0
CALL_TIMEOUT = 60.0


class PolicyError(Exception):
    """The pack could not be started or answered something unexpected."""


class PolicyConfigError(PolicyError):
    """The stack's policy config is missing or invalid: a user error (``keel`` exits 2)."""


def exit_code(err: Exception) -> int:
    """A missing or invalid policy config is the user's to fix (2); a pack that fails is a failure (1)."""
    return EXIT_USAGE if isinstance(err, PolicyConfigError) else EXIT_FAILED


@dataclass(frozen=True)
class Violation:
    """One diagnostic, in the ``policyViolations`` shape of the preview document."""

    policy_pack: str
    policy_name: str
    enforcement_level: str
    severity: str
    urn: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {
            "policyPack": self.policy_pack,
            "policyName": self.policy_name,
            "enforcementLevel": self.enforcement_level,
            "severity": self.severity,
            "urn": self.urn,
            "message": self.message,
        }


#: Types that hold data, which a protected stack also keeps when Pulumi deletes them (``retainOnDelete``). The same
#: list as ``STATEFUL`` in policies/rules/stack.py (a test keeps them equal).
RETAINED = DATA
#: keel's own check, next to the pack's ``stack-stateful-resources-protected`` and at its level.
RETAINED_CHECK = "stack-stateful-resources-retained"


def retained(steps: Sequence[Mapping[str, Any]], level: str) -> list[Violation]:
    """Stateful resources Pulumi would really delete: ``retainOnDelete`` is not set.

    Not a policy of the pack, because no pack can see it: the engine sends a pack ``protect``, ``ignoreChanges``,
    aliases, timeouts and parent, not ``retainOnDelete`` (``AnalyzerResourceOptions``, pulumi v3.259.0
    ``proto/pulumi/analyzer.proto``). keel reads it from the preview document instead and reports it at the
    level the stack gives ``stack-stateful-resources-protected``; a real ``pulumi preview --policy-pack`` does
    not hold it, which the message says."""
    return [
        Violation(
            policy_pack="keel",
            policy_name=RETAINED_CHECK,
            enforcement_level=level,
            severity="high",
            urn=str(step["newState"]["urn"]),
            message=(
                f"Stateful resource {str(step['newState']['urn']).rsplit('::', 1)[1]} must outlive a delete "
                "(retainOnDelete, set by keel:protect). Checked by keel from the preview document: the engine "
                "does not send retainOnDelete to policy packs, so pulumi preview --policy-pack cannot hold it."
            ),
        )
        for step in steps
        if step["newState"].get("type") in RETAINED and step["newState"].get("retainOnDelete") is not True
    ]


def mandatory(violations: Iterable[Violation]) -> list[Violation]:
    return [v for v in violations if v.enforcement_level == "mandatory"]


def mandatory_in(document: Mapping[str, Any]) -> int:
    """How many of a preview document's ``policyViolations`` are mandatory (none when it has none)."""
    return sum(1 for v in document.get("policyViolations", []) if v["enforcementLevel"] == "mandatory")


def config_file(stack: str, pack_dir: Path = PACK_DIR, path: Path | None = None) -> Path:
    """The stack's policy config file: ``path`` when given (``--policy-pack-config``, as ``pulumi preview`` takes
    it), else ``<pack_dir>/config.<stack>.json``; :class:`PolicyConfigError` when it does not exist."""
    if path is not None:
        if not path.is_file():
            raise PolicyConfigError(f"--policy-pack-config {path}: no such file")
        return path
    path = pack_dir / f"config.{stack}.json"
    if not path.is_file():
        others = sorted(p.name for p in pack_dir.glob("config.*.json"))
        raise PolicyConfigError(
            f"{path}: no such file; every stack needs its policy config (the file "
            f"`pulumi preview --policy-pack-config` takes). Existing: {', '.join(others) or 'none'}; "
            "start from the one of the stack yours resembles"
        )
    return path


def load_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise PolicyConfigError(f"{path}: not valid JSON ({err})") from None
    except OSError as err:
        raise PolicyConfigError(f"{path}: cannot read the policy config ({err.strerror})") from None
    if not isinstance(data, dict):
        raise PolicyConfigError(f"{path}: expected an object mapping policy names to settings")
    return data


@dataclass(frozen=True)
class PolicyConfig:
    """What the engine sends one policy in ``Configure``: its enforcement level and its properties."""

    enforcement_level: int
    properties: dict[str, Any]


def reconcile(info: Any, settings: Mapping[str, Any]) -> dict[str, PolicyConfig]:
    """The engine's reconciliation of a policy config file with the pack's own settings.

    What the Pulumi engine does (pulumi/pulumi v3.259.0 ``pkg/resource/analyzer/config.go``:
    ``ReconcilePolicyPackConfig``, ``createConfigWithDefaults``, ``applyConfig``, ``validatePolicyPackConfig``;
    called from ``pkg/engine/update.go`` before ``Configure``), repeated here:

    - every policy of the pack is configured, not only those the file names;
    - the enforcement level is, from lowest to highest: the policy's own level (``GetAnalyzerInfo``; the pack's
      level fills a policy that has none), the pack's ``initialConfig``, the file's ``all`` entry, the policy's
      entry in the file. An entry that sets only properties (``{"minimumDays": 7}``) keeps the level it had;
    - properties start from the defaults of the policy's ``configSchema``, then ``initialConfig``, then the file
      (one top-level key at a time), and are validated against ``{"type": "object", "properties", "required"}``
      (unknown keys pass, as there);
    - numbers travel as protobuf doubles (``structpb.NewStruct``): ``7`` reaches the pack as ``7.0``.

    One deliberate difference: the engine sends an entry naming a policy the pack does not have and the pack
    ignores it (or, without a level, fails with ``invalid enforcement level ""``); keel refuses it, naming it,
    since a misspelt policy name would otherwise silently leave the policy at its default.

    ``info``: the pack's ``AnalyzerInfo``. Raises :class:`PolicyConfigError` for an invalid file.
    """
    policies = {p.name: p for p in info.policies}
    problems = [
        f"policy config names {name!r}, which the pack {info.name!r} does not have"
        for name in settings
        if name not in policies and name != "all"
    ]
    entries: dict[str, tuple[str | None, dict[str, Any]]] = {}
    for name, value in settings.items():
        if isinstance(value, str):
            entries[name] = (value, {})
        elif isinstance(value, dict):
            level = value.get("enforcementLevel")
            entries[name] = (level, {k: v for k, v in value.items() if k != "enforcementLevel"})
        else:
            problems.append(f"policy config of {name!r}: got {value!r}; expected a level or an object")
            continue
        level = entries[name][0]
        if level is not None and level not in _LEVEL_VALUES:
            problems.append(
                f"policy config of {name!r}: got enforcement level {level!r}; allowed: {', '.join(_LEVEL_VALUES)}"
            )
    if problems:
        raise PolicyConfigError("; ".join(problems))
    out: dict[str, PolicyConfig] = {}
    schemas: dict[str, dict[str, Any]] = {}
    for name, pol in policies.items():
        schemas[name] = json_format.MessageToDict(pol.configSchema) if pol.HasField("configSchema") else {}
        defaults = {k: v["default"] for k, v in (schemas[name].get("properties") or {}).items() if "default" in v}
        out[name] = PolicyConfig(pol.enforcementLevel, defaults)
    initial = {k: (v.enforcementLevel, json_format.MessageToDict(v.properties)) for k, v in info.initialConfig.items()}
    for layer in (initial, {k: (_LEVEL_VALUES[v[0]] if v[0] else None, v[1]) for k, v in entries.items()}):
        all_level = layer.get("all", (None, {}))[0]
        if all_level is not None:
            out = {k: PolicyConfig(all_level, v.properties) for k, v in out.items()}
        for name, (level, properties) in layer.items():
            if name == "all":  # not a policy: applied to every policy above
                continue
            before = out.get(name, PolicyConfig(analyzer_pb2.ADVISORY, {}))
            out[name] = PolicyConfig(
                before.enforcement_level if level is None else level, {**before.properties, **properties}
            )
    problems = [p for name in policies if (p := _invalid(info, name, out[name].properties, schemas[name]))]
    if problems:
        raise PolicyConfigError("validating policy config: " + "; ".join(problems))
    return out


def _invalid(info: Any, name: str, properties: Mapping[str, Any], schema: Mapping[str, Any]) -> str:
    """The engine's check of one policy's properties against its schema; the problem, or ''."""
    if not schema:
        return ""
    import jsonschema

    full = {"type": "object", **{k: v for k, v in schema.items() if k in ("properties", "required")}}
    error = jsonschema.exceptions.best_match(jsonschema.Draft7Validator(full).iter_errors(dict(properties)))
    if error is None:
        return ""
    where = ".".join(map(str, error.absolute_path))
    return f"{info.name} {info.version}  {name}: {where + ': ' if where else ''}{error.message}"


_SIG = "4dabf18193072939515e22adb298388d"
_RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"


def _downgrade(value: Any) -> Any:
    """Resource references as the engine hands them to analyzers (which do not keep resources): the
    resource's id when it has one, else its URN."""
    if isinstance(value, list):
        return [_downgrade(v) for v in value]
    if isinstance(value, dict):
        if value.get(_SIG) == _RESOURCE_SIG:
            return value.get("id") or value.get("urn", "")
        return {k: _downgrade(v) for k, v in value.items()}
    return value


def to_struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    """Properties (or policy config) as the engine marshals them for an analyzer: a protobuf Struct, so numbers
    become doubles, with resource references downgraded to their id or URN."""
    out = struct_pb2.Struct()
    json_format.ParseDict(_downgrade(dict(value)), out)
    return out


def _options(state: Mapping[str, Any]) -> analyzer_pb2.AnalyzerResourceOptions:
    """The options the engine sends (``marshalResourceOptions`` in ``pkg/resource/plugin/analyzer_plugin.go``):
    custom timeouts are always present, zero when none were set."""
    delete_before_replace = state.get("deleteBeforeReplace")
    return analyzer_pb2.AnalyzerResourceOptions(
        protect=bool(state.get("protect")),
        ignoreChanges=list(state.get("ignoreChanges", [])),
        deleteBeforeReplace=bool(delete_before_replace),
        deleteBeforeReplaceDefined=delete_before_replace is not None,
        additionalSecretOutputs=list(state.get("additionalSecretOutputs", [])),
        aliases=list(state.get("aliases", [])),
        customTimeouts=analyzer_pb2.AnalyzerResourceOptions.CustomTimeouts(),
        parent=str(state.get("parent", "")),
    )


def _providers(steps: Sequence[Mapping[str, Any]]) -> dict[str, analyzer_pb2.AnalyzerProviderResource]:
    out = {}
    for step in steps:
        state = step["newState"]
        if str(state["type"]).startswith("pulumi:providers:"):
            out[state["urn"]] = analyzer_pb2.AnalyzerProviderResource(
                type=state["type"],
                urn=state["urn"],
                name=state["urn"].rsplit("::", 1)[1],
                properties=to_struct(state.get("inputs", {})),
            )
    return out


def _resource(state: Mapping[str, Any], providers: Mapping[str, Any]) -> analyzer_pb2.AnalyzerResource:
    """A resource as the engine hands it to an analyzer (pulumi/pulumi v3.259.0
    ``pkg/resource/deploy/step_generator.go``): ``provider`` is set only when the resource has one
    (``getProviderResource`` returns nil for an empty reference: components and providers themselves), never as
    an empty message."""
    provider = providers.get(str(state.get("provider", "")).rsplit("::", 1)[0])
    resource = analyzer_pb2.AnalyzerResource(
        type=state["type"],
        urn=state["urn"],
        name=state["urn"].rsplit("::", 1)[1],
        properties=to_struct(state.get("inputs", {})),
        options=_options(state),
        parent=str(state.get("parent", "")),
        dependencies=list(state.get("dependencies", [])),
    )
    if provider is not None:
        resource.provider.CopyFrom(provider)
    for key, urns in (state.get("propertyDependencies") or {}).items():
        resource.propertyDependencies[key].urns.extend(urns)
    return resource


def pack_python(pack_dir: Path) -> Path:
    """The interpreter the engine would run the pack with, from ``PulumiPolicy.yaml``.

    pulumi/pulumi v3.259.0 ``sdk/python/cmd/pulumi-language-python/main.go`` (``RunPlugin``, ``parseOptions``) and
    ``sdk/python/toolchain/pip.go``: ``runtime: {name: python, options: {virtualenv: DIR}}`` runs
    ``DIR/bin/python``, DIR relative to the pack's folder; with no ``virtualenv`` a policy pack runs on ``python3``
    from PATH (``$PULUMI_PYTHON_CMD``). Offline, a pack that names no virtualenv runs on the interpreter running
    keel (it has pulumi-policy, which the ambient ``python3`` may not). A named virtualenv that does not exist is
    an error here, as it would fail the engine's start of the pack."""
    import yaml

    manifest = pack_dir / "PulumiPolicy.yaml"
    if not manifest.is_file():
        raise PolicyError(f"no policy pack in {pack_dir} (expected PulumiPolicy.yaml)")
    try:
        data = yaml.safe_load(manifest.read_text()) or {}
    except yaml.YAMLError as err:
        raise PolicyError(f"{manifest}: not valid YAML ({err})") from None
    runtime = data.get("runtime") if isinstance(data, dict) else None
    name = runtime.get("name") if isinstance(runtime, dict) else runtime
    if name != "python":
        raise PolicyError(
            f"{manifest}: runtime {name!r}; keel runs Python policy packs offline (use `pulumi preview --policy-pack` "
            "for others)"
        )
    options = (runtime.get("options") or {}) if isinstance(runtime, dict) else {}
    virtualenv = options.get("virtualenv")
    if virtualenv is None:
        return Path(sys.executable)
    python = (pack_dir / str(virtualenv)).resolve() / "bin" / "python"
    if not python.exists():
        raise PolicyError(
            f"{manifest}: its virtualenv {virtualenv!r} has no {python}; create it (`make install`) first"
        )
    return python


class Pack:
    """A policy pack process and a stub to its analyzer server.

    Started as the engine's Python language host starts a pack (``RunPlugin`` for ``kind == analyzer``):
    ``<python> -u -m pulumi.policy <engine address> <pack folder>`` in the pack's folder, with ``PULUMI_PROJECT``,
    ``PULUMI_STACK``, ``PULUMI_DRY_RUN`` and ``PULUMI_CONFIG`` (the stack's config) in its environment. The pack
    prints the port of its analyzer server as its first line. Any Python CrossGuard pack can be driven this way.

    Starting is split from connecting so a caller can start the pack first and run the program meanwhile
    (``keel preview`` does: the pack's start-up overlaps the program's run instead of adding to it). The pack's
    stderr goes to a temporary file (read only to explain a failure), so a chatty pack can never block."""

    def __init__(
        self,
        pack_dir: Path = PACK_DIR,
        *,
        stack: str | None = None,
        project: str = "keel",
        config: Mapping[str, str] | None = None,
    ) -> None:
        python = pack_python(pack_dir)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PULUMI_PROJECT": project, "PULUMI_DRY_RUN": "true"}
        if stack is not None:
            env["PULUMI_STACK"] = stack
        if config is not None:
            env["PULUMI_CONFIG"] = json.dumps(dict(config))
        self.stack, self.project = stack, project
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed in close())
        timings.mark("packSpawn")
        try:
            self.process = subprocess.Popen(  # noqa: S603 (the pack's own interpreter and folder)
                [str(python), "-u", "-m", "pulumi.policy", "127.0.0.1:0", str(pack_dir.resolve())],
                cwd=pack_dir,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env=env,
            )
        except OSError as err:
            self._stderr.close()
            raise PolicyError(f"cannot start the policy pack: {err}") from None
        self.channel: grpc.Channel | None = None
        self._stub: Any = None

    def _port(self) -> str:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], STARTUP_TIMEOUT)
        line = self.process.stdout.readline().decode().strip() if ready else ""
        timings.mark("packReady")
        if not line.isdigit():
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(timeout=10)
            self._stderr.seek(0)  # read what the pack said before close() drops it
            err = self._stderr.read().decode(errors="replace").strip()
            self.close()
            reason = err.splitlines()[-1] if err else (line or f"no port within {STARTUP_TIMEOUT:.0f} s")
            raise PolicyError(f"the policy pack did not start: {reason}")
        return line

    @property
    def stub(self) -> Any:
        if self._stub is None:
            self.channel = grpc.insecure_channel(f"127.0.0.1:{self._port()}")
            try:
                grpc.channel_ready_future(self.channel).result(timeout=STARTUP_TIMEOUT)
            except grpc.FutureTimeoutError:
                self.close()
                raise PolicyError(f"the policy pack did not answer within {STARTUP_TIMEOUT:.0f} s") from None
            self._stub = analyzer_pb2_grpc.AnalyzerStub(self.channel)
        return self._stub

    def close(self) -> None:
        """Stop the pack; safe to call more than once."""
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()
        if not self._stderr.closed:
            self._stderr.close()


class _Answered:
    """An ``Analyze`` answer taken from a :class:`Session`'s cache, shaped like the call's future."""

    def __init__(self, response: Any) -> None:
        self.response = response

    def result(self, timeout: float | None = None) -> Any:
        return self.response

    def done(self) -> bool:
        return True

    def exception(self, timeout: float | None = None) -> None:
        return None


class Session:
    """One analysis with a started pack: ``add`` each resource as the program registers it (``Analyze`` is sent
    right away, as the engine does, so the pack works while the program still runs), then ``finish`` with the
    whole document (``AnalyzeStack``, in document order) to get the violations.

    ``cache`` (``keel watch``): ``Analyze`` answers by request (its deterministic serialization), kept by the caller
    from one session to the next with the same pack and policy config: a resource whose request is byte for byte
    one already answered is not sent again. Sound for a pack whose policies depend only on what they are sent and
    their config, as keel's do (the engine sends every resource; ``keel preview`` never passes a cache)."""

    def __init__(
        self,
        pack: Pack,
        *,
        stack: str | None = None,
        pack_dir: Path = PACK_DIR,
        config: Mapping[str, Any] | None = None,
        config_path: Path | None = None,
        cache: dict[bytes, Any] | None = None,
    ) -> None:
        self.pack = pack
        self._cache = cache
        self._resources: dict[str, analyzer_pb2.AnalyzerResource] = {}
        """Each resource as built for ``Analyze``, by URN: ``AnalyzeStack`` sends the same (not built twice)."""
        if config is None and stack is None and config_path is None:
            raise PolicyConfigError("no stack to read the policy config of: name one (--stack)")
        self.settings = (
            dict(config) if config is not None else load_config(config_file(str(stack), pack_dir, config_path))
        )
        self._providers: dict[str, analyzer_pb2.AnalyzerProviderResource] = {}
        self._pending: list[tuple[str, Any, bytes | None]] = []
        """(URN, the ``Analyze`` call's future, its request's cache key when the answer is to be cached)."""
        self._inputs: dict[str, Any] = {}
        self._queue: queue.Queue[Mapping[str, Any] | None] = queue.Queue()
        self._error: BaseException | None = None
        self._info: Any = None
        self._levels: dict[str, PolicyConfig] = {}
        self._thread = threading.Thread(target=self._pump, name="keel-policy", daemon=True)
        self._thread.start()

    def add(self, state: Mapping[str, Any]) -> None:
        """A resource's ``newState`` (the preview document's shape). Its ``inputs`` may hold secrets in the
        engine's envelope (``keel preview`` sends them so): the pack gets their plaintext, as from the engine,
        and :meth:`finish` sends the same inputs again in ``AnalyzeStack``."""
        self._inputs[str(state["urn"])] = state.get("inputs", {})
        self._queue.put(state)

    def _pump(self) -> None:
        try:
            self._configure()
            while (state := self._queue.get()) is not None:
                self._analyze(state)
            timings.mark("analysisSent")
        except BaseException as err:
            self._error = err
            while self._queue.get() is not None:  # drain so finish() never blocks
                pass

    def _configure(self) -> None:
        self._info = self.pack.stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=CALL_TIMEOUT)
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        stack = analyzer_pb2.AnalyzerStackConfigureRequest(
            stack=self.pack.stack or "", project=self.pack.project, organization="organization", dry_run=True
        )
        try:  # the engine configures the stack first (pkg/engine/update.go); an older pack may not implement it
            self.pack.stub.ConfigureStack(stack, timeout=CALL_TIMEOUT)
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.UNIMPLEMENTED:
                raise
        self._levels = reconcile(self._info, self.settings)
        for name, config in self._levels.items():
            entry = request.policyConfig[name]
            entry.enforcementLevel = config.enforcement_level  # type: ignore[assignment]
            entry.properties.CopyFrom(to_struct(config.properties))
        self.pack.stub.Configure(request, timeout=CALL_TIMEOUT)

    def _analyze(self, state: Mapping[str, Any]) -> None:
        self._providers.update(_providers([{"newState": state}]))
        resource = self._resources[str(state["urn"])] = _resource(state, self._providers)
        request = analyzer_pb2.AnalyzeRequest(
            type=resource.type,
            properties=resource.properties,
            urn=resource.urn,
            name=resource.name,
            options=resource.options,
        )
        if resource.HasField("provider"):
            request.provider.CopyFrom(resource.provider)
        key = None
        if self._cache is not None:
            key = request.SerializeToString(deterministic=True)
            known = self._cache.get(key)
            if known is not None:
                self._pending.append((resource.urn, _Answered(known), None))
                return
        self._pending.append((resource.urn, self.pack.stub.Analyze.future(request, timeout=CALL_TIMEOUT), key))

    @property
    def in_flight(self) -> int:
        """Resources added whose ``Analyze`` call has not finished (or not been sent): 0 once the session is
        stopped or finished."""
        unsent = self._queue.qsize() + (1 if self._thread.is_alive() else 0)
        return unsent + sum(1 for _, future, _ in self._pending if not future.done())

    @property
    def analyzed(self) -> int:
        """``Analyze`` calls sent so far."""
        return len(self._pending)

    def stop(self) -> None:
        """End the session without a result (the program failed): let the calls in flight finish, so closing the
        channel afterwards cannot fail one of them on a gRPC thread (which prints a traceback). Safe after
        :meth:`finish`."""
        self._queue.put(None)
        self._thread.join(timeout=STARTUP_TIMEOUT + CALL_TIMEOUT)
        for _, future, _ in self._pending:
            future.exception(timeout=CALL_TIMEOUT)  # waits; an error here is of no interest any more

    def finish(self, document: Mapping[str, Any]) -> list[Violation]:
        self._queue.put(None)
        self._thread.join(timeout=STARTUP_TIMEOUT + CALL_TIMEOUT)
        if self._thread.is_alive():
            raise PolicyError("the policy pack stopped answering")
        try:
            if self._error is not None:
                raise self._error
            steps = [
                {
                    **step,
                    "newState": {
                        **step["newState"],
                        "inputs": self._inputs.get(step["urn"], step["newState"].get("inputs", {})),
                    },
                }
                for step in document.get("steps", [])
            ]
            analyzed = [(urn, future.result(), key) for urn, future, key in self._pending]
            timings.mark("analysisDone")
            if self._cache is not None:
                self._cache.update((key, result) for _, result, key in analyzed if key is not None)
            providers = _providers(steps)
            resources = [self._resources.get(step["urn"]) or _resource(step["newState"], providers) for step in steps]
            with timings.phase("stackPolicies"):
                stacked = self.pack.stub.AnalyzeStack(
                    analyzer_pb2.AnalyzeStackRequest(resources=resources), timeout=CALL_TIMEOUT
                )
            diagnostics = [(urn, d) for urn, result, _ in analyzed for d in result.diagnostics]
            diagnostics += [("", d) for d in stacked.diagnostics]
        except grpc.RpcError as err:
            raise PolicyError(f"the policy pack failed: {err.details() if hasattr(err, 'details') else err}") from None
        name = self._info.name if self._info is not None else "keel"
        violations = [
            Violation(
                policy_pack=d.policyPackName or name,
                policy_name=d.policyName,
                enforcement_level=_LEVELS.get(d.enforcementLevel, "advisory"),
                severity=_SEVERITIES.get(int(d.severity), ""),
                urn=d.urn or urn,  # the engine names the analyzed resource when a policy does not
                message=d.message.strip(),
            )
            for urn, d in diagnostics
            if d.enforcementLevel != analyzer_pb2.DISABLED
        ]
        protected = self._levels.get("stack-stateful-resources-protected")
        if protected is not None and protected.enforcement_level != analyzer_pb2.DISABLED:
            violations += retained(
                steps, "mandatory" if protected.enforcement_level == analyzer_pb2.MANDATORY else "advisory"
            )
        return sorted(violations, key=lambda v: (SEVERITY_ORDER.index(v.severity), v.policy_name, v.urn, v.message))


def analyze(
    document: Mapping[str, Any],
    *,
    stack: str | None = None,
    pack_dir: Path = PACK_DIR,
    config: Mapping[str, Any] | None = None,
    pack: Pack | None = None,
    config_path: Path | None = None,
) -> list[Violation]:
    """Every policy diagnostic for the resources of a saved preview document, ordered by severity, policy, URN.
    The policy config: ``config`` itself, else the file ``config_path`` (``--policy-pack-config``), else the
    stack's ``config.<stack>.json``. ``pack``: an already started pack (closed here when done); None starts one."""
    pack = pack or Pack(pack_dir, stack=stack)
    try:
        session = Session(pack, stack=stack, pack_dir=pack_dir, config=config, config_path=config_path)
        for step in document.get("steps", []):
            session.add(step["newState"])
        return session.finish(document)
    finally:
        pack.close()
