"""A request during a running night waits for it, in a real Airflow: with a ``nightly_retrain`` run running in the
metadata database, ``airflow dags test erasure_request`` pokes ``wait_for_night`` again and again until the guard
times out, and ``forget`` never runs (the night-side guard's test is in tests/unit/test_erasure_exclusion.py)."""

from __future__ import annotations

import sqlite3

import pytest

from tests.helpers import write_params

from .conftest import BIN, ROOT, airflow_env, run

pytestmark = pytest.mark.integration


def test_an_erasure_requested_during_a_night_deletes_nothing_while_it_runs(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    write_params(project, erasure={"wait_hours": 0.001, "wait_poke_seconds": 1})  # the guard gives up after 3.6 s
    (project / "dvc.yaml").write_text((ROOT / "dvc.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    env = airflow_env(project, tmp_path / "airflow")
    env |= {"AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"), "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins")}
    env["FEEDBACKFLOW_ERASURE_KEY"] = "erasure-test-key-6b1d0c8e2f"
    airflow = str(BIN / "airflow")
    run([airflow, "db", "migrate"], project, env)
    run([airflow, "dags", "reserialize"], project, env)
    run([airflow, "dags", "trigger", "nightly_retrain", "--run-id", "night1"], project, env)
    database = sqlite3.connect(tmp_path / "airflow" / "airflow.db")
    with database:  # the scheduler would do this; no scheduler runs here, so the night stays "running" throughout
        database.execute("UPDATE dag_run SET state = 'running' WHERE run_id = 'night1'")

    conf = '{"request_id": "REQ-N", "requested_by": "dpo", "email": ["jane.roe@example.com"]}'
    done = run([airflow, "dags", "test", "erasure_request", "--conf", conf], project, env, check=False)

    output = done.stdout + done.stderr
    assert done.returncode != 0 and "AirflowSensorTimeout" in output, output[-3000:]
    assert output.count("marking task as UP_FOR_RESCHEDULE") >= 2, "the guard waited (poked again), not crashed"
    states = dict(database.execute("SELECT task_id, state FROM task_instance WHERE dag_id = 'erasure_request'"))
    assert states["wait_for_night"] == "failed" and states["forget"] == "upstream_failed"
    assert not (project / "governance" / "erasure").exists(), "no certificate: nothing was erased"
