"""Cluster: the EKS control plane (pulumi-eks), its managed node groups and the EKS-managed add-ons.

Usage::

    cluster = Cluster("keel-prod", cfg.cluster, network=network, protect=True,
                      opts=pulumi.ResourceOptions(parent=platform))
    cluster.node_security_group     # created before the control plane: the data tier admits it
    cluster.k8s_provider            # a Kubernetes provider for the cluster, for add-ons and workloads

Creates (``<n>`` is the component name, which is also the EKS cluster name):

- ``<n>-cluster`` KMS key (rotation on) and alias: envelope encryption of Kubernetes secrets and the
  control-plane log group; ``<n>-control-plane`` log group ``/aws/eks/<n>/cluster`` created before the cluster
  so it has retention and encryption (EKS would create it without either).
- ``<n>-control-plane`` security group (extra SG of the control plane: 443 from nodes) and ``<n>-nodes``, the
  node security group, with the rules nodes and the control plane need between them. Both exist before the
  control plane, so the data tier can admit the node group without waiting for EKS.
- ``<n>-cluster`` service role (AmazonEKSClusterPolicy, plus use of the cluster key) and ``<n>-nodes`` node
  role (worker node, ECR pull-only and VPC CNI policies: nothing else).
- ``<n>-eks``: ``eks.Cluster`` in the private subnets, API authentication with an access entry per admin role
  (``admin-<i>``) and one for the deploy role (``deploy``), each cluster-admin, a read-only one for the preview
  role (``preview``, AmazonEKSAdminViewPolicy), and no admin access for whoever
  creates the cluster (:func:`creator_not_admin`, a transform on the component's child cluster); private endpoint,
  public endpoint only for the configured CIDRs, all five log types, secrets encryption, no default node group,
  managed vpc-cni (network policy on), coredns and kube-proxy.
- Per pool ``<p>`` (``general``, ``gpu``): ``<n>-<p>`` launch template (IMDSv2 required, hop limit 1, encrypted gp3
  root volume, no key pair, the node SG, no public IP), shared by the pool's groups. The general pool is one
  ``eks.ManagedNodeGroup`` per zone, ``<n>-general-<az>`` in that zone's private subnet with its share of the sizes
  (:meth:`~components.config.NodeGroupConfig.per_zone`), so a pod bound to a zonal EBS volume always has a group
  in its zone for the autoscaler to grow; the GPU pool is one group ``<n>-gpu`` over every zone (it scales from
  zero and holds no volumes), with the NVIDIA AMI, the ``nvidia.com/gpu=true:NoSchedule`` taint and the GPU labels
  (the autoscaler's ``k8s.amazonaws.com/accelerator`` among them). AL2023; desired size left to the autoscaler.
  ``<g>-ca-<tag>`` ``aws.autoscaling.Tag`` for each cluster-autoscaler tag on each group's ASG, so the
  autoscaler can build the node from the tags alone when the group is at zero (AWS does not propagate a managed
  node group's labels and taints to its ASG).
- EKS add-ons ``<n>-pod-identity-agent``, ``<n>-ebs-csi`` (its role ``<n>-ebs-csi`` bound by Pod Identity) and
  ``<n>-metrics-server``, after every group of the general pool so their pods can schedule.
- ``<n>-k8s``: a Kubernetes provider built from the cluster's kubeconfig.

Outputs: ``name`` (an Output: it waits for the control plane), ``cluster_name`` (the same, as text),
``arn``, ``endpoint``, ``kubeconfig``, ``control_plane`` (the ``eks.Cluster``), ``node_security_group``,
``control_plane_security_group`` (keel's group on the API server's interfaces, not the "cluster security group"
EKS creates itself), ``node_role``, ``node_groups`` (every managed node group by its name without ``<n>-``:
``general-us-east-1a``, ``gpu``), ``pools`` (the groups of each pool: wait for ``pools["general"]`` before
anything must schedule), ``k8s_provider``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from components import context
from components.config import ClusterConfig, NodeGroupConfig
from components.iam import PodIdentityRole, PodIdentityRoleArgs, document, managed_policy, statement
from components.keys import create_key, logs_may_use
from components.network import Network
from components.nodes import autoscaler_tags, first_asg_name, node_labels, tag_slug
from components.upstream import (
    EKS_ADMIN_VIEW_POLICY,
    EKS_CLUSTER_ADMIN_POLICY,
)
from components.vocabulary import (
    GENERAL_POOL,
    GPU_TAINT,
)

LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
ADMIN_POLICY = EKS_CLUSTER_ADMIN_POLICY.value
AUTHENTICATION_MODE = "API"
#: The control plane pulumi-eks creates inside ``eks.Cluster``, and its setting that makes the creator an admin.
EKS_CLUSTER_TYPE = "aws:eks/cluster:Cluster"
CREATOR_ADMIN = "bootstrapClusterCreatorAdminPermissions"
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly", "AmazonEKS_CNI_Policy")


def creator_not_admin(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    """A transform for ``eks.Cluster``: its child control plane (``aws:eks/cluster:Cluster``) gets
    ``accessConfig.bootstrapClusterCreatorAdminPermissions: false``. pulumi-eks sets it to true (and ignores later
    changes), which makes whoever runs the first ``pulumi up`` a cluster admin outside every access entry, for the
    cluster's life; EKS reads it only at creation. Every other resource passes unchanged."""
    if args.type_ != EKS_CLUSTER_TYPE:
        return None
    access = args.props.get("accessConfig")
    kept = dict(access) if isinstance(access, Mapping) else {"authenticationMode": AUTHENTICATION_MODE}
    return pulumi.ResourceTransformResult(
        props={**args.props, "accessConfig": {**kept, CREATOR_ADMIN: False}}, opts=args.opts
    )


