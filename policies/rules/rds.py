"""RDS policies: encryption, exposure, resilience, backups, authentication, TLS, logs and versions; RDS Proxy's TLS
and IAM authentication."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from ._util import (
    as_list,
    at_least,
    configured,
    days,
    is_false,
    is_true,
    num,
    of_type,
    referenced,
    resource_policy,
    shown,
    stack_policy,
    threshold,
)

INSTANCE = ("aws:rds/instance:Instance",)
PROXY = ("aws:rds/proxy:Proxy",)
PARAMETER_GROUP = ("aws:rds/parameterGroup:ParameterGroup",)
BACKUP_REPLICATION = "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication"
#: The RDS certificate authorities that are current (rds-ca-2019 expired in August 2024); AWS "Using SSL/TLS to
#: encrypt a connection to a DB instance", Certificate authorities. Unset means the region default (rsa2048-g1).
CURRENT_CAS = ("rds-ca-rsa2048-g1", "rds-ca-rsa4096-g1", "rds-ca-ecc384-g1")


def _replica(props: Mapping[str, Any]) -> bool:
    """A read replica (``replicateSourceDb``): its data is the source's, so the source's backups, final snapshot,
    Multi-AZ standby and master secret cover it. RDS: a replica inherits the source's master user
    (CreateDBInstanceReadReplica takes no MasterUsername or ManageMasterUserPassword), and its own automated backups
    would copy data the source already backs up."""
    return bool(props.get("replicateSourceDb"))


def _encrypted(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if not is_true(props.get("storageEncrypted")):
        yield "Storage must be encrypted (storageEncrypted: true)."
    elif not props.get("kmsKeyId"):
        yield "Storage must be encrypted with a customer-managed KMS key (kmsKeyId), not the AWS-managed default."


def _private(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if is_true(props.get("publiclyAccessible")):
        yield "The database must not be publicly accessible."


def _multi_az(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if _replica(props):
        return
    if not is_true(props.get("multiAz")):
        yield "The database must be Multi-AZ (a standby in a second zone)."


def _retention(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    if _replica(props):
        return
    minimum = threshold(args, "minimumDays", 7)
    value = props.get("backupRetentionPeriod")
    if not at_least(value, minimum, "backupRetentionPeriod"):
        yield (f"Backups must be kept at least {days(minimum)} (backupRetentionPeriod is {shown(value)}).")


def _deletion_protection(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if not is_true(props.get("deletionProtection")):
        yield "Deletion protection must be on."


def _final_snapshot(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if _replica(props):
        return
    if not is_false(props.get("skipFinalSnapshot")) or not props.get("finalSnapshotIdentifier"):
        yield "A final snapshot must be taken on deletion (skipFinalSnapshot: false and finalSnapshotIdentifier)."


def _iam_auth(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if not is_true(props.get("iamDatabaseAuthenticationEnabled")):
        yield "IAM database authentication must be enabled."


def _force_ssl(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if not str(props.get("family", "")).startswith("postgres"):
        return
    values = {p.get("name"): p.get("value") for p in as_list(props.get("parameters"))}
    if num(values.get("rds.force_ssl"), "rds.force_ssl") != 1:
        yield "PostgreSQL parameter groups must set rds.force_ssl=1."
    oldest = values.get("ssl_min_protocol_version")
    if oldest is not None and str(oldest) not in ("TLSv1.2", "TLSv1.3"):
        yield f"ssl_min_protocol_version {oldest} admits TLS older than 1.2; use TLSv1.2."


def _log_exports(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    exports = as_list(props.get("enabledCloudwatchLogsExports"))
    if props.get("engine") == "postgres" and "postgresql" not in exports:
        yield "PostgreSQL logs must be exported to CloudWatch (enabledCloudwatchLogsExports: [postgresql, upgrade])."


def _performance_insights(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if not is_true(props.get("performanceInsightsEnabled")):
        yield "Performance Insights must be on."
    elif not props.get("performanceInsightsKmsKeyId"):
        yield "Performance Insights must be encrypted with a customer-managed key (performanceInsightsKmsKeyId)."


def _managed_password(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if _replica(props):
        return
    if props.get("password"):
        yield "The master password must not be set in code or config; let RDS manage it in Secrets Manager."
    elif not is_true(props.get("manageMasterUserPassword")):
        yield "The master password must be managed by RDS in Secrets Manager (manageMasterUserPassword: true)."
    elif not props.get("masterUserSecretKmsKeyId"):
        yield "The master password's secret must be encrypted with a customer-managed key (masterUserSecretKmsKeyId)."


def _supported_version(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    allowed = [str(v) for v in configured(args, "postgresMajorVersions", ["15", "16", "17"])]
    if props.get("engine") == "postgres":
        major = str(props.get("engineVersion", "")).split(".")[0]
        if major not in allowed:
            yield f"PostgreSQL {major or '(unset)'} is not supported here; allowed majors: {', '.join(allowed)}."


def _maintenance_window(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if is_true(props.get("applyImmediately")):
        yield "Changes must wait for the maintenance window (applyImmediately: false): applied now, they may reboot."


def _enhanced_monitoring(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if not at_least(props.get("monitoringInterval"), 1, "monitoringInterval") or not props.get("monitoringRoleArn"):
        yield "Enhanced Monitoring must be on (monitoringInterval of 1-60 seconds and a monitoringRoleArn)."


def _keeps_backups(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if not is_false(props.get("deleteAutomatedBackups")):
        yield "Automated backups must outlive the instance (deleteAutomatedBackups: false)."
    if not is_true(props.get("copyTagsToSnapshot")):
        yield "Snapshots must carry the instance's tags, for backup selections and cost reports (copyTagsToSnapshot)."


def _minor_upgrades(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if not is_true(props.get("autoMinorVersionUpgrade", True)):
        yield "Minor engine versions (security fixes) must be applied in maintenance (autoMinorVersionUpgrade: true)."


def _current_ca(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    ca = props.get("caCertIdentifier")
    if ca is not None and ca not in CURRENT_CAS:
        yield f"Certificate authority {ca} is not current; use one of {', '.join(CURRENT_CAS)}."


def _proxy_tls(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    """AWS Config's managed rule ``rds-proxy-tls-encryption`` (AWS::RDS::DBProxy): every proxy enforces TLS."""
    if not is_true(props.get("requireTls")):
        yield "RDS Proxy must require TLS for every client connection (requireTls: true)."


