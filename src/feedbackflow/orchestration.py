"""Task bodies for Airflow: each is one call from the DAG file, so the DAG only wires.

Imports of Airflow happen inside the functions: the package works without an Airflow installation at import time.
Every function returns a small, JSON-serialisable dict (stage name, hashes, counts), never data.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import DataQualityError, PrivacyLeakError
from feedbackflow.runner import merge_ran, merge_upstream, run_stage
from feedbackflow.settings import DagSettings
from feedbackflow.stages.ingest import POSTGRES_DSN_ENV
from feedbackflow.storage.dvc import Dvc, DvcError

log = logging.getLogger(__name__)


def aws_environment(connection: Any) -> dict[str, str]:
    """Environment variables that let DVC's S3 remote use an Airflow AWS connection (e.g. ``aws_default``).

    Login and password are the access key pair; the extras ``endpoint_url`` (MinIO or another S3-compatible
    endpoint) and ``region_name`` are honoured. The values go to the DVC subprocess only, never to logs or XComs.
    """
    extra = connection.extra_dejson or {}
    pairs = {
        "AWS_ACCESS_KEY_ID": connection.login,
        "AWS_SECRET_ACCESS_KEY": connection.password,
        "AWS_SESSION_TOKEN": extra.get("aws_session_token"),
        "AWS_ENDPOINT_URL": extra.get("endpoint_url"),
        "AWS_DEFAULT_REGION": extra.get("region_name"),
    }
    return {key: str(value) for key, value in pairs.items() if value}


def pseudonym_environment(connection: Any) -> dict[str, str]:
    """The pseudonym key from an Airflow connection (its password), as the stage subprocess reads it.

    A connection can live in any Airflow secrets backend (Vault, AWS Secrets Manager, ...), so the key never sits in
    ``params.yaml`` or the repository. The value goes to the stage subprocess only, never to logs or XComs.
    """
    from feedbackflow.privacy.pseudonym import KEY_ENV

    return {KEY_ENV: connection.password} if connection.password else {}


def postgres_environment(connection: Any) -> dict[str, str]:
    """The ``FEEDBACKFLOW_POSTGRES_DSN`` variable the ingest stage reads, built from an Airflow Postgres connection.

    Host, port, login, password and schema (the database) make a libpq key/value DSN; the extras ``sslmode`` and
    ``options`` are honoured. The DSN goes to the stage subprocess only, never to logs or XComs.
    """
    from psycopg.conninfo import make_conninfo

    extra = connection.extra_dejson or {}
    parts = {
        "host": connection.host,
        "port": connection.port,
        "user": connection.login,
        "password": connection.password,
        "dbname": connection.schema,
        "sslmode": extra.get("sslmode"),
        "options": extra.get("options"),
    }
    return {POSTGRES_DSN_ENV: make_conninfo(**{key: str(value) for key, value in parts.items() if value})}


def _connection_environment(stage: str) -> dict[str, str]:
    """Credentials for ``stage``'s subprocess from the Airflow connections named in the environment.

    ``FEEDBACKFLOW_AWS_CONN_ID`` (every stage: DVC's S3 remote, the S3 ingest source), ``FEEDBACKFLOW_POSTGRES_CONN_ID``
    (ingest only) and ``FEEDBACKFLOW_PSEUDONYM_KEY_CONN_ID`` (anonymise only): no other subprocess needs those.
    """
    aws_conn_id = os.environ.get("FEEDBACKFLOW_AWS_CONN_ID")
    postgres_conn_id = os.environ.get("FEEDBACKFLOW_POSTGRES_CONN_ID") if stage == "ingest" else None
    key_conn_id = os.environ.get("FEEDBACKFLOW_PSEUDONYM_KEY_CONN_ID") if stage == "anonymise" else None
    if not (aws_conn_id or postgres_conn_id or key_conn_id):
        return {}
    from airflow.sdk import Connection

    env = aws_environment(Connection.get(aws_conn_id)) if aws_conn_id else {}
    if postgres_conn_id:
        env.update(postgres_environment(Connection.get(postgres_conn_id)))
    if key_conn_id:
        env.update(pseudonym_environment(Connection.get(key_conn_id)))
    return env


def _always_runs(stage: str) -> bool:
    """Ingest from S3 or PostgreSQL must run every time: DVC cannot hash those sources (the manifest makes it safe)."""
    if stage != "ingest":
        return False
    from feedbackflow.settings import load_settings

    return load_settings(ProjectPaths.discover().params).ingest.source != "folder"


def stage_task(stage: str, upstream: Iterable[dict[str, Any] | None], run_id: str) -> dict[str, Any]:
    """Run one ``dvc.yaml`` stage; a data-quality failure or a privacy leak fails the task without retries.

    When ``FEEDBACKFLOW_AWS_CONN_ID`` names an Airflow connection, its credentials reach DVC's S3 remote and the S3
    ingest source; ``FEEDBACKFLOW_POSTGRES_CONN_ID`` does the same for the PostgreSQL ingest source, and the password
    of the connection ``FEEDBACKFLOW_PSEUDONYM_KEY_CONN_ID`` names becomes the anonymise stage's pseudonym key.
    """
    env = _connection_environment(stage)
    if stage == "anonymise":  # its dvc.yaml dependency on the key id: a rotated key re-runs it
        from feedbackflow.privacy.pseudonym import write_key_id

        write_key_id(ProjectPaths.discover().root, {**os.environ, **env})
    try:
        return run_stage(stage, upstream, run_id=run_id, env=env, force=_always_runs(stage))
    except DvcError as error:
        if error.exit_code in (DataQualityError.exit_code, PrivacyLeakError.exit_code):
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(str(error)) from error
        raise


REPORTS = (
    "reports/ingest/ingest.json",
    "reports/validate/validate.json",
    "reports/anonymise/anonymise.json",
    "reports/train/metrics.json",
    "reports/evaluate/gate.json",
    "reports/monitor/summary.json",
)


def _pull_upstream(upstream: Iterable[dict[str, Any] | None], targets: Iterable[str]) -> ProjectPaths:
    """Bring the named upstream outputs into this worker's workspace, by hash, from the DVC remote."""
    paths = ProjectPaths.discover()
    dvc = Dvc(paths.root)
    dvc.merge_lock(merge_upstream(upstream))
    known = _known_outputs(dvc)
    wanted = [target for target in targets if target in known]
    if wanted:
        dvc("pull", "--allow-missing", *wanted)
    return paths


def _known_outputs(dvc: Dvc) -> set[str]:
    return {out["path"] for stage in dvc.lock().get("stages", {}).values() for out in stage.get("outs", [])}


def gate_task(upstream: Iterable[dict[str, Any] | None]) -> bool:
    """True when the evaluate stage's gate passed and the challenger is not already the champion."""
    from feedbackflow.stages.promote import should_promote

    allowed, reason = should_promote(_pull_upstream(upstream, ["reports/evaluate/gate.json"]))
    log.info("gate: %s", reason)
    return allowed


def promote_task(upstream: Iterable[dict[str, Any] | None], run_id: str) -> dict[str, Any]:
    """Promote the challenger (the gate already allowed it) and return the new champion record."""
    from feedbackflow.settings import load_settings
    from feedbackflow.stages import promote

    paths = _pull_upstream(upstream, ["reports/evaluate/gate.json", "models/challenger"])
    return promote.run(load_settings(paths.params), paths, run_id=run_id)


def summarise_task(results: Iterable[dict[str, Any] | None], run_id: str) -> dict[str, Any]:
    """Write the run summary and save the run as a DVC experiment; returns the headline figures."""
    from feedbackflow.summary import write_summary

    results = [result for result in results if result]
    paths = _pull_upstream(results, REPORTS)
    ran = merge_ran(results)
    summary = write_summary(paths, run_id, ran)
    return {
        "experiment": summary.get("experiment"),
        "promote": summary["evaluate"]["gate"]["promote"],
        "challenger": summary["evaluate"]["challenger"],
    }


def pool_command(settings: DagSettings, airflow: str = "airflow") -> list[str]:
    """``airflow pools set`` for the train task's pool: one slot per GPU, so two trainings never share a GPU."""
    return [
        airflow,
        "pools",
        "set",
        settings.train_pool,
        str(settings.train_pool_slots),
        f"GPU slots for the train task ({settings.train_pool_slots} GPU(s)); see dag.train_pool in params.yaml",
    ]


def create_pools(settings: DagSettings) -> None:
    """Create or resize the train task's pool in the Airflow metadata database.

    ``airflow dags test`` ignores pools, but the scheduler leaves a task whose pool does not exist queued forever.

    Raises:
        subprocess.CalledProcessError: the Airflow CLI failed (e.g. the database is not migrated yet).
    """
    import subprocess
    import sys
    from pathlib import Path

    command = pool_command(settings, str(Path(sys.executable).parent / "airflow"))
    subprocess.run(command, check=True, capture_output=True, text=True)
    log.info("pool %s has %d slot(s)", settings.train_pool, settings.train_pool_slots)
