"""The JSON Schema of a whole ``Pulumi.<stack>.yaml`` file, written by ``keel schema`` from the typed model.

Usage::

    keel schema                                     # print it
    keel schema --output keel/data/stack.schema.json   # what the repository ships (a test keeps it current)

The shipped stack files name it on their first line, ``# yaml-language-server: $schema=keel/data/stack.schema.json``
(a path relative to the file), so an editor with the YAML language server completes keys, shows each field's
docstring and default, and flags unknown keys, wrong types, out-of-range numbers and values outside a fixed list
while the file is typed. It describes the YAML as written: ``config`` holds ``aws:region`` and one ``keel:<key>`` per
key of :class:`~components.config.StackConfig`, each the model's own JSON Schema (``model_json_schema(by_alias=
True)``: camelCase keys, ``additionalProperties: false``, bounds, enums, defaults, field docstrings as
descriptions), narrowed by what ``Pulumi.yaml`` declares (its defaults are the schema's). A top-level key is a value or
absent, never ``null``. Other namespaces (``aws:profile``, ``pulumi:tags``) pass unchecked, as the program ignores them.

What it cannot say, ``keel validate STACK`` does (the same validation as the program, in about a second): rules
written as validators (CIDRs, ARNs, the EC2 instance-type list, which follows the installed botocore) and the
cross-section and environment rules.

Secrets: a ``{secure: ...}`` value is allowed exactly where keel keeps one secret (:data:`SECURE_AT`, one entry per
key of :data:`components.config.SECRET_CAPABLE`); anywhere else the schema flags it, as ``keel validate`` refuses it.
The other top-level keys are those of the Pulumi CLI's ``ProjectStack`` (pulumi/pulumi
``sdk/go/common/workspace/project.go``): ``secretsprovider``, ``encryptedkey``, ``encryptionsalt``, ``config`` and
``environment`` (Pulumi ESC environments: a list of names, or an inline definition).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic.json_schema import GenerateJsonSchema

#: The schema the repository ships (the stack files' ``$schema``).
SCHEMA_PATH = Path(__file__).resolve().parent / "data" / "stack.schema.json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: The modeline the YAML language server reads, as the first line of a stack file (``{path}`` relative to the file).
MODELINE = "# yaml-language-server: $schema={path}"

#: Where a ``{secure: ...}`` value may stand inside each key of :data:`components.config.SECRET_CAPABLE`: a path into
#: the key's value, ``*`` for any mapping key (``("*", "env", "*")`` would be every value of every service's ``env``).
#: A key added to ``SECRET_CAPABLE`` needs its entry here; a test says so.
SECURE_AT: dict[str, tuple[str, ...]] = {"accountId": ()}

_SECURE = {
    "type": "object",
    "description": (
        "An encrypted value, as `pulumi config set --secret` writes it. The engine hands the program the plaintext "
        "and marks the whole key secret; keel keeps secure values only where it keeps them secret."
    ),
    "properties": {"secure": {"type": "string", "description": "The ciphertext."}},
    "required": ["secure"],
    "additionalProperties": False,
}

_STACK_KEYS = {
    "secretsprovider": {
        "type": "string",
        "description": "This stack's secrets provider (`awskms://alias/keel-pulumi-secrets?region=us-east-1`).",
    },
    "encryptedkey": {
        "type": "string",
        "description": "The KMS-encrypted data key of a cloud secrets provider (written by `pulumi stack init`).",
    },
    "encryptionsalt": {
        "type": "string",
        "description": "The encryption salt of the passphrase secrets provider (written by `pulumi stack init`).",
    },
    "environment": {
        "description": "Pulumi ESC environments this stack imports: a list of names, or an inline definition.",
        "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "object"}],
    },
}


class _NoFieldTitles(GenerateJsonSchema):
    """pydantic's generator without the titles it derives from field names (``Availabilityzones``): the
    descriptions say more."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def _text(doc: str) -> str:
    """A docstring as an editor shows it: Sphinx roles and ````code```` as Markdown code, wrapped lines joined."""
    doc = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", doc).replace("``", "`")
    return re.sub(r"(?<!\n)\n(?!\n)", " ", doc).strip()


def _tidy(node: Any) -> Any:
    """Every ``description`` in a schema through :func:`_text`."""
    if isinstance(node, dict):
        return {k: _text(v) if k == "description" and isinstance(v, str) else _tidy(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_tidy(v) for v in node]
    return node


def _resolve(node: dict[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    return defs[ref.removeprefix("#/$defs/")] if isinstance(ref, str) else node


def _allow_secure(node: dict[str, Any], path: Sequence[str], defs: dict[str, Any]) -> None:
    """Let the schema at ``path`` under ``node`` also be a ``{secure: ...}`` value (in place)."""
    if not path:
        inner = {k: v for k, v in node.items() if k not in ("description", "default")}
        for key in list(inner):
            del node[key]
        node["anyOf"] = [inner, {"$ref": "#/$defs/Secure"}]
        return
    here = _resolve(node, defs)
    head, rest = path[0], path[1:]
    child = here["additionalProperties"] if head == "*" else here["properties"][head]
    _allow_secure(_resolve(child, defs) if rest else child, rest, defs)


def _without_null(node: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [X, null]`` as ``X``, for a top-level key: a section is set or left out (``keel:cluster: null``
    would pass keel's validation as no cluster, but nobody writes it, and without the ``null`` branch an editor
    reports the real mistake inside the section); a key ``Pulumi.yaml`` declares with a type is never null."""
    options = [o for o in node.get("anyOf", []) if o != {"type": "null"}]
    if "anyOf" not in node or len(options) != 1:
        return node
    out = {k: v for k, v in node.items() if k not in ("anyOf", "default")}
    return {**options[0], **out}


def _described(models: Sequence[type[Any]]) -> None:
    """Give every field of ``models`` (and the models their fields use) its docstring as its description, as
    pydantic's ``use_attribute_docstrings`` would have when the model was defined, with pydantic's own reader
    (``pydantic/_internal/_docs_extraction.py``, its ``inspect`` path), then rebuild each model so its JSON Schema has
    them. Once per process: only for the schema, so a preview never pays for reading the models' source."""
    from pydantic import BaseModel
    from pydantic._internal._docs_extraction import extract_docstrings_from_cls

    seen: list[type[BaseModel]] = []

    def visit(model: type[BaseModel]) -> None:
        if model in seen:
            return
        for field in model.model_fields.values():
            for kind in _models_in(field.annotation):
                visit(kind)
        seen.append(model)  # after the models it uses, so each is rebuilt after them

    def _models_in(annotation: Any) -> list[type[BaseModel]]:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return [annotation]
        return [m for arg in getattr(annotation, "__args__", ()) for m in _models_in(arg)]

    for model in models:
        visit(model)
    for model in seen:
        if getattr(model, "__keel_described__", False):
            continue
        docs = extract_docstrings_from_cls(model, use_inspect=True)
        for name, field in model.model_fields.items():
            if field.description is None and name in docs:
                field.description = docs[name]
        model.model_rebuild(force=True)
        model.__keel_described__ = True  # type: ignore[attr-defined]


def schema(project: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Schema of a stack file of ``project`` (the parsed ``Pulumi.yaml``)."""
    from components.config import SECRET_CAPABLE, StackConfig, config_keys
    from components.config.base import REGION_NAME
    from components.config.stack import NAMESPACE

    _described([StackConfig])
    model = StackConfig.model_json_schema(by_alias=True, schema_generator=_NoFieldTitles)
    defs: dict[str, Any] = copy.deepcopy(model.get("$defs", {}))
    fields = model["properties"]
    name = str(project["name"])
    declared = {
        (k if ":" in k else f"{name}:{k}"): v
        for k, v in (project.get("config") or {}).items()
        if isinstance(v, dict) and "type" in v
    }
    keys: dict[str, Any] = {
        "aws:region": {
            "type": "string",
            "pattern": REGION_NAME.pattern,
            "description": fields["region"].get("description", "The AWS region."),
        }
    }
    required = ["aws:region"]
    for key in config_keys():
        full = f"{NAMESPACE}:{key}"
        node = _without_null(copy.deepcopy(fields[key]))
        if full in declared:
            if "default" in declared[full]:
                node["default"] = declared[full]["default"]
            else:
                required.append(full)
            if "description" not in node and declared[full].get("description"):
                node["description"] = declared[full]["description"]
        if key in SECRET_CAPABLE:
            if key not in SECURE_AT:
                raise KeyError(f"keel/schema.py SECURE_AT: no place for the secure values of keel:{key}")
            _allow_secure(node, SECURE_AT[key], defs)
        keys[full] = node
    defs["Secure"] = _SECURE
    config = {
        "type": "object",
        "description": (
            "The stack's config: `aws:region`, the `keel:` keys (Stack config in README.md) and other packages' "
            "keys, which keel passes through unchecked. Validate a file with `keel validate STACK`."
        ),
        "properties": keys,
        "patternProperties": {f"^(?!{NAMESPACE}:)[A-Za-z0-9_.-]+:.+$": {}},
        "additionalProperties": False,
        "required": required,
    }
    return _tidy(
        {
            "$schema": DIALECT,
            "title": f"Pulumi.<stack>.yaml of the {name} project",
            "description": (
                "A Pulumi stack file of keel, generated by `keel schema` from components/config (StackConfig) and "
                "Pulumi.yaml. Editors with the YAML language server read it from the file's first line."
            ),
            "type": "object",
            "properties": {**_STACK_KEYS, "config": config},
            "required": ["config"],
            "additionalProperties": False,
            "$defs": dict(sorted(defs.items())),
        }
    )


def render(project: Mapping[str, Any]) -> str:
    """The schema as the repository ships it: two-space JSON and a final newline."""
    return json.dumps(schema(project), indent=2, ensure_ascii=False) + "\n"


def modeline(stack_file: Path, schema_path: Path = SCHEMA_PATH) -> str:
    """The first line ``stack_file`` carries: the schema's path relative to the file's folder."""
    import os

    relative = os.path.relpath(schema_path.resolve(), stack_file.resolve().parent)
    return MODELINE.format(path=Path(relative).as_posix())


def main(args: argparse.Namespace, root: Path) -> int:
    """``keel schema [--output PATH]``."""
    from keel import stackfiles

    text = render(stackfiles.load_project(root))
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0
