"""keel bootstrap against moto's server on 127.0.0.1 (the real HTTP API; no test reaches the network)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import boto3
import pytest

from keel import bootstrap, cli, stackfiles
from tests.helpers import REGION, ROOT

#: The stacks `keel bootstrap` makes roles for: every stack file, whichever they are.
SHIPPED = stackfiles.stacks(ROOT)


def run(
    bucket: str = "acme-pulumi-state", repo: str | None = "acme/keel", stacks: Sequence[str] = tuple(SHIPPED)
) -> bootstrap.Result:
    return bootstrap.Bootstrap(boto3.session.Session(), REGION).run(bucket, repo, list(stacks))


@pytest.fixture(autouse=True)
def aws_managed_policies(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto knows AWS's managed policies (ReadOnlyAccess, attached to the preview roles) only when asked to; the IAM
    backend reads this when the first IAM call after the server's reset creates it."""
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")


def document(value: Any) -> Any:
    """An IAM policy document as boto3 returns it (a dict, or JSON text from some servers)."""
    return json.loads(value) if isinstance(value, str) else value


def test_creates_a_locked_down_state_backend(aws: str) -> None:
    result = run()
    s3 = boto3.client("s3")
    bucket = "acme-pulumi-state"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
    )
    assert s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}
    ]
    sse = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert sse["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": result.key_arn}
    assert json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"]) == bootstrap.tls_only_policy(bucket)
    assert s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"][0]["NoncurrentVersionExpiration"] == {
        "NoncurrentDays": 90
    }
    kms = boto3.client("kms")
    key = kms.describe_key(KeyId=bootstrap.ALIAS)["KeyMetadata"]
    assert key["Arn"] == result.key_arn
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True
    assert result.commands(["prod"]) == [
        "pulumi login s3://acme-pulumi-state",
        "pulumi stack init prod --secrets-provider 'awskms://alias/keel-pulumi-secrets?region=us-east-1'",
    ]
    assert "created bucket acme-pulumi-state" in result.changes


def test_every_stack_gets_a_deploy_role_only_its_environment_may_assume(aws: str) -> None:
    result = run()
    iam = boto3.client("iam")
    assert sorted(result.roles) == SHIPPED
    for stack in SHIPPED:
        role = iam.get_role(RoleName=f"keel-deploy-{stack}")["Role"]
        assert result.roles[stack] == role["Arn"]
        [statement] = document(role["AssumeRolePolicyDocument"])["Statement"]
        assert statement["Principal"] == {
            "Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
        }
        assert statement["Condition"] == {
            "StringEquals": {
                "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
                "token.actions.githubusercontent.com:sub": f"repo:acme/keel:environment:{stack}",
            }
        }
        assert iam.list_attached_role_policies(RoleName=f"keel-deploy-{stack}")["AttachedPolicies"] == []


def test_every_stack_gets_a_read_only_preview_role_for_pull_requests_and_drift(aws: str) -> None:
    """keel-preview-<stack>: preview.yml on the repository's pull requests and drift.yml on main, never in an
    environment (so no deploy role's trust matches it either); ReadOnlyAccess, plus reading the state and its key,
    the stack's own secret values, and no other bucket's objects; no write action anywhere."""
    result = run()
    iam = boto3.client("iam")
    assert sorted(result.preview_roles) == SHIPPED
    for stack in SHIPPED:
        name = f"keel-preview-{stack}"
        role = iam.get_role(RoleName=name)["Role"]
        assert result.preview_roles[stack] == role["Arn"]
        trust = document(role["AssumeRolePolicyDocument"])
        conditions = {st["Sid"]: st["Condition"] for st in trust["Statement"]}
        claim = "token.actions.githubusercontent.com"
        assert conditions == {
            "PullRequestPreviews": {
                "StringEquals": {f"{claim}:aud": "sts.amazonaws.com", f"{claim}:sub": "repo:acme/keel:pull_request"},
                "StringLike": {f"{claim}:job_workflow_ref": "acme/keel/.github/workflows/preview.yml@refs/pull/*"},
            },
            "NightlyDrift": {
                "StringEquals": {
                    f"{claim}:aud": "sts.amazonaws.com",
                    f"{claim}:sub": "repo:acme/keel:ref:refs/heads/main",
                    f"{claim}:job_workflow_ref": "acme/keel/.github/workflows/drift.yml@refs/heads/main",
                }
            },
        }
        assert "environment" not in json.dumps(trust)
        attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
        assert [p["PolicyArn"] for p in attached] == ["arn:aws:iam::aws:policy/ReadOnlyAccess"]
        inline = document(iam.get_role_policy(RoleName=name, PolicyName="keel-preview")["PolicyDocument"])
        assert inline == bootstrap.preview_policy("123456789012", "acme-pulumi-state", result.key_arn, stack)
        allowed = {st["Action"] for st in inline["Statement"] if st["Effect"] == "Allow"}
        assert allowed == {"s3:ListBucket", "s3:GetObject", "kms:Decrypt", "secretsmanager:GetSecretValue"}
        statements = {st["Sid"]: st for st in inline["Statement"]}
        assert statements["DecryptStateAndConfig"]["Resource"] == result.key_arn
        assert statements["ReadState"]["Resource"] == "arn:aws:s3:::acme-pulumi-state/*"
        assert statements["NoOtherObjects"]["NotResource"] == "arn:aws:s3:::acme-pulumi-state/*"
        assert statements["RefreshOwnSecrets"]["Condition"] == {"StringEquals": {"aws:ResourceTag/stack": stack}}
        # a service's own secrets (the tag keel puts on them) are never readable by a branch's preview
        assert statements["NoServiceSecrets"] == {
            "Sid": "NoServiceSecrets",
            "Effect": "Deny",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": "*",
            "Condition": {"Null": {"aws:ResourceTag/keel.dev/secret": "false"}},
        }


