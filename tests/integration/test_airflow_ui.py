"""`make airflow-ui` as a user runs it (no virtual environment on the PATH): the UI answers, nightly_retrain is
unpaused, and feedback_retrain starts from the CLI, the REST API and an Asset event exactly as the README shows."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


def _call(url: str, token: str | None = None, body: dict | None = None, method: str | None = None) -> dict:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _get(url: str, token: str | None = None) -> dict:
    return _call(url, token)


def _token(base: str, airflow_home: Path) -> str:
    """Log in with the admin password that `airflow standalone` generates, as its console tells the user to."""
    passwords = json.loads((airflow_home / "simple_auth_manager_passwords.json.generated").read_text())
    body = json.dumps({"username": "admin", "password": passwords["admin"]}).encode()
    request = urllib.request.Request(
        f"{base}/auth/token", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return str(json.loads(response.read())["access_token"])


@pytest.mark.timeout(420)
def test_make_airflow_ui_serves_the_unpaused_dag(tmp_path):
    port = free_port()
    airflow_home = tmp_path / "airflow_home"
    # a user's shell: the system PATH only (the venv is not activated), no Airflow variables of the test run
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    env["AIRFLOW__API__PORT"] = str(port)
    env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://localhost:{port}/execution/"
    log = (tmp_path / "standalone.log").open("w")
    process = subprocess.Popen(
        ["make", "airflow-ui", f"AIRFLOW_HOME={airflow_home}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 360
        dag = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                health = _get(f"{base}/api/v2/monitor/health")
                if health["scheduler"]["status"] == "healthy":
                    dag = _get(f"{base}/api/v2/dags/nightly_retrain", _token(base, airflow_home))
                    break
            except (OSError, KeyError, ValueError):
                pass
            time.sleep(3)
        output = (tmp_path / "standalone.log").read_text()[-4000:]
        assert "FileNotFoundError" not in output, output
        assert dag is not None, f"the UI never served nightly_retrain:\n{output}"
        assert dag["is_paused"] is False
        with urllib.request.urlopen(f"{base}/", timeout=60) as page:
            assert page.status == 200 and b"<html" in page.read().lower()
        _feedback_triggers_queue_nightly_runs(base, _token(base, airflow_home), airflow_home)
    finally:
        _stop_tree(process)
        log.close()


def _stop_tree(process: subprocess.Popen) -> None:
    """Stop make, standalone and every component it started (some outlive a signal to the process group)."""
    import psutil

    tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    os.killpg(process.pid, signal.SIGTERM)
    for member in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            member.terminate()
    _, alive = psutil.wait_procs(tree, timeout=60)
    for member in alive:
        member.kill()
    process.wait(timeout=30)


def _feedback_triggers_queue_nightly_runs(base: str, token: str, airflow_home: Path) -> None:
    """CLI, REST and Asset triggers of feedback_retrain each queue one nightly_retrain run carrying their Params.

    nightly_retrain is paused first, so the queued runs are inspected, not executed in this checkout.
    """
    _call(f"{base}/api/v2/dags/nightly_retrain", token, {"is_paused": True}, method="PATCH")
    env = {**os.environ, "AIRFLOW_HOME": str(airflow_home), "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags")}
    airflow = str(Path(sys.executable).parent / "airflow")
    cli = subprocess.run(
        [airflow, "dags", "trigger", "feedback_retrain", "--conf", '{"reason": "cli: after the November campaign"}'],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert cli.returncode == 0, cli.stderr[-3000:]
    _call(
        f"{base}/api/v2/dags/feedback_retrain/dagRuns",
        token,
        {"logical_date": None, "conf": {"reason": "rest: campaign", "force_retrain": True}},
    )
    assets = _get(f"{base}/api/v2/assets?uri_pattern=feedbackflow://feedback/batch", token)["assets"]
    assert len(assets) == 1
    _call(f"{base}/api/v2/assets/events", token, {"asset_id": assets[0]["id"], "extra": {"batch": "md5:5e1f0c"}})

    deadline = time.monotonic() + 180
    confs: list[dict] = []
    while time.monotonic() < deadline and len(confs) < 3:
        time.sleep(3)
        runs = _get(f"{base}/api/v2/dags/nightly_retrain/dagRuns", token)["dag_runs"]
        confs = [run["conf"] for run in runs]
    reasons = sorted(conf.get("reason") for conf in confs)
    assert reasons == [
        "asset event on feedbackflow://feedback/batch",
        "cli: after the November campaign",
        "rest: campaign",
    ], confs
    by_reason = {conf["reason"]: conf for conf in confs}
    assert by_reason["rest: campaign"]["force_retrain"] is True
    assert by_reason["asset event on feedbackflow://feedback/batch"]["batch"] == "md5:5e1f0c"
    feedback_runs = _get(f"{base}/api/v2/dags/feedback_retrain/dagRuns", token)["dag_runs"]
    assert sorted(run["run_type"] for run in feedback_runs) == ["asset_triggered", "manual", "manual"]
