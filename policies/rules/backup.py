"""Backup and alerting policies: every stateful resource is in a backup selection, vaults are encrypted and locked,
backups leave the region, alarms notify someone."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from ._util import (
    S3_BUCKET,
    as_list,
    at_least,
    days,
    dig,
    is_false,
    num,
    number,
    of_type,
    referenced,
    resource_policy,
    stack_policy,
    threshold,
)

VAULT = "aws:backup/vault:Vault"
LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"
PLAN = "aws:backup/plan:Plan"
SELECTION = "aws:backup/selection:Selection"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"

#: Resources that hold data AWS Backup can protect. ElastiCache is not among them: it keeps its own snapshots
#: (``aws-elasticache-snapshot-retention``).
BACKED_UP = (
    "aws:rds/instance:Instance",
    "aws:rds/cluster:Cluster",
    "aws:dynamodb/table:Table",
    "aws:efs/fileSystem:FileSystem",
    *S3_BUCKET,
)

#: A resource that is deliberately not backed up says why in this tag.
EXEMPT_TAG = "keel.dev/backup-exempt"

#: An ARN of each type, to test a selection's ``resources`` patterns against.
_SAMPLE_ARN = {
    "aws:rds/instance:Instance": "arn:aws:rds:region:account:db:name",
    "aws:rds/cluster:Cluster": "arn:aws:rds:region:account:cluster:name",
    "aws:dynamodb/table:Table": "arn:aws:dynamodb:region:account:table/name",
    "aws:efs/fileSystem:FileSystem": "arn:aws:elasticfilesystem:region:account:file-system/name",
    **{kind: "arn:aws:s3:::name" for kind in S3_BUCKET},
}
_RESOURCE_TAG = "aws:ResourceTag/"


def _tag_matches(tags: Mapping[str, Any], key: Any, value: Any, like: bool) -> bool:
    if key not in tags:
        return False
    return fnmatch.fnmatchcase(str(tags[key]), str(value)) if like else tags[key] == value


def selects(selection: Mapping[str, Any], kind: str, tags: Mapping[str, Any]) -> bool:
    """Whether one backup selection picks up a resource of ``kind`` with ``tags``: any of its ``selectionTags``
    (OR), or its ``resources`` patterns (the type) and every one of its ``conditions`` (AND)."""
    for tag in as_list(selection.get("selectionTags")):
        if _tag_matches(tags, tag.get("key"), tag.get("value"), tag.get("type") == "STRINGLIKE"):
            return True
    patterns = [str(p) for p in as_list(selection.get("resources"))]
    conditions = [
        (str(c.get("key", "")).removeprefix(_RESOURCE_TAG), c.get("value"), like)
        for block in as_list(selection.get("conditions"))
        for like, field in ((False, "stringEquals"), (True, "stringLikes"))
        for c in as_list(block.get(field))
    ]
    sample = _SAMPLE_ARN.get(kind, "")
    # any partition: compare the patterns as if they were written for "aws"
    typed = any(fnmatch.fnmatchcase(sample, re.sub(r"^arn:[^:*]+:", "arn:aws:", p)) for p in patterns)
    excluded = any(
        fnmatch.fnmatchcase(sample, re.sub(r"^arn:[^:*]+:", "arn:aws:", str(p)))
        for p in as_list(selection.get("notResources"))
    )
    return typed and not excluded and all(_tag_matches(tags, key, value, like) for key, value, like in conditions)


def _selected(kind: str, tags: Mapping[str, Any], selections: Sequence[PolicyResource]) -> bool:
    return any(selects(selection.props, kind, tags) for selection in selections)


def _stateful_selected(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    plans = {p.urn for p in of_type(resources, PLAN)}
    selections = []
    for selection in of_type(resources, SELECTION):
        # A selection whose plan is gone backs nothing up: planId came from a plan (the dependency is there)
        # that the stack no longer has. A literal planId (no dependency) is not judged.
        literal = "planId" not in selection.property_dependencies
        if literal or any(p.urn in plans for p in referenced(selection, "planId")):
            selections.append(selection)
        else:
            yield selection.urn, f"Backup selection {selection.name} belongs to no backup plan of the stack."
    for resource in resources:
        if resource.resource_type not in BACKED_UP:
            continue
        tags = dict(resource.props.get("tags") or {})
        if str(tags.get(EXEMPT_TAG) or "").strip() or _selected(resource.resource_type, tags, selections):
            continue
        yield (
            resource.urn,
            f"Stateful resource {resource.name} ({resource.resource_type}) is in no backup selection: give it the "
            f"plan's tag (keel.dev/backup=<plan>), or say why not in a {EXEMPT_TAG} tag.",
        )


MINIMUM_DAYS = {"minimumDays": {"type": "integer", "minimum": 1, "default": 7}}


def _vault_kms(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if not props.get("kmsKeyArn"):
        yield "Backup vaults must encrypt recovery points with a customer-managed KMS key (kmsKeyArn)."


def _vaults_locked(resources: Sequence[PolicyResource], args: StackValidationArgs) -> Iterable[tuple[str, str]]:
    minimum = threshold(args, "minimumDays", 7)
    locks = {str(lock.props.get("backupVaultName")): lock for lock in of_type(resources, LOCK)}
    for vault in of_type(resources, VAULT):
        lock = locks.get(str(vault.props.get("name")))
        if lock is None:
            yield vault.urn, f"Backup vault {vault.name} has no Vault Lock: its recovery points can be deleted early."
        elif not at_least(lock.props.get("minRetentionDays"), minimum, "minRetentionDays"):
            yield (
                lock.urn,
                f"The Vault Lock of {vault.name} must keep recovery points at least {days(minimum)} "
                "(minRetentionDays).",
            )


def _plan_retention(resources: Sequence[PolicyResource], args: StackValidationArgs) -> Iterable[tuple[str, str]]:
    minimum = threshold(args, "minimumDays", 7)
    for plan in of_type(resources, PLAN):
        for rule in as_list(plan.props.get("rules")):
            kept = [rule.get("lifecycle"), *[a.get("lifecycle") for a in as_list(rule.get("copyActions"))]]
            short = [k for k in kept if not at_least((k or {}).get("deleteAfter"), minimum, "deleteAfter")]
            if short:
                yield (
                    plan.urn,
                    f"Backup plan {plan.name}: rule {rule.get('ruleName')} (or a copy of it) keeps recovery points "
                    f"less than {days(minimum)}, or forever without a lifecycle; set lifecycle.deleteAfter.",
                )


def _region_of(resource: PolicyResource) -> str:
    provider = resource.provider
    return str(provider.props.get("region") or "") if provider is not None else ""


def _arn_region(arn: Any) -> str:
    """The region of an ARN (``arn:<partition>:<service>:<region>:...``), empty when there is none."""
    parts = str(arn or "").split(":")
    return parts[3] if len(parts) > 3 else ""


def _copies_elsewhere(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    for plan in of_type(resources, PLAN):
        home = _region_of(plan)
        for rule in as_list(plan.props.get("rules")):
            regions = {_arn_region(action.get("destinationVaultArn")) for action in as_list(rule.get("copyActions"))}
            if not regions - {"", home}:
                yield (
                    plan.urn,
                    f"Backup plan {plan.name}: rule {rule.get('ruleName')} copies nothing to another region "
                    "(keel:backup.copyRegion).",
                )


def _how_rarely(schedule: Any) -> str | None:
    """How rarely a ``cron(min hour day-of-month month day-of-week year)`` schedule runs, if less than weekly."""
    fields = str(schedule or "").removeprefix("cron(").removesuffix(")").split()
    if len(fields) != 6:
        return None  # rate(...) or unreadable: not judged
    _, _, day, month, _, year = fields
    if year not in ("*", "?"):
        return "in given years only"
    if month not in ("*", "?"):
        return "in given months only"
    if day not in ("*", "?") and "/" not in day:
        return "on given days of the month only"
    return None


def _plan_frequency(resources: Sequence[PolicyResource], args: StackValidationArgs) -> Iterable[tuple[str, str]]:
    for plan in of_type(resources, PLAN):
        for rule in as_list(plan.props.get("rules")):
            rarely = _how_rarely(rule.get("schedule"))
            if rarely:
                yield (
                    plan.urn,
                    f"Backup plan {plan.name}: rule {rule.get('ruleName')} runs {rarely} ({rule.get('schedule')}); "
                    "every rule runs at least weekly, the most frequent every few hours (the RPO).",
                )


#: Metrics that are percentages: an alarm above 100 can never fire.
PERCENT_METRICS = (
    "CPUUtilization",
    "EngineCPUUtilization",
    "DatabaseMemoryUsagePercentage",
    "MemoryUtilization",
    "DiskQueueDepth%",
)


def _alarm_can_fire(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    threshold = num(props.get("threshold"), "threshold")
    metric = props.get("metricName")
    rising = str(props.get("comparisonOperator", "")).startswith("GreaterThan")
    if metric in PERCENT_METRICS and rising and threshold is not None and threshold >= 100:
        yield f"{metric} is a percentage: a threshold of {number(threshold)} can never be crossed."
    periods, needed = num(props.get("evaluationPeriods")), num(props.get("datapointsToAlarm"))
    if periods is not None and needed is not None and needed > periods:
        yield f"datapointsToAlarm ({number(needed)}) exceeds evaluationPeriods ({number(periods)}): it never fires."


#: Alarms every database needs (AWS "Recommended alarms" for Amazon RDS).
DATABASE_ALARMS = ("CPUUtilization", "FreeStorageSpace", "DatabaseConnections")


def _databases_alarmed(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    watched: dict[str, set[str]] = {}
    for alarm in of_type(resources, ALARM):
        identifier = dig(alarm.props, "dimensions.DBInstanceIdentifier")
        if identifier and as_list(alarm.props.get("alarmActions")):
            watched.setdefault(str(identifier), set()).add(str(alarm.props.get("metricName")))
    for db in of_type(resources, "aws:rds/instance:Instance"):
        missing = [m for m in DATABASE_ALARMS if m not in watched.get(str(db.props.get("identifier")), set())]
        if missing:
            yield db.urn, f"Database {db.name} has no alarm on {', '.join(missing)}."


def _alarm_actions(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if is_false(props.get("actionsEnabled")) or not as_list(props.get("alarmActions")):
        yield "Alarms must notify someone: set alarmActions (the alerts topic)."


POLICIES = [
    stack_policy(
        "aws-backup-stateful-resources-selected",
        "Every database, file system and bucket is in an AWS Backup selection, or says why not.",
        Severity.HIGH,
        "Set keel:backup, so the database and the artifacts and uploads buckets carry the plan's tag; tag any other "
        f"resource with it, or with {EXEMPT_TAG}: <reason>.",
        _stateful_selected,
    ),
    resource_policy(
        "aws-backup-vault-encrypted-with-kms",
        "Backup vaults encrypt recovery points with a customer-managed key.",
        Severity.HIGH,
        "Set kms_key_arn on the vault.",
        (VAULT,),
        _vault_kms,
    ),
    stack_policy(
        "aws-backup-vaults-locked",
        "Backup vaults have a Vault Lock, so no one can delete recovery points before their time.",
        Severity.HIGH,
        "Set keel:backup.vaultLock (prod requires it).",
        _vaults_locked,
        MINIMUM_DAYS,
    ),
    stack_policy(
        "aws-backup-plan-retention",
        "Every backup rule, and each copy, keeps recovery points long enough and not forever.",
        Severity.HIGH,
        "Keep each rule's lifecycle.deleteAfter (and its copies') at the RPO targets: 7 days, 4 weeks, 12 months.",
        _plan_retention,
        MINIMUM_DAYS,
    ),
    stack_policy(
        "aws-backup-plan-copies-to-another-region",
        "Every backup rule copies its recovery points to a vault in another region.",
        Severity.HIGH,
        "Set keel:backup.copyRegion (prod requires it).",
        _copies_elsewhere,
    ),
    stack_policy(
        "aws-backup-plan-frequency",
        "Every backup rule runs at least weekly.",
        Severity.HIGH,
        "Keep the schedules of keel:backup (every 6 hours, daily, weekly).",
        _plan_frequency,
    ),
    resource_policy(
        "aws-cloudwatch-alarm-can-fire",
        "Alarm thresholds can be crossed.",
        Severity.MEDIUM,
        "Use a threshold within the metric's range, and datapointsToAlarm <= evaluationPeriods.",
        (ALARM,),
        _alarm_can_fire,
    ),
    stack_policy(
        "aws-cloudwatch-databases-alarmed",
        "Every database has CPU, storage and connection alarms that notify.",
        Severity.HIGH,
        "Keep components/alarms.py's database alarms.",
        _databases_alarmed,
    ),
    resource_policy(
        "aws-cloudwatch-alarm-notifies",
        "Every CloudWatch alarm has an action.",
        Severity.MEDIUM,
        "Send alarms to the alerts topic (components/observability.py does).",
        (ALARM,),
        _alarm_actions,
    ),
]
