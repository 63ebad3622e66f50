"""Network: the VPC, its three subnet tiers, egress, endpoints and flow logs.

Usage::

    net = Network("keel-prod", cfg.network, protect=True, opts=pulumi.ResourceOptions(parent=platform))
    net.private_subnet_ids   # Output[list[str]], one per AZ, in zone order

Creates (``<n>`` is the component name, ``<az>`` each zone name):

- ``<n>-vpc`` VPC with DNS support and hostnames; ``<n>-default-sg`` strips the default security group
  of every rule.
- Per zone: ``<n>-public-<az>``, ``<n>-private-<az>``, ``<n>-isolated-<az>`` subnets (CIDRs from
  :func:`plan_subnets`), none of them mapping public IPs on launch (NAT gateways use Elastic IPs).
  Public subnets carry ``kubernetes.io/role/elb=1``, private ones ``kubernetes.io/role/internal-elb=1``.
- ``<n>-igw`` and the public route table ``<n>-public`` with its default route.
- NAT per ``nat_gateways``: ``OnePerAz`` puts ``<n>-nat-<az>`` (and its EIP) in every zone, and each
  private route table ``<n>-private-<az>`` routes to its own zone's NAT; ``Single`` puts one NAT in the
  first zone; ``None`` gives private subnets no internet route at all.
- Isolated (data) subnets share ``<n>-isolated``, a route table with only the local route.
- ``<n>-s3`` S3 gateway endpoint on the private route tables; interface endpoints ``<n>-<service>``
  (ECR api/dkr, STS, CloudWatch Logs by default) in the private subnets behind ``<n>-endpoints``, a
  security group admitting 443 from the VPC CIDR only.
- Flow logs: ``<n>-logs`` KMS key (rotation on, see ``components/keys.py``) and alias, ``<n>-flow-logs`` log group
  (``/<n>/vpc/flow-logs``, encrypted, retention set), the role the flow-log service assumes (scoped to this
  account) and ``<n>-vpc`` flow log.

Outputs: ``vpc``, ``vpc_id``, ``cidr``, ``availability_zones``, ``public_subnet_ids``,
``private_subnet_ids``, ``isolated_subnet_ids``, ``nat_gateway_ids``, ``endpoint_security_group``,
``flow_log_group``, ``log_key``.

Design note: subnet CIDRs depend only on the VPC CIDR and the zone's position, never on the zone count, so
adding a zone later adds subnets without replacing any (see :func:`plan_subnets`).
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any, NamedTuple

import pulumi
import pulumi_aws as aws

from components import context
from components.config import NatStrategy, NetworkConfig
from components.keys import create_key, logs_may_use

MAX_ZONES = 6
_SLOTS = 8  # the VPC is cut in 8: six private blocks, one block of public and one of isolated subnets


class ZoneSubnets(NamedTuple):
    public: ipaddress.IPv4Network
    private: ipaddress.IPv4Network
    isolated: ipaddress.IPv4Network


def plan_subnets(cidr: ipaddress.IPv4Network, zones: int) -> list[ZoneSubnets]:
    """Carve ``cidr`` into public, private and isolated subnets for ``zones`` zones.

    The VPC is split into eight equal blocks. Blocks 0-5 are the private subnets of zones 0-5 (the largest,
    since EKS pods take VPC addresses). Block 6 is split in eight for public subnets, block 7 in eight for
    isolated ones. A /16 gives /19 private (8,187 usable) and /22 public and isolated subnets (1,019 usable);
    two public and two isolated slots stay free, and the private block of every zone up to six is reserved,
    so growing from 2 to 6 zones never moves an existing subnet.
    """
    if not 1 <= zones <= MAX_ZONES:
        raise ValueError(f"zones: got {zones}; allowed: 1 to {MAX_ZONES}")
    blocks = list(cidr.subnets(prefixlen_diff=3))
    public = list(blocks[6].subnets(prefixlen_diff=3))
    isolated = list(blocks[7].subnets(prefixlen_diff=3))
    return [ZoneSubnets(public[i], blocks[i], isolated[i]) for i in range(zones)]


class Network(pulumi.ComponentResource):
    """A VPC with public, private and isolated subnets, NAT, endpoints and encrypted flow logs."""

    vpc: aws.ec2.Vpc
    vpc_id: pulumi.Output[str]
    cidr: str
    availability_zones: list[str]
    public_subnet_ids: pulumi.Output[list[str]]
    public_subnet_cidrs: list[str]
    private_subnet_ids: pulumi.Output[list[str]]
    isolated_subnet_ids: pulumi.Output[list[str]]
    nat_gateway_ids: pulumi.Output[list[str]]
    nat_gateways: list[aws.ec2.NatGateway]
    endpoint_security_group: aws.ec2.SecurityGroup
    flow_log_group: aws.cloudwatch.LogGroup
    log_key: aws.kms.Key

    def __init__(
        self,
        name: str,
        config: NetworkConfig,
        *,
        protect: bool = True,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``config``: the ``keel:network`` section (CIDR, zones, NAT strategy, endpoints, flow logs).
        ``protect``: True puts Pulumi ``protect`` on the flow-log key and group (they hold audit data)."""
        super().__init__("keel:network:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOptions(parent=self)
        ctx = context.lookup(invoke)
        region = ctx.region
        zones = self._zones(config, invoke)
        plan = plan_subnets(ipaddress.IPv4Network(config.cidr), len(zones))

        def tags(label: str, **extra: str) -> dict[str, str]:
            return {"Name": label, **extra}

        self.cidr = config.cidr
        self.availability_zones = zones
        self.public_subnet_cidrs = [str(z.public) for z in plan]
        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=config.cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags=tags(name),
            opts=child,
        )
        self.vpc_id = self.vpc.id
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=self.vpc.id,
            ingress=[],
            egress=[],
            tags=tags(f"{name}-default (no rules)"),
            opts=child,
        )

        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=self.vpc.id, tags=tags(name), opts=child)
        public_rt = aws.ec2.RouteTable(f"{name}-public", vpc_id=self.vpc.id, tags=tags(f"{name}-public"), opts=child)
        aws.ec2.Route(
            f"{name}-public-default",
            route_table_id=public_rt.id,
            destination_cidr_block="0.0.0.0/0",
            gateway_id=igw.id,
            opts=child,
        )
        isolated_rt = aws.ec2.RouteTable(
            f"{name}-isolated", vpc_id=self.vpc.id, tags=tags(f"{name}-isolated"), opts=child
        )

        public: list[aws.ec2.Subnet] = []
        private: list[aws.ec2.Subnet] = []
        isolated: list[aws.ec2.Subnet] = []
        private_rts: list[aws.ec2.RouteTable] = []
        for az, cidrs in zip(zones, plan, strict=True):
            public.append(
                self._subnet(
                    f"{name}-public-{az}",
                    az,
                    cidrs.public,
                    public_rt,
                    tags(f"{name}-public-{az}", **{"kubernetes.io/role/elb": "1", "keel.dev/tier": "public"}),
                )
            )
            rt = aws.ec2.RouteTable(
                f"{name}-private-{az}", vpc_id=self.vpc.id, tags=tags(f"{name}-private-{az}"), opts=child
            )
            private_rts.append(rt)
            private.append(
                self._subnet(
                    f"{name}-private-{az}",
                    az,
                    cidrs.private,
                    rt,
                    tags(
                        f"{name}-private-{az}",
                        **{"kubernetes.io/role/internal-elb": "1", "keel.dev/tier": "private"},
                    ),
                )
            )
            isolated.append(
                self._subnet(
                    f"{name}-isolated-{az}",
                    az,
                    cidrs.isolated,
                    isolated_rt,
                    tags(f"{name}-isolated-{az}", **{"keel.dev/tier": "isolated"}),
                )
            )

        nats = self._nat_gateways(name, config.nat_gateways, zones, public, igw, tags)
        for index, (az, rt) in enumerate(zip(zones, private_rts, strict=True)):
            if nats:
                nat = nats[index] if len(nats) == len(zones) else nats[0]
                aws.ec2.Route(
                    f"{name}-private-{az}-default",
                    route_table_id=rt.id,
                    destination_cidr_block="0.0.0.0/0",
                    nat_gateway_id=nat.id,
                    opts=child,
                )

        aws.ec2.VpcEndpoint(
            f"{name}-s3",
            vpc_id=self.vpc.id,
            service_name=f"com.amazonaws.{region}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[rt.id for rt in private_rts],
            tags=tags(f"{name}-s3"),
            opts=child,
        )
        self.endpoint_security_group = aws.ec2.SecurityGroup(
            f"{name}-endpoints",
            vpc_id=self.vpc.id,
            description="Interface VPC endpoints: HTTPS from inside the VPC only",
            tags=tags(f"{name}-endpoints"),
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-endpoints-https",
            security_group_id=self.endpoint_security_group.id,
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4=config.cidr,
            description="HTTPS to the interface endpoints from the VPC",
            opts=child,
        )
        for service in config.interface_endpoints:
            aws.ec2.VpcEndpoint(
                f"{name}-{service.replace('.', '-')}",
                vpc_id=self.vpc.id,
                service_name=f"com.amazonaws.{region}.{service}",
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[s.id for s in private],
                security_group_ids=[self.endpoint_security_group.id],
                tags=tags(f"{name}-{service}"),
                opts=child,
            )

        self._flow_logs(name, config, protect, ctx, tags)

        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public])
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private])
        self.isolated_subnet_ids = pulumi.Output.all(*[s.id for s in isolated])
        self.nat_gateways = nats
        self.nat_gateway_ids = pulumi.Output.all(*[n.id for n in nats])
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "cidr": self.cidr,
                "availability_zones": self.availability_zones,
                "public_subnet_ids": self.public_subnet_ids,
                "private_subnet_ids": self.private_subnet_ids,
                "isolated_subnet_ids": self.isolated_subnet_ids,
                "nat_gateway_ids": self.nat_gateway_ids,
                "endpoint_security_group": self.endpoint_security_group.id,
                "flow_log_group": self.flow_log_group.name,
                "log_key": self.log_key.arn,
            }
        )

    @staticmethod
    def _zones(config: NetworkConfig, invoke: pulumi.InvokeOptions) -> list[str]:
        if config.zone_names:
            return list(config.zone_names)
        offered = aws.get_availability_zones(
            state="available",
            filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}],
            opts=invoke,
        ).names
        names = sorted(offered or [])
        if len(names) < config.availability_zones:
            raise pulumi.RunError(
                f"keel:network.availabilityZones: got {config.availability_zones}; this region offers "
                f"{len(names)} zone(s) without opt-in ({', '.join(names) or 'none'})"
            )
        return names[: config.availability_zones]

    def _subnet(
        self,
        label: str,
        az: str,
        cidr: ipaddress.IPv4Network,
        route_table: aws.ec2.RouteTable,
        tags: dict[str, str],
    ) -> aws.ec2.Subnet:
        subnet = aws.ec2.Subnet(
            label,
            vpc_id=self.vpc.id,
            cidr_block=str(cidr),
            availability_zone=az,
            map_public_ip_on_launch=False,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.ec2.RouteTableAssociation(
            label,
            subnet_id=subnet.id,
            route_table_id=route_table.id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        return subnet

    def _nat_gateways(
        self,
        name: str,
        strategy: NatStrategy,
        zones: list[str],
        public: list[aws.ec2.Subnet],
        igw: aws.ec2.InternetGateway,
        tags: Any,
    ) -> list[aws.ec2.NatGateway]:
        count = {"None": 0, "Single": 1, "OnePerAz": len(zones)}[strategy]
        nats = []
        for az, subnet in list(zip(zones, public, strict=True))[:count]:
            eip = aws.ec2.Eip(
                f"{name}-nat-{az}",
                domain="vpc",
                tags=tags(f"{name}-nat-{az}"),
                opts=pulumi.ResourceOptions(parent=self),
            )
            nats.append(
                aws.ec2.NatGateway(
                    f"{name}-nat-{az}",
                    allocation_id=eip.allocation_id,
                    subnet_id=subnet.id,
                    connectivity_type="public",
                    tags=tags(f"{name}-nat-{az}"),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
                )
            )
        return nats

    def _flow_logs(self, name: str, config: NetworkConfig, protect: bool, ctx: context.AwsContext, tags: Any) -> None:
        child = pulumi.ResourceOptions(parent=self)
        kept = pulumi.ResourceOptions(parent=self, protect=protect)
        group_name = f"/{name}/vpc/flow-logs"
        group_arn = ctx.arn("logs", f"log-group:{group_name}")
        region, account, partition = ctx.region, ctx.account, ctx.partition
        self.log_key = create_key(
            f"{name}-logs",
            "the VPC flow log group",
            ctx,
            service_statements=[logs_may_use(ctx, [group_arn])],
            protect=protect,
            opts=child,
        )
        self.flow_log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=group_name,
            kms_key_id=self.log_key.arn,
            retention_in_days=config.flow_log_retention_days,
            tags=tags(f"{name}-flow-logs"),
            opts=kept,
        )
        role = aws.iam.Role(
            f"{name}-flow-logs",
            description=f"{name}: lets VPC Flow Logs write to {group_name}",
            assume_role_policy=json.dumps(flow_log_trust_policy(partition, region, account)),
            tags=tags(f"{name}-flow-logs"),
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-flow-logs",
            role=role.id,
            policy=json.dumps(flow_log_write_policy(partition, region, account, group_arn)),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-vpc",
            vpc_id=self.vpc.id,
            traffic_type=config.flow_log_traffic,
            log_destination_type="cloud-watch-logs",
            log_destination=self.flow_log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
            tags=tags(f"{name}-vpc"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )


def security_group_admitting(
    name: str,
    *,
    network: Network,
    port: int,
    client: aws.ec2.SecurityGroup,
    what: str,
    opts: pulumi.ResourceOptions,
) -> aws.ec2.SecurityGroup:
    """A security group ``<name>`` for a data store: TCP ``port`` from the ``client`` security group only, and
    no egress (AWS's default allow-all egress rule is removed by the provider when none is declared)."""
    group = aws.ec2.SecurityGroup(
        name,
        vpc_id=network.vpc_id,
        description=f"{name}: {what}, from the cluster nodes only",
        tags={"Name": name},
        opts=opts,
    )
    aws.vpc.SecurityGroupIngressRule(
        f"{name}-from-nodes",
        security_group_id=group.id,
        referenced_security_group_id=client.id,
        ip_protocol="tcp",
        from_port=port,
        to_port=port,
        description=f"{what} from the EKS node security group",
        opts=opts,
    )
    return group


def flow_log_trust_policy(partition: str, region: str, account: str) -> dict[str, Any]:
    """Only the VPC Flow Logs service, acting for a flow log of this account, may assume the role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account},
                    "ArnLike": {"aws:SourceArn": f"arn:{partition}:ec2:{region}:{account}:vpc-flow-log/*"},
                },
            }
        ],
    }


def flow_log_write_policy(partition: str, region: str, account: str, group_arn: str) -> dict[str, Any]:
    """Write to the one flow log group; list groups only in this account and region."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WriteFlowLogGroup",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                "Resource": [group_arn, f"{group_arn}:*"],
            },
            {
                "Sid": "FindFlowLogGroup",
                "Effect": "Allow",
                "Action": "logs:DescribeLogGroups",
                "Resource": f"arn:{partition}:logs:{region}:{account}:log-group:*",
            },
        ],
    }
