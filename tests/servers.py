"""Real servers for tests: a throw-away PostgreSQL database on the local server and moto's S3 endpoint on loopback.

Import the fixtures into a test module (``from tests.servers import postgres_dsn, s3_endpoint``). The PostgreSQL
server is the machine's (``FEEDBACKFLOW_TEST_POSTGRES``, default ``host=127.0.0.1 port=5432 user=postgres``); each
session creates a uniquely named database and drops it afterwards. The S3 endpoint is moto's standalone HTTP server
on a free port: boto3 and DVC talk to it over HTTP exactly as to AWS or MinIO.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator

import pytest

S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
POSTGRES_SERVER = os.environ.get("FEEDBACKFLOW_TEST_POSTGRES", "host=127.0.0.1 port=5432 user=postgres")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """DSN of a fresh database, dropped at the end of the session (skips when no server is reachable)."""
    import psycopg

    name = f"feedbackflow_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(f"{POSTGRES_SERVER} dbname=postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        pytest.skip(f"no PostgreSQL server at '{POSTGRES_SERVER}': {error}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{POSTGRES_SERVER} dbname={name}"
    finally:
        with psycopg.connect(f"{POSTGRES_SERVER} dbname=postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def s3_endpoint(monkeypatch) -> Iterator[str]:
    """URL of a fresh moto S3 server on loopback; the AWS_* test credentials are set in the environment."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for key, value in S3_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3_client(endpoint: str):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=S3_CREDENTIALS["AWS_DEFAULT_REGION"],
    )
