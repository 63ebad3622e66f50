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
import json
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
_GLOBAL_DATASTORE_PREFIX = {"us-east-1": "ldgnf", "us-west-2": "sgaui"}


#: Signature keys of a resource reference on the wire (``pulumi.runtime.rpc``).
_SIG = "4dabf18193072939515e22adb298388d"
_RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"


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
        #: Resources a remote component creates inside its provider, which a real engine would register and
        #: which its outputs reference: the monitor serves them to ``getResource``. Not steps of the preview.
        self.virtual: list[tuple[str, str, dict[str, Any]]] = []
        #: The region of each explicit AWS provider, by provider URN.
        self.provider_regions: dict[str, str] = {}
        #: The same account in other regions (a backup copy region), made on first use; they share ``virtual``.
        self._elsewhere: dict[str, FakeCloud] = {}
        self._components: dict[str, Callable[[str, str, dict[str, Any]], tuple[str, dict[str, Any]]]] = {
            "eks:index:Cluster": self._eks_cluster,
            "eks:index:ManagedNodeGroup": self._managed_node_group,
        }
        self._invokes: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "aws:index/getRegion:getRegion": self._region,
            "aws:index/getCallerIdentity:getCallerIdentity": self._identity,
            "aws:index/getPartition:getPartition": self._partition,
            "aws:index/getAvailabilityZones:getAvailabilityZones": self._zones,
            "aws:elb/getServiceAccount:getServiceAccount": self._elb_account,
            "aws:ecr/getAuthorizationToken:getAuthorizationToken": self._ecr_token,
            "aws:ec2/getManagedPrefixList:getManagedPrefixList": self._prefix_list,
        }

    # ------------------------------------------------------------------ resources

    def resource(
        self, type_: str, name: str, urn: str, inputs: dict[str, Any], provider: str = ""
    ) -> tuple[str, dict[str, Any]]:
        """The physical id and the output state the real provider would report for a new resource.
        ``provider`` is the resource's provider reference (``<urn>::<id>``): a resource on an AWS provider for
        another region (the backup copy region) gets that region in its ARN."""
        if type_ == "pulumi:providers:aws" and isinstance(inputs.get("region"), str):
            self.provider_regions[urn] = inputs["region"]
            return self._resource(type_, name, urn, inputs)
        cloud = self._on(provider)
        if type_.startswith("aws:") and isinstance(inputs.get("region"), str):
            # pulumi-aws 7: a regional resource's own ``region`` argument overrides its provider's.
            cloud = cloud._in(inputs["region"])
        return cloud._resource(type_, name, urn, inputs)

    def _on(self, provider: str) -> FakeCloud:
        """The fake cloud of the region ``provider`` (a ``<urn>::<id>`` reference) deploys to: this one, or the same
        account in another region. Each keeps its region fixed, so concurrent calls never see another's."""
        region = self.provider_regions.get(provider.rsplit("::", 1)[0], self.region) if provider else self.region
        return self._in(region)

    def _in(self, region: str) -> FakeCloud:
        """This account in ``region``: this fake cloud, or one made on first use that shares ``virtual``."""
        if region == self.region:
            return self
        if region not in self._elsewhere:
            other = FakeCloud(region, self.account, self.partition)
            other.virtual = self.virtual
            self._elsewhere[region] = other
        return self._elsewhere[region]

    def _resource(self, type_: str, name: str, urn: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if type_ in self._components:
            return self._components[type_](name, urn, inputs)
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
        if type_ == "aws:cloudfront/distribution:Distribution":
            return "E" + h[:13].upper()
        if type_ == "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup":
            # AWS prefixes the suffix with a five-letter code of the primary's region (ElastiCache User Guide,
            # "Using the AWS CLI with global datastores": us-east-1 ldgnf, us-west-2 sgaui); others are made up here.
            prefix = _GLOBAL_DATASTORE_PREFIX.get(self.region) or "".join(
                string.ascii_lowercase[int(c, 16) % 26] for c in digest("gds", self.region)[:5]
            )
            return f"{prefix}-{inputs.get('globalReplicationGroupIdSuffix', name)}"
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
        if type_ == "aws:rds/instance:Instance":
            address = f"{state.get('identifier', 'db')}.{h[:12]}.{self.region}.rds.amazonaws.com"
            secret = f"arn:{self.partition}:secretsmanager:{self.region}:{self.account}:secret:rds!db-{h[:8]}-{h[8:14]}"
            return {
                "arn": f"arn:{self.partition}:rds:{self.region}:{self.account}:db:{state.get('identifier', 'db')}",
                "address": address,
                "endpoint": f"{address}:{state.get('port', 5432)}",
                "masterUserSecrets": [
                    {
                        "secretArn": secret,
                        "kmsKeyId": state.get("masterUserSecretKmsKeyId", ""),
                        "secretStatus": "active",
                    }
                ],
            }
        if type_ == "aws:rds/proxy:Proxy":
            # DBProxy.DBProxyArn and Endpoint (RDS API Reference): arn:...:db-proxy:prx-<id>, and
            # <name>.proxy-<id>.<region>.rds.amazonaws.com ("Connecting to a database through RDS Proxy").
            return {
                "arn": f"arn:{self.partition}:rds:{self.region}:{self.account}:db-proxy:prx-{h[:17]}",
                "endpoint": f"{state.get('name', 'proxy')}.proxy-{h[17:29]}.{self.region}.rds.amazonaws.com",
            }
        if type_ == "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup":
            return {"name": "default"}  # a proxy's default target group is always named "default"
        if type_ == "aws:elasticache/replicationGroup:ReplicationGroup":
            host = f"{h[:10]}.{h[10:16]}.ng.0001.{self.region[:3]}{self.region[-1]}.cache.amazonaws.com"
            clustered = state.get("clusterMode") == "enabled"
            return {
                "primaryEndpointAddress": "" if clustered else f"master.{host}",
                "readerEndpointAddress": "" if clustered else f"replica.{host}",
                "configurationEndpointAddress": f"clustercfg.{host}" if clustered else "",
            }
        if type_ == "random:index/randomPassword:RandomPassword":
            return {"result": digest("password", h)[: int(state.get("length", 32))], "bcryptHash": "$2a$10$" + h[:53]}
        if type_ == "aws:s3/bucket:Bucket":
            return {
                "bucket": state["name"],
                "arn": f"arn:{self.partition}:s3:::{state['name']}",
                "bucketRegionalDomainName": f"{state['name']}.s3.{self.region}.amazonaws.com",
            }
        if type_ == "aws:sesv2/emailIdentity:EmailIdentity":
            tokens = [digest("dkim", h, str(i))[:32] for i in range(3)]
            return {
                "arn": f"arn:{self.partition}:ses:{self.region}:{self.account}:identity/{state['emailIdentity']}",
                "dkimSigningAttributes": {
                    "tokens": tokens,
                    "nextSigningKeyLength": "RSA_2048_BIT",
                    "status": "PENDING",
                },
            }
        if type_ == "aws:sesv2/configurationSet:ConfigurationSet":
            return {
                "arn": f"arn:{self.partition}:ses:{self.region}:{self.account}:configuration-set/"
                f"{state['configurationSetName']}"
            }
        if type_ == "aws:backup/vault:Vault":
            return {"arn": f"arn:{self.partition}:backup:{self.region}:{self.account}:backup-vault:{state['name']}"}
        if type_ == "aws:backup/plan:Plan":
            plan_id = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
            return {"arn": f"arn:{self.partition}:backup:{self.region}:{self.account}:backup-plan:{plan_id}"}
        if type_ == "aws:sns/topic:Topic":
            return {"arn": f"arn:{self.partition}:sns:{self.region}:{self.account}:{state['name']}"}
        if type_ == "aws:secretsmanager/secret:Secret":
            return {
                "arn": f"arn:{self.partition}:secretsmanager:{self.region}:{self.account}:secret:"
                f"{state['name']}-{h[:6]}"
            }
        if type_ == "aws:ecr/repository:Repository":
            return {
                "registryId": self.account,
                "repositoryUrl": f"{self.account}.dkr.ecr.{self.region}.amazonaws.com/{state['name']}",
            }
        if type_ == "docker:index/image:Image":
            repository = str(state.get("imageName", "image")).split(":")[0]
            return {"repoDigest": f"{repository}@sha256:{digest('image', h)}", "baseImageName": state.get("imageName")}
        if type_ == "aws:lb/loadBalancer:LoadBalancer":
            return {
                "dnsName": f"{state['name']}-{int(h[:8], 16)}.{self.region}.elb.amazonaws.com",
                "zoneId": "Z35SXDOTRQ7X7K",
                "arnSuffix": f"app/{state['name']}/{h[:16]}",
            }
        if type_ == "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup":
            return {"globalReplicationGroupId": self._id(type_, "", state, h)}
        if type_ == "aws:cloudfront/distribution:Distribution":
            distribution = self._id(type_, "", state, h)
            return {
                "arn": f"arn:{self.partition}:cloudfront::{self.account}:distribution/{distribution}",
                "domainName": f"d{h[13:26]}.cloudfront.net",
                "hostedZoneId": "Z2FDTNDATAQYW2",
                "status": "Deployed",
            }
        if type_ == "aws:wafv2/webAcl:WebAcl":
            where = "global" if state.get("scope") == "CLOUDFRONT" else "regional"
            acl = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
            return {
                "arn": f"arn:{self.partition}:wafv2:{self.region}:{self.account}:{where}/webacl/{state['name']}/{acl}"
            }
        if type_ in (
            "aws:cloudwatch/logDeliverySource:LogDeliverySource",
            "aws:cloudwatch/logDeliveryDestination:LogDeliveryDestination",
        ):
            kind = "delivery-source" if type_.endswith("Source") else "delivery-destination"
            return {"arn": f"arn:{self.partition}:logs:{self.region}:{self.account}:{kind}:{state['name']}"}
        if type_ == "aws:lb/targetGroup:TargetGroup":
            return {"arnSuffix": f"targetgroup/{state['name']}/{h[:16]}"}
        if type_ == "aws:acm/certificate:Certificate":
            hosts = [state["domainName"], *state.get("subjectAlternativeNames", [])]
            return {
                "domainValidationOptions": [
                    {
                        "domainName": host,
                        "resourceRecordName": f"_{digest(host)[:32]}.{host}.",
                        "resourceRecordType": "CNAME",
                        "resourceRecordValue": f"_{digest('acm', host)[:32]}.acm-validations.aws.",
                    }
                    for host in hosts
                ]
            }
        if type_ == "aws:route53/record:Record":
            return {"fqdn": str(state.get("name", "")).rstrip(".")}
        if type_ == "aws:acm/certificateValidation:CertificateValidation":
            return {"certificateArn": state.get("certificateArn")}
        if type_ == "aws:ec2/launchTemplate:LaunchTemplate":
            return {"latestVersion": 1, "defaultVersion": 1}
        if type_ == "kubernetes:helm.sh/v3:Release":
            return {"status": {"status": "deployed", "namespace": state.get("namespace", "default"), "version": 1}}
        return {}

    # ------------------------------------------------------------------ remote components (pulumi-eks)

    def _child(self, parent_urn: str, type_: str, name: str, resource_id: str, state: dict[str, Any]) -> dict[str, Any]:
        """Register a resource a remote component creates and return a reference to it."""
        stack_project, _, _name = parent_urn.rpartition("::")
        head, _, parent_type = stack_project.rpartition("::")
        urn = f"{head}::{parent_type}${type_}::{name}"
        self.virtual.append((urn, resource_id, {"urn": urn, "id": resource_id, **state}))
        return {_SIG: _RESOURCE_SIG, "urn": urn, "id": resource_id, "packageVersion": ""}

    def _eks_cluster(self, name: str, urn: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        h = digest(urn)
        cluster_name = str(inputs.get("name") or f"{name}-eksCluster-{h[:7]}")
        endpoint = f"https://{h[:32].upper()}.gr7.{self.region}.eks.amazonaws.com"
        cluster_sg = f"sg-{h[:17]}"
        ca_data = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCmtlZWwtcHJldmlldwotLS0tLUVORCBDRVJUSUZJQ0FURS0tLS0tCg=="
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "kubernetes", "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}
            ],
            "contexts": [{"name": "aws", "context": {"cluster": "kubernetes", "user": "aws"}}],
            "current-context": "aws",
            "users": [
                {
                    "name": "aws",
                    "user": {
                        "exec": {
                            "apiVersion": "client.authentication.k8s.io/v1beta1",
                            "command": "aws",
                            "args": ["eks", "get-token", "--cluster-name", cluster_name, "--output", "json"],
                        }
                    },
                }
            ],
        }
        eks_cluster = self._child(
            urn,
            "aws:eks/cluster:Cluster",
            f"{name}-eksCluster",
            cluster_name,
            {
                "name": cluster_name,
                "arn": f"arn:{self.partition}:eks:{self.region}:{self.account}:cluster/{cluster_name}",
                "endpoint": endpoint,
                "version": inputs.get("version", ""),
                "status": "ACTIVE",
                "certificateAuthority": {"data": ca_data},
                "vpcConfig": {"clusterSecurityGroupId": cluster_sg, "vpcId": inputs.get("vpcId", "")},
            },
        )
        return f"{name}-{h[:7]}", {
            "eksCluster": eks_cluster,
            "kubeconfig": kubeconfig,
            "kubeconfigJson": json.dumps(kubeconfig),
            "clusterSecurityGroupId": cluster_sg,
            "nodeSecurityGroupId": cluster_sg,
            "clusterIngressRuleId": "",
            "defaultNodeGroupAsgName": "",
            "fargateProfileId": "",
            "fargateProfileStatus": "",
            "oidcProviderArn": "",
            "oidcProviderUrl": "",
            "oidcIssuer": f"https://oidc.eks.{self.region}.amazonaws.com/id/{h[:32].upper()}",
            "autoModeNodeRoleName": "",
            "instanceRoles": [],
        }

    def _managed_node_group(self, name: str, urn: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        h = digest(urn)
        group_name = f"{name}-{h[:7]}"
        asg = f"eks-{group_name}-{h[7:15]}-{h[15:19]}-{h[19:23]}-{h[23:27]}-{h[27:39]}"
        node_group = self._child(
            urn,
            "aws:eks/nodeGroup:NodeGroup",
            name,
            group_name,
            {
                "nodeGroupName": group_name,
                "arn": f"arn:{self.partition}:eks:{self.region}:{self.account}:nodegroup/{group_name}",
                "status": "ACTIVE",
                "capacityType": inputs.get("capacityType", "ON_DEMAND"),
                "instanceTypes": inputs.get("instanceTypes", []),
                "resources": [{"autoscalingGroups": [{"name": asg}], "remoteAccessSecurityGroupId": ""}],
            },
        )
        return group_name, {"nodeGroup": node_group}

    # ------------------------------------------------------------------ invokes

    def invoke(self, token: str, args: dict[str, Any], provider: str = "") -> dict[str, Any]:
        return self._on(provider)._invoke(token, args)

    def _invoke(self, token: str, args: dict[str, Any]) -> dict[str, Any]:
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

    def _elb_account(self, args: dict[str, Any]) -> dict[str, Any]:
        # The account ELB delivers access logs from in us-east-1 (a fixed, published id per region).
        return {"id": "127311923021", "arn": f"arn:{self.partition}:iam::127311923021:root", "region": self.region}

    def _prefix_list(self, args: dict[str, Any]) -> dict[str, Any]:
        # An AWS-managed prefix list by name: its id differs per region (pl-3b927c52 is CloudFront's origin-facing
        # list in us-east-1), so the fake derives one from the name and region.
        name = str(args.get("name", ""))
        return {
            "id": "pl-" + digest("prefix-list", self.region, name)[:8],
            "name": name,
            "ownerId": "AWS",
            "addressFamily": "IPv4",
            "maxEntries": 55,
            "entries": [],
            "tags": {},
        }

    def _ecr_token(self, args: dict[str, Any]) -> dict[str, Any]:
        registry = args.get("registryId") or self.account
        return {
            "id": self.region,
            "authorizationToken": "ZmFrZTpmYWtl",
            "userName": "AWS",
            "password": digest("ecr-token", registry)[:40],
            "proxyEndpoint": f"https://{registry}.dkr.ecr.{self.region}.amazonaws.com",
            "expiresAt": "2099-01-01T00:00:00Z",
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
