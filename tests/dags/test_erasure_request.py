"""The erasure_request DAG: imports cleanly, runs only when triggered, takes typed Params, and asks for approval
before anything is deleted when params.yaml says so."""

from pathlib import Path

import pytest
import yaml

from feedbackflow.assets import ERASURE_RETRAIN

ROOT = Path(__file__).resolve().parents[2]


def load(project: Path):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "erasure_request.py"))
    assert bag.import_errors == {}
    return bag.dags["erasure_request"]


@pytest.fixture(scope="module")
def dag():
    return load(ROOT)


def test_it_runs_only_when_triggered_and_one_at_a_time(dag):
    assert type(dag.timetable).__name__ == "NullTimetable"
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert dag.doc_md and "erasure_request" in dag.doc_md


def test_params_are_typed_and_require_a_request_id(dag):
    params = dag.params
    assert params.get_param("request_id").schema["minLength"] == 1
    for name in ("email", "phone", "customer_id", "name"):
        assert params.get_param(name).schema["type"] == "array"
    with pytest.raises(Exception, match=r"request_id|minLength|too short|should be non-empty"):
        params.get_param("request_id").resolve("")


def test_only_a_retraining_request_emits_the_asset(dag):
    downstream = {task.task_id: sorted(task.downstream_task_ids) for task in dag.tasks}
    assert downstream == {
        "wait_for_night": ["forget"],
        "forget": ["request_retrain", "retrain_needed"],
        "retrain_needed": ["request_retrain"],
        "request_retrain": [],
    }
    emitting = {task.task_id: [outlet.name for outlet in task.outlets] for task in dag.tasks if task.outlets}
    assert emitting == {"request_retrain": [ERASURE_RETRAIN.name]}
    assert dag.get_task("forget").retries == 0  # deleting again cannot fix what failed: a person resumes it


def test_with_approval_required_nothing_is_deleted_before_a_person_approves(tmp_path, monkeypatch):
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    params["erasure"]["require_approval"] = True
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    (tmp_path / "dvc.yaml").write_text((ROOT / "dvc.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setenv("FEEDBACKFLOW_PROJECT_DIR", str(tmp_path))

    dag = load(tmp_path)

    approve = dag.get_task("approve")
    assert type(approve).__name__ == "ApprovalOperator"
    assert approve.downstream_task_ids == {"wait_for_night"}  # approved first: a pending approval holds no night
    assert dag.get_task("wait_for_night").downstream_task_ids == {"forget"}
    assert "Reject" in str(approve.defaults)


def test_nothing_is_deleted_while_a_night_runs(dag):
    """forget waits behind a guard that shares the night guard's one-slot pool (see orchestration/exclusion.py)."""
    from feedbackflow.settings import load_settings

    guard = dag.get_task("wait_for_night")
    assert dag.get_task("forget").upstream_task_ids == {"wait_for_night"}
    assert guard.pool == load_settings(ROOT / "params.yaml").erasure.lock_pool == "erasure_lock"
    assert guard.mode == "reschedule" and guard.retries == 0
