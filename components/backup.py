"""Backup: an AWS Backup vault and plan for the stack's stateful data, with a copy in a second region.

Usage::

    backup = Backup("keel-prod", cfg.backup, protect=True,
                    copy_provider=aws.Provider("keel-prod-aws-us-west-2", region="us-west-2"),
                    opts=pulumi.ResourceOptions(parent=platform))
    backup.tag      # {"keel.dev/backup": "keel-prod"}: a resource carrying it is in the plan

Creates (``<n>`` is the component name):

- ``<n>-backup`` KMS key and alias: encryption of the vault's recovery points.
- ``<n>`` backup vault on that key, and with ``vaultLock`` its ``<n>`` lock configuration (governance, or
  compliance after ``changeableForDays``): no recovery point can be deleted before ``minRetentionDays``.
- With ``copyRegion`` (through ``copy_provider``): ``<n>-backup-dr`` key and ``<n>-dr`` vault in that region,
  locked alike. Every rule copies its recovery points there with the same lifecycle, so a regional outage or a
  compromised primary vault leaves a restorable copy.
- ``<n>-backup`` IAM role that only AWS Backup (for this account) may assume, with AWS's managed backup and
  restore policies for RDS and for S3.
- ``<n>`` backup plan: one rule per ``keel:backup.rules`` entry (schedule in UTC, start and completion
  windows, delete after N days, the copy action), recovery points tagged with the plan.
- :meth:`Backup.replicate_point_in_time` (with ``copyRegion``): ``<n>-<db>-pitr`` replicates an RDS instance's
  automated backups (snapshots and transaction logs) to the copy region, encrypted with the copy vault's key, so a
  regional outage loses minutes of data, not the hours since the last copied recovery point.
- ``<n>`` backup selection: every RDS instance and S3 bucket tagged ``keel.dev/backup=<n>``. The database and the
  artifacts and uploads buckets carry it; the tag value names the stack, so dev's plan never picks up prod's data
  when both share an account. The resource types are named in the selection, because a selection by tags alone
  obeys the account's per-service opt-in (AWS Backup's region settings), which can leave S3 out silently.

The default rules (``components/config/operations.py``) are the source design's: every 6 hours kept 7 days, daily kept 4
weeks, weekly kept 12 months. The daily and weekly runs are at 07:00 UTC: an RDS snapshot started within an hour
of the instance's backup window (03:00-04:00) or its maintenance window (Sunday 04:30-05:30) may fail. RDS's
own automated backups (point-in-time recovery to the second, ``keel:database.backupRetentionDays``) stay on:
AWS Backup adds snapshot copies with longer retention and a second region, it does not replace them.

Outputs: ``vault``, ``vault_name``, ``vault_arn``, ``copy_vault`` and ``copy_key`` (None without ``copyRegion``),
``plan``, ``role``, ``tag``.

Recovery objectives (the README's disaster-recovery section walks each restore): an AZ loss is absorbed by Multi-AZ
(RPO 0); a bad write is undone by RDS point-in-time recovery (RPO about 5 minutes: RDS ships transaction logs every
5 minutes); a regional outage restores the database from the replicated automated backups (RPO minutes) and finds
the buckets in their S3 replicas (``components.storage``, ``keel:buckets.replication``: RPO 15 minutes with S3
Replication Time Control), or, where a stack has no replicas, in the copied recovery points (RPO 6 hours, the
every-6-hours rule).
"""

from __future__ import annotations

import dataclasses
import json

import pulumi
import pulumi_aws as aws

from components import context
from components.config import BackupConfig, VaultLockConfig
from components.iam import document, managed_policy
from components.keys import create_key

#: The tag a resource carries to be backed up by the plan named in its value.
BACKUP_TAG = "keel.dev/backup"

#: AWS managed policies of the backup role: snapshots and restores of RDS (and the other services AWS Backup
#: supports) and of S3.
BACKUP_POLICIES = (
    "service-role/AWSBackupServiceRolePolicyForBackup",
    "service-role/AWSBackupServiceRolePolicyForRestores",
    "AWSBackupServiceRolePolicyForS3Backup",
    "AWSBackupServiceRolePolicyForS3Restore",
)


