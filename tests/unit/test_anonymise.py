"""The anonymise stage with the real Presidio engine and spaCy model: planted personal data must not survive."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("presidio_analyzer")

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import ConfigError
from feedbackflow.privacy import engine as privacy
from feedbackflow.privacy import recognizers
from feedbackflow.privacy.replace import anonymise_texts
from feedbackflow.stages import anonymise
from feedbackflow.storage import partitions
from tests.helpers import params_settings

NAME = "Eleanor Whitfield"
SIGN_OFF_NAME = "Thomas Baker"
EMAIL = "eleanor.whitfield@hotmail.co.uk"
PHONE = "+44 7123 456789"
PHONE_NATIONAL = "07700 900123"  # Ofcom's drama range: not allocated, still has to go
CARD = "4111 1111 1111 1111"
CARD_COMPACT = "4539148803436467"
IBAN = "GB33BUKB20201555555555"
IBAN_SPACED = "GB82 WEST 1234 5698 7654 32"
IP = "203.0.113.42"
URL = "https://secure-banking-help.com/login"

PLANTED = [NAME, SIGN_OFF_NAME, EMAIL, PHONE, PHONE_NATIONAL, CARD, CARD_COMPACT, IBAN, IBAN_SPACED, IP, URL]

# Text (without personal data) that must come out exactly as it went in.
UNCHANGED = [
    "My card has not arrived yet",
    "Is my Mastercard accepted abroad?",
    "How long does a transfer of 250 pounds take?",
    "I was charged a 2.50 fee on my top-up of 100 on 12/03.",
]

TEXTS = [
    f"My name is {NAME}. I still have not received my new card.",
    f"Why was I charged twice? You can reach me at {EMAIL}.",
    f"Please call me back on {PHONE}.",
    f"My card number is {CARD} and it was declined.",
    f"The transfer went to IBAN {IBAN} yesterday.",
    f"The money has not arrived. Regards, {SIGN_OFF_NAME}",
    f"Text me on {PHONE_NATIONAL} please.",
    f"Card {CARD_COMPACT}, IBAN {IBAN_SPACED}.",
    f"I logged in from {IP} at {URL} and it failed.",
    *UNCHANGED,
]

EXPECTED_COUNTS = {
    "PERSON": 2,
    "EMAIL_ADDRESS": 1,
    "PHONE_NUMBER": 2,
    "CREDIT_CARD": 2,
    "IBAN_CODE": 2,
    "IP_ADDRESS": 1,
    "URL": 1,
}
# The report lists every configured entity, with 0 for those not found.
REPORTED_COUNTS = {**dict.fromkeys(params_settings().anonymise.entities, 0), **EXPECTED_COUNTS}


def _luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()][::-1]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(digits))
    return total % 10 == 0


def _iban_ok(iban: str) -> bool:
    compact = iban.replace(" ", "")
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def test_planted_values_are_valid() -> None:
    # Guards the fixtures: an invalid card or IBAN would be (rightly) ignored and the test would prove nothing.
    assert _luhn_ok(CARD) and _luhn_ok(CARD_COMPACT)
    assert _iban_ok(IBAN) and _iban_ok(IBAN_SPACED)


def _frame(texts: list[str]) -> pd.DataFrame:
    n = len(texts)
    return pd.DataFrame(
        {
            "id": [f"n001-{i:06d}" for i in range(n)],
            "text": texts,
            "label": ["card_arrival"] * n,
            "channel": ["app"] * n,
            "created_at": [f"2026-01-01T00:00:{i:02d}+00:00" for i in range(n)],
            "batch_id": ["20260101T000000-abcdef012345"] * n,
            "sequence": list(range(1, n + 1)),
        }
    )


def test_anonymise_texts_replaces_planted_values(engine: privacy.PrivacyEngine) -> None:
    out, counts = anonymise_texts(TEXTS, engine)

    joined = "\n".join(out)
    for value in PLANTED:
        assert value not in joined, f"planted value survived: {value!r}"
    assert dict(counts) == EXPECTED_COUNTS
    assert out[0] == "My name is <PERSON>. I still have not received my new card."
    assert out[1] == "Why was I charged twice? You can reach me at <EMAIL_ADDRESS>."
    assert out[2] == "Please call me back on <PHONE_NUMBER>."
    assert out[3] == "My card number is <CREDIT_CARD> and it was declined."
    assert out[4] == "The transfer went to IBAN <IBAN_CODE> yesterday."
    assert out[5] == "The money has not arrived. Regards, <PERSON>"
    assert out[7] == "Card <CREDIT_CARD>, IBAN <IBAN_CODE>."
    assert out[8] == "I logged in from <IP_ADDRESS> at <URL> and it failed."
    assert out[-len(UNCHANGED) :] == UNCHANGED


def test_anonymise_texts_passes_missing_and_empty_text_through(engine: privacy.PrivacyEngine) -> None:
    out, counts = anonymise_texts([None, "", f"Call {PHONE}"], engine)

    assert out == [None, "", "Call <PHONE_NUMBER>"]
    assert counts == {"PHONE_NUMBER": 1}
    assert anonymise_texts([], engine) == ([], {})


def test_stage_writes_anonymised_parquet_and_report_without_raw_values(
    tmp_path: Path, engine: privacy.PrivacyEngine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    paths = ProjectPaths(tmp_path)
    settings = params_settings()
    source = _frame(TEXTS)
    paths.validated.mkdir(parents=True)
    source.to_parquet(paths.validated / "feedback.parquet", index=False)
    # The engine is the one build_engine makes for these settings; reusing it saves loading spaCy again.
    monkeypatch.setattr(anonymise, "build_engine", lambda config, detector_dir=None: engine)

    with caplog.at_level(logging.DEBUG):
        result = anonymise.run(settings, paths)

    output = partitions.read_frame(paths.anonymised)
    assert list(output.columns) == list(source.columns)
    pd.testing.assert_frame_equal(output.drop(columns="text"), source.drop(columns="text"))
    assert output["text"].tolist()[-len(UNCHANGED) :] == UNCHANGED
    assert output["text"].str.contains("<PERSON>").sum() == 2

    report_file = paths.stage_reports("anonymise") / "anonymise.json"
    report_text = report_file.read_text(encoding="utf-8")
    for value in PLANTED:
        assert value not in output["text"].str.cat(sep="\n")
        assert value not in report_text
        assert value not in caplog.text
    report = json.loads(report_text)
    assert report["rows"] == len(TEXTS)
    assert report["rows_changed"] == len(TEXTS) - len(UNCHANGED)
    assert report["entities"] == REPORTED_COUNTS
    assert report["settings"]["entities"] == settings.anonymise.entities
    assert report["settings"]["score_threshold"] == settings.anonymise.score_threshold
    assert report["settings"]["spacy_model"] == settings.anonymise.spacy_model
    assert {key: result[key] for key in ("rows", "rows_changed", "entities")} == {
        "rows": len(TEXTS),
        "rows_changed": len(TEXTS) - len(UNCHANGED),
        "entities": REPORTED_COUNTS,
    }
    assert result["leak_gate"]["passed"] is True
    assert not list(paths.anonymised.glob("*.partial"))


def test_stage_in_small_chunks_writes_what_one_pass_writes(
    tmp_path: Path, engine: privacy.PrivacyEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(anonymise, "build_engine", lambda config, detector_dir=None: engine)
    results, outputs = [], []
    for chunk_rows in (None, 4):  # one chunk; then 4 chunks of 4 and one of 1
        paths = ProjectPaths(tmp_path / f"chunks-{chunk_rows}")
        paths.validated.mkdir(parents=True)
        _frame(TEXTS).to_parquet(paths.validated / "feedback.parquet", index=False)
        results.append(anonymise.run(params_settings(), paths, chunk_rows=chunk_rows))
        outputs.append(partitions.read_frame(paths.anonymised))

    pd.testing.assert_frame_equal(outputs[0], outputs[1])
    assert results[0] == results[1] and results[1]["entities"] == REPORTED_COUNTS
    assert results[1]["leak_gate"]["rows_scanned"] == len(TEXTS)


def test_demo_personal_data_is_caught(engine: privacy.PrivacyEngine) -> None:
    # The shapes the demo generator plants (Faker en_GB), many draws: every planted value must go.
    from faker import Faker

    from feedbackflow.demo.generate import _PII_TEMPLATES, _pii_value

    fake = Faker("en_GB")
    fake.seed_instance(2026)
    texts, values = [], []
    for round_ in range(25):
        for entity, template, count in _PII_TEMPLATES:
            planted = [_pii_value(fake, entity) for _ in range(count)]
            texts.append(template.format(*planted, text="My card has not arrived yet."))
            values += [(round_, entity, value) for value in planted]
    out, counts = anonymise_texts(texts, engine)

    joined = "\n".join(text for text in out if text)
    leaks = [(entity, value) for _, entity, value in values if value in joined]
    assert not leaks
    expected = {"PERSON": sum(1 for _, e, _ in values if e.startswith("PERSON"))}
    expected |= {e: sum(1 for _, v, _ in values if v == e) for _, e, _ in values if not e.startswith("PERSON")}
    # A name the model also reads as a place may be replaced as <LOCATION>: still replaced, counted there.
    assert counts["PERSON"] + counts.get("LOCATION", 0) == expected.pop("PERSON")
    assert {entity: count for entity, count in counts.items() if entity not in ("PERSON", "LOCATION")} == expected


def test_email_check_never_downloads_the_suffix_list(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import requests

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("tldextract tried to fetch the public suffix list")

    monkeypatch.setattr(requests.Session, "send", no_network)
    recognizers.offline_tld_extractor.cache_clear()
    email_recognizer = recognizers.recognizer_classes()["email"]
    with caplog.at_level(logging.DEBUG, logger="tldextract"):
        assert email_recognizer().validate_result(EMAIL)
        assert not email_recognizer().validate_result("someone@localhost")
    assert not [r for r in caplog.records if r.name.startswith("tldextract") and r.levelno >= logging.WARNING]


def test_unknown_entity_is_reported(engine: privacy.PrivacyEngine) -> None:
    assert privacy.unsupported_entities(engine.analyzer, ["PERSON", "NOT_AN_ENTITY"], "en") == ["NOT_AN_ENTITY"]


@pytest.mark.parametrize("handed_over", [True, False], ids=["by-the-analyzer", "from-params-yaml"])
def test_name_lists_read_the_configured_spacy_model(
    handed_over: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The English words behind the name rules come from ``anonymise.spacy_model`` (before: the code default's model,
    so a configured en_core_web_lg was ignored there)."""
    import functools
    import types

    import spacy.util

    from feedbackflow.privacy import names, spacy_model
    from tests.helpers import write_params

    loaded = []

    def load_model(name: str, disable: list[str]) -> object:
        loaded.append(name)
        return types.SimpleNamespace(pipe_names=[])  # no lemmatizer: no words, nothing downloaded

    monkeypatch.setattr(spacy_model, "resolve_spacy_model", lambda name: f"package-of-{name}")
    monkeypatch.setattr(spacy.util, "load_model", load_model)
    monkeypatch.setattr(names, "_spacy_model", {})  # this process has not built an analyzer yet
    monkeypatch.setattr(names, "_english_words", functools.cache(names._english_words.__wrapped__))
    monkeypatch.setattr(names, "_lemmatizer_lookups", functools.cache(names._lemmatizer_lookups.__wrapped__))
    monkeypatch.setattr(names, "_inflection_rules", functools.cache(names._inflection_rules.__wrapped__))
    if handed_over:
        names.warm_up("en_core_web_lg")  # what build_analyzer does with settings.spacy_model
    else:
        write_params(tmp_path, anonymise={"spacy_model": "en_core_web_lg"})
        monkeypatch.setenv("FEEDBACKFLOW_PROJECT_DIR", str(tmp_path))
        names.english_words()
    assert loaded == ["package-of-en_core_web_lg"]


def test_missing_spacy_model_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"anonymise\.spacy_model"):
        privacy.resolve_spacy_model("xx_no_such_model_sm")


def test_importing_the_stage_loads_no_nlp_library() -> None:
    code = (
        "import sys, feedbackflow.stages.anonymise; "
        "print(sorted(m for m in ('spacy', 'presidio_analyzer', 'presidio_anonymizer', 'tldextract') "
        "if m in sys.modules))"
    )
    src = str(Path(anonymise.__file__).resolve().parents[2])
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONPATH": src}
    )
    assert done.stdout.strip() == "[]"
