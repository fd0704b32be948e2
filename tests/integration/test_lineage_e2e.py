"""The nightly_retrain DAG through Airflow with the OpenLineage provider's HTTP transport to a receiver on loopback.

Every task must emit START and COMPLETE with at least one dataset, every dataset version must be a hash that
``dvc.lock`` (or the champion's ``.dvc`` file) records, and no planted personal data or credential may appear in any
event. The emission time per task is a benchmark figure, not a test (``make bench-lineage``: machines are shared and
noisy); :func:`run_with_receiver` and :func:`emission_overhead` are shared with it.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from feedbackflow.orchestration.exclusion import NIGHT_GUARD
from feedbackflow.orchestration.tasks import CHANGES_TASK

from .conftest import BIN, PSEUDONYM_KEY, airflow_env, make_project, run

pytestmark = pytest.mark.integration

NAMESPACE = "feedbackflow-e2e"
#: the DAG's tasks with the default params (approval off): each must report lineage
TASKS = {"ingest", "validate", "anonymise", "split", "train", "evaluate", "monitor", "gate", "promote", "summarise"}
TASKS |= {"record"}


class _Receiver(BaseHTTPRequestHandler):
    """Keeps every event with its arrival time and, for a COMPLETE, the hashes dvc.lock held at that moment."""

    events: ClassVar[list[tuple[float, dict, set[str]]]] = []
    project: ClassVar[Path]

    def do_POST(self) -> None:
        arrived = time.time()
        event = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        hashes = _lock_hashes(self.project) if event.get("eventType") == "COMPLETE" else set()
        self.events.append((arrived, event, hashes))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args) -> None:  # quiet
        pass


def _lock_hashes(project: Path) -> set[str]:
    """Every hash in dvc.lock (deps and outs) and the champion's .dvc file, as they are now."""
    found: set[str] = set()
    for path, kinds in ((project / "dvc.lock", ("deps", "outs")), (project / "models" / "champion.dvc", ("outs",))):
        data = yaml.safe_load(path.read_text()) if path.is_file() else {}
        entries = data.get("stages", {}).values() if "stages" in (data or {}) else [data or {}]
        found |= {item.get("md5") for entry in entries for kind in kinds for item in entry.get(kind, [])}
    return found - {None}


def run_with_receiver(base: Path) -> tuple[Path, list[tuple[float, dict, set[str]]], float, str]:
    """Build the tiny project under ``base`` and run nightly_retrain once with the HTTP transport to a receiver.

    Returns the project, the task events (arrival time, event, dvc.lock's hashes at a COMPLETE), the run's wall
    seconds and Airflow's output.
    """
    project = make_project(base)
    _Receiver.project = project
    _Receiver.events = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        **airflow_env(project, project.parent / "airflow"),
        "OPENLINEAGE_URL": f"http://127.0.0.1:{server.server_port}",
        "OPENLINEAGE_NAMESPACE": NAMESPACE,
        # as feedbackflow.env sets them
        "AIRFLOW__OPENLINEAGE__EXTRACTORS": "feedbackflow.orchestration.lineage.DvcStageExtractor",
        "AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD": "True",
    }
    started = time.time()
    done = run([str(BIN / "airflow"), "dags", "test", "nightly_retrain"], project, env)
    wall = time.time() - started
    server.shutdown()
    task_events = [entry for entry in _Receiver.events if "." in entry[1]["job"]["name"]]
    return project, task_events, wall, done.stdout + done.stderr


@pytest.fixture(scope="module")
def lineage_run(tmp_path_factory):
    return run_with_receiver(tmp_path_factory.mktemp("lineage"))


def _task(event: dict) -> str:
    return event["job"]["name"].split(".", 1)[1]


def test_every_task_emits_start_and_complete_with_datasets(lineage_run):
    _, events, _, log = lineage_run
    assert events, f"no task events received\n{log[-3000:]}"
    by_task: dict[str, set[str]] = {}
    for _, event, _ in events:
        assert event["job"]["namespace"] == NAMESPACE
        # the guard reads run states, `changes` dvc.lock's hashes: no data
        if event["eventType"] == "COMPLETE" and _task(event) not in (NIGHT_GUARD, CHANGES_TASK):
            assert event["inputs"] or event["outputs"], f"{_task(event)}: COMPLETE without a dataset"
        by_task.setdefault(_task(event), set()).add(event["eventType"])
    missing = {task for task in TASKS if not {"START", "COMPLETE"} <= by_task.get(task, set())}
    assert not missing, f"tasks without START and COMPLETE: {sorted(missing)}\n{log[-3000:]}"


