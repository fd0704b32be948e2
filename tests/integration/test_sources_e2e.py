"""The nightly_retrain DAG with the S3 and the PostgreSQL ingest sources, against real servers.

S3 is moto's standalone HTTP server on loopback, PostgreSQL the machine's server (a throw-away database). The
credentials reach the tasks only as Airflow connections (``AIRFLOW_CONN_*`` environment variables) named by
``FEEDBACKFLOW_AWS_CONN_ID`` / ``FEEDBACKFLOW_POSTGRES_CONN_ID``, as in production; nothing secret is in params.yaml.
One DAG run each, on the tiny corpus, as a dry run (``dry_run``: the night stops after anonymise): what a source
changes ends at validate, and training is the same whatever the source (the other end-to-end tests train).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pandas as pd
import pytest
import yaml

from feedbackflow.stages.ingest import read_manifest
from tests.servers import S3_CREDENTIALS, free_port, postgres_dsn, s3_client  # noqa: F401 (fixture)

from .conftest import BIN, airflow_env, make_project, run

pytestmark = pytest.mark.integration

AWS_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_PROFILE")


def _dag_test(project: Path, extra_env: dict[str, str]) -> str:
    env = {k: v for k, v in airflow_env(project, project.parent / "airflow").items() if k not in AWS_KEYS}
    command = [str(BIN / "airflow"), "dags", "test", "nightly_retrain", "--conf", json.dumps({"dry_run": True})]
    done = run(command, project, {**env, **extra_env})
    return done.stdout + done.stderr


def _landing_frame(project: Path) -> pd.DataFrame:
    (batch,) = sorted((project / "data" / "landing").glob("*.csv"))
    return pd.read_csv(batch, dtype=str, keep_default_na=False)


def _summary(project: Path) -> dict:
    return json.loads((project / "reports" / "run_summary.json").read_text())


def _ingest_report(project: Path) -> dict:
    return json.loads((project / "reports" / "ingest" / "ingest.json").read_text())


def _assert_validated_and_anonymised(project: Path, summary: dict, rows: int) -> None:
    validate = summary["validate"]
    assert validate["rows_read"] == rows
    assert validate["rows_accepted"] + validate["rows_quarantined"] == rows
    assert summary["anonymise"]["rows"] == validate["rows_accepted"]
    assert (project / "reports" / "validate" / "data_docs" / "index.html").is_file()
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert {"ingest", "validate", "anonymise"} <= set(lock["stages"])


@pytest.fixture
def moto_server():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def test_dag_ingests_from_s3_through_an_airflow_connection(tmp_path, moto_server):
    project = make_project(tmp_path, {"source": "s3", "s3": {"bucket": "exports", "prefix": "feedback/"}})
    frame = _landing_frame(project)
    client = s3_client(moto_server)
    client.create_bucket(Bucket="exports")
    client.put_object(Bucket="exports", Key="feedback/night-1.csv", Body=frame.to_csv(index=False).encode())
    client.put_object(Bucket="exports", Key="feedback/night-1-resent.csv", Body=frame.to_csv(index=False).encode())
    for path in (project / "data" / "landing").iterdir():
        path.unlink()  # the S3 source must not read the folder
    connection = {
        "conn_type": "aws",
        "login": S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "password": S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "extra": {"endpoint_url": moto_server, "region_name": "us-east-1"},
    }

    _dag_test(project, {"AIRFLOW_CONN_FEEDBACK_S3": json.dumps(connection), "FEEDBACKFLOW_AWS_CONN_ID": "feedback_s3"})

    summary, ingest = _summary(project), _ingest_report(project)
    assert summary["ingest"]["new_batches"] == ingest["new_batches"] and len(ingest["new_batches"]) == 1
    keys = {"feedback/night-1.csv", "feedback/night-1-resent.csv"}
    assert ingest["source"] == "s3" and len(ingest["new_files"]) == 1  # the same content under two keys
    assert {ingest["new_files"][0], ingest["skipped"][0]["key"]} == keys
    (entry,) = read_manifest(project / "data" / "raw" / "_manifest.jsonl")
    assert entry["source"] == "s3" and entry["key"] == ingest["new_files"][0] and entry["etag"]
    _assert_validated_and_anonymised(project, summary, len(frame))


def test_dag_ingests_from_postgres_through_an_airflow_connection(tmp_path, postgres_dsn):  # noqa: F811
    import psycopg

    table = f"feedback_{uuid.uuid4().hex[:8]}"
    project = make_project(
        tmp_path,
        {"source": "postgres", "postgres": {"table": f"public.{table}", "watermark_columns": ["updated_at", "row_id"]}},
    )
    frame = _landing_frame(project)
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(
            f"CREATE TABLE public.{table} (row_id bigserial PRIMARY KEY, id text, text text, label text, "
            "channel text, created_at timestamptz, updated_at timestamptz NOT NULL DEFAULT now())"
        )
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO public.{table} (id, text, label, channel, created_at) VALUES (%s, %s, %s, %s, %s)",
                frame[["id", "text", "label", "channel", "created_at"]].itertuples(index=False, name=None),
            )
    for path in (project / "data" / "landing").iterdir():
        path.unlink()
    dbname = dict(part.split("=", 1) for part in postgres_dsn.split())["dbname"]
    secret_free_uri = f"postgresql://postgres@127.0.0.1:5432/{dbname}"

    _dag_test(project, {"AIRFLOW_CONN_FEEDBACK_DB": secret_free_uri, "FEEDBACKFLOW_POSTGRES_CONN_ID": "feedback_db"})

    summary = _summary(project)
    assert _ingest_report(project)["rows_ingested"] == len(frame)
    entries = read_manifest(project / "data" / "raw" / "_manifest.jsonl")
    assert {e["source"] for e in entries} == {"postgres"} and sum(e["rows"] for e in entries) == len(frame)
    assert entries[-1]["watermark_to"][1] == len(frame)
    _assert_validated_and_anonymised(project, summary, len(frame))
    report = json.loads((project / "reports" / "validate" / "validate.json").read_text())
    assert all(batch["extra_columns"] == ["row_id", "updated_at"] for batch in report["batches"])
    assert os.environ.get("FEEDBACKFLOW_POSTGRES_DSN") is None  # the DSN lived only in the task's subprocess
