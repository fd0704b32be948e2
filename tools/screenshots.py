"""``make screenshots``: three simulated nights through the real pipeline, then offline PNGs of what governance opens.

In a scratch copy of the project (``--work``, default ``.work/screenshots``): BANKING77 demo batches (the third night
drifted: a tenth of the intents five times as frequent, see :func:`feedbackflow.demo.generate.generate`) go through
``nightly_retrain`` one night at a time with ``airflow dags test`` (ingest -> ... -> monitor -> promote ->
summarise -> record, with a short training: ``train.epochs`` 1). The DAG's own ``record`` task adds the night's
snapshot to the Evidently workspace, timestamped with the run's logical date (the simulated night, not the moment the
script ran), and keeps its governance record: one snapshot per night, checked before any picture. Then Evidently's
UI and Airflow's API server are started on free loopback ports and headless Chromium (Debian's ``chromium``) takes:

* ``evidently_dashboard.png``: the model's project dashboard after the three nights;
* ``airflow_governance_menu.png``: the Airflow UI with the "Governance" menu entry (its page open);
* ``governance_run_view.png``: the "Governance" tab of the third night's DAG run (the per-run view);
* ``governance_run_page.png``: the same per-run view on its own page.

Chromium runs with a proxy that points nowhere, so any request that would leave the machine fails: what renders
renders offline. Airflow runs with the simple auth manager in all-admins mode (no login form to script) and the
governance auth manager granting the anonymous admin the Governance views.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from feedbackflow.config import ProjectPaths

REPO = Path(__file__).resolve().parents[1]
COPIED = (
    "dvc.yaml",
    "params.yaml",
    ".dvcignore",
    "src",
    "dags",
    "plugins",
    "data/banking77",
    "data/erased_subjects.json",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str, seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(2)
    raise RuntimeError(f"{url} did not answer within {seconds:.0f} s")


def _run(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
    with log.open("a", encoding="utf-8") as handle:
        handle.write(f"\n$ {' '.join(command)}\n")
        handle.flush()
        done = subprocess.run(command, env=env, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed (exit {done.returncode}); see {log}")


def prepare(work: Path, rows_per_night: int, seed: int = 42) -> dict[str, str]:
    """A scratch project with its own DVC remotes and Airflow home; returns the environment to run it with."""
    import yaml

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    corpora = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))["detector"]["corpora"]
    for name in (*COPIED, *corpora):  # the detector stage's corpora are its deps, even with the detector off
        source, target = REPO / name, work / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, target)
    params = yaml.safe_load((work / "params.yaml").read_text(encoding="utf-8"))
    # A short night on a shared CPU: small batches, one short training. The scratch champion is undertrained on
    # purpose (the screenshots show the governance machinery, not model quality), so the quality thresholds that
    # would refuse it, and the per-label minimum that small nights cannot meet, are relaxed here only.
    params["train"].update(epochs=1, max_length=32, early_stopping_patience=0)
    params["evaluate"].update(min_accuracy=0.0, min_macro_f1=0.0)
    params["validate"]["min_rows_per_label"] = 0
    params["monitor"]["retrain"]["min_new_labelled_rows"] = rows_per_night // 2
    # Training the learned detector takes about 25 CPU-minutes: the scratch project anonymises with the rules alone.
    params["anonymise"]["detector"] = False
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(work / "airflow_home"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(work / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(work / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__AUTH_MANAGER": "feedbackflow.monitoring.access.GovernanceAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__API_AUTH__JWT_SECRET": "screenshots-only-" + os.urandom(8).hex(),
        "FEEDBACKFLOW_GOVERNANCE_USERS": "Anonymous",
        "FEEDBACKFLOW_PROJECT_DIR": str(work),
        "FEEDBACKFLOW_REPORTS_PUBLIC": "false",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "DVC_NO_ANALYTICS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    log = work / "screenshots.log"
    _run(["dvc", "init", "--no-scm", "-q"], env, work, log)
    (work / "storage").mkdir()
    for name in ("general", "restricted"):
        # absolute: `dvc remote add` makes a relative path relative to .dvc/, which put the remotes (and the shared
        # registry in them) outside the scratch folder, so a rerun inherited the previous run's champion
        _run(
            [
                "dvc",
                "remote",
                "add",
                *(["-d"] if name == "general" else []),
                name,
                str(work / "storage" / f"dvc-{name}"),
            ],
            env,
            work,
            log,
        )
    _run(["airflow", "db", "migrate"], env, work, log)
    _run(["feedbackflow", "pools"], env, work, log)
    _run(
        [
            "feedbackflow",
            "generate",
            "--nights",
            "3",
            "--rows-per-night",
            str(rows_per_night),
            "--seed",
            str(seed),
            "--landing",
            str(work / "batches"),
        ],
        env,
        work,
        log,
    )
    return env


def simulate_nights(work: Path, env: dict[str, str]) -> list[str]:
    """Run nightly_retrain once per batch (oldest first); its ``record`` task records each run in the workspace."""
    from feedbackflow.io import read_json
    from feedbackflow.settings import load_settings

    paths = ProjectPaths(work)
    settings = load_settings(paths.params)
    landing = work / settings.ingest.landing_dir
    landing.mkdir(parents=True, exist_ok=True)
    run_ids = []
    for night, batch in enumerate(sorted((work / "batches").glob("*.csv")), start=1):
        shutil.move(str(batch), landing / batch.name)
        day = datetime.strptime(batch.stem.removeprefix("feedback-"), "%Y-%m-%d").replace(hour=2)
        _run(["airflow", "dags", "test", "nightly_retrain", day.isoformat()], env, work, work / "screenshots.log")
        run_id = str((read_json(paths.run_summary, {}) or {}).get("run_id"))
        snapshot = (read_json(paths.governance_record(run_id), {}) or {}).get("snapshot") or {}
        if not snapshot.get("snapshot_id"):
            raise RuntimeError(f"night {night}: run {run_id} kept no governance record; see {work / 'screenshots.log'}")
        run_ids.append(run_id)
        print(f"night {night}: run {run_id}, snapshot {snapshot['snapshot_id']} at {snapshot.get('timestamp')}")
    return run_ids


def one_snapshot_per_night(workspace_dir: Path, run_ids: list[str]) -> Any:
    """The model's project, after checking it holds exactly one snapshot per simulated night."""
    from evidently.ui.workspace import Workspace

    from feedbackflow.monitoring.workspace import PROJECT_PREFIX

    workspace = Workspace(str(workspace_dir))
    project = next(p for p in workspace.list_projects() if p.name.startswith(PROJECT_PREFIX))
    snapshots = [workspace.get_run(project.id, snapshot_id) for snapshot_id in workspace.list_runs(project.id)]
    days = sorted(snapshot.timestamp.date().isoformat() for snapshot in snapshots if snapshot is not None)
    if len(days) != len(run_ids) or len(set(days)) != len(days):
        raise RuntimeError(f"expected one snapshot per night for {len(run_ids)} nights, found {days}")
    return project


