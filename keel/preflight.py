"""``keel preflight STACK``: read-only checks of everything that would make ``pulumi up`` fail half-way.

Usage::

    keel preflight prod [--state-bucket acme-pulumi-state] [--json]

Each check passes, warns or fails with the fix to apply; a failure makes the command exit 1. Every check has a
timeout, and a denied call is reported as the permission to grant (``keel/data/preflight-policy.json`` lists them
all), never as a traceback. It honours ``AWS_PROFILE``, ``AWS_REGION`` and ``AWS_ENDPOINT_URL``.

Checks: the credentials' account (``keel:accountId``); the region; enough zones; each node group's instance types
offered in those zones; the Spot vCPU quota of the G/VT family and the standard family's quota cover ``maxSize``;
the Kubernetes version is offered by EKS; the ACM certificate is ISSUED and covers every ingress host; the hosted
zones exist; SES is out of its sandbox (a warning); the RDS engine version and class are orderable; the state
bucket from ``keel bootstrap`` exists with versioning.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from components.config import StackConfig

CLIENT_CONFIG = Config(connect_timeout=5, read_timeout=20, retries={"max_attempts": 2, "mode": "standard"})
#: Service Quotas codes (EC2): running On-Demand standard instances, all standard Spot requests, all G and VT Spot
#: requests, running On-Demand G and VT instances. All are counted in vCPUs.
QUOTAS = {
    ("ON_DEMAND", False): "L-1216C47A",
    ("SPOT", False): "L-34B43A08",
    ("SPOT", True): "L-3819A6DF",
    ("ON_DEMAND", True): "L-DB2E81BA",
}
DENIED = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException")


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # pass | warn | fail
    detail: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


class Preflight:
    def __init__(self, session: boto3.session.Session, cfg: StackConfig, state_bucket: str | None = None) -> None:
        self.cfg = cfg
        self.state_bucket = state_bucket

        def client(name: str) -> Any:
            return session.client(name, region_name=cfg.region, config=CLIENT_CONFIG)

        self.sts, self.ec2, self.eks, self.acm = client("sts"), client("ec2"), client("eks"), client("acm")
        self.route53, self.sesv2, self.rds, self.s3 = client("route53"), client("sesv2"), client("rds"), client("s3")
        self.quotas = client("service-quotas")

    def run(self) -> list[Check]:
        checks: list[Check] = []
        for name, check in (
            ("credentials", self._credentials),
            ("region", self._region),
            ("availability zones", self._zones),
            ("instance types offered", self._offerings),
            ("vCPU quotas", self._quotas),
            ("EKS version", self._eks_version),
            ("certificate", self._certificate),
            ("hosted zones", self._zones_dns),
            ("SES sending", self._ses),
            ("RDS orderable", self._rds),
            ("state backend", self._state),
        ):
            checks += self._guard(name, check)
        return checks

    @staticmethod
    def _guard(name: str, check: Callable[[], list[Check]]) -> list[Check]:
        try:
            return check()
        except ClientError as err:
            code = str(err.response.get("Error", {}).get("Code", ""))
            if code in DENIED:
                return [
                    Check(
                        name,
                        "fail",
                        f"permission denied for {err.operation_name}",
                        "grant the actions in keel/data/preflight-policy.json",
                    )
                ]
            return [Check(name, "fail", f"{err.operation_name} failed: {code or err}", "see the AWS error above")]
        except BotoCoreError as err:
            return [Check(name, "fail", f"could not ask AWS: {err}", "check the network, AWS_REGION and credentials")]

    # ------------------------------------------------------------------ checks

    def _credentials(self) -> list[Check]:
        account = self.sts.get_caller_identity()["Account"]
        if self.cfg.account_id and account != self.cfg.account_id:
            return [
                Check(
                    "credentials",
                    "fail",
                    f"credentials are for account {account}, the stack deploys to {self.cfg.account_id}",
                    "switch AWS_PROFILE to the stack's account",
                )
            ]
        return [Check("credentials", "pass", f"account {account}")]

    def _region(self) -> list[Check]:
        regions = [r["RegionName"] for r in self.ec2.describe_regions(AllRegions=False)["Regions"]]
        if self.cfg.region not in regions:
            return [
                Check(
                    "region",
                    "fail",
                    f"{self.cfg.region} is not enabled for this account",
                    "enable the region or change aws:region",
                )
            ]
        return [Check("region", "pass", self.cfg.region)]

    def _available_zones(self) -> list[str]:
        zones = self.ec2.describe_availability_zones(
            Filters=[
                {"Name": "state", "Values": ["available"]},
                {"Name": "opt-in-status", "Values": ["opt-in-not-required"]},
            ]
        )["AvailabilityZones"]
        return sorted(z["ZoneName"] for z in zones)

    def _planned_zones(self) -> list[str]:
        net = self.cfg.network
        return list(net.zone_names) if net.zone_names else self._available_zones()[: net.availability_zones]

    def _zones(self) -> list[Check]:
        available, net = self._available_zones(), self.cfg.network
        missing = [z for z in (net.zone_names or []) if z not in available]
        if len(available) < net.availability_zones or missing:
            return [
                Check(
                    "availability zones",
                    "fail",
                    f"need {net.availability_zones}, the region offers "
                    f"{len(available)} ({', '.join(available)})"
                    + (f"; not offered: {', '.join(missing)}" if missing else ""),
                    "lower keel:network.availabilityZones or fix keel:network.zoneNames",
                )
            ]
        return [Check("availability zones", "pass", ", ".join(self._planned_zones()))]

    def _offerings(self) -> list[Check]:
        if self.cfg.cluster is None:
            return []
        zones = set(self._planned_zones())
        out = []
        for name, group in self.cfg.cluster.node_groups.items():
            offered = self.ec2.describe_instance_type_offerings(
                LocationType="availability-zone",
                Filters=[
                    {"Name": "instance-type", "Values": list(group.instance_types)},
                    {"Name": "location", "Values": sorted(zones)},
                ],
            )["InstanceTypeOfferings"]
            where: dict[str, set[str]] = {}
            for o in offered:
                where.setdefault(o["InstanceType"], set()).add(o["Location"])
            covered = set().union(*where.values()) if where else set()
            absent = [t for t in group.instance_types if not where.get(t)]
            if covered != zones:
                out.append(
                    Check(
                        f"instance types offered ({name})",
                        "fail",
                        f"{', '.join(group.instance_types)} not offered in {', '.join(sorted(zones - covered))}",
                        f"add fallback types to keel:cluster.nodeGroups.{name}.instanceTypes or pick zones "
                        "that offer them (keel:network.zoneNames)",
                    )
                )
            elif absent:
                out.append(
                    Check(
                        f"instance types offered ({name})",
                        "warn",
                        f"{', '.join(absent)} offered nowhere",
                        "remove them from the group",
                    )
                )
            else:
                out.append(
                    Check(
                        f"instance types offered ({name})", "pass", f"{', '.join(group.instance_types)} in every zone"
                    )
                )
        return out

    def _quotas(self) -> list[Check]:
        if self.cfg.cluster is None:
            return []
        out = []
        for name, group in self.cfg.cluster.node_groups.items():
            first = group.instance_types[0]
            vcpus = self.ec2.describe_instance_types(InstanceTypes=[first])["InstanceTypes"][0]["VCpuInfo"][
                "DefaultVCpus"
            ]
            needed = int(vcpus) * group.max_size
            code = QUOTAS[(group.capacity_type, group.gpu)]
            quota = self.quotas.get_service_quota(ServiceCode="ec2", QuotaCode=code)["Quota"]
            limit = float(quota["Value"])
            label = f"vCPU quota ({name})"
            if limit < needed:
                out.append(
                    Check(
                        label,
                        "fail",
                        f"{quota.get('QuotaName', code)} is {limit:.0f} vCPU; {group.max_size}"
                        f" x {first} needs {needed}",
                        f"request an increase of {code} in Service Quotas (or lower maxSize)",
                    )
                )
            else:
                out.append(Check(label, "pass", f"{needed} of {limit:.0f} vCPU ({code})"))
        return out

    def _eks_version(self) -> list[Check]:
        if self.cfg.cluster is None:
            return []
        version = self.cfg.cluster.version
        found = self.eks.describe_cluster_versions(clusterVersions=[version])["clusterVersions"]
        if not found:
            return [
                Check(
                    "EKS version",
                    "fail",
                    f"EKS does not offer Kubernetes {version} here",
                    "choose an offered keel:cluster.version",
                )
            ]
        status = str(found[0].get("versionStatus", found[0].get("status", "")))
        if status.upper().startswith("EXTENDED"):
            return [
                Check(
                    "EKS version",
                    "warn",
                    f"{version} is in extended support (billed extra)",
                    "upgrade keel:cluster.version",
                )
            ]
        return [Check("EKS version", "pass", f"{version} ({status or 'offered'})")]

    def _certificate(self) -> list[Check]:
        ingress = self.cfg.ingress
        if ingress is None or ingress.certificate_arn is None:
            return []
        try:
            cert = self.acm.describe_certificate(CertificateArn=ingress.certificate_arn)["Certificate"]
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            return [
                Check(
                    "certificate",
                    "fail",
                    f"{ingress.certificate_arn} does not exist in {self.cfg.region}",
                    "request or import it in ACM, or set keel:ingress.hostedZoneId so keel requests one",
                )
            ]
        names = {cert.get("DomainName", ""), *cert.get("SubjectAlternativeNames", [])}
        hosts = sorted({s.ingress.host for s in self.cfg.services.values() if s.ingress})
        uncovered = [h for h in hosts if not any(fnmatch.fnmatch(h, n) and h.count(".") == n.count(".") for n in names)]
        if cert.get("Status") != "ISSUED":
            return [Check("certificate", "fail", f"status {cert.get('Status')}", "finish DNS validation in ACM")]
        if uncovered:
            return [
                Check(
                    "certificate",
                    "fail",
                    f"does not cover {', '.join(uncovered)}",
                    "reissue it with those names or use keel:ingress.hostedZoneId",
                )
            ]
        return [Check("certificate", "pass", f"ISSUED for {', '.join(hosts)}")]

    def _zones_dns(self) -> list[Check]:
        ids = sorted(
            {
                z
                for z in (
                    self.cfg.ingress.hosted_zone_id if self.cfg.ingress else None,
                    self.cfg.email.hosted_zone_id if self.cfg.email else None,
                )
                if z
            }
        )
        out = []
        for zone in ids:
            try:
                name = self.route53.get_hosted_zone(Id=zone)["HostedZone"]["Name"]
                out.append(Check("hosted zones", "pass", f"{zone} ({name})"))
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") != "NoSuchHostedZone":
                    raise
                out.append(Check("hosted zones", "fail", f"{zone} does not exist", "fix the hostedZoneId"))
        return out

    def _ses(self) -> list[Check]:
        if self.cfg.email is None:
            return []
        if not self.sesv2.get_account().get("ProductionAccessEnabled"):
            return [
                Check(
                    "SES sending",
                    "warn",
                    "the account is in the SES sandbox (only verified recipients)",
                    "request production access for SES in this region",
                )
            ]
        return [Check("SES sending", "pass", "production access")]

    def _rds(self) -> list[Check]:
        db = self.cfg.database
        if db is None:
            return []
        options = self.rds.describe_orderable_db_instance_options(
            Engine="postgres",
            EngineVersion=db.engine_version,
            DBInstanceClass=db.instance_class,
            MaxRecords=20,
        )["OrderableDBInstanceOptions"]
        if not options:
            return [
                Check(
                    "RDS orderable",
                    "fail",
                    f"postgres {db.engine_version} on {db.instance_class} is not orderable here",
                    "pick another keel:database.instanceClass or engineVersion",
                )
            ]
        return [Check("RDS orderable", "pass", f"postgres {db.engine_version} on {db.instance_class}")]

    def _state(self) -> list[Check]:
        if not self.state_bucket:
            return [Check("state backend", "warn", "no --state-bucket given", "pass the bucket keel bootstrap created")]
        try:
            self.s3.head_bucket(Bucket=self.state_bucket)
        except ClientError as err:
            if str(err.response.get("Error", {}).get("Code")) in ("404", "NoSuchBucket", "NotFound"):
                return [
                    Check("state backend", "fail", f"bucket {self.state_bucket} does not exist", "run keel bootstrap")
                ]
            raise
        if self.s3.get_bucket_versioning(Bucket=self.state_bucket).get("Status") != "Enabled":
            return [
                Check("state backend", "fail", f"bucket {self.state_bucket} has no versioning", "run keel bootstrap")
            ]
        return [Check("state backend", "pass", f"s3://{self.state_bucket}")]
