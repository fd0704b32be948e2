"""Airflow 3 with the CeleryExecutor on this machine: the production topology, one process per component.

``make airflow-celery`` (and the Celery integration test) start, as separate processes in separate working
directories, with the machine's PostgreSQL (metadata database and Celery result backend) and Redis (broker):

- ``control``: api-server (UI, REST and Execution API), scheduler, dag-processor and triggerer;
- ``worker-default``: a Celery worker on queue ``default`` (every task but train);
- ``worker-gpu``: a Celery worker on queue ``gpu`` (``dag.train_queue``: the train task), concurrency 1.

Each role has its own project workspace (a ``git clone`` of the project) and its own ``AIRFLOW_HOME`` (logs
included): nothing is shared on disk. Stage data moves between the workers only through the DVC remotes, by hash;
point both at S3 (``feedbackflow remotes``) for a real multi-host set-up: with folder remotes the workers still
share the folder the remotes name. The same roles, queues and environment names are the services of
``docker/docker-compose.yaml``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from feedbackflow.config import ProjectPaths

log = logging.getLogger(__name__)

BIN = Path(sys.executable).parent
CONTROL = ("api-server", "scheduler", "dag-processor", "triggerer")
#: worker role -> (Celery queues, concurrency); the queue names are dag.train_queue's and Airflow's default
WORKERS = {"worker-default": ("default", 2), "worker-gpu": ("gpu", 1)}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class CeleryCluster:
    """The processes of one local Airflow + Celery deployment (see the module docstring)."""

    base: Path  # AIRFLOW_HOMEs and process logs live under here, one folder per role
    workspaces: dict[str, Path]  # role ('control' and every key of WORKERS) -> its project workspace
    database_url: str  # postgresql+psycopg://... of the metadata database (created beforehand)
    broker_url: str  # redis://127.0.0.1:6379/<db>
    extra_env: dict[str, str] = field(default_factory=dict)  # credentials, connection ids, ...
    heartbeat_timeout_s: int = 300  # a task whose worker stopped heartbeating is failed (and retried) after this
    api_port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    jwt_secret: str = field(default_factory=lambda: secrets.token_hex(32))

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def home(self, role: str) -> Path:
        return self.base / role / "airflow"

    def env(self, role: str, workspace_role: str | None = None) -> dict[str, str]:
        """The environment of one component: every component gets the same Airflow settings, its own folders."""
        workspace = self.workspaces[workspace_role or role]
        environment = {
            **os.environ,
            **self.extra_env,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(self.home(role)),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__DAGS_FOLDER": str(workspace / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(workspace / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager."
            "SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API_AUTH__JWT_SECRET": self.jwt_secret,
            "AIRFLOW__API__SECRET_KEY": self.jwt_secret,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.database_url,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": self.database_url,
            "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.database_url,
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "86400",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(self.heartbeat_timeout_s),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "FEEDBACKFLOW_PROJECT_DIR": str(workspace),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "DVC_NO_ANALYTICS": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "PYTHONUNBUFFERED": "1",
        }
        return environment

    def airflow(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run an ``airflow`` CLI command as the control role (metadata database, pools, DAG state)."""
        done = subprocess.run(
            [str(BIN / "airflow"), *args],
            cwd=self.workspaces["control"],
            env=self.env("control"),
            capture_output=True,
            text=True,
            check=False,
        )
        if check and done.returncode:
            raise RuntimeError(f"airflow {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        return done

    def migrate(self) -> None:
        """Create the metadata schema and the train task's pool (``feedbackflow pools``)."""
        self.home("control").mkdir(parents=True, exist_ok=True)
        self.airflow("db", "migrate")
        subprocess.run(
            [str(BIN / "feedbackflow"), "pools"],
            cwd=self.workspaces["control"],
            env=self.env("control"),
            capture_output=True,
            text=True,
            check=True,
        )

    def _spawn(self, name: str, command: list[str], role: str, workspace_role: str) -> None:
        self.home(role).mkdir(parents=True, exist_ok=True)
        output = (self.base / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            command,
            cwd=self.workspaces[workspace_role],
            env=self.env(role, workspace_role),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a kill takes its task processes with it
        )
        log.info("started %s (pid %d), log %s", name, self.processes[name].pid, self.base / f"{name}.log")

    def start_control(self) -> None:
        for component in CONTROL:
            command = [str(BIN / "airflow"), component]
            if component == "api-server":
                command += ["--port", str(self.api_port)]
            self._spawn(component, command, "control", "control")

    def start_worker(self, role: str, name: str | None = None) -> str:
        """Start a Celery worker of ``role`` (a key of WORKERS); returns its name.

        Its workspace is ``workspaces[name]`` when there is one (a replacement machine), else the role's.
        """
        queues, concurrency = WORKERS[role]
        name = name or role
        command = [
            str(BIN / "airflow"),
            "celery",
            "worker",
            "--queues",
            queues,
            "--concurrency",
            str(concurrency),
            "--celery-hostname",
            f"{name}@%h",
            "--without-mingle",
            "--without-gossip",
        ]
        self._spawn(name, command, name, name if name in self.workspaces else role)
        return name

    def start(self) -> None:
        self.start_control()
        for role in WORKERS:
            self.start_worker(role)

    def kill(self, name: str) -> None:
        """SIGKILL a component and every process it started (what a lost machine or an OOM kill does).

        Airflow's task supervisor puts each task in a process group of its own, so the whole session is killed
        (every component is started as a session leader).
        """
        process = self.processes[name]
        for pid in session_members(process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        """SIGTERM every component's session, then SIGKILL what is left after 30 s."""
        for process in self.processes.values():
            for pid in session_members(process.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for name, process in self.processes.items():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(deadline - time.monotonic(), 0.1))
            self.kill(name)

    def wait_healthy(self, timeout_s: float = 240) -> None:
        """Wait until the API answers and reports a healthy scheduler, dag-processor and triggerer."""
        import json

        deadline = time.monotonic() + timeout_s
        health: dict = {}
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited ({process.returncode}): see {self.base / f'{name}.log'}")
            try:
                with urllib.request.urlopen(f"{self.api_url}/api/v2/monitor/health", timeout=10) as response:
                    health = json.loads(response.read())
                if all(
                    (health.get(part) or {}).get("status") == "healthy"
                    for part in ("metadatabase", "scheduler", "dag_processor", "triggerer")
                ):
                    return
            except (OSError, ValueError):
                pass
            time.sleep(3)
        raise TimeoutError(f"Airflow did not become healthy in {timeout_s:.0f} s: {health}")

    def task_log(self, role: str, run_id: str, task_id: str, attempt: int = 1) -> Path | None:
        """The log file a worker wrote for one task attempt, or None when that worker never ran it."""
        pattern = f"dag_id=*/run_id={run_id}/task_id={task_id}/attempt={attempt}.log"
        found = list((self.home(role) / "logs").glob(pattern))
        return found[0] if found else None


def session_members(leader: int) -> list[int]:
    """Every process in the session ``leader`` started (Linux ``/proc``), the leader included."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.getsid(int(entry.name)) == leader:
                    members.append(int(entry.name))
    return members


def clone_workspaces(project: Path, base: Path, roles: list[str]) -> dict[str, Path]:
    """One ``git clone`` of ``project`` (its committed state) per role: separate working directories."""
    workspaces = {}
    for role in roles:
        target = base / role / "project"
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "clone", "-q", str(project), str(target)], check=True)
        for name in ("config.local",):  # remote settings made with `dvc remote modify --local` travel too
            local = project / ".dvc" / name
            if local.is_file():
                (target / ".dvc" / name).write_text(local.read_text(encoding="utf-8"), encoding="utf-8")
        workspaces[role] = target
    return workspaces


@contextlib.contextmanager
def running(cluster: CeleryCluster) -> Iterator[CeleryCluster]:
    try:
        cluster.migrate()
        cluster.start()
        cluster.wait_healthy()
        yield cluster
    finally:
        cluster.stop()


def main() -> None:  # pragma: no cover - `make airflow-celery`, runs until Ctrl-C
    """Start the whole topology for this checkout, in the foreground, until interrupted."""
    import argparse

    import psycopg

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/feedbackflow_airflow")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/5")
    parser.add_argument("--base", default=None, help="where the workers' clones go (default: .work/celery)")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    paths = ProjectPaths.discover()
    project = paths.root
    base = (project / arguments.base).resolve() if arguments.base else paths.work / "celery"
    server, _, database = arguments.postgres.replace("postgresql+psycopg://", "postgresql://").rpartition("/")
    with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            admin.execute(f'CREATE DATABASE "{database}"')
    workspaces = {"control": project}
    missing = [role for role in WORKERS if not (base / role / "project").is_dir()]
    workspaces.update(clone_workspaces(project, base, missing))
    workspaces.update({role: base / role / "project" for role in WORKERS})
    cluster = CeleryCluster(base, workspaces, arguments.postgres, arguments.redis)
    with running(cluster):
        log.info("Airflow (CeleryExecutor) at %s, workers %s; Ctrl-C stops everything", cluster.api_url, list(WORKERS))
        with contextlib.suppress(KeyboardInterrupt):
            while all(process.poll() is None for process in cluster.processes.values()):
                time.sleep(5)


if __name__ == "__main__":  # pragma: no cover
    main()
