"""ElastiCache policies: encryption at rest and in transit, failover, snapshots, and queues that never evict."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity

from ._util import as_list, at_least, days, is_true, num, number, resource_policy, shown, threshold

GROUP = ("aws:elasticache/replicationGroup:ReplicationGroup",)
PARAMETER_GROUP = ("aws:elasticache/parameterGroup:ParameterGroup",)


def _secondary(props: Mapping[str, Any]) -> bool:
    """A global datastore's secondary (``globalReplicationGroupId``): its engine, version and encryption flags are
    the datastore's, set on the primary (which these policies judge), and the provider refuses them here
    (terraform-provider-aws v6.58.0 internal/service/elasticache/replication_group.go: ConflictsWith
    global_replication_group_id). Its own key and AUTH token are still its own."""
    return "globalReplicationGroupId" in props  # its value is unknown until the datastore exists: never read


def _at_rest(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if _secondary(props):
        if not props.get("kmsKeyId"):
            yield "Data at rest must be encrypted with a customer-managed KMS key (kmsKeyId)."
        return
    if not is_true(props.get("atRestEncryptionEnabled")):
        yield "Data at rest must be encrypted (atRestEncryptionEnabled)."
    elif not props.get("kmsKeyId"):
        yield "Data at rest must be encrypted with a customer-managed KMS key (kmsKeyId)."


def _in_transit(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if _secondary(props):
        pass
    elif not is_true(props.get("transitEncryptionEnabled")):
        yield "Connections must use TLS (transitEncryptionEnabled: true)."
    elif props.get("transitEncryptionMode") == "preferred":
        yield "TLS must be required, not preferred (transitEncryptionMode: required)."
    if not props.get("authToken") and not props.get("userGroupIds"):
        yield "Clients must authenticate (an AUTH token or RBAC user groups)."


def _failover(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if not is_true(props.get("automaticFailoverEnabled")) or not is_true(props.get("multiAzEnabled")):
        yield "Replication groups must fail over automatically across zones (automaticFailoverEnabled, multiAzEnabled)."
    # A replica to fail over to: one per shard (cluster mode) or a second node (numCacheClusters).
    elif not (
        at_least(props.get("replicasPerNodeGroup"), 1, "replicasPerNodeGroup")
        or at_least(props.get("numCacheClusters"), 2, "numCacheClusters")
    ):
        yield "Every shard needs a replica in another zone to fail over to (replicasPerNodeGroup of at least 1)."


def _snapshots(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    minimum = threshold(args, "minimumDays", 1)
    kept = props.get("snapshotRetentionLimit")
    if not at_least(kept, minimum, "snapshotRetentionLimit"):
        yield (f"Snapshots must be kept at least {days(minimum)} (snapshotRetentionLimit is {shown(kept)}).")
    if not props.get("finalSnapshotIdentifier"):
        yield "Deleting the cache must leave a final snapshot (finalSnapshotIdentifier)."


def _supported_engine(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    if _secondary(props):
        return
    minimum = threshold(args, "minimumMajor", 7)
    version = str(props.get("engineVersion") or "")
    major = num(version.split(".", maxsplit=1)[0]) if version else None
    if major is None or major < minimum:
        yield f"{props.get('engine', 'redis')} {version or '(unset)'} is too old; use major {number(minimum)} or later."


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
        "Cache snapshots are kept, and deleting a cache leaves a final one.",
        Severity.MEDIUM,
        "Set snapshotRetentionLimit (keel:caches.<name>.snapshotRetentionDays) and finalSnapshotIdentifier.",
        GROUP,
        _snapshots,
        {"minimumDays": {"type": "integer", "minimum": 1, "default": 1}},
    ),
    resource_policy(
        "aws-elasticache-supported-engine-version",
        "Caches run a supported engine version (Redis OSS or Valkey 7+).",
        Severity.MEDIUM,
        "Set keel:caches.<name>.engineVersion to 7.1 or later.",
        GROUP,
        _supported_engine,
        {"minimumMajor": {"type": "integer", "minimum": 6, "default": 7}},
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
