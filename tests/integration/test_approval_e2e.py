"""Human approval through Airflow for real: the DAG run waits in `approve`, a user answers, the registry records it.

Two nights on one tiny project with ``evaluate.require_approval: true``: the first challenger is rejected by one
user (kept in the registry as rejected, champion unchanged, promote skipped), the next night's is approved by
another and promoted with the approver's name.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from .conftest import BIN, airflow_env, make_project, run

pytestmark = pytest.mark.integration

RESPOND = Path(__file__).with_name("hitl_respond.py")


def _night_with_answer(project: Path, option: str, user: str) -> tuple[str, str]:
    """Run the DAG once; answer its approval task with ``option`` as ``user``; return the DAG log and the body."""
    env = airflow_env(project, project.parent / "airflow")
    log_file = project.parent / f"dags-test-{option}.log"
    with log_file.open("w") as sink:  # a file, not a pipe: nobody would read a pipe while the run waits for input
        dag = subprocess.Popen(
            [str(BIN / "airflow"), "dags", "test", "nightly_retrain"],
            cwd=project,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            command = [str(BIN / "python"), str(RESPOND), "nightly_retrain", "approve", option, user, "900"]
            answer = run(command, project, env)
            dag.wait(timeout=900)
        finally:
            if dag.poll() is None:
                dag.kill()
    log = log_file.read_text()
    assert dag.returncode == 0, log[-6000:]
    assert "Waiting for Human-in-the-loop input for tasks: ['approve']" in log  # the run really waited
    return log, answer.stdout


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    project = make_project(tmp_path_factory.mktemp("approval"))
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["evaluate"].update({"require_approval": True, "approval_timeout_hours": 1})
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return project


def _registry(project: Path) -> dict:
    return json.loads((project / "registry" / "registry.json").read_text())


def test_a_rejected_challenger_is_recorded_and_not_promoted(project):
    _log, answer = _night_with_answer(project, "Reject", "alice")
    assert "SUBJECT: Promote the challenger of run" in answer
    assert "# Gate report: challenger vs no champion" in answer  # the gate report is the approval body
    assert "PASSED (awaiting approval)" in answer
    state = _registry(project)
    assert state["champion"] is None
    [entry] = state["versions"]
    assert entry["status"] == "rejected" and entry["rejected_by"] == "alice"
    assert entry["gate"]["report"]["markdown"]
    summary = json.loads((project / "reports" / "run_summary.json").read_text())
    assert summary["evaluate"]["gate"]["decision"] == "rejected by approver"
    assert summary["evaluate"]["approval"] == {"approved": False, "by": "alice"}
    assert not (project / "models" / "champion.dvc").exists()


def test_the_next_night_waits_again_and_promotes_on_approve(project):
    env = airflow_env(project, project.parent / "airflow")
    run(
        [
            str(BIN / "feedbackflow"),
            "generate",
            "--corpus",
            str(project / "corpus.csv"),
            "--label-column",
            "label",
            "--nights",
            "2",
            "--first-night",
            "2",
            "--rows-per-night",
            "150",  # the tiny corpus holds 360 messages: two nights of 150
            "--pii-share",
            "0.2",
            "--dirt-share",
            "0.02",
        ],
        project,
        env,
    )
    _night_with_answer(project, "Approve", "bob")
    state = _registry(project)
    assert state["champion"] == "v2"
    assert [(v["version"], v["status"]) for v in state["versions"]] == [("v1", "rejected"), ("v2", "champion")]
    assert state["versions"][1]["approved_by"] == "bob"
    summary = json.loads((project / "reports" / "run_summary.json").read_text())
    assert summary["evaluate"]["gate"]["decision"] == "approved"
    assert summary["champion"]["version"] == "v2"
