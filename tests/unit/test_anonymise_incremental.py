"""Incremental anonymise equals a full recompute: same rows, values, order and report counts, night after night.

Real Presidio engine and spaCy model (the module's shared ``engine``), a few rows per batch. Each case runs the
stage on a workspace that kept its earlier parts and on an empty one, and compares everything a reader sees.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from functools import cache
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("presidio_analyzer")

from feedbackflow.config import ProjectPaths
from feedbackflow.privacy import engine as privacy
from feedbackflow.privacy import incremental, replace
from feedbackflow.privacy.language import load_language_filter
from feedbackflow.privacy.leak_gate import build_second_opinion
from feedbackflow.privacy.pseudonym import KEY_ENV, PseudonymKey
from feedbackflow.stages import anonymise
from feedbackflow.storage import partitions
from tests.helpers import params_settings

SECRET = "CUST-88412-QX"  # no recognizer knows it: only the canary check catches it (held back)
TEXTS = {
    "a": ["My name is Eleanor Whitfield and my card is late", "Write to eleanor.whitfield@hotmail.co.uk", "All good"],
    "b": [f"My customer reference is {SECRET}, please help.", "Call me on +44 7123 456789", "Thanks a lot"],
    "c": ["The app crashed again", "Card 4111 1111 1111 1111 was declined", "Regards, Thomas Baker"],
    "d": ["Where is my parcel?", "Ring 07700 900123 after six"],
}
LOOSE = {"max_held_share": 0.2}  # one held-back row of a dozen is within the share: the night goes on
PSEUDONYM = {**LOOSE, "operator": "pseudonym"}
KEY, OTHER_KEY = "k3y-for-tests-only-0123456789abcdef", "another-k3y-for-tests-0123456789ab"


def _batch(name: str, sequence: int, texts: list[str] | None = None) -> pd.DataFrame:
    texts = TEXTS[name] if texts is None else texts
    n = len(texts)
    return pd.DataFrame(
        {
            "id": [f"{name}{sequence}-{i:04d}" for i in range(n)],
            "text": texts,
            "label": ["card_arrival"] * n,
            "channel": ["app"] * n,
            "created_at": [f"2026-01-0{sequence}T00:00:{i:02d}+00:00" for i in range(n)],
            "batch_id": [f"2026010{sequence}T000000-{name}"] * n,
            "sequence": [sequence] * n,
        }
    )


def _night(paths: ProjectPaths, batches: list[pd.DataFrame]) -> None:
    paths.validated.mkdir(parents=True, exist_ok=True)
    pd.concat(batches, ignore_index=True).to_parquet(paths.validated / "feedback.parquet", index=False)
    (paths.data / "demo_canaries.json").write_text(json.dumps({"CUSTOMER_REF": [SECRET]}), encoding="utf-8")


@cache
def _second_opinion():
    return build_second_opinion(params_settings().anonymise)


@cache
def _languages(languages: tuple[str, ...], *args):
    return load_language_filter(list(languages), *args)


@pytest.fixture(autouse=True)
def shared_models(engine: privacy.PrivacyEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The models the stage loads for these settings (the engine with the key the environment holds): loaded once."""

    def build(config, detector_dir=None):
        if config.operator != "pseudonym":
            return engine
        operators = {entity: "pseudonym" for entity in engine.entities}
        return dataclasses.replace(engine, operators=operators, key=privacy.pseudonym_key(config))

    monkeypatch.setattr(anonymise, "build_engine", build)
    monkeypatch.setattr(anonymise, "build_second_opinion", lambda config: _second_opinion())
    monkeypatch.setattr(anonymise, "load_language_filter", lambda languages, *args: _languages(tuple(languages), *args))
    monkeypatch.setenv(KEY_ENV, KEY)


def _run(paths: ProjectPaths, batches: list[pd.DataFrame], **anonymise_params) -> dict:
    _night(paths, batches)
    return anonymise.run(params_settings(anonymise=anonymise_params or LOOSE), paths, chunk_rows=2)


def _seen(paths: ProjectPaths) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
    """What a reader sees: the rows, the held-back rows, the report and the audit (less timing and run ids)."""
    report = json.loads((paths.stage_reports("anonymise") / "anonymise.json").read_text())
    audit = json.loads((paths.stage_reports("anonymise") / "audit.json").read_text())
    for record in (report, audit):
        for volatile in ("run_id", "timing", "incremental"):
            record.pop(volatile, None)
    return partitions.read_frame(paths.anonymised), partitions.read_frame(paths.held_back), report, audit


