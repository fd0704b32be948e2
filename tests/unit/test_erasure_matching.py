"""One person, written many ways: the erasure matcher finds them in columns and in text, and nothing else."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from feedbackflow.errors import ConfigError
from feedbackflow.governance.erasure_match import (
    ErasureKey,
    Matcher,
    add_erased,
    erased_matcher,
    load_key,
    normalise_email,
    normalise_id,
    normalise_name,
    normalise_phone,
    subject_forms,
)

KEY = ErasureKey(b"a-test-erasure-key-0123456789")
SUBJECT = {
    "email": ["Jane.Roe@Example.COM"],
    "phone": ["+44 7700 900123"],
    "customer_id": ["ACC-0042"],
    "name": ["Jane  Roe"],
}


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher.for_subject(KEY, subject_forms(SUBJECT))


@pytest.mark.parametrize(
    ("written", "expected"),
    [("07700 900123", "7700900123"), ("+44 (0)7700-900-123", "7700900123"), ("0044 7700 900 123", "7700900123")],
)
def test_a_phone_number_in_any_format_has_one_form(written, expected):
    assert normalise_phone(written) == expected


def test_emails_ids_and_names_ignore_case_and_spacing():
    assert normalise_email(" mailto:Jane.Roe@EXAMPLE.com ") == "jane.roe@example.com"
    assert normalise_id("acc 00-42") == normalise_id("ACC_0042") == "acc0042"
    assert normalise_name("  JANE\tRoe ") == "jane roe"


def test_a_too_short_phone_number_is_refused():
    with pytest.raises(ValueError, match="at least 7 digits"):
        subject_forms({"phone": ["12345"]})


@pytest.mark.parametrize(
    "text",
    [
        "please email JANE.ROE@example.com about my card",
        "call me on 07700-900-123 tomorrow",
        "my number is +44 (0) 7700 900 123.",
        "account acc 0042 was charged twice",
        "this is jane ROE writing again",
    ],
)
def test_the_subject_is_found_in_free_text(matcher, text):
    assert matcher.matches(text)


@pytest.mark.parametrize(
    "text",
    [
        "email jane.doe@example.com",  # another person
        "call 07700 900124",  # one digit off
        "account ACC-00421 frozen",  # a longer id
        "Janet Roebuck says hi",  # words are whole
        "order 900123 arrived",  # a fragment of the number is not the number
    ],
)
def test_other_people_are_not_matched(matcher, text):
    assert not matcher.matches(text)


def test_columns_are_matched_in_normalised_forms(matcher):
    frame = pd.DataFrame(
        {
            "id": ["1", "2", "3", "4"],
            "customer_id": ["acc-0042", "ACC-0043", None, "x"],
            "contact": ["x", "y", "JANE.ROE@EXAMPLE.COM", "z"],
            "text": ["hello", "hi", "hey", "ring 07700900123"],
        }
    )
    assert matcher.frame_mask(frame, skip=("id",)).tolist() == [True, False, True, True]


def test_the_list_holds_keyed_hashes_only_and_matches_without_the_values(tmp_path, matcher):
    path = tmp_path / "erased.json"
    add_erased(path, matcher, "REQ-1", "2026-12-06T03:00:00+00:00")
    stored = path.read_text(encoding="utf-8")
    for value in ("jane", "roe", "7700900123", "0042", "example.com"):
        assert value not in stored.casefold()
    env = {"FEEDBACKFLOW_ERASURE_KEY": KEY.secret.decode()}
    again = erased_matcher(path, env)
    assert again is not None and not again.literals
    assert again.matches("Jane Roe here, 07700 900123")
    assert not again.matches("John Smith here")
    assert json.loads(stored)["requests"][0]["request_id"] == "REQ-1"


def test_another_key_fails_loudly(tmp_path, matcher):
    path = tmp_path / "erased.json"
    add_erased(path, matcher, "REQ-1", "2026-12-06")
    with pytest.raises(ConfigError, match="erasure key"):
        erased_matcher(path, {"FEEDBACKFLOW_ERASURE_KEY": "another-key-of-enough-length"})
    with pytest.raises(ConfigError, match="FEEDBACKFLOW_ERASURE_KEY"):
        load_key({})


def test_case_folds_beyond_lower_case_still_match():
    matcher = Matcher.for_subject(KEY, subject_forms({"name": ["Jürgen Straße"]}))
    frame = pd.DataFrame({"text": ["JÜRGEN STRASSE called", "jürgen straße again", "Jürgen Strasser"]})
    assert matcher.frame_mask(frame).tolist() == [True, True, False]
