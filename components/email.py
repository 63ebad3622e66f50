"""Email: an SES v2 domain identity with Easy DKIM, a custom MAIL FROM, DMARC, and a TLS-only configuration set.

Usage::

    email = Email("keel-prod", cfg.email, protect=True, opts=pulumi.ResourceOptions(parent=platform))
    email.grant_send(role)           # SendEmail/SendRawEmail for this identity and configuration set only
    email.dns_records                # the records to create by hand when no hosted zone is configured

Creates (``<n>`` is the component name):

- ``<n>-email`` KMS key (SES may use it to publish to the encrypted topic) and ``<n>-email-events`` SNS topic,
  whose policy lets only SES of this account publish.
- ``<n>`` configuration set: TLS required for delivery, reputation metrics on, bounces and complaints
  suppressed; ``<n>-events`` event destination sending bounces, complaints, rejects and delivery delays to the
  topic.
- ``<n>`` email identity for the domain (Easy DKIM, RSA 2048) and ``<n>-mail-from`` MAIL FROM attributes.
- With a hosted zone: ``<n>-dkim-<i>`` CNAMEs, ``<n>-mail-from-mx``, ``<n>-mail-from-spf`` and ``<n>-dmarc``
  records. Without one, ``dns_records`` lists the same records for the domain's DNS owner.

Outputs: ``identity_arn``, ``configuration_set_name``, ``events_topic_arn``, ``dns_records``.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from components import context
from components.config import EmailConfig
from components.documents import service_publishes, service_uses_key
from components.iam import Statement, document, statement
from components.keys import create_key

EVENTS = ("BOUNCE", "COMPLAINT", "REJECT", "DELIVERY_DELAY")


def send_statements(identity_arn: str, configuration_set_arn: str) -> list[Statement]:
    """Send mail as this identity through this configuration set, nothing else."""
    return [
        statement(["ses:SendEmail", "ses:SendRawEmail"], [identity_arn, configuration_set_arn], sid="SendAsIdentity")
    ]


def dns_records(cfg: EmailConfig, region: str, dkim_tokens: list[str]) -> list[dict[str, Any]]:
    """The DNS records SES needs: DKIM, MAIL FROM (MX and SPF) and DMARC."""
    mail_from = f"{cfg.mail_from_subdomain}.{cfg.domain}"
    records: list[dict[str, Any]] = [
        {"name": f"{token}._domainkey.{cfg.domain}", "type": "CNAME", "value": f"{token}.dkim.amazonses.com"}
        for token in dkim_tokens
    ]
    records += [
        {"name": mail_from, "type": "MX", "value": f"10 feedback-smtp.{region}.amazonses.com"},
        {"name": mail_from, "type": "TXT", "value": "v=spf1 include:amazonses.com ~all"},
        {
            "name": f"_dmarc.{cfg.domain}",
            "type": "TXT",
            "value": f"v=DMARC1; p={cfg.dmarc_policy}; rua=mailto:dmarc-reports@{cfg.domain}",
        },
    ]
    return records


class Email(pulumi.ComponentResource):
    """The platform's sending domain."""

    identity: aws.sesv2.EmailIdentity
    identity_arn: pulumi.Output[str]
    configuration_set: aws.sesv2.ConfigurationSet
    configuration_set_arn: pulumi.Output[str]
    events_topic: aws.sns.Topic
    dns_records: pulumi.Output[list[dict[str, Any]]]

    def __init__(
        self, name: str, config: EmailConfig, *, protect: bool = True, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        """``config``: the ``keel:email`` section (domain, MAIL FROM subdomain, hosted zone, DMARC policy).
        ``protect``: True protects the key."""
        super().__init__("keel:email:Email", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ctx = context.lookup(pulumi.InvokeOptions(parent=self))
        config_set_name = f"{name}-mail"
        config_set_arn = ctx.arn("ses", f"configuration-set/{config_set_name}")
        key = create_key(
            f"{name}-email",
            "the SES event topic",
            ctx,
            service_statements=[service_uses_key("SesPublishesToEncryptedTopic", "ses.amazonaws.com", ctx.account)],
            protect=protect,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.events_topic = aws.sns.Topic(f"{name}-email-events", kms_master_key_id=key.arn, opts=child)
        aws.sns.TopicPolicy(
            f"{name}-email-events",
            arn=self.events_topic.arn,
            policy=self.events_topic.arn.apply(
                lambda arn: json.dumps(
                    document(
                        [service_publishes("SesPublishesEvents", "ses.amazonaws.com", arn, ctx.account, config_set_arn)]
                    )
                )
            ),
            opts=child,
        )
        self.configuration_set = aws.sesv2.ConfigurationSet(
            name,
            configuration_set_name=config_set_name,
            delivery_options=aws.sesv2.ConfigurationSetDeliveryOptionsArgs(tls_policy="REQUIRE"),
            reputation_options=aws.sesv2.ConfigurationSetReputationOptionsArgs(reputation_metrics_enabled=True),
            sending_options=aws.sesv2.ConfigurationSetSendingOptionsArgs(sending_enabled=True),
            suppression_options=aws.sesv2.ConfigurationSetSuppressionOptionsArgs(
                suppressed_reasons=["BOUNCE", "COMPLAINT"]
            ),
            opts=child,
        )
        self.configuration_set_arn = self.configuration_set.arn
        aws.sesv2.ConfigurationSetEventDestination(
            f"{name}-events",
            configuration_set_name=self.configuration_set.configuration_set_name,
            event_destination_name="bounces-and-complaints",
            event_destination=aws.sesv2.ConfigurationSetEventDestinationEventDestinationArgs(
                enabled=True,
                matching_event_types=list(EVENTS),
                sns_destination=aws.sesv2.ConfigurationSetEventDestinationEventDestinationSnsDestinationArgs(
                    topic_arn=self.events_topic.arn
                ),
            ),
            opts=child,
        )
        self.identity = aws.sesv2.EmailIdentity(
            name,
            email_identity=config.domain,
            configuration_set_name=self.configuration_set.configuration_set_name,
            dkim_signing_attributes=aws.sesv2.EmailIdentityDkimSigningAttributesArgs(
                next_signing_key_length="RSA_2048_BIT"
            ),
            opts=child,
        )
        self.identity_arn = self.identity.arn
        aws.sesv2.EmailIdentityMailFromAttributes(
            f"{name}-mail-from",
            email_identity=self.identity.email_identity,
            mail_from_domain=f"{config.mail_from_subdomain}.{config.domain}",
            behavior_on_mx_failure="USE_DEFAULT_VALUE",
            opts=child,
        )
        tokens = self.identity.dkim_signing_attributes.apply(lambda d: list(d.tokens or []) if d else [])
        self.dns_records = tokens.apply(lambda t: dns_records(config, ctx.region, t))
        if config.hosted_zone_id:
            self._route53(name, config, ctx.region, tokens)
        self.register_outputs(
            {
                "identity_arn": self.identity_arn,
                "configuration_set_name": self.configuration_set.configuration_set_name,
                "events_topic_arn": self.events_topic.arn,
                "dns_records": self.dns_records,
            }
        )

    def _route53(self, name: str, cfg: EmailConfig, region: str, tokens: pulumi.Output[list[str]]) -> None:
        child = pulumi.ResourceOptions(parent=self)
        zone = cfg.hosted_zone_id
        for index in range(3):  # Easy DKIM always publishes three tokens
            token: pulumi.Output[str] = tokens.apply(lambda t, i=index: str(t[i]))  # type: ignore[misc]
            aws.route53.Record(
                f"{name}-dkim-{index}",
                zone_id=zone,
                type="CNAME",
                ttl=1800,
                name=token.apply(lambda t: f"{t}._domainkey.{cfg.domain}"),
                records=[token.apply(lambda t: f"{t}.dkim.amazonses.com")],
                opts=child,
            )
        static = dns_records(cfg, region, [])
        for label, record in zip(("mail-from-mx", "mail-from-spf", "dmarc"), static, strict=True):
            aws.route53.Record(
                f"{name}-{label}",
                zone_id=zone,
                type=record["type"],
                ttl=300,
                name=record["name"],
                records=[record["value"]],
                opts=child,
            )

    def grant_send(self, role: aws.iam.Role) -> aws.iam.RolePolicy:
        """Let ``role`` send mail as this identity through this configuration set."""
        doc = pulumi.Output.all(self.identity_arn, self.configuration_set_arn).apply(
            lambda arns: json.dumps(document(send_statements(arns[0], arns[1])))
        )
        return aws.iam.RolePolicy(
            f"{role.pulumi_resource_name}-email-send",
            role=role.id,
            policy=doc,
            opts=pulumi.ResourceOptions(parent=role),
        )
