"""keel preflight against moto's server on 127.0.0.1. Where moto lacks an API, botocore's Stubber answers for that
client only: Service Quotas (moto has no EC2 vCPU quota codes), EKS DescribeClusterVersions, SES v2 GetAccount and
RDS DescribeOrderableDBInstanceOptions (moto's catalogue has no PostgreSQL 16)."""

from __future__ import annotations

import contextlib
import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from components.config import StackConfig, validate
from keel import preflight, stackfiles
from tests.helpers import ROOT, stack_file

HOSTS = ["app.example.com", "api.example.com"]


def prod(**overrides: Any) -> StackConfig:
    raw, _ = stackfiles.load_config(ROOT, "prod", stackfiles.load_project(ROOT), path=stack_file("prod"))
    for key, value in overrides.items():
        raw[key] = value if isinstance(value, str) else json.dumps(value)
    return validate("prod", raw)


def import_certificate(hosts: list[str]) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return str(
        boto3.client("acm").import_certificate(
            Certificate=cert.public_bytes(serialization.Encoding.PEM),
            PrivateKey=key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )["CertificateArn"]
    )


@contextlib.contextmanager
def stubs(check: preflight.Preflight, *, gpu_quota: float = 64, production: bool = True) -> Iterator[None]:
    """The APIs moto lacks, answered by Stubber on those clients only."""
    with contextlib.ExitStack() as stack:
        quotas = stack.enter_context(Stubber(check.quotas))
        for code, value in (("L-1216C47A", 64.0), ("L-3819A6DF", gpu_quota)):
            quotas.add_response(
                "get_service_quota",
                {"Quota": {"QuotaCode": code, "Value": value, "QuotaName": code}},
                {"ServiceCode": "ec2", "QuotaCode": code},
            )
        eks = stack.enter_context(Stubber(check.eks))
        eks.add_response(
            "describe_cluster_versions",
            {"clusterVersions": [{"clusterVersion": "1.34", "versionStatus": "STANDARD_SUPPORT"}]},
            {"clusterVersions": ["1.34"]},
        )
        stack.enter_context(Stubber(check.sesv2)).add_response("get_account", {"ProductionAccessEnabled": production})
        rds = stack.enter_context(Stubber(check.rds))
        rds.add_response(
            "describe_orderable_db_instance_options", {"OrderableDBInstanceOptions": [{"Engine": "postgres"}]}
        )
        yield
        for stubber in (quotas, eks, rds):
            stubber.assert_no_pending_responses()  # every stubbed API was really called


#: The IAM actions of the calls the Stubber answers (stubbed clients emit no request events to record).
STUBBED = {
    "servicequotas:GetServiceQuota",
    "eks:DescribeClusterVersions",
    "ses:GetAccount",
    "rds:DescribeOrderableDBInstanceOptions",
}


def run(cfg: StackConfig, **kwargs: Any) -> dict[str, preflight.Check]:
    boto3.client("s3").create_bucket(Bucket="acme-pulumi-state")
    boto3.client("s3").put_bucket_versioning(Bucket="acme-pulumi-state", VersioningConfiguration={"Status": "Enabled"})
    check = preflight.Preflight(boto3.session.Session(), cfg, "acme-pulumi-state")
    with stubs(check, **kwargs):
        return {c.name: c for c in check.run()}


def passing(aws: str) -> StackConfig:
    arn = import_certificate(HOSTS)
    return prod(**{"keel:ingress": {"certificateArn": arn, "deletionProtection": True}})


def test_a_ready_account_passes_every_check(aws: str) -> None:
    checks = run(passing(aws))
    assert {name: c.status for name, c in checks.items()} == {
        "credentials": "pass",
        "region": "pass",
        "availability zones": "pass",
        "instance types offered (general)": "pass",
        "instance types offered (gpu)": "pass",
        "vCPU quota (general)": "pass",
        "vCPU quota (gpu)": "pass",
        "EKS version": "pass",
        "certificate": "pass",
        "SES sending": "pass",
        "RDS orderable": "pass",
        "state backend": "pass",
    }
    assert checks["vCPU quota (gpu)"].detail == "4 of 64 vCPU (L-3819A6DF)"
    assert checks["availability zones"].detail == "us-east-1a, us-east-1b, us-east-1c"


def test_an_instance_type_missing_from_a_zone_fails(aws: str) -> None:
    cluster = prod().cluster
    assert cluster is not None
    groups = cluster.node_groups.model_dump(by_alias=True, exclude_none=True)
    groups["gpu"]["instanceTypes"] = ["p4de.24xlarge"]
    cfg = prod(**{"keel:cluster": {**cluster.model_dump(by_alias=True, exclude_none=True), "nodeGroups": groups}})
    check = run(cfg)["instance types offered (gpu)"]
    assert (check.status, check.detail) == ("fail", "p4de.24xlarge not offered in us-east-1a")
    assert check.fix.startswith("add fallback types to keel:cluster.nodeGroups.gpu.instanceTypes")


