"""Planted credentials never reach a message, a log, an XCom or a report, on any failure path of ingest we can provoke.

Each case runs the ingest stage the way an Airflow task does (:func:`feedbackflow.orchestration.tasks.stage_task`: real
DVC, the real stage subprocess) in a throw-away project, with distinctive secrets in the worker's environment: a
PostgreSQL DSN password, an AWS secret key and a pseudonym key. The failure's message, every log line, the files
under ``reports/`` and ``data/raw`` and the task's return value (its XCom) are scanned for them, and Airflow's secret
masker must know each one.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from feedbackflow.credentials import dsn_passwords
from tests.helpers import copy_stage_inputs, params_dict
from tests.servers import free_port, postgres_dsn, s3_endpoint  # noqa: F401 (fixtures)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PG_PASSWORD = "Pg PLANTED-4e7a1c9b"  # a space: psycopg's malformed-DSN error used to quote part of it
AWS_SECRET = "AWS-PLANTED-9d2f6b0e81c3"
PSEUDONYM_KEY = "KEY-PLANTED-5a8c3e1f7b2d9064"
SECRETS = (PG_PASSWORD, *(w for w in PG_PASSWORD.split() if len(w) >= 6), AWS_SECRET, PSEUDONYM_KEY)


def _project(base: Path, ingest: dict) -> Path:
    project = base / "project"
    project.mkdir(parents=True)
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(ROOT / name, project / name)
    copy_stage_inputs(project)
    (project / ".dvc").mkdir()
    for name in ("config", ".gitignore"):
        shutil.copy(ROOT / ".dvc" / name, project / ".dvc" / name)
    params = params_dict(ingest=ingest)  # nested sections (s3, postgres) merge: every key stays set
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    return project


def _scan(project: Path, *texts: str) -> None:
    files = [p for folder in ("reports", "data/raw") for p in (project / folder).rglob("*") if p.is_file()]
    corpus = "\n".join([*texts, *(p.read_text(errors="replace") for p in files)])
    for secret in SECRETS:
        assert secret not in corpus, f"planted secret {secret!r} leaked"


def _fail(stage_task, caplog):
    from airflow.sdk.exceptions import AirflowFailException

    from feedbackflow.storage.dvc import DvcError

    with caplog.at_level(logging.INFO), pytest.raises((DvcError, AirflowFailException)) as error:
        stage_task("ingest", [], "scheduled__2026-11-30")
    return str(error.value)


def _environment(monkeypatch, project: Path, dsn: str) -> None:
    monkeypatch.setenv("FEEDBACKFLOW_PROJECT_DIR", str(project))
    monkeypatch.setenv("FEEDBACKFLOW_POSTGRES_DSN", dsn)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.setenv("FEEDBACKFLOW_PSEUDONYM_KEY", PSEUDONYM_KEY)


FAST_RETRY = {"attempts": 2, "initial_delay_seconds": 0.1, "max_delay_seconds": 0.1, "timeout_seconds": 2}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("malformed_dsn", "ConfigError|ProgrammingError|OperationalError"),
        ("refused_connection", "failed 2 time"),
        ("unknown_table", "UndefinedTable"),
    ],
)
def test_postgres_failure_paths_leak_no_credential(tmp_path, monkeypatch, caplog, postgres_dsn, case, expected):  # noqa: F811
    from feedbackflow.orchestration.tasks import stage_task

    project = _project(tmp_path, {"source": "postgres", "postgres": {"table": "public.feedback"}, "retry": FAST_RETRY})
    quoted = PG_PASSWORD.replace("'", "\\'")
    dsn = {
        "malformed_dsn": f"host=127.0.0.1 dbname=app password={PG_PASSWORD}",  # unquoted space: malformed
        "refused_connection": f"host=127.0.0.1 port={free_port()} dbname=app password='{quoted}'",
        "unknown_table": f"{postgres_dsn} password='{quoted}'",
    }[case]
    _environment(monkeypatch, project, dsn)

    message = _fail(stage_task, caplog)

    import re

    assert re.search(expected, message + caplog.text), message
    _scan(project, message, caplog.text)
    _assert_masked(dsn)


def test_s3_failure_paths_leak_no_credential(tmp_path, monkeypatch, caplog, s3_endpoint):  # noqa: F811
    from feedbackflow.orchestration.tasks import stage_task

    for case, endpoint in (("no_such_bucket", s3_endpoint), ("endpoint_down", f"http://127.0.0.1:{free_port()}")):
        project = _project(
            tmp_path / case,
            {"source": "s3", "s3": {"bucket": "no-such-bucket", "endpoint_url": endpoint}, "retry": FAST_RETRY},
        )
        _environment(monkeypatch, project, "host=127.0.0.1 dbname=app password='unused-but-planted'")
        caplog.clear()
        message = _fail(stage_task, caplog)
        assert ("NoSuchBucket" if case == "no_such_bucket" else "EndpointConnectionError") in message + caplog.text
        _scan(project, message, caplog.text)
    _assert_masked("")


def test_a_stage_that_prints_a_credential_is_redacted_in_the_task_message_and_log(tmp_path, monkeypatch, caplog):
    """Defence in depth: a library that echoes a credential into the stage output never gets it past the runner."""
    from feedbackflow.orchestration.tasks import stage_task

    project = _project(tmp_path, {})
    leaky = (
        "import os, sys; print('oops', os.environ['AWS_SECRET_ACCESS_KEY'], os.environ['FEEDBACKFLOW_POSTGRES_DSN'])"
    )
    stages = yaml.safe_load((project / "dvc.yaml").read_text())
    stages["stages"]["ingest"]["cmd"] = f'python -c "{leaky}; sys.exit(78)"'
    (project / "dvc.yaml").write_text(yaml.safe_dump(stages, sort_keys=False), encoding="utf-8")
    (project / "data" / "landing").mkdir(parents=True)
    dsn = f"host=127.0.0.1 dbname=app password='{PG_PASSWORD}'"
    _environment(monkeypatch, project, dsn)

    message = _fail(stage_task, caplog)

    assert "oops ***" in message and "exit 78" in message
    _scan(project, message, caplog.text)


def test_a_successful_run_puts_no_credential_in_its_xcom_or_report(tmp_path, monkeypatch, caplog):
    from feedbackflow.orchestration.tasks import stage_task

    project = _project(tmp_path, {"settle_seconds": 0})
    (project / "data" / "landing").mkdir(parents=True)
    (project / "data" / "landing" / "a.csv").write_text("id,text\n1,hello\n", encoding="utf-8")
    dsn = f"host=127.0.0.1 dbname=app password='{PG_PASSWORD}'"
    _environment(monkeypatch, project, dsn)

    with caplog.at_level(logging.INFO):
        xcom = stage_task("ingest", [], "scheduled__2026-11-30")

    assert xcom["stage"] == "ingest" and xcom["ran"]
    _scan(project, json.dumps(xcom, default=str), caplog.text)


def _assert_masked(dsn: str) -> None:
    """Airflow's secret masker (what the task and supervisor logs go through) hides every planted value."""
    from airflow.sdk.log import _secrets_masker  # type: ignore[attr-defined]

    masker = _secrets_masker()
    values = [AWS_SECRET, PSEUDONYM_KEY, *(dsn_passwords(dsn) if dsn else [])]
    redacted = masker.redact(" | ".join(values))
    for value in values:
        assert value not in redacted, f"{value!r} is not known to Airflow's secret masker"


