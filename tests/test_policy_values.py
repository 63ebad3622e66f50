"""The shared readers every policy compares values with: engine-shaped numbers and flags, unknowns, masked
secrets, and who a resource policy lets in."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pulumi_policy.proxy import UNKNOWN_NUMBER_VALUE, UnknownValueError, unknown_checking_proxy

from keel import policy
from policies.rules._util import (
    SECRET_SHOWN,
    Masked,
    at_least,
    at_most,
    days,
    dig,
    flag,
    num,
    public_statements,
    shown,
)
from tests.helpers import policy_config_file


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (7, 7.0),
        (7.0, 7.0),
        ("7", 7.0),
        (" 60 ", 60.0),
        ("0.5", 0.5),
        (None, None),
        (True, None),
        ("x", None),
        ([], None),
    ],
)
def test_num_reads_doubles_ints_and_numeric_strings(value: Any, expected: float | None) -> None:
    assert num(value) == expected


def test_comparisons_fail_closed() -> None:
    assert at_least(7.0, 7) and at_least("30", 7) and not at_least(6.0, 7)
    assert not at_least(None, 1) and not at_least("many", 1) and not at_least(True, 1)
    assert at_most(1.0, 1) and not at_most(2, 1) and not at_most(None, 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("true", True), ("FALSE", False), (None, None), (1, None), ("yes", None)],
)
def test_flag_reads_booleans_and_terraform_strings(value: Any, expected: bool | None) -> None:
    assert flag(value) is expected


def test_messages_show_numbers_as_written() -> None:
    assert (shown(7.0), shown(None), shown("gp3"), days(1.0), days(30.0)) == (7, "unset", "gp3", "1 day", "30 days")


def test_a_masked_secret_is_not_judged() -> None:
    with pytest.raises(Masked) as raised:
        num(SECRET_SHOWN, "retentionInDays")
    assert isinstance(raised.value, UnknownValueError)
    assert raised.value.message.startswith("retentionInDays is a secret the saved preview masks")
    with pytest.raises(Masked):
        flag(SECRET_SHOWN)


def test_unknowns_raise_through_dig() -> None:
    props = unknown_checking_proxy({"scalingConfig": {"minSize": UNKNOWN_NUMBER_VALUE}})
    with pytest.raises(UnknownValueError):
        dig(props, "scalingConfig.minSize")


def statement(**extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": "sns:Publish", **extra}


@pytest.mark.parametrize(
    ("st", "public"),
    [
        (statement(Principal="*"), True),
        (statement(Principal={"AWS": "*"}), True),
        (statement(Principal={"AWS": ["arn:aws:iam::1:root", "*"]}), True),
        (statement(Principal={"Service": "ses.amazonaws.com"}), False),
        (statement(Principal="*", Condition={"StringEquals": {"aws:SourceAccount": "1"}}), False),
        (statement(Principal="*", Condition={"ArnLike": {"AWS:SourceArn": "arn:aws:ses:*:1:*"}}), True),  # wildcard
        (statement(Principal="*", Condition={"StringNotEquals": {"aws:SourceAccount": "1"}}), True),  # negated
        (statement(Principal="*", Condition={"StringEqualsIfExists": {"aws:SourceAccount": "1"}}), True),
        (statement(Principal="*", Condition={"Bool": {"aws:SecureTransport": "true"}}), True),  # not a pin
        (statement(NotPrincipal={"AWS": "arn:aws:iam::1:root"}), True),
        ({**statement(Principal="*"), "Effect": "Deny"}, False),
    ],
)
def test_public_statements(st: dict[str, Any], public: bool) -> None:
    assert bool(public_statements({"Statement": [st]})) is public
    assert bool(public_statements(json.loads(json.dumps({"Statement": st})))) is public  # a single statement


def test_a_saved_preview_with_a_masked_number_reports_the_policy_as_not_run() -> None:
    doc = {
        "steps": [
            {
                "urn": "urn:pulumi:prod::keel::aws:rds/instance:Instance::db",
                "newState": {
                    "type": "aws:rds/instance:Instance",
                    "urn": "urn:pulumi:prod::keel::aws:rds/instance:Instance::db",
                    "inputs": {"engine": "postgres", "backupRetentionPeriod": SECRET_SHOWN},
                },
            }
        ]
    }
    found = {v.policy_name: v for v in policy.analyze(doc, stack="prod", config_path=policy_config_file("prod"))}
    note = found["aws-rds-instance-backup-retention"]
    assert note.enforcement_level == "advisory"
    assert "backupRetentionPeriod is a secret the saved preview masks" in note.message
