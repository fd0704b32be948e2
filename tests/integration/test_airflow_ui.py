"""`make airflow-ui` as a user runs it: no virtual environment on the PATH, the UI answers, the DAG is unpaused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


def _get(url: str, token: str | None = None) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _token(base: str, airflow_home: Path) -> str:
    """Log in with the admin password that `airflow standalone` generates, as its console tells the user to."""
    passwords = json.loads((airflow_home / "simple_auth_manager_passwords.json.generated").read_text())
    body = json.dumps({"username": "admin", "password": passwords["admin"]}).encode()
    request = urllib.request.Request(
        f"{base}/auth/token", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.loads(response.read())["access_token"])


@pytest.mark.timeout(420)
def test_make_airflow_ui_serves_the_unpaused_dag(tmp_path):
    port = free_port()
    airflow_home = tmp_path / "airflow_home"
    # a user's shell: the system PATH only (the venv is not activated), no Airflow variables of the test run
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    env["AIRFLOW__API__PORT"] = str(port)
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
        with urllib.request.urlopen(f"{base}/", timeout=10) as page:
            assert page.status == 200 and b"<html" in page.read().lower()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