def test_a_missing_certificate_fails_with_its_fix(aws: str) -> None:
    check = run(prod())["certificate"]  # the ARN in tests/stacks/Pulumi.prod.yaml does not exist in this account
    assert check.status == "fail"
    assert check.detail.endswith("does not exist in us-east-1")


def test_a_certificate_not_covering_a_host_fails(aws: str) -> None:
    arn = import_certificate(["app.example.com"])
    check = run(prod(**{"keel:ingress": {"certificateArn": arn}}))["certificate"]
    assert (check.status, check.detail) == ("fail", "does not cover api.example.com")


def test_the_wrong_account_fails(aws: str) -> None:
    check = run(prod(**{"keel:accountId": "111122223333"}))["credentials"]
    assert check.status == "fail"
    assert check.detail == "credentials are for account 123456789012, the stack deploys to 111122223333"


def test_quota_and_sandbox(aws: str) -> None:
    checks = run(passing(aws), gpu_quota=0, production=False)
    assert checks["vCPU quota (gpu)"].status == "fail"
    assert checks["vCPU quota (gpu)"].fix.startswith("request an increase of L-3819A6DF")
    assert checks["SES sending"].status == "warn"


def test_cli_prints_a_checklist_and_exits_1_on_failure(
    aws: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from keel import cli

    def fake_run(self: preflight.Preflight) -> list[preflight.Check]:
        with stubs(self):
            return original(self)

    original = preflight.Preflight.run
    monkeypatch.setattr(preflight.Preflight, "run", fake_run)
    # the prod certificate ARN is not in this account
    assert cli.main(["preflight", "prod", "--json", "--config-file", str(stack_file("prod"))]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["stack"] == "prod"
    assert {c["name"]: c["status"] for c in report["checks"]}["certificate"] == "fail"
    assert set(report["checks"][0]) == {"name", "status", "detail", "fix"}


IAM_ACTION = {
    "s3:HeadBucket": "s3:ListBucket",
    "service-quotas:GetServiceQuota": "servicequotas:GetServiceQuota",
    "sesv2:GetAccount": "ses:GetAccount",
    "email:GetAccount": "ses:GetAccount",
}


def test_the_shipped_policy_covers_every_call(aws: str) -> None:
    calls: set[str] = set()
    session = boto3.session.Session()
    session.events.register(
        "before-call", lambda model, **_: calls.add(f"{model.service_model.endpoint_prefix}:{model.name}")
    )
    check = preflight.Preflight(session, passing(aws), "acme-pulumi-state")
    boto3.client("s3").create_bucket(Bucket="acme-pulumi-state")
    with stubs(check):
        check.run()
    needed = ({IAM_ACTION.get(c, c) for c in calls} | STUBBED) - {"sts:GetCallerIdentity"}
    policy = json.loads((Path(preflight.__file__).parent / "data" / "preflight-policy.json").read_text())
    assert needed <= {a for st in policy["Statement"] for a in st["Action"]}, sorted(needed)
    allowed = {a for st in policy["Statement"] for a in st["Action"]}
    assert allowed - needed == {"route53:GetHostedZone"}  # nothing unused: prod configures no hosted zone


def zones(check: preflight.Preflight) -> list[preflight.Check]:
    """The hosted-zone findings of a whole run (the public way in)."""
    return [c for c in check.run() if c.name == "hosted zones"]


def test_hosted_zones_must_exist(aws: str) -> None:
    # moto's zone ids do not look like Route 53's (Z...), which the config validates: Stubber answers route53 here
    cfg = prod(**{"keel:email": {"domain": "example.com", "hostedZoneId": "Z0123456789ABC"}})
    check = preflight.Preflight(boto3.session.Session(), cfg, "acme-pulumi-state")
    with Stubber(check.route53) as route53:
        route53.add_response(
            "get_hosted_zone",
            {
                "HostedZone": {"Id": "/hostedzone/Z0123456789ABC", "Name": "example.com.", "CallerReference": "keel"},
                "DelegationSet": {"NameServers": ["ns-1.example"]},
            },
            {"Id": "Z0123456789ABC"},
        )
        assert zones(check) == [preflight.Check("hosted zones", "pass", "Z0123456789ABC (example.com.)")]
        route53.add_client_error("get_hosted_zone", service_error_code="NoSuchHostedZone", http_status_code=404)
        assert zones(check) == [
            preflight.Check("hosted zones", "fail", "Z0123456789ABC does not exist", "fix the hostedZoneId")
        ]


def test_a_denied_call_is_reported_as_the_permission_to_grant(aws: str) -> None:
    check = preflight.Preflight(boto3.session.Session(), prod(), None)
    with Stubber(check.sts) as sts:
        sts.add_client_error("get_caller_identity", service_error_code="AccessDenied", http_status_code=403)
        found = [c for c in check.run() if c.name == "credentials"]
    assert found == [
        preflight.Check(
            "credentials",
            "fail",
            "permission denied for GetCallerIdentity",
            "grant the actions in keel/data/preflight-policy.json",
        )
    ]
