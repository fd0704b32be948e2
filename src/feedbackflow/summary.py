"""The run summary: what one pipeline run ingested, quarantined, anonymised, trained, decided and saw drift in.

Besides ``reports/run_summary.json`` (the latest run) every run keeps ``reports/runs/<run id>.json`` with the exact
DVC hashes of its data and models, and is saved as a DVC experiment (``dvc exp save``): a Git ref outside the
user's branch, so any past run can be restored with ``dvc exp apply <name> && dvc checkout`` (or ``dvc exp branch``)
without the branch's history being rewritten.
"""

from __future__ import annotations

import logging
import re
import subprocess
from datetime import UTC, datetime
from typing import Any

from feedbackflow.config import ProjectPaths
from feedbackflow.io import read_json, write_json
from feedbackflow.storage.dvc import Dvc, DvcError
from feedbackflow.storage.registry import Registry

log = logging.getLogger(__name__)


def experiment_name(run_id: str) -> str:
    """A Git-ref-safe experiment name derived from the orchestrator's run id."""
    return "run-" + re.sub(r"[^A-Za-z0-9._-]+", "-", run_id).strip("-.")[:80]


def output_hashes(lock: dict[str, Any]) -> dict[str, str]:
    """Map every stage output path to its DVC hash, as recorded in ``dvc.lock``."""
    hashes = {}
    for stage in lock.get("stages", {}).values():
        for out in stage.get("outs", []):
            hashes[out["path"]] = out.get("md5") or out.get("hash", "")
    return hashes


def _save_experiment(dvc: Dvc, name: str) -> str | None:
    has_commit = (
        subprocess.run(
            ["git", "rev-parse", "--verify", "HEAD"], cwd=dvc.root, capture_output=True, check=False
        ).returncode
        == 0
    )
    if not has_commit:
        log.warning("not a Git repository with a commit: run not saved as a DVC experiment")
        return None
    try:
        dvc("exp", "save", "--force", "--name", name)
    except DvcError as error:
        log.warning("could not save the run as a DVC experiment: %s", error)
        return None
    return name


def build_summary(
    paths: ProjectPaths,
    run_id: str,
    stage_results: dict[str, Any] | None = None,
    trigger: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Collect the stage reports into one dictionary (counts, metrics and paths only, never text)."""
    reports = paths.reports
    ingest = read_json(reports / "ingest" / "ingest.json", {}) or {}
    validate = read_json(reports / "validate" / "validate.json", {}) or {}
    anonymise = read_json(reports / "anonymise" / "anonymise.json", {}) or {}
    train = read_json(reports / "train" / "metrics.json", {}) or {}
    evaluation = read_json(reports / "evaluate" / "gate.json", {}) or {}
    monitor = read_json(reports / "monitor" / "summary.json", {}) or {}
    lock = Dvc(paths.root).lock()
    ran = stage_results or {}
    return {
        "run_id": run_id,
        "finished_at": datetime.now(UTC).isoformat(),
        "trigger": trigger or {"run_type": "manual"},
        "stages": stage_results or {},
        "ingest": {
            # a skipped ingest stage found nothing new; its report is the previous run's
            "new_batches": ingest.get("new_batches", []) if ran.get("ingest", True) else [],
            "batches_total": ingest.get("batches_total"),
        },
        "validate": {
            key: validate.get(key) for key in ("rows_read", "rows_accepted", "rows_quarantined", "quarantined_by_rule")
        },
        "anonymise": {
            "rows": anonymise.get("rows"),
            "rows_changed": anonymise.get("rows_changed"),
            "entities_replaced": anonymise.get("entities", {}),
            "leak_gate": anonymise.get("leak_gate"),
            "key_id": (anonymise.get("settings") or {}).get("key_id"),
        },
        "train": {
            key: train.get(key) for key in ("device", "train_rows", "epochs", "validation_macro_f1", "train_seconds")
        },
        "evaluate": {
            "challenger": _scores(evaluation.get("challenger")),
            "champion": _scores(evaluation.get("champion")),
            "gate": {"promote": evaluation.get("promote"), "reasons": evaluation.get("reasons", [])},
        },
        "champion": Registry(paths).champion(),
        "monitor": {
            "dataset_drift": monitor.get("dataset_drift"),
            "drift_share": monitor.get("drift_share"),
            "drifted_columns": monitor.get("drifted_columns", []),
            "report": str((reports / "monitor" / "drift.html").relative_to(paths.root)),
        },
        "data_versions": output_hashes(lock),
    }


def _scores(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    if not metrics:
        return None
    return {key: metrics.get(key) for key in ("accuracy", "macro_f1", "version", "model_sha256") if key in metrics}


def write_summary(
    paths: ProjectPaths,
    run_id: str,
    stage_results: dict[str, Any] | None = None,
    save_experiment: bool = True,
    trigger: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``reports/run_summary.json`` and ``reports/runs/<run id>.json``; save the run as a DVC experiment."""
    summary = build_summary(paths, run_id, stage_results, trigger)
    name = experiment_name(run_id)
    summary["experiment"] = _save_experiment(Dvc(paths.root), name) if save_experiment else None
    write_json(paths.reports / "runs" / f"{name}.json", summary)
    write_json(paths.reports / "run_summary.json", summary)
    return summary
