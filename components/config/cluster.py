"""``keel:cluster``: :class:`ClusterConfig` (the EKS control plane), its node groups, :func:`instance_family` and
:func:`ec2_instance_types` (the list instance types are checked against)."""

from __future__ import annotations

import functools
import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator

from components.config.base import RFC1918_BLOCKS, LogRetentionDays, Section, not_listed, shown
from components.vocabulary import DEFAULT_KUBERNETES_VERSION, GENERAL_POOL, GPU_POOL, KUBERNETES_VERSIONS

_ROLE_ARN = re.compile(r"^arn:aws(-[a-z]+)*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")


def instance_family(instance_type: str) -> str:
    """The family of an EC2 instance type: ``g5`` for ``g5.xlarge``."""
    return instance_type.split(".", 1)[0]


@functools.cache
def ec2_instance_types() -> tuple[str, frozenset[str]]:
    """``(botocore version, EC2 instance types)``: the ``InstanceType`` enum of the EC2 service model the installed
    botocore ships (``botocore/data/ec2/2016-11-15/service-2.json``, gzipped since botocore 1.32), every type EC2's
    API knows. botocore comes with boto3, a keel dependency, so the list follows it: no copy to keep current.

    The file is read directly, as botocore's own loader reads it (``botocore/loaders.py``: ``JSONFileLoader`` tries
    ``.json``, then ``.json.gz``): 0.08 s, where building the model through ``botocore.session`` took 0.6 s of every
    preview (a test checks both give the same list). Once per process, and only when a node group is validated."""
    import gzip
    import json
    from pathlib import Path

    import botocore

    folder = Path(botocore.__file__).parent / "data" / "ec2" / "2016-11-15"
    plain, packed = folder / "service-2.json", folder / "service-2.json.gz"
    raw = plain.read_bytes() if plain.is_file() else gzip.decompress(packed.read_bytes())
    return str(botocore.__version__), frozenset(json.loads(raw)["shapes"]["InstanceType"]["enum"])


def zone_shares(total: int, zones: int) -> list[int]:
    """``total`` spread over ``zones`` zones in zone order: the same share each, the first ``total % zones`` zones
    one more (``zone_shares(2, 3) == [1, 1, 0]``, ``zone_shares(4, 3) == [2, 1, 1]``). A zone's share never
    shrinks when ``total`` grows, so per-zone minimum <= desired <= maximum whenever the totals are."""
    base, extra = divmod(total, zones)
    return [base + (1 if zone < extra else 0) for zone in range(zones)]


