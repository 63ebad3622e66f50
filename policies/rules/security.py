"""Keys, secrets, topics and mail: key rotation and deletion windows, no public key or topic policies, recoverable
secrets under a customer key, encrypted topics and subscriptions, TLS-only mail."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from ._util import (
    account_of,
    as_list,
    at_least,
    aws_principals,
    days,
    dig,
    document,
    is_false,
    is_true,
    of_type,
    public_statements,
    referenced,
    resource_policy,
    service_principals,
    shown,
    sid,
    stack_account,
    stack_policy,
    statements,
    threshold,
)

KEY = ("aws:kms/key:Key",)
SECRET = ("aws:secretsmanager/secret:Secret",)
TOPIC = ("aws:sns/topic:Topic",)
#: A topic's policy: its own resource, or the topic's ``policy`` input.
TOPIC_POLICY = ("aws:sns/topicPolicy:TopicPolicy", "aws:sns/topic:Topic")
SUBSCRIPTION = ("aws:sns/topicSubscription:TopicSubscription",)
#: A secret's policy: its own resource, or the secret's ``policy`` input.
SECRET_POLICY = ("aws:secretsmanager/secretPolicy:SecretPolicy", "aws:secretsmanager/secret:Secret")
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
#: Subscription protocols that carry the message in clear over the internet (SNS "Message delivery protocols"):
#: plain http. Email is how keel's alerts reach people, on purpose, and carries no data beyond the alarm.
CLEAR_PROTOCOLS = ("http",)


def _rotation(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    spec = props.get("customerMasterKeySpec") or props.get("keySpec") or "SYMMETRIC_DEFAULT"
    if not is_true(props.get("enableKeyRotation")) and spec == "SYMMETRIC_DEFAULT":
        yield "Symmetric keys must rotate (enableKeyRotation: true)."


def _deletion_window(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    minimum = threshold(args, "minimumDays", 30)
    value = props.get("deletionWindowInDays", 30)  # the provider's default is 30
    if not at_least(value, minimum, "deletionWindowInDays"):
        yield (
            f"A scheduled key deletion must leave at least {days(minimum)} to cancel it "
            f"(deletionWindowInDays is {shown(value)}): "
            "everything encrypted with the key is lost with it."
        )


def _no_wildcard_principal(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    for st in public_statements(document(props.get("policy"))):
        yield (
            f"Key policy statement {sid(st)} allows any principal ('*') without a condition that pins it to this "
            "account (kms:CallerAccount, aws:PrincipalAccount, aws:SourceArn...)."
        )


def _key_enabled(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if is_false(props.get("isEnabled")):
        yield "A disabled key stops everything encrypted with it (isEnabled: false); schedule deletion instead."


def _key_services_pinned(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    for st in statements(document(props.get("policy"))):
        services = service_principals(st)
        if st.get("Effect") == "Allow" and services and not st.get("Condition"):
            yield (
                f"Key policy statement {sid(st)} lets {', '.join(map(str, services))} use the key for any account; "
                "pin it with aws:SourceAccount / aws:SourceArn or an encryption context."
            )


def _key_one_account(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    accounts = {account_of(p) or p for st in statements(document(props.get("policy"))) for p in aws_principals(st)}
    if len(accounts) > 1:
        yield f"The key policy grants several accounts ({', '.join(sorted(accounts))}); a key serves one account."


def _secret_policy(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    for st in public_statements(document(props.get("policy"))):
        yield f"Secret policy statement {sid(st)} lets anyone ('*') read or change the secret."
    if is_false(props.get("blockPublicPolicy", True)):
        yield "Secrets Manager must refuse public policies (blockPublicPolicy: true)."


def _alarm_topics(resources: Sequence[PolicyResource]) -> list[PolicyResource]:
    """The topics of the stack that alarms notify, each once."""
    return list({t.urn: t for a in of_type(resources, ALARM) for t in referenced(a, "alarmActions")}.values())


def _alarm_topics_heard(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    subscribed = {t.urn for s in of_type(resources, *SUBSCRIPTION) for t in referenced(s, "topic")}
    for topic in _alarm_topics(resources):
        if topic.urn not in subscribed:
            yield topic.urn, f"Alarms notify topic {topic.name}, which nobody subscribes to; alerts would reach no one."
    for alarm in of_type(resources, ALARM):
        actions = as_list(alarm.props.get("alarmActions"))
        if actions and not referenced(alarm, "alarmActions"):
            yield (
                alarm.urn,
                f"Alarm {alarm.name} notifies {', '.join(map(str, actions))}, not a topic of this stack; send it to "
                "the alerts topic, whose subscribers the stack keeps.",
            )


def _alarm_topic_key(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    """CloudWatch publishes to an encrypted topic only if the topic's key lets it (SNS "Encryption at rest":
    cloudwatch.amazonaws.com needs kms:GenerateDataKey* and kms:Decrypt on a customer-managed key)."""
    for topic in _alarm_topics(resources):
        for key in referenced(topic, "kmsMasterKeyId"):
            admitted = any(
                "cloudwatch.amazonaws.com" in service_principals(st)
                for st in statements(document(key.props.get("policy")))
                if st.get("Effect") == "Allow"
            )
            if not admitted:
                yield (
                    key.urn,
                    f"Key {key.name} encrypts alarm topic {topic.name} but does not let cloudwatch.amazonaws.com "
                    "use it: every alarm notification would fail.",
                )


#: Resource policies and the inputs holding them.
RESOURCE_POLICIES = {
    "aws:kms/key:Key": "policy",
    "aws:secretsmanager/secret:Secret": "policy",
    "aws:sns/topic:Topic": "policy",
    "aws:s3/bucket:Bucket": "policy",
    "aws:s3/bucketPolicy:BucketPolicy": "policy",
    "aws:sns/topicPolicy:TopicPolicy": "policy",
    "aws:secretsmanager/secretPolicy:SecretPolicy": "policy",
    "aws:ecr/repositoryPolicy:RepositoryPolicy": "policy",
}
#: Elastic Load Balancing's log-delivery accounts, which write ALB access logs into the logs bucket, by region
#: (ELB User Guide, "Enable access logs for your Application Load Balancer", Step 2, regions available before
#: August 2022; the same map as the AWS provider's ``aws.elb.getServiceAccount``, which the program uses).
#: Newer regions deliver as the ``logdelivery.elasticloadbalancing.amazonaws.com`` service instead.
ELB_LOG_ACCOUNTS = {
    "127311923021",  # us-east-1
    "033677994240",  # us-east-2
    "027434742980",  # us-west-1
    "797873946194",  # us-west-2
    "985666609251",  # ca-central-1
    "054676820928",  # eu-central-1
    "156460612806",  # eu-west-1
    "652711504416",  # eu-west-2
    "009996457667",  # eu-west-3
    "897822967062",  # eu-north-1
    "754344448648",  # ap-east-1
    "582318560864",  # ap-northeast-1
    "600734575887",  # ap-northeast-2
    "383597477331",  # ap-northeast-3
    "114774131450",  # ap-southeast-1
    "783225319266",  # ap-southeast-2
    "718504428378",  # ap-south-1
    "076674570225",  # me-south-1
    "507241528517",  # sa-east-1
    "048591011584",  # us-gov-west-1
    "190560391635",  # us-gov-east-1
    "638102146993",  # cn-north-1
    "037604701340",  # cn-northwest-1
}


def _own_account(resources: Sequence[PolicyResource], _: StackValidationArgs) -> Iterable[tuple[str, str]]:
    home = stack_account(resources)
    if home is None:
        return
    for resource in resources:
        key = RESOURCE_POLICIES.get(resource.resource_type)
        if key is None:
            continue
        for st in statements(document(resource.props.get(key))):
            if st.get("Effect") != "Allow":
                continue
            foreign = sorted(
                {a for p in aws_principals(st) if (a := account_of(p)) and a != home and a not in ELB_LOG_ACCOUNTS}
            )
            if foreign:
                yield (
                    resource.urn,
                    f"{resource.name}: statement {sid(st)} grants account(s) {', '.join(foreign)}; the stack's "
                    f"account is {home}. Share through a role in this account, not the resource policy.",
                )


def _topic_policy(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    for st in public_statements(document(props.get("policy"))):
        yield (
            f"Topic policy statement {sid(st)} allows any principal ('*') without a condition that pins it to this "
            "account or a source (aws:SourceAccount, aws:SourceArn...)."
        )


def _ses_tls(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if dig(props, "deliveryOptions.tlsPolicy") != "REQUIRE":
        yield "The configuration set must require TLS for delivery (deliveryOptions.tlsPolicy: REQUIRE)."


def _dkim(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    length = dig(props, "dkimSigningAttributes.nextSigningKeyLength")
    if length is not None and length != "RSA_2048_BIT":
        yield f"DKIM keys must be 2048-bit (dkimSigningAttributes.nextSigningKeyLength: RSA_2048_BIT, got {length})."


def _reputation(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    suppressed = set(as_list(dig(props, "suppressionOptions.suppressedReasons")))
    if not {"BOUNCE", "COMPLAINT"} <= suppressed:
        yield "Bounces and complaints must be suppressed (suppressionOptions.suppressedReasons: BOUNCE, COMPLAINT)."
    if not is_true(dig(props, "reputationOptions.reputationMetricsEnabled")):
        yield "Reputation metrics must be on (reputationOptions.reputationMetricsEnabled)."


def _events_on(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    destination = props.get("eventDestination") or {}
    wanted = {"BOUNCE", "COMPLAINT"}
    if not is_true(destination.get("enabled")) or not wanted <= set(as_list(destination.get("matchingEventTypes"))):
        yield "Bounce and complaint events must reach the events topic (eventDestination enabled, BOUNCE, COMPLAINT)."


def _secret_cmk(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if not props.get("kmsKeyId"):
        yield "Secrets must be encrypted with a customer-managed KMS key (kmsKeyId)."


def _secret_recoverable(props: Mapping[str, Any], args: ResourceValidationArgs) -> Iterable[str]:
    minimum = threshold(args, "minimumDays", 7)
    value = props.get("recoveryWindowInDays", 30)  # the provider's default is 30
    if not at_least(value, minimum, "recoveryWindowInDays"):
        yield (
            f"A deleted secret must stay recoverable at least {days(minimum)} "
            f"(recoveryWindowInDays is {shown(value)}; 0 deletes at once)."
        )


def _topic_cmk(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if not props.get("kmsMasterKeyId"):
        yield "SNS topics must be encrypted (kmsMasterKeyId)."


def _subscription_tls(props: Mapping[str, Any], _: ResourceValidationArgs) -> Iterable[str]:
    if props.get("protocol") in CLEAR_PROTOCOLS:
        yield "Subscriptions must not deliver over plain HTTP; use https."


DAYS_30 = {"minimumDays": {"type": "integer", "minimum": 7, "maximum": 30, "default": 30}}
DAYS_7 = {"minimumDays": {"type": "integer", "minimum": 0, "maximum": 30, "default": 7}}

POLICIES = [
    resource_policy(
        "aws-kms-key-rotation-enabled",
        "Customer-managed keys rotate yearly.",
        Severity.HIGH,
        "Set enableKeyRotation: true.",
        KEY,
        _rotation,
    ),
    resource_policy(
        "aws-kms-key-deletion-window",
        "A scheduled key deletion can be cancelled for long enough.",
        Severity.HIGH,
        "Set deletionWindowInDays: 30.",
        KEY,
        _deletion_window,
        DAYS_30,
    ),
    resource_policy(
        "aws-kms-key-enabled",
        "Keys in use stay enabled.",
        Severity.HIGH,
        "Keep isEnabled: true.",
        KEY,
        _key_enabled,
    ),
    resource_policy(
        "aws-kms-key-policy-services-pinned",
        "Services a key policy admits are pinned to this account or source.",
        Severity.HIGH,
        "Add aws:SourceAccount / aws:SourceArn (or kms:EncryptionContext) to the service's statement.",
        KEY,
        _key_services_pinned,
    ),
    resource_policy(
        "aws-kms-key-policy-one-account",
        "A key policy grants principals of one account only.",
        Severity.CRITICAL,
        "Share data another way (a role in this account with an external id), not the key.",
        KEY,
        _key_one_account,
    ),
    resource_policy(
        "aws-secretsmanager-secret-policy-no-public-principal",
        "Secret policies grant nothing to anyone ('*') and block public policies.",
        Severity.CRITICAL,
        "Name the principals; keep blockPublicPolicy: true.",
        SECRET_POLICY,
        _secret_policy,
    ),
    stack_policy(
        "aws-sns-alarm-topic-key-admits-cloudwatch",
        "The key of an alarm topic lets CloudWatch publish.",
        Severity.HIGH,
        "Keep the CloudWatchAlarmsPublishToTheEncryptedTopic statement of the observability key.",
        _alarm_topic_key,
    ),
    stack_policy(
        "aws-resource-policies-own-account",
        "Key, bucket, topic, secret and repository policies grant this account only.",
        Severity.CRITICAL,
        "Grant a role in this account (another account assumes it with an external id).",
        _own_account,
    ),
    stack_policy(
        "aws-sns-alarm-topics-subscribed",
        "Every topic alarms notify has a subscriber.",
        Severity.HIGH,
        "Set keel:alerts.emails (or another subscription) for the alerts topic.",
        _alarm_topics_heard,
    ),
    resource_policy(
        "aws-kms-key-policy-no-wildcard-principal",
        "Key policies name their principals, or pin '*' with a condition.",
        Severity.CRITICAL,
        "Replace '*' with the account root or a service principal, or add kms:CallerAccount / aws:SourceArn.",
        KEY,
        _no_wildcard_principal,
    ),
    resource_policy(
        "aws-sesv2-configuration-set-requires-tls",
        "Mail is delivered over TLS only.",
        Severity.MEDIUM,
        "Set deliveryOptions.tlsPolicy: REQUIRE.",
        ("aws:sesv2/configurationSet:ConfigurationSet",),
        _ses_tls,
    ),
    resource_policy(
        "aws-sesv2-email-identity-dkim-2048",
        "Mail is signed with 2048-bit DKIM keys.",
        Severity.MEDIUM,
        "Set dkimSigningAttributes.nextSigningKeyLength: RSA_2048_BIT.",
        ("aws:sesv2/emailIdentity:EmailIdentity",),
        _dkim,
    ),
    resource_policy(
        "aws-sesv2-configuration-set-reputation",
        "Bounces and complaints are suppressed and reputation is measured.",
        Severity.MEDIUM,
        "Keep suppressionOptions BOUNCE and COMPLAINT, and reputation metrics on.",
        ("aws:sesv2/configurationSet:ConfigurationSet",),
        _reputation,
    ),
    resource_policy(
        "aws-sesv2-bounce-events-delivered",
        "Bounce and complaint events reach the events topic.",
        Severity.MEDIUM,
        "Keep the event destination enabled with BOUNCE and COMPLAINT.",
        ("aws:sesv2/configurationSetEventDestination:ConfigurationSetEventDestination",),
        _events_on,
    ),
    resource_policy(
        "aws-secretsmanager-secret-cmk",
        "Secrets are encrypted with a customer-managed key.",
        Severity.MEDIUM,
        "Set kmsKeyId on the secret.",
        SECRET,
        _secret_cmk,
    ),
    resource_policy(
        "aws-secretsmanager-secret-recoverable",
        "A deleted secret can be restored for a while.",
        Severity.HIGH,
        "Set recoveryWindowInDays (30 in prod).",
        SECRET,
        _secret_recoverable,
        DAYS_7,
    ),
    resource_policy(
        "aws-sns-topic-encrypted",
        "SNS topics are encrypted.",
        Severity.MEDIUM,
        "Set kmsMasterKeyId.",
        TOPIC,
        _topic_cmk,
    ),
    resource_policy(
        "aws-sns-topic-policy-no-public-principal",
        "Topic policies grant nothing to anyone ('*') without a restricting condition.",
        Severity.CRITICAL,
        "Name the publishing service and pin it with aws:SourceAccount / aws:SourceArn.",
        TOPIC_POLICY,
        _topic_policy,
    ),
    resource_policy(
        "aws-sns-subscription-encrypted-transport",
        "Topics deliver over encrypted transport.",
        Severity.HIGH,
        "Use an https endpoint.",
        SUBSCRIPTION,
        _subscription_tls,
    ),
]
