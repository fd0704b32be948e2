"""Real servers for tests: a throw-away PostgreSQL database on the local server and moto's S3 endpoint on loopback.

Import the fixtures into a test module (``from tests.servers import postgres_dsn, s3_endpoint``). The PostgreSQL
server is the machine's (``FEEDBACKFLOW_TEST_POSTGRES``, default ``host=127.0.0.1 port=5432 user=postgres``); each
session creates a uniquely named database and drops it afterwards. The S3 endpoint is moto's standalone HTTP server
on a free port: boto3 and DVC talk to it over HTTP exactly as to AWS or MinIO.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

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


class LoopbackS3:
    """moto's S3 server on a fixed loopback port that can be stopped and started again, like a real outage.

    Stopping closes the listening socket, so clients get "connection refused" (``ThreadedMotoServer.stop`` keeps it
    bound); each connection serves one request (HTTP/1.0), so no pooled connection outlives the outage. Buckets
    survive a restart: moto keeps its state in this process.
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        class OneRequestPerConnection(MotoRequestHandler):
            protocol_version = "HTTP/1.0"

        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server("127.0.0.1", self.port, app, threaded=True, request_handler=OneRequestPerConnection)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            assert self._thread is not None
            self._thread.join()
            self._server = None


@pytest.fixture
def loopback_s3(monkeypatch) -> Iterator[LoopbackS3]:
    """A started :class:`LoopbackS3`; the AWS_* test credentials are set in the environment."""
    for key, value in S3_CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    server = LoopbackS3()
    server.start()
    try:
        yield server
    finally:
        server.stop()


class TcpProxy:
    """A TCP forwarder on a loopback port that can be cut and restored: a server outage without touching the server.

    ``stop`` closes the listening socket and every open connection (clients see their connection drop, then
    "connection refused"), ``start`` listens on the same port again. Used to take the machine's PostgreSQL away from
    one test without restarting it (other sessions share that server).
    """

    def __init__(self, target: tuple[str, int], port: int | None = None) -> None:
        self.target = target
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        with self._lock:
            if self._listener is not None:
                with contextlib.suppress(OSError):
                    self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked in another thread
                self._listener.close()
                self._listener = None
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed: the outage began
            if self._listener is not listener:  # accepted just as the outage began: drop it
                client.close()
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._sockets |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
