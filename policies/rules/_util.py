"""Small helpers so each policy is its check and its words: type matching, enforcement by severity, lookups, and
the comparisons of values as the engine hands them to a pack.

Engine-shaped values, handled here once rather than in each policy:

- **numbers** arrive as protobuf doubles (the engine marshals properties and policy config into a
  ``google.protobuf.Struct``; pulumi/pulumi v3.259.0 ``pkg/resource/plugin/analyzer_plugin.go``), so ``0`` is
  ``0.0`` and ``str(0.0) != "0"``; some provider inputs are numbers typed as strings (``"60"``). :func:`num`
  reads all three, :func:`at_least` / :func:`at_most` compare;
- **booleans** are ``True``/``False``, but Terraform-bridged string flags (launch template ``encrypted``,
  ``deleteOnTermination``) are ``"true"``/``"false"``: :func:`flag` reads both;
- **unknowns** during preview are sentinel strings; pulumi-policy 1.21.0 (``pulumi_policy/proxy.py``) wraps the
  properties so reading one raises ``UnknownValueError`` and the whole policy reports "can't run during preview"
  as advisory (it runs again, on known values, during ``pulumi up``). :func:`dig` and the readers go through that
  proxy, so no helper turns an unknown into a verdict;
- **secrets** reach a validating policy as their plaintext (``deserialize_properties`` without secret proxies);
  a saved ``keel preview --json`` masks them as ``[secret]``. Reading the mask as a number or flag raises
  :class:`Masked`, so the policy is reported as not run rather than guessing from the mask.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections import Counter
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
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

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
    """A number as a message shows it: integral doubles without the ``.0`` (a port 443 arrives as 443.0)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


#: How ``keel preview --json`` shows a secret (pulumi's own ``--json`` shows ``[secret]`` too).
SECRET_SHOWN = "[secret]"  # noqa: S105 (a mask, not a password)


class Masked(UnknownValueError):
    """A secret whose value a saved preview does not hold: the policy cannot judge it, as with an unknown."""

    def __init__(self, what: str) -> None:
        super().__init__(UNKNOWN_STRING_VALUE, [what])
        self.message = f"{what} is a secret the saved preview masks ({SECRET_SHOWN}); run on a live preview"


def num(value: Any, what: str = "value") -> float | None:
    """A number from a double, an int or a numeric string; None when absent or not a number (booleans are not
    numbers). ``what`` names the value if it is a masked secret."""
    if value == SECRET_SHOWN:
        raise Masked(what)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def at_least(value: Any, minimum: float, what: str = "value") -> bool:
    """True when ``value`` is a number no lower than ``minimum`` (absent or non-numbers fail)."""
    n = num(value, what)
    return n is not None and n >= minimum


def at_most(value: Any, maximum: float, what: str = "value") -> bool:
    """True when ``value`` is a number no higher than ``maximum`` (absent or non-numbers fail)."""
    n = num(value, what)
    return n is not None and n <= maximum


def flag(value: Any, what: str = "value") -> bool | None:
    """A boolean from ``True``/``False`` or a Terraform string flag (``"true"``/``"false"``); None when absent or
    anything else."""
    if value == SECRET_SHOWN:
        raise Masked(what)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def is_true(value: Any, what: str = "value") -> bool:
    return flag(value, what) is True


def is_false(value: Any, what: str = "value") -> bool:
    return flag(value, what) is False


def shown(value: Any) -> Any:
    """A setting as a message shows it: a number without ``.0``, ``unset`` when absent, else the value itself."""
    n = num(value)
    return "unset" if value is None else number(n) if n is not None else value


def days(value: Any) -> str:
    """``1 day``, ``7 days`` (integral doubles without the ``.0``)."""
    return f"{number(value)} day" + ("" if value == 1 else "s")


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


#: Condition keys that tie a statement to known principals or sources, so a ``"*"`` principal is not public.
#: The first six are those Amazon S3 accepts as making a policy non-public when fixed (S3 API Reference,
#: ``PublicAccessBlockConfiguration``: aws:SourceArn, aws:SourceVpc, aws:SourceVpce, aws:SourceOwner,
#: aws:SourceAccount, aws:userid); keel adds the principal-side keys that pin an account or organization
#: (aws:PrincipalArn, aws:PrincipalAccount, aws:PrincipalOrgID) and KMS's ``kms:CallerAccount``. ``aws:SourceIp``
#: is left out on purpose: a fixed public CIDR still opens the resource to an address range of the internet.
RESTRICTING_KEYS = frozenset(
    k.lower()
    for k in (
        "aws:SourceArn",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:SourceOwner",
        "aws:SourceAccount",
        "aws:userid",
        "aws:PrincipalArn",
        "aws:PrincipalAccount",
        "aws:PrincipalOrgID",
        "kms:CallerAccount",
    )
)


