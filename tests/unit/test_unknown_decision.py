"""The unknown decision end to end on a tiny BERT: out-of-scope rows in the data, train fits the temperature and the
threshold on validation, evaluate reports out-of-scope recall, calibration and the newest batch's unknown share."""

import json

import numpy as np
import pandas as pd
import pytest

from feedbackflow.io import read_json
from feedbackflow.modeling.oos import UNKNOWN
from feedbackflow.modeling.predict import load_calibration, predict_decisions
from feedbackflow.stages import evaluate, split, train
from tests.helpers import TEMPLATES, out_of_scope_rows, tiny_corpus, tiny_training_project

TARGET = 0.9


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    rows = tiny_corpus(50) + out_of_scope_rows(80)
    # two ingested batches: the newest is sequence 2
    rows = [{**row, "channel": "app", "sequence": 1 + i % 2} for i, row in enumerate(rows)]
    paths, settings = tiny_training_project(
        root,
        rows,
        shares=0.25,
        evaluate={"min_accuracy": 0.5, "min_macro_f1": 0.4},
        oos={"label": "oos", "method": "auto", "target_precision": TARGET},
    )
    split.run(settings, paths)
    metrics = train.run(settings, paths)
    return settings, paths, metrics


def test_oos_rows_are_negatives_not_an_intent(trained):
    _, paths, metrics = trained
    assert json.loads((paths.challenger / "label_map.json").read_text()) == {
        label: index for index, label in enumerate(sorted(TEMPLATES))
    }
    calibration = read_json(paths.challenger / "calibration.json")
    train_oos = int((pd.read_parquet(paths.split / "train.parquet")["label"] == "oos").sum())
    validation = pd.read_parquet(paths.split / "validation.parquet")
    validation_oos = int((validation["label"] == "oos").sum())
    assert train_oos > 0 and validation_oos > 0
    # both splits' OOS rows were held out of training and used as negatives of the threshold
    assert metrics["oos_rows_held_out"] == train_oos + validation_oos
    assert calibration["validation"]["oos_rows"] == train_oos + validation_oos
    assert metrics["train_rows"] == int((pd.read_parquet(paths.split / "train.parquet")["label"] != "oos").sum())
    assert calibration["method"] in {"msp", "energy"} and calibration["temperature"] > 0
    assert set(calibration["validation"]["methods"]) == {"msp", "energy"}


def test_threshold_meets_the_target_precision_on_validation(trained):
    _, paths, _ = trained
    calibration = load_calibration(paths.challenger)
    assert calibration.validation["methods"][calibration.method]["target_met"] is True
    # recomputed from the saved model and file, not from the fitted figures: validation + the train split's OOS rows
    rows = pd.concat(
        [
            pd.read_parquet(paths.split / "validation.parquet"),
            pd.read_parquet(paths.split / "train.parquet").query("label == 'oos'"),
        ]
    )
    decided = np.array(predict_decisions(paths.challenger, rows["text"].tolist()))
    truth = rows["label"].to_numpy()
    accepted = decided != UNKNOWN
    assert accepted.any()
    assert (decided[accepted] == truth[accepted]).mean() >= TARGET


def test_evaluate_reports_oos_recall_calibration_and_the_newest_batch(trained):
    settings, paths, _ = trained
    result = evaluate.run(settings, paths)
    test = pd.read_parquet(paths.split / "test.parquet")
    oos_rows = int((test["label"] == "oos").sum())
    gate = read_json(paths.stage_reports("evaluate") / "gate.json")
    figures = gate["out_of_scope"]["challenger"]
    assert figures["oos_rows"] == oos_rows > 0
    assert figures["in_scope_rows"] == gate["test_rows"] == len(test) - oos_rows  # the gate scores intents only
    # the tiny model accepts few in-scope rows: the coverage rule, reading the figure the report shows, decides
    failed = [rule["name"] for rule in gate["rules"] if not rule["passed"]]
    minimum = settings.evaluate.min_in_scope_coverage
    assert failed == ([] if figures["in_scope_coverage"] >= minimum else ["min_in_scope_coverage"])
    assert result["promote"] is not failed and result["oos_recall"] == figures["oos_recall"]
    decided = np.array(predict_decisions(paths.challenger, test["text"].tolist()))
    is_oos = test["label"].to_numpy() == "oos"
    assert figures["oos_recall"] == pytest.approx((decided[is_oos] == UNKNOWN).mean(), abs=1e-6)
    assert figures["unknown_share"] == pytest.approx((decided == UNKNOWN).mean(), abs=1e-6)
    assert [row["coverage"] for row in figures["coverage_accuracy"]][-1] == 1.0
    assert figures["ece_before"] >= 0 and figures["ece_after"] >= 0
    newest = figures["newest_batch"]
    assert newest["sequence"] == 2 and newest["rows"] == newest["rows_scored"] == (4 * 50 + 80) // 2
    assert newest["review_load"] == round(newest["unknown_share"] * newest["rows"])  # the review queue's inflow
    assert newest["review_budget"] == settings.labelling.budget
    metrics = read_json(paths.stage_reports("evaluate") / "metrics.json")
    assert metrics["challenger"]["oos_recall"] == figures["oos_recall"]
    assert metrics["challenger"]["newest_batch"]["unknown_share"] == newest["unknown_share"]
    report = (paths.stage_reports("evaluate") / "gate.md").read_text()
    assert "## Out of scope and calibration (label `oos`)" in report and "Coverage-accuracy" in report
    assert f"expected review load per night (its unknown rows; labelling.budget {settings.labelling.budget})" in report
    assert "Out of scope and calibration" in (paths.stage_reports("evaluate") / "gate.html").read_text()
    card = (paths.challenger / "README.md").read_text()
    assert "## Calibration and the `unknown` decision (validation split)" in card
    assert "| expected calibration error |" in card
