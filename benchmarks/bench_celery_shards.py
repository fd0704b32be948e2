"""One night's anonymise on the Celery topology: one default worker against two workers running two shards.

Builds the Celery test's deployment (``tools/cluster.py``: Airflow 3 on this machine's PostgreSQL and Redis, S3
remotes on moto's server, each worker on its own workspace, nothing shared on disk) twice, on the same delivery:

* **one worker**: ``dag.anonymise_shards: 1``, one ``default`` worker; the ``anonymise`` task does every batch;
* **two workers**: ``dag.anonymise_shards: 2`` and a second ``default`` worker on a workspace of its own; two mapped
  ``anonymise_shard`` tasks anonymise half of the batches each and hand their parts over through the remotes, and the
  ``anonymise`` task takes them.

Each deployment runs one ``nightly_retrain`` dry run (ingest, validate, anonymise). From the metadata database it
reads when the anonymising began (the first shard's start, or the ``anonymise`` task's) and when ``anonymise``
ended: rows per second is the night's anonymised rows over that window. The two nights' anonymised rows (values and
order, less the batch ids, which ingest makes from the delivery time) must be equal or the bench fails. Every
component and worker of both deployments runs on this one machine, so two workers share its cores with each other
and with the control plane: one run per configuration, side by side; read the ratio, not the seconds.

    python -m benchmarks.bench_celery_shards [--batches 8] [--rows 1000] [--threads 1] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

from tests.integration.conftest import BIN, PSEUDONYM_CONN_ID, PSEUDONYM_KEY, airflow_env, make_project, run
from tests.servers import POSTGRES_SERVER, S3_CREDENTIALS, free_port, s3_client
from tools.cluster import CeleryCluster, clone_workspaces, running

REDIS = ("127.0.0.1", 6379)
BANKING77 = Path(__file__).resolve().parents[1] / "data" / "banking77"
SECOND = "worker-default-2"


def _query(dsn: str, sql: str, *args: object) -> list[tuple]:
    import psycopg

    with psycopg.connect(dsn) as connection:
        return connection.execute(sql, args).fetchall()


def _database() -> tuple[str, str, str]:
    """A fresh metadata database: its name, SQLAlchemy URL and psycopg DSN."""
    import psycopg

    name = f"feedbackflow_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{POSTGRES_SERVER} dbname=postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    info = dict(part.split("=", 1) for part in POSTGRES_SERVER.split())
    url = f"postgresql+psycopg://{info.get('user', 'postgres')}@{info['host']}:{info['port']}/{name}"
    return name, url, f"{POSTGRES_SERVER} dbname={name}"


def _drop(name: str) -> None:
    import psycopg

    with psycopg.connect(f"{POSTGRES_SERVER} dbname=postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _project(base: Path, endpoint: str, buckets: dict[str, str], shards: int, batches: int, rows: int) -> Path:
    """The Celery test's project with ``batches`` deliveries of ``rows`` rows in S3 and ``shards`` anonymise shards."""
    client = s3_client(endpoint)
    for bucket in buckets.values():
        client.create_bucket(Bucket=bucket)
    project = make_project(base, ingest={"source": "s3", "s3": {"bucket": buckets["landing"], "prefix": "feedback"}})
    landing = project / "data" / "landing"
    for path in landing.iterdir():  # make_project's 300-row night: replaced by the bench's deliveries
        path.unlink()
    # BANKING77 text (10,003 messages) instead of the tests' 360-row corpus, and its 77 intents as the taxonomy
    shutil.copy(BANKING77 / "categories.json", project / "data" / "labels.json")
    generate = [str(BIN / "feedbackflow"), "generate", "--corpus", str(BANKING77 / "train.csv")]
    generate += ["--label-column", "category", "--nights", str(batches), "--rows-per-night", str(rows)]
    run([*generate, "--pii-share", "0.2", "--dirt-share", "0.02"], project, airflow_env(project, base / "airflow"))
    for path in sorted(landing.rglob("*")):
        if path.is_file():
            client.upload_file(str(path), buckets["landing"], f"feedback/{path.relative_to(landing).as_posix()}")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["dag"].update({"retries": 0, "anonymise_shards": shards})
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "bench params"], project)
    env = {**S3_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, "PATH": f"{BIN}:/usr/bin:/bin"}
    remotes = [str(BIN / "feedbackflow"), "remotes", "--general", f"s3://{buckets['general']}/dvc"]
    remotes += ["--restricted", f"s3://{buckets['restricted']}/dvc", "--endpoint-url", endpoint]
    run(remotes, project, {**env, "FEEDBACKFLOW_PROJECT_DIR": str(project)})
    return project


