"""`keel preview`: text and JSON output, stability, exit codes and messages for user errors."""

from __future__ import annotations

import json
import os
import re
import runpy
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from components.config import ConfigError
from keel import engine
from keel.cli import main
from tests.helpers import ROOT, fixture_flags, policy_config_file, stack_file


def keel(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the project's entry files in a scratch folder, for stacks with broken config; its one stack is the
    tests' dev stack."""
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copy(stack_file("dev"), tmp_path / "Pulumi.dev.yaml")
    for name in ("components", "policies"):  # the same code: keel previews the checkout it runs in
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_preview_text_shows_tree_and_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = keel(capsys, "preview", "prod", *fixture_flags("prod"))
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "keel / prod  (offline preview)"
    assert lines[1].endswith("+ keel-prod  pulumi:pulumi:Stack")
    assert any(line.endswith("+ keel-prod  keel:network:Network") for line in lines)
    assert any("+ keel-prod-logs  aws:kms/key:Key  (protected, retained)" in line for line in lines)
    assert any("+ keel-prod-nat-us-east-1c  aws:ec2/natGateway:NatGateway" in line for line in lines)
    assert "445 resources to create" in out  # with the RDS Proxy, the CDN, the bucket replicas and the queue's copy
    rows = {cells[1].strip(): cells[2].strip() for line in lines if len(cells := line.split("│")) == 4}
    assert rows["aws:ec2/subnet:Subnet"] == "18"  # 9 in the stack's network, 9 in the standby network
    assert rows["aws:rds/instance:Instance"] == "2"  # the database and its read replica
    assert re.search(r'^  vpcId: "vpc-[0-9a-f]+"$', out, re.M)  # outputs print as JSON


def test_preview_text_prints_names_types_and_masks_literally(capsys: pytest.CaptureFixture[str]) -> None:
    """rich must not read type tokens or ARNs as emoji codes (``:email:``, ``:secret:``) or ``[secret]`` as
    markup: every name, type and output prints exactly as the preview has it."""
    code, out, _ = keel(capsys, "preview", "prod", *fixture_flags("prod"))
    assert code == 0
    assert "keel:email:Email" in out and "✉" not in out
    assert re.search(r'^  databaseSecretArn: "arn:aws:secretsmanager:[^"]+:secret:rds!db-[^"]+"$', out, re.M)


def test_rendered_text_is_never_markup_or_emoji() -> None:
    import io

    from rich.console import Console

    from keel import render
    from keel.engine import Preview, Step

    def step(type_: str, name: str, **outputs: Any) -> Step:
        return Step(f"urn:pulumi:s::keel::{type_}::{name}", type_, name, False, "", {}, outputs=outputs)

    stack = step(
        "pulumi:pulumi:Stack", "keel-s", arn="arn:aws:secretsmanager:us-east-1:1:secret:db", token="[secret]", n=3
    )
    buffer = io.StringIO()
    console = Console(file=buffer, width=200)  # rich's defaults: emoji codes and markup on, yet nothing is read
    render.preview(console, Preview(stack="s", project="keel", steps=[stack, step("keel:email:Email", "[secret]")]))
    out = buffer.getvalue()
    assert "+ [secret]  keel:email:Email" in out
    assert '  arn: "arn:aws:secretsmanager:us-east-1:1:secret:db"' in out
    assert '  token: "[secret]"' in out and "  n: 3" in out


def _walk_keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [k for k in value] + [k2 for v in value.values() for k2 in _walk_keys(v)]
    if isinstance(value, list):
        return [k for v in value for k in _walk_keys(v)]
    return []


def test_preview_json_has_the_pulumi_shape_and_is_stable(
    preview: Callable[[str], engine.Preview], capsys: pytest.CaptureFixture[str]
) -> None:
    code, first, _ = keel(capsys, "preview", "prod", "--json", *fixture_flags("prod"))
    assert code == 0
    doc = json.loads(first)
    assert doc["steps"] == preview("prod").to_json()["steps"]  # another run, the same preview
    assert set(doc) == {"steps", "changeSummary", "policyViolations"}
    assert doc["policyViolations"] == []
    assert (
        doc["changeSummary"] == {"create": len(doc["steps"])} == {"create": 445}
    )  # 350 + the read replica and its 2 log groups and 4 alarms + the RDS Proxy and its 9 companions
    for step in doc["steps"]:
        assert step["op"] == "create"
        assert step["urn"] == step["newState"]["urn"]
        assert {
            "type",
            "urn",
            "custom",
            "parent",
            "inputs",
            "protect",
            "retainOnDelete",
            "dependencies",
            "provider",
        } <= set(step["newState"])
    vpc = next(s["newState"] for s in doc["steps"] if s["newState"]["type"] == "aws:ec2/vpc:Vpc")
    assert vpc["inputs"]["cidrBlock"] == "10.20.0.0/16"
    assert vpc["inputs"]["enableDnsHostnames"] is True
    assert vpc["urn"] == (
        "urn:pulumi:prod::keel::keel:platform:Platform$keel:network:Network$aws:ec2/vpc:Vpc::keel-prod-vpc"
    )
    # inputs use the engine's camelCase names, never the Python SDK's snake_case
    input_keys = [k for s in doc["steps"] for k in s["newState"]["inputs"]]
    assert input_keys and not [k for k in input_keys if "_" in k]
    # parents come before children and dependencies before dependents; a dependency may also be a resource
    # that a remote component (pulumi-eks) creates inside its provider, after that component
    seen: set[str] = set()
    remote = {"eks:index:Cluster", "eks:index:ManagedNodeGroup"}
    for step in doc["steps"]:
        state = step["newState"]
        assert not state["parent"] or state["parent"] in seen
        for dep in state["dependencies"]:
            parent_type = dep.split("::")[2].rsplit("$", 1)[0]
            assert dep in seen or (
                parent_type.rsplit("$", 1)[-1] in remote and parent_type in {s.split("::")[2] for s in seen}
            ), dep
        seen.add(state["urn"])


def test_dev_differs_only_by_its_config(preview: Callable[[str], engine.Preview]) -> None:
    dev_types = [s.type for s in preview("dev").steps]
    prod_types = [s.type for s in preview("prod").steps]
    # the stacks differ only where their config makes them: dev requests its certificate in its hosted zone,
    # prod brings one and adds the CDN with its WAF and access logs, the vault locks, the replicated database backups
    # and buckets, the RDS Proxy and the Prometheus stack
    assert set(dev_types) - set(prod_types) == {
        "aws:acm/certificate:Certificate",
        "aws:acm/certificateValidation:CertificateValidation",
        "aws:route53/record:Record",
    }
    assert set(prod_types) - set(dev_types) == {
        "keel:cdn:Cdn",  # keel:ingress.cdn (prod, not dev)
        "aws:cloudfront/distribution:Distribution",
        "aws:cloudwatch/logDelivery:LogDelivery",
        "aws:cloudwatch/logDeliveryDestination:LogDeliveryDestination",
        "aws:cloudwatch/logDeliverySource:LogDeliverySource",
        "aws:wafv2/webAcl:WebAcl",
        "aws:s3/bucketReplicationConfig:BucketReplicationConfig",  # keel:buckets.replication
        "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup",  # keel:caches.queue.crossRegion
        "aws:backup/vaultLockConfiguration:VaultLockConfiguration",
        "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication",
        "aws:rds/proxy:Proxy",  # keel:database.proxy (prod, not dev)
        "aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup",
        "aws:rds/proxyTarget:ProxyTarget",
        "keel:observability:PrometheusStack",
        "kubernetes:core/v1:Secret",
        "kubernetes:storage.k8s.io/v1:StorageClass",
        "kubernetes:monitoring.coreos.com/v1:PodMonitor",
        "kubernetes:monitoring.coreos.com/v1:PrometheusRule",
    }
    assert len(dev_types) == 310


def test_unknown_stack_lists_the_stacks(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "Pulumi.prod.yml").write_text("config: {}\n")
    code, out, err = keel(capsys, "preview", "qa")
    assert code == 2
    assert out == ""
    assert err == "error: unknown stack 'qa'; stacks in this project: dev, prod\n"  # .yaml and .yml alike


def test_invalid_config_exits_2_with_the_key_and_no_traceback(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "Pulumi.bad.yaml").write_text(
        "config:\n  aws:region: us-east-1\n  keel:environment: prod\n"
        "  keel:network: {cidr: 10.0.0.0/33, availabilityZones: 9}\n"
    )
    code, out, err = keel(capsys, "preview", "bad", "--no-policy")
    assert code == 2
    assert out == ""
    assert err == (
        "error: stack 'bad': invalid stack config (2 problem(s)):\n"
        "  - keel:network.cidr: got '10.0.0.0/33'; expected an RFC 1918 IPv4 block (10.0.0.0/8, 172.16.0.0/12, "
        "192.168.0.0/16) with a prefix from /16 to /20\n"
        "  - keel:network.availabilityZones: got 9; allowed: 2 to 6\n"
    )


def test_declared_type_mismatch_and_bad_yaml_are_user_errors(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "Pulumi.typed.yaml").write_text("config:\n  aws:region: us-east-1\n  keel:environment: [prod]\n")
    code, _, err = keel(capsys, "preview", "typed", "--no-policy")
    assert code == 2
    assert err == 'error: Pulumi.typed.yaml: keel:environment: got ["prod"]; Pulumi.yaml declares it as string\n'
    (project / "Pulumi.broken.yaml").write_text("config:\n  keel:network: {cidr: [\n")
    code, _, err = keel(capsys, "preview", "broken", "--no-policy")
    assert code == 2
    assert err.startswith("error: Pulumi.broken.yaml is not valid YAML (line ")


def test_a_duplicate_key_in_a_stack_file_names_both_lines(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """PyYAML keeps the last of two equal keys; the Pulumi CLI (Go yaml.v3) refuses them. Two ``web:`` services
    must stop keel too, before anything runs."""
    (project / "Pulumi.twice.yaml").write_text(
        "config:\n  aws:region: us-east-1\n  keel:environment: dev\n  keel:services:\n"
        "    web: {image: a}\n    api: {image: b}\n    web:\n      image: c\n"
    )
    for command in (["preview", "twice"], ["cost", "twice"]):
        code, out, err = keel(capsys, *command)
        assert (code, out) == (2, "")
        assert (
            err
            == "error: Pulumi.twice.yaml is not valid YAML (line 7, column 5): duplicate key 'web' at lines 5 and 7\n"
        )


def test_a_stack_without_policy_config_exits_2_naming_the_file(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The engine reads the file `--policy-pack-config` names and fails when it is missing; keel does not fall back
    to the pack's defaults (which would demote prod's thresholds)."""
    shutil.copy(stack_file("dev"), project / "Pulumi.qa.yaml")
    code, out, err = keel(capsys, "preview", "qa")
    assert (code, out) == (2, "")
    assert err.startswith(
        f"error: {project / 'policies' / 'config.qa.json'}: no such file; every stack needs its policy"
    )
    existing = sorted(p.name for p in (ROOT / "policies").glob("config.*.json"))  # the shipped ones, whichever
    assert f"Existing: {', '.join(existing)};" in err


def test_config_file_and_policy_pack_config_replace_the_stack_files(
    preview: Callable[[str], engine.Preview], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`keel preview STACK --config-file PATH --policy-pack-config PATH`, as `pulumi preview` takes them: the stack
    keeps its name (URNs, resource names), its config and policy config come from the files, wherever they are."""
    config, policies = tmp_path / "any-name.yaml", tmp_path / "any-policy.json"
    shutil.copy(stack_file("dev"), config)
    shutil.copy(policy_config_file("dev"), policies)
    code, out, err = keel(
        capsys, "preview", "qa", "--json", "--config-file", str(config), "--policy-pack-config", str(policies)
    )
    assert (code, err) == (0, "")  # no Pulumi.qa.yaml and no policies/config.qa.json needed
    doc = json.loads(out)
    dev = preview("dev").to_json()["steps"]
    assert [s["urn"] for s in doc["steps"]] == [
        re.sub(r"::keel-dev\b", "::keel-qa", s["urn"].replace("urn:pulumi:dev::", "urn:pulumi:qa::")) for s in dev
    ]
    # the dev policy config's one advisory finding (README), at qa's resources
    assert sorted(
        {(v["policyName"], v["enforcementLevel"], v["urn"].rsplit("::", 1)[1]) for v in doc["policyViolations"]}
    ) == [
        ("aws-elasticache-snapshot-retention", "advisory", "keel-qa-cache"),
        ("aws-elasticache-snapshot-retention", "advisory", "keel-qa-queue"),
    ]
    # `keel policy --saved` prints that verdict from the saved document (the PR workflow's single render)
    saved = tmp_path / "preview-qa.json"
    saved.write_text(out)
    code, text, err = keel(capsys, "policy", str(saved), "--saved")
    assert (code, err) == (0, "")
    lines = text.splitlines()
    assert lines[1:3] == [f"Policies: {len(doc['policyViolations'])} violation(s), 0 mandatory", "  medium"]
    assert sorted(lines[3:]) == sorted(
        f"    advisory  {v['policyName']}  {v['urn'].rsplit('::', 1)[1]}: {v['message'].splitlines()[-1]}"
        for v in doc["policyViolations"]
    )
    # a document rendered without the pack holds no verdict, and is not taken for a clean one
    unanalyzed = tmp_path / "unanalyzed.json"
    unanalyzed.write_text(json.dumps({k: v for k, v in doc.items() if k != "policyViolations"}))
    assert keel(capsys, "policy", str(unanalyzed), "--saved") == (
        2,
        "",
        f"error: {unanalyzed}: no policy results saved (rendered with --no-policy?); run keel policy without it\n",
    )


def test_missing_config_files_are_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing"
    code, out, err = keel(capsys, "preview", "prod", "--config-file", f"{missing}.yaml")
    assert (code, out, err) == (2, "", f"error: --config-file {missing}.yaml: no such file\n")
    for command in (["cost", "prod"], ["preflight", "prod"]):
        assert keel(capsys, *command, "--config-file", f"{missing}.yaml") == (2, "", err)
    code, out, err = keel(
        capsys, "preview", "prod", "--config-file", str(stack_file("prod")), "--policy-pack-config", f"{missing}.json"
    )
    assert (code, out, err) == (2, "", f"error: --policy-pack-config {missing}.json: no such file\n")
    saved = tmp_path / "preview.json"
    saved.write_text('{"steps": []}')
    assert keel(capsys, "policy", str(saved), "--policy-pack-config", f"{missing}.json") == (2, "", err)


def test_bad_config_registers_nothing(project: Path) -> None:
    monitor = engine.RecordingMonitor(engine.FakeCloud("us-east-1"))
    config = {
        "aws:region": "us-east-1",
        "keel:environment": "prod",
        "keel:network": '{"natGateways":"Single"}',
    }
    with pytest.raises(ConfigError):
        engine.execute(
            lambda: runpy.run_path(str(project / "__main__.py"), run_name="__main__"),
            stack="bad",
            config=config,
            monitor=monitor,
        )
    assert [s.type for s in monitor.steps.values()] == ["pulumi:pulumi:Stack"]


def test_console_script_exit_codes_without_traceback(project: Path) -> None:
    (project / "Pulumi.bad.yaml").write_text(
        "config:\n  aws:region: us-east-1\n  keel:environment: prod\n  keel:netwrok: {}\n"
    )
    script = Path(sys.executable).parent / "keel"
    done = subprocess.run(
        [str(script), "preview", "bad", "--no-policy"],
        capture_output=True,
        text=True,
        cwd=project,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "keel:netwrok: unknown key; allowed keys: accountId," in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    ok = subprocess.run(
        [str(script), "preview", "dev", "--json", *fixture_flags("dev")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert (ok.returncode, ok.stderr) == (0, "")  # nothing but the document: no warnings, no noise
    assert json.loads(ok.stdout)["changeSummary"] == {"create": 310}
    usage = subprocess.run([str(script), "preview"], capture_output=True, text=True, timeout=60, check=False)
    assert usage.returncode == 2
    assert "the following arguments are required: stack" in usage.stderr


def test_validate_a_valid_stack_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    """`keel validate` reads the stack file and the policy config as `keel preview` does (the same flags)."""
    assert keel(capsys, "validate", "prod", *fixture_flags("prod")) == (0, "prod: valid\n", "")
    assert keel(capsys, "validate", "dev", *fixture_flags("dev")) == (0, "dev: valid\n", "")


def test_validate_reports_every_problem_at_once_with_previews_messages(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Config problems (all of them, the messages `keel preview` prints) and the policy config's problem, together;
    exit 2."""
    (project / "Pulumi.bad.yaml").write_text(
        "config:\n  aws:region: us-east-1\n  keel:environment: dev\n"
        "  keel:network: {cidr: 10.0.0.0/33, availabilityZones: 9}\n"
        "  keel:database: {instanceClass: db.r6g.xlarg}\n"
    )
    code, out, err = keel(capsys, "validate", "bad")
    assert (code, out) == (2, "")
    config, policy = err.split("\nerror: ")
    assert config == (
        "error: stack 'bad': invalid stack config (3 problem(s)):\n"
        "  - keel:network.cidr: got '10.0.0.0/33'; expected an RFC 1918 IPv4 block (10.0.0.0/8, 172.16.0.0/12, "
        "192.168.0.0/16) with a prefix from /16 to /20\n"
        "  - keel:network.availabilityZones: got 9; allowed: 2 to 6\n"
        "  - keel:database.instanceClass: got 'db.r6g.xlarg'; not an RDS instance class keel accepts (families t4g, "
        "t3, m6g, m7g, m6i, m7i, r6g, r7g, r6i, r7i); did you mean 'db.r6g.xlarge'?"
    )
    assert policy.startswith(f"{project / 'policies' / 'config.bad.json'}: no such file; every stack needs its")
    code, _, preview_err = keel(capsys, "preview", "bad", "--no-policy")
    assert (code, preview_err) == (2, config + "\n")  # the same messages as the program's


def test_validate_checks_the_policy_config_against_the_packs_schemas(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The stack's policy config is reconciled with the pack's own policies and schemas, as the engine does, without
    starting the pack: a misspelt policy, a bad level and a property its schema refuses are each an error."""
    settings = json.loads(policy_config_file("prod").read_text())
    flags = ["--config-file", str(stack_file("prod")), "--policy-pack-config", str(tmp_path / "p.json")]
    for change, message in (
        ({"aws-rds-instance-multi-azz": "mandatory"}, "policy config names 'aws-rds-instance-multi-azz', which the"),
        ({"aws-rds-instance-multi-az": "blocking"}, "got enforcement level 'blocking'; allowed: "),
        ({"aws-rds-instance-backup-retention": {"minimumDays": "seven"}}, "minimumDays: 'seven' is not of type"),
    ):
        (tmp_path / "p.json").write_text(json.dumps({**settings, **change}))
        code, out, err = keel(capsys, "validate", "prod", *flags)
        assert (code, out) == (2, "")
        assert err.startswith("error: ") and message in err, err
    (tmp_path / "p.json").write_text("{not json")
    code, _, err = keel(capsys, "validate", "prod", *flags)
    assert code == 2 and err.startswith(f"error: {tmp_path / 'p.json'}: not valid JSON")


def test_validate_builds_the_packs_own_analyzer_info_in_process() -> None:
    """`keel validate` builds the pack's AnalyzerInfo without serving the pack; it is the one the pack's server
    answers with (policies, levels, schemas, initial config)."""
    from google.protobuf import empty_pb2

    from keel import cli, policy

    pack = policy.Pack(ROOT / "policies")
    try:
        served = pack.stub.GetAnalyzerInfo(empty_pb2.Empty())
    finally:
        pack.close()
    assert cli._pack_info(ROOT / "policies") == served


def test_validate_unknown_stack_and_missing_files_are_usage_errors(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert keel(capsys, "validate", "qa") == (2, "", "error: unknown stack 'qa'; stacks in this project: dev\n")
    missing = project / "missing.yaml"
    assert keel(capsys, "validate", "dev", "--config-file", str(missing)) == (
        2,
        "",
        f"error: --config-file {missing}: no such file\n",
    )


def test_validate_runs_no_program_and_imports_no_provider_sdk() -> None:
    """`keel validate prod` in a fresh interpreter: valid, and neither the provider SDKs nor the engine's program
    were loaded (the budget is about a second; README has the measurement)."""
    code = (
        "import sys\n"
        "from keel.cli import main\n"
        "code = main(['validate', 'prod'])\n"
        "loaded = sorted(m for m in ('pulumi_aws', 'pulumi_eks', 'pulumi_kubernetes', 'pulumi_docker', 'keel.engine')"
        " if m in sys.modules)\n"
        "print(code, loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False
    )
    assert done.stdout.splitlines()[-1] == "0 []", done.stderr


def test_version_names_keel_and_the_sdks(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib import metadata

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    first, second = capsys.readouterr().out.splitlines()
    assert first == f"keel {metadata.version('keel')}"
    for name in ("pulumi", "pulumi-aws", "pulumi-eks", "pulumi-kubernetes", "pulumi-policy", "botocore"):
        assert f"{name} {metadata.version(name)}" in second.split(", ")