def test_a_preview_role_changed_by_hand_is_brought_back(aws: str) -> None:
    stack = SHIPPED[0]
    name = f"keel-preview-{stack}"
    run()
    iam = boto3.client("iam")
    iam.detach_role_policy(RoleName=name, PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    iam.put_role_policy(
        RoleName=name,
        PolicyName="keel-preview",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
            }
        ),
    )
    loose = bootstrap.preview_trust("123456789012", "acme/keel")
    loose["Statement"][0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"] = "repo:acme/*"
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(loose))
    assert run().changes == [
        f"restricted the trust of role {name}",
        f"attached ReadOnlyAccess to role {name}",
        f"restored the state and secrets access of role {name}",
    ]
    assert run().changes == []


def test_a_second_run_changes_nothing(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    first = run().changes
    assert [c for c in first if c.startswith("created role ")] == [
        f"created role keel-{kind}-{stack}" for stack in SHIPPED for kind in ("deploy", "preview")
    ]
    assert run().changes == []
    assert (
        cli.main(["bootstrap", "--region", REGION, "--state-bucket", "acme-pulumi-state", "--github-repo", "acme/keel"])
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("no change: the state backend is already in place\n")
    assert "pulumi login s3://acme-pulumi-state" in out
    for stack in SHIPPED:
        assert f"deploy role for {stack}: arn:aws:iam::" in out and f":role/keel-deploy-{stack}\n" in out
        assert f"preview role for {stack}: arn:aws:iam::" in out and f":role/keel-preview-{stack}\n" in out


def test_an_existing_bucket_without_versioning_is_refused(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    boto3.client("s3").create_bucket(Bucket="old-state")
    with pytest.raises(bootstrap.BootstrapError, match="exists without versioning; keel will not adopt it"):
        run("old-state", None)
    assert "PublicAccessBlockConfiguration" not in str(boto3.client("s3").list_buckets())  # nothing else touched
    assert cli.main(["bootstrap", "--region", REGION, "--state-bucket", "old-state"]) == 1
    assert capsys.readouterr().err.startswith("error: bucket old-state exists without versioning")


def test_a_trust_policy_loosened_by_hand_is_restricted_again(aws: str) -> None:
    run()
    iam = boto3.client("iam")
    stack = SHIPPED[-1]
    loose = bootstrap.deploy_trust("123456789012", "acme/keel", stack)
    loose["Statement"][0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"] = "repo:acme/*"
    iam.update_assume_role_policy(RoleName=f"keel-deploy-{stack}", PolicyDocument=json.dumps(loose))
    assert run().changes == [f"restricted the trust of role keel-deploy-{stack}"]


def test_bad_repo_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bootstrap", "--region", REGION, "--state-bucket", "b", "--github-repo", "keel"]) == 2
    assert capsys.readouterr().err == "error: --github-repo: got 'keel'; expected OWNER/REPO\n"


#: IAM action of each API operation whose name differs from its action (S3's renames).
IAM_ACTION = {
    "s3:HeadBucket": "s3:ListBucket",
    "s3:GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "s3:PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "s3:GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "s3:PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "s3:GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "s3:PutBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
}


def test_the_shipped_policy_covers_every_call(aws: str) -> None:
    from pathlib import Path

    calls: set[str] = set()
    session = boto3.session.Session()
    session.events.register(
        "before-call", lambda model, **_: calls.add(f"{model.service_model.signing_name}:{model.name}")
    )
    bootstrap.Bootstrap(session, REGION).run("acme-pulumi-state", "acme/keel", SHIPPED[:1])
    needed = {IAM_ACTION.get(c, c) for c in calls} - {"sts:GetCallerIdentity"}  # needs no permission
    policy = json.loads((Path(bootstrap.__file__).parent / "data" / "bootstrap-policy.json").read_text())
    allowed = {a for st in policy["Statement"] for a in st["Action"]}
    assert needed <= allowed, sorted(needed - allowed)
    assert {"s3:CreateBucket", "kms:CreateKey", "iam:CreateRole", "iam:PutRolePolicy"} <= needed  # it saw the run
    [attach] = [st for st in policy["Statement"] if "iam:AttachRolePolicy" in st["Action"]]
    assert attach["Condition"] == {"ArnEquals": {"iam:PolicyARN": bootstrap.READ_ONLY_POLICY}}


def test_a_bucket_of_another_account_is_refused(aws: str) -> None:
    from botocore.stub import Stubber

    tool = bootstrap.Bootstrap(boto3.session.Session(), REGION)
    # moto does not model ExpectedBucketOwner: S3 answers 403 for a bucket of another account
    with Stubber(tool.s3) as s3:
        s3.add_client_error("head_bucket", service_error_code="403", http_status_code=403)
        with pytest.raises(bootstrap.BootstrapError, match="exists but is not owned by account 123456789012"):
            tool.run("someone-elses-state")
