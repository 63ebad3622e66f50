"""Stack-wide policies: required tags, protected stateful resources, a data tier that never waits for Kubernetes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from ._util import S3_BUCKET, is_true, resource_policy, stack_policy

#: AWS resources that hold data: losing one loses data.
STATEFUL = (
    "aws:rds/instance:Instance",
    "aws:elasticache/replicationGroup:ReplicationGroup",
    *S3_BUCKET,
    "aws:kms/key:Key",
    "aws:secretsmanager/secret:Secret",
    "aws:backup/vault:Vault",
)
#: Stateful types and the input that lets Pulumi delete them with their contents.
FORCE_DELETE = {
    **{t: "forceDestroy" for t in S3_BUCKET},
    "aws:ecr/repository:Repository": "forceDelete",
    "aws:backup/vault:Vault": "forceDestroy",
}
DATA_TYPES = (
    *STATEFUL,
    "aws:rds/subnetGroup:SubnetGroup",
    "aws:rds/parameterGroup:ParameterGroup",
    "aws:elasticache/subnetGroup:SubnetGroup",
    "aws:elasticache/parameterGroup:ParameterGroup",
)
#: Types that carry no tags (their provider's default tags do not apply).
UNTAGGED = (
    "aws:ec2/route:Route",
    "aws:ec2/routeTableAssociation:RouteTableAssociation",
    "aws:kms/alias:Alias",
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:s3/",
    "aws:vpc/",
    "aws:autoscaling/tag:Tag",
    "aws:lb/listener",
    "aws:wafv2/webAclAssociation",
    "aws:route53/record",
    "aws:acm/certificateValidation",
    "aws:sns/topicPolicy",
    "aws:eks/addon",
    "aws:eks/podIdentityAssociation",
    "aws:ecr/lifecyclePolicy",
    "aws:secretsmanager/secretVersion",
    "aws:sesv2/emailIdentityMailFromAttributes",
    "aws:sesv2/configurationSetEventDestination",
    "aws:ec2/defaultSecurityGroup",
)
KUBERNETES = ("kubernetes:", "eks:", "aws:eks/")


def _required_tags(resources: Sequence[PolicyResource], args: StackValidationArgs) -> Iterable[tuple[str, str]]:
    required = list((args.get_config() or {}).get("tags", ["environment", "stack", "managed-by"]))
    for resource in resources:
        kind = resource.resource_type
        if not kind.startswith("aws:") or (any(kind.startswith(u) for u in UNTAGGED) and kind not in S3_BUCKET):
            continue
        defaults = {}
        if resource.provider is not None:
            raw = resource.provider.props.get("defaultTags") or {}
            raw = json.loads(raw) if isinstance(raw, str) else raw
            defaults = dict((raw or {}).get("tags") or {})
        tags = {**defaults, **dict(resource.props.get("tags") or {})}
        missing = [t for t in required if t not in tags]
        if missing:
            yield resource.urn, f"{resource.name} ({kind}) lacks the required tags {', '.join(missing)}."


#: Not data, but losing it stops everything: protected with the data.
PROTECTED = (*STATEFUL, "eks:index:Cluster", "aws:eks/cluster:Cluster", "aws:cloudwatch/logGroup:LogGroup")


def _protected(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    for resource in resources:
        if resource.resource_type in PROTECTED and not resource.opts.protect:
            yield resource.urn, f"Stateful resource {resource.name} must be protected (keel:protect: true)."


def _no_force_delete(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    key = FORCE_DELETE[args.resource_type]
    if is_true(props.get(key)):
        yield f"{key}: true deletes the contents with the resource (objects, images, recovery points); keep it false."


def _data_independent(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    for resource in resources:
        if resource.resource_type not in DATA_TYPES:
            continue
        seen: set[str] = set()
        todo = list(resource.dependencies) + [d for ds in resource.property_dependencies.values() for d in ds]
        while todo:
            dep = todo.pop()
            if dep.urn in seen:
                continue
            seen.add(dep.urn)
            if dep.resource_type.startswith(KUBERNETES):
                yield (
                    resource.urn,
                    (
                        f"Data resource {resource.name} waits for {dep.resource_type} {dep.name}; the "
                        "data tier must depend only on the network and the node security group."
                    ),
                )
                break
            todo += list(dep.dependencies)


POLICIES = [
    stack_policy(
        "stack-required-tags",
        "Every taggable AWS resource carries the required tags.",
        Severity.MEDIUM,
        "Set them in keel:tags (the provider's default tags) or on the resource.",
        _required_tags,
        {"tags": {"type": "array", "items": {"type": "string"}}},
    ),
    stack_policy(
        "stack-stateful-resources-protected",
        "Databases, caches, buckets, keys, secrets, backup vaults, log groups and the cluster are protected.",
        Severity.HIGH,
        "Keep keel:protect: true (prod).",
        _protected,
    ),
    resource_policy(
        "stack-stateful-no-force-delete",
        "Buckets, registries and backup vaults are never deleted with their contents.",
        Severity.HIGH,
        "Keep forceDestroy / forceDelete false (keel:protect: true).",
        tuple(FORCE_DELETE),
        _no_force_delete,
    ),
    stack_policy(
        "stack-data-tier-independent-of-kubernetes",
        "The data tier never waits for the cluster.",
        Severity.HIGH,
        "Depend on the node security group, not on the cluster or its resources.",
        _data_independent,
    ),
]
