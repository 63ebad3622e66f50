"""keel bootstrap against moto's server on 127.0.0.1 (the real HTTP API; no test reaches the network)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import boto3
import pytest

from keel import bootstrap, cli, stackfiles
from tests.helpers import REGION, ROOT


def run(
    bucket: str = "acme-pulumi-state", repo: str | None = "acme/keel", stacks: Sequence[str] = ("dev", "prod")
) -> bootstrap.Result:
    return bootstrap.Bootstrap(boto3.session.Session(), REGION).run(bucket, repo, list(stacks))


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
    iam = boto3.client("iam")
    trust = iam.get_role(RoleName="keel-deploy-prod")["Role"]["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Condition"]["StringEquals"] == {
        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
        "token.actions.githubusercontent.com:sub": "repo:acme/keel:environment:prod",
    }
    assert result.commands(["prod"]) == [
        "pulumi login s3://acme-pulumi-state",
        "pulumi stack init prod --secrets-provider 'awskms://alias/keel-pulumi-secrets?region=us-east-1'",
    ]
    assert "created bucket acme-pulumi-state" in result.changes


def test_a_second_run_changes_nothing(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    shipped = stackfiles.stacks(ROOT)  # the stacks `keel bootstrap` makes deploy roles for, whichever they are
    assert run(stacks=shipped).changes
    assert run(stacks=shipped).changes == []
    assert (
        cli.main(["bootstrap", "--region", REGION, "--state-bucket", "acme-pulumi-state", "--github-repo", "acme/keel"])
        == 0
    )
    out = capsys.readouterr().out
    assert out.startswith("no change: the state backend is already in place\n")
    assert "pulumi login s3://acme-pulumi-state" in out


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
    loose = bootstrap.deploy_trust("123456789012", "acme/keel", "prod")
    loose["Statement"][0]["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"] = "repo:acme/*"
    iam.update_assume_role_policy(RoleName="keel-deploy-prod", PolicyDocument=json.dumps(loose))
    assert run().changes == ["restricted the trust of role keel-deploy-prod"]


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
    bootstrap.Bootstrap(session, REGION).run("acme-pulumi-state", "acme/keel", ["dev"])
    needed = {IAM_ACTION.get(c, c) for c in calls} - {"sts:GetCallerIdentity"}  # needs no permission
    policy = json.loads((Path(bootstrap.__file__).parent / "data" / "bootstrap-policy.json").read_text())
    allowed = {a for st in policy["Statement"] for a in st["Action"]}
    assert needed <= allowed, sorted(needed - allowed)
    assert {"s3:CreateBucket", "kms:CreateKey", "iam:CreateRole"} <= needed  # the recording saw the run


def test_a_bucket_of_another_account_is_refused(aws: str) -> None:
    from botocore.stub import Stubber

    tool = bootstrap.Bootstrap(boto3.session.Session(), REGION)
    # moto does not model ExpectedBucketOwner: S3 answers 403 for a bucket of another account
    with Stubber(tool.s3) as s3:
        s3.add_client_error("head_bucket", service_error_code="403", http_status_code=403)
        with pytest.raises(bootstrap.BootstrapError, match="exists but is not owned by account 123456789012"):
            tool.run("someone-elses-state")