def test_a_failed_dag_run_leaves_no_credential_in_task_logs_xcoms_or_reports(tmp_path):
    """The whole path through Airflow: connection -> task -> DVC -> stage -> failure, then every log and the DB."""
    from .conftest import BIN, airflow_env, make_project, run

    port = free_port()  # nothing listens: connection refused, retried inside the stage, then the task fails
    project = make_project(
        tmp_path, {"source": "postgres", "postgres": {"table": "public.feedback"}, "retry": FAST_RETRY}
    )
    connection = {
        "conn_type": "postgres",
        "host": "127.0.0.1",
        "port": port,
        "login": "feedback",
        "password": PG_PASSWORD,
        "schema": "app",
    }
    env = {
        **airflow_env(project, project.parent / "airflow"),
        "AIRFLOW_CONN_FEEDBACK_DB": json.dumps(connection),
        "FEEDBACKFLOW_POSTGRES_CONN_ID": "feedback_db",
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
    }
    done = run([str(BIN / "airflow"), "dags", "test", "nightly_retrain"], project, env, check=False)
    output = done.stdout + done.stderr

    assert "ingest: reading public.feedback" in output  # the task's log is in the console output ...
    assert f"postgresql://127.0.0.1:{port}/app" in output  # ... and the failure names the server ...
    assert "SourceUnavailableError" in output or "failed 2 time(s)" in output
    airflow_home = project.parent / "airflow"
    # `airflow dags test` prints the task logs to the console (scanned as `output`); any log files are scanned too
    logs = [p for p in (airflow_home / "logs").rglob("*") if p.is_file()]
    database = (airflow_home / "airflow.db").read_bytes().decode("utf-8", errors="ignore")  # XComs, rendered fields
    texts = [output, database, *(p.read_text(errors="ignore") for p in logs)]
    _scan(project, *texts)  # ... and no log, XCom, report or the console holds a credential


def test_anonymise_failure_path_leaks_no_pseudonym_key(tmp_path, monkeypatch, caplog):
    """The pseudonym key is read by the anonymise task; its failure (here: a spaCy model that is not installed)
    must not carry the key into the message, the log or a report, and Airflow's masker must know the key."""
    import pandas as pd

    from feedbackflow.orchestration.tasks import stage_task

    project = _project(tmp_path, {})
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["anonymise"].update(spacy_model="no_such_spacy_model", operators={"PERSON": "pseudonym"}, canary_file=None)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    (project / "data" / "validated").mkdir(parents=True)
    rows = {"id": ["1"], "text": ["My name is Ada Lovelace"], "label": ["card_arrival"], "channel": ["app"]}
    pd.DataFrame({**rows, "created_at": ["2026-11-30T00:00:00Z"]}).to_parquet(
        project / "data" / "validated" / "feedback.parquet"
    )
    _environment(monkeypatch, project, f"host=127.0.0.1 dbname=app password='{PG_PASSWORD}'")

    from airflow.sdk.exceptions import AirflowFailException

    from feedbackflow.storage.dvc import DvcError

    stage_task("detector", [], "scheduled__2026-11-30")  # anonymise reads its output (a marker: the detector is off)
    with caplog.at_level(logging.INFO), pytest.raises((DvcError, AirflowFailException)) as error:
        stage_task("anonymise", [], "scheduled__2026-11-30")

    message = str(error.value)
    assert "no_such_spacy_model" in message + caplog.text
    _scan(project, message, caplog.text)
    _assert_masked("")
