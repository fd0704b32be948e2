"""validate reads the raw history chunk by chunk: the outputs must not depend on the chunk size.

A multi-batch history that exercises every cross-batch rule (ids repeated within and across batches, versions of an
updating source, reviewers' labels replacing earlier rows, a superseded batch, a batch missing a column, an
unreadable file, JSON Lines keys that appear late, a Parquet integer column with a null) is validated with chunks of
1, 3 and 7 rows and with each batch in one chunk.
The validated Parquet, the quarantine Parquet and the report must be the same bytes (the report less its run time).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import DataQualityError
from feedbackflow.quality.readers import RawBatch, read_raw_batch
from feedbackflow.stages.ingest import read_manifest
from feedbackflow.stages.validate import run
from tests.helpers import params_settings
from tests.unit.test_validate import deliver

TAXONOMY = ["card_arrival", "lost_or_stolen_card", "refund_not_showing_up"]
HEADER = ["id", "text", "label", "channel", "created_at"]
TS = "2024-05-01T10:00:00Z"
WHOLE = 10**6  # rows per chunk: every batch in one chunk


def _row(id_: str, n: int) -> list[str]:
    """A row that breaks a rule (or none) depending on ``n``."""
    broken = {
        3: ["", "blank text", "card_arrival"],  # text_not_empty (text replaced below)
        5: ["x" * 600, "card_arrival"],
        7: ["fine text", "no_such_label"],
        11: ["ctrl \x01 char", "card_arrival"],
        13: ["fine text", "card_arrival", "fax"],
    }.get(n % 17)
    text, label, channel = "my card has not arrived", TAXONOMY[n % 3], "app"
    if broken is not None:
        text = broken[0]
        label = broken[1] if len(broken) > 1 and broken[1] in (*TAXONOMY, "no_such_label") else label
        channel = broken[2] if len(broken) > 2 and broken[2] == "fax" else channel
    created = "2999-01-01T00:00:00Z" if n % 19 == 4 else ("not a date" if n % 23 == 6 else TS)
    return [id_, text, "" if n % 29 == 8 else label, channel, created]


def _history(root: Path) -> ProjectPaths:
    paths = ProjectPaths(root)
    root.mkdir(parents=True)
    (root / "taxonomy.json").write_text(json.dumps(TAXONOMY), encoding="utf-8")
    # 1: 40 rows, a few broken, ids repeated inside the batch
    deliver(paths, {"a.csv": [HEADER, *(_row(f"a{n % 33}", n) for n in range(40))]})
    # 2: JSON Lines with integer ids (some repeat a.csv's), a key that appears late, a boolean text
    lines = []
    for n in range(25):
        record: dict[str, object] = {"id": n if n % 4 else f"a{n}", "text": "json feedback", "label": TAXONOMY[n % 3]}
        record.update(channel="web", created_at=TS)
        if n == 9:
            record["text"] = True
        if n >= 15:
            record["language"] = "en" if n % 2 else "xx"
        lines.append(json.dumps(record))
    deliver(paths, {"b.jsonl": "\n".join(lines), "empty.csv": ""})
    # 3: Parquet with an integer id column holding a null, and a batch over the quarantine share (to be re-delivered)
    parquet = pd.DataFrame(
        {
            "id": pd.array([101, 102, None, 104, 5, 106, 107, 108, 109], dtype="Int64"),
            "text": ["parquet row"] * 8 + [None],
            "label": [TAXONOMY[0]] * 9,
            "channel": ["email"] * 9,
            "created_at": pd.to_datetime([TS] * 9, utc=True),
        }
    )
    bad = [HEADER, *(_row(f"d{n}", 3 if n % 3 else 0) for n in range(12))]
    no_label = [["id", "text", "channel", "created_at"], ["z1", "t", "app", TS]]
    arrow = pa.table(
        {
            "id": pa.array([201, None, 203, 204, 205], pa.int64()),
            "text": ["arrow row"] * 5,
            "label": [TAXONOMY[1]] * 5,
            "channel": ["chat"] * 5,
            "created_at": [TS] * 5,
        }
    )
    deliver(paths, {"c.parquet": parquet, "e.parquet": arrow, "d.csv": bad, "nolabel.csv": no_label})
    # 4: versions of records from an updating source: the latest version wins, replaced ones are quarantined
    versions = [[f"p{n % 6}", f"version {n}", TAXONOMY[0], "app", TS] for n in range(14)]
    deliver(paths, {"pg.csv": [HEADER, *versions]}, source="postgres")
    # 5: d.csv fixed (supersedes delivery 3's), newer versions of two records, a header-only file
    deliver(paths, {"d.csv": [HEADER, *(_row(f"d{n}", 0) for n in range(12))], "header.csv": [HEADER]})
    deliver(paths, {"pg.csv": [HEADER, _row("p1", 0), _row("p4", 2), _row("a1", 0)]}, source="postgres")
    # 6: reviewers' labels: a review replaces every earlier row of its id, the latest review wins
    deliver(
        paths, {"review-1.csv": [HEADER, _row("a2", 1), _row("p4", 1), _row("d3", 2), _row("a5", 7)]}, source="review"
    )
    deliver(paths, {"review-2.csv": [HEADER, _row("a2", 2)]}, source="review")
    return paths


def _outputs(paths: ProjectPaths) -> tuple[bytes, bytes, dict]:
    report = json.loads((paths.stage_reports("validate") / "validate.json").read_text(encoding="utf-8"))
    report.pop("run_id")
    report.pop("incremental")  # how many batches came from their parts: the chunk size never changes the rest
    return (
        (paths.validated / "feedback.parquet").read_bytes(),
        (paths.quarantine / "quarantine.parquet").read_bytes(),
        report,
    )


def _validate(
    paths: ProjectPaths, chunk_rows: int, gx_passing_rows: int | None, fresh: bool = True
) -> tuple[bytes, bytes, dict, str]:
    """Validate with ``chunk_rows``; ``fresh``: from the raw files (else the batches' parts are read in chunks)."""
    if fresh:
        shutil.rmtree(paths.validate_parts, ignore_errors=True)
    settings = params_settings(
        validate={
            "taxonomy": "taxonomy.json",
            "max_quarantine_share": 0.5,
            "chunk_rows": chunk_rows,
            "gx_passing_rows": gx_passing_rows,
            "volume_min_history": 100,
            "min_rows_per_label": 0,
        }
    )
    try:
        run(settings, paths)
        error = ""
    except DataQualityError as failure:
        error = str(failure)
    return (*_outputs(paths), error)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> ProjectPaths:
    return _history(tmp_path_factory.mktemp("chunks") / "project")


@pytest.mark.parametrize("gx_passing_rows", [None, 5])
def test_outputs_do_not_depend_on_the_chunk_size(history: ProjectPaths, gx_passing_rows: int | None) -> None:
    whole = _validate(history, WHOLE, gx_passing_rows)
    validated = pd.read_parquet(history.validated / "feedback.parquet")
    quarantine = pd.read_parquet(history.quarantine / "quarantine.parquet")
    report = whole[2]
    # the history exercises what the chunks could get wrong
    rules = set(";".join(quarantine["rules"]).split(";"))
    assert {"id_unique", "superseded", "required_columns", "value_types", "text_not_empty"} <= rules
    assert validated["id"].is_unique and "p1" in validated["id"].tolist()
    labels = dict(zip(validated["id"], validated["label"], strict=True))
    assert (labels["a2"], labels["p4"], labels["d3"]) == (TAXONOMY[2], TAXONOMY[1], TAXONOMY[2])  # latest review wins
    assert labels["a5"] != "no_such_label"  # a review that breaks a rule replaces nothing
    assert report["rows_read"] == report["rows_accepted"] + report["rows_quarantined"]
    assert "nolabel.csv" in whole[3] and "empty.csv" in whole[3]  # the stage still fails on the broken batches
    assert report["expectations_rows_checked"] < report["rows_read"] or gx_passing_rows is None

    for chunk_rows, fresh in ((7, True), (3, True), (1, True), (3, False)):
        chunked = _validate(history, chunk_rows, gx_passing_rows, fresh)
        assert chunked[0] == whole[0], f"validated Parquet differs with chunks of {chunk_rows} rows"
        assert chunked[1] == whole[1], f"quarantine Parquet differs with chunks of {chunk_rows} rows"
        assert chunked[2] == whole[2]
        assert chunked[3] == whole[3]


@pytest.mark.parametrize("gx_passing_rows", [None, 5])
def test_settled_parts_in_arrow_give_the_outputs_of_every_rule_recomputed_in_pandas(
    history: ProjectPaths, gx_passing_rows: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pass 2 reads a part's stored field rules and moves its rows in Arrow; the reference recomputes every rule."""
    from feedbackflow.quality.history import History

    arrow = [_validate(history, 7, gx_passing_rows, fresh) for fresh in (True, False)]
    settled: list[int] = []

    def in_pandas(self: History, result, *rest):  # type: ignore[no-untyped-def]
        settled.append(result.position)
        self._stale.add(result.position)  # no stored rules: Prepared and every field mask computed again
        return self._check_frames(result, *rest)

    monkeypatch.setattr(History, "_check_settled", in_pandas)
    for fresh, found in zip((True, False), arrow, strict=True):
        settled.clear()
        assert _validate(history, 7, gx_passing_rows, fresh) == found
        assert len(settled) >= 5, "every readable batch not superseded is settled"


def test_raw_chunks_hold_exactly_the_rows_of_the_whole_file(history: ProjectPaths) -> None:
    for entry in read_manifest(history.raw_manifest):
        path = history.raw / entry["raw_file"]
        if path.stat().st_size == 0:
            continue
        frame, numbers = read_raw_batch(path)
        pieces = list(RawBatch(path, chunk_rows=4).chunks())
        assert all(len(piece) <= 4 for piece, _ in pieces)
        joined = pd.concat([piece for piece, _ in pieces], ignore_index=True)
        pd.testing.assert_frame_equal(joined, frame.reset_index(drop=True))
        assert np.array_equal(np.concatenate([n for _, n in pieces]), numbers)


def test_id_claims_are_exact_on_the_hash_path_and_the_arrow_path(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa

    from feedbackflow.quality import ids, suite

    rng = np.random.default_rng(7)
    stored = pa.array([f"id-{n}" for n in rng.integers(0, 5_000, 3_000)], pa.large_string())
    positions, versioned = np.arange(len(stored)), rng.random(len(stored)) < 0.3
    asked = pd.Series([*(f"id-{n}" for n in rng.integers(0, 10_000, 2_000)), None, ""], dtype=object)
    at = rng.integers(0, 4_000, len(asked))
    candidate, version = rng.random(len(asked)) < 0.8, rng.random(len(asked)) < 0.3

    by_hash = suite.IdClaims(stored, positions, versioned)
    assert not by_hash._collisions
    hashed = (by_hash.repeated(asked, at, candidate, version), by_hash.shared(asked, candidate), by_hash.lookup(asked))
    original = ids._hash_ids
    monkeypatch.setattr(ids, "_hash_ids", lambda ids: original(ids) % np.uint64(97))  # many ids share a hash
    by_arrow = suite.IdClaims(stored, positions, versioned)
    assert by_arrow._collisions
    assert np.array_equal(hashed[0], by_arrow.repeated(asked, at, candidate, version))
    assert np.array_equal(hashed[1], by_arrow.shared(asked, candidate))
    assert hashed[0].any() and hashed[1].any()
    known = set(stored.to_pylist())
    assert [value in known for value in asked] == list(hashed[2] >= 0)
