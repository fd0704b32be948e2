"""The labelled PII evaluation set and its span-overlap scoring; a smoke run of benchmarks/bench_pii.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import run_bench_pii
from tools.pii import evalset

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "data" / "pii_eval" / "pii_eval.jsonl"


def _luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()][::-1]
    return sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(digits)) % 10 == 0


def _iban_ok(iban: str) -> bool:
    compact = iban.replace(" ", "")
    return int("".join(str(int(c, 36)) for c in compact[4:] + compact[:4])) % 97 == 1


def test_generation_is_seeded_and_labels_are_exact_and_valid() -> None:
    first, second = evalset.generate(300, seed=7), evalset.generate(300, seed=7)
    assert [m.to_json() for m in first] == [m.to_json() for m in second]
    assert [m.text for m in evalset.generate(300, seed=8)] != [m.text for m in first]
    kinds = {entity for message in first for _, _, entity in message.spans}
    assert kinds == set(evalset.ENTITIES)
    assert any(not message.spans for message in first), "the set needs messages without personal data"
    for message in first:
        for start, end, entity in message.spans:
            value = message.text[start:end]
            assert value == value.strip() and value
            if entity == "CREDIT_CARD":
                assert _luhn_ok(value), value
            if entity == "IBAN_CODE":
                assert _iban_ok(value), value


def test_templates_share_no_sentence_with_the_demo_generator() -> None:
    from feedbackflow.demo.generate import _PII_TEMPLATES
    from tools.pii import testset

    demo = {re.sub(r"\{\w*\}", "", template).strip(" .,") for _, template, _ in _PII_TEMPLATES}
    ours = "\n".join((*evalset._TEMPLATES, *testset._TEMPLATES))
    assert not [phrase for phrase in demo if phrase and phrase in ours]


def test_committed_set_is_the_seeded_one() -> None:
    committed = evalset.read_jsonl(COMMITTED)
    assert len(committed) == 1500
    assert [m.to_json() for m in committed[:200]] == [m.to_json() for m in evalset.generate(1500)[:200]]


def test_resolve_drops_contained_findings() -> None:
    assert evalset.resolve([(0, 10, "EMAIL_ADDRESS"), (4, 10, "URL"), (12, 15, "PERSON")]) == [
        (0, 10, "EMAIL_ADDRESS"),
        (12, 15, "PERSON"),
    ]


def test_score_counts_overlap_per_type() -> None:
    message = evalset.Message("m", "x" * 40, [(0, 10, "PERSON"), (20, 30, "EMAIL_ADDRESS")])
    scores = evalset.score(
        [message],
        [[(2, 8, "PERSON"), (20, 30, "URL"), (32, 36, "PERSON")]],
        entities=("PERSON", "EMAIL_ADDRESS", "URL"),
    )
    assert (scores["PERSON"].found, scores["PERSON"].true_positive, scores["PERSON"].predicted) == (1, 1, 2)
    assert scores["EMAIL_ADDRESS"].recall == 0.0  # a URL finding does not recall an e-mail
    assert scores["URL"].precision == 0.0
    assert scores["PERSON"].f2 == pytest.approx(5 * 0.5 * 1.0 / (4 * 0.5 + 1.0))
    assert scores["overall"].gold == 2 and scores["overall"].predicted == 3


def test_bench_pii_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("presidio_analyzer")
    result = run_bench_pii(["--limit", "60", "--repeats", "1"], tmp_path / "pii.json")
    printed = capsys.readouterr().out
    assert "ratio" in printed and "PERSON" in printed
    assert result["messages"] == 60 and result["ratio"] > 0
    for name in ("feedbackflow", "presidio_default"):
        assert set(evalset.ENTITIES) <= set(result[name]) and result[name]["overall"]["gold"] > 0


def test_scope_shapes_dev_set_is_seeded_committed_and_disjoint_from_the_locked_set() -> None:
    from tools.pii import devshapes, testset

    committed = evalset.read_jsonl(ROOT / devshapes.DEFAULT_PATH)
    assert [m.to_json() for m in committed[:200]] == [m.to_json() for m in devshapes.generate()[:200]]
    assert {span[2] for message in committed for span in message.spans} == set(devshapes.ENTITIES)
    assert devshapes.ENTITIES == testset.ENTITIES
    assert not set(devshapes.NAME_LOCALES) & set(testset.NAME_LOCALES)
    assert not set(devshapes.ADDRESS_LOCALES) & set(testset.ADDRESS_LOCALES)
    assert not set(devshapes.IBAN_LOCALES) & set(testset.IBAN_LOCALES)
    assert not set(devshapes.PHONE_REGIONS) & set(testset.PHONE_REGIONS)
    locked = {m.text for m in evalset.read_jsonl(ROOT / testset.DEFAULT_PATH)}
    assert not {m.text for m in committed} & locked
    assert sum(not m.spans for m in committed) > 250, "negatives"
    for message in committed:
        for start, end, entity in message.spans:
            value = message.text[start:end]
            assert value == value.strip() and value
            if entity == "CREDIT_CARD":
                assert _luhn_ok(value), value
            if entity == "IBAN_CODE":
                assert _iban_ok(value), value
