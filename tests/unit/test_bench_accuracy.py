"""benchmarks/banking77_accuracy.py on tiny stand-in data and a tiny BERT: seeds, spread and out-of-scope figures."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd

from tests.helpers import OUT_OF_SCOPE, TEMPLATES, build_tiny_bert, tiny_corpus

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "banking77_accuracy.py"


def _load():
    spec = importlib.util.spec_from_file_location("banking77_accuracy", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_seeds_and_oos_share_report_mean_spread_and_oos_recall(tmp_path):
    data, oos = tmp_path / "intents", tmp_path / "other"
    data.mkdir()
    oos.mkdir()
    (data / "categories.json").write_text(json.dumps(sorted(TEMPLATES)))
    frame = pd.DataFrame(tiny_corpus(20)).rename(columns={"label": "category"})
    frame.iloc[::4].to_csv(data / "test.csv", index=False)
    frame.drop(frame.index[::4]).to_csv(data / "train.csv", index=False)
    others = pd.DataFrame(
        {"text": [f"{OUT_OF_SCOPE[n % 4]} number {n}" for n in range(120)], "category": ["chat"] * 110 + ["money"] * 10}
    )
    others.iloc[:80].to_csv(oos / "train.csv", index=False)
    others.iloc[80:].to_csv(oos / "test.csv", index=False)
    model = build_tiny_bert(tmp_path / "tiny-bert")
    argv = ["--data", str(data), "--oos-data", str(oos), "--oos-exclude", "money", "--model", str(model)]
    argv += ["--seeds", "2", "--oos-share", "0.25", "--epochs", "2", "--learning-rate", "0.003", "--batch-size", "8"]
    argv += ["--json-out", str(tmp_path / "report.json")]
    report = _load().main(argv)
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