def admin_entry(principal_arn: str) -> eks.AccessEntryArgs:
    """An access entry granting ``principal_arn`` cluster-admin on the whole cluster."""
    return _entry(principal_arn, "cluster-admin", ADMIN_POLICY)


def view_entry(principal_arn: str) -> eks.AccessEntryArgs:
    """An access entry letting ``principal_arn`` read (get, list, watch) every object, Secrets included."""
    return _entry(principal_arn, "view", EKS_ADMIN_VIEW_POLICY.value)


def _entry(principal_arn: str, key: str, policy_arn: str) -> eks.AccessEntryArgs:
    return eks.AccessEntryArgs(
        principal_arn=principal_arn,
        access_policies={
            key: eks.AccessPolicyAssociationArgs(
                policy_arn=policy_arn,
                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
            )
        },
    )


def access_entries(config: ClusterConfig) -> dict[str, eks.AccessEntryArgs]:
    """``admin-<i>`` per admin role, ``deploy`` for the deploy role and ``preview`` (read-only) for the preview role
    when they are configured."""
    entries = {f"admin-{index}": admin_entry(arn) for index, arn in enumerate(config.admin_role_arns)}
    if config.deploy_role_arn is not None:
        entries["deploy"] = admin_entry(config.deploy_role_arn)
    if config.preview_role_arn is not None:
        entries["preview"] = view_entry(config.preview_role_arn)
    return entries


def _zone_subnet(network: Network, index: int) -> pulumi.Output[list[str]]:
    """The private subnet of the network's ``index``-th zone, as a one-element list."""
    return network.private_subnet_ids.apply(lambda ids: [str(ids[index])])


