"""Hostile text in a delivery: invisible and look-alike characters are normalised before the rules and anonymise see
the text, very long texts are quarantined, and HTML or script payloads never reach Data Docs unescaped."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from feedbackflow.config import ProjectPaths
from feedbackflow.quality.text import normalise_text
from feedbackflow.stages import validate
from tests.unit.test_validate import HEADER, TAXONOMY, deliver, outputs, row, settings

ZW = "\u200b"  # zero-width space
ZWJ = "\u200d"  # zero-width joiner
RLO, PDF = "\u202e", "\u202c"  # right-to-left override ... pop directional formatting
SCRIPT = "<script>alert('xss')</script>"
IMG = '<img src=x onerror="alert(1)">'


@pytest.fixture
def paths(tmp_path) -> ProjectPaths:
    project = ProjectPaths(tmp_path / "project")
    project.root.mkdir()
    (project.root / "taxonomy.json").write_text(json.dumps(TAXONOMY), encoding="utf-8")
    return project


def test_normalise_text_folds_look_alikes_and_removes_invisible_characters() -> None:
    values = pd.Series(
        [
            f"mail jo{ZW}hn.doe@exa{ZWJ}mple.com now",  # an e-mail split by zero-width characters
            "card ４１１１ １１１１ １１１１ １１１１",  # full-width digits
            "write to ｊａｎｅ＠ｅｘａｍｐｌｅ．ｏｒｇ",  # full-width letters and at sign
            f"iban {RLO}1234 5678{PDF} reversed on screen",  # a bidi override
            "\ufeffbom first and ﬁ ligature",
            "plain ascii stays as is",
            None,
        ]
    )

    assert normalise_text(values).tolist() == [
        "mail john.doe@example.com now",
        "card 4111 1111 1111 1111",
        "write to jane@example.org",
        "iban 1234 5678 reversed on screen",
        "bom first and fi ligature",
        "plain ascii stays as is",
        None,
    ]


def test_validated_rows_carry_normalised_text_and_the_raw_batch_is_untouched(paths: ProjectPaths) -> None:
    (entry,) = deliver(
        paths,
        {
            "hostile.csv": [
                HEADER,
                row("h1", text=f"please email jo{ZW}hn@exa{ZWJ}mple.com about my card"),
                row("h2", text="my card ５５５５ ５５５５ ５５５５ ４４４４ was charged"),
                row("h3", text=f"{ZW}{ZWJ}{RLO}{PDF}"),  # nothing visible: blank once normalised
            ]
        },
    )

    result = validate.run(settings(max_quarantine_share=0.5), paths)

    validated, quarantine, _ = outputs(paths)
    assert validated["text"].tolist() == [
        "please email john@example.com about my card",
        "my card 5555 5555 5555 4444 was charged",
    ]
    assert quarantine[["id", "rules"]].values.tolist() == [["h3", "text_not_empty"]]
    assert result["rows_read"] == 3
    raw = (paths.raw / entry["raw_file"]).read_text(encoding="utf-8")
    assert f"jo{ZW}hn" in raw and "５５５５" in raw  # raw data stays immutable


def test_very_long_texts_are_quarantined(paths: ProjectPaths) -> None:
    deliver(paths, {"long.csv": [HEADER, row("ok"), row("huge", text="refund " * 200_000)]})

    validate.run(settings(max_quarantine_share=0.5), paths)

    validated, quarantine, _ = outputs(paths)
    assert validated["id"].tolist() == ["ok"]
    assert quarantine[["id", "rules"]].values.tolist() == [["huge", "text_length"]]


def test_html_and_script_payloads_never_reach_data_docs_unescaped(paths: ProjectPaths, monkeypatch) -> None:
    # Operator-controlled names: a taxonomy label, and the orchestrator's run id (a manual trigger may choose it; GX
    # writes the run name into Data Docs pages unescaped and into file paths: validate reduces it to safe characters).
    (paths.root / "taxonomy.json").write_text(json.dumps([*TAXONOMY, SCRIPT]), encoding="utf-8")
    monkeypatch.setenv("FEEDBACKFLOW_RUN_ID", f"manual__{IMG}")
    # Delivered values are never rendered at all, whichever rule they break.
    deliver(
        paths,
        {
            "payload.csv": [
                HEADER,
                row("p1", text=f"{SCRIPT} my card has not arrived"),
                row("p2", text="fine", label="<b>card_arrival</b>"),
                row("p3", channel=f"{IMG}"),
                row(f"<iframe src=//evil>{ZW}"),
                row("p5", text="<svg onload=alert(5)>" * 200),
            ]
        },
    )

    validate.run(settings(max_text_chars=512, max_quarantine_share=1.0), paths)

    docs = paths.stage_reports("validate") / "data_docs"
    pages = {path: path.read_text(encoding="utf-8", errors="ignore") for path in docs.rglob("*.html")}
    assert pages and any("validations" in path.parts for path in pages)
    rendered = "\n".join(pages.values())
    for payload in (SCRIPT, IMG, "<b>card_arrival</b>", "<iframe", "<svg onload", "alert('xss')", "onerror="):
        for path, content in pages.items():
            assert payload not in content, f"{payload!r} unescaped in {path}"
    assert "manual___img_src_x_onerror__alert_1___" in rendered  # GX renders the run name raw: it is sanitised
    for value in ("alert(5)", "evil", "my card has not arrived"):  # delivered values: not shown at all
        assert value not in rendered


def test_homoglyph_obfuscated_emails_and_card_numbers_are_quarantined(paths: ProjectPaths) -> None:
    # NFKC does not fold Cyrillic or Greek look-alikes; Presidio's patterns would miss these values.
    deliver(
        paths,
        {
            "homoglyphs.csv": [
                HEADER,
                row("e1", text="contact j\u043ehn@ex\u0430mple.com please"),  # Cyrillic o and a
                row("c1", text="card 4111 1111 1111 111\u0417 was declined"),  # Cyrillic Ze for a 3
                row("g1", text="my \u03b1ccount is locked"),  # Greek alpha in a Latin word
                row("ok1", text="\u043c\u043e\u044f \u043a\u0430\u0440\u0442\u0430 app"),  # Russian words: fine
                row("ok2", text="the fee was 5 \u20ac, see \u00a7 4"),
            ]
        },
    )

    validate.run(settings(max_quarantine_share=1.0), paths)

    validated, quarantine, report = outputs(paths)
    assert sorted(validated["id"]) == ["ok1", "ok2"]
    assert dict(quarantine[["id", "rules"]].values.tolist()) == {
        "e1": "text_mixed_script",
        "c1": "text_mixed_script",
        "g1": "text_mixed_script",
    }
    (outcome,) = [item for item in report["expectations"] if item["rule"] == "text_mixed_script"]
    assert outcome["unexpected_count"] == 3 and outcome["agrees"] is True  # GX confirms the pandas mask
