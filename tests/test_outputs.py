"""Stack outputs: every output people use is exported with the shape they expect, the kubeconfig is a secret, and
README.md's table of stack outputs lists exactly what the program exports."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from rich.console import Console

from keel import render
from keel.engine import Preview
from tests.helpers import ROOT, physical_id

ACCOUNT = "123456789012"
ARN = re.compile(r"^arn:aws:[a-z0-9-]+:[a-z0-9-]*:(\d{12})?:.+$")
SERVICES = ("api", "forecast-engine", "forecast-trainer", "web")
CERT = "arn:aws:acm:us-east-1:111122223333:certificate/0f6e2c1a-7b7d-4a57-9d55-1f0a3c9e8b21"


def outputs(p: Preview) -> dict[str, Any]:
    """The stack's outputs as `keel preview --json` records them: the `pulumi:pulumi:Stack` step's."""
    [stack] = [s["newState"] for s in p.to_json()["steps"] if s["newState"]["type"] == "pulumi:pulumi:Stack"]
    return dict(stack["outputs"])


def arn(service: str, value: Any, resource: str = "") -> bool:
    return isinstance(value, str) and bool(ARN.match(value)) and value.split(":")[2] == service and resource in value


def ids(prefix: str, count: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, list) and len(v) == count and all(str(i).startswith(prefix) for i in v)


#: The shape of each output of the tests' prod stack.
SHAPES: dict[str, Callable[[Any], bool]] = {
    "region": lambda v: v == "us-east-1",
    "vpcId": lambda v: v.startswith("vpc-"),
    "availabilityZones": lambda v: v == ["us-east-1a", "us-east-1b", "us-east-1c"],
    "publicSubnetIds": ids("subnet-", 3),
    "privateSubnetIds": ids("subnet-", 3),
    "isolatedSubnetIds": ids("subnet-", 3),
    "natGatewayIds": ids("nat-", 3),
    "clusterName": lambda v: v == "keel-prod",
    "clusterEndpoint": lambda v: v.startswith("https://") and v.endswith(".eks.amazonaws.com"),
    "kubeconfig": lambda v: v == "[secret]",
    "nodeRoleArn": lambda v: arn("iam", v, ":role/keel-prod-nodes-"),
    "nodeSecurityGroupId": lambda v: v.startswith("sg-"),
    "controlPlaneSecurityGroupId": lambda v: v.startswith("sg-"),
    "databaseEndpoint": lambda v: v.startswith("keel-prod-db.") and v.endswith(".rds.amazonaws.com"),
    "databaseSecretArn": lambda v: arn("secretsmanager", v, ":secret:rds!db-"),
    "databaseSubnetGroupName": lambda v: v.startswith("keel-prod-db-"),
    "databaseSecurityGroupId": lambda v: v.startswith("sg-"),
    "databaseParameterGroupName": lambda v: v.startswith("keel-prod-db-"),
    "databaseReaderEndpoints": lambda v: (
        len(v) == 1 and v[0].startswith("keel-prod-db-replica-1.") and v[0].endswith(".rds.amazonaws.com")
    ),
    "databaseProxyEndpoint": lambda v: (
        v.startswith("keel-prod-db-proxy.proxy-") and v.endswith(".us-east-1.rds.amazonaws.com")
    ),
    "cacheEndpoints": lambda v: (
        sorted(v) == ["cache", "queue"] and all(e.endswith(".amazonaws.com") for e in v.values())
    ),
    "cacheAuthSecretArns": lambda v: (
        sorted(v) == ["cache", "queue"]
        and all(arn("secretsmanager", a, f":secret:keel-prod-{n}-auth-") for n, a in v.items())
    ),
    "cacheGlobalDatastores": lambda v: (
        list(v) == ["queue"]
        and v["queue"]["id"] == "ldgnf-keel-prod-queue"  # AWS's us-east-1 prefix
        and v["queue"]["secondary"].startswith("keel-prod-queue-standby-")  # Pulumi names it: read the output
    ),
    "bucketNames": lambda v: sorted(v) == ["artifacts", "logs", "uploads"],
    "bucketReplicaNames": lambda v: (
        sorted(v) == ["artifacts", "uploads"] and all(n.startswith(f"keel-prod-{b}-replica-") for b, n in v.items())
    ),
    "emailDnsRecords": lambda v: isinstance(v, list) and all({"name", "type", "value"} == set(r) for r in v),
    "albDnsName": lambda v: v.endswith(".elb.amazonaws.com"),
    "certificateArn": lambda v: v == CERT,
    "cdnDomainNames": lambda v: (
        sorted(v) == ["api.example.com", "app.example.com"] and all(d.endswith(".cloudfront.net") for d in v.values())
    ),
    "repositoryUrls": lambda v: (
        sorted(v) == list(SERVICES)
        and all(u.startswith(f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/keel-prod-{s}-") for s, u in v.items())
    ),
    "serviceRoleArns": lambda v: (
        sorted(v) == list(SERVICES) and all(arn("iam", a, f":role/keel-prod-{s}-") for s, a in v.items())
    ),
    "serviceSecretArns": lambda v: (
        list(v) == ["api"]
        and sorted(v["api"]) == ["PARTNER_TOKEN", "STRIPE_KEY"]
        and arn("secretsmanager", v["api"]["PARTNER_TOKEN"], ":secret:keel-prod-api-secret-partner-token-")
        and arn("secretsmanager", v["api"]["STRIPE_KEY"], ":secret:keel-prod-api-secret-stripe-key-")
    ),
    "alertsTopicArn": lambda v: arn("sns", v, ":keel-prod-alerts"),
    "dashboardName": lambda v: v == "keel-prod",
    "backupVaultName": lambda v: v == "keel-prod",
    "backupCopyVaultArn": lambda v: arn("backup", v, ":backup-vault:keel-prod-dr") and ":us-west-2:" in v,
}


def test_every_output_is_exported_with_its_shape(preview: Callable[[str], Preview]) -> None:
    out = outputs(preview("prod"))
    assert sorted(out) == sorted(SHAPES)
    assert [name for name, ok in SHAPES.items() if not ok(out[name])] == []


def test_outputs_are_what_the_components_built(preview: Callable[[str], Preview]) -> None:
    """Each output is read from the resource that holds it, not rebuilt from config."""
    p = preview("prod")
    out = outputs(p)
    assert out["databaseSecurityGroupId"] == physical_id(p.one("aws:ec2/securityGroup:SecurityGroup", "keel-prod-db"))
    assert out["nodeSecurityGroupId"] == physical_id(p.one("aws:ec2/securityGroup:SecurityGroup", "keel-prod-nodes"))
    control_plane = p.one("aws:ec2/securityGroup:SecurityGroup", "keel-prod-control-plane")
    assert out["controlPlaneSecurityGroupId"] == physical_id(control_plane)
    instance = p.one("aws:rds/instance:Instance", "keel-prod-db").inputs
    assert out["databaseSubnetGroupName"] == instance["dbSubnetGroupName"]
    assert out["databaseParameterGroupName"] == instance["parameterGroupName"]
    assert out["databaseSecurityGroupId"] in instance["vpcSecurityGroupIds"]
    replica = p.one("aws:rds/instance:Instance", "keel-prod-db-replica-1")
    [reader] = out["databaseReaderEndpoints"]
    assert reader.startswith(replica.inputs["identifier"] + ".")
    proxy = p.one("aws:rds/proxy:Proxy", "keel-prod-db-proxy")
    assert out["databaseProxyEndpoint"].startswith(proxy.inputs["name"] + ".proxy-")
    https = p.one("aws:lb/listener:Listener", "keel-prod-https").inputs
    assert out["certificateArn"] == https["certificateArn"]
    for service in SERVICES:
        template = p.one("aws:eks/podIdentityAssociation:PodIdentityAssociation", f"keel-prod-{service}").inputs
        assert out["serviceRoleArns"][service] == template["roleArn"]
    env = {
        e["name"]: e["value"]
        for e in p.one("kubernetes:apps/v1:Deployment", "keel-prod-api").inputs["spec"]["template"]["spec"][
            "containers"
        ][0]["env"]
    }
    assert out["cacheAuthSecretArns"]["queue"] == env["REDIS_QUEUE_AUTH_SECRET_ARN"]
    assert out["serviceSecretArns"]["api"]["STRIPE_KEY"] == env["STRIPE_KEY_SECRET_ARN"]


def test_a_requested_certificate_is_exported_once_validated(preview: Callable[[str], Preview]) -> None:
    """dev requests its certificate: the output is the validation's ARN, which exists once the certificate is
    issued, so whoever reads it reads a certificate the listener can use."""
    p = preview("dev")
    out = outputs(p)
    assert arn("acm", out["certificateArn"], ":certificate/")
    assert out["certificateArn"] == p.one("aws:lb/listener:Listener", "keel-dev-https").inputs["certificateArn"]
    assert out["kubeconfig"] == "[secret]"
    assert sorted(out["serviceSecretArns"]["api"]) == ["PARTNER_TOKEN", "STRIPE_KEY"]


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_the_kubeconfig_never_shows(preview: Callable[[str], Preview], env: str) -> None:
    """Marked secret in the program: the engine stores it encrypted and `pulumi stack output` shows it only with
    `--show-secrets`; keel's preview shows `[secret]`, in its JSON and in its list of outputs."""
    p = preview(env)
    [stack] = [s for s in p.steps if s.type == "pulumi:pulumi:Stack"]
    assert stack.outputs["kubeconfig"] == "[secret]"
    console = Console(width=400, record=True)
    render.preview(console, p)
    assert '  kubeconfig: "[secret]"' in console.export_text()


def readme_outputs() -> list[str]:
    """The first column of README.md's table whose header is `| output | what | who uses it |`."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("| output | what | who uses it |")
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line.split("|")[1].strip().strip("`"))
    return rows


def test_the_readme_lists_exactly_the_exported_outputs(preview: Callable[[str], Preview]) -> None:
    """The tests' prod stack sets every section, so it exports every output the program can."""
    documented = readme_outputs()
    assert len(documented) == len(set(documented))
    assert sorted(documented) == sorted(outputs(preview("prod")))
    assert set(outputs(preview("dev"))) <= set(documented)


def test_the_dr_runbook_restores_with_the_outputs() -> None:
    text = (ROOT / "README.md").read_text()
    runbook = text[text.index("*Database, point in time*") : text.index("*Database, lost region*")]
    for name in ("databaseSubnetGroupName", "databaseSecurityGroupId", "databaseParameterGroupName"):
        assert f"$(out {name})" in runbook
