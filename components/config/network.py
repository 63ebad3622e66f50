"""``keel:network``: :class:`NetworkConfig` (the VPC), :data:`NatStrategy` and the default interface endpoints."""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import Field, field_validator

from components.config.base import RFC1918_BLOCKS, LogRetentionDays, Section, shown

#: Interface endpoints every private cluster needs to pull images and get credentials without a NAT.
DEFAULT_INTERFACE_ENDPOINTS = ("ecr.api", "ecr.dkr", "sts", "logs")

NatStrategy = Literal["None", "Single", "OnePerAz"]

_ZONE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d[a-z]$")
_ENDPOINT = re.compile(r"^[a-z0-9-]+(\.[a-z0-9-]+)*$")


def check_vpc_cidr(value: str) -> str:
    """A VPC's range: an RFC 1918 IPv4 block from /16 to /20, without host bits (else a ValueError saying so)."""
    allowed = "an RFC 1918 IPv4 block (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16) with a prefix from /16 to /20"
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"got {shown(value)}; expected {allowed}") from None
    if not isinstance(net, ipaddress.IPv4Network):
        raise ValueError(f"got {shown(value)}; expected {allowed}")
    if str(net) != value:
        raise ValueError(f"got {shown(value)}, which has host bits set; did you mean {str(net)!r}?")
    if not 16 <= net.prefixlen <= 20:
        raise ValueError(f"got {shown(value)}; expected {allowed}")
    if not any(net.subnet_of(block) for block in RFC1918_BLOCKS):
        raise ValueError(f"got {shown(value)}, which is not private; expected {allowed}")
    return value


class NetworkConfig(Section):
    """``keel:network``: the VPC and everything in it that is not a workload."""

    cidr: str = "10.0.0.0/16"
    """The VPC's IPv4 range: an RFC 1918 block from /16 to /20. Subnets are carved from it by tier."""

    availability_zones: int = Field(3, ge=2, le=6)
    """How many AZs the subnets span (2 to 6)."""

    zone_names: list[str] | None = None
    """None: the first ``availabilityZones`` zones the region offers (sorted). A list pins the zones by name,
    which keeps subnets where they are even if the region's zone list changes."""

    nat_gateways: NatStrategy = "OnePerAz"
    """``OnePerAz``: each private subnet egresses through its own AZ's NAT (survives an AZ loss);
    ``Single``: one NAT for all (cheaper, one AZ is a single point of failure); ``None``: no internet egress,
    only VPC endpoints."""

    allow_single_nat_in_prod: bool = False
    """Prod refuses ``natGateways: Single`` unless this is true: a visible opt-in to the AZ risk."""

    interface_endpoints: list[str] = Field(default_factory=lambda: list(DEFAULT_INTERFACE_ENDPOINTS))
    """Interface endpoints by service suffix (``ecr.api`` becomes ``com.amazonaws.<region>.ecr.api``).
    The S3 gateway endpoint is always created and is not listed here."""

    flow_log_retention_days: LogRetentionDays = 30
    """Days the VPC flow log group keeps its events; one of CloudWatch's allowed values."""

    flow_log_traffic: Literal["ALL", "ACCEPT", "REJECT"] = "ALL"
    """Which traffic the flow log records."""

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        return check_vpc_cidr(value)

    @field_validator("zone_names")
    @classmethod
    def _zones(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for zone in value:
            if not _ZONE.match(zone):
                raise ValueError(f"got {shown(zone)}; expected availability zone names like 'us-east-1a'")
        if len(set(value)) != len(value):
            raise ValueError(f"got {shown(value)}; each zone may appear once")
        return value

    @field_validator("interface_endpoints")
    @classmethod
    def _endpoints(cls, value: list[str]) -> list[str]:
        for service in value:
            if service == "s3":
                raise ValueError("got 's3'; the S3 gateway endpoint is always created, list interface endpoints only")
            if not _ENDPOINT.match(service):
                raise ValueError(
                    f"got {shown(service)}; expected a service suffix such as 'ecr.api' or 'secretsmanager'"
                )
        if len(set(value)) != len(value):
            raise ValueError(f"got {shown(value)}; each endpoint may appear once")
        return value

    @property
    def ip_network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.cidr)
