"""A deterministic fake AWS for ``keel preview`` and the tests.

Under Pulumi's mocks no provider runs, so whatever a real provider computes (ids, ARNs, auto-names, the
attributes a program reads back) comes from here. Every value is derived from the resource's URN, so two
runs of the same stack print the same preview.

Usage::

    cloud = FakeCloud(region="us-east-1", account="111122223333")
    cloud.resource("aws:ec2/vpc:Vpc", "keel-prod-vpc", urn, {"cidrBlock": "10.20.0.0/16"})
    # -> ("vpc-0c1f...", {"cidrBlock": ..., "arn": "arn:aws:ec2:us-east-1:111122223333:vpc/vpc-0c1f...", ...})

An invoke with no fake here fails loudly (:class:`UnknownInvoke`) rather than returning an empty result that
would let a program run on values no real account would give.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Callable
from typing import Any

#: The account the preview pretends to be when the stack does not pin ``keel:accountId``.
DEFAULT_ACCOUNT = "123456789012"

#: Zones the fake region offers (as many as the largest real regions).
ZONE_LETTERS = string.ascii_lowercase[:6]

# Physical id prefixes AWS uses, by resource type token.
_ID_PREFIX = {
    "aws:ec2/vpc:Vpc": "vpc-",
    "aws:ec2/subnet:Subnet": "subnet-",
    "aws:ec2/routeTable:RouteTable": "rtb-",
    "aws:ec2/route:Route": "r-",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "rtbassoc-",
    "aws:ec2/internetGateway:InternetGateway": "igw-",
    "aws:ec2/natGateway:NatGateway": "nat-",
    "aws:ec2/eip:Eip": "eipalloc-",
    "aws:ec2/securityGroup:SecurityGroup": "sg-",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "sg-",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": "sgr-",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": "sgr-",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "vpce-",
    "aws:ec2/flowLog:FlowLog": "fl-",
    "aws:ec2/launchTemplate:LaunchTemplate": "lt-",
}

# ARN service names that differ from the type token's module.
_SERVICE = {
    "cloudwatch/logGroup": "logs",
    "lb": "elasticloadbalancing",
    "alb": "elasticloadbalancing",
    "cognito": "cognito-idp",
    "sesv2": "ses",
}

_GLOBAL_SERVICES = {"iam", "s3", "route53", "cloudfront"}


class UnknownInvoke(LookupError):
    """A program called a data source the fake cloud does not know."""


def digest(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def _kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


class FakeCloud:
    """Deterministic ids, ARNs and data-source answers for one region and account."""

    def __init__(self, region: str, account: str = DEFAULT_ACCOUNT, partition: str = "aws") -> None:
        self.region = region
        self.account = account
        self.partition = partition
        self._invokes: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "aws:index/getRegion:getRegion": self._region,
            "aws:index/getCallerIdentity:getCallerIdentity": self._identity,
            "aws:index/getPartition:getPartition": self._partition,
            "aws:index/getAvailabilityZones:getAvailabilityZones": self._zones,
        }

    # ------------------------------------------------------------------ resources

    def resource(self, type_: str, name: str, urn: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The physical id and the output state the real provider would report for a new resource."""
        h = digest(urn)
        resource_id = self._id(type_, name, inputs, h)
        state = dict(inputs)
        if "name" not in state and not type_.startswith("pulumi:providers:"):
            # The provider auto-names resources whose name is not given: the logical name plus a suffix.
            state["name"] = f"{name}-{h[:7]}"
        state.setdefault("arn", self.arn(type_, resource_id, state))
        if "tags" in state:
            state.setdefault("tagsAll", state["tags"])
        state.update(self._extra(type_, h, state))
        return resource_id, state

    def _id(self, type_: str, name: str, inputs: dict[str, Any], h: str) -> str:
        if type_ in _ID_PREFIX:
            return _ID_PREFIX[type_] + h[:17]
        if type_ == "aws:kms/key:Key":
            return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
        if isinstance(inputs.get("name"), str):
            return str(inputs["name"])
        return f"{name}-{h[:7]}"

    def arn(self, type_: str, resource_id: str, state: dict[str, Any]) -> str:
        package, _, rest = type_.partition(":")
        module_path, _, kind = rest.partition(":")
        module = module_path.split("/")[0]
        service = _SERVICE.get(module_path, _SERVICE.get(module, module))
        if package != "aws":
            return f"arn:{self.partition}:{package}:{self.region}:{self.account}:{_kebab(kind)}/{resource_id}"
        if service == "logs":
            return f"arn:{self.partition}:logs:{self.region}:{self.account}:log-group:{state['name']}"
        if service == "s3":
            return f"arn:{self.partition}:s3:::{resource_id}"
        region = "" if service in _GLOBAL_SERVICES else self.region
        return f"arn:{self.partition}:{service}:{region}:{self.account}:{_kebab(kind)}/{resource_id}"

    def _extra(self, type_: str, h: str, state: dict[str, Any]) -> dict[str, Any]:
        """Attributes a provider computes that programs read back."""
        if type_ == "aws:ec2/vpc:Vpc":
            return {
                "defaultSecurityGroupId": f"sg-{h[17:34]}",
                "defaultRouteTableId": f"rtb-{h[17:34]}",
                "mainRouteTableId": f"rtb-{h[17:34]}",
                "defaultNetworkAclId": f"acl-{h[17:34]}",
                "ownerId": self.account,
            }
        if type_ == "aws:ec2/eip:Eip":
            return {"allocationId": f"eipalloc-{h[:17]}", "publicIp": f"203.0.113.{int(h[:2], 16) % 254 + 1}"}
        if type_ == "aws:kms/key:Key":
            return {"keyId": state["arn"].rsplit("/", 1)[-1]}
        if type_ == "aws:iam/role:Role":
            return {"uniqueId": "AROA" + h[:17].upper()}
        return {}

    # ------------------------------------------------------------------ invokes

    def invoke(self, token: str, args: dict[str, Any]) -> dict[str, Any]:
        handler = self._invokes.get(token)
        if handler is None:
            raise UnknownInvoke(
                f"keel preview has no fake for data source {token!r}; add one to keel/fake.py "
                f"(known: {', '.join(sorted(self._invokes))})"
            )
        return handler(args)

    def _region(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self.region,
            "name": self.region,
            "region": self.region,
            "endpoint": f"ec2.{self.region}.amazonaws.com",
            "description": f"fake region {self.region}",
        }

    def _identity(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self.account,
            "accountId": self.account,
            "arn": f"arn:{self.partition}:sts::{self.account}:assumed-role/keel-preview/offline",
            "userId": "AROAKEELPREVIEW:offline",
        }

    def _partition(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self.partition,
            "partition": self.partition,
            "dnsSuffix": "amazonaws.com",
            "reverseDnsPrefix": "com.amazonaws",
        }

    def _zones(self, args: dict[str, Any]) -> dict[str, Any]:
        names = [f"{self.region}{letter}" for letter in ZONE_LETTERS]
        short = "".join(part[0] for part in self.region.split("-")[:-1]) + self.region.rsplit("-", 1)[-1]
        return {
            "id": self.region,
            "names": names,
            "zoneIds": [f"{short}-az{i + 1}" for i in range(len(names))],
            "groupNames": [self.region] * len(names),
            "state": args.get("state"),
            "filters": args.get("filters"),
        }
