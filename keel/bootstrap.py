"""``keel bootstrap``: what Pulumi itself needs before the first ``pulumi up``, created idempotently with boto3.

Usage::

    keel bootstrap --region us-east-1 --state-bucket acme-pulumi-state [--github-repo acme/keel]

Creates or brings into line (a second run changes nothing and says so):

- the state bucket: versioning, SSE-KMS with a bucket key, all four public-access blocks, ``BucketOwnerEnforced``,
  a policy denying non-TLS requests, a lifecycle expiring old state versions after 90 days and aborting incomplete
  uploads; an existing bucket owned by another account, or one without versioning, is refused, never changed;
- a KMS key with rotation and the alias ``alias/keel-pulumi-secrets`` for Pulumi's secrets provider;
- with ``--github-repo``, for every stack (every ``Pulumi.<stack>.yaml``) the roles its workflows assume, and the
  GitHub OIDC provider they trust:

  - ``keel-deploy-<stack>`` (deploy.yml): only that repository's workflows running in the GitHub environment named
    after the stack may assume it. Its permissions are the account's to attach (keel attaches none);
  - ``keel-preview-<stack>`` (preview.yml, drift.yml): read-only. Trusted by that repository's ``pull_request``
    runs of preview.yml and by drift.yml on ``main``, never in an environment, so a preview never gets a deploy
    role. It gets AWS's ``ReadOnlyAccess`` (a refresh reads every resource the program manages, and the program's
    lookups) and an inline policy, :func:`preview_policy`: read the state bucket, decrypt with the secrets key (the
    state objects are SSE-KMS with it and Pulumi's ``awskms`` secrets provider decrypts the stack's data key with it),
    read the stack's own Secrets Manager values (a refresh reads each ``SecretVersion``), and no object of any other
    bucket (``ReadOnlyAccess`` would read the app's uploads).

It honours the standard AWS environment (``AWS_PROFILE``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``) and prints the
``pulumi login`` and ``pulumi stack init`` commands to run next.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from components.documents import deny_insecure_transport

ALIAS = "alias/keel-pulumi-secrets"
#: The branch the workflows deploy from and the drift workflow runs on (``on.push.branches`` of deploy.yml).
DEFAULT_BRANCH = "main"
#: The managed policy of the preview roles: read every resource's configuration (what ``pulumi refresh`` reads).
READ_ONLY_POLICY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
#: The name of the preview roles' inline policy.
PREVIEW_INLINE = "keel-preview"
GITHUB_OIDC = "token.actions.githubusercontent.com"
#: GitHub's OIDC certificate thumbprints (IAM no longer checks them for this provider, but the API requires one).
GITHUB_THUMBPRINTS = ["6938fd4d98bab03faadb97b34396831e3780aea1", "1c58a3a8518e8759bf075b76b750d4f2df264fcd"]
NONCURRENT_DAYS = 90
CLIENT_CONFIG = Config(connect_timeout=10, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"})


class BootstrapError(Exception):
    """A precondition failed (a foreign or unversioned bucket, a denied call); nothing more was changed."""


@dataclass
class Result:
    bucket: str
    region: str
    key_arn: str = ""
    roles: dict[str, str] = field(default_factory=dict)
    """The deploy role's ARN by stack."""
    preview_roles: dict[str, str] = field(default_factory=dict)
    """The read-only preview role's ARN by stack."""
    changes: list[str] = field(default_factory=list)

    def commands(self, stacks: Sequence[str]) -> list[str]:
        return [f"pulumi login s3://{self.bucket}"] + [
            f"pulumi stack init {stack} --secrets-provider 'awskms://{ALIAS}?region={self.region}'" for stack in stacks
        ]


def tls_only_policy(bucket: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [deny_insecure_transport(f"arn:aws:s3:::{bucket}")]}


def lifecycle() -> dict[str, Any]:
    return {
        "Rules": [
            {
                "ID": "expire-old-state-versions",
                "Status": "Enabled",
                "Filter": {"Prefix": ""},
                "NoncurrentVersionExpiration": {"NoncurrentDays": NONCURRENT_DAYS},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
            }
        ]
    }


