"""Cluster and add-ons: control plane settings, node groups, scale-from-zero tags, Helm releases, IAM."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from components.cluster import autoscaler_tags, gpus_per_instance
from components.config import ConfigError, NodeGroupConfig, validate
from keel.engine import Preview, Step
from tests.helpers import PROD_OPERATIONS, physical_id, policy_doc

ACCOUNT = "123456789012"
CLUSTER_ARN = f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/keel-prod"
TAG = "aws:autoscaling/tag:Tag"
RELEASE = "kubernetes:helm.sh/v3:Release"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"

# ------------------------------------------------------------------------------------------ config rules

GENERAL = {"instanceTypes": ["m5.xlarge"], "minSize": 2, "maxSize": 4}
GPU = {"instanceTypes": ["g4dn.xlarge"], "capacityType": "SPOT", "minSize": 0, "maxSize": 1, "gpu": True}


def prod_with(cluster: dict[str, Any], environment: str = "prod") -> dict[str, str]:
    base: dict[str, Any] = {"nodeGroups": {"general": GENERAL, "gpu": GPU}}
    return {
        "aws:region": "us-east-1",
        "keel:environment": environment,
        "keel:protect": "true",
        "keel:cluster": json.dumps({**base, **cluster}),
        **(PROD_OPERATIONS if environment == "prod" else {}),
    }


def group(**changes: Any) -> dict[str, Any]:
    return {"nodeGroups": {"general": {**GENERAL, **changes}, "gpu": GPU}}


def gpu_group(**changes: Any) -> dict[str, Any]:
    return {"nodeGroups": {"general": GENERAL, "gpu": {**GPU, **changes}}}


CLUSTER_CASES: list[tuple[str, dict[str, Any], str]] = [
    (
        "unknown node group",
        {"nodeGroups": {"general": GENERAL, "batch": GENERAL}},
        "keel:cluster.nodeGroups.batch: unknown key; allowed keys: general, gpu",
    ),
    (
        "unknown node group key",
        group(spot=True),
        "keel:cluster.nodeGroups.general.spot: unknown key; allowed keys: capacityType, desiredSize, diskSizeGb, "
        "gpu, instanceTypes, labels, maxSize, minSize",
    ),
    (
        "min above max",
        group(minSize=5, maxSize=4),
        "keel:cluster.nodeGroups.general.minSize: got 5; must be at most maxSize (4)",
    ),
    (
        "desired below min",
        group(desiredSize=1),
        "keel:cluster.nodeGroups.general.desiredSize: got 1; must be between minSize (2) and maxSize (4)",
    ),
    (
        "desired above max",
        group(desiredSize=9),
        "keel:cluster.nodeGroups.general.desiredSize: got 9; must be between minSize (2) and maxSize (4)",
    ),
    (
        "no instance types",
        group(instanceTypes=[]),
        "keel:cluster.nodeGroups.general.instanceTypes: got []; list at least one instance type, such as 'm5.xlarge'",
    ),
    (
        "malformed instance type",
        group(instanceTypes=["m5 xlarge"]),
        "keel:cluster.nodeGroups.general.instanceTypes: got 'm5 xlarge'; expected an EC2 instance type such as "
        "'m5.xlarge'",
    ),
    (
        "gpu group without gpu flag",
        gpu_group(gpu=False),
        "keel:cluster.nodeGroups.gpu.gpu: got false; the gpu group must set gpu: true",
    ),
    (
        "gpu group with a non-GPU type",
        gpu_group(instanceTypes=["g4dn.xlarge", "m5.xlarge"]),
        'keel:cluster.nodeGroups.gpu.instanceTypes: got ["m5.xlarge"] in a GPU group; allowed families: g4dn, g5, '
        "g6, g6e, gr6, p3, p3dn, p4d, p4de, p5, p5e, p5en",
    ),
    (
        "GPU type in the general group",
        group(instanceTypes=["m5.xlarge", "g5.xlarge"]),
        'keel:cluster.nodeGroups.general.instanceTypes: got GPU types ["g5.xlarge"] in a group without gpu: true; '
        "set gpu: true or use the gpu group",
    ),
    (
        "on-demand GPUs when Spot is required",
        gpu_group(capacityType="ON_DEMAND"),
        "keel:cluster.nodeGroups.gpu.capacityType: got 'ON_DEMAND' while keel:cluster.requireSpotGpus is true; "
        "allowed: 'SPOT' (or set requireSpotGpus: false)",
    ),
    ("unsupported Kubernetes version", {"version": "1.27"}, "keel:cluster.version: got '1.27'; allowed: 1.33, 1.34"),
    (
        "malformed admin ARN",
        {"adminRoleArns": ["arn:aws:iam::1234:user/bob"]},
        "keel:cluster.adminRoleArns: got 'arn:aws:iam::1234:user/bob'; expected IAM role ARNs like "
        "'arn:aws:iam::111122223333:role/platform-admin'",
    ),
    (
        "malformed public CIDR",
        {"publicAccessCidrs": ["203.0.113.0/33"]},
        "keel:cluster.publicAccessCidrs: got '203.0.113.0/33'; expected CIDR blocks such as '203.0.113.0/24'",
    ),
    (
        "private range as public CIDR",
        {"publicAccessCidrs": ["10.0.0.0/8"]},
        "keel:cluster.publicAccessCidrs: got '10.0.0.0/8'; the public endpoint only sees public addresses",
    ),
    (
        "open endpoint in prod",
        {"publicAccessCidrs": ["0.0.0.0/0"]},
        "keel:cluster.publicAccessCidrs: got '0.0.0.0/0' in a prod stack; allowed: [] (private endpoint only) or "
        "specific CIDRs such as your VPN's",
    ),
    (
        "prod without deletion protection",
        {"deletionProtection": False},
        "keel:cluster.deletionProtection: got false in a prod stack; allowed: true",
    ),
    (
        "node group size out of range",
        group(maxSize=500),
        "keel:cluster.nodeGroups.general.maxSize: got 500; allowed: 1 to 100",
    ),
    ("missing general group", {"nodeGroups": {"gpu": GPU}}, "keel:cluster.nodeGroups.general: required key is missing"),
]


@pytest.mark.parametrize(("cluster", "message"), [c[1:] for c in CLUSTER_CASES], ids=[c[0] for c in CLUSTER_CASES])
def test_cluster_config_rules(cluster: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate("prod", prod_with(cluster))
    assert caught.value.problems == [message]


def test_loosening_is_explicit() -> None:
    dev = validate("dev", prod_with({"publicAccessCidrs": ["0.0.0.0/0"], "deletionProtection": False}, "dev"))
    assert dev.cluster is not None and dev.cluster.public_access_cidrs == ["0.0.0.0/0"]
    on_demand = validate("prod", prod_with({**gpu_group(capacityType="ON_DEMAND"), "requireSpotGpus": False}))
    assert on_demand.cluster is not None and on_demand.cluster.node_groups.gpu is not None
    assert on_demand.cluster.node_groups.gpu.capacity_type == "ON_DEMAND"


# ------------------------------------------------------------------------------------------ control plane


def eks_cluster(p: Preview) -> Step:
    return p.one("eks:index:Cluster", f"keel-{p.stack}-eks")


def ref_urn(value: Any) -> str:
    assert isinstance(value, dict) and "urn" in value, value
    return str(value["urn"])


@pytest.mark.parametrize(("stack", "protected"), [("prod", True), ("dev", False)])
def test_control_plane(preview: Callable[[str], Preview], stack: str, protected: bool) -> None:
    p = preview(stack)
    step = eks_cluster(p)
    inputs = step.inputs
    assert inputs["name"] == f"keel-{stack}"
    assert inputs["version"] == "1.34"
    assert inputs["authenticationMode"] == "API"
    assert inputs["accessEntries"] == {
        "admin-0": {
            "principalArn": "arn:aws:iam::111122223333:role/platform-admin",
            "accessPolicies": {
                "cluster-admin": {
                    "policyArn": "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
                    "accessScope": {"type": "cluster"},
                }
            },
        }
    }
    assert inputs["endpointPrivateAccess"] is True
    assert inputs["endpointPublicAccess"] is False
    assert "publicAccessCidrs" not in inputs
    assert inputs["enabledClusterLogTypes"] == ["api", "audit", "authenticator", "controllerManager", "scheduler"]
    assert inputs["skipDefaultNodeGroup"] is True
    assert inputs["skipDefaultSecurityGroups"] is True
    assert inputs["createOidcProvider"] is False
    assert inputs["bootstrapSelfManagedAddons"] is False
    assert inputs["vpcCniOptions"]["enableNetworkPolicy"] is True
    assert inputs["corednsAddonOptions"]["enabled"] is True
    assert inputs["kubeProxyAddonOptions"]["enabled"] is True
    assert inputs["deletionProtection"] is protected
    assert step.protect is protected
    key = p.one("aws:kms/key:Key", f"keel-{stack}-cluster")
    assert step.property_dependencies["encryptionConfigKeyArn"] == [key.urn]
    assert key.inputs["enableKeyRotation"] is True
    assert key.protect is protected
    urns = p.by_urn()
    assert sorted(urns[u].name for u in step.property_dependencies["subnetIds"]) == sorted(
        s.name for s in p.of_type("aws:ec2/subnet:Subnet") if "-private-" in s.name
    )
    assert urns[ref_urn(inputs["clusterSecurityGroup"])].name == f"keel-{stack}-control-plane"
    log_group = p.one("aws:cloudwatch/logGroup:LogGroup", f"keel-{stack}-control-plane")
    assert log_group.inputs["name"] == f"/aws/eks/keel-{stack}/cluster"
    assert log_group.property_dependencies["kmsKeyId"] == [key.urn]
    assert log_group.urn in step.dependencies  # exists before EKS would create it unencrypted


def test_cluster_key_policy_and_service_role(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    key = p.one("aws:kms/key:Key", "keel-prod-cluster")
    statements = policy_doc(key)["Statement"]
    assert [s["Principal"] for s in statements] == [
        {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        {"Service": "logs.us-east-1.amazonaws.com"},
    ]
    assert statements[1]["Condition"] == {
        "ArnEquals": {
            "kms:EncryptionContext:aws:logs:arn": [
                f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/eks/keel-prod/cluster"
            ]
        }
    }
    role = p.one(ROLE, "keel-prod-cluster")
    assert policy_doc(role, "assumeRolePolicy")["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    assert p.one(ATTACHMENT, "keel-prod-cluster").inputs["policyArn"] == (
        "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"
    )
    kms = policy_doc(p.one(ROLE_POLICY, "keel-prod-cluster-kms"))["Statement"]
    assert kms == [
        {
            "Effect": "Allow",
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
            "Resource": f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{physical_id(key)}",
        }
    ]


def test_public_endpoint_is_only_for_listed_cidrs() -> None:
    from components.cluster import Cluster
    from components.config import ClusterConfig, NetworkConfig
    from components.network import Network
    from tests.helpers import run

    cluster = ClusterConfig.model_validate(
        {"nodeGroups": {"general": GENERAL}, "publicAccessCidrs": ["52.94.76.0/22"]}, by_alias=True
    )

    def program() -> None:
        net = Network("n", NetworkConfig.model_validate({"cidr": "10.30.0.0/16", "availabilityZones": 2}))
        Cluster("c", cluster, network=net, protect=False)

    p = run(program)
    inputs = p.one("eks:index:Cluster", "c-eks").inputs
    assert inputs["endpointPublicAccess"] is True
    assert inputs["endpointPrivateAccess"] is True
    assert inputs["publicAccessCidrs"] == ["52.94.76.0/22"]
    assert not p.of_type("aws:eks/nodeGroup:NodeGroup")  # a pulumi-eks child: only the component is previewed
    assert [s.name for s in p.of_type("eks:index:ManagedNodeGroup")] == ["c-general"]


# ------------------------------------------------------------------------------------------ security groups


def test_node_and_control_plane_security_groups(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    urns = p.by_urn()
    nodes = p.one("aws:ec2/securityGroup:SecurityGroup", "keel-prod-nodes")
    cp = p.one("aws:ec2/securityGroup:SecurityGroup", "keel-prod-control-plane")
    eks = eks_cluster(p)
    # created before the control plane: neither group depends on the cluster
    assert eks.urn not in nodes.dependencies and eks.urn not in cp.dependencies
    assert "ingress" not in nodes.inputs and "egress" not in nodes.inputs

    def rules(kind: str, sg: Step) -> list[dict[str, Any]]:
        out = []
        for rule in p.of_type(f"aws:vpc/securityGroup{kind}Rule:SecurityGroup{kind}Rule"):
            if rule.property_dependencies.get("securityGroupId") != [sg.urn]:
                continue
            source = rule.property_dependencies.get("referencedSecurityGroupId")
            out.append(
                {
                    "from": urns[source[0]].name if source else rule.inputs.get("cidrIpv4"),
                    "protocol": rule.inputs["ipProtocol"],
                    "ports": (rule.inputs.get("fromPort"), rule.inputs.get("toPort")),
                }
            )
        return sorted(out, key=lambda r: (str(r["from"]), str(r["ports"])))

    assert rules("Ingress", cp) == [
        {"from": "10.99.0.0/16", "protocol": "tcp", "ports": (443, 443)},  # keel:cluster.privateAccessCidrs (VPN)
        {"from": "keel-prod-nodes", "protocol": "tcp", "ports": (443, 443)},
    ]
    assert rules("Egress", cp) == []
    # (the ALB's rules into the nodes are the load balancer's, tested with it)
    assert [r for r in rules("Ingress", nodes) if r["from"] != "keel-prod-alb"] == [
        {"from": "keel-prod-control-plane", "protocol": "tcp", "ports": (1025, 65535)},
        {"from": "keel-prod-control-plane", "protocol": "tcp", "ports": (443, 443)},
        {"from": "keel-prod-nodes", "protocol": "-1", "ports": (None, None)},
    ]
    assert rules("Egress", nodes) == [{"from": "0.0.0.0/0", "protocol": "-1", "ports": (None, None)}]
    for rule in p.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        # the ALB's 80/443 are the only open ingress (tested with the load balancer)
        assert rule.inputs.get("cidrIpv4") != "0.0.0.0/0" or rule.name in ("keel-prod-alb-80", "keel-prod-alb-443")
        assert rule.inputs["description"]


# ------------------------------------------------------------------------------------------ node groups

EXPECTED_GROUPS = {
    # stack, group: (instance types, capacity, ami, min, desired, max)
    ("prod", "general"): (["m5.xlarge"], "ON_DEMAND", "AL2023_x86_64_STANDARD", 2, 2, 4),
    ("prod", "gpu"): (["g4dn.xlarge"], "SPOT", "AL2023_x86_64_NVIDIA", 0, 0, 1),
    ("dev", "general"): (["m5.large", "m5a.large"], "SPOT", "AL2023_x86_64_STANDARD", 1, 1, 3),
    ("dev", "gpu"): (["g4dn.xlarge", "g5.xlarge"], "SPOT", "AL2023_x86_64_NVIDIA", 0, 0, 1),
}


@pytest.mark.parametrize(("stack", "name"), list(EXPECTED_GROUPS))
def test_managed_node_groups(preview: Callable[[str], Preview], stack: str, name: str) -> None:
    p = preview(stack)
    types, capacity, ami, low, desired, high = EXPECTED_GROUPS[(stack, name)]
    step = p.one("eks:index:ManagedNodeGroup", f"keel-{stack}-{name}")
    inputs = step.inputs
    assert inputs["instanceTypes"] == types
    assert inputs["capacityType"] == capacity
    assert inputs["amiType"] == ami
    assert inputs["scalingConfig"] == {"minSize": low, "desiredSize": desired, "maxSize": high}
    assert inputs["ignoreScalingChanges"] is True
    assert inputs["version"] == "1.34"
    assert ref_urn(inputs["cluster"]) == eks_cluster(p).urn
    assert p.by_urn()[ref_urn(inputs["nodeRole"])].name == f"keel-{stack}-nodes"
    assert "remoteAccess" not in inputs  # no SSH
    if name == "gpu":
        assert inputs["labels"] == {"keel.dev/pool": "gpu", "nvidia.com/gpu.present": "true"}
        assert inputs["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
    else:
        assert inputs["labels"] == {"keel.dev/pool": "general"}
        assert "taints" not in inputs
    template = p.one("aws:ec2/launchTemplate:LaunchTemplate", f"keel-{stack}-{name}")
    assert inputs["launchTemplate"] == {"id": physical_id(template), "version": "1"}
    assert template.inputs["metadataOptions"] == {
        "httpEndpoint": "enabled",
        "httpTokens": "required",
        "httpPutResponseHopLimit": 1,
        "instanceMetadataTags": "disabled",
    }
    assert template.inputs["blockDeviceMappings"] == [
        {
            "deviceName": "/dev/xvda",
            "ebs": {"volumeSize": 50, "volumeType": "gp3", "encrypted": "true", "deleteOnTermination": "true"},
        }
    ]
    assert "keyName" not in template.inputs
    assert "networkInterfaces" not in template.inputs  # no public IP: private subnets, node SG only
    assert [p.by_urn()[u].name for u in template.property_dependencies["vpcSecurityGroupIds"]] == [
        f"keel-{stack}-nodes"
    ]


def test_node_role_has_only_the_node_policies(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    role = p.one(ROLE, "keel-prod-nodes")
    assert policy_doc(role, "assumeRolePolicy")["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    attached = sorted(
        a.inputs["policyArn"] for a in p.of_type(ATTACHMENT) if a.property_dependencies.get("role") == [role.urn]
    )
    assert attached == [
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly",
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    ]
    assert not [r for r in p.of_type(ROLE_POLICY) if r.property_dependencies.get("role") == [role.urn]]


def test_scale_from_zero_tags_on_each_asg(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    prefix = "k8s.io/cluster-autoscaler"
    expected = {
        "general": {
            f"{prefix}/enabled": "true",
            f"{prefix}/keel-prod": "owned",
            f"{prefix}/node-template/label/eks.amazonaws.com/capacityType": "ON_DEMAND",
            f"{prefix}/node-template/label/keel.dev/pool": "general",
        },
        "gpu": {
            f"{prefix}/enabled": "true",
            f"{prefix}/keel-prod": "owned",
            f"{prefix}/node-template/label/eks.amazonaws.com/capacityType": "SPOT",
            f"{prefix}/node-template/label/keel.dev/pool": "gpu",
            f"{prefix}/node-template/label/nvidia.com/gpu.present": "true",
            f"{prefix}/node-template/taint/nvidia.com/gpu": "true:NoSchedule",
            f"{prefix}/node-template/resources/nvidia.com/gpu": "1",
        },
    }
    for name, tags in expected.items():
        group = p.one("eks:index:ManagedNodeGroup", f"keel-prod-{name}")
        found = {}
        for tag in p.of_type(TAG):
            if group.urn in tag.dependencies:
                assert tag.inputs["autoscalingGroupName"].startswith(f"eks-keel-prod-{name}-")
                assert tag.inputs["tag"]["propagateAtLaunch"] is False
                found[tag.inputs["tag"]["key"]] = tag.inputs["tag"]["value"]
        assert found == tags


@pytest.mark.parametrize(
    ("instance_type", "gpus"),
    [
        ("g4dn.xlarge", 1),
        ("g4dn.12xlarge", 4),
        ("g4dn.metal", 8),
        ("g5.48xlarge", 8),
        ("g6.24xlarge", 4),
        ("p3.2xlarge", 1),
        ("p3.8xlarge", 4),
        ("p3.16xlarge", 8),
        ("p4d.24xlarge", 8),
        ("p5.48xlarge", 8),
    ],
)
def test_gpus_per_instance(instance_type: str, gpus: int) -> None:
    assert gpus_per_instance(instance_type) == gpus


def test_autoscaler_tags_use_the_smallest_gpu_count_of_a_mixed_group() -> None:
    group = NodeGroupConfig.model_validate(
        {"instanceTypes": ["g4dn.12xlarge", "g4dn.xlarge"], "minSize": 0, "maxSize": 2, "gpu": True}, by_alias=True
    )
    assert autoscaler_tags("c", "gpu", group)["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"] == "1"


# ------------------------------------------------------------------------------------------ add-ons

POD_IDENTITY_TRUST = [
    {
        "Effect": "Allow",
        "Principal": {"Service": "pods.eks.amazonaws.com"},
        "Action": ["sts:AssumeRole", "sts:TagSession"],
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}, "ArnEquals": {"aws:SourceArn": CLUSTER_ARN}},
    }
]


def test_eks_managed_addons(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    addons = {a.inputs["addonName"]: a for a in p.of_type("aws:eks/addon:Addon")}
    assert sorted(addons) == [
        "amazon-cloudwatch-observability",  # tests/test_observability.py
        "aws-ebs-csi-driver",
        "eks-pod-identity-agent",
        "metrics-server",
    ]
    general = p.one("eks:index:ManagedNodeGroup", "keel-prod-general")
    for addon in addons.values():
        assert addon.inputs["clusterName"] == "keel-prod"
        assert general.urn in addon.dependencies
    ebs = addons["aws-ebs-csi-driver"]
    role = p.one(ROLE, "keel-prod-ebs-csi")
    assert ebs.inputs["podIdentityAssociations"] == [
        {"roleArn": f"arn:aws:iam::{ACCOUNT}:role/{physical_id(role)}", "serviceAccount": "ebs-csi-controller-sa"}
    ]
    assert addons["eks-pod-identity-agent"].urn in ebs.dependencies
    assert policy_doc(role, "assumeRolePolicy")["Statement"] == POD_IDENTITY_TRUST
    assert [
        a.inputs["policyArn"] for a in p.of_type(ATTACHMENT) if a.property_dependencies.get("role") == [role.urn]
    ] == ["arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"]


EXPECTED_RELEASES = {
    "cluster-autoscaler": ("https://kubernetes.github.io/autoscaler", "cluster-autoscaler", "9.56.0", "kube-system"),
    "nvidia-device-plugin": (
        "https://nvidia.github.io/k8s-device-plugin",
        "nvidia-device-plugin",
        "0.18.2",
        "nvidia-device-plugin",
    ),
    "keda": ("https://kedacore.github.io/charts", "keda", "2.21.1", "keda"),
    "aws-load-balancer-controller": (
        "https://aws.github.io/eks-charts",
        "aws-load-balancer-controller",
        "1.16.0",
        "kube-system",
    ),
}


@pytest.mark.parametrize("key", list(EXPECTED_RELEASES))
def test_helm_release_chart_and_ordering(preview: Callable[[str], Preview], key: str) -> None:
    p = preview("prod")
    release = p.one(RELEASE, f"keel-prod-{key}")
    repo, chart, version, namespace = EXPECTED_RELEASES[key]
    assert (
        release.inputs["repositoryOpts"]["repo"],
        release.inputs["chart"],
        release.inputs["version"],
        release.inputs["namespace"],
    ) == (repo, chart, version, namespace)
    assert release.inputs["atomic"] is True
    provider = p.one("pulumi:providers:kubernetes", "keel-prod-k8s")
    assert release.provider.rsplit("::", 1)[0] == provider.urn
    for group in p.of_type("eks:index:ManagedNodeGroup"):
        assert group.urn in release.dependencies  # pods can schedule


def values(p: Preview, key: str) -> dict[str, Any]:
    return dict(p.one(RELEASE, f"keel-prod-{key}").inputs["values"])


def test_autoscaler_values(preview: Callable[[str], Preview]) -> None:
    v = values(preview("prod"), "cluster-autoscaler")
    assert v["autoDiscovery"] == {
        "clusterName": "keel-prod",
        "tags": ["k8s.io/cluster-autoscaler/enabled", "k8s.io/cluster-autoscaler/keel-prod"],
    }
    assert v["awsRegion"] == "us-east-1"
    assert v["image"] == {"tag": "v1.34.0"}
    assert v["extraArgs"]["balance-similar-node-groups"] is True
    assert v["extraArgs"]["expander"] == "least-waste"
    assert v["extraArgs"]["scale-down-unneeded-time"] == "10m"
    assert v["nodeSelector"] == {"keel.dev/pool": "general"}
    assert v["tolerations"] == []


def test_device_plugin_runs_only_on_gpu_nodes(preview: Callable[[str], Preview]) -> None:
    v = values(preview("prod"), "nvidia-device-plugin")
    assert v["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert v["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert v["affinity"] == {}


def test_keda_and_lb_controller_values(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    keda = values(p, "keda")
    assert keda["nodeSelector"] == {"keel.dev/pool": "general"}
    assert keda["serviceAccount"] == {"operator": {"create": True, "name": "keda-operator"}}
    lb = values(p, "aws-load-balancer-controller")
    vpc = p.one("aws:ec2/vpc:Vpc", "keel-prod-vpc")
    assert (lb["clusterName"], lb["region"]) == ("keel-prod", "us-east-1")
    assert lb["vpcId"].startswith("vpc-")
    assert vpc.urn in p.one(RELEASE, "keel-prod-aws-load-balancer-controller").dependencies
    assert lb["serviceAccount"] == {"create": True, "name": "aws-load-balancer-controller"}


def role_statements(p: Preview, key: str) -> list[dict[str, Any]]:
    role = p.one(ROLE, f"keel-prod-{key}")
    assert policy_doc(role, "assumeRolePolicy")["Statement"] == POD_IDENTITY_TRUST
    association = p.one("aws:eks/podIdentityAssociation:PodIdentityAssociation", f"keel-prod-{key}")
    assert association.property_dependencies["roleArn"] == [role.urn]
    assert association.inputs["clusterName"] == "keel-prod"
    return list(policy_doc(p.one(ROLE_POLICY, f"keel-prod-{key}"))["Statement"])


def test_addon_roles_are_least_privilege(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    autoscaler = role_statements(p, "cluster-autoscaler")
    assert autoscaler[1] == {
        "Sid": "ScaleOwnGroupsOnly",
        "Effect": "Allow",
        "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
        "Resource": f"arn:aws:autoscaling:us-east-1:{ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/*",
        "Condition": {"StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/keel-prod": "owned"}},
    }
    assert role_statements(p, "keda") == [
        {
            "Sid": "ReadMetrics",
            "Effect": "Allow",
            "Action": ["cloudwatch:GetMetricData", "cloudwatch:GetMetricStatistics", "cloudwatch:ListMetrics"],
            "Resource": "*",
        }
    ]
    lb = role_statements(p, "aws-load-balancer-controller")
    assert lb[1] == {
        "Sid": "BindTargetsOfThisStack",
        "Effect": "Allow",
        "Action": ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"],
        "Resource": f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:targetgroup/*/*",
        "Condition": {"StringEquals": {"aws:ResourceTag/stack": "prod"}},
    }
    # anything allowed on every resource is a read: Describe*/Get*/List*, as AWS documents for these APIs
    for statement in [*autoscaler, *lb]:
        if statement["Resource"] == "*":
            for action in statement["Action"]:
                verb = action.split(":")[1]
                assert verb.startswith(("Describe", "Get", "List")), action
    assert not p.one(RELEASE, "keel-prod-nvidia-device-plugin").inputs.get("serviceAccount")
    assert not [r for r in p.of_type(ROLE) if "nvidia" in r.name]


def test_a_cluster_needs_nat_egress_and_private_operator_ranges() -> None:
    raw = prod_with({})
    raw["keel:network"] = json.dumps({"natGateways": "None"})
    with pytest.raises(ConfigError) as caught:
        validate("prod", raw)
    assert caught.value.problems == [
        "keel:network.natGateways: got 'None' with a cluster; nodes pull add-on images from public registries and "
        "call AWS APIs without endpoints for all of them; allowed: 'Single' or 'OnePerAz'"
    ]
    with pytest.raises(ConfigError) as caught:
        validate("prod", prod_with({"privateAccessCidrs": ["8.8.8.0/24"]}))
    assert caught.value.problems == [
        "keel:cluster.privateAccessCidrs: got '8.8.8.0/24'; the private endpoint admits RFC 1918 ranges only"
    ]
