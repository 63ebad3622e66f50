"""What every config section shares: the base model :class:`Section`, :class:`ConfigError`, :func:`shown` (how
an error message shows a bad value), :data:`LogRetentionDays`, :func:`check_pattern` and the patterns more than one
section checks values against."""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
from collections.abc import Collection
from typing import Annotated, Any

import pulumi
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

#: Retention values CloudWatch Logs accepts (``PutRetentionPolicy``), in days.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)

#: The RFC 1918 private IPv4 blocks.
RFC1918_BLOCKS = tuple(ipaddress.IPv4Network(b) for b in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
#: An AWS region name (``us-east-1``).
REGION_NAME = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
#: A lowercase domain or host name (``example.com``).
DOMAIN_NAME = re.compile(r"^(?=.{4,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
#: A Route 53 hosted zone id (``Z0123456789ABC``).
HOSTED_ZONE_ID = re.compile(r"^Z[A-Z0-9]{1,31}$")
_MAX_SHOWN = 60


class ConfigError(pulumi.RunError):
    """Invalid stack config. ``problems`` holds one ``keel:<path>: ...`` line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid stack config ({len(problems)} problem(s)):\n{lines}")


def shown(value: Any) -> str:
    """A bad value as the error message shows it: JSON-like, cut to a readable length."""
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _log_retention(value: int) -> int:
    if value not in LOG_RETENTION_DAYS:
        raise ValueError(f"got {value}; allowed: {', '.join(map(str, LOG_RETENTION_DAYS))}")
    return value


#: Days a CloudWatch log group keeps events: one of the values CloudWatch accepts (the JSON Schema lists them).
LogRetentionDays = Annotated[
    int, AfterValidator(_log_retention), Field(json_schema_extra={"enum": list(LOG_RETENTION_DAYS)})
]


class Section(BaseModel):
    """Base for every config section: camelCase keys, unknown keys rejected, strict types, immutable. A field's
    docstring is its description in the JSON Schema ``keel schema`` writes: ``keel.schema`` reads the docstrings
    when it writes the schema. Not ``use_attribute_docstrings``, which reads each model's source as it is defined
    and took 0.45 s of every preview for descriptions only the schema uses (validation never reads them)."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=False,
        strict=True,
        frozen=True,
    )


def check_pattern(value: str, pattern: re.Pattern[str], expected: str) -> str:
    """``value`` if ``pattern`` matches it; else a ``got <value>; expected <expected>`` error."""
    if not pattern.match(value):
        raise ValueError(f"got {shown(value)}; expected {expected}")
    return value


def not_listed(value: str, allowed: Collection[str], what: str, example: str) -> str:
    """The error for ``value`` missing from ``allowed``: ``got 'm5.huge'; not <what>; did you mean 'm5.large'?``
    (the closest entry, by :func:`difflib.get_close_matches`), or ``...; for example '<example>'`` when nothing is
    close."""
    close = difflib.get_close_matches(value, list(allowed), n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"for example {example!r}"
    return f"got {shown(value)}; not {what}; {hint}"