def backup_trust(account: str) -> dict[str, object]:
    """Only AWS Backup, acting for this account, may assume the backup role."""
    return document(
        [
            {
                "Effect": "Allow",
                "Principal": {"Service": "backup.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            }
        ]
    )


class Backup(pulumi.ComponentResource):
    """The stack's AWS Backup vault(s), plan and selection."""

    vault: aws.backup.Vault
    vault_name: pulumi.Output[str]
    vault_arn: pulumi.Output[str]
    copy_vault: aws.backup.Vault | None
    copy_key: aws.kms.Key | None
    plan: aws.backup.Plan
    role: aws.iam.Role
    tag: dict[str, str]

    def __init__(
        self,
        name: str,
        config: BackupConfig,
        *,
        protect: bool = True,
        copy_provider: aws.Provider | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``config``: the ``keel:backup`` section (rules, copy region, vault lock). ``protect``: True puts
        ``protect`` and ``retainOnDelete`` on the vaults and their keys. ``copy_provider``: an AWS provider for
        ``copyRegion`` (None: no copies leave the stack's region)."""
        super().__init__("keel:backup:Backup", name, None, opts)
        self._copy_provider = copy_provider
        self._protect = protect
        child = pulumi.ResourceOptions(parent=self)
        ctx = context.lookup(pulumi.InvokeOptions(parent=self))
        self.tag = {BACKUP_TAG: name}

        self.vault, _ = self._vault(name, "", "AWS Backup recovery points", ctx, config.vault_lock, protect, child)
        self.copy_vault = self.copy_key = None
        if config.copy_region is not None:
            if copy_provider is None:
                raise ValueError(f"keel:backup.copyRegion: got {config.copy_region!r} but no provider for that region")
            there = pulumi.ResourceOptions(parent=self, provider=copy_provider)
            # The copy provider differs from the stack's only in its region: no lookup (a blocking invoke that
            # would stall every registration in flight) is needed to know where it deploys.
            copy_ctx = dataclasses.replace(ctx, region=config.copy_region)
            self.copy_vault, self.copy_key = self._vault(
                name,
                "-dr",
                "disaster-recovery copies of AWS Backup recovery points",
                copy_ctx,
                config.vault_lock,
                protect,
                there,
            )

        self.role = aws.iam.Role(
            f"{name}-backup",
            description=f"{name}: AWS Backup takes and restores the plan's backups",
            assume_role_policy=json.dumps(backup_trust(ctx.account)),
            opts=child,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-backup-{index}",
                role=self.role.name,
                policy_arn=managed_policy(ctx.partition, policy),
                opts=child,
            )
            for index, policy in enumerate(BACKUP_POLICIES)
        ]

        copy_to = self.copy_vault.arn if self.copy_vault is not None else None
        self.plan = aws.backup.Plan(
            name,
            name=name,
            rules=[
                aws.backup.PlanRuleArgs(
                    rule_name=rule_name,
                    target_vault_name=self.vault.name,
                    schedule=rule.schedule,
                    schedule_expression_timezone="Etc/UTC",
                    start_window=config.start_window_minutes,
                    completion_window=config.completion_window_minutes,
                    lifecycle=aws.backup.PlanRuleLifecycleArgs(delete_after=rule.delete_after_days),
                    recovery_point_tags={"keel.dev/plan": name, "keel.dev/rule": rule_name},
                    copy_actions=[
                        aws.backup.PlanRuleCopyActionArgs(
                            destination_vault_arn=copy_to,
                            lifecycle=aws.backup.PlanRuleCopyActionLifecycleArgs(delete_after=rule.delete_after_days),
                        )
                    ]
                    if copy_to is not None
                    else None,
                )
                for rule_name, rule in config.rules.items()
            ],
            opts=child,
        )
        aws.backup.Selection(
            name,
            name=name,
            plan_id=self.plan.id,
            iam_role_arn=self.role.arn,
            # Resource types named explicitly and the tag as a condition (both must hold): a selection by tags
            # alone follows the account's per-service opt-in, which may leave S3 out without a word.
            resources=[f"arn:{ctx.partition}:rds:*:*:db:*", f"arn:{ctx.partition}:s3:::*"],
            conditions=[
                aws.backup.SelectionConditionArgs(
                    string_equals=[
                        aws.backup.SelectionConditionStringEqualArgs(key=f"aws:ResourceTag/{BACKUP_TAG}", value=name)
                    ]
                )
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=attachments),
        )
        self.vault_name = self.vault.name
        self.vault_arn = self.vault.arn
        self.register_outputs(
            {
                "vault_name": self.vault_name,
                "vault_arn": self.vault_arn,
                "copy_vault_arn": copy_to,
                "plan": self.plan.arn,
                "tag": self.tag,
            }
        )

    def replicate_point_in_time(
        self, label: str, instance: aws.rds.Instance, retention_days: int
    ) -> aws.rds.InstanceAutomatedBackupsReplication | None:
        """Replicate ``instance``'s automated backups to the copy region (None without ``copyRegion``): point-in-time
        recovery there, ``retention_days`` back, encrypted with the copy vault's key."""
        if self._copy_provider is None or self.copy_key is None:
            return None
        return aws.rds.InstanceAutomatedBackupsReplication(
            f"{self.pulumi_resource_name}-{label}-pitr",
            source_db_instance_arn=instance.arn,
            kms_key_id=self.copy_key.arn,
            retention_period=retention_days,
            opts=pulumi.ResourceOptions(parent=self, provider=self._copy_provider, protect=self._protect),
        )

    def _vault(
        self,
        name: str,
        suffix: str,
        purpose: str,
        ctx: context.AwsContext,
        lock: VaultLockConfig | None,
        protect: bool,
        opts: pulumi.ResourceOptions,
    ) -> tuple[aws.backup.Vault, aws.kms.Key]:
        """A KMS-encrypted vault ``<n><suffix>`` (locked when ``lock`` is set) and its own key."""
        key = create_key(f"{name}-backup{suffix}", purpose, ctx, protect=protect, opts=opts)
        vault = aws.backup.Vault(
            f"{name}{suffix}",
            name=f"{name}{suffix}",
            kms_key_arn=key.arn,
            force_destroy=False,
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=protect, retain_on_delete=protect)),
        )
        if lock is not None:
            aws.backup.VaultLockConfiguration(
                f"{name}{suffix}",
                backup_vault_name=vault.name,
                min_retention_days=lock.min_retention_days,
                max_retention_days=lock.max_retention_days,
                changeable_for_days=lock.changeable_for_days if lock.mode == "compliance" else None,
                opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=protect)),
            )
        return vault, key
