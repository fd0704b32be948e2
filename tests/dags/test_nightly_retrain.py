"""DAG integrity and structure: it imports cleanly, wires the stages in order and sets its policies."""

from datetime import timedelta
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


@pytest.fixture(scope="module")
def dag(dagbag):
    return dagbag.dags["nightly_retrain"]


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "nightly_retrain" in dagbag.dag_ids


def test_task_graph(dag):
    downstream = {task.task_id: sorted(task.downstream_task_ids) for task in dag.tasks}
    assert downstream == {
        "label_pull": ["ingest"],  # the reviewers' labels are tonight's review delivery
        "wait_for_erasure": ["detector", "ingest"],
        # nothing left to do after ingest: `changes` skips every later stage task without starting it
        "ingest": ["changes", "summarise", "validate"],
        "changes": ["anonymise", "detector", "evaluate", "monitor", "split", "train", "validate"],
        "validate": ["anonymise"],
        "detector": ["anonymise"],
        "anonymise": ["label_push", "monitor", "split", "summarise"],
        "split": ["train"],
        "train": ["evaluate"],
        "evaluate": ["gate", "promote", "summarise"],
        "gate": ["promote"],
        "promote": ["label_push"],  # the batch is picked by the champion that serves tomorrow
        "label_push": ["summarise"],
        "monitor": ["summarise"],
        "summarise": ["record"],
        "record": [],
    }


def test_policies(dag):
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.doc_md and "nightly_retrain" in dag.doc_md
    assert dag.timetable.expression == "0 2 * * *"
    assert "Europe/London" in str(dag.timetable.timezone)
    for task in dag.tasks:
        assert task.retries >= 1, task.task_id
        assert task.retry_delay == timedelta(minutes=5)
    assert dag.get_task("summarise").trigger_rule == "none_failed"
    assert dag.get_task("label_push").trigger_rule == "none_failed"  # runs when the gate refused (promote skipped)
    assert dag.get_task("train").queue == "gpu"
    assert dag.is_paused_upon_creation is False


@pytest.mark.parametrize("hour", [1, 2, 3, 4, 12, 23])
def test_first_run_is_the_next_scheduled_time_whatever_the_hour(dag, monkeypatch, hour):
    """Unpausing a new deployment never starts a run at once, at 02:30 as at noon (CI once ran at 02:20 and got one)."""
    import pendulum
    from airflow.serialization.decoders import decode_timetable
    from airflow.serialization.encoders import encode_timetable
    from airflow.timetables.base import TimeRestriction

    timetable = decode_timetable(encode_timetable(dag.timetable))  # what the scheduler reads from the serialised DAG

    now = pendulum.datetime(2026, 12, 6, hour, 30, tz="Europe/London")
    monkeypatch.setattr("airflow.timetables.trigger.utcnow", lambda: now.in_timezone("UTC"))
    info = timetable.next_dagrun_info(
        last_automated_data_interval=None, restriction=TimeRestriction(earliest=None, latest=None, catchup=False)
    )
    expected = now.replace(hour=2, minute=0) if hour < 2 else now.add(days=1).replace(hour=2, minute=0)
    assert info is not None and info.run_after == expected


def test_every_task_has_an_execution_timeout(dag):
    """A hung task fails instead of holding its slot forever: train gets its own, longer limit from params."""
    timeouts = {task.task_id: task.execution_timeout for task in dag.tasks}
    assert timeouts.pop("train") == timedelta(minutes=360)
    assert set(timeouts.values()) == {timedelta(minutes=60)}


def test_train_runs_on_gpu_workers_one_per_gpu(dag):
    """Only train needs a GPU: it alone goes to the gpu queue and takes a slot of the gpu pool."""
    train = dag.get_task("train")
    assert (train.queue, train.pool, train.pool_slots) == ("gpu", "gpu", 1)
    others = [task for task in dag.tasks if task.task_id != "train"]
    assert all(task.queue != "gpu" and task.pool != "gpu" for task in others)


def test_stage_tasks_match_dvc_stages(dag):
    import yaml

    stages = set(yaml.safe_load((DAGS.parent / "dvc.yaml").read_text())["stages"])
    assert stages <= {task.task_id for task in dag.tasks}


def test_dag_file_has_no_heavy_imports():
    import ast

    tree = ast.parse((DAGS / "nightly_retrain.py").read_text())
    top_level = {
        alias.name.split(".")[0]
        for node in tree.body
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }
    assert not top_level & {"torch", "transformers", "pandas", "great_expectations", "evidently", "presidio_analyzer"}


