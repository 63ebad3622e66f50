"""Read ``Pulumi.yaml`` and ``Pulumi.<stack>.yaml`` the way the Pulumi CLI hands config to a program.

Usage::

    root = project_root()
    stacks(root)                               # ["dev", "prod"]
    config, secret_keys = load_config(root, "prod", load_project(root))
    config["keel:network"]                     # '{"cidr":"10.20.0.0/16",...}'  (JSON text, as Pulumi passes it)
    load_stack(root, "prod", load_project(root), path=Path("my.yaml"))   # prod's config from my.yaml (--config-file)

What the CLI does and this repeats: project-level ``config:`` declarations give defaults and types; a
declared key without a default is required; a stack value of the wrong declared type is refused; scalars
reach the program as text (``true``, ``3``), objects and lists as compact JSON.

Secrets: the engine decrypts ``secure:`` values and hands the program their plaintext, plus the list of secret
keys; a key is secret when its value holds a secure value anywhere, and only whole top-level keys are listed
(pulumi/pulumi v3.259.0 ``sdk/go/common/resource/config/map.go`` ``SecureKeys``; ``source_eval.go`` decrypts).
Offline nothing can be decrypted, so each secure value is replaced by a **stand-in plaintext**, unique and
recognisable (:func:`stand_in`), and its key is listed as secret, exactly as the engine would list it. The
stand-ins let ``keel preview`` find a secret that reaches a registered input unmarked (``keel.engine``).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_STACK_FILE = re.compile(r"^Pulumi\.(?P<stack>[A-Za-z0-9_.\-]+)\.ya?ml$")


class StackError(Exception):
    """An unknown stack, or a stack or project file that is not what Pulumi accepts."""


def usage_message(stack: str, err: Exception) -> str:
    """A user error about ``stack`` as keel prints it: an unknown-stack message already names the stack; config
    problems get it prefixed."""
    return str(err) if isinstance(err, StackError) else f"stack {stack!r}: {err}"


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: ``$KEEL_PROJECT`` or the working folder) holding
    ``Pulumi.yaml``."""
    here = Path(start or os.environ.get("KEEL_PROJECT") or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "Pulumi.yaml").is_file():
            return folder
    raise StackError(f"no Pulumi.yaml in {here} or any folder above it; run keel inside the keel project")


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that names a key twice.

    PyYAML keeps the last of two equal keys without a word; the Pulumi CLI reads stack files with Go's
    ``gopkg.in/yaml.v3``, which refuses them (``mapping key "web" already defined at line 12``). A stack file
    with two ``web:`` services must therefore fail here too, before anything runs, naming both lines."""


def _no_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} at lines {seen[key]} and {line}", key_node.start_mark
            )
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


#: The project's own top-level packages: keel previews the copy of these in the checkout it runs in.
PROJECT_PACKAGES = ("components", "policies")


def use_checkout(root: Path) -> Path:
    """Make ``import components`` (and ``policies``) load the checkout at ``root``, whatever checkout the
    virtualenv's editable install of keel points at; return ``root`` resolved.

    ``root`` goes first on ``sys.path``. A project package that was already imported from somewhere else
    cannot be swapped under a running interpreter: that is a :class:`StackError` naming both places, never a
    preview of the wrong code."""
    root = root.resolve()
    for name in PROJECT_PACKAGES:
        here = (root / name).resolve()
        if not (here / "__init__.py").is_file() and not (here / "__main__.py").is_file():
            raise StackError(f"{root} has no {name}/ folder; run keel inside a whole keel checkout")
        module = sys.modules.get(name)
        loaded = [Path(p).resolve() for p in getattr(module, "__path__", [])]
        if module is not None and here not in loaded:
            raise StackError(
                f"this keel process already loaded {name!r} from {', '.join(map(str, loaded)) or '?'}, not from "
                f"{here}; run keel from that checkout's own virtualenv (`make install` there)"
            )
    if str(root) in sys.path:
        sys.path.remove(str(root))
    sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    return root


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(), Loader=_StrictLoader) or {}  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise StackError(f"{path.name} is not valid YAML{where}: {getattr(err, 'problem', err)}") from None
    if not isinstance(data, dict):
        raise StackError(f"{path.name}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def load_project(root: Path) -> dict[str, Any]:
    project = _read_yaml(root / "Pulumi.yaml")
    if not project.get("name"):
        raise StackError("Pulumi.yaml: 'name' is required")
    return project


def stacks(root: Path) -> list[str]:
    return sorted(m["stack"] for p in root.iterdir() if (m := _STACK_FILE.match(p.name)))


def _stack_file(root: Path, stack: str) -> Path:
    for suffix in ("yaml", "yml"):
        path = root / f"Pulumi.{stack}.{suffix}"
        if path.is_file():
            return path
    known = ", ".join(stacks(root)) or "none"
    raise StackError(f"unknown stack {stack!r}; stacks in this project: {known}")


def _text(value: Any) -> str:
    """A config value as the program receives it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


#: Secure values the leak detector does not follow, and why.
UNGUARDED = {"keel:accountId": "AWS prints the account id in every ARN; it cannot stay secret, only be accepted"}

#: Keys whose value has a fixed shape: their stand-in must pass the program's validation as a real value would.
_STAND_IN_SHAPES = {"keel:accountId": "digits12"}


