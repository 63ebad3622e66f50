"""Small helpers so each policy is its check and its words: type matching, enforcement by severity, lookups."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

Check = Callable[[Mapping[str, Any], ResourceValidationArgs], Iterable[str] | None]
StackCheck = Callable[[Sequence[PolicyResource], StackValidationArgs], Iterable[str | tuple[str, str]] | None]

#: Every stack type token of a kind keel judges, current and deprecated (both are matched).
S3_BUCKET = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")


def schema(properties: Mapping[str, Any] | None) -> PolicyConfigSchema | None:
    """A config schema from JSON-schema ``properties`` (what the policy reads from the pack config)."""
    return None if properties is None else PolicyConfigSchema(properties=dict(properties))


def enforcement(severity: Severity) -> EnforcementLevel:
    """Critical and high findings block a deployment; the rest advise."""
    return EnforcementLevel.MANDATORY if severity in (Severity.CRITICAL, Severity.HIGH) else EnforcementLevel.ADVISORY


def resource_policy(
    name: str,
    description: str,
    severity: Severity,
    remediation: str,
    types: Sequence[str],
    check: Check,
    config_schema: Any = None,
) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if args.resource_type not in types:
            return
        for message in check(args.props, args) or ():
            report(message, None)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=enforcement(severity),
        severity=severity,
        remediation_steps=remediation,
        config_schema=schema(config_schema),
    )


def stack_policy(
    name: str, description: str, severity: Severity, remediation: str, check: StackCheck, config_schema: Any = None
) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        for finding in check(args.resources, args) or ():
            if isinstance(finding, tuple):
                report(finding[1], finding[0])
            else:
                report(finding, None)

    return StackValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=enforcement(severity),
        severity=severity,
        remediation_steps=remediation,
        config_schema=schema(config_schema),
    )


def dig(value: Any, path: str, default: Any = None) -> Any:
    """``dig(props, "metadataOptions.httpTokens")``; list indexes are numbers (``rules.0.id``)."""
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif _is_list(value) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return default
    return value


def _is_list(value: Any) -> bool:
    """Lists, tuples and pulumi-policy's read-only list proxies (strings are not lists)."""
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def number(value: Any) -> Any:
    """A number as a message shows it. Numbers reach a pack as protobuf doubles (the engine sends properties and
    policy config as a Struct), so a port 443 arrives as 443.0: show integral ones without the ``.0``."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if _is_list(value) else [value]


def document(value: Any) -> Mapping[str, Any]:
    """A policy document input, parsed (it may already be an object)."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return {}
        return parsed if isinstance(parsed, Mapping) else {}
    return value if isinstance(value, Mapping) else {}


def statements(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in as_list(doc.get("Statement")) if isinstance(s, Mapping)]


def of_type(resources: Iterable[PolicyResource], *types: str) -> list[PolicyResource]:
    return [r for r in resources if r.resource_type in types]


def referenced(resource: PolicyResource, prop: str) -> list[PolicyResource]:
    """The resources one property of ``resource`` was built from (its property dependencies)."""
    return list(resource.property_dependencies.get(prop, []))


def configured(args: ResourceValidationArgs | StackValidationArgs, key: str, default: Any) -> Any:
    config = args.get_config() or {}
    return config.get(key, default)
