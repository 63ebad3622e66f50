"""EKS policies: endpoint exposure, secrets encryption, logs, versions, access entries, nodes and the GPU pool."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from ._util import as_list, configured, dig, of_type, resource_policy, stack_policy

CLUSTER = ("eks:index:Cluster", "aws:eks/cluster:Cluster")
NODE_GROUP = ("eks:index:ManagedNodeGroup", "aws:eks/nodeGroup:NodeGroup")
LAUNCH_TEMPLATE = ("aws:ec2/launchTemplate:LaunchTemplate",)
LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
GPU_FAMILIES = ("g4dn", "g5", "g6", "g6e", "gr6", "p3", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en")


def _endpoint(props: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """An endpoint setting from either the pulumi-eks component or the raw aws.eks.Cluster."""
    return props.get(key, dig(props, f"vpcConfig.{key}", default))


def _private(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if _endpoint(props, "endpointPrivateAccess") is not True:
        yield "The API server must have a private endpoint (endpointPrivateAccess: true)."


def _public_restricted(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if _endpoint(props, "endpointPublicAccess", True) is False:
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
    allowed = [str(v) for v in configured(args, "versions", ["1.33", "1.34"])]
    if str(props.get("version")) not in allowed:
        yield f"Kubernetes {props.get('version')} is not supported here; allowed: {', '.join(allowed)}."


def _access_entries(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    mode = props.get("authenticationMode", dig(props, "accessConfig.authenticationMode"))
    if mode != "API":
        yield "Cluster access must use EKS access entries (authenticationMode: API), not the aws-auth ConfigMap."


def _no_ssh(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if props.get("remoteAccess"):
        yield "Node groups must not allow SSH (remoteAccess); use SSM Session Manager if a shell is needed."


def _imds(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    options = props.get("metadataOptions") or {}
    if options.get("httpTokens") != "required":
        yield "Instances must require IMDSv2 (metadataOptions.httpTokens: required)."
    if int(options.get("httpPutResponseHopLimit") or 1) > 2:
        yield "The IMDS hop limit must be 2 at most, so pods cannot reach node credentials through extra hops."


def _volumes(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    for mapping in as_list(props.get("blockDeviceMappings")):
        ebs = mapping.get("ebs") or {}
        if str(ebs.get("encrypted")).lower() != "true":
            yield f"Volume {mapping.get('deviceName', '?')} must be encrypted."


def _no_public_ip(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    for interface in as_list(props.get("networkInterfaces")):
        if str(interface.get("associatePublicIpAddress")).lower() == "true":
            yield "Nodes must not get public IP addresses."


def _gpu_group(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if (props.get("labels") or {}).get("keel.dev/pool") != "gpu":
        return
    if props.get("capacityType") != "SPOT":
        yield "The GPU pool must use Spot capacity."
    taints = as_list(props.get("taints"))
    if not any(t.get("key") == "nvidia.com/gpu" and t.get("effect") == "NO_SCHEDULE" for t in taints):
        yield "The GPU pool must be tainted nvidia.com/gpu:NoSchedule so only GPU pods land there."
    if int(dig(props, "scalingConfig.minSize", 1)) != 0:
        yield "The GPU pool must scale to zero (scalingConfig.minSize: 0)."
    bad = [t for t in as_list(props.get("instanceTypes")) if str(t).split(".")[0] not in GPU_FAMILIES]
    if bad:
        yield f"The GPU pool may only use GPU instance types; got {', '.join(bad)}."


def _scale_from_zero_tags(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    tags_by_group: dict[str, set[str]] = {}
    for tag in of_type(resources, "aws:autoscaling/tag:Tag"):
        key = str(dig(tag.props, "tag.key", ""))
        for dependency in tag.dependencies:
            tags_by_group.setdefault(dependency.urn, set()).add(key)
    for group in of_type(resources, "eks:index:ManagedNodeGroup"):
        keys = tags_by_group.get(group.urn, set())
        needed = {"k8s.io/cluster-autoscaler/enabled"}
        if (group.props.get("labels") or {}).get("keel.dev/pool") == "gpu":
            needed |= {
                "k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu",
                "k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu",
            }
        missing = sorted(needed - keys)
        if missing:
            yield group.urn, f"Node group {group.name} lacks the autoscaler ASG tags: {', '.join(missing)}."


def _node_group_template(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    for group in of_type(resources, "eks:index:ManagedNodeGroup"):
        if not group.props.get("launchTemplate"):
            yield group.urn, f"Node group {group.name} must use keel's launch template (IMDSv2, encrypted volumes)."


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
        "Cluster access uses EKS access entries.",
        Severity.MEDIUM,
        "Set authenticationMode: API and grant access with accessEntries.",
        CLUSTER,
        _access_entries,
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
        "Instances require IMDSv2 with a small hop limit.",
        Severity.HIGH,
        "Set metadataOptions httpTokens: required, httpPutResponseHopLimit <= 2.",
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
