"""Container registry policies: immutable tags, scan on push, KMS encryption, enough images kept to roll back,
no public repository policy."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity

from ._util import (
    as_list,
    at_least,
    dig,
    document,
    is_true,
    number,
    public_statements,
    resource_policy,
    shown,
    sid,
    threshold,
)

REPOSITORY = ("aws:ecr/repository:Repository",)
REPOSITORY_POLICY = ("aws:ecr/repositoryPolicy:RepositoryPolicy",)


def _immutable(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    # IMMUTABLE_WITH_EXCLUSION (pulumi-aws v7) still lets excluded tags move: only IMMUTABLE pins every tag.
    if props.get("imageTagMutability", "MUTABLE") != "IMMUTABLE":
        yield (
            f"Image tags must be immutable (imageTagMutability: IMMUTABLE, got "
            f"{props.get('imageTagMutability', 'MUTABLE (the default)')}), so a deployed tag always names one image."
        )


def _scan(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if not is_true(dig(props, "imageScanningConfiguration.scanOnPush")):
        yield "Images must be scanned for vulnerabilities on push (imageScanningConfiguration.scanOnPush: true)."


def _kms(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    types = [c.get("encryptionType") for c in as_list(props.get("encryptionConfigurations"))]
    if not {"KMS", "KMS_DSSE"} & set(types):
        yield "Images must be encrypted with KMS (encryptionConfigurations: [{encryptionType: KMS}]), not AES256."


def _rollback_images(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    minimum = threshold(args, "minimumImages", 10)
    for rule in as_list(document(props.get("policy")).get("rules")):
        selection = rule.get("selection") or {}
        if dig(rule, "action.type") == "expire" and selection.get("countType") == "imageCountMoreThan":
            if not at_least(selection.get("countNumber"), minimum, "countNumber"):
                yield (
                    f"Rule {rule.get('rulePriority')} keeps {shown(selection.get('countNumber'))} images; keep at "
                    f"least {number(minimum)} so a rollback finds its image."
                )
        elif (
            dig(rule, "action.type") == "expire"
            and selection.get("countType") == "sinceImagePushed"
            and selection.get("tagStatus") in ("any", "tagged")
            and not at_least(selection.get("countNumber"), 90, "countNumber")
        ):
            yield f"Rule {rule.get('rulePriority')} expires tagged images within 90 days; keep them for rollbacks."


def _public(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    for st in public_statements(document(props.get("policy"))):
        yield f"Repository policy statement {sid(st)} lets anyone ('*') use the repository; name the accounts."


POLICIES = [
    resource_policy(
        "aws-ecr-repository-immutable-tags",
        "Image tags cannot be moved to another image.",
        Severity.HIGH,
        "Set imageTagMutability: IMMUTABLE.",
        REPOSITORY,
        _immutable,
    ),
    resource_policy(
        "aws-ecr-repository-scan-on-push",
        "Images are scanned for vulnerabilities when pushed.",
        Severity.HIGH,
        "Set imageScanningConfiguration.scanOnPush: true.",
        REPOSITORY,
        _scan,
    ),
    resource_policy(
        "aws-ecr-repository-kms-encrypted",
        "Images are encrypted with KMS.",
        Severity.HIGH,
        "Set encryptionConfigurations to [{encryptionType: KMS}].",
        REPOSITORY,
        _kms,
    ),
    resource_policy(
        "aws-ecr-lifecycle-keeps-rollback-images",
        "Lifecycle rules keep enough images to roll back.",
        Severity.MEDIUM,
        "Keep the last 30 images (components/registry lifecycle).",
        ("aws:ecr/lifecyclePolicy:LifecyclePolicy",),
        _rollback_images,
        {"minimumImages": {"type": "integer", "minimum": 1, "default": 10}},
    ),
    resource_policy(
        "aws-ecr-repository-policy-no-public-principal",
        "Repository policies grant nothing to anyone ('*').",
        Severity.CRITICAL,
        "Name the accounts that pull, or pin '*' with aws:PrincipalOrgID.",
        REPOSITORY_POLICY,
        _public,
    ),
]
