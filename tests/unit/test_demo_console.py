"""What the demo's console says: the stages' progress as they run, the champion and the drift check's verdict."""

from __future__ import annotations

from feedbackflow.demo.run import _champion, _drift, _held_back, console_line


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
    skipped = {"ran": False, "champion": None, "gate": {"decision": "skipped"}}
    assert _champion(skipped, registered).startswith("v1 (")


def test_the_first_night_says_no_champion_before_though_the_registry_now_holds_the_model_it_promoted():
    promoted_tonight = {"version": "v1", "metrics": {"accuracy": 0.9, "macro_f1": 0.887}}
    first_night = {"ran": True, "champion": None, "gate": {"decision": "promote", "promote": True}}
    assert _champion(first_night, promoted_tonight).startswith("none")


def test_held_back_rows_by_reason_with_a_planted_value_missed_in_red_on_a_terminal(monkeypatch):
    import sys

    anonymise = {
        "rows_held_back": 4,
        "rows_held_back_by_language": {"zh": 2},
        "leak_gate": {"planted_value_missed": 1, "canary_hits": {"PERSON": 1}, "second_scan_rows": 1},
    }
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert _held_back(anonymise) == (
        "4 rows, \033[31mplanted value missed in 1 (PERSON)\033[0m, second scan 1, language zh 2"
    )
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)  # a log file: capitals instead of colour
    assert "PLANTED VALUE MISSED IN 1 (PERSON)" in _held_back(anonymise)
    assert _held_back({"rows_held_back": 0, "leak_gate": {}}) == "0 rows"


#: Lines of a real ``airflow dags test nightly_retrain`` output (Airflow 3's structured log around the stage's own log)
DAGS_TEST = [
    "2026-12-06T06:20:53.545907Z [info     ] [DAG TEST] starting task_id=ingest map_index=-1 "
    "[airflow.sdk.definitions.dag] loc=dag.py:1501",
    "2026-12-06T06:21:24.798446Z [info     ] Running stage 'ingest':        [feedbackflow.storage.dvc] loc=dvc.py:113",
    "2026-12-06T06:21:25.761908Z [info     ] 2026-12-06 06:21:25,757 INFO feedbackflow.stages.ingest: ingest (folder): "
    "1 new batch(es), 1 duplicate(s) skipped [feedbackflow.storage.dvc] loc=dvc.py:113",
    '2026-12-06T06:21:25.762385Z [info     ]   "batches_total": 2,          [feedbackflow.storage.dvc] loc=dvc.py:113',
    "2026-12-06T06:24:01.000000Z [info     ] 2026-12-06 06:24:00,993 INFO feedbackflow.modeling.trainer: train step "
    "40/200 (epoch 0.40), about 4 min left [feedbackflow.storage.dvc] loc=dvc.py:113",
    "2026-12-06T06:25:01.000000Z [info     ] 2026-12-06 06:25:00,100 WARNING feedbackflow.storage.partitions: part 3 "
    "is corrupted: redone [feedbackflow.storage.dvc] loc=dvc.py:113",
    "2026-12-06T06:21:17.913843Z [info     ] Updating RenderedTaskInstanceFields [airflow.api_fastapi] loc=ti.py:1017",
    "Traceback (most recent call last):",
]


def test_the_console_shows_each_task_and_the_stages_own_lines_as_they_run():
    assert [text for text in map(console_line, DAGS_TEST) if text is not None] == [
        "06:20:53 task ingest",
        "Running stage 'ingest':",
        "06:21:25   ingest (folder): 1 new batch(es), 1 duplicate(s) skipped",
        "06:24:00   train step 40/200 (epoch 0.40), about 4 min left",
        "06:25:00   WARNING: part 3 is corrupted: redone",
    ]
