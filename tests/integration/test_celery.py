"""The whole nightly_retrain DAG on the CeleryExecutor, as production runs it, on this machine's real services.

Airflow 3 runs on the machine's PostgreSQL (a database of its own: metadata and Celery results) and Redis (broker):
api-server, scheduler, dag-processor, triggerer and two Celery workers, one on queue ``default`` and one on queue
``gpu``, each a separate process with its own working directory (a git clone of the project) and its own
AIRFLOW_HOME. The landing feedback is in S3 and both DVC remotes are S3 buckets (moto's server on loopback), so
stage data can only move between workers through the remotes.

Two runs are triggered together (a "nightly" one and a manual ``force_retrain`` one): ``max_active_runs=1``
serialises them. The GPU worker is killed with SIGKILL while the second run trains; the scheduler fails the task
once its heartbeat stops, the retry goes to a replacement GPU worker on a fresh workspace, which resumes from the
checkpoint the killed worker left in shared storage, and the run completes.
"""

from __future__ import annotations

import json
import random
import re
import time
import uuid

import pytest
import yaml

from tests.servers import POSTGRES_SERVER, S3_CREDENTIALS, free_port, s3_client
from tools.cluster import WORKERS, CeleryCluster, clone_workspaces, running

from .conftest import BIN, PSEUDONYM_CONN_ID, PSEUDONYM_KEY, make_project, run

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]  # the first test builds and runs the cluster

REDIS = ("127.0.0.1", 6379)
BUCKETS = {"landing": "ff-landing", "general": "ff-general", "restricted": "ff-restricted"}
RUNS = {"celery-nightly": {"reason": "nightly"}, "celery-manual": {"force_retrain": True, "reason": "campaign"}}
STAGES = ("ingest", "validate", "anonymise", "split", "train", "evaluate", "monitor")
DEFAULT_2 = "worker-default-2"  # a second default-queue worker on a workspace of its own


def _services_or_skip() -> None:
    import psycopg
    import redis

    try:
        psycopg.connect(f"{POSTGRES_SERVER} dbname=postgres", connect_timeout=5).close()
        redis.Redis(*REDIS, socket_connect_timeout=5).ping()
    except (psycopg.OperationalError, redis.exceptions.ConnectionError) as error:
        pytest.skip(f"the Celery test needs PostgreSQL and Redis on this machine; absent: {error}")


@pytest.fixture(scope="module")
def s3():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = s3_client(endpoint)
    for bucket in BUCKETS.values():
        client.create_bucket(Bucket=bucket)
    yield endpoint, client
    server.stop()


