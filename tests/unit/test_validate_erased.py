"""A re-delivery carrying an erased subject stays out: validate quarantines it under ``erased_subject``."""

from __future__ import annotations

import pytest

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import ConfigError
from feedbackflow.governance.erasure_match import ErasureKey, Matcher, add_erased, subject_forms
from feedbackflow.stages.validate import run
from tests.unit.test_validate import HEADER, deliver, outputs, paths, row, rules_by_row, settings  # noqa: F401

KEY = "validate-erasure-key-0a9b8c7d"


@pytest.fixture
def erased(paths: ProjectPaths, monkeypatch) -> ProjectPaths:  # noqa: F811
    forms = subject_forms({"name": ["Jane Roe"], "phone": ["07700 900123"]})
    matcher = Matcher.for_subject(ErasureKey(KEY.encode()), forms)
    add_erased(paths.root / "data" / "erased_subjects.json", matcher, "REQ-1", "2026-12-06T03:00:00+00:00")
    monkeypatch.setenv("FEEDBACKFLOW_ERASURE_KEY", KEY)
    return paths


def test_rows_of_an_erased_subject_are_quarantined_without_counting_as_bad_data(erased: ProjectPaths) -> None:
    rows = [row("a"), row("b", text="this is JANE roe again"), row("c", text="ring +44 7700 900 123"), row("d")]
    deliver(erased, {"redelivery.csv": [HEADER, *rows]})

    run(settings(max_quarantine_share=0.1), erased)  # 2 of 4 rows out, yet no share failure: they are not bad rows

    validated, quarantine, report = outputs(erased)
    assert validated["id"].tolist() == ["a", "d"]
    assert rules_by_row(quarantine, "redelivery.csv") == {2: "erased_subject", 3: "erased_subject"}
    assert report["quarantined_by_rule"]["erased_subject"] == 2
    assert report["batches"][0]["rows_erased"] == 2 and report["success"]


def test_an_erased_list_without_its_key_stops_validate(erased: ProjectPaths, monkeypatch) -> None:
    deliver(erased, {"monday.csv": [HEADER, row("a")]})
    monkeypatch.delenv("FEEDBACKFLOW_ERASURE_KEY")
    monkeypatch.delenv("FEEDBACKFLOW_PSEUDONYM_KEY", raising=False)

    with pytest.raises(ConfigError, match="FEEDBACKFLOW_ERASURE_KEY"):
        run(settings(), erased)
