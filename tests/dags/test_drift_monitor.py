"""The drift_monitor DAG: imports cleanly, runs without retraining, schedules daily and on new batches, and emits
the retraining Asset only through the policy."""

from pathlib import Path

import pytest

from feedbackflow.assets import DRIFT_RETRAIN, RUN_RECORDED

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / "drift_monitor.py"))
    assert bag.import_errors == {}
    return bag.dags["drift_monitor"]


def test_task_graph_has_no_training(dag):
    downstream = {task.task_id: sorted(task.downstream_task_ids) for task in dag.tasks}
    assert downstream == {
        "monitor": ["record"],
        "record": ["decide"],
        "decide": ["request_retrain", "retrain_needed"],
        "retrain_needed": ["request_retrain"],
        "request_retrain": [],
    }
    assert not {"train", "evaluate", "promote"} & set(downstream)


def test_schedule_is_daily_or_on_a_new_batch(dag):
    timetable = dag.timetable
    assert type(timetable).__name__ == "AssetOrTimeSchedule"
    assert timetable.timetable.expression == "0 6 * * *"
    assert timetable.asset_condition.uri == RUN_RECORDED.uri
    assert dag.catchup is False and dag.max_active_runs == 1
    assert dag.doc_md and "drift_monitor" in dag.doc_md


def test_only_request_retrain_emits_the_retraining_asset(dag):
    emitting = {task.task_id: [outlet.name for outlet in task.outlets] for task in dag.tasks if task.outlets}
    assert emitting == {"request_retrain": [DRIFT_RETRAIN.name]}
    assert "ShortCircuit" in type(dag.get_task("retrain_needed")).__name__


def test_the_daily_drift_check_is_not_created_paused(dag):
    """It was created paused (Airflow's default), so the daily check never ran until someone found the toggle."""
    assert dag.is_paused_upon_creation is False