def principals(statement: Mapping[str, Any]) -> list[Any]:
    """Every principal a statement names (``"*"``, or the values of ``{"AWS": ..., "Service": ...}``)."""
    principal = statement.get("Principal")
    if isinstance(principal, Mapping):
        return [v for vs in principal.values() for v in as_list(vs)]
    return as_list(principal)


def aws_principals(statement: Mapping[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    return [str(p) for p in as_list(principal.get("AWS"))] if isinstance(principal, Mapping) else []


def service_principals(statement: Mapping[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    return [str(p) for p in as_list(principal.get("Service"))] if isinstance(principal, Mapping) else []


def pins(statement: Mapping[str, Any]) -> set[str]:
    """Condition keys (lower case) that pin a statement to named values: under a positive operator (not
    ``...Not...``, not ``...IfExists``) with no wildcard in their values."""
    return {
        str(key).lower()
        for operator, clauses in (statement.get("Condition") or {}).items()
        if "Not" not in operator and not operator.endswith("IfExists") and isinstance(clauses, Mapping)
        for key, values in clauses.items()
        if all("*" not in str(v) for v in as_list(values))
    }


def public_statements(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Allow statements of a resource policy that any principal may use: ``"*"`` (or ``{"AWS": "*"}``) or
    ``NotPrincipal`` with no restricting condition."""
    return [
        st
        for st in statements(doc)
        if st.get("Effect") == "Allow"
        and ("*" in principals(st) or "NotPrincipal" in st)
        and not pins(st) & RESTRICTING_KEYS
    ]


def sid(statement: Mapping[str, Any]) -> str:
    return str(statement.get("Sid") or "(no Sid)")


def public_cidr(cidr: Any) -> bool:
    """A CIDR that reaches beyond private address space (``0.0.0.0/0``, ``0.0.0.0/1``, ``8.0.0.0/7``, ``::/0``):
    any range that is not wholly private (RFC 1918, CGNAT, link-local, ULA) counts as the internet."""
    try:
        network = ipaddress.ip_network(str(cidr), strict=False)
    except ValueError:
        return False
    shared = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT, not routable on the internet
    return not network.is_private and not (isinstance(network, ipaddress.IPv4Network) and network.subnet_of(shared))


_ACCOUNT_IN_ARN = re.compile(r"arn:aws[\w-]*:[\w-]+:[\w-]*:(\d{12}):")


def account_of(arn: Any) -> str | None:
    """The account of an ARN (``arn:aws:iam::123456789012:root``), or of a bare account id."""
    text = str(arn)
    if re.fullmatch(r"\d{12}", text):
        return text
    found = _ACCOUNT_IN_ARN.match(text)
    return found.group(1) if found else None


def stack_account(resources: Iterable[PolicyResource]) -> str | None:
    """The account the stack deploys to: the one most ARNs in its inputs name (keys, roles, topics...). A pack is
    not told its account; the resources' own ARNs say it. Unknown values are skipped, not judged."""
    counts: Counter[str] = Counter()
    for resource in resources:
        for text in _strings(resource.props):
            counts.update(_ACCOUNT_IN_ARN.findall(text))
    return counts.most_common(1)[0][0] if counts else None


def _strings(value: Any) -> Iterable[str]:
    """Every string leaf of a property tree, skipping the unknown ones (their lookups raise)."""
    if isinstance(value, str):
        yield value
        return
    if isinstance(value, Mapping):
        keys: Iterable[Any] = list(value)
    elif _is_list(value):
        keys = range(len(value))
    else:
        return
    for key in keys:
        try:
            child = value[key]
        except UnknownValueError:
            continue
        yield from _strings(child)


def of_type(resources: Iterable[PolicyResource], *types: str) -> list[PolicyResource]:
    return [r for r in resources if r.resource_type in types]


def referenced(resource: PolicyResource, prop: str) -> list[PolicyResource]:
    """The resources one property of ``resource`` was built from (its property dependencies)."""
    return list(resource.property_dependencies.get(prop, []))


def configured(args: ResourceValidationArgs | StackValidationArgs, key: str, default: Any) -> Any:
    config = args.get_config() or {}
    return config.get(key, default)


def threshold(args: ResourceValidationArgs | StackValidationArgs, key: str, default: float) -> float:
    """A numeric setting of the policy's config (a double from the engine), ``default`` when it is not set."""
    value = num(configured(args, key, default), key)
    return default if value is None else value
