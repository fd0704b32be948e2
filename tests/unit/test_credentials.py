"""Credential hygiene helpers and the bounded retry policy of the network sources."""

from __future__ import annotations

import pytest

from feedbackflow.credentials import describe_error, dsn_passwords, redact, secret_values
from feedbackflow.errors import SourceUnavailableError
from feedbackflow.sources.retry import delays, retrying
from tests.helpers import section


@pytest.mark.parametrize(
    ("dsn", "password"),
    [
        ("host=db dbname=app password=plain-Secret-1", "plain-Secret-1"),
        ("host=db password='with space PW9' dbname=app", "with space PW9"),
        ("host=db dbname=app password=broken Secret-PW", "Secret-PW"),  # malformed: unquoted space
        ("postgresql://feedback:url%40Secret@db:5432/app", "url@Secret"),
    ],
)
def test_every_form_of_a_dsn_password_is_found_and_redacted(dsn, password):
    found = dsn_passwords(dsn)
    assert password in found
    echoed = f'missing "=" after "{password}" in connection info string; dsn was {dsn}'
    cleaned = redact(echoed, secret_values({"FEEDBACKFLOW_POSTGRES_DSN": dsn}))
    assert password not in cleaned and "***" in cleaned


def test_short_values_are_not_masked_and_non_credentials_are_ignored():
    values = secret_values({"AWS_SECRET_ACCESS_KEY": "abc", "AWS_ACCESS_KEY_ID": "AKIAPUBLICID", "PATH": "/usr/bin"})
    assert values == []  # too short to mask without garbling text; the key id and PATH are not secrets


def test_describe_error_keeps_class_and_code_never_the_text():
    from botocore.exceptions import ClientError

    error = ClientError(
        {
            "Error": {"Code": "AccessDenied", "Message": "key AKIA-secret-ish"},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        },
        "ListObjectsV2",
    )
    assert describe_error(error) == "ClientError code AccessDenied HTTP 403"
    assert describe_error(ValueError("password=hunter2")) == "ValueError"


def test_backoff_doubles_up_to_the_cap_and_gives_up_after_the_attempts():
    policy = section("ingest.retry", attempts=6, initial_delay_seconds=1, max_delay_seconds=5)
    assert list(delays(policy)) == [1, 2, 4, 5, 5]
    waited: list[float] = []
    calls = []

    def refused():
        calls.append(1)
        raise ConnectionRefusedError("secret-bearing text")

    with pytest.raises(
        SourceUnavailableError, match=r"listing x at http://h:1 failed 6 time\(s\).*ConnectionRefusedError"
    ):
        retrying(
            refused,
            policy=policy,
            transient=lambda e: True,
            what="listing x",
            endpoint="http://h:1",
            sleep=waited.append,
        )
    assert len(calls) == 6 and waited == [1, 2, 4, 5, 5]


def test_a_configuration_error_is_not_retried():
    calls = []

    def missing():
        calls.append(1)
        raise KeyError("NoSuchBucket")

    with pytest.raises(KeyError):
        retrying(
            missing,
            policy=section("ingest.retry"),
            transient=lambda e: False,
            what="w",
            endpoint="e",
            sleep=lambda s: None,
        )
    assert calls == [1]
