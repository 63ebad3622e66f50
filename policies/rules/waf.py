"""WAF policies: the web ACL in front of the ALB blocks (no rule left counting), keeps its baseline rules, and
reports what it sees."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity

from ._util import as_list, at_most, configured, dig, is_true, number, resource_policy, shown, threshold

WEB_ACL = ("aws:wafv2/webAcl:WebAcl",)
#: AWS's baseline managed rule groups for a web application (AWS WAF Developer Guide, "Baseline rule groups").
BASELINE_GROUPS = (
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
)


def _managed_group(rule: Mapping[str, Any]) -> Mapping[str, Any] | None:
    group = dig(rule, "statement.managedRuleGroupStatement")
    return group if isinstance(group, Mapping) else None


def _blocks(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    for rule in as_list(props.get("rules")):
        name = rule.get("name")
        group = _managed_group(rule)
        if group is not None:
            # overrideAction "count" turns every rule of the group into a count; "none" keeps the group's actions.
            if "none" not in (rule.get("overrideAction") or {}):
                yield f"Rule {name}: the managed rule group must keep its actions (overrideAction: none), not count."
            counted = [
                str(o.get("name"))
                for o in as_list(group.get("ruleActionOverrides"))
                if "count" in (o.get("actionToUse") or {})
            ]
            if counted:
                yield f"Rule {name}: rules overridden to count instead of block: {', '.join(counted)}."
        elif "count" in (rule.get("action") or {}):
            yield f"Rule {name} only counts matching requests; it must block them (action: block)."


def _baseline(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    rules = as_list(props.get("rules"))
    present = {str((_managed_group(r) or {}).get("name")) for r in rules}
    missing = [g for g in configured(args, "managedRuleGroups", list(BASELINE_GROUPS)) if g not in present]
    if missing:
        yield f"The web ACL lacks the baseline managed rule groups: {', '.join(missing)}."
    limits = [dig(r, "statement.rateBasedStatement.limit") for r in rules if dig(r, "statement.rateBasedStatement")]
    ceiling = threshold(args, "maximumRateLimit", 10000)
    if not limits:
        yield "The web ACL must rate-limit per client IP (a rateBasedStatement; keel:ingress.waf.rateLimitPer5Min)."
    elif not any(at_most(limit, ceiling, "limit") for limit in limits):
        yield (
            f"The per-IP rate limit ({', '.join(str(shown(x)) for x in limits)} per 5 minutes) is above "
            f"{number(ceiling)}: it stops nothing."
        )


def _visibility(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    blind = [
        str(item.get("name", "the web ACL"))
        for item in (props, *as_list(props.get("rules")))
        if not is_true(dig(item, "visibilityConfig.cloudwatchMetricsEnabled"))
        or not is_true(dig(item, "visibilityConfig.sampledRequestsEnabled"))
    ]
    if blind:
        yield f"Metrics and sampled requests must be on (visibilityConfig) for: {', '.join(blind)}."


POLICIES = [
    resource_policy(
        "aws-wafv2-web-acl-rules-block",
        "Managed rule groups and rate rules block; none is left counting.",
        Severity.HIGH,
        "Set overrideAction: none on managed groups, action: block on own rules, and no count overrides.",
        WEB_ACL,
        _blocks,
    ),
    resource_policy(
        "aws-wafv2-web-acl-baseline-rules",
        "The web ACL keeps AWS's baseline rule groups and a per-IP rate limit.",
        Severity.HIGH,
        "Keep components/ingress.py's rules (the three baseline groups and the rate rule).",
        WEB_ACL,
        _baseline,
        {
            "managedRuleGroups": {"type": "array", "items": {"type": "string"}},
            "maximumRateLimit": {"type": "integer", "minimum": 100, "default": 10000},
        },
    ),
    resource_policy(
        "aws-wafv2-web-acl-visibility",
        "The web ACL and each rule publish metrics and sampled requests.",
        Severity.MEDIUM,
        "Set visibilityConfig.cloudwatchMetricsEnabled and sampledRequestsEnabled to true.",
        WEB_ACL,
        _visibility,
    ),
]
