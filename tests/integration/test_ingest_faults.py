"""Network faults during ingest, with a real S3 endpoint (moto's server on loopback) that goes away and comes back.

* stopped for 30 s in the middle of a run: the stage's bounded backoff rides it out and the run succeeds;
* PostgreSQL cut off for 15 s between two batches (a loopback proxy in front of the machine's server goes away):
  the stage resumes from the manifest, nothing lost or doubled;
* stopped for good: the stage fails once its tries are spent, naming the endpoint and never a credential; nothing
  half-written is left in the raw store, and a re-run after the endpoint returns completes, nothing twice;
* an ingest task that fails after appending a batch (a PostgreSQL row the driver cannot read, mid-delivery): the
  runner rolls the raw store back, so the fixed rerun sees no half delivery and takes every row once.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid

import pytest

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import SourceUnavailableError
from feedbackflow.sources import s3 as s3_source
from feedbackflow.stages import ingest
from feedbackflow.storage.manifest import read_manifest
from tests.helpers import params_settings
from tests.servers import LoopbackS3, TcpProxy, loopback_s3, postgres_dsn, s3_client  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration

OUTAGE_SECONDS = 30
PLANTED_SECRET = "PLANTED-aws-secret-7c1e9f0b2d4a"
OBJECTS = {f"exports/night-{n}.csv": f"id,text\n{n},message {n}\n".encode() for n in range(1, 4)}


def _bucket(server: LoopbackS3) -> str:
    name = f"feedback-{uuid.uuid4().hex[:8]}"
    client = s3_client(server.url)
    client.create_bucket(Bucket=name)
    for key, body in OBJECTS.items():
        client.put_object(Bucket=name, Key=key, Body=body)
    return name


def _settings(bucket: str, server: LoopbackS3, **retry):
    s3 = {"bucket": bucket, "prefix": "exports/", "endpoint_url": server.url}
    return params_settings(ingest={"source": "s3", "s3": s3, "retry": retry})


def _stop_after_first_get(client, server: LoopbackS3, restart_after: float | None) -> list[float]:
    """Stop the endpoint right after the first object came back (mid-run); optionally restart it later."""
    stopped: list[float] = []

    def hook(**kwargs):
        if not stopped:
            server.stop()
            stopped.append(time.monotonic())
            if restart_after is not None:
                threading.Timer(restart_after, server.start).start()

    client.meta.events.register("after-call.s3.GetObject", hook)
    return stopped


def _raw_is_clean(paths: ProjectPaths) -> None:
    listed = {entry["raw_file"] for entry in read_manifest(paths.raw_manifest)} | {paths.raw_manifest.name}
    assert {path.name for path in paths.raw.iterdir()} == listed  # no partial file, no unrecorded batch


def _ingested(paths: ProjectPaths) -> list[bytes]:
    return sorted((paths.raw / entry["raw_file"]).read_bytes() for entry in read_manifest(paths.raw_manifest))


def test_s3_outage_of_30_seconds_mid_ingest_is_ridden_out(tmp_path, loopback_s3, monkeypatch, caplog):  # noqa: F811
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", PLANTED_SECRET)
    paths = ProjectPaths(tmp_path)
    settings = _settings(_bucket(loopback_s3), loopback_s3, attempts=12, initial_delay_seconds=0.5, max_delay_seconds=5)
    client = s3_source.s3_client(settings.ingest.s3, settings.ingest.retry)
    stopped = _stop_after_first_get(client, loopback_s3, restart_after=OUTAGE_SECONDS)

    with caplog.at_level(logging.WARNING):
        summary = s3_source.ingest_s3(
            settings.ingest.s3, ["*.csv"], paths.raw, paths.raw_manifest, client=client, retry=settings.ingest.retry
        )

    assert stopped and time.monotonic() - stopped[0] >= OUTAGE_SECONDS  # the run did span the outage
    assert sorted(summary["new_files"]) == sorted(OBJECTS)
    assert _ingested(paths) == sorted(OBJECTS.values())
    _raw_is_clean(paths)
    retries = [record.getMessage() for record in caplog.records if "try " in record.getMessage()]
    assert retries and all(loopback_s3.url in message for message in retries)
    assert PLANTED_SECRET not in caplog.text


def test_s3_stopped_for_good_fails_clearly_and_a_rerun_completes(tmp_path, loopback_s3, monkeypatch, caplog):  # noqa: F811
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", PLANTED_SECRET)
    paths = ProjectPaths(tmp_path)
    bucket = _bucket(loopback_s3)
    settings = _settings(bucket, loopback_s3, attempts=3, initial_delay_seconds=0.2, max_delay_seconds=0.5)
    client = s3_source.s3_client(settings.ingest.s3, settings.ingest.retry)
    _stop_after_first_get(client, loopback_s3, restart_after=None)

    with pytest.raises(SourceUnavailableError) as error:
        s3_source.ingest_s3(
            settings.ingest.s3, ["*.csv"], paths.raw, paths.raw_manifest, client=client, retry=settings.ingest.retry
        )

    message = str(error.value)
    assert f"downloading s3://{bucket}/exports/night-2.csv at {loopback_s3.url} failed 3 time(s)" in message
    assert "EndpointConnectionError" in message and "rerun once it is back" in message
    assert PLANTED_SECRET not in message + caplog.text
    assert [entry["key"] for entry in read_manifest(paths.raw_manifest)] == ["exports/night-1.csv"]
    _raw_is_clean(paths)  # the object being fetched when the endpoint died left nothing behind

    loopback_s3.start()
    rerun = ingest.run(settings, paths)

    assert sorted(rerun["new_files"]) == ["exports/night-2.csv", "exports/night-3.csv"]
    assert _ingested(paths) == sorted(OBJECTS.values())  # every object exactly once
    _raw_is_clean(paths)
    report = (paths.stage_reports("ingest") / "ingest.json").read_text()
    assert PLANTED_SECRET not in report and json.loads(report)["batches_total"] == 3


def test_s3_endpoint_down_from_the_start_is_a_source_error_not_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", PLANTED_SECRET)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    down = LoopbackS3()  # never started: nothing listens on its port
    settings = _settings("exports", down, attempts=2, initial_delay_seconds=0.1, max_delay_seconds=0.1)
    with pytest.raises(SourceUnavailableError, match=rf"listing s3://exports/exports/ at {down.url} failed 2 time"):
        ingest.run(settings, ProjectPaths(tmp_path))


def test_a_corrupted_manifest_fails_the_airflow_task_once_without_retry(tmp_path, monkeypatch):
    from airflow.sdk.exceptions import AirflowFailException

    from feedbackflow.orchestration.tasks import stage_task

    from .test_secret_scan import _project

    project = _project(tmp_path, {"settle_seconds": 0})
    (project / "data" / "landing").mkdir(parents=True)
    (project / "data" / "raw").mkdir(parents=True)
    (project / "data" / "raw" / "_manifest.jsonl").write_text('{"batch_id": "20261130T0', encoding="utf-8")  # cut
    monkeypatch.setenv("FEEDBACKFLOW_PROJECT_DIR", str(project))

    with pytest.raises(AirflowFailException) as error:  # Airflow's "fail now, do not retry"
        stage_task("ingest", [], "scheduled__2026-11-30")

    message = str(error.value)  # the stage's own message (the runner cuts it out of DVC's output)
    assert error.value.__cause__.exit_code == 74
    assert "_manifest.jsonl: line 1 is not valid JSON" in message
    assert "dvc pull --force data/raw" in message


PG_OUTAGE_SECONDS = 15


def test_postgres_outage_mid_ingest_is_ridden_out_with_nothing_lost_or_doubled(tmp_path, postgres_dsn, monkeypatch):  # noqa: F811
    """The server goes away for 15 s between two batches (connection cut, then refused), then comes back."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from feedbackflow.storage.manifest import RawBatches

    table = f"public.outage_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, text text, updated_at timestamptz DEFAULT now())")
        cursor.executemany(f"INSERT INTO {table} (id, text) VALUES (%s, %s)", [(i, f"m {i}") for i in range(1, 1001)])
    info = conninfo_to_dict(postgres_dsn)
    proxy = TcpProxy((str(info.get("host", "127.0.0.1")), int(info.get("port", 5432))))
    proxy.start()
    monkeypatch.setenv("FEEDBACKFLOW_POSTGRES_DSN", make_conninfo(postgres_dsn, host="127.0.0.1", port=str(proxy.port)))
    admit, cut = RawBatches.admit, []

    def admit_then_cut(self, *args, **kwargs):
        entry = admit(self, *args, **kwargs)
        if len(self.new) == 2 and not cut:
            proxy.stop()
            cut.append(time.monotonic())
            threading.Timer(PG_OUTAGE_SECONDS, proxy.start).start()
        return entry

    monkeypatch.setattr(RawBatches, "admit", admit_then_cut)
    retry = {"attempts": 10, "initial_delay_seconds": 0.5, "max_delay_seconds": 4, "timeout_seconds": 2}
    settings = params_settings(
        ingest={"source": "postgres", "postgres": {"table": table, "batch_rows": 100}, "retry": retry}
    )
    paths = ProjectPaths(tmp_path)
    try:
        summary = ingest.run(settings, paths)
    finally:
        proxy.stop()

    assert cut and time.monotonic() - cut[0] >= PG_OUTAGE_SECONDS
    import pandas as pd

    ids = [i for e in read_manifest(paths.raw_manifest) for i in pd.read_parquet(paths.raw / e["raw_file"])["id"]]
    assert sorted(ids) == list(range(1, 1001))  # nothing lost, nothing doubled
    assert summary["rows_ingested"] == 1000
    _raw_is_clean(paths)


