"""Rows in a language the detectors do not read are held back with the language as the reason (real py3langid)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("presidio_analyzer")

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import ConfigError
from feedbackflow.privacy import engine as privacy
from feedbackflow.privacy.language import LANGUAGE_VERSION, language_model, load_language_filter
from feedbackflow.stages import anonymise
from feedbackflow.storage import partitions
from tests.helpers import params_settings

# A name, a mobile number, a resident id number (with its check character) and a UnionPay card: nothing the
# English detectors find.
CHINESE = "我叫王小明，手机号码13912345678，身份证号码11010519491231002X，银行卡号6222021234567890128，请尽快退款。"
SPANISH = "Hola, me llamo Lucía Fernández y mi DNI es 12345678Z. Todavía no me ha llegado la tarjeta."
ENGLISH = [
    "My card has not arrived yet and it has been two weeks.",
    "Why was I charged a fee for the transfer?",
    "Visa or Mastercard?",  # short rows the identifier is least sure of
    "Cancel Transaction",
    "4111 1111 1111 1111",  # digits only: nothing to tell a language by
    "Card 4539148803436467, IBAN GB82 WEST 1234 5698 7654 32.",  # codes: no language (zxx), the shapes read them
    "ok",
    "I love the new app, thanks!",
    "The exchange rate I got was wrong.",
]


@pytest.fixture(scope="module")
def languages():
    settings = params_settings().anonymise
    return load_language_filter(settings.languages, settings.language_hold_below, settings.language_min_letters)


def test_chinese_and_spanish_are_named_and_english_passes(languages) -> None:
    assert languages.uncovered([CHINESE, SPANISH, None]) == ["zh", "es", None]
    assert languages.uncovered(ENGLISH) == [None] * len(ENGLISH)


def test_a_covered_language_is_not_held(languages) -> None:
    spanish_too = load_language_filter(["en", "es"], languages.hold_below, languages.min_letters)
    assert spanish_too.uncovered([SPANISH, CHINESE, ENGLISH[0]]) == [None, "zh", None]


def test_unknown_language_codes_and_other_versions_are_config_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"anonymise.languages: \['english'\]"):
        load_language_filter(["en", "english"], 0.01, 3)
    from feedbackflow.privacy import language

    monkeypatch.setattr(language, "LANGUAGE_VERSION", "0.0.1")
    with pytest.raises(ConfigError, match=r"measured with 0\.0\.1"):
        load_language_filter(["en"], 0.01, 3)


def test_the_covered_languages_must_include_the_detectors_language() -> None:
    from feedbackflow.settings import SettingsError

    with pytest.raises(SettingsError, match="must include the detectors' language 'en'"):
        params_settings(anonymise={"languages": ["es"]})


def test_the_language_model_is_part_of_the_anonymise_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    config = params_settings().anonymise
    assert language_model().startswith(f"py3langid=={LANGUAGE_VERSION} sha256:")
    before = anonymise.config_hash(config)
    monkeypatch.setattr(anonymise, "language_model", lambda: "py3langid==9.9 sha256:0000")
    assert anonymise.config_hash(config) != before


def test_the_stage_holds_back_rows_it_cannot_read_and_counts_them_by_language(
    tmp_path: Path, engine: privacy.PrivacyEngine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    texts = [*ENGLISH, CHINESE, SPANISH]
    paths = ProjectPaths(tmp_path)
    paths.validated.mkdir(parents=True)
    ids = [f"n001-{i:06d}" for i in range(len(texts))]
    pd.DataFrame({"id": ids, "text": texts, "label": "card_arrival"}).to_parquet(
        paths.validated / "feedback.parquet", index=False
    )
    monkeypatch.setattr(anonymise, "build_engine", lambda config, detector_dir=None: engine)

    with caplog.at_level(logging.DEBUG):
        result = anonymise.run(params_settings(), paths, chunk_rows=3)

    published = partitions.read_frame(paths.anonymised)
    assert published["id"].tolist() == ids[: len(ENGLISH)]  # English feedback passes, in order
    held = partitions.read_frame(paths.held_back)
    assert held["id"].tolist() == ids[len(ENGLISH) :] and held["text"].tolist() == [CHINESE, SPANISH]
    assert held[anonymise.REASON_COLUMN].tolist() == ["language: zh", "language: es"]
    assert result["rows_held_back_by_language"] == {"zh": 1, "es": 1}
    assert result["rows"] == len(texts) == result["rows_out"] + result["rows_held_back"]
    # The leak gate scanned only what the detectors read: the held rows are no share of its limit.
    assert result["leak_gate"]["passed"] is True and result["leak_gate"]["rows_scanned"] == len(ENGLISH)
    audit_text = (paths.stage_reports("anonymise") / "audit.json").read_text()
    report = json.loads((paths.stage_reports("anonymise") / "anonymise.json").read_text())
    assert json.loads(audit_text)["rows_held_back_by_language"] == {"zh": 1, "es": 1}
    assert report["settings"]["languages"] == ["en"] and report["settings"]["language_model"] == language_model()
    for text in (audit_text, json.dumps(report), caplog.text):
        for value in ("13912345678", "王小明", "12345678Z", "Lucía", ids[-1]):
            assert value not in text
