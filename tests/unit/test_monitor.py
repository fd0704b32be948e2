"""Tests of the monitor stage and its drift helpers, with the real Evidently."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from feedbackflow.config import ProjectPaths
from feedbackflow.monitoring import drift
from feedbackflow.settings import parse_settings
from feedbackflow.stages import monitor

LABELS = [f"intent_{i:02d}" for i in range(20)]
CHANNELS = ["app", "chat", "email", "phone", "web"]
# Each intent has its own small vocabulary so texts look like short, intent-specific messages.
VOCAB = {label: [f"{label[-2:]}word{j}" for j in range(15)] for label in LABELS}
COMMON = ["my", "card", "account", "please", "help", "money", "transfer", "app", "payment", "why"]


def feedback(n: int, seed: int, weights=None, *, batch: str = "b1", sequence: int = 1) -> pd.DataFrame:
    """Synthetic anonymised feedback rows with the pipeline's columns."""
    rng = np.random.default_rng(seed)
    p = None if weights is None else np.asarray(weights, dtype=float) / np.sum(weights)
    labels = rng.choice(LABELS, size=n, p=p)
    texts = [
        " ".join(
            list(rng.choice(VOCAB[label], size=int(rng.integers(2, 8))))
            + list(rng.choice(COMMON, size=int(rng.integers(2, 8))))
        )
        for label in labels
    ]
    return pd.DataFrame(
        {
            "id": [f"{batch}-{i:06d}" for i in range(n)],
            "text": texts,
            "label": labels,
            "channel": rng.choice(CHANNELS, size=n),
            "created_at": pd.Timestamp("2026-01-01", tz="UTC"),
            "batch_id": batch,
            "sequence": sequence,
        }
    )


SHIFTED = [8.0 if i < 3 else 1.0 for i in range(len(LABELS))]


def write_project(tmp_path, train: pd.DataFrame, batches: list[pd.DataFrame]) -> ProjectPaths:
    paths = ProjectPaths(tmp_path)
    paths.split.mkdir(parents=True)
    paths.anonymised.mkdir(parents=True)
    train.to_parquet(paths.split / "train.parquet", index=False)
    pd.concat(batches, ignore_index=True).to_parquet(paths.anonymised / "feedback.parquet", index=False)
    return paths


# --- pure helpers -----------------------------------------------------------------------------------------------


def test_feature_frame_derives_lengths_and_blanks_empty_labels():
    frame = pd.DataFrame(
        {"text": ["two words", "one", ""], "label": ["a", "", None], "channel": ["app", "web", "chat"]}
    )
    features = drift.feature_frame(frame)
    assert features["text_chars"].tolist() == [9, 3, 0]
    assert features["text_words"].tolist() == [2, 1, 0]
    assert features["label"].tolist() == ["a", None, None]
    assert set(features.columns) == {"label", "channel", "text", "text_chars", "text_words"}


def test_sample_reference_is_bounded_and_deterministic():
    frame = feedback(500, seed=1)
    first = drift.sample_reference(frame, 100, seed=7)
    again = drift.sample_reference(frame, 100, seed=7)
    other = drift.sample_reference(frame, 100, seed=8)
    assert len(first) == 100
    pd.testing.assert_frame_equal(first, again)
    assert first["id"].tolist() != other["id"].tolist()
    assert len(drift.sample_reference(frame, 1000, seed=7)) == 500


def test_latest_batch_keeps_only_highest_sequence():
    frame = pd.concat(
        [feedback(30, 1, batch="old", sequence=1), feedback(20, 2, batch="new", sequence=2)], ignore_index=True
    )
    latest = drift.latest_batch(frame)
    assert len(latest) == 20
    assert set(latest["batch_id"]) == {"new"}


def test_chi2_homogeneity_handles_unseen_and_single_categories():
    reference = pd.Series(["a"] * 50 + ["b"] * 50)
    # "c" never occurs in the reference: a goodness-of-fit test would divide by a zero expected count.
    p_value, _ = drift._chi2_homogeneity(reference, pd.Series(["a"] * 24 + ["b"] * 25 + ["c"]), None, 0.05)
    assert math.isfinite(p_value) and 0.0 <= p_value <= 1.0
    assert drift._chi2_homogeneity(pd.Series(["a"] * 5), pd.Series(["a"] * 3), None, 0.05) == (1.0, False)
    _, drifted = drift._chi2_homogeneity(reference, pd.Series(["a"] * 95 + ["b"] * 5), None, 0.05)
    assert drifted


