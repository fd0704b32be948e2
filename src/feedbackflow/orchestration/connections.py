"""Credentials from Airflow connections, turned into the environment variables a stage's subprocess reads.

Which stage gets which connection is a column of :data:`feedbackflow.orchestration.rules.STAGE_RULES`; the
environment variables below name the connections. The values go to the stage subprocess only, never to logs or XComs
(Airflow's secrets masker is told about them before the stage starts).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from feedbackflow.credentials import mask_credentials
from feedbackflow.stages.ingest import POSTGRES_DSN_ENV


def aws_environment(connection: Any) -> dict[str, str]:
    """Environment variables that let DVC's S3 remote use an Airflow AWS connection (e.g. ``aws_default``).

    Login and password are the access key pair; the extras ``endpoint_url`` (MinIO or another S3-compatible
    endpoint) and ``region_name`` are honoured.
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
    ``params.yaml`` or the repository.
    """
    from feedbackflow.privacy.pseudonym import KEY_ENV

    return {KEY_ENV: connection.password} if connection.password else {}


def postgres_environment(connection: Any) -> dict[str, str]:
    """The ``FEEDBACKFLOW_POSTGRES_DSN`` variable the ingest stage reads, built from an Airflow Postgres connection.

    Host, port, login, password and schema (the database) make a libpq key/value DSN; the extras ``sslmode`` and
    ``options`` are honoured.
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


#: connection kind -> (the environment variable naming the Airflow connection id, what the connection becomes)
CONNECTIONS: dict[str, tuple[str, Callable[[Any], dict[str, str]]]] = {
    "aws": ("FEEDBACKFLOW_AWS_CONN_ID", aws_environment),  # DVC's S3 remotes and the S3 ingest source
    "postgres": ("FEEDBACKFLOW_POSTGRES_CONN_ID", postgres_environment),  # the PostgreSQL ingest source
    "pseudonym_key": ("FEEDBACKFLOW_PSEUDONYM_KEY_CONN_ID", pseudonym_environment),  # anonymise's keyed pseudonyms
}


def connection_environment(kinds: Iterable[str]) -> dict[str, str]:
    """The environment of the named connection kinds whose connection id is set (nothing set: no Airflow needed).

    Every credential in it and in this process's environment is registered with Airflow's secret masker first, so no
    task or supervisor log line shows one from here on.
    """
    env = _connections(kinds)
    mask_credentials({**os.environ, **env})
    return env


def _connections(kinds: Iterable[str]) -> dict[str, str]:
    wanted: list[tuple[str, Callable[[Any], dict[str, str]]]] = []
    for kind in kinds:
        variable, convert = CONNECTIONS[kind]
        conn_id = os.environ.get(variable)
        if conn_id:
            wanted.append((conn_id, convert))
    if not wanted:
        return {}
    from airflow.sdk import Connection

    env: dict[str, str] = {}
    for conn_id, convert in wanted:
        env.update(convert(Connection.get(conn_id)))
    return env