@pytest.fixture(scope="module")
def database():
    import psycopg

    name = f"feedbackflow_celery_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{POSTGRES_SERVER} dbname=postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    conninfo = dict(part.split("=", 1) for part in POSTGRES_SERVER.split())
    url = f"postgresql+psycopg://{conninfo.get('user', 'postgres')}@{conninfo['host']}:{conninfo['port']}/{name}"
    yield url, f"{POSTGRES_SERVER} dbname={name}"
    with psycopg.connect(f"{POSTGRES_SERVER} dbname=postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _query(dsn: str, sql: str, *args: object) -> list[tuple]:
    import psycopg

    with psycopg.connect(dsn) as connection:
        return connection.execute(sql, args).fetchall()


def _wait(condition, timeout_s: float, what: str, cluster: CeleryCluster, every: float = 2.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        for name, process in cluster.processes.items():
            assert process.poll() is None or name == "worker-gpu", f"{name} died: {cluster.base / (name + '.log')}"
        time.sleep(every)
    logs = {name: (cluster.base / f"{name}.log").read_text(errors="replace")[-1500:] for name in cluster.processes}
    raise AssertionError(f"timed out waiting for {what}:\n{json.dumps(logs, indent=1)}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, s3, database):
    _services_or_skip()
    import redis

    endpoint, client = s3
    database_url, dsn = database
    base = tmp_path_factory.mktemp("celery")
    project = make_project(base, ingest={"source": "s3", "s3": {"bucket": BUCKETS["landing"], "prefix": "feedback"}})
    for path in sorted((project / "data" / "landing").rglob("*")):  # the delivery lands in S3, not on a disk
        if path.is_file():
            key = f"feedback/{path.relative_to(project / 'data' / 'landing').as_posix()}"
            client.upload_file(str(path), BUCKETS["landing"], key)
    params = yaml.safe_load((project / "params.yaml").read_text())
    # long enough to be killed mid-way, with checkpoints every few steps (copied to shared storage)
    params["train"].update({"epochs": 8, "checkpoint_steps": 4, "early_stopping_patience": 0, "num_threads": 1})
    # two anonymise shards, for the two default workers below: a night's anonymising spread over machines
    params["dag"].update({"retries": 1, "retry_delay_minutes": 0.05, "anonymise_shards": 2})
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "celery test params"], project)
    s3_env = {**S3_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}
    remotes = [
        str(BIN / "feedbackflow"),
        "remotes",
        "--general",
        f"s3://{BUCKETS['general']}/dvc",
        "--restricted",
        f"s3://{BUCKETS['restricted']}/dvc",
        "--endpoint-url",
        endpoint,
    ]
    run(remotes, project, {**s3_env, "PATH": f"{BIN}:/usr/bin:/bin", "FEEDBACKFLOW_PROJECT_DIR": str(project)})
    workspaces = clone_workspaces(project, base, ["control", *WORKERS, "worker-gpu-2", DEFAULT_2])
    broker_db = random.randint(1, 15)
    redis.Redis(*REDIS, db=broker_db).flushdb()
    extra_env = {
        **s3_env,
        f"AIRFLOW_CONN_{PSEUDONYM_CONN_ID.upper()}": json.dumps({"conn_type": "generic", "password": PSEUDONYM_KEY}),
        "FEEDBACKFLOW_PSEUDONYM_KEY_CONN_ID": PSEUDONYM_CONN_ID,
    }
    cluster = CeleryCluster(
        base / "cluster",
        workspaces,
        database_url,
        f"redis://{REDIS[0]}:{REDIS[1]}/{broker_db}",
        extra_env,
        heartbeat_timeout_s=20,
    )
    cluster.base.mkdir()
    with running(cluster):
        cluster.start_worker("worker-default", name=DEFAULT_2)  # a second machine on the default queue
        yield cluster, dsn, client
    redis.Redis(*REDIS, db=broker_db).flushdb()


@pytest.fixture(scope="module")
def runs(cluster):
    cluster, dsn, client = cluster
    dags = _wait(
        lambda: len(_query(dsn, "SELECT dag_id FROM dag")) >= 3, 240, "the dag-processor to parse the DAGs", cluster
    )
    assert dags
    for dag_id in ("drift_monitor", "feedback_retrain"):  # this test is about nightly_retrain alone
        cluster.airflow("dags", "pause", dag_id)
    for run_id, conf in RUNS.items():  # both at once: a nightly run and a person's run
        cluster.airflow("dags", "trigger", "nightly_retrain", "--run-id", run_id, "--conf", json.dumps(conf))

    nightly, manual = RUNS

    def checkpoint_in_shared_storage() -> bool:
        state = _query(dsn, "SELECT state FROM dag_run WHERE run_id = %s", nightly)
        if state and state[0][0] == "failed":
            failed = _query(dsn, "SELECT task_id, state, try_number FROM task_instance WHERE state = 'failed'")
            raise AssertionError(f"the first run failed: {failed}; logs under {cluster.base}")
        listed = client.list_objects_v2(Bucket=BUCKETS["general"], Prefix="dvc/checkpoints/").get("KeyCount", 0)
        if not (state and state[0][0] == "success" and listed):
            return False
        # the copy's log line follows the upload: wait until it has streamed into the running task's log
        streamed = cluster.task_log("worker-gpu", manual, "train")
        return bool(streamed and "copied to s3://" in streamed.read_text())

    _wait(checkpoint_in_shared_storage, 900, "the manual run's training to write a checkpoint", cluster, every=0.5)
    streamed = cluster.task_log("worker-gpu", manual, "train")
    log_at_kill = streamed.read_text() if streamed else ""
    cluster.kill("worker-gpu")  # the GPU machine is lost mid-training
    cluster.start_worker("worker-gpu", name="worker-gpu-2")  # a replacement, on a fresh workspace

    def finished() -> list[tuple]:
        # nightly_retrain's runs only: drift_monitor, created unpaused, may start its own before the pause above
        rows = _query(
            dsn,
            "SELECT run_id, state, start_date, end_date FROM dag_run WHERE dag_id = 'nightly_retrain' "
            "ORDER BY start_date",
        )
        return rows if len(rows) == 2 and all(row[1] in ("success", "failed") for row in rows) else []

    dag_runs = _wait(finished, 900, "both runs to finish", cluster)
    tasks = _query(
        dsn, "SELECT run_id, task_id, state, try_number, queue FROM task_instance WHERE dag_id = 'nightly_retrain'"
    )
    return cluster, client, dag_runs, tasks, log_at_kill


def test_both_runs_succeed_one_after_the_other(runs):
    _, _, dag_runs, tasks, _ = runs
    assert [(run_id, state) for run_id, state, *_ in dag_runs] == [(run_id, "success") for run_id in RUNS], tasks
    (_, _, _, first_end), (_, _, second_start, _) = dag_runs
    assert second_start >= first_end, "max_active_runs=1 must serialise runs that touch the same model"


def test_each_worker_ran_its_queue(runs):
    """Which worker ran which task: each worker writes the logs of the tasks it ran into its own AIRFLOW_HOME."""
    cluster, _, _, tasks, _ = runs
    ran_by = {}
    for run_id, task_id, _state, try_number, queue in tasks:
        workers = [name for name in cluster.processes if cluster.task_log(name, run_id, task_id, try_number)]
        ran_by[(run_id, task_id)] = (queue, workers)
    print(
        "\n".join(f"{run_id:15} {task:10} queue={queue:8} worker={w}" for (run_id, task), (queue, w) in ran_by.items())
    )
    for run_id in RUNS:
        for stage in STAGES:
            queue, workers = ran_by[(run_id, stage)]
            default = ("default", {"worker-default", DEFAULT_2})
            expected = ("gpu", {"worker-gpu", "worker-gpu-2"}) if stage == "train" else default
            assert queue == expected[0] and set(workers) <= expected[1] and workers, (run_id, stage, workers)


def test_killed_training_resumed_on_the_replacement_worker(runs):
    cluster, client, _, tasks, log_at_kill = runs
    manual = list(RUNS)[1]
    # the killed attempt's log already held the training's progress: it reached the task log while the stage ran
    assert "checkpoint saved at step" in log_at_kill and "copied to s3://" in log_at_kill, log_at_kill[-2000:]
    train = [row for row in tasks if row[0] == manual and row[1] == "train"]
    assert train and train[0][3] == 2, f"the killed attempt must be retried once: {train}"
    retried = cluster.task_log("worker-gpu-2", manual, "train", attempt=2)
    assert retried is not None, "the retry did not run on the replacement GPU worker"
    text = retried.read_text()
    assert "restored checkpoint(s)" in text and "resuming from checkpoint step" in text, text[-3000:]
    leftover = client.list_objects_v2(Bucket=BUCKETS["general"], Prefix="dvc/checkpoints/").get("KeyCount", 0)
    assert leftover == 0, "a finished training must remove its shared checkpoints"


def test_no_task_read_another_workers_disk_and_restricted_data_stayed_in_its_bucket(runs):
    cluster, client, *_ = runs
    gpu_workspace = cluster.workspaces["worker-gpu-2"]
    for restricted in ("data/raw", "data/validated", "data/quarantine", "data/held_back"):
        assert not (gpu_workspace / restricted).exists(), f"{restricted} reached the GPU worker's disk"
    assert (gpu_workspace / "models" / "challenger" / "model.safetensors").is_file()
    assert not (cluster.workspaces["control"] / "data" / "anonymised").exists(), "the control plane ran a stage"

    def hashes(bucket: str) -> set[str]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="dvc/files/md5/")
        return {"".join(item["Key"].split("/")[-2:]) for page in pages for item in page.get("Contents", [])}

    general, restricted = hashes(BUCKETS["general"]), hashes(BUCKETS["restricted"])
    assert restricted and general
    assert not general & restricted, "a restricted object reached the general bucket"
    lock = yaml.safe_load((cluster.workspaces["worker-default"] / "dvc.lock").read_text())["stages"]
    outs = {out["path"]: out["md5"] for name in ("ingest", "validate") for out in lock[name]["outs"]}
    for path in ("data/raw", "data/validated", "data/quarantine"):  # the outputs dvc.yaml sends to `restricted`
        assert outs[path] in restricted and outs[path] not in general, path
    assert outs["reports/validate/validate.json"] in general
    registry = client.list_objects_v2(Bucket=BUCKETS["general"], Prefix="dvc/registry/").get("Contents", [])
    assert any(item["Key"].endswith("state-00000001.json") for item in registry), "no champion in the registry"