def _assert_full_recompute(paths: ProjectPaths, root: Path, batches: list[pd.DataFrame], **params) -> None:
    fresh = ProjectPaths(root)
    _run(fresh, batches, **params)
    incremental, full = _seen(paths), _seen(fresh)
    pd.testing.assert_frame_equal(incremental[0], full[0])
    pd.testing.assert_frame_equal(incremental[1], full[1])
    assert incremental[2:] == full[2:]
    # train's dependency on the anonymisation (its model card lines) has the same bytes: no retraining for a re-run
    assert paths.anonymise_card.read_bytes() == fresh.anonymise_card.read_bytes()


def test_a_new_night_anonymises_only_the_new_batch_and_equals_a_full_recompute(tmp_path: Path) -> None:
    paths = ProjectPaths(tmp_path / "kept")
    first = _run(paths, [_batch("a", 1), _batch("b", 2)])
    assert first["incremental"]["batches_anonymised"] == 2 and first["rows_held_back"] == 1

    night = [_batch("a", 1), _batch("b", 2), _batch("c", 3)]
    second = _run(paths, night)

    assert second["incremental"] | {"held_rows_rescanned": 1} == {
        "batches": 3,
        "batches_reused": 2,
        "batches_anonymised": 1,
        "rows_reused": 6,
        "rows_anonymised": 3,
        "batches_from_shards": 0,
        "parts_missing_or_corrupted": 0,
        "held_rows_rescanned": 1,  # the held-back row of batch b is scanned again every night
    }
    assert second["rows"] == 9 == second["rows_out"] + second["rows_held_back"]
    _assert_full_recompute(paths, tmp_path / "full", night)
    assert len(list(paths.anonymised.glob("part-*.parquet"))) == 3

    def no_models(*args: object) -> None:
        raise AssertionError("a night with nothing new loaded the models")

    shutil.rmtree(paths.held_back)  # no held-back row to re-scan either (restricted storage lost): b is redone
    again = _run(paths, night)
    assert again["incremental"]["batches_reused"] == 2 and again["incremental"]["parts_missing_or_corrupted"] == 1
    original = anonymise.load_anonymiser
    anonymise.load_anonymiser = no_models  # type: ignore[assignment]
    try:
        idle = _run(paths, [_batch("a", 1), _batch("c", 3)])  # b withdrawn, nothing new
    finally:
        anonymise.load_anonymiser = original
    assert idle["incremental"]["batches_reused"] == 2 and idle["rows_held_back"] == 0
    assert len(list(paths.anonymised.glob("part-*.parquet"))) == 2  # b's part is gone with its batch
    _assert_full_recompute(paths, tmp_path / "full-idle", [_batch("a", 1), _batch("c", 3)])


def test_a_redelivered_batch_is_redone_alone(tmp_path: Path) -> None:
    paths = ProjectPaths(tmp_path / "kept")
    _run(paths, [_batch("a", 1), _batch("c", 2)])
    night = [_batch("a", 1), _batch("c", 3, [*TEXTS["c"][:2], "Regards, Margaret Thornbury"])]  # corrected rows

    result = _run(paths, night)

    assert result["incremental"]["batches_reused"] == 1 and result["incremental"]["rows_anonymised"] == 3
    _assert_full_recompute(paths, tmp_path / "full", night)


@pytest.mark.parametrize(
    ("before", "after"),
    [({**LOOSE, "score_threshold": 0.7}, LOOSE), (PSEUDONYM, PSEUDONYM)],
    ids=["params-change", "key-rotation"],
)
def test_a_params_change_or_a_key_rotation_redoes_every_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, before: dict, after: dict
) -> None:
    paths = ProjectPaths(tmp_path / "kept")
    night = [_batch("a", 1), _batch("c", 2)]
    earlier = _run(paths, night, **before)
    old_text = partitions.read_frame(paths.anonymised)["text"].tolist()
    if before == after:
        monkeypatch.setenv(KEY_ENV, OTHER_KEY)

    result = _run(paths, night, **after)

    assert result["incremental"]["batches_reused"] == 0 and result["incremental"]["rows_anonymised"] == 6
    _assert_full_recompute(paths, tmp_path / "full", night, **after)
    if before == after:  # a new key: every pseudonym changed, none of the old ones is left
        new_text = partitions.read_frame(paths.anonymised)["text"].tolist()
        assert earlier["rows_changed"] == result["rows_changed"] and new_text != old_text
        old_key = PseudonymKey(KEY.encode()).key_id
        assert json.loads((paths.stage_reports("anonymise") / "audit.json").read_text())["key_id"] != old_key


