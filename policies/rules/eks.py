"""EKS policies: endpoint exposure, secrets encryption, logs, versions, access entries, nodes and the GPU pool."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from components.upstream import AUTOSCALER_GPU_LABEL
from components.vocabulary import GPU_FAMILIES, GPU_POOL, GPU_RESOURCE, GPU_TAINT, KUBERNETES_VERSIONS, POOL_LABEL

from ._util import (
    as_list,
    configured,
    dig,
    document,
    is_false,
    is_true,
    num,
    number,
    of_type,
    resource_policy,
    shown,
    stack_policy,
    threshold,
)

CLUSTER = ("eks:index:Cluster", "aws:eks/cluster:Cluster")
NODE_GROUP = ("eks:index:ManagedNodeGroup", "aws:eks/nodeGroup:NodeGroup")
#: The template label of the autoscaler's GPU label on a GPU group's ASG.
GPU_LABEL_TAG = f"k8s.io/cluster-autoscaler/node-template/label/{AUTOSCALER_GPU_LABEL.value}"
LAUNCH_TEMPLATE = ("aws:ec2/launchTemplate:LaunchTemplate",)
LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")


def _endpoint(props: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """An endpoint setting from either the pulumi-eks component or the raw aws.eks.Cluster."""
    return props.get(key, dig(props, f"vpcConfig.{key}", default))


def _private(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if not is_true(_endpoint(props, "endpointPrivateAccess")):
        yield "The API server must have a private endpoint (endpointPrivateAccess: true)."


def _public_restricted(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if is_false(_endpoint(props, "endpointPublicAccess", True)):
        return
    cidrs = as_list(_endpoint(props, "publicAccessCidrs"))
    if not cidrs or any(str(c).endswith("/0") for c in cidrs):
        yield "A public API endpoint must be limited to specific CIDRs, never 0.0.0.0/0 (or turn it off)."


def _secrets(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if not props.get("encryptionConfigKeyArn") and not dig(props, "encryptionConfig.provider.keyArn"):
        yield "Kubernetes secrets must be envelope-encrypted with a customer-managed KMS key."


def _logs(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    missing = [t for t in LOG_TYPES if t not in as_list(props.get("enabledClusterLogTypes"))]
    if missing:
        yield f"All control-plane log types must be on; missing: {', '.join(missing)}."


def _version(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    allowed = [str(v) for v in configured(args, "versions", list(KUBERNETES_VERSIONS))]
    if str(props.get("version")) not in allowed:
        yield f"Kubernetes {props.get('version')} is not supported here; allowed: {', '.join(allowed)}."


def _access_entries(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    mode = props.get("authenticationMode", dig(props, "accessConfig.authenticationMode"))
    if mode != "API":
        yield "Cluster access must use EKS access entries (authenticationMode: API), not the aws-auth ConfigMap."
    entries = props.get("accessEntries") or {}
    for key, entry in entries.items() if isinstance(entries, Mapping) else []:
        principal = str((entry or {}).get("principalArn", ""))
        if ":role/" not in principal:
            yield (
                f"Access entry {key} grants {principal or 'nobody'}: grant roles (people assume them with MFA), "
                "never an account root or an IAM user."
            )
    if is_true(props.get("bootstrapClusterCreatorAdminPermissions")):
        yield "Whoever runs pulumi up must not become cluster admin (bootstrapClusterCreatorAdminPermissions)."


def _creator_not_admin(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    # EKS defaults the setting to true when it is absent, and reads it only at creation.
    if not is_false(dig(props, "accessConfig.bootstrapClusterCreatorAdminPermissions")):
        yield (
            "The control plane must not make its creator a cluster admin: set "
            "accessConfig.bootstrapClusterCreatorAdminPermissions: false (EKS defaults it to true, pulumi-eks sets it "
            "true) and grant the deploy role an access entry."
        )


def _network_policy_enforced(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    if args.resource_type == "aws:eks/addon:Addon":
        if props.get("addonName") != "vpc-cni":
            return
        values = props.get("configurationValues")
        enabled = is_true(dig(document(values), "enableNetworkPolicy"))
    else:
        enabled = is_true(dig(props, "vpcCniOptions.enableNetworkPolicy"))
    if not enabled:
        yield "The VPC CNI must enforce NetworkPolicies (enableNetworkPolicy: true); without it they are ignored."


def _no_ssh(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if props.get("remoteAccess"):
        yield "Node groups must not allow SSH (remoteAccess); use SSM Session Manager if a shell is needed."


def _imds(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    options = props.get("metadataOptions") or {}
    if options.get("httpEndpoint") == "disabled":
        return  # no metadata service at all: nothing to reach
    if options.get("httpTokens") != "required":
        yield "Instances must require IMDSv2 (metadataOptions.httpTokens: required)."
    # Pods are one network hop from the node (VPC CNI), so a hop limit of 2 hands them the node role's
    # credentials; keel's pods get their own through Pod Identity and never need the node's.
    hops = num(options.get("httpPutResponseHopLimit"), "metadataOptions.httpPutResponseHopLimit")
    if hops is None or hops > 1:
        yield (
            f"The IMDS hop limit must be 1 (got {number(hops) if hops is not None else 'the default'}), so pods "
            "cannot reach the node role's credentials; pods use Pod Identity."
        )


def _volumes(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    for mapping in as_list(props.get("blockDeviceMappings")):
        ebs = mapping.get("ebs") or {}
        if not is_true(ebs.get("encrypted")):
            yield f"Volume {mapping.get('deviceName', '?')} must be encrypted."


def _no_public_ip(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    for interface in as_list(props.get("networkInterfaces")):
        if is_true(interface.get("associatePublicIpAddress")):
            yield "Nodes must not get public IP addresses."


def _gpu_group(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if (props.get("labels") or {}).get(POOL_LABEL) != GPU_POOL:
        return
    if props.get("capacityType") != "SPOT":
        yield "The GPU pool must use Spot capacity."
    taints = as_list(props.get("taints"))
    if not any(t.get("key") == GPU_TAINT["key"] and t.get("effect") == GPU_TAINT["effect"] for t in taints):
        yield "The GPU pool must be tainted nvidia.com/gpu:NoSchedule so only GPU pods land there."
    if num(dig(props, "scalingConfig.minSize")) != 0:
        yield "The GPU pool must scale to zero (scalingConfig.minSize: 0)."
    bad = [t for t in as_list(props.get("instanceTypes")) if str(t).split(".")[0] not in GPU_FAMILIES]
    if bad:
        yield f"The GPU pool may only use GPU instance types; got {', '.join(bad)}."
    if not (props.get("labels") or {}).get(AUTOSCALER_GPU_LABEL.value):
        yield (
            f"The GPU pool's nodes must carry {AUTOSCALER_GPU_LABEL.value} (the cluster autoscaler's GPU label), so a "
            "new node is not taken for one without GPUs before its device plugin reports them."
        )


def _cluster_deletion_protection(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if not is_true(props.get("deletionProtection")):
        yield "The cluster must have deletion protection on (deletionProtection: true)."


def _managed_node_groups(resources: Sequence[PolicyResource]) -> list[PolicyResource]:
    """Each managed node group once: the pulumi-eks component, or the raw ``aws:eks/nodeGroup:NodeGroup`` when it
    is not that component's child (a real preview shows both)."""
    components = of_type(resources, NODE_GROUP[0])
    raw = [g for g in of_type(resources, NODE_GROUP[1]) if g.parent is None or g.parent.resource_type != NODE_GROUP[0]]
    return [*components, *raw]