def test_dvc_push_rides_out_a_30_s_s3_outage(tmp_path, loopback_s3):  # noqa: F811
    """The runner's `dvc push` to an S3 remote that is down for 30 s: retried, then every output is on the remote."""
    import subprocess
    import sys

    from feedbackflow.storage.dvc import Dvc

    s3_client(loopback_s3.url).create_bucket(Bucket="dvc-remote")
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*dvc, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*dvc, "remote", "add", "-d", "general", "s3://dvc-remote/store"], cwd=tmp_path, check=True)
    subprocess.run([*dvc, "remote", "modify", "general", "endpointurl", loopback_s3.url], cwd=tmp_path, check=True)
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  make:\n    cmd: python -c \"open('out.txt', 'w').write('pushed through an outage')\"\n"
        "    outs:\n      - out.txt\n"
    )
    runner = Dvc(tmp_path, transfer_retry_delays=(2.0, 4.0, 8.0, 8.0, 8.0))
    runner("repro", "make")
    loopback_s3.stop()
    stopped = time.monotonic()
    threading.Timer(OUTAGE_SECONDS, loopback_s3.start).start()

    output = runner("push", "make")

    assert time.monotonic() - stopped >= OUTAGE_SECONDS and "1 file pushed" in output
    keys = [item["Key"] for item in s3_client(loopback_s3.url).list_objects_v2(Bucket="dvc-remote")["Contents"]]
    assert len(keys) == 1 and keys[0].startswith("store/files/md5/")


