"""benchmarks/distill_study.py and recipe_grid.py --process-per-seed on tiny stand-in data and a tiny BERT."""

from __future__ import annotations

import json

import numpy as np

from tests.helpers import TEMPLATES, build_tiny_bert, intent_bench_data, load_benchmark


def test_distill_study_trains_teachers_and_students_from_both_sources(tmp_path):
    data, oos = intent_bench_data(tmp_path)
    model = build_tiny_bert(tmp_path / "tiny-bert")
    argv = ["--teachers", "2", "--seeds", "1", "--variants", "ensemble:0.5:2", "oof:0.5:2", "--data", str(data)]
    argv += ["--folder", str(tmp_path / "study"), "--json-out", str(tmp_path / "study.json"), "--"]
    argv += ["--oos-data", str(oos), "--oos-share", "0.25", "--model", str(model), "--epochs", "1"]
    argv += ["--learning-rate", "0.003", "--batch-size", "8"]
    report = load_benchmark("distill_study").main(argv)
    assert report == json.loads((tmp_path / "study.json").read_text())
    assert report["errors"] == {}
    assert report["teacher_ensemble"]["members"] == 2
    assert 0 <= report["teacher_ensemble"]["test_accuracy"] <= 1
    assert set(report["results"]) == {
        "shipped",
        "teacher (single model, seeds 100..)",
        "student ensemble:0.5:2 (source:alpha:T)",
        "student oof:0.5:2 (source:alpha:T)",
    }
    assert report["results"]["teacher (single model, seeds 100..)"]["seeds"] == [100, 101]
    for name in ("ensemble_0.5_2-42", "oof_0.5_2-42"):  # the students did distil
        student = json.loads((tmp_path / "study" / f"{name}.json").read_text())
        assert student["runs"][0]["train"]["distilled"] is True
    # out-of-fold logits: every training row of the fit split exactly once, from the fold teacher that left it out
    files = [tmp_path / "study" / f"oof-{index}.npz" for index in range(2)]
    rows = sorted(row for file in files for row in np.load(file)["index"].tolist())
    assert len(rows) == len(set(rows)) == round(0.9 * 60)  # the fit split: 90 % of 60 training rows
    soft = load_benchmark("banking77_accuracy").soft_targets(files, rows, sorted(TEMPLATES))
    assert soft.shape == (len(rows), len(TEMPLATES))


def test_recipe_grid_merges_single_seed_reports_into_one_summary():
    grid = load_benchmark("recipe_grid")
    parts = [
        {"runs": [{"seed": seed, "test_accuracy": value}], "summary": {"test_accuracy": {}}, "wall_seconds": wall}
        for seed, value, wall in ((42, 0.90, 10.0), (43, 0.92, 12.0), (44, 0.94, 11.0))
    ]
    merged = grid.merge("r", {"epochs": 4}, parts)
    assert merged["seeds"] == [42, 43, 44] and merged["overrides"] == {"epochs": 4}
    assert merged["summary"]["test_accuracy"]["mean"] == 0.92 and merged["summary"]["test_accuracy"]["n"] == 3
    assert merged["wall_seconds"] == 12.0
    failed = grid.merge("r", {}, [parts[0], {"error": "out of memory", "wall_seconds": 1.0}])
    assert failed["error"] == "out of memory"