# --- Evidently report -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return feedback(3000, seed=11)


def test_same_distribution_flags_no_label_drift(reference):
    report = drift.compare(reference, feedback(800, seed=12), drift_share=0.5)
    summary = drift.summarise(report)
    assert summary["columns"]["label"]["drifted"] is False
    assert summary["columns"]["label"]["method"] == drift.CHI2_METHOD
    assert "label" not in summary["drifted_columns"]
    assert summary["dataset_drift"] is False
    assert set(summary["columns"]) == {"label", "channel", "text_chars", "text_words", "text"}


def test_shifted_label_mix_flags_label_drift(reference):
    report = drift.compare(reference, feedback(800, seed=13, weights=SHIFTED), drift_share=0.5)
    summary = drift.summarise(report)
    assert summary["columns"]["label"]["drifted"] is True
    assert summary["columns"]["label"]["score"] < summary["columns"]["label"]["threshold"]
    assert "label" in summary["drifted_columns"]
    assert summary["drift_share"] == pytest.approx(len(summary["drifted_columns"]) / len(summary["columns"]))
    assert summary["dataset_drift"] is (summary["drift_share"] >= 0.5)


def test_unlabelled_current_batch_skips_label(reference):
    current = feedback(200, seed=14).assign(label=None)
    summary = drift.summarise(drift.compare(reference, current, drift_share=0.5))
    assert "label" not in summary["columns"]
    assert "label" in summary["skipped_columns"]


def test_tiny_batch_skips_text(reference):
    summary = drift.summarise(drift.compare(reference, feedback(10, seed=15), drift_share=0.5))
    assert "text" in summary["skipped_columns"]
    assert "text" not in summary["columns"]


# --- stage --------------------------------------------------------------------------------------------------------


def test_stage_writes_reports_for_newest_batch(tmp_path, reference):
    old = feedback(300, seed=21, batch="20260101T020000-aaaaaaaaaaaa", sequence=1)
    new = feedback(600, seed=22, weights=SHIFTED, batch="20260102T020000-bbbbbbbbbbbb", sequence=2)
    new.loc[new.index[:30], "label"] = None
    paths = write_project(tmp_path, reference, [old, new])
    settings = parse_settings({"monitor": {"max_reference_rows": 1000}})

    result = monitor.run(settings, paths)

    out = paths.stage_reports("monitor")
    html = (out / "drift.html").read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert html.rstrip().lower().endswith("</html>") and len(html) > 10_000
    assert "<script src=" not in html  # self-contained: opens offline
    evidently_json = json.loads((out / "drift.json").read_text(encoding="utf-8"))
    assert {"metrics", "tests"} <= set(evidently_json)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))

    assert summary["current_batch"] == ["20260102T020000-bbbbbbbbbbbb"]
    assert summary["current_sequence"] == 2
    assert summary["current_rows"] == 600
    assert summary["current_unlabelled_rows"] == 30
    assert summary["reference_rows"] == 1000
    assert summary["training_rows"] == 3000
    assert "label" in summary["drifted_columns"]
    assert summary["html"] == "reports/monitor/drift.html"
    assert summary["json"] == "reports/monitor/drift.json"
    for column in summary["columns"].values():
        assert {"kind", "method", "score", "threshold", "drifted"} <= set(column)

    assert result == {
        "dataset_drift": summary["dataset_drift"],
        "drift_share": summary["drift_share"],
        "drifted_columns": summary["drifted_columns"],
        "html": "reports/monitor/drift.html",
        "json": "reports/monitor/drift.json",
        "summary": "reports/monitor/summary.json",
    }
    # The summary is safe to share: it holds no message text.
    raw = (out / "summary.json").read_text(encoding="utf-8")
    assert not any(text in raw for text in new["text"])


def test_stage_without_split_output_names_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train\.parquet"):
        monitor.run(parse_settings({}), ProjectPaths(tmp_path))