def _pool_min_size(resources: Sequence[PolicyResource], args: StackValidationArgs) -> Iterable[tuple[str, str]]:
    """Per pool (the groups sharing a ``keel.dev/pool`` label, such as the general pool's one group per zone; a
    group without the label is a pool of its own), the sum of their ``scalingConfig.minSize``."""
    minimum = threshold(args, "minimum", 2)
    pools: dict[tuple[str, str], list[PolicyResource]] = {}
    for group in _managed_node_groups(resources):
        pool = (group.props.get("labels") or {}).get(POOL_LABEL)
        if pool == GPU_POOL:
            continue
        key = ("Node pool", str(pool)) if pool else ("Node group", group.name)
        pools.setdefault(key, []).append(group)
    for (kind, name), groups in pools.items():
        lows = [dig(g.props, "scalingConfig.minSize") for g in groups]
        if sum(num(low, "scalingConfig.minSize") or 0.0 for low in lows) >= minimum:
            continue
        members = f" ({', '.join(g.name for g in groups)})" if kind == "Node pool" else ""
        yield (
            groups[0].urn,
            f"{kind} {name}{members} must keep at least {number(minimum)} nodes in all (scalingConfig.minSize: "
            f"{' + '.join(str(shown(low)) for low in lows)}), so losing one node keeps the platform up.",
        )


