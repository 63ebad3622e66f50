"""RDS policies: encryption, exposure, resilience, backups, authentication, TLS, logs and versions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity

from ._util import as_list, configured, resource_policy

INSTANCE = ("aws:rds/instance:Instance",)
PARAMETER_GROUP = ("aws:rds/parameterGroup:ParameterGroup",)


def _encrypted(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if props.get("storageEncrypted") is not True:
        yield "Storage must be encrypted (storageEncrypted: true)."
    elif not props.get("kmsKeyId"):
        yield "Storage must be encrypted with a customer-managed KMS key (kmsKeyId), not the AWS-managed default."


def _private(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if props.get("publiclyAccessible") is True:
        yield "The database must not be publicly accessible."


def _multi_az(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if props.get("multiAz") is not True:
        yield "The database must be Multi-AZ (a standby in a second zone)."


def _retention(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    minimum = int(configured(args, "minimumDays", 7))
    days = props.get("backupRetentionPeriod") or 0
    if int(days) < minimum:
        yield f"Backups must be kept at least {minimum} days (backupRetentionPeriod is {int(days)})."


def _deletion_protection(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if props.get("deletionProtection") is not True:
        yield "Deletion protection must be on."


def _final_snapshot(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if props.get("skipFinalSnapshot") is not False or not props.get("finalSnapshotIdentifier"):
        yield "A final snapshot must be taken on deletion (skipFinalSnapshot: false and finalSnapshotIdentifier)."


def _iam_auth(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if props.get("iamDatabaseAuthenticationEnabled") is not True:
        yield "IAM database authentication must be enabled."


def _force_ssl(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if not str(props.get("family", "")).startswith("postgres"):
        return
    values = {p.get("name"): str(p.get("value")) for p in as_list(props.get("parameters"))}
    if values.get("rds.force_ssl") != "1":
        yield "PostgreSQL parameter groups must set rds.force_ssl=1."


def _log_exports(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    exports = as_list(props.get("enabledCloudwatchLogsExports"))
    if props.get("engine") == "postgres" and "postgresql" not in exports:
        yield "PostgreSQL logs must be exported to CloudWatch (enabledCloudwatchLogsExports: [postgresql, upgrade])."


def _performance_insights(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if props.get("performanceInsightsEnabled") is not True:
        yield "Performance Insights must be on."
    elif not props.get("performanceInsightsKmsKeyId"):
        yield "Performance Insights must be encrypted with a customer-managed key (performanceInsightsKmsKeyId)."


def _managed_password(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if props.get("password"):
        yield "The master password must not be set in code or config; let RDS manage it in Secrets Manager."
    elif props.get("manageMasterUserPassword") is not True:
        yield "The master password must be managed by RDS in Secrets Manager (manageMasterUserPassword: true)."


def _supported_version(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    allowed = [str(v) for v in configured(args, "postgresMajorVersions", ["15", "16", "17"])]
    if props.get("engine") == "postgres":
        major = str(props.get("engineVersion", "")).split(".")[0]
        if major not in allowed:
            yield f"PostgreSQL {major or '(unset)'} is not supported here; allowed majors: {', '.join(allowed)}."


VERSIONS_SCHEMA = {"postgresMajorVersions": {"type": "array", "items": {"type": "string"}}}
RETENTION_SCHEMA = {"minimumDays": {"type": "integer", "minimum": 1, "maximum": 35}}

POLICIES = [
    resource_policy(
        "aws-rds-instance-storage-encrypted-cmk",
        "Database storage is encrypted with a customer key.",
        Severity.HIGH,
        "Set storageEncrypted and kmsKeyId.",
        INSTANCE,
        _encrypted,
    ),
    resource_policy(
        "aws-rds-instance-disallow-public-access",
        "Databases are not reachable from the internet.",
        Severity.CRITICAL,
        "Set publiclyAccessible: false and keep the instance in isolated subnets.",
        INSTANCE,
        _private,
    ),
    resource_policy(
        "aws-rds-instance-multi-az",
        "Databases survive the loss of a zone.",
        Severity.HIGH,
        "Set multiAz: true (keel:database.multiAz).",
        INSTANCE,
        _multi_az,
    ),
    resource_policy(
        "aws-rds-instance-backup-retention",
        "Automated backups are kept long enough.",
        Severity.HIGH,
        "Raise backupRetentionPeriod (keel:database.backupRetentionDays).",
        INSTANCE,
        _retention,
        RETENTION_SCHEMA,
    ),
    resource_policy(
        "aws-rds-instance-deletion-protection",
        "Databases cannot be deleted by accident.",
        Severity.HIGH,
        "Set deletionProtection: true.",
        INSTANCE,
        _deletion_protection,
    ),
    resource_policy(
        "aws-rds-instance-final-snapshot",
        "Deleting a database leaves a final snapshot.",
        Severity.HIGH,
        "Set skipFinalSnapshot: false and a finalSnapshotIdentifier.",
        INSTANCE,
        _final_snapshot,
    ),
    resource_policy(
        "aws-rds-instance-iam-authentication",
        "Databases accept IAM authentication.",
        Severity.MEDIUM,
        "Set iamDatabaseAuthenticationEnabled: true.",
        INSTANCE,
        _iam_auth,
    ),
    resource_policy(
        "aws-rds-parameter-group-force-ssl",
        "PostgreSQL accepts TLS connections only.",
        Severity.HIGH,
        "Add the parameter rds.force_ssl=1.",
        PARAMETER_GROUP,
        _force_ssl,
    ),
    resource_policy(
        "aws-rds-instance-log-exports",
        "Database logs reach CloudWatch.",
        Severity.MEDIUM,
        "Set enabledCloudwatchLogsExports to [postgresql, upgrade].",
        INSTANCE,
        _log_exports,
    ),
    resource_policy(
        "aws-rds-instance-performance-insights-encrypted",
        "Performance Insights is on and encrypted.",
        Severity.MEDIUM,
        "Set performanceInsightsEnabled and performanceInsightsKmsKeyId.",
        INSTANCE,
        _performance_insights,
    ),
    resource_policy(
        "aws-rds-instance-managed-master-password",
        "The master password lives only in Secrets Manager.",
        Severity.HIGH,
        "Remove password; set manageMasterUserPassword: true.",
        INSTANCE,
        _managed_password,
    ),
    resource_policy(
        "aws-rds-instance-supported-engine-version",
        "Databases run a supported PostgreSQL version.",
        Severity.MEDIUM,
        "Set keel:database.engineVersion to a supported major version.",
        INSTANCE,
        _supported_version,
        VERSIONS_SCHEMA,
    ),
]