def test_dataset_versions_are_the_dvc_lock_hashes(lineage_run):
    """Each COMPLETE's versions are dvc.lock's as the task left it (`dvc exp save` later re-records the champion
    pointer that evaluate and monitor read, so the final lock is compared for the stage outputs only)."""
    project, events, _, _ = lineage_run
    versions = {
        (_task(event), dataset["name"]): (dataset["facets"].get("version", {}).get("datasetVersion"), hashes)
        for _, event, hashes in events
        if event["eventType"] == "COMPLETE"
        for dataset in event["inputs"] + event["outputs"]
    }
    # the one dataset outside DVC: the review deliveries label_pull writes into the landing folder (none on this
    # night); ingest's landing-folder hash in dvc.lock versions them once it takes them
    assert {key for key, (version, _) in versions.items() if version is None} <= {("label_pull", "data/landing/review")}
    wrong = {key: version for key, (version, hashes) in versions.items() if version and version not in hashes}
    assert wrong == {}
    complete = [event for _, event, _ in events if event["eventType"] == "COMPLETE"]
    final = _lock_hashes(project)
    outputs = {d["name"]: versions[(_task(e), d["name"])][0] for e in complete for d in e["outputs"]}
    outputs = {name: version for name, version in outputs.items() if version}
    assert outputs and {name: version for name, version in outputs.items() if version not in final} == {}
    ingest = next(event for event in complete if _task(event) == "ingest")
    assert ingest["inputs"][0]["name"] == "data/landing", "the source comes first"
    train = next(event for event in complete if _task(event) == "train")
    assert "models/challenger" in {d["name"] for d in train["outputs"]}
    for task in ("evaluate", "promote"):
        event = next(event for event in complete if _task(event) == task)
        assert "models/challenger" in {d["name"] for d in event["inputs"]}, task


def test_custom_facets_carry_the_runs_counts(lineage_run):
    project, events, _, _ = lineage_run
    summary = json.loads((project / "reports" / "run_summary.json").read_text())
    facets = {_task(e): e["run"]["facets"] for _, e, _ in events if e["eventType"] == "COMPLETE"}
    quality = facets["validate"]["feedbackflow_quality"]["counts"]
    assert quality["rows_quarantined"] == summary["validate"]["rows_quarantined"] > 0
    assert quality["quarantined_by_rule"] == summary["validate"]["quarantined_by_rule"]
    privacy = facets["anonymise"]["feedbackflow_privacy"]["counts"]
    assert privacy["entities_replaced"] == summary["anonymise"]["entities_replaced"]
    assert privacy["leak_gate"]["passed"] is True
    gate = facets["evaluate"]["feedbackflow_gate"]["counts"]
    assert gate["promote"] is summary["evaluate"]["gate"]["promote"]
    drift = facets["monitor"]["feedbackflow_drift"]["counts"]
    assert drift["checked"] is False, "the first night has no champion to compare with: the check is skipped"


def test_no_personal_data_or_credential_in_any_event(lineage_run):
    project, events, _, _ = lineage_run
    canaries = json.loads((project / "data" / "demo_canaries.json").read_text())
    planted = [value for values in canaries.values() for value in values]
    corpus = "\n".join(json.dumps(event) for _, event, _ in events).casefold()
    assert planted and not [value for value in planted if value.casefold() in corpus]
    assert PSEUDONYM_KEY.casefold() not in corpus


def test_the_lineage_command_joins_the_same_hashes(lineage_run):
    """`feedbackflow lineage v1` on the run's project: batches, data and model hashes equal the lock and the events."""
    project, events, _, _ = lineage_run
    done = run([str(BIN / "feedbackflow"), "lineage", "v1", "--json"], project, airflow_env(project, project.parent))
    chain = json.loads(done.stdout)
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    outs = {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage["outs"]}
    assert {step["path"]: step["md5"] for step in chain["data"]} == {
        step["path"]: outs[step["path"]] for step in chain["data"]
    }
    manifest = [json.loads(line) for line in (project / "data" / "raw" / "_manifest.jsonl").read_text().splitlines()]
    assert [batch["sha256"] for batch in chain["batches"]] == [entry["sha256"] for entry in manifest]
    champion = yaml.safe_load((project / "models" / "champion.dvc").read_text())["outs"][0]["md5"]
    assert chain["model"]["model_md5"] == champion
    ingest = next(e for _, e, _ in events if e["eventType"] == "COMPLETE" and _task(e) == "ingest")
    raw = next(d for d in ingest["outputs"] if d["name"] == "data/raw")
    assert raw["facets"]["version"]["datasetVersion"] == chain["data"][0]["md5"], "the event and the chain agree"
    assert chain["decided_by"] == "gate (automatic)" and chain["gate"]["promote"] is True


def emission_overhead(events: list[tuple[float, dict, set[str]]]) -> tuple[dict[str, float], dict[str, float]]:
    """Per task: the emission seconds of its two events, and the seconds the task ran.

    A COMPLETE event is stamped when the provider's listener starts (``end_date``), so its arrival minus its stamp is
    the whole emission: extraction, event building, the HTTP round trip. A START is stamped with the task's start,
    before the task process even loads the DAG, so its stamp says nothing about emission; START does the same work
    without reading a report, so it is counted as much as the COMPLETE.
    """
    emission: dict[str, float] = {}
    stamps: dict[str, dict[str, float]] = {}
    for arrived, event, _ in events:
        stamped = datetime.fromisoformat(event["eventTime"]).timestamp()
        stamps.setdefault(_task(event), {})[event["eventType"]] = stamped
        if event["eventType"] == "COMPLETE":
            emission[_task(event)] = 2 * max(arrived - stamped, 0.0)
    runs = {task: times["COMPLETE"] - times["START"] for task, times in stamps.items() if len(times) == 2}
    return emission, runs