def deploy_role(stack: str) -> str:
    """The role deploy.yml assumes for ``stack``."""
    return f"keel-deploy-{stack}"


def preview_role(stack: str) -> str:
    """The read-only role preview.yml and drift.yml assume for ``stack``."""
    return f"keel-preview-{stack}"


def _github(account: str, sid: str, equals: dict[str, str], like: dict[str, str] | None = None) -> dict[str, Any]:
    condition: dict[str, Any] = {
        "StringEquals": {
            f"{GITHUB_OIDC}:aud": "sts.amazonaws.com",
            **{f"{GITHUB_OIDC}:{k}": v for k, v in equals.items()},
        }
    }
    if like:
        condition["StringLike"] = {f"{GITHUB_OIDC}:{k}": v for k, v in like.items()}
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Federated": f"arn:aws:iam::{account}:oidc-provider/{GITHUB_OIDC}"},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": condition,
    }


def deploy_trust(account: str, repo: str, stack: str) -> dict[str, Any]:
    """Only workflows of ``repo`` running in the GitHub environment ``stack`` may assume the role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": f"arn:aws:iam::{account}:oidc-provider/{GITHUB_OIDC}"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{GITHUB_OIDC}:aud": "sts.amazonaws.com",
                        f"{GITHUB_OIDC}:sub": f"repo:{repo}:environment:{stack}",
                    }
                },
            }
        ],
    }


def preview_trust(account: str, repo: str) -> dict[str, Any]:
    """``repo``'s pull requests running preview.yml, and drift.yml on :data:`DEFAULT_BRANCH`; no environment.

    ``sub`` says which event and ref (``repo:R:pull_request``; a scheduled or dispatched run on main is
    ``repo:R:ref:refs/heads/main``), ``job_workflow_ref`` which workflow file (STS has checked GitHub's
    provider-specific claims since 2026). A same-repository pull request runs its own copy of preview.yml, so
    the workflow pin keeps other workflows out, not a pull request's author: anyone who may push a branch may
    read what this role reads. Fork pull requests get no OIDC token at all."""
    workflows = f"{repo}/.github/workflows"
    branch = f"refs/heads/{DEFAULT_BRANCH}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            _github(
                account,
                "PullRequestPreviews",
                {"sub": f"repo:{repo}:pull_request"},
                {"job_workflow_ref": f"{workflows}/preview.yml@refs/pull/*"},
            ),
            _github(
                account,
                "NightlyDrift",
                {"sub": f"repo:{repo}:ref:{branch}", "job_workflow_ref": f"{workflows}/drift.yml@{branch}"},
            ),
        ],
    }


def preview_policy(account: str, bucket: str, key_arn: str, stack: str) -> dict[str, Any]:
    """What ``pulumi preview --refresh`` of ``stack`` needs beyond ``ReadOnlyAccess``, and one thing it must not
    have: the state (list and read the bucket's objects; ``ReadOnlyAccess`` has it too, this says so where the deny
    below is carved), the secrets key (decrypt only: SSE-KMS state objects and the stack's encrypted data key), the
    values of the stack's own secrets (tagged ``stack`` by the program's provider; a refresh reads each
    ``SecretVersion``, whose value the state holds anyway) but never a service's own secret (tagged
    ``keel.dev/secret``: its value is set out of band and is in no state, so no branch's preview may read it), and no
    object of any other bucket."""
    objects = f"arn:aws:s3:::{bucket}/*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ListState", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"},
            {"Sid": "ReadState", "Effect": "Allow", "Action": "s3:GetObject", "Resource": objects},
            {"Sid": "DecryptStateAndConfig", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key_arn},
            {
                "Sid": "RefreshOwnSecrets",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": f"arn:aws:secretsmanager:*:{account}:secret:*",
                "Condition": {"StringEquals": {"aws:ResourceTag/stack": stack}},
            },
            {
                "Sid": "DecryptOwnSecrets",
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": f"arn:aws:kms:*:{account}:key/*",
                "Condition": {
                    "StringEquals": {"aws:ResourceTag/stack": stack},
                    "StringLike": {"kms:ViaService": "secretsmanager.*.amazonaws.com"},
                },
            },
            {
                "Sid": "NoServiceSecrets",
                "Effect": "Deny",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
                "Condition": {"Null": {"aws:ResourceTag/keel.dev/secret": "false"}},
            },
            {
                "Sid": "NoOtherObjects",
                "Effect": "Deny",
                "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                "NotResource": objects,
            },
        ],
    }


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


class Bootstrap:
    def __init__(self, session: boto3.session.Session, region: str) -> None:
        self.region = region
        self.s3 = session.client("s3", region_name=region, config=CLIENT_CONFIG)
        self.kms = session.client("kms", region_name=region, config=CLIENT_CONFIG)
        self.iam = session.client("iam", region_name=region, config=CLIENT_CONFIG)
        self.account = session.client("sts", region_name=region, config=CLIENT_CONFIG).get_caller_identity()["Account"]

    def run(self, bucket: str, github_repo: str | None = None, stacks: Sequence[str] = ()) -> Result:
        """``stacks``: the stacks to make roles for with ``github_repo`` (the CLI passes every stack file's)."""
        result = Result(bucket=bucket, region=self.region)
        try:
            result.key_arn = self._key(result)
            self._bucket(bucket, result)
            if github_repo:
                self._github(bucket, github_repo, stacks, result)
        except ClientError as err:
            operation = err.operation_name
            if _code(err) in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
                raise BootstrapError(
                    f"permission denied for {operation}: grant it (see keel/data/bootstrap-policy.json)"
                ) from None
            raise BootstrapError(f"{operation} failed: {err}") from None
        return result

    # ------------------------------------------------------------------ key

    def _key(self, result: Result) -> str:
        try:
            key = self.kms.describe_key(KeyId=ALIAS)["KeyMetadata"]
        except ClientError as err:
            if _code(err) != "NotFoundException":
                raise
            key = self.kms.create_key(
                Description="keel: Pulumi secrets provider",
                KeyUsage="ENCRYPT_DECRYPT",
                Tags=[{"TagKey": "managed-by", "TagValue": "keel-bootstrap"}],
            )["KeyMetadata"]
            self.kms.create_alias(AliasName=ALIAS, TargetKeyId=key["KeyId"])
            result.changes.append(f"created KMS key {ALIAS}")
        if not self.kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"]:
            self.kms.enable_key_rotation(KeyId=key["KeyId"])
            result.changes.append(f"enabled rotation of {ALIAS}")
        return str(key["Arn"])

    # ------------------------------------------------------------------ bucket

    def _bucket(self, bucket: str, result: Result) -> None:
        try:
            self.s3.head_bucket(Bucket=bucket, ExpectedBucketOwner=self.account)
            exists = True
        except ClientError as err:
            if _code(err) in ("403", "AccessDenied"):
                raise BootstrapError(
                    f"bucket {bucket} exists but is not owned by account {self.account}; choose another name"
                ) from None
            if _code(err) not in ("404", "NoSuchBucket", "NotFound"):
                raise
            exists = False
        if exists:
            status = self.s3.get_bucket_versioning(Bucket=bucket).get("Status")
            if status != "Enabled":
                raise BootstrapError(
                    f"bucket {bucket} exists without versioning; keel will not adopt it (state "
                    "history could already be lost). Enable versioning yourself or pick a new name."
                )
        else:
            args: dict[str, Any] = {"Bucket": bucket}
            if self.region != "us-east-1":
                args["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            self.s3.create_bucket(**args)
            result.changes.append(f"created bucket {bucket}")
        self._ensure_bucket_settings(bucket, result)

    def _ensure_bucket_settings(self, bucket: str, result: Result) -> None:
        block = {k: True for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")}
        if self._get(lambda: self.s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]) != block:
            self.s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=block)
            result.changes.append("blocked all public access")
        owner = self._get(lambda: self.s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"])
        wanted_owner = {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
        if owner != wanted_owner:
            self.s3.put_bucket_ownership_controls(Bucket=bucket, OwnershipControls=wanted_owner)
            result.changes.append("enforced bucket ownership (ACLs off)")
        if self.s3.get_bucket_versioning(Bucket=bucket).get("Status") != "Enabled":
            self.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
            result.changes.append("enabled versioning")
        rule = {
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": result.key_arn},
            "BucketKeyEnabled": True,
        }
        current = self._get(lambda: self.s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"])
        if not current or current.get("Rules", [{}])[0] != rule:
            self.s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]})
            result.changes.append("set SSE-KMS with the secrets key")
        policy = tls_only_policy(bucket)
        current_policy = self._get(lambda: json.loads(self.s3.get_bucket_policy(Bucket=bucket)["Policy"]))
        if current_policy != policy:
            self.s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
            result.changes.append("denied requests without TLS")
        rules = self._get(lambda: self.s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"])
        if rules != lifecycle()["Rules"]:
            self.s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration=lifecycle())
            result.changes.append(f"expire old state versions after {NONCURRENT_DAYS} days")

    @staticmethod
    def _get(read: Any) -> Any:
        """A bucket setting, or None when it is not set (S3 answers with an error code for 'none')."""
        try:
            return read()
        except ClientError as err:
            if _code(err).startswith(
                ("NoSuch", "ServerSideEncryptionConfigurationNotFound", "OwnershipControlsNotFound")
            ):
                return None
            raise

    # ------------------------------------------------------------------ GitHub

    def _github(self, bucket: str, repo: str, stacks: Sequence[str], result: Result) -> None:
        provider_arn = f"arn:aws:iam::{self.account}:oidc-provider/{GITHUB_OIDC}"
        existing = {p["Arn"] for p in self.iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]}
        if provider_arn not in existing:
            self.iam.create_open_id_connect_provider(
                Url=f"https://{GITHUB_OIDC}", ClientIDList=["sts.amazonaws.com"], ThumbprintList=GITHUB_THUMBPRINTS
            )
            result.changes.append("created the GitHub OIDC provider")
        for stack in stacks:
            result.roles[stack] = self._role(
                deploy_role(stack),
                deploy_trust(self.account, repo, stack),
                f"keel: deploys the {stack} stack from {repo}",
                result,
            )
            name = preview_role(stack)
            result.preview_roles[stack] = self._role(
                name,
                preview_trust(self.account, repo),
                f"keel: previews and drift checks of the {stack} stack from {repo} (read-only)",
                result,
            )
            attached = self.iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
            if READ_ONLY_POLICY not in {p["PolicyArn"] for p in attached}:
                self.iam.attach_role_policy(RoleName=name, PolicyArn=READ_ONLY_POLICY)
                result.changes.append(f"attached ReadOnlyAccess to role {name}")
            wanted = preview_policy(self.account, bucket, result.key_arn, stack)
            current = self._get(
                lambda n=name: self.iam.get_role_policy(RoleName=n, PolicyName=PREVIEW_INLINE)["PolicyDocument"]
            )
            if isinstance(current, str):
                current = json.loads(current)
            if current != wanted:
                self.iam.put_role_policy(RoleName=name, PolicyName=PREVIEW_INLINE, PolicyDocument=json.dumps(wanted))
                result.changes.append(
                    f"{'set' if current is None else 'restored'} the state and secrets access of role {name}"
                )

    def _role(self, name: str, trust: dict[str, Any], description: str, result: Result) -> str:
        """Create role ``name`` with ``trust``, or bring its trust back to ``trust``; its ARN."""
        try:
            role = self.iam.get_role(RoleName=name)["Role"]
        except ClientError as err:
            if _code(err) != "NoSuchEntity":
                raise
            role = self.iam.create_role(
                RoleName=name, AssumeRolePolicyDocument=json.dumps(trust), Description=description
            )["Role"]
            result.changes.append(f"created role {name}")
            return str(role["Arn"])
        current = role["AssumeRolePolicyDocument"]
        current = json.loads(current) if isinstance(current, str) else current
        if current != trust:
            self.iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
            result.changes.append(f"restricted the trust of role {name}")
        return str(role["Arn"])