def _pod_identity_account(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if props.get("serviceAccount") in (None, "", "default"):
        yield (
            f"Pod Identity binds a role to {props.get('namespace')}/{props.get('serviceAccount') or 'default'}: every "
            "pod of the namespace without its own service account would get the role. Bind the service's own account."
        )


def _one_role_per_account(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    by_role: dict[str, list[PolicyResource]] = {}
    for association in of_type(resources, "aws:eks/podIdentityAssociation:PodIdentityAssociation"):
        key = str(association.props.get("roleArn"))
        by_role.setdefault(key, []).append(association)
    for role, associations in by_role.items():
        if len(associations) > 1:
            accounts = ", ".join(f"{a.props.get('namespace')}/{a.props.get('serviceAccount')}" for a in associations)
            yield associations[-1].urn, f"Service accounts {accounts} share one role ({role}); each gets its own."


def _container_logs(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if props.get("addonName") != "amazon-cloudwatch-observability":
        return
    if not is_true(dig(document(props.get("configurationValues")), "containerLogs.enabled")):
        yield "Container logs must reach CloudWatch (configurationValues containerLogs.enabled: true)."


def _scale_from_zero_tags(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    tags_by_group: dict[str, set[str]] = {}
    for tag in of_type(resources, "aws:autoscaling/tag:Tag"):
        key = str(dig(tag.props, "tag.key", ""))
        for dependency in tag.dependencies:
            tags_by_group.setdefault(dependency.urn, set()).add(key)
    for group in of_type(resources, "eks:index:ManagedNodeGroup"):
        keys = tags_by_group.get(group.urn, set())
        needed = {"k8s.io/cluster-autoscaler/enabled"}
        if (group.props.get("labels") or {}).get(POOL_LABEL) == GPU_POOL:
            needed |= {
                f"k8s.io/cluster-autoscaler/node-template/resources/{GPU_RESOURCE}",
                f"k8s.io/cluster-autoscaler/node-template/taint/{GPU_TAINT['key']}",
                GPU_LABEL_TAG,
            }
        missing = sorted(needed - keys)
        if missing:
            yield group.urn, f"Node group {group.name} lacks the autoscaler ASG tags: {', '.join(missing)}."


def _node_group_template(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    for group in of_type(resources, "eks:index:ManagedNodeGroup"):
        if not group.props.get("launchTemplate"):
            yield group.urn, f"Node group {group.name} must use keel's launch template (IMDSv2, encrypted volumes)."


MINIMUM_SCHEMA = {"minimum": {"type": "integer", "minimum": 0, "default": 2}}
VERSIONS_SCHEMA = {"versions": {"type": "array", "items": {"type": "string"}}}

POLICIES = [
    resource_policy(
        "aws-eks-cluster-private-endpoint",
        "The API server has a private endpoint.",
        Severity.HIGH,
        "Set endpointPrivateAccess: true.",
        CLUSTER,
        _private,
    ),
    resource_policy(
        "aws-eks-cluster-public-endpoint-restricted",
        "A public API endpoint is limited to known CIDRs.",
        Severity.CRITICAL,
        "Set keel:cluster.publicAccessCidrs to specific ranges, or [] for private only.",
        CLUSTER,
        _public_restricted,
    ),
    resource_policy(
        "aws-eks-cluster-secrets-encryption",
        "Kubernetes secrets are envelope-encrypted.",
        Severity.HIGH,
        "Set encryptionConfigKeyArn to a customer-managed key.",
        CLUSTER,
        _secrets,
    ),
    resource_policy(
        "aws-eks-cluster-control-plane-logs",
        "All control-plane logs are on.",
        Severity.MEDIUM,
        "Enable api, audit, authenticator, controllerManager and scheduler logs.",
        CLUSTER,
        _logs,
    ),
    resource_policy(
        "aws-eks-cluster-supported-version",
        "Clusters run a supported Kubernetes version.",
        Severity.MEDIUM,
        "Set keel:cluster.version to a supported version.",
        CLUSTER,
        _version,
        VERSIONS_SCHEMA,
    ),
    resource_policy(
        "aws-eks-cluster-access-entries",
        "Cluster access uses EKS access entries, granted to roles only.",
        Severity.MEDIUM,
        "Set authenticationMode: API and grant roles access with accessEntries.",
        CLUSTER,
        _access_entries,
    ),
    resource_policy(
        "aws-eks-cluster-deletion-protection",
        "The cluster cannot be deleted by accident.",
        Severity.HIGH,
        "Set keel:protect: true (the cluster gets deletionProtection).",
        CLUSTER,
        _cluster_deletion_protection,
    ),
    stack_policy(
        "aws-eks-node-group-minimum-size",
        "Every node pool but the GPU pool keeps enough nodes, summed over its groups, to lose one.",
        Severity.HIGH,
        "Raise keel:cluster.nodeGroups.general.minSize (2 in prod).",
        _pool_min_size,
        MINIMUM_SCHEMA,
    ),
    resource_policy(
        "aws-eks-cluster-creator-not-admin",
        "The control plane does not make its creator a cluster admin.",
        Severity.HIGH,
        "Keep components.cluster.creator_not_admin on eks.Cluster; grant keel:cluster.deployRoleArn instead.",
        CLUSTER[1:],
        _creator_not_admin,
    ),
    resource_policy(
        "aws-eks-network-policies-enforced",
        "The VPC CNI enforces NetworkPolicies.",
        Severity.HIGH,
        "Set vpcCniOptions.enableNetworkPolicy: true (components/cluster.py).",
        (*CLUSTER[:1], "aws:eks/addon:Addon"),
        _network_policy_enforced,
    ),
    resource_policy(
        "aws-eks-container-logs-shipped",
        "Container logs reach CloudWatch.",
        Severity.MEDIUM,
        "Keep containerLogs.enabled in the amazon-cloudwatch-observability add-on.",
        ("aws:eks/addon:Addon",),
        _container_logs,
    ),
    stack_policy(
        "aws-eks-pod-identity-one-role-per-service-account",
        "Each service account has its own Pod Identity role.",
        Severity.HIGH,
        "Give each service its own role (components/iam.py PodIdentityRole).",
        _one_role_per_account,
    ),
    resource_policy(
        "aws-eks-node-group-no-ssh",
        "Nodes accept no SSH.",
        Severity.HIGH,
        "Remove remoteAccess from the node group.",
        NODE_GROUP,
        _no_ssh,
    ),
    resource_policy(
        "aws-ec2-launch-template-imdsv2",
        "Instances require IMDSv2, out of pods' reach (hop limit 1).",
        Severity.HIGH,
        "Set metadataOptions httpTokens: required, httpPutResponseHopLimit: 1.",
        LAUNCH_TEMPLATE,
        _imds,
    ),
    resource_policy(
        "aws-ec2-launch-template-encrypted-volumes",
        "Instance volumes are encrypted.",
        Severity.HIGH,
        "Set ebs.encrypted on every block device mapping.",
        LAUNCH_TEMPLATE,
        _volumes,
    ),
    resource_policy(
        "aws-ec2-launch-template-no-public-ip",
        "Instances get no public IP.",
        Severity.HIGH,
        "Remove associatePublicIpAddress from the network interfaces.",
        LAUNCH_TEMPLATE,
        _no_public_ip,
    ),
    resource_policy(
        "aws-eks-gpu-node-group-spot-tainted-from-zero",
        "The GPU pool is Spot, tainted, scales from zero and uses GPU types only.",
        Severity.MEDIUM,
        "See keel:cluster.nodeGroups.gpu.",
        NODE_GROUP,
        _gpu_group,
    ),
    resource_policy(
        "aws-eks-pod-identity-own-service-account",
        "No Pod Identity association binds a namespace's default service account.",
        Severity.HIGH,
        "Associate the role with the service's own service account.",
        ("aws:eks/podIdentityAssociation:PodIdentityAssociation",),
        _pod_identity_account,
    ),
    stack_policy(
        "aws-eks-node-group-scale-from-zero-tags",
        "Node groups carry the autoscaler's ASG tags.",
        Severity.MEDIUM,
        "Create aws.autoscaling.Tag resources on the group's ASG (components/cluster.py).",
        _scale_from_zero_tags,
    ),
    stack_policy(
        "aws-eks-node-group-launch-template",
        "Node groups use a hardened launch template.",
        Severity.HIGH,
        "Pass launchTemplate to the managed node group.",
        _node_group_template,
    ),
]
