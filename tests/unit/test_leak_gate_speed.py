"""The leak gate's second scan runs faster without finding anything less: spaCy batches and digit-gated recognizers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from feedbackflow.privacy import engine as privacy
from feedbackflow.privacy.leak_gate import (
    SecondOpinion,
    build_second_opinion,
    check_output,
    needs_a_digit,
    regex_needs_digit,
)
from tests.helpers import params_settings

PII_EVAL = Path(__file__).resolve().parents[2] / "data" / "pii_eval" / "pii_eval.jsonl"


@pytest.mark.parametrize(
    ("pattern", "needs"),
    [
        (r"\d", True),
        (r"\b[0-9]{8,17}\b", True),
        (r"x(\d+)y", True),
        (r"(?:[A-Z]{2}[0-9]{2})", True),
        (r"(?>\d)|7", True),
        (r"\d?", False),  # optional
        (r"a|\d", False),  # one branch needs none
        (r"[0-9a-f]{4}", False),  # hex: "beef" has no digit
        (r"(?<=\d)x", False),  # a look-behind consumes nothing
        (r"[^a-z]", False),
        (r"(\d)?\1", False),
    ],
)
def test_a_pattern_needs_a_digit_only_when_every_match_consumes_one(pattern: str, needs: bool) -> None:
    assert regex_needs_digit(pattern, re.IGNORECASE) is needs
    if needs:  # what the decision promises: no text without a digit can match
        assert not re.search(pattern, "no digits here: IBAN card phone beef ABCD ::", re.IGNORECASE)


@pytest.fixture(scope="module")
def second() -> SecondOpinion:
    return build_second_opinion(params_settings().anonymise)


def test_only_recognizers_that_need_a_digit_are_skipped_on_texts_without_one(second: SecondOpinion) -> None:
    gated = {type(r).__name__ for r in second.analyzer.registry.recognizers if hasattr(r.analyze, "__wrapped__")}
    assert {"PhoneRecognizer", "CreditCardRecognizer", "IbanRecognizer", "UsSsnRecognizer"} <= gated
    assert not gated & {"SpacyRecognizer", "EmailRecognizer", "UrlRecognizer", "IpRecognizer"}
    assert all(needs_a_digit(r) == (type(r).__name__ in gated) for r in second.analyzer.registry.recognizers)
    assert second.batch_size == params_settings().anonymise.batch_size


def test_the_second_scan_still_catches_numbers_the_output_kept(second: SecondOpinion) -> None:
    engine = privacy.build_engine(params_settings().anonymise)
    texts = ["My phone number is +44 20 7946 0018, call me.", "Card 4111 1111 1111 1111 was charged twice."]
    report = check_output(["phone", "card"], texts, engine, {}, second)
    assert report.rescan_hits.get("PHONE_NUMBER") == ["phone"]
    assert report.rescan_hits.get("CREDIT_CARD") == ["card"]


def test_findings_are_the_same_as_presidios_default_one_text_at_a_time(second: SecondOpinion) -> None:
    lines = PII_EVAL.read_text(encoding="utf-8").splitlines()[:300]
    texts = [json.loads(line)["text"] for line in lines]
    texts += ["no digit in this one, Jane", "fe80::dead:beef is my router", "dead:beef::cafe"]

    def findings() -> list[list[tuple]]:
        return [sorted((r.entity_type, r.start, r.end, r.score) for r in found) for found in second.analyze(texts)]

    fast = findings()
    gated = {id(r): r.analyze for r in second.analyzer.registry.recognizers if hasattr(r.analyze, "__wrapped__")}
    batch_size = second.batch_size
    try:
        second.batch_size = 1  # Presidio's BatchAnalyzerEngine default, and every recognizer on every text
        for recognizer in second.analyzer.registry.recognizers:
            if id(recognizer) in gated:
                recognizer.analyze = gated[id(recognizer)].__wrapped__
        plain = findings()
    finally:
        second.batch_size = batch_size
        for recognizer in second.analyzer.registry.recognizers:
            if id(recognizer) in gated:
                recognizer.analyze = gated[id(recognizer)]
    assert sum(map(len, plain)) > 100  # the texts hold personal data: the comparison means something
    assert fast == plain