def test_stage_edges_are_dvc_yaml_edges(dag):
    """dvc.yaml owns the stage graph: the DAG's edges between stage tasks are exactly its outs -> deps edges."""
    from feedbackflow.storage.dvc import stage_edges

    expected = stage_edges(DAGS.parent / "dvc.yaml")
    stages = {name for edge in expected for name in edge}
    wired = {
        (task.task_id, downstream)
        for task in dag.tasks
        if task.task_id in stages
        for downstream in task.downstream_task_ids
        if downstream in stages
    }
    assert ("split", "train") in expected and ("anonymise", "train") not in expected
    assert ("anonymise", "monitor") in expected
    assert wired == expected


def test_manual_runs_take_typed_params(dag):
    """The trigger form shows the run-time knobs, typed; a scheduled run gets the defaults."""
    params = dag.params.dump()
    assert params == {"source": None, "force_retrain": False, "dry_run": False, "reason": "", "batch": None}
    assert dag.params.get_param("force_retrain").schema["type"] == "boolean"


def test_feedback_retrain_starts_on_either_asset_and_queues_a_nightly_run(dagbag, dag):
    feedback = dagbag.dags["feedback_retrain"]
    uris = {asset.uri for asset in feedback.timetable.asset_condition.objects}
    assert uris == {"feedbackflow://feedback/batch", "feedbackflow://drift/retrain", "feedbackflow://erasure/retrain"}
    assert feedback.params.dump() == dag.params.dump()
    trigger = feedback.get_task("start_retrain")
    assert trigger.trigger_dag_id == "nightly_retrain"
    assert feedback.is_paused_upon_creation is False


def test_required_approval_puts_the_approval_operator_between_gate_and_promote(tmp_path, monkeypatch):
    import yaml
    from airflow.dag_processing.dagbag import DagBag
    from airflow.providers.standard.operators.hitl import ApprovalOperator

    params = yaml.safe_load((DAGS.parent / "params.yaml").read_text())
    params["evaluate"].update({"require_approval": True, "approval_timeout_hours": 6})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "dvc.yaml").write_bytes((DAGS.parent / "dvc.yaml").read_bytes())  # the stage graph the DAG wires
    monkeypatch.setenv("FEEDBACKFLOW_PROJECT_DIR", str(tmp_path))
    dag = DagBag(dag_folder=str(DAGS)).dags["nightly_retrain"]
    approve = dag.get_task("approve")
    assert isinstance(approve, ApprovalOperator)
    assert sorted(dag.get_task("gate").downstream_task_ids) == ["approve"]
    assert sorted(approve.downstream_task_ids) == ["promote"]  # not summarise: a Reject must not skip it
    assert approve.defaults == ["Reject"] and approve.response_timeout == timedelta(hours=6)
    assert "xcom_pull(task_ids='gate', key='report')" in approve.body  # the gate report is the body
    assert dag.get_task("summarise").trigger_rule == "none_failed"


def test_a_leak_gate_failure_raises_the_governance_alert(dag):
    from feedbackflow.monitoring.alerts import alert_on_failure

    for task in dag.tasks:
        assert alert_on_failure in task.on_failure_callback, task.task_id


def test_a_night_waits_behind_a_running_erasure_before_its_first_stage(dag):
    """The guard sits before every stage without upstream, in the one-slot pool the erasure's guard shares."""
    from feedbackflow.settings import load_settings

    erasure = load_settings(DAGS.parent / "params.yaml").erasure
    guard = dag.get_task("wait_for_erasure")
    assert guard.upstream_task_ids == set()
    assert guard.pool == erasure.lock_pool and guard.mode == "reschedule"
    assert guard.timeout == erasure.wait_hours * 3600 and guard.poke_interval == erasure.wait_poke_seconds


def test_anonymise_shards_map_one_task_per_shard_before_anonymise(tmp_path, monkeypatch):
    """dag.anonymise_shards: 3 maps anonymise_shard over 3 shards, fed by anonymise's inputs; 1 (default) adds none."""
    import shutil

    import yaml
    from airflow.dag_processing.dagbag import DagBag

    root = DAGS.parent
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(root / name, tmp_path / name)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["dag"]["anonymise_shards"] = 3
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.setenv("FEEDBACKFLOW_PROJECT_DIR", str(tmp_path))
    dagbag = DagBag(dag_folder=str(DAGS / "nightly_retrain.py"))
    assert dagbag.import_errors == {}
    dag = dagbag.dags["nightly_retrain"]
    shard = dag.get_task("anonymise_shard")
    assert shard.op_kwargs_expand_input.value == {"shard": [0, 1, 2]}
    assert sorted(shard.upstream_task_ids) == ["detector", "validate"]  # skipped with them when nothing changed
    assert "anonymise_shard" in dag.get_task("anonymise").upstream_task_ids


def test_one_shard_adds_no_shard_task(dag):
    assert "anonymise_shard" not in dag.task_ids
