"""train and evaluate stages on a tiny BERT: real fine-tuning, real metrics, real gate file."""

import json

import pytest

from feedbackflow.io import read_json
from feedbackflow.stages import evaluate, split, train
from tests.helpers import TEMPLATES, tiny_corpus, tiny_training_project


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("project")
    paths, settings = tiny_training_project(root, tiny_corpus(60), evaluate={"min_accuracy": 0.5, "min_macro_f1": 0.4})
    split.run(settings, paths)
    metrics = train.run(settings, paths)
    return settings, paths, metrics


def test_train_saves_a_loadable_model_and_learns(trained):
    _, paths, metrics = trained
    for name in (
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "label_map.json",
        "train_metrics.json",
        "README.md",
    ):
        assert (paths.challenger / name).is_file(), name
    assert json.loads((paths.challenger / "label_map.json").read_text()) == {
        "billing": 0,
        "delivery": 1,
        "login": 2,
        "praise": 3,
    }
    assert metrics["device"] == "cpu"
    # inference truncates where training did
    assert json.loads((paths.challenger / "tokenizer_config.json").read_text())["model_max_length"] == 24
    assert metrics["validation_accuracy"] >= 0.75
    history = (paths.stage_reports("train") / "history.csv").read_text().splitlines()
    assert history[0] == "epoch,train_loss,validation_loss,validation_accuracy,validation_macro_f1"
    assert len(history) == 1 + metrics["epochs_run"]


def test_evaluate_writes_metrics_and_gate(trained):
    settings, paths, _ = trained
    result = evaluate.run(settings, paths)
    gate = read_json(paths.stage_reports("evaluate") / "gate.json")
    assert result["promote"] is True and gate["promote"] is True
    assert gate["champion"] is None
    assert [rule["name"] for rule in gate["rules"]] == [
        *("challenger_labels", "min_accuracy", "min_macro_f1", "min_in_scope_coverage", "champion")
    ]
    coverage = next(rule for rule in gate["rules"] if rule["name"] == "min_in_scope_coverage")
    assert coverage["figures"]["value"] == gate["out_of_scope"]["challenger"]["in_scope_coverage"]
    report = (paths.stage_reports("evaluate") / "gate.md").read_text()
    assert report.startswith("# Gate report: challenger vs no champion") and "**Decision: PROMOTE**" in report
    assert (paths.stage_reports("evaluate") / "gate.html").read_text().startswith("<!doctype html>")
    assert gate["challenger"]["accuracy"] >= 0.5  # four classes: chance is 0.25
    assert set(read_json(paths.stage_reports("evaluate") / "per_class_f1.json")["challenger"]) == set(TEMPLATES)


def test_without_oos_rows_the_unknown_decision_still_works(trained):
    settings, paths, metrics = trained
    calibration = read_json(paths.challenger / "calibration.json")
    assert calibration["validation"]["oos_rows"] == 0 and metrics["oos_rows_held_out"] == 0
    chosen = calibration["validation"]["methods"][calibration["method"]]
    assert chosen["oos_recall"] is None and chosen["target_met"] is True
    evaluate.run(settings, paths)
    figures = read_json(paths.stage_reports("evaluate") / "gate.json")["out_of_scope"]["challenger"]
    assert figures["oos_rows"] == 0 and figures["oos_recall"] is None and figures["oos_precision"] is None
    assert 0.0 <= figures["unknown_share"] <= 1.0 and figures["in_scope_precision"] is not None
    # a feedback file without ingest sequence numbers is one batch
    assert figures["newest_batch"]["sequence"] is None and figures["newest_batch"]["rows"] == 4 * 60


def test_train_distils_from_a_teacher_folder_named_in_params_and_records_its_digest(trained, tmp_path):
    import shutil

    from feedbackflow.errors import ConfigError
    from feedbackflow.modeling.predict import model_digest

    _, first, _ = trained
    (tmp_path / "student").mkdir()
    paths, settings = tiny_training_project(tmp_path / "student", tiny_corpus(60))
    shutil.copytree(first.challenger, paths.root / "teachers" / "big")  # a teacher trained once, elsewhere
    split.run(settings, paths)
    missing = settings.model_copy(update={"train": settings.train.model_copy(update={"teacher": ["teachers/none"]})})
    with pytest.raises(ConfigError, match=r"train\.teacher: teachers/none is not a folder"):
        train.run(missing, paths)
    distilled = settings.model_copy(update={"train": settings.train.model_copy(update={"teacher": ["teachers/big"]})})
    metrics = train.run(distilled, paths)
    assert metrics["distilled"] is True
    assert metrics["teachers"] == {"teachers/big": model_digest(paths.root / "teachers" / "big")}
    assert read_json(paths.stage_reports("train") / "metrics.json")["teachers"] == metrics["teachers"]
    assert metrics["validation_accuracy"] >= 0.5  # four classes: chance is 0.25
