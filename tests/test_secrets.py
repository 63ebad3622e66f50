"""Secrets. A service's own secrets are Secrets Manager secrets whose values are set out of band: keel creates them
empty, lets only that service's role read them (decrypting only through Secrets Manager) and gives the pods their
ARNs. Stack config holds no secret of a service: `env` refuses a `secure:` value and a key named like a secret.

The engine hands the program a secure value's plaintext and lists only the top-level key as secret; the program
must keep what it reads from a secret key secret, and `keel preview` fails when a secret reaches an input or an
output unmarked (its leak detector)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from components.config import ConfigError, validate
from keel import cli, engine, stackfiles
from keel.engine import Preview
from tests.helpers import ROOT, physical_id, policy_doc, stack_config, stack_file

ACCOUNT = "123456789012"
ROTATOR = "arn:aws:lambda:us-east-1:111122223333:function:keel-rotate-stripe-key"

# ------------------------------------------------------------------------------------------ the leak detector


def test_a_secret_read_unmarked_is_caught_with_its_key_and_input() -> None:
    """`Config.get` returns a secure value's plaintext unmarked: a program that passes it on leaks it into the
    state. The recording monitor finds the stand-in outside any secret envelope."""
    token = stackfiles.stand_in("keel:token")

    def program() -> None:
        plain = pulumi.Config("keel").get("token")
        aws.s3.Bucket("leaky", tags={"token": plain or ""})
        aws.s3.Bucket("kept", tags={"token": pulumi.Config("keel").get_secret("token")})  # type: ignore[dict-item]

    monitor = engine.RecordingMonitor(engine.FakeCloud("us-east-1"), stand_ins={token: "keel:token"})
    preview = engine.execute(
        program,
        stack="t",
        config={"aws:region": "us-east-1", "keel:token": token},
        secret_keys=["keel:token"],
        monitor=monitor,
    )
    assert [(leak.config_path, leak.urn.rsplit("::", 1)[1], leak.input_path) for leak in preview.leaks] == [
        ("keel:token", "leaky", "tags.token")
    ]
    assert str(preview.leaks[0]) == (
        "secret config keel:token reaches leaky (aws:s3/bucket:Bucket) tags.token unmarked; read it with "
        "get_secret*/Output.secret so it stays secret"
    )
    assert preview.one("aws:s3/bucket:Bucket", "kept").inputs["tags"] == {"token": "[secret]"}


def test_a_secure_value_outside_the_keys_that_keep_it_is_refused() -> None:
    raw = stack_config("dev", alerts={"emails": ["oncall@example.com"]})
    with pytest.raises(ConfigError) as err:
        validate("dev", raw, secret_keys=["keel:alerts"])
    assert err.value.problems == [
        "keel:alerts: holds a secure value; keel keeps secure values only in keel:accountId "
        "(this key's values reach resources in plain text)"
    ]
    assert validate("dev", raw, secret_keys=["aws:region"]).secret_keys == frozenset()


SERVICES_SECURE = (
    "keel:services: holds a secure value; a service takes no secure config (the engine marks only the whole key "
    "secret, so keel cannot say which value, and every value there reaches resources): list the secret's name in "
    "keel:services.<name>.secrets (a Secrets Manager secret the service reads with its own role) and set its value "
    "out of band with `aws secretsmanager put-secret-value`"
)


def test_a_secure_value_in_services_is_refused() -> None:
    """The engine lists `keel:services` as secret when any value in it is secure, and says no more: the refusal
    names the key and where the secret goes instead. Nothing else is validated, so no message quotes the value."""
    raw = stack_config("dev", services={"api": {"image": "x", "env": {"PARTNER_TOKEN": "the-plaintext"}}})
    with pytest.raises(ConfigError) as err:
        validate("dev", raw, secret_keys=["keel:services"])
    assert err.value.problems == [SERVICES_SECURE]


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A checkout with the project's code, for a stack shaped as the tests' dev stack holding secure values."""
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    for name in ("components", "policies"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _stack_with(scratch: Path, name: str, extra: dict[str, Any], env: dict[str, Any] | None = None) -> None:
    import yaml

    doc = yaml.safe_load(stack_file("dev").read_text())
    config = doc["config"]
    if env is not None:
        config["keel:services"]["api"]["env"] = env
    config.update(extra)
    (scratch / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(doc))


def test_a_secure_env_value_stops_the_preview(scratch: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`keel preview` of a stack with a secure env value: exit 2 (invalid config) with the refusal, and the value
    appears nowhere, not even as keel's stand-in."""
    _stack_with(scratch, "sec", {}, env={"LOG_LEVEL": "info", "PARTNER": {"secure": "v1:AAAA"}})
    assert cli.main(["preview", "sec", "--no-policy"]) == 2
    out, err = capsys.readouterr()
    assert SERVICES_SECURE in err
    assert stackfiles.stand_in("keel:services.api.env.PARTNER") not in out + err


def test_a_secure_account_id_is_accepted_and_nothing_leaks(scratch: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A secure `keel:accountId` is accepted, as the CLI accepts it (an account id shows in every ARN)."""
    _stack_with(scratch, "acct", {"keel:accountId": {"secure": "v1:BBBB"}}, env={"LOG_LEVEL": "info"})
    assert cli.main(["preview", "acct", "--json", "--no-policy"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert "policyViolations" not in doc  # no pack ran: no verdict, rather than an empty one
    [api] = [s["newState"] for s in doc["steps"] if s["urn"].endswith("Deployment::keel-acct-api")]
    env = {e["name"]: e["value"] for e in api["inputs"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["SERVICE_NAME"] == "api" and env["LOG_LEVEL"] == "info"  # plain env stays readable


def test_a_leak_fails_the_preview_naming_key_and_output(scratch: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A program that exports a secure value it read with `Config.get` (unmarked): exit 1, the config key and
    the output. The real engine would write it into the state in plain text."""
    _stack_with(scratch, "leak", {"partner:token": {"secure": "v1:CCCC"}})
    main = scratch / "__main__.py"
    main.write_text(main.read_text() + '\npulumi.export("token", pulumi.Config("partner").get("token"))\n')
    assert cli.main(["preview", "leak", "--no-policy"]) == 1
    assert (
        "error: stack 'leak': secret config partner:token reaches keel-leak (pulumi:pulumi:Stack) output token "
        "unmarked; read it with get_secret*/Output.secret so it stays secret"
    ) in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ a service's secrets

SECRETS = {"PARTNER_TOKEN": "keel-prod-api-secret-partner-token", "STRIPE_KEY": "keel-prod-api-secret-stripe-key"}
SECRET_TYPE = "aws:secretsmanager/secret:Secret"


def _arns(p: Preview) -> dict[str, str]:
    outputs = next(s for s in p.steps if s.type == "pulumi:pulumi:Stack").outputs
    return dict(outputs["serviceSecretArns"]["api"])


def _key_arn(p: Preview, name: str) -> str:
    return f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{physical_id(p.one('aws:kms/key:Key', name))}"


@pytest.mark.parametrize("env", ["prod", "dev"])
def test_each_secret_is_created_empty_under_the_app_secrets_key(preview: Callable[[str], Preview], env: str) -> None:
    p = preview(env)
    names = {k: v.replace("keel-prod", f"keel-{env}") for k, v in SECRETS.items()}
    key = p.one("aws:kms/key:Key", f"keel-{env}-app-secrets")
    service = p.one("keel:service:Service", f"keel-{env}-api")
    for secret, resource in names.items():
        step = p.one(SECRET_TYPE, resource)
        assert step.parent == service.urn
        assert step.inputs["kmsKeyId"] == _key_arn(p, f"keel-{env}-app-secrets")
        assert step.property_dependencies["kmsKeyId"] == [key.urn]
        assert step.inputs["description"] == (
            f"keel-{env}-api: {secret} of the api service; its value is set out of band"
        )
        assert step.inputs["tags"] == {"keel.dev/service": "api", "keel.dev/secret": secret}
        protected = env == "prod"
        assert step.inputs["recoveryWindowInDays"] == (30 if protected else 0)
        assert (step.protect, step.retain_on_delete) == (protected, protected)
        assert "policy" not in step.inputs  # no resource policy: IAM says who reads it
    # the value is out of band: no version of any service secret, nothing of it in Pulumi's state
    versions = p.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    assert not [v for v in versions if "keel:service:Service" in v.urn]
    assert sorted(s.name for s in p.of_type(SECRET_TYPE) if "keel:service:Service" in s.urn) == sorted(names.values())
    assert (key.protect, key.retain_on_delete) == (env == "prod", env == "prod")


def test_rotation_only_where_a_lambda_is_named(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    [rotation] = p.of_type("aws:secretsmanager/secretRotation:SecretRotation")  # STRIPE_KEY's, not PARTNER_TOKEN's
    secret = p.one(SECRET_TYPE, SECRETS["STRIPE_KEY"])
    assert rotation.name == SECRETS["STRIPE_KEY"]
    assert rotation.parent == secret.parent
    assert rotation.property_dependencies["secretId"] == [secret.urn]
    assert rotation.inputs["secretId"] == _arns(p)["STRIPE_KEY"]
    assert rotation.inputs["rotationLambdaArn"] == ROTATOR
    assert rotation.inputs["rotationRules"] == {"automaticallyAfterDays": 30}
    assert rotation.inputs["rotateImmediately"] is False  # the first value is put by hand, then rotated


def test_the_app_secrets_key_is_used_only_through_secrets_manager(preview: Callable[[str], Preview]) -> None:
    """The account administers the key but uses it only through Secrets Manager: no principal, an administrator
    included, decrypts with it directly, and IAM says which role reads which secret."""
    key = preview("prod").one("aws:kms/key:Key", "keel-prod-app-secrets")
    assert key.inputs["enableKeyRotation"] is True and key.inputs["deletionWindowInDays"] == 30
    root = {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    [admin, use] = policy_doc(key)["Statement"]
    assert admin == {
        "Sid": "AccountAdministersKeyThroughIam",
        "Effect": "Allow",
        "Principal": root,
        "Action": [
            "kms:CancelKeyDeletion",
            "kms:CreateAlias",
            "kms:DeleteAlias",
            "kms:DescribeKey",
            "kms:DisableKey",
            "kms:DisableKeyRotation",
            "kms:EnableKey",
            "kms:EnableKeyRotation",
            "kms:Get*",
            "kms:List*",
            "kms:PutKeyPolicy",
            "kms:RetireGrant",
            "kms:RevokeGrant",
            "kms:RotateKeyOnDemand",
            "kms:ScheduleKeyDeletion",
            "kms:TagResource",
            "kms:UntagResource",
            "kms:UpdateAlias",
            "kms:UpdateKeyDescription",
        ],
        "Resource": "*",
    }
    assert not [a for a in admin["Action"] if a in ("kms:*", "kms:Decrypt", "kms:CreateGrant", "kms:Create*")]
    assert use == {
        "Sid": "AccountUsesKeyThroughSecretsManagerOnly",
        "Effect": "Allow",
        "Principal": root,
        "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
        "Resource": "*",
        "Condition": {
            "StringEquals": {
                "kms:ViaService": "secretsmanager.us-east-1.amazonaws.com",
                "kms:CallerAccount": ACCOUNT,
            }
        },
    }


def test_only_the_service_role_reads_its_secrets_exactly(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    arns = _arns(p)
    role = p.one("aws:iam/role:Role", "keel-prod-api")
    grant = p.one("aws:iam/rolePolicy:RolePolicy", "keel-prod-api-secrets")
    assert grant.property_dependencies["role"] == [role.urn]
    assert policy_doc(grant) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadSecret",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                "Resource": [arns["PARTNER_TOKEN"], arns["STRIPE_KEY"]],
            },
            {
                "Sid": "DecryptThroughSecretsManager",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": _key_arn(p, "keel-prod-app-secrets"),
                "Condition": {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}},
            },
        ],
    }
    readers = [
        r.name
        for r in p.of_type("aws:iam/rolePolicy:RolePolicy")
        if any(arn in r.inputs["policy"] for arn in arns.values())
    ]
    assert readers == ["keel-prod-api-secrets"]
    # the pods start once their role may read them
    assert grant.urn in p.one("kubernetes:apps/v1:Deployment", "keel-prod-api").dependencies


def test_the_pods_get_each_secret_arn_never_a_value(preview: Callable[[str], Preview]) -> None:
    p = preview("prod")
    arns = _arns(p)
    spec = p.one("kubernetes:apps/v1:Deployment", "keel-prod-api").inputs["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in spec["containers"][0]["env"]}
    assert {k: v for k, v in env.items() if k.endswith("_SECRET_ARN") and k.split("_SECRET_ARN")[0] in arns} == {
        "PARTNER_TOKEN_SECRET_ARN": arns["PARTNER_TOKEN"],
        "STRIPE_KEY_SECRET_ARN": arns["STRIPE_KEY"],
    }
    assert "[secret]" not in json.dumps(spec)  # nothing in the pod spec is secret: it carries no secret
    assert not [e for e in spec["containers"][0]["env"] if "valueFrom" in e]
