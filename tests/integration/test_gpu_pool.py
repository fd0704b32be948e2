"""`feedbackflow pools` creates the train task's pool (sized from params.yaml) and the erasure guards' one-slot pool in
a real Airflow metadata database."""

from __future__ import annotations

import json

import pytest

from .conftest import BIN, ROOT, airflow_env, run

pytestmark = pytest.mark.integration


def test_pools_command_creates_the_gpu_pool(tmp_path):
    env = airflow_env(ROOT, tmp_path / "airflow")
    run([str(BIN / "airflow"), "db", "migrate"], ROOT, env)
    done = run([str(BIN / "feedbackflow"), "pools"], ROOT, env)
    assert "pool gpu: 1 slot(s)" in done.stdout
    pools = json.loads(run([str(BIN / "airflow"), "pools", "get", "gpu", "--output", "json"], ROOT, env).stdout)
    assert [(pool["pool"], int(pool["slots"])) for pool in pools] == [("gpu", 1)]
    assert "pool erasure_lock: 1 slot" in done.stdout
    lock = json.loads(run([str(BIN / "airflow"), "pools", "get", "erasure_lock", "--output", "json"], ROOT, env).stdout)
    assert [(pool["pool"], int(pool["slots"])) for pool in lock] == [("erasure_lock", 1)]
