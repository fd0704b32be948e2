"""What the demo's console says about the champion and the drift check: the verdict, not one Evidently flag."""

from __future__ import annotations

from feedbackflow.demo.run import _champion, _drift


def test_a_failed_drift_check_says_failed_with_its_tests_and_columns_even_without_dataset_drift():
    monitor = {
        "drift_failed": True,
        "dataset_drift": False,  # Evidently's share test passed; label and prediction drift did not
        "failed_tests": ["column_drift:label", "prediction_drift"],
        "drift_share": 0.29,
        "drifted_columns": ["label", "prediction"],
    }
    line = _drift(monitor)
    assert line.startswith("FAILED")
    assert "column_drift:label, prediction_drift" in line and "label, prediction" in line and "0.29" in line


def test_a_passed_and_a_missing_drift_check():
    assert _drift({"drift_failed": False, "drift_share": 0.05}) == "passed (drift share 0.05)"
    assert _drift({"drift_failed": None}) == "not run"


def test_a_night_without_a_comparison_names_the_registry_champion():
    registered = {"version": "v1", "metrics": {"accuracy": 0.9, "macro_f1": 0.887}}
    assert _champion({"champion": None}, registered) == ("v1 (accuracy 0.900, macro_f1 0.887; not re-scored this run)")
    assert _champion({"champion": {"accuracy": 0.9, "macro_f1": 0.8}}, registered) == "accuracy 0.900, macro_f1 0.800"
    assert _champion({"champion": None}, None).startswith("none")