def _reference_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    """A recognizer fix: customer references are replaced from now on."""
    real = replace.anonymise_texts

    def fixed(texts, engine):
        out, counts = real([t.replace(SECRET, "<CUSTOMER_REF>") if t else t for t in texts], engine)
        return out, counts

    monkeypatch.setattr(anonymise, "anonymise_texts", fixed)


@pytest.mark.parametrize("code_changed", [True, False], ids=["privacy-code-changed", "fix-outside-the-identity"])
def test_a_fix_releases_a_held_back_row_as_a_full_recompute_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code_changed: bool
) -> None:
    paths = ProjectPaths(tmp_path / "kept")
    night = [_batch("a", 1), _batch("b", 2), _batch("d", 3)]
    assert _run(paths, night)["rows_held_back"] == 1
    _reference_fix(monkeypatch)
    if code_changed:
        real = anonymise.anonymiser_identity
        monkeypatch.setattr(
            anonymise, "anonymiser_identity", lambda *a: real(*a) | {"privacy_code_sha256": "fixed recognizers"}
        )

    result = _run(paths, night)

    assert result["rows_held_back"] == 0 and result["rows_out"] == 8
    # a changed code hash redoes everything; a fix the identity cannot see is found by re-scanning the held rows
    assert result["incremental"]["batches_anonymised"] == (3 if code_changed else 1)
    _assert_full_recompute(paths, tmp_path / "full", night)
    assert SECRET not in " ".join(partitions.read_frame(paths.anonymised)["text"])


def test_a_fresh_worker_with_the_pulled_parts_gets_the_same_result_and_a_corrupted_part_is_redone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    paths = ProjectPaths(tmp_path / "first-worker")
    night = [_batch("a", 1), _batch("b", 2), _batch("c", 3)]
    _run(paths, night)
    worker = ProjectPaths(tmp_path / "fresh-worker")  # an empty disk; DVC pulls the outputs (no .work, no cache)
    for folder in ("anonymised", "held_back"):
        shutil.copytree(paths.data / folder, worker.data / folder)

    result = _run(worker, night)

    assert result["incremental"]["batches_reused"] == 3
    _assert_full_recompute(worker, tmp_path / "full", night)
    part = partitions.part_files(worker.anonymised)[1]
    part.write_bytes(part.read_bytes()[:-9] + b"corrupted")
    with caplog.at_level(logging.WARNING):
        redone = _run(worker, night)
    assert redone["incremental"]["parts_missing_or_corrupted"] == 1 and redone["incremental"]["batches_reused"] == 2
    assert "missing or corrupted" in caplog.text and SECRET not in caplog.text
    _assert_full_recompute(worker, tmp_path / "full-again", night)


def test_a_run_killed_half_way_publishes_nothing_and_its_retry_equals_a_full_recompute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = ProjectPaths(tmp_path / "kept")
    _run(paths, [_batch("a", 1)])
    before = partitions.read_frame(paths.anonymised)
    night = [_batch("a", 1), _batch("c", 2), _batch("d", 3)]
    real_add = incremental.PartSink.add

    def killed(sink, position, result):
        if position == 2:  # the process dies when the last batch's rows come back
            raise KeyboardInterrupt("worker killed")
        real_add(sink, position, result)

    monkeypatch.setattr(incremental.PartSink, "add", killed)
    with pytest.raises(KeyboardInterrupt):
        _run(paths, night)
    pd.testing.assert_frame_equal(partitions.read_frame(paths.anonymised), before)  # the last good night, intact
    assert not list((paths.anonymise_work).rglob("part-*"))
    monkeypatch.setattr(incremental.PartSink, "add", real_add)

    retried = _run(paths, night)

    assert retried["incremental"]["batches_reused"] == 1
    _assert_full_recompute(paths, tmp_path / "full", night)


def _shards(paths: ProjectPaths, batches: list[pd.DataFrame], shards: int, **anonymise_params) -> list[dict]:
    """Tonight's batches anonymised as ``shards`` shards (as the mapped anonymise_shard tasks do), not yet taken."""
    _night(paths, batches)
    settings = params_settings(anonymise=anonymise_params or LOOSE)
    return [anonymise.run_shard(settings, paths, shard, shards, chunk_rows=2) for shard in range(shards)]


