"""One bad delivery or a failed stage never wedges the pipeline: real DAG runs (``airflow dags test``) over DVC.

A night that fails after a stage wrote outputs (validate on a file without the ``label`` column, anonymise's leak
gate, a train task killed after writing) is followed by a run that succeeds with no manual step in between, and what
the failed run wrote is kept aside in ``.work/failed/<stage>/<run>/``. The failed night's console (``make demo``'s
runner) and task log end with the stage's own message, without a traceback on the console.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import BIN, airflow_env, make_project, run

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


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    project = make_project(tmp_path_factory.mktemp("recovery"))
    _dag_test(project)  # a good first night: every stage has a dvc.lock entry and outputs in the remote
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


def test_a_leak_gate_failure_and_a_train_killed_after_writing_do_not_wedge_the_next_run(
    project: Path, failed_validate
) -> None:
    params_file = project / "params.yaml"
    good = params_file.read_text(encoding="utf-8")
    params = yaml.safe_load(good)
    params["anonymise"]["entities"].remove("EMAIL_ADDRESS")  # a misconfiguration: e-mails are no longer replaced
    params["anonymise"]["operators"].pop("EMAIL_ADDRESS")
    params_file.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    before = _summary(project)["run_id"]

    done = _dag_test(project, check=False)

    assert _summary(project)["run_id"] == before  # the run stopped at anonymise
    (record,) = (json.loads(path.read_text()) for path in _failures(project, "anonymise"))
    assert record["exit_code"] == 77 and "leak gate" in record["message"] and "EMAIL_ADDRESS" in record["message"]
    assert "reports/anonymise/audit.json" in record["kept"]
    assert "leak gate" in done.stdout + done.stderr

    params_file.write_text(good, encoding="utf-8")  # fixed
    # A train task killed after writing leaves outputs in no cache, which DVC refuses to overwrite on the next pull.
    (project / "models" / "challenger" / "README.md").write_text("half-written card", encoding="utf-8")
    (project / "reports" / "train" / "metrics.json").write_text("{}", encoding="utf-8")

    _dag_test(project)

    assert _summary(project)["run_id"] != before
    assert (project / "models" / "challenger" / "README.md").read_text(encoding="utf-8") != "half-written card"
    kept = [path.parent for path in (project / ".work" / "failed" / "train").glob("*/models")]
    assert len(kept) == 1 and (kept[0] / "models" / "challenger" / "README.md").read_text() == "half-written card"