class NodeGroupConfig(Section):
    """One managed node group (``keel:cluster.nodeGroups.<general|gpu>``)."""

    instance_types: list[str] = Field(json_schema_extra={"examples": [["m5.xlarge"], ["g4dn.xlarge", "g5.xlarge"]]})
    """Instance types, first preferred; more than one lets Spot draw from several pools. Each must be in the EC2
    instance-type list of the installed botocore."""

    capacity_type: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"
    """``SPOT`` for interruptible capacity at a discount."""

    min_size: int = Field(ge=0, le=100)
    """Smallest node count; 0 lets the autoscaler scale the group to zero when idle."""

    max_size: int = Field(ge=1, le=100)
    """Largest node count the autoscaler may reach."""

    desired_size: int | None = None
    """None: start at ``minSize``. The autoscaler owns it afterwards (changes are ignored)."""

    gpu: bool = False
    """True: NVIDIA AMI, the ``nvidia.com/gpu`` taint and GPU labels; every instance type must be a GPU type."""

    disk_size_gb: int = Field(50, ge=20, le=2000)
    """Encrypted gp3 root volume size."""

    labels: dict[str, str] = Field(default_factory=dict)
    """Extra node labels (``keel.dev/pool`` is set by keel)."""

    @field_validator("instance_types")
    @classmethod
    def _types(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("got []; list at least one instance type, such as 'm5.xlarge'")
        version, known = ec2_instance_types()
        for item in value:
            if item not in known:
                raise ValueError(
                    not_listed(item, known, f"an EC2 instance type (botocore {version}'s list)", "m5.xlarge")
                )
        if len(set(value)) != len(value):
            raise ValueError(f"got {shown(value)}; each instance type may appear once")
        return value

    @property
    def desired(self) -> int:
        return self.min_size if self.desired_size is None else self.desired_size

    def per_zone(self, zones: int) -> list[tuple[int, int, int]]:
        """(minSize, maxSize, desired) of each zone's group when the group is split one per zone: each total by
        :func:`zone_shares`. The sums are the configured totals; every zone gets a maximum of at least 1 only when
        ``maxSize >= zones`` (:func:`components.config.capacity.capacity_checks` requires it)."""
        return list(
            zip(
                zone_shares(self.min_size, zones),
                zone_shares(self.max_size, zones),
                zone_shares(self.desired, zones),
                strict=True,
            )
        )


class NodeGroupsConfig(Section):
    """``keel:cluster.nodeGroups``: the general pool and the optional GPU pool."""

    general: NodeGroupConfig
    """Runs everything that does not ask for a GPU, add-ons included."""

    gpu: NodeGroupConfig | None = None
    """None: no GPU pool. Else a pool tainted ``nvidia.com/gpu=true:NoSchedule`` that may scale from zero."""

    def items(self) -> list[tuple[str, NodeGroupConfig]]:
        return [(name, group) for name, group in ((GENERAL_POOL, self.general), (GPU_POOL, self.gpu)) if group]


class ClusterConfig(Section):
    """``keel:cluster``: the EKS control plane, its node groups and add-ons."""

    version: str = Field(DEFAULT_KUBERNETES_VERSION, json_schema_extra={"enum": list(KUBERNETES_VERSIONS)})
    """Kubernetes minor version; one of :data:`KUBERNETES_VERSIONS`."""

    public_access_cidrs: list[str] = Field(default_factory=list)
    """Empty: the API endpoint is private only. CIDRs: the public endpoint is on, for these ranges only."""

    private_access_cidrs: list[str] = Field(default_factory=list)
    """Private ranges (VPN, CI runners) admitted to the private API endpoint; the nodes always are."""

    admin_role_arns: list[str] = Field(default_factory=list)
    """IAM roles given cluster-admin through EKS access entries."""

    deploy_role_arn: str | None = None
    """The IAM role ``pulumi up`` runs as (CI's deploy role): an access entry with cluster-admin, because the
    cluster is created without the creator's implicit admin access. None: only ``adminRoleArns`` reach the
    Kubernetes API, so the deployer must be one of them."""

    preview_role_arn: str | None = None
    """The IAM role the preview and drift workflows run as (``keel-preview-<stack>``): a read-only access entry
    (get, list and watch, Secrets included: a refresh reads Helm releases), so ``pulumi preview --refresh`` can read
    the cluster's objects. None: those workflows cannot refresh Kubernetes resources."""

    node_groups: NodeGroupsConfig
    """The managed node groups."""

    require_spot_gpus: bool = True
    """True: the GPU group must use Spot capacity (GPUs on demand cost about three times as much)."""

    deletion_protection: bool = True
    """EKS deletion protection on the control plane."""

    log_retention_days: LogRetentionDays = 30
    """Retention of the control-plane log group (``/aws/eks/<cluster>/cluster``)."""

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if value not in KUBERNETES_VERSIONS:
            raise ValueError(f"got {shown(value)}; allowed: {', '.join(KUBERNETES_VERSIONS)}")
        return value

    @field_validator("public_access_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                net = ipaddress.ip_network(cidr, strict=True)
            except ValueError:
                raise ValueError(f"got {shown(cidr)}; expected CIDR blocks such as '203.0.113.0/24'") from None
            if not net.is_global and net.prefixlen:
                raise ValueError(f"got {shown(cidr)}; the public endpoint only sees public addresses")
        return value

    @field_validator("private_access_cidrs")
    @classmethod
    def _private_cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                net = ipaddress.ip_network(cidr, strict=True)
            except ValueError:
                raise ValueError(f"got {shown(cidr)}; expected private CIDR blocks such as '10.99.0.0/16'") from None
            if not any(isinstance(net, ipaddress.IPv4Network) and net.subnet_of(b) for b in RFC1918_BLOCKS):
                raise ValueError(f"got {shown(cidr)}; the private endpoint admits RFC 1918 ranges only")
        return value

    @field_validator("admin_role_arns")
    @classmethod
    def _arns(cls, value: list[str]) -> list[str]:
        for arn in value:
            if not _ROLE_ARN.match(arn):
                raise ValueError(
                    f"got {shown(arn)}; expected IAM role ARNs like 'arn:aws:iam::111122223333:role/platform-admin'"
                )
        return value

    @field_validator("deploy_role_arn", "preview_role_arn")
    @classmethod
    def _deploy_arn(cls, value: str | None) -> str | None:
        if value is not None and not _ROLE_ARN.match(value):
            raise ValueError(
                f"got {shown(value)}; expected an IAM role ARN like 'arn:aws:iam::111122223333:role/keel-deploy'"
            )
        return value