def _proxy_iam_auth(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    """Every auth entry (UserAuthConfig.IAMAuth, RDS API Reference) requires IAM; end-to-end IAM
    (``defaultAuthScheme: IAM_AUTH``) requires it by construction. A secret ARN is never read: unknown in a preview, it
    would keep the policy from running."""
    auths = as_list(props.get("auths"))
    if props.get("defaultAuthScheme") == "IAM_AUTH":
        return
    if not auths:
        yield "RDS Proxy must require IAM authentication: it has no auths entry and defaultAuthScheme is not IAM_AUTH."
    for index, auth in enumerate(auths):
        mode = (auth or {}).get("iamAuth")
        if mode != "REQUIRED":
            yield (
                f"RDS Proxy must require IAM authentication on every auth entry (iamAuth: REQUIRED); auths[{index}] "
                f"has {shown(mode)}."
            )


def _replicated(resources: Sequence[PolicyResource], args: StackValidationArgs) -> Iterable[tuple[str, str]]:
    minimum = threshold(args, "minimumDays", 7)
    copies = {db.urn: r for r in of_type(resources, BACKUP_REPLICATION) for db in referenced(r, "sourceDbInstanceArn")}
    for db in of_type(resources, *INSTANCE):
        if _replica(db.props):
            continue
        copy = copies.get(db.urn)
        if copy is None:
            yield (
                db.urn,
                f"Database {db.name} has no backup replication to another region (restore there).",
            )
        elif not copy.props.get("kmsKeyId"):
            yield copy.urn, f"Backup replication {copy.name} must be encrypted with a customer-managed key (kmsKeyId)."
        elif not at_least(copy.props.get("retentionPeriod", 7), minimum, "retentionPeriod"):
            yield (
                copy.urn,
                f"Backup replication {copy.name} must keep at least {days(minimum)} (retentionPeriod).",
            )


VERSIONS_SCHEMA = {"postgresMajorVersions": {"type": "array", "items": {"type": "string"}}}
RETENTION_SCHEMA = {"minimumDays": {"type": "integer", "minimum": 1, "maximum": 35, "default": 7}}

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
    resource_policy(
        "aws-data-stores-change-in-maintenance-window",
        "Databases and caches take changes in their maintenance window, not at once.",
        Severity.MEDIUM,
        "Leave applyImmediately false; apply urgent changes deliberately (README runbook).",
        (*INSTANCE, "aws:elasticache/replicationGroup:ReplicationGroup"),
        _maintenance_window,
    ),
    resource_policy(
        "aws-rds-instance-enhanced-monitoring",
        "Databases report OS metrics (Enhanced Monitoring).",
        Severity.MEDIUM,
        "Set monitoringInterval (60) and monitoringRoleArn.",
        INSTANCE,
        _enhanced_monitoring,
    ),
    resource_policy(
        "aws-rds-instance-keeps-automated-backups",
        "Automated backups survive the instance and snapshots keep its tags.",
        Severity.HIGH,
        "Set deleteAutomatedBackups: false and copyTagsToSnapshot: true.",
        INSTANCE,
        _keeps_backups,
    ),
    resource_policy(
        "aws-rds-instance-auto-minor-version-upgrade",
        "Databases take minor engine versions (security fixes) in the maintenance window.",
        Severity.MEDIUM,
        "Set autoMinorVersionUpgrade: true.",
        INSTANCE,
        _minor_upgrades,
    ),
    resource_policy(
        "aws-rds-instance-current-ca",
        "Databases present a certificate from a current RDS certificate authority.",
        Severity.HIGH,
        "Set caCertIdentifier to rds-ca-rsa2048-g1 (or another current CA).",
        INSTANCE,
        _current_ca,
    ),
    resource_policy(
        "aws-rds-proxy-require-tls",
        "RDS proxies accept TLS connections only.",
        Severity.HIGH,
        "Set requireTls: true (components/database.py sets it on every proxy).",
        PROXY,
        _proxy_tls,
    ),
    resource_policy(
        "aws-rds-proxy-iam-auth-required",
        "Clients authenticate to RDS proxies with IAM, never a password alone.",
        Severity.HIGH,
        "Set iamAuth: REQUIRED on every auths entry (services connect with database:connect).",
        PROXY,
        _proxy_iam_auth,
    ),
    stack_policy(
        "aws-rds-backups-replicated-to-another-region",
        "Every database's automated backups are replicated, encrypted, to another region.",
        Severity.HIGH,
        "Set keel:backup.copyRegion (the database component replicates its automated backups there).",
        _replicated,
        RETENTION_SCHEMA,
    ),
]