def test_dvc_push_to_a_missing_bucket_is_not_retried(tmp_path, loopback_s3):  # noqa: F811
    import subprocess
    import sys

    from feedbackflow.storage.dvc import Dvc, DvcError

    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*dvc, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*dvc, "remote", "add", "-d", "general", "s3://no-such-bucket/store"], cwd=tmp_path, check=True)
    subprocess.run([*dvc, "remote", "modify", "general", "endpointurl", loopback_s3.url], cwd=tmp_path, check=True)
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  make:\n    cmd: python -c \"open('o.txt', 'w')\"\n    outs:\n      - o.txt\n"
    )
    runner = Dvc(tmp_path, transfer_retry_delays=(60.0,))
    runner("repro", "make")
    started = time.monotonic()
    with pytest.raises(DvcError):
        runner("push", "make")
    assert time.monotonic() - started < 60  # a configuration error fails at once, without the 60 s wait


def test_an_ingest_task_that_fails_after_appending_leaves_no_half_delivery(tmp_path, postgres_dsn, monkeypatch):  # noqa: F811
    """Night 2 breaks on row 25 (a value the driver cannot read) after a 10-row batch reached the raw store.

    The Airflow task fails; the raw store is what night 1 left (the batch is kept in ``.work/failed/``), so
    the fixed rerun starts clean (before: DVC refused to pull over the unsaved batches) and takes every row once.
    """
    import pandas as pd
    import psycopg
    from airflow.sdk.exceptions import AirflowFailException

    from feedbackflow.orchestration.tasks import stage_task
    from feedbackflow.storage.dvc import DvcError

    from .test_secret_scan import _project

    table = f"public.half_{uuid.uuid4().hex[:8]}"
    insert = f"INSERT INTO {table} (id, text, created_at, updated_at) VALUES (%s, %s, %s, %s)"

    def deliver(ids: range, broken: int | None = None) -> None:
        rows = [
            (i, f"m {i}", "infinity" if i == broken else "2026-11-30T10:00:00Z", f"2026-11-30T10:00:{i % 60:02d}Z")
            for i in ids
        ]
        with psycopg.connect(postgres_dsn, autocommit=True) as connection, connection.cursor() as cursor:
            cursor.executemany(insert, rows)

    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(
            f"CREATE TABLE {table} (id bigint PRIMARY KEY, text text, created_at timestamptz, updated_at timestamptz)"
        )
    postgres = {"table": table, "batch_rows": 10, "lookback_seconds": 0}
    project = _project(tmp_path, {"source": "postgres", "postgres": postgres})
    monkeypatch.setenv("FEEDBACKFLOW_PROJECT_DIR", str(project))
    monkeypatch.setenv("FEEDBACKFLOW_POSTGRES_DSN", postgres_dsn)
    paths = ProjectPaths(project)
    deliver(range(1, 11))
    stage_task("ingest", [], "scheduled__night-1")
    night_1 = sorted(path.name for path in paths.raw.iterdir())

    deliver(range(11, 41), broken=25)  # rows 11-20 fill a batch; row 25 breaks the fetch of rows 21-30
    with pytest.raises((DvcError, AirflowFailException)) as failed:
        stage_task("ingest", [], "scheduled__night-2")

    assert "DataError" in str(failed.value)
    assert sorted(path.name for path in paths.raw.iterdir()) == night_1  # no half delivery for the retry to see
    (kept,) = (paths.failed_runs / "ingest").iterdir()
    assert len(list((kept / "data" / "raw").glob("*.parquet"))) == 1  # rows 11-20 (row 25 broke the batch 21-30)
    assert (kept / "data" / "raw" / "_manifest.jsonl").is_file()

    with psycopg.connect(postgres_dsn, autocommit=True) as connection:  # the source is fixed
        connection.execute(f"UPDATE {table} SET created_at = '2026-11-30T10:00:00Z' WHERE id = 25")
    stage_task("ingest", [], "scheduled__night-2-retry")  # no manual step in between

    ids = [i for e in read_manifest(paths.raw_manifest) for i in pd.read_parquet(paths.raw / e["raw_file"])["id"]]
    assert sorted(ids) == list(range(1, 41))  # nothing lost, nothing twice
    _raw_is_clean(paths)
