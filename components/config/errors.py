"""The error renderer: one pydantic validation error as ``keel:<path>: got <value>; <what is allowed>``
(:func:`describe`), found by walking the error's location through the models' fields."""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Union

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from components.config.base import shown
from components.config.stack import NAMESPACE, NOT_CONFIG, StackConfig


def describe(error: Any) -> str:
    """One pydantic error as ``keel:<path>: got <value>; <what is allowed>``."""
    loc: tuple[Any, ...] = tuple(error["loc"])
    path = _path(loc)
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    field = _field_at(loc)
    if kind == "extra_forbidden":
        keys = _keys_at(loc[:-1])
        return f"{path}: unknown key; allowed keys: {', '.join(keys)}"
    if kind == "missing":
        return f"{path}: required key is missing"
    if kind == "literal_error":
        return f"{path}: got {shown(value)}; allowed: {ctx.get('expected')}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return f"{path}: got {shown(value)}; allowed: {_bounds(field, ctx)}"
    if kind == "value_error":
        return f"{path}: {str(error['msg']).removeprefix('Value error, ')}"
    expected = {
        "int_type": "a whole number",
        "bool_type": "true or false",
        "string_type": "a string",
        "dict_type": "a mapping",
        "list_type": "a list",
        "model_type": "a mapping",
        "model_attributes_type": "a mapping",
    }.get(kind)
    if expected:
        return f"{path}: got {shown(value)}; expected {expected}"
    return f"{path}: got {shown(value)}; {error['msg']}"


def _path(loc: tuple[Any, ...]) -> str:
    if not loc:
        return f"{NAMESPACE}:"
    head, *rest = loc
    out = NOT_CONFIG.get(str(head)) or f"{NAMESPACE}:{head}"
    for part in rest:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _bounds(field: FieldInfo | None, ctx: Mapping[str, Any]) -> str:
    low = high = None
    for meta in field.metadata if field else ():
        if isinstance(meta, annotated_types.Ge):
            low = meta.ge
        elif isinstance(meta, annotated_types.Le):
            high = meta.le
    if low is not None and high is not None:
        return f"{low} to {high}"
    return ", ".join(f"{'>=' if k == 'ge' else '<=' if k == 'le' else k} {v}" for k, v in ctx.items())


def _model_in(annotation: Any) -> Any:
    """The model class inside ``Model``, ``Model | None``, ``dict[str, Model]`` or ``list[Model]``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType, list, dict, Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _walk(loc: tuple[Any, ...]) -> tuple[type[BaseModel] | None, FieldInfo | None]:
    """Follow a pydantic error location (aliases) through the models to the last field."""
    model: type[BaseModel] | None = StackConfig
    field: FieldInfo | None = None
    dict_key_next = False
    for part in loc:
        if model is None:
            return None, None
        if isinstance(part, int) or dict_key_next:
            dict_key_next = False  # a list index or a mapping key: same model, next part is a field
            continue
        by_alias = {f.alias or n: f for n, f in model.model_fields.items()}
        field = by_alias.get(str(part))
        if field is None:
            return None, None
        model = _model_in(field.annotation)
        dict_key_next = typing.get_origin(field.annotation) is dict
    return model, field


def _field_at(loc: tuple[Any, ...]) -> FieldInfo | None:
    return _walk(loc)[1]


def _keys_at(loc: tuple[Any, ...]) -> list[str]:
    model = _walk(loc)[0] if loc else StackConfig
    if model is None:
        return []
    return sorted(f.alias or n for n, f in model.model_fields.items() if n not in NOT_CONFIG)