def chromium(url: str, target: Path, height: int = 2200) -> None:
    """A PNG of ``url`` by headless Chromium, with every non-loopback request sent to a dead proxy (offline)."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if not binary:
        raise RuntimeError("chromium not found: apt-get install -y chromium")
    command = [
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--proxy-server=http://127.0.0.1:9",
        f"--window-size=1440,{height}",
        "--virtual-time-budget=25000",
        f"--screenshot={target}",
        url,
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=180)
    if not target.is_file() or target.stat().st_size < 10_000:
        raise RuntimeError(f"chromium wrote no usable screenshot of {url}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images")
    parser.add_argument("--work", type=Path, default=ProjectPaths(REPO).work / "screenshots")
    parser.add_argument("--rows-per-night", type=int, default=1000, help="messages per nightly batch")
    parser.add_argument("--seed", type=int, default=42, help="the demo generator's seed")
    parser.add_argument("--reuse", action="store_true", help="skip the simulation; screenshot an existing --work")
    args = parser.parse_args(argv)
    work, out = args.work.resolve(), args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.reuse:
        env = json.loads((work / "env.json").read_text(encoding="utf-8"))
        run_ids = json.loads((work / "runs.json").read_text(encoding="utf-8"))
    else:
        env = prepare(work, args.rows_per_night, args.seed)
        run_ids = simulate_nights(work, env)
        (work / "env.json").write_text(json.dumps(env), encoding="utf-8")
        (work / "runs.json").write_text(json.dumps(run_ids), encoding="utf-8")
    workspace_dir = ProjectPaths(work).governance / "evidently"
    project = one_snapshot_per_night(workspace_dir, run_ids)
    evidently_port, airflow_port = _free_port(), _free_port()
    bin_dir = Path(sys.executable).parent
    log = (work / "servers.log").open("a", encoding="utf-8")
    servers = [
        subprocess.Popen(
            [str(bin_dir / "evidently"), "ui", "--workspace", str(workspace_dir), "--port", str(evidently_port)],
            env=env,
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(
            [str(bin_dir / "airflow"), "api-server", "--port", str(airflow_port)],
            env=env,
            cwd=work,
            stdout=log,
            stderr=subprocess.STDOUT,
        ),
    ]
    try:
        evidently = f"http://127.0.0.1:{evidently_port}"
        airflow = f"http://127.0.0.1:{airflow_port}"
        _wait(f"{evidently}/api/version")
        _wait(f"{airflow}/api/v2/monitor/health")
        run = urllib.parse.quote(run_ids[-1], safe="")
        shots = {
            "evidently_dashboard.png": (f"{evidently}/projects/{project.id}", 3600),
            "airflow_governance_menu.png": (f"{airflow}/plugin/governance", 1400),
            "governance_run_view.png": (f"{airflow}/dags/nightly_retrain/runs/{run}/plugin/governance-run", 2000),
            "governance_run_page.png": (f"{airflow}/feedbackflow/runs/nightly_retrain/{run}", 2600),
        }
        for name, (url, height) in shots.items():
            chromium(url, out / name, height)
            print(f"{out / name}  <- {url}", flush=True)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        log.close()


if __name__ == "__main__":
    main()