def test_anonymise_shards_ran_on_default_workers_and_anonymise_took_their_parts(runs):
    """The nightly run's two anonymise_shard tasks (mapped) ran on the default workers, each on its own workspace, and
    handed their parts over through the remotes to the anonymise task, wherever it ran."""
    cluster, _, _, tasks, _ = runs
    nightly = next(iter(RUNS))
    shards = [row for row in tasks if row[0] == nightly and row[1] == "anonymise_shard"]
    assert len(shards) == 2 and all(row[2] == "success" for row in shards), shards
    ran_on: dict[int, str] = {}
    for name in ("worker-default", DEFAULT_2):
        pattern = f"dag_id=*/run_id={nightly}/task_id=anonymise_shard/map_index=*/attempt=*.log"
        for log in (cluster.home(name) / "logs").glob(pattern):
            ran_on[int(log.parent.name.split("=")[1])] = name
            assert "pushed to the remotes" in log.read_text()
    print(f"anonymise shards ran on: {ran_on}")
    assert set(ran_on) == {0, 1}
    logs = [cluster.task_log(name, nightly, "anonymise") for name in ("worker-default", DEFAULT_2)]
    text = next(log for log in logs if log is not None).read_text()
    taken = re.search(r'batches_from_shards\\?": (\d+)', text)  # in the stage's JSON, quoted in the log line
    assert taken and int(taken.group(1)) >= 1, text[-3000:]