def stand_in(path: str) -> str:
    """The plaintext keel hands the program for the secure value at config ``path`` (``keel:services.api.env.KEY``):
    deterministic, unique per path, and unlike any value a program would make up itself."""
    digest = hashlib.sha256(path.encode()).hexdigest()
    if _STAND_IN_SHAPES.get(path) == "digits12":
        return "9" + str(int(digest, 16))[:11]
    return f"keel-secret-stand-in-{digest[:16]}"


def _stand_ins(value: Any, path: str, found: dict[str, str]) -> Any:
    """``value`` with each ``{secure: ...}`` replaced by its stand-in; ``found`` maps stand-in -> config path."""
    if isinstance(value, dict):
        if _is_secure(value):
            plaintext = stand_in(path)
            if path not in UNGUARDED:
                found[plaintext] = path
            return plaintext
        return {k: _stand_ins(v, f"{path}.{k}", found) for k, v in value.items()}
    if isinstance(value, list):
        return [_stand_ins(v, f"{path}[{i}]", found) for i, v in enumerate(value)]
    return value


_DECLARED_TYPES = {"string": str, "boolean": bool, "integer": int, "array": list}


@dataclass
class StackConfigFile:
    """What the engine hands a program for one stack, as keel hands it offline."""

    path: Path
    project: dict[str, Any] = field(default_factory=dict)
    """The project (``Pulumi.yaml``) the stack belongs to."""
    config: dict[str, str] = field(default_factory=dict)
    """``namespace:key`` -> text, secure values replaced by their stand-ins."""
    secret_keys: list[str] = field(default_factory=list)
    """The top-level keys holding a secure value, as the engine lists them."""
    stand_ins: dict[str, str] = field(default_factory=dict)
    """Stand-in plaintext -> the config path of the secure value it stands for."""


def load_config(
    root: Path, stack: str, project: dict[str, Any], path: Path | None = None
) -> tuple[dict[str, str], list[str]]:
    """The config map (``namespace:key`` -> text) and the secret keys the program would get for ``stack``."""
    loaded = load_stack(root, stack, project, path=path)
    return loaded.config, loaded.secret_keys


def config_file(path: Path) -> Path:
    """A stack config file named on the command line (``--config-file``); :class:`StackError` when it is not a
    file."""
    if not path.is_file():
        raise StackError(f"--config-file {path}: no such file")
    return path


def load_stack(root: Path, stack: str, project: dict[str, Any], path: Path | None = None) -> StackConfigFile:
    """The config of ``stack`` as the engine hands it to the program (:class:`StackConfigFile`).

    ``path``: read this file instead of ``Pulumi.<stack>.yaml``, as ``pulumi preview --config-file PATH`` does; the
    stack keeps its name (URNs, the policy config it is judged by), only its config comes from ``path``."""
    path = _stack_file(root, stack) if path is None else config_file(path)
    values = _read_yaml(path).get("config") or {}
    if not isinstance(values, dict):
        raise StackError(f"{path.name}: 'config' must be a mapping")
    name = str(project["name"])
    problems: list[str] = []
    merged: dict[str, Any] = {}
    for key, declared in (project.get("config") or {}).items():
        full = key if ":" in key else f"{name}:{key}"
        if isinstance(declared, dict) and "type" in declared:
            if "default" in declared:
                merged[full] = declared["default"]
        elif isinstance(declared, dict) and "value" in declared:
            merged[full] = declared["value"]
        else:
            merged[full] = declared
    merged.update({k if ":" in k else f"{name}:{k}": v for k, v in values.items()})

    for key, declared in (project.get("config") or {}).items():
        if not isinstance(declared, dict) or "type" not in declared:
            continue
        full = key if ":" in key else f"{name}:{key}"
        expected = _DECLARED_TYPES.get(declared["type"])
        if full not in merged:
            problems.append(f"{full}: missing; Pulumi.yaml declares it ({declared['type']}) with no default")
        elif _is_secure(merged[full]):
            # The CLI checks the decrypted value (pulumi/pulumi v3.259.0 pkg/workspace/config.go): a top-level
            # secure value is a string, accepted for `string`, refused for `array`/`object`, and for `integer`/
            # `boolean` accepted only if its plaintext parses, which keel cannot decrypt to check.
            if declared["type"] != "string":
                problems.append(
                    f"{full}: a secure value on a key Pulumi.yaml declares as {declared['type']}; "
                    + (
                        f"the CLI refuses it (must be of type '{declared['type']}')"
                        if declared["type"] in ("array", "object")
                        else "keel cannot decrypt it to check it offline: set it in plain text"
                    )
                )
        elif expected is not None and not _is(merged[full], expected):
            problems.append(f"{full}: got {json.dumps(merged[full])}; Pulumi.yaml declares it as {declared['type']}")
    if problems:
        raise StackError(f"{path.name}: " + "; ".join(problems))

    stack_config = StackConfigFile(path=path, project=project)
    for key, value in merged.items():
        stack_config.config[key] = _text(_stand_ins(value, key, stack_config.stand_ins))
        if _holds_secure(value):
            stack_config.secret_keys.append(key)
    stack_config.secret_keys.sort()
    return stack_config


def _holds_secure(value: Any) -> bool:
    """A secure value anywhere in ``value`` (the engine's ``Value.Secure()`` of an object)."""
    if isinstance(value, dict):
        return _is_secure(value) or any(_holds_secure(v) for v in value.values())
    return isinstance(value, list) and any(_holds_secure(v) for v in value)


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def _is(value: Any, expected: type) -> bool:
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)