def _trust(service: str) -> str:
    return json.dumps(document([{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]))


@dataclass(frozen=True)
class AddonRole:
    """An EKS add-on whose controller runs with its own Pod Identity role holding one AWS managed policy."""

    addon: str
    """The add-on's name in EKS (``aws-ebs-csi-driver``)."""
    resource_name: str
    """The ``aws.eks.Addon``'s resource name."""
    role_name: str
    """The role's resource name."""
    namespace: str
    service_account: str
    policy: str
    """The managed policy's name under ``arn:<partition>:iam::aws:policy/``."""
    description: str
    configuration: dict[str, Any] | None = None
    """The add-on's configuration values (None: its defaults)."""


def addon_with_role(
    cluster: Cluster,
    ctx: context.AwsContext,
    spec: AddonRole,
    *,
    parent: pulumi.Resource,
    depends_on: list[pulumi.Resource],
) -> aws.eks.Addon:
    """Create ``spec``'s role (associated through the add-on, so EKS binds it to the service account) and the
    add-on, after ``depends_on`` and the role's policy. Children of ``parent``."""
    role = PodIdentityRole(
        spec.role_name,
        PodIdentityRoleArgs(
            cluster_name=cluster.name,
            cluster_arn=cluster.arn,
            account=ctx.account,
            namespace=spec.namespace,
            service_account=spec.service_account,
            managed_policy_arns=(managed_policy(ctx.partition, spec.policy),),
            description=spec.description,
            associate=False,
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return aws.eks.Addon(
        spec.resource_name,
        cluster_name=cluster.name,
        addon_name=spec.addon,
        configuration_values=json.dumps(spec.configuration) if spec.configuration is not None else None,
        pod_identity_associations=[
            aws.eks.AddonPodIdentityAssociationArgs(role_arn=role.role_arn, service_account=spec.service_account)
        ],
        resolve_conflicts_on_create="OVERWRITE",
        resolve_conflicts_on_update="OVERWRITE",
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[*depends_on, role]),
    )


class Cluster(pulumi.ComponentResource):
    """An EKS cluster with managed node groups that the cluster autoscaler can scale from zero."""

    name: pulumi.Output[str]
    cluster_name: str
    arn: str
    endpoint: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    control_plane: eks.Cluster
    key: aws.kms.Key
    node_security_group: aws.ec2.SecurityGroup
    control_plane_security_group: aws.ec2.SecurityGroup
    node_role: aws.iam.Role
    node_groups: dict[str, eks.ManagedNodeGroup]
    """Every managed node group, by its name without the cluster's prefix (``general-us-east-1a``, ``gpu``)."""
    pools: dict[str, list[eks.ManagedNodeGroup]]
    """The groups of each pool in zone order (``general``: one per zone; ``gpu``: one)."""
    pod_identity_agent: aws.eks.Addon
    ebs_csi: aws.eks.Addon
    """The EBS CSI driver add-on: anything that claims an EBS volume waits for it."""
    k8s_provider: k8s.Provider
    region: str

    def __init__(
        self,
        name: str,
        config: ClusterConfig,
        *,
        network: Network,
        protect: bool = True,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``config``: the ``keel:cluster`` section (version, endpoint access, admin roles, node groups, deletion
        protection, log retention). ``network``: the VPC the nodes and the control plane's interfaces go in.
        ``protect``: True puts Pulumi ``protect`` on the cluster, its key and its log group."""
        super().__init__("keel:cluster:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        kept = pulumi.ResourceOptions(parent=self, protect=protect)
        ctx = context.lookup(pulumi.InvokeOptions(parent=self))
        self.region = ctx.region
        self.cluster_name = name
        self.arn = ctx.arn("eks", f"cluster/{name}")
        log_group_name = f"/aws/eks/{name}/cluster"
        log_group_arn = ctx.arn("logs", f"log-group:{log_group_name}")

        self.key = create_key(
            f"{name}-cluster",
            "EKS secrets envelope encryption and control-plane logs",
            ctx,
            service_statements=[logs_may_use(ctx, [log_group_arn])],
            protect=protect,
            opts=child,
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane",
            name=log_group_name,
            kms_key_id=self.key.arn,
            retention_in_days=config.log_retention_days,
            opts=kept,
        )

        self._security_groups(name, network, config.private_access_cidrs)
        service_role = self._service_role(name, ctx)
        self.node_role, node_policies = self._node_role(name, ctx)

        self.control_plane = eks.Cluster(
            f"{name}-eks",
            name=name,
            version=config.version,
            vpc_id=network.vpc_id,
            subnet_ids=network.private_subnet_ids,
            endpoint_private_access=True,
            endpoint_public_access=bool(config.public_access_cidrs),
            public_access_cidrs=list(config.public_access_cidrs) or None,
            authentication_mode=eks.AuthenticationMode.API,
            access_entries=access_entries(config),
            enabled_cluster_log_types=list(LOG_TYPES),
            encryption_config_key_arn=self.key.arn,
            service_role=service_role,
            skip_default_node_group=True,
            skip_default_security_groups=True,
            cluster_security_group=self.control_plane_security_group,
            create_oidc_provider=False,
            deletion_protection=config.deletion_protection,
            bootstrap_self_managed_addons=False,
            vpc_cni_options=eks.VpcCniOptionsArgs(enable_network_policy=True),
            coredns_addon_options=eks.CoreDnsAddonOptionsArgs(enabled=True),
            kube_proxy_addon_options=eks.KubeProxyAddonOptionsArgs(enabled=True),
            opts=pulumi.ResourceOptions(
                parent=self, protect=protect, depends_on=[log_group], transforms=[creator_not_admin]
            ),
        )
        self.name = self.control_plane.eks_cluster.name
        self.endpoint = self.control_plane.eks_cluster.endpoint
        self.kubeconfig = self.control_plane.kubeconfig_json

        self.node_groups = {}
        self.pools = {
            pool: self._pool(name, pool, group, config, network, node_policies)
            for pool, group in config.node_groups.items()
        }
        self._managed_addons(name, ctx)
        # The kubeconfig resolves once eks.Cluster's children exist, the access entries among them
        # (components.upstream.CONSTRUCT_WAITS_FOR_CHILDREN): the deploy role can use it from the first object on.
        self.k8s_provider = k8s.Provider(
            f"{name}-k8s", kubeconfig=self.kubeconfig, enable_server_side_apply=True, opts=child
        )
        self.register_outputs(
            {
                "name": self.name,
                "arn": self.arn,
                "endpoint": self.endpoint,
                "node_security_group": self.node_security_group.id,
                "control_plane_security_group": self.control_plane_security_group.id,
                "node_role": self.node_role.arn,
                "node_groups": {k: v.node_group.node_group_name for k, v in self.node_groups.items()},
                "pools": {pool: len(groups) for pool, groups in self.pools.items()},
            }
        )

    # ------------------------------------------------------------------ security groups

    def _security_groups(self, name: str, network: Network, operators: Sequence[str]) -> None:
        child = pulumi.ResourceOptions(parent=self)
        self.control_plane_security_group = aws.ec2.SecurityGroup(
            f"{name}-control-plane",
            vpc_id=network.vpc_id,
            description=f"{name}: EKS control plane (API server) - HTTPS from the nodes",
            tags={"Name": f"{name}-control-plane"},
            opts=child,
        )
        self.node_security_group = aws.ec2.SecurityGroup(
            f"{name}-nodes",
            vpc_id=network.vpc_id,
            description=f"{name}: EKS nodes of every managed node group",
            tags={"Name": f"{name}-nodes", f"kubernetes.io/cluster/{name}": "owned"},
            opts=child,
        )
        cp, nodes = self.control_plane_security_group.id, self.node_security_group.id
        for rule_name, sg, source, protocol, low, high, description in (
            ("control-plane-from-nodes", cp, nodes, "tcp", 443, 443, "Nodes and pods reach the API server"),
            (
                "nodes-from-control-plane",
                nodes,
                cp,
                "tcp",
                1025,
                65535,
                "API server reaches kubelets (10250) and webhooks on nodes",
            ),
            (
                "nodes-from-control-plane-https",
                nodes,
                cp,
                "tcp",
                443,
                443,
                "API server reaches webhooks and aggregated APIs serving on 443",
            ),
            ("nodes-from-nodes", nodes, nodes, "-1", None, None, "Node to node and pod to pod traffic"),
        ):
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-{rule_name}",
                security_group_id=sg,
                referenced_security_group_id=source,
                ip_protocol=protocol,
                from_port=low,
                to_port=high,
                description=description,
                opts=child,
            )
        for index, cidr in enumerate(operators):
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-control-plane-from-operators-{index}",
                security_group_id=cp,
                cidr_ipv4=cidr,
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                description=f"Operators and deployers reach the private API endpoint from {cidr}",
                opts=child,
            )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-nodes-egress",
            security_group_id=nodes,
            ip_protocol="-1",
            cidr_ipv4="0.0.0.0/0",
            description="Nodes reach AWS APIs, registries and the internet (through NAT)",
            opts=child,
        )

    # ------------------------------------------------------------------ IAM

    def _service_role(self, name: str, ctx: context.AwsContext) -> aws.iam.Role:
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-cluster",
            description=f"{name}: the EKS control plane",
            assume_role_policy=_trust("eks.amazonaws.com"),
            opts=child,
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-cluster",
            role=role.name,
            policy_arn=managed_policy(ctx.partition, "AmazonEKSClusterPolicy"),
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-cluster-kms",
            role=role.id,
            policy=self.key.arn.apply(
                lambda arn: json.dumps(
                    document([statement(["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"], arn)])
                )
            ),
            opts=child,
        )
        return role

    def _node_role(self, name: str, ctx: context.AwsContext) -> tuple[aws.iam.Role, list[pulumi.Resource]]:
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-nodes",
            description=f"{name}: EC2 instances of the managed node groups",
            assume_role_policy=_trust("ec2.amazonaws.com"),
            opts=child,
        )
        attachments: list[pulumi.Resource] = [
            aws.iam.RolePolicyAttachment(
                f"{name}-nodes-{policy}",
                role=role.name,
                policy_arn=managed_policy(ctx.partition, policy),
                opts=child,
            )
            for policy in NODE_POLICIES
        ]
        return role, attachments

    # ------------------------------------------------------------------ node groups

    def _pool(
        self,
        name: str,
        pool: str,
        group: NodeGroupConfig,
        config: ClusterConfig,
        network: Network,
        node_policies: list[pulumi.Resource],
    ) -> list[eks.ManagedNodeGroup]:
        """A pool's launch template and its managed node groups: one per zone for a pool without GPUs, one over
        every zone for the GPU pool."""
        template = self._launch_template(f"{name}-{pool}", group)
        placements: list[tuple[str, pulumi.Input[Sequence[pulumi.Input[str]]], tuple[int, int, int]]]
        if group.gpu:
            placements = [(pool, network.private_subnet_ids, (group.min_size, group.max_size, group.desired))]
        else:
            zones = network.availability_zones
            placements = [
                (f"{pool}-{az}", _zone_subnet(network, index), sizes)
                for index, (az, sizes) in enumerate(zip(zones, group.per_zone(len(zones)), strict=True))
            ]
        groups = []
        for key, subnets, (low, high, desired) in placements:
            if high < 1:
                raise ValueError(
                    f"keel:cluster.nodeGroups.{pool}.maxSize: got {group.max_size}; each of the "
                    f"{len(placements)} zones' groups needs room for a node"
                )
            self.node_groups[key] = self._node_group(
                name, key, pool, group, config, template, subnets, (low, high, desired), node_policies
            )
            groups.append(self.node_groups[key])
        return groups

    def _launch_template(self, label: str, group: NodeGroupConfig) -> aws.ec2.LaunchTemplate:
        """One template per pool: every group of the pool launches from the same id and version, so EKS labels
        their nodes alike (``eks.amazonaws.com/sourceLaunchTemplateId``) and the autoscaler can balance them."""
        return aws.ec2.LaunchTemplate(
            label,
            description=f"{label}: IMDSv2-only, encrypted gp3 root volume, node security group",
            update_default_version=True,
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                # 1: only the node itself (and host-network pods such as aws-node) reach IMDS; application pods
                # cannot borrow the node role. Everything keel runs in pods gets its identity from Pod Identity
                # and its region/VPC from values, not from IMDS.
                http_put_response_hop_limit=1,
                instance_metadata_tags="disabled",
            ),
            block_device_mappings=[
                aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda",
                    ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_size=group.disk_size_gb,
                        volume_type="gp3",
                        encrypted="true",
                        delete_on_termination="true",
                    ),
                )
            ],
            vpc_security_group_ids=[self.node_security_group.id],
            tag_specifications=[
                aws.ec2.LaunchTemplateTagSpecificationArgs(resource_type=kind, tags={"Name": label})
                for kind in ("instance", "volume", "network-interface")
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _node_group(
        self,
        name: str,
        key: str,
        pool: str,
        group: NodeGroupConfig,
        config: ClusterConfig,
        template: aws.ec2.LaunchTemplate,
        subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]],
        sizes: tuple[int, int, int],
        node_policies: list[pulumi.Resource],
    ) -> eks.ManagedNodeGroup:
        label = f"{name}-{key}"
        low, high, desired = sizes
        ami_type = "AL2023_x86_64_NVIDIA" if group.gpu else "AL2023_x86_64_STANDARD"
        node_group = eks.ManagedNodeGroup(
            label,
            cluster=self.control_plane,
            node_role=self.node_role,
            subnet_ids=subnet_ids,
            version=config.version,
            ami_type=ami_type,
            capacity_type=group.capacity_type,
            instance_types=list(group.instance_types),
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(min_size=low, max_size=high, desired_size=desired),
            ignore_scaling_changes=True,
            labels=node_labels(pool, group),
            taints=[aws.eks.NodeGroupTaintArgs(**GPU_TAINT)] if group.gpu else None,
            launch_template=aws.eks.NodeGroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=node_policies),
        )
        asg_name = first_asg_name(node_group)
        for tag_key, value in autoscaler_tags(name, pool, group).items():
            aws.autoscaling.Tag(
                f"{label}-{tag_slug(tag_key, name)}",
                autoscaling_group_name=asg_name,
                tag=aws.autoscaling.TagTagArgs(key=tag_key, value=value, propagate_at_launch=False),
                opts=pulumi.ResourceOptions(parent=self),
            )
        return node_group

    # ------------------------------------------------------------------ EKS add-ons

    def _managed_addons(self, name: str, ctx: context.AwsContext) -> None:
        after_nodes: list[pulumi.Resource] = list(self.pools[GENERAL_POOL])  # add-on pods schedule there
        common: dict[str, Any] = {
            "cluster_name": self.name,
            "resolve_conflicts_on_create": "OVERWRITE",
            "resolve_conflicts_on_update": "OVERWRITE",
        }
        self.pod_identity_agent = agent = aws.eks.Addon(
            f"{name}-pod-identity-agent",
            addon_name="eks-pod-identity-agent",
            **common,
            opts=pulumi.ResourceOptions(parent=self, depends_on=after_nodes),
        )
        self.ebs_csi = addon_with_role(
            self,
            ctx,
            AddonRole(
                addon="aws-ebs-csi-driver",
                resource_name=f"{name}-ebs-csi",
                role_name=f"{name}-ebs-csi",
                namespace="kube-system",
                service_account="ebs-csi-controller-sa",
                policy="service-role/AmazonEBSCSIDriverPolicy",
                description=f"{name}: EBS CSI driver controller",
            ),
            parent=self,
            depends_on=[*after_nodes, agent],
        )
        aws.eks.Addon(
            f"{name}-metrics-server",
            addon_name="metrics-server",
            **common,
            opts=pulumi.ResourceOptions(parent=self, depends_on=after_nodes),
        )
