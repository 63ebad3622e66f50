"""Backups: config rules, the vaults (KMS, lock, second region), the plan's rules and copies, the role and the
tag-based selection of exactly the database and the artifacts and uploads buckets."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from components.config import ConfigError, validate
from keel.engine import Preview
from keel.fake import DEFAULT_ACCOUNT as ACCOUNT
from tests.helpers import physical_id, policy_doc
from tests.helpers import stack_config as stack

PLAN = "aws:backup/plan:Plan"
VAULT = "aws:backup/vault:Vault"
LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"


LOCKED = {"copyRegion": "us-west-2", "vaultLock": {"mode": "governance"}}
CASES: list[tuple[str, dict[str, str], str]] = [
    (
        "prod without backups",
        {**stack(), "keel:backup": "null"},
        "keel:backup: missing in a prod stack; set keel:backup.copyRegion and keel:backup.vaultLock",
    ),
    (
        "prod without a copy",
        stack(backup={"vaultLock": {}}),
        "keel:backup.copyRegion: missing in a prod stack; allowed: a second region for disaster recovery",
    ),
    (
        "prod without a lock",
        stack(backup={"copyRegion": "us-west-2"}),
        "keel:backup.vaultLock: missing in a prod stack; allowed: {mode: governance} or {mode: compliance}",
    ),
    (
        "copy to the same region",
        stack("dev", backup={"copyRegion": "us-east-1"}),
        "keel:backup.copyRegion: got 'us-east-1', the stack's own region; allowed: any other region (a copy in the "
        "same region does not survive a regional outage)",
    ),
    (
        "copy region not a region",
        stack("dev", backup={"copyRegion": "oregon"}),
        "keel:backup.copyRegion: got 'oregon'; expected an AWS region name like 'us-west-2'",
    ),
    (
        "lock bounds inverted",
        stack(backup={**LOCKED, "vaultLock": {"minRetentionDays": 400, "maxRetentionDays": 30}}),
        "keel:backup.vaultLock.minRetentionDays: got 400; must be at most maxRetentionDays (30)",
    ),
    (
        "rule shorter than the lock allows",
        stack(backup={**LOCKED, "vaultLock": {"minRetentionDays": 14}}),
        "keel:backup.rules.every-6-hours.deleteAfterDays: got 7; the vault lock allows 14 to 365 "
        "(keel:backup.vaultLock)",
    ),
    (
        "unknown lock mode",
        stack("dev", backup={"vaultLock": {"mode": "strict"}}),
        "keel:backup.vaultLock.mode: got 'strict'; allowed: 'governance' or 'compliance'",
    ),
    (
        "compliance grace too short",
        stack("dev", backup={"vaultLock": {"mode": "compliance", "changeableForDays": 1}}),
        "keel:backup.vaultLock.changeableForDays: got 1; allowed: 3 to 36500",
    ),
    (
        "completion window too short",
        stack("dev", backup={"startWindowMinutes": 120, "completionWindowMinutes": 150}),
        "keel:backup.completionWindowMinutes: got 150; must be at least startWindowMinutes + 60 (180)",
    ),
    (
        "not a cron expression",
        stack("dev", backup={"rules": {"hourly": {"schedule": "rate(1 hour)", "deleteAfterDays": 1}}}),
        "keel:backup.rules.hourly.schedule: got 'rate(1 hour)'; expected a six-field AWS cron expression such as "
        "'cron(0 5 * * ? *)'",
    ),
    (
        "no rules",
        stack("dev", backup={"rules": {}}),
        "keel:backup.rules: got {}; list at least one rule (the default has every-6-hours, daily and weekly)",
    ),
    (
        "rule name",
        stack("dev", backup={"rules": {"every 6 hours": {"schedule": "cron(0 0/6 * * ? *)", "deleteAfterDays": 7}}}),
        "keel:backup.rules: got 'every 6 hours'; expected rule names of letters, digits, '-', '_' or '.' (at most 50)",
    ),
]


@pytest.mark.parametrize(("raw", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_backup_config_rules(raw: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        validate("t", raw)
    assert err.value.problems == [message]


def test_default_rules_are_the_source_design() -> None:
    backup = validate("t", stack("dev", backup={})).backup
    assert backup is not None
    assert {n: (r.schedule, r.delete_after_days) for n, r in backup.rules.items()} == {
        "every-6-hours": ("cron(0 0/6 * * ? *)", 7),  # RPO 6 hours from AWS Backup (minutes from RDS PITR)
        "daily": ("cron(0 7 * * ? *)", 28),  # 4 weeks
        "weekly": ("cron(0 7 ? * SUN *)", 365),  # 12 months
    }
    assert backup.copy_region is None and backup.vault_lock is None


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_plan_rules_schedules_lifecycles_and_copies(preview: Callable[[str], Preview], env: str) -> None:
    p = preview(env)
    plan = p.one(PLAN, f"keel-{env}")
    vault = p.one(VAULT, f"keel-{env}")
    copy = (
        [{"destinationVaultArn": f"arn:aws:backup:us-west-2:{ACCOUNT}:backup-vault:keel-prod-dr"}]
        if env == "prod"
        else []
    )

    def rule(name: str, schedule: str, days: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "completionWindow": 360,
            "lifecycle": {"deleteAfter": days},
            "recoveryPointTags": {"keel.dev/plan": f"keel-{env}", "keel.dev/rule": name},
            "ruleName": name,
            "schedule": schedule,
            "scheduleExpressionTimezone": "Etc/UTC",
            "startWindow": 60,
            "targetVaultName": "keel-" + env,
        }
        if copy:
            out["copyActions"] = [{**copy[0], "lifecycle": {"deleteAfter": days}}]
        return out

    assert plan.inputs["name"] == f"keel-{env}"
    assert plan.inputs["rules"] == [
        rule("every-6-hours", "cron(0 0/6 * * ? *)", 7),
        rule("daily", "cron(0 7 * * ? *)", 28),
        rule("weekly", "cron(0 7 ? * SUN *)", 365),
    ]
    assert vault.urn in plan.dependencies
    # continuous backup stays off: RDS keeps its own point-in-time recovery (keel:database.backupRetentionDays)
    assert not any(r.get("enableContinuousBackup") for r in plan.inputs["rules"])


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_vaults_are_encrypted_protected_and_locked_in_prod(preview: Callable[[str], Preview], env: str) -> None:
    p = preview(env)
    prod = env == "prod"
    names = [f"keel-{env}", *(["keel-prod-dr"] if prod else [])]
    assert sorted(v.name for v in p.of_type(VAULT)) == sorted(names)
    for name in names:
        vault = p.one(VAULT, name)
        key = p.one("aws:kms/key:Key", "keel-prod-backup-dr" if name.endswith("-dr") else f"{name}-backup")
        region = "us-west-2" if name.endswith("-dr") else "us-east-1"
        assert vault.inputs["kmsKeyArn"] == f"arn:aws:kms:{region}:{ACCOUNT}:key/{physical_id(key)}"
        assert key.inputs["enableKeyRotation"] is True
        assert vault.inputs["forceDestroy"] is False
        assert (vault.protect, vault.retain_on_delete, key.protect) == (prod, prod, prod)
    outputs = p.steps[0].outputs
    assert outputs["backupVaultName"] == f"keel-{env}"
    assert outputs.get("backupCopyVaultArn") == (
        f"arn:aws:backup:us-west-2:{ACCOUNT}:backup-vault:keel-prod-dr" if prod else None
    )
    locks = {lock.name: lock.inputs for lock in p.of_type(LOCK)}
    if prod:
        # governance mode: no changeableForDays (that would start the compliance-mode countdown)
        assert locks == {
            n: {"backupVaultName": n, "minRetentionDays": 7, "maxRetentionDays": 365}
            for n in ("keel-prod", "keel-prod-dr")
        }
        assert all(lock.protect for lock in p.of_type(LOCK))
    else:
        assert locks == {}


def test_compliance_mode_sets_the_grace_period() -> None:
    from components.backup import Backup
    from tests.helpers import run

    cfg = validate("t", stack("dev", backup={"vaultLock": {"mode": "compliance", "changeableForDays": 3}})).backup
    assert cfg is not None
    p = run(lambda: Backup("b", cfg, protect=True))
    assert p.one(LOCK, "b").inputs == {
        "backupVaultName": "b",
        "minRetentionDays": 7,
        "maxRetentionDays": 365,
        "changeableForDays": 3,
    }


def test_copy_region_needs_its_provider() -> None:
    from components.backup import Backup
    from tests.helpers import run

    cfg = validate("t", stack("dev", backup={"copyRegion": "us-west-2"})).backup
    assert cfg is not None
    with pytest.raises(Exception, match=re.escape("keel:backup.copyRegion: got 'us-west-2' but no provider")):
        run(lambda: Backup("b", cfg, protect=False))


def test_backup_role_trusts_only_aws_backup_with_managed_policies(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    role = p.one("aws:iam/role:Role", "keel-prod-backup")
    assert policy_doc(role, "assumeRolePolicy") == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "backup.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
            }
        ],
    }
    attached = sorted(
        a.inputs["policyArn"]
        for a in p.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == physical_id(role)
    )
    assert attached == [
        "arn:aws:iam::aws:policy/AWSBackupServiceRolePolicyForS3Backup",
        "arn:aws:iam::aws:policy/AWSBackupServiceRolePolicyForS3Restore",
        "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
        "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores",
    ]
    assert not [r for r in p.of_type("aws:iam/rolePolicy:RolePolicy") if r.inputs["role"] == physical_id(role)]


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_selection_picks_the_database_and_two_buckets_by_this_stacks_tag(
    preview: Callable[[str], Preview], env: str
) -> None:
    p = preview(env)
    selection = p.one("aws:backup/selection:Selection", f"keel-{env}")
    role = p.one("aws:iam/role:Role", f"keel-{env}-backup")
    # the types by name (a tag-only selection obeys the account's service opt-in, which may exclude S3) AND the tag
    assert selection.inputs["resources"] == ["arn:aws:rds:*:*:db:*", "arn:aws:s3:::*"]
    assert selection.inputs["conditions"] == [
        {"stringEquals": [{"key": "aws:ResourceTag/keel.dev/backup", "value": f"keel-{env}"}]}
    ]
    assert "selectionTags" not in selection.inputs  # ORed tags would widen the selection
    assert selection.inputs["iamRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/{physical_id(role)}"
    # the policies are attached before the selection exists, or the first backup job would be denied
    attachments = [
        a.urn for a in p.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") if "-backup-" in a.name
    ]
    assert set(attachments) <= set(selection.dependencies)
    tagged = sorted(
        s.name for s in p.steps if s.custom and (s.inputs.get("tags") or {}).get("keel.dev/backup") == f"keel-{env}"
    )
    assert tagged == [f"keel-{env}-artifacts", f"keel-{env}-db", f"keel-{env}-uploads"]
    logs = p.one("aws:s3/bucket:Bucket", f"keel-{env}-logs")
    assert logs.inputs["tags"]["keel.dev/backup-exempt"] == "access logs: versioned, expired by lifecycle"


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_database_point_in_time_recovery_is_replicated_to_the_copy_region(
    preview: Callable[[str], Preview], env: str
) -> None:
    p = preview(env)
    replications = p.of_type("aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication")
    if env == "dev":
        assert replications == []  # no copy region
        return
    [pitr] = replications
    key = p.one("aws:kms/key:Key", "keel-prod-backup-dr")
    assert pitr.name == "keel-prod-db-pitr"
    assert pitr.inputs == {
        "sourceDbInstanceArn": f"arn:aws:rds:us-east-1:{ACCOUNT}:db:keel-prod-db",
        "kmsKeyId": f"arn:aws:kms:us-west-2:{ACCOUNT}:key/{physical_id(key)}",
        "retentionPeriod": 14,  # keel:database.backupRetentionDays
    }
    assert pitr.provider.rsplit("::", 1)[0].endswith("pulumi:providers:aws::keel-prod-aws-us-west-2")
    assert pitr.protect is True