def test_shards_split_the_new_batches_and_the_stage_takes_their_parts_equal_to_one_worker(tmp_path: Path) -> None:
    paths = ProjectPaths(tmp_path / "kept")
    _run(paths, [_batch("a", 1)])
    night = [_batch("a", 1), _batch("b", 2), _batch("c", 3), _batch("d", 4)]
    done = _shards(paths, night, 2)
    assert [result["batches"] for result in done] == [2, 1]  # batch a is reused; b, c | d by rows
    assert sum(result["rows"] for result in done) == 8
    assert partitions.read_index(paths.anonymised)["parts"][0]["batch_id"].endswith("-a"), "shards publish nothing"

    report = anonymise.run(params_settings(anonymise=LOOSE), paths, chunk_rows=2)
    assert report["incremental"]["batches_from_shards"] == 3
    assert report["incremental"]["batches_reused"] == 1 and report["incremental"]["batches_anonymised"] == 3
    assert report["rows_held_back"] == 1  # the planted reference in batch b, found by shard 1's gate
    assert not paths.anonymise_shards.exists(), "the taken shards are removed once the night is published"
    _assert_full_recompute(paths, tmp_path / "full", night)


def test_a_shard_part_made_under_another_identity_or_corrupted_is_not_taken(tmp_path: Path) -> None:
    paths = ProjectPaths(tmp_path / "kept")
    night = [_batch("a", 1), _batch("b", 2)]
    _shards(paths, night, 2, **PSEUDONYM)  # another anonymiser (a pseudonym operator): another identity
    report = anonymise.run(params_settings(anonymise=LOOSE), paths, chunk_rows=2)
    assert report["incremental"]["batches_from_shards"] == 0

    night = [*night, _batch("c", 3), _batch("d", 4)]
    _shards(paths, night, 2)
    damaged = next(paths.anonymise_shards.glob("1-of-2/anonymised/part-*.parquet"))
    damaged.write_bytes(damaged.read_bytes()[:-8])
    report = anonymise.run(params_settings(anonymise=LOOSE), paths, chunk_rows=2)
    assert report["incremental"]["batches_from_shards"] == 1, "shard 2's part is taken, shard 1's damaged one redone"
    _assert_full_recompute(paths, tmp_path / "full", night)


def test_a_night_of_one_large_delivery_is_cut_into_parts_that_shards_share(tmp_path: Path) -> None:
    """``anonymise.part_rows``: one delivery batch of 9 rows becomes parts of 4, 4 and 1 rows, counted from the
    batch's first row; two shards share them, the next night reuses them, and the rows equal one part's."""
    paths = ProjectPaths(tmp_path / "kept")
    big = pd.concat([_batch(name, 1) for name in "abc"], ignore_index=True).assign(batch_id="20260101T000000-big")
    cut = {**LOOSE, "part_rows": 4}
    done = _shards(paths, [big], 2, **cut)
    assert [result["batches"] for result in done] == [2, 1] and [r["rows"] for r in done] == [8, 1]
    report = anonymise.run(params_settings(anonymise=cut), paths, chunk_rows=3)
    assert report["incremental"]["batches_from_shards"] == 3 == report["incremental"]["batches_anonymised"]
    assert [part["rows"] for part in partitions.read_index(paths.anonymised)["parts"]] == [4, 4, 1]
    _assert_full_recompute(paths, tmp_path / "full", [big], **cut)  # one worker, no shards
    whole = ProjectPaths(tmp_path / "whole")
    _run(whole, [big])  # no cut: one part of 9 rows has the same rows, values and order
    pd.testing.assert_frame_equal(partitions.read_frame(paths.anonymised), partitions.read_frame(whole.anonymised))
    pd.testing.assert_frame_equal(partitions.read_frame(paths.held_back), partitions.read_frame(whole.held_back))

    night = [big, _batch("d", 2)]
    _night(paths, night)
    again = anonymise.run(params_settings(anonymise=cut), paths, chunk_rows=2)  # other chunks: the same cuts
    assert again["incremental"]["batches_reused"] == 3 and again["incremental"]["batches_anonymised"] == 1
    _assert_full_recompute(paths, tmp_path / "full-2", night, **cut)
