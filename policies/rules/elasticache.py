"""ElastiCache policies: encryption at rest and in transit, failover, snapshots, and queues that never evict."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity

from ._util import as_list, resource_policy

GROUP = ("aws:elasticache/replicationGroup:ReplicationGroup",)
PARAMETER_GROUP = ("aws:elasticache/parameterGroup:ParameterGroup",)


def _at_rest(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if props.get("atRestEncryptionEnabled") not in (True, "true"):
        yield "Data at rest must be encrypted (atRestEncryptionEnabled)."
    elif not props.get("kmsKeyId"):
        yield "Data at rest must be encrypted with a customer-managed KMS key (kmsKeyId)."


def _in_transit(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if props.get("transitEncryptionEnabled") is not True:
        yield "Connections must use TLS (transitEncryptionEnabled: true)."
    elif props.get("transitEncryptionMode") == "preferred":
        yield "TLS must be required, not preferred (transitEncryptionMode: required)."
    if not props.get("authToken") and not props.get("userGroupIds"):
        yield "Clients must authenticate (an AUTH token or RBAC user groups)."


def _failover(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if props.get("automaticFailoverEnabled") is not True or props.get("multiAzEnabled") is not True:
        yield "Replication groups must fail over automatically across zones (automaticFailoverEnabled, multiAzEnabled)."


def _snapshots(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if int(props.get("snapshotRetentionLimit") or 0) < 1:
        yield "Snapshots must be kept (snapshotRetentionLimit of at least 1 day)."


def _queue_noeviction(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    if "queue" not in args.name:
        return
    policy = {p.get("name"): p.get("value") for p in as_list(props.get("parameters"))}.get("maxmemory-policy")
    if policy != "noeviction":
        yield f"A queue's parameter group must set maxmemory-policy noeviction (got {policy or 'the default'})."


POLICIES = [
    resource_policy(
        "aws-elasticache-encrypted-at-rest-cmk",
        "Cache data at rest is encrypted with a customer key.",
        Severity.HIGH,
        "Set atRestEncryptionEnabled and kmsKeyId.",
        GROUP,
        _at_rest,
    ),
    resource_policy(
        "aws-elasticache-in-transit-encryption-auth",
        "Caches require TLS and authentication.",
        Severity.HIGH,
        "Set transitEncryptionEnabled, transitEncryptionMode: required and an authToken.",
        GROUP,
        _in_transit,
    ),
    resource_policy(
        "aws-elasticache-automatic-failover-multi-az",
        "Caches survive the loss of a node or zone.",
        Severity.HIGH,
        "Add a replica per shard (keel:caches.<name>.replicasPerShard).",
        GROUP,
        _failover,
    ),
    resource_policy(
        "aws-elasticache-snapshot-retention",
        "Cache snapshots are kept.",
        Severity.MEDIUM,
        "Set snapshotRetentionLimit (keel:caches.<name>.snapshotRetentionDays).",
        GROUP,
        _snapshots,
    ),
    resource_policy(
        "aws-elasticache-queue-noeviction",
        "Queues never evict jobs.",
        Severity.HIGH,
        "Set maxmemoryPolicy: noeviction on the queue cache.",
        PARAMETER_GROUP,
        _queue_noeviction,
    ),
]
