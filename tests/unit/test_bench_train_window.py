"""Smoke test for benchmarks/bench_train_window.py on a tiny random BERT: the nights and policies it compares."""

from __future__ import annotations

from pathlib import Path

from benchmarks import bench_train_window as bench
from feedbackflow.settings import TrainWindowSettings
from tests.helpers import TINY_TRAIN, build_tiny_bert, section

DATA = Path(__file__).resolve().parents[2] / "data" / "banking77"


def test_nights_are_dated_and_the_window_policy_warm_starts_from_the_last_night(tmp_path):
    data = bench.simulated_nights(
        DATA, nights=2, rows_per_night=40, validation_rows=8, test_rows=0, seed=1, label_count=4
    )
    rows = data["rows"]
    assert set(rows["label"]) <= set(data["labels"]) and len(data["labels"]) == 4
    assert list(rows.groupby("night").size()) == [40, 40] and rows.groupby("night")["created_at"].nunique().eq(1).all()
    assert set(data["test"]["label"]) == set(data["labels"])  # every test row of those intents, never trained on
    settings = section("train", **{**TINY_TRAIN, "epochs": 1, "base_model": str(build_tiny_bert(tmp_path / "tiny"))})
    window = TrainWindowSettings(max_rows=20, max_days=None, min_rows_per_label=0, replay_share=0.5, warm_start=True)
    results = bench.run_seed(data, settings, window, seed=1, scratch=tmp_path / "scratch", from_base=True)
    by_key = {(row["night"], row["policy"]): row for row in results}
    assert set(by_key) == {(1, "full"), (1, "window"), (2, "full"), (2, "window-base"), (2, "window")}
    assert by_key[1, "window"]["test_accuracy"] == by_key[1, "full"]["test_accuracy"]  # no champion on night 1
    assert by_key[2, "full"]["train_rows"] == 80
    assert by_key[2, "window"]["train_rows"] == by_key[2, "window-base"]["train_rows"] == 30
    assert by_key[2, "window"]["selection"] == {"rows_in_window": 20, "replay_rows": 10}
    summary = bench.summarise(results)
    assert {(row["night"], row["policy"]) for row in summary} == set(by_key)
