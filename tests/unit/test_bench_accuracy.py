"""benchmarks/banking77_accuracy.py on tiny stand-in data and a tiny BERT: seeds, spread and out-of-scope figures."""

from __future__ import annotations

import json

from tests.helpers import build_tiny_bert, intent_bench_data, load_benchmark


def test_seeds_and_oos_share_report_mean_spread_and_oos_recall(tmp_path):
    data, oos = intent_bench_data(tmp_path)
    model = build_tiny_bert(tmp_path / "tiny-bert")
    argv = ["--data", str(data), "--oos-data", str(oos), "--oos-exclude", "money", "--model", str(model)]
    argv += ["--seeds", "2", "--oos-share", "0.25", "--epochs", "2", "--learning-rate", "0.003", "--batch-size", "8"]
    argv += ["--json-out", str(tmp_path / "report.json")]
    report = load_benchmark("banking77_accuracy").main(argv)
    assert report == json.loads((tmp_path / "report.json").read_text())
    assert report["seeds"] == [42, 43] and len(report["runs"]) == 2
    assert report["oos_test_rows"] == round(0.25 * 20) and report["test_rows"] == 20
    assert report["oos_train_rows"] == round(0.25 * report["train_rows"]) + round(0.25 * report["validation_rows"])
    accuracy = report["summary"]["test_accuracy"]
    values = [run["test_accuracy"] for run in report["runs"]]
    assert accuracy["n"] == 2 and accuracy["min"] == min(values) and accuracy["max"] == max(values)
    assert abs(accuracy["mean"] - sum(values) / 2) < 1e-4 and accuracy["std"] >= 0
    for run in report["runs"]:
        assert run["oos_recall"] is not None and 0 <= run["oos_recall"] <= 1
        assert run["oos_method"] in {"msp", "energy"}
        assert run["validation"]["oos_rows"] == report["oos_train_rows"]
