"""The whole nightly_retrain DAG through Airflow, DVC and every real library, on tiny data and a tiny BERT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from .conftest import BIN, airflow_env, run

pytestmark = pytest.mark.integration


def _dag_test(project: Path) -> str:
    done = run(
        [str(BIN / "airflow"), "dags", "test", "nightly_retrain"],
        project,
        airflow_env(project, project.parent / "airflow"),
    )
    return done.stdout + done.stderr


def _remote_objects(project: Path, name: str) -> set[str]:
    root = project / "storage" / name
    return {"".join(path.relative_to(root).parts[-2:]) for path in root.rglob("*") if path.is_file()}


@pytest.fixture(scope="module")
def first_run(tiny_project):
    log = _dag_test(tiny_project)
    return tiny_project, log


def test_first_run_produces_every_artifact(first_run):
    project, _ = first_run
    summary = json.loads((project / "reports" / "run_summary.json").read_text())
    assert summary["validate"]["rows_quarantined"] > 0
    assert (
        summary["validate"]["rows_accepted"] + summary["validate"]["rows_quarantined"]
        == summary["validate"]["rows_read"]
    )
    assert sum(summary["anonymise"]["entities_replaced"].values()) > 0
    assert summary["evaluate"]["challenger"]["accuracy"] is not None
    assert summary["evaluate"]["gate"]["promote"] is True
    assert summary["champion"]["version"] == "v1"
    assert (project / summary["monitor"]["report"]).read_text().lstrip().lower().startswith("<")
    assert summary["experiment"] and summary["experiment"].startswith("run-")
    for name in ("model.safetensors", "config.json", "label_map.json", "tokenizer.json"):
        assert (project / "models" / "challenger" / name).is_file()
    assert json.loads((project / "models" / "challenger" / "label_map.json").read_text()) == {
        "billing": 0,
        "delivery": 1,
        "login": 2,
        "praise": 3,
    }
    gate = json.loads((project / "reports" / "evaluate" / "gate.json").read_text())
    assert gate["promote"] and gate["reasons"]


def test_dvc_lock_and_remotes(first_run):
    project, _ = first_run
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert set(lock["stages"]) == {"ingest", "validate", "anonymise", "split", "train", "evaluate", "monitor"}
    general, restricted = _remote_objects(project, "dvc-general"), _remote_objects(project, "dvc-restricted")
    outs = {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage["outs"]}
    # directory manifests are stored as <md5>.dir
    assert outs["models/challenger"].replace(".dir", "") + ".dir" in general
    assert outs["data/anonymised"] in general
    for restricted_out in ("data/raw", "data/validated", "data/quarantine"):
        assert outs[restricted_out] in restricted
        assert outs[restricted_out] not in general, f"{restricted_out} leaked to the general remote"
    assert (project / "models" / "champion.dvc").is_file()


def test_second_run_without_new_data_trains_nothing(first_run):
    project, _ = first_run
    lock_before = (project / "dvc.lock").read_text()
    _dag_test(project)
    summary = json.loads((project / "reports" / "run_summary.json").read_text())
    assert summary["stages"]["train"] is False
    assert summary["stages"]["evaluate"] is False
    assert summary["ingest"]["new_batches"] == []
    assert (project / "dvc.lock").read_text() == lock_before
    history = (project / "registry" / "history.jsonl").read_text().splitlines()
    assert len(history) == 1, "the unchanged challenger must not be promoted again"


def _text_of(path: Path) -> str:
    if path.suffix == ".parquet":
        import pandas as pd

        return "\n".join(pd.read_parquet(path).astype(str).to_numpy().ravel())
    return path.read_bytes().decode("utf-8", errors="ignore")


def test_no_planted_personal_data_downstream_of_anonymise(first_run):
    project, log = first_run
    canaries = json.loads((project / "data" / "demo_canaries.json").read_text())
    planted = [value for values in canaries.values() for value in values]
    assert planted, "the generator planted no personal data"
    scanned = [project / "data" / name for name in ("anonymised", "split")]
    scanned += [project / "models", project / "reports", project / "registry"]
    files = [path for folder in scanned for path in folder.rglob("*") if path.is_file()]
    corpus = "\n".join(_text_of(path) for path in files) + log
    leaks = [value for value in planted if value in corpus]
    assert leaks == [], f"{len(leaks)} planted values found downstream of anonymise"
    raw = "\n".join(_text_of(path) for path in (project / "data" / "raw").glob("*.csv"))
    assert all(value in raw for value in planted), "raw data must keep the original text (restricted remote)"