def _night(base: Path, endpoint: str, shards: int, batches: int, rows: int, threads: int | None) -> dict[str, Any]:
    """Deploy, run one dry-run night, and read the anonymising window, the rows and the output hash."""
    import redis

    tag = f"k{shards}-{uuid.uuid4().hex[:6]}"
    buckets = {role: f"ff-bench-{tag}-{role}" for role in ("landing", "general", "restricted")}
    project = _project(base, endpoint, buckets, shards, batches, rows)
    workers = ["worker-default", "worker-gpu", *([SECOND] if shards > 1 else [])]
    workspaces = clone_workspaces(project, base, ["control", *workers])
    name, url, dsn = _database()
    broker = random.randint(1, 15)
    redis.Redis(*REDIS, db=broker).flushdb()
    extra = {**S3_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint, "FEEDBACKFLOW_PSEUDONYM_KEY_CONN_ID": PSEUDONYM_CONN_ID}
    extra[f"AIRFLOW_CONN_{PSEUDONYM_CONN_ID.upper()}"] = json.dumps({"conn_type": "generic", "password": PSEUDONYM_KEY})
    if threads:  # each worker as a machine with this many cores: its stage processes use no more threads
        extra |= {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    cluster = CeleryCluster(base / "cluster", workspaces, url, f"redis://{REDIS[0]}:{REDIS[1]}/{broker}", extra)
    cluster.base.mkdir()
    try:
        with running(cluster):
            if shards > 1:
                cluster.start_worker("worker-default", name=SECOND)
            _until(lambda: len(_query(dsn, "SELECT dag_id FROM dag")) >= 3, 300, "the DAGs to be parsed")
            for dag_id in ("drift_monitor", "feedback_retrain"):
                cluster.airflow("dags", "pause", dag_id)
            conf = json.dumps({"dry_run": True, "reason": "bench"})
            cluster.airflow("dags", "trigger", "nightly_retrain", "--run-id", tag, "--conf", conf)
            state = _until(lambda: _finished(dsn, tag), 1800, "the night to finish")
            tasks = _query(
                dsn,
                "SELECT task_id, map_index, state, start_date, end_date FROM task_instance WHERE run_id = %s",
                tag,
            )
            if state != "success":
                raise SystemExit(f"the night failed ({tag}): {tasks}; logs under {cluster.base}")
            return _figures(cluster, tag, tasks, workers)
    finally:
        redis.Redis(*REDIS, db=broker).flushdb()
        _drop(name)


def _until(condition: Any, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(2)
    raise SystemExit(f"timed out waiting for {what}")


def _finished(dsn: str, run_id: str) -> str | None:
    rows = _query(dsn, "SELECT state FROM dag_run WHERE run_id = %s", run_id)
    return rows[0][0] if rows and rows[0][0] in ("success", "failed") else None


def _figures(cluster: CeleryCluster, run_id: str, tasks: list[tuple], workers: list[str]) -> dict[str, Any]:
    """The anonymising window (first shard or anonymise start to anonymise end), the rows and the output's hash."""
    anonymise = next(row for row in tasks if row[0] == "anonymise")
    shards = [row for row in tasks if row[0] == "anonymise_shard"]
    began = min(row[3] for row in [anonymise, *shards])
    seconds = (anonymise[4] - began).total_seconds()
    ran_on = next(name for name in workers if cluster.task_log(name, run_id, "anonymise"))
    workspace = cluster.workspaces[ran_on]
    report = json.loads((workspace / "reports" / "anonymise" / "anonymise.json").read_text())
    lock = yaml.safe_load((workspace / "dvc.lock").read_text())["stages"]["anonymise"]["outs"]
    shard_workers = {}
    for name in workers:
        pattern = f"dag_id=*/run_id={run_id}/task_id=anonymise_shard/map_index=*/attempt=*.log"
        for log in (cluster.home(name) / "logs").glob(pattern):
            shard_workers[log.parent.name] = name
    rows = int(report["rows"])
    return {
        "rows": rows,
        "seconds": round(seconds, 1),
        "rows_per_second": round(rows / seconds, 1),
        "shard_seconds": [round((row[4] - row[3]).total_seconds(), 1) for row in sorted(shards, key=lambda r: r[1])],
        "anonymise_task_seconds": round((anonymise[4] - anonymise[3]).total_seconds(), 1),
        "batches_from_shards": report.get("incremental", {}).get("batches_from_shards"),
        "shards_ran_on": shard_workers,
        "anonymised_md5": next(out["md5"] for out in lock if out["path"] == "data/anonymised"),
        "rows_sha256": _rows_digest(workspace / "data" / "anonymised"),
    }


def _rows_digest(folder: Path) -> str:
    """SHA-256 of the anonymised rows in published order, less their batch ids (ingest names a batch by its time)."""
    from feedbackflow.storage import partitions

    frame = partitions.read_frame(folder).drop(columns=["batch_id"])
    return hashlib.sha256(frame.to_json(orient="split", index=False).encode()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=8, help="deliveries in the night (a shard's unit is a batch)")
    parser.add_argument("--rows", type=int, default=1000, help="rows per delivery")
    parser.add_argument(
        "--threads", type=int, help="threads per worker's stage process (1: a one-core machine; default: all)"
    )
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every S3 request
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    figures: dict[str, Any] = {"batches": args.batches, "rows_per_batch": args.rows, "threads_per_worker": args.threads}
    try:
        for shards, label in ((1, "one_worker"), (2, "two_workers")):
            with tempfile.TemporaryDirectory(prefix=f"bench-celery-{label}-") as base:
                endpoint = f"http://127.0.0.1:{port}"
                figures[label] = _night(Path(base), endpoint, shards, args.batches, args.rows, args.threads)
                print(label, json.dumps(figures[label]), flush=True)
    finally:
        server.stop()
    one, two = figures["one_worker"], figures["two_workers"]
    if one["rows_sha256"] != two["rows_sha256"]:
        raise SystemExit("the two workers' anonymised rows differ from one worker's")
    figures["speed_up"] = round(two["rows_per_second"] / one["rows_per_second"], 2)
    print(
        f"one worker {one['rows_per_second']} rows/s ({one['rows']} rows, {one['seconds']} s); two workers "
        f"{two['rows_per_second']} rows/s ({two['seconds']} s): {figures['speed_up']}x, outputs identical"
    )
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
