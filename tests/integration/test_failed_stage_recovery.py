"""One bad delivery or a failed stage never wedges the pipeline, on a real project with DVC remotes.

A night that fails after a stage wrote outputs (validate on a file without the ``label`` column, anonymise's leak
gate, a train task killed after writing) is followed by a run that succeeds with no manual step in between, and what
the failed run wrote is kept aside in ``.work/failed/<stage>/<run>/``. The failed night's console (``make demo``'s
runner) and task log end with the stage's own message, without a traceback on the console.

Lean on purpose (CI has 2 cores): the validate case runs the DAG through Airflow twice (the failed night, cut short
at validate, and the fixed night end to end); the anonymise and train cases call the task body every Airflow stage
task runs (``runner.run_stage``: pull, ``dvc repro``, push) on the project that night left behind.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import yaml

from feedbackflow.orchestration.runner import run_stage
from feedbackflow.privacy.pseudonym import KEY_ENV
from feedbackflow.storage.dvc import DvcError

from .conftest import BIN, PSEUDONYM_KEY, airflow_env, make_project, run

pytestmark = pytest.mark.integration

HEADER = ["id", "text", "channel", "created_at"]


def _delivery(path: Path, labelled: bool) -> None:
    """20 late messages; without ``labelled`` the export lost its ``label`` column."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*HEADER, "label"] if labelled else HEADER)
        for n in range(20):
            values = [f"late-{n}", f"where is my package, late order {n}", "app", "2026-11-01T10:00:00Z"]
            writer.writerow([*values, "delivery"] if labelled else values)


def _dag_test(project: Path, check: bool = True):
    return run([str(BIN / "airflow"), "dags", "test", "nightly_retrain"], project, _env(project), check=check)


def _env(project: Path) -> dict[str, str]:
    return airflow_env(project, project.parent / "airflow")


def _summary(project: Path) -> dict:
    return json.loads((project / "reports" / "run_summary.json").read_text(encoding="utf-8"))


def _failures(project: Path, stage: str) -> list[Path]:
    return sorted((project / ".work" / "failed" / stage).glob("*/failure.json"))


def _task(project: Path, stage: str) -> dict:
    """What the Airflow task of ``stage`` runs (the pseudonym key as the connection would provide it)."""
    return run_stage(stage, root=str(project), run_id="manual__recovery", env={**_env(project), KEY_ENV: PSEUDONYM_KEY})


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    project = make_project(tmp_path_factory.mktemp("recovery"))
    for stage in ("ingest", "validate"):  # a good first night: validate has a dvc.lock entry and pushed outputs
        _task(project, stage)
    return project


@pytest.fixture(scope="module")
def failed_validate(project: Path):
    """The second night's delivery lost its label column: validate fails after writing its outputs."""
    _delivery(project / "data" / "landing" / "broken.csv", labelled=False)
    done = run([sys.executable, "-m", "feedbackflow.demo.run"], project, _env(project), check=False)
    return done


def test_a_failed_night_ends_with_the_stages_own_message_and_no_traceback(project: Path, failed_validate) -> None:
    done = failed_validate
    assert done.returncode != 0
    assert "Traceback" not in done.stdout + done.stderr
    (record,) = (json.loads(path.read_text()) for path in _failures(project, "validate"))
    message = record["message"]
    assert record["exit_code"] == 65
    assert "broken.csv" in message and "'required_columns'" in message and "missing required column(s) label" in message
    assert "re-deliver" in message and "validate.batches_accepted" in message  # what to do
    assert done.stderr.rstrip().endswith(message.rstrip())  # the console ends with the stage's own message
    summary = _summary(project)  # the DAG's failure callback recorded the night: not the previous good one
    assert summary["status"] == "failed" and summary["failed"]["stage"] == "validate"
    assert summary["failed"]["message"] == message and summary["failed"]["exit_code"] == 65

    log = (project / "airflow_home" / "logs" / "demo-dags-test.log").read_text(encoding="utf-8")
    reason = log.rindex("validate failed: ")  # the failure callback's line, after Airflow's traceback
    assert reason > log.rfind("Traceback") and "broken.csv" in log[reason:].splitlines()[0]


def test_the_fixed_redelivery_runs_through_with_nothing_lost(project: Path, failed_validate) -> None:
    kept = _failures(project, "validate")[0].parent
    assert (kept / "data" / "quarantine" / "quarantine.parquet").is_file()  # the failed run's quarantine, kept
    assert (kept / "reports" / "validate" / "validate.json").is_file()

    landing = project / "data" / "landing" / "broken.csv"
    landing.unlink()  # the operator removes the bad file and the source re-delivers it fixed, under its name
    _delivery(landing, labelled=True)
    _dag_test(project)  # no manual clean-up in between

    summary = _summary(project)
    assert summary["stages"]["validate"] is True and summary["stages"]["train"] is True
    assert len(summary["ingest"]["new_batches"]) == 1
    report = json.loads((project / "reports" / "validate" / "validate.json").read_text())
    broken, fixed = [batch for batch in report["batches"] if batch["source_file"] == "broken.csv"]
    assert broken["superseded_by"] == fixed["batch_id"] and fixed["rows_accepted"] == 20
    assert report["rows_read"] == report["rows_accepted"] + report["rows_quarantined"]  # nothing lost


def _files(folder: Path) -> dict[str, bytes]:
    """Every file of a (partitioned) output folder by name, with its bytes."""
    return {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}


def test_a_leak_gate_failure_does_not_wedge_the_next_run(project: Path, failed_validate) -> None:
    params_file = project / "params.yaml"
    good = params_file.read_text(encoding="utf-8")
    params = yaml.safe_load(good)
    params["anonymise"]["entities"].remove("PERSON")  # a misconfiguration: the planted names are not replaced
    params["anonymise"]["operators"].pop("PERSON")
    params_file.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    anonymised = _files(project / "data" / "anonymised")

    with pytest.raises(DvcError) as raised:
        _task(project, "anonymise")

    assert raised.value.exit_code == 77 and str(raised.value).startswith("leak gate: ")
    assert "planted value missed: PERSON" in str(raised.value)
    (record,) = (json.loads(path.read_text()) for path in _failures(project, "anonymise"))
    assert record["kept"] == ["reports/anonymise/audit.json"]  # written before the gate stopped the stage

    params_file.write_text(good, encoding="utf-8")  # fixed
    result = _task(project, "anonymise")  # no manual clean-up in between

    assert result["ran"] is False  # the last good outputs are back, and they match the fixed params
    assert _files(project / "data" / "anonymised") == anonymised and "_index.json" in anonymised


def test_a_train_task_killed_after_writing_does_not_wedge_its_retry(project: Path, failed_validate) -> None:
    # A worker killed after writing leaves outputs in no cache, which DVC refuses to overwrite on the next pull.
    card = (project / "models" / "challenger" / "README.md").read_text(encoding="utf-8")
    (project / "models" / "challenger" / "README.md").write_text("half-written card", encoding="utf-8")
    (project / "reports" / "train" / "metrics.json").write_text("{}", encoding="utf-8")

    result = _task(project, "train")

    assert result["ran"] is False and (project / "models" / "challenger" / "README.md").read_text() == card
    (kept,) = (project / ".work" / "failed" / "train").iterdir()
    assert (kept / "models" / "challenger" / "README.md").read_text() == "half-written card"
