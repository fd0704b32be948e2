"""The run summary: what one pipeline run ingested, quarantined, anonymised, trained, decided and saw drift in.

Besides ``reports/run_summary.json`` (the latest run) every run keeps ``reports/runs/<experiment>.json`` with the
exact DVC hashes of its data and models, and is then saved as a DVC experiment (``dvc exp save``, a Git ref outside
the user's branch) together with the run summary, the registry snapshot of that moment (``registry/``) and
``models/champion.dvc``. ``dvc exp apply <name> && dvc pull`` restores the run exactly, champion included, on any
clone with access to the DVC remote. ``feedbackflow experiment RUN_ID`` maps an Airflow run id to its name.
"""

from __future__ import annotations

import logging
import subprocess
from datetime import UTC, datetime
from typing import Any

from feedbackflow.config import ProjectPaths, experiment_name
from feedbackflow.errors import ConfigError
from feedbackflow.io import read_json, write_json
from feedbackflow.storage.dvc import Dvc, DvcError
from feedbackflow.storage.registry import Registry, champion_of, write_local_copies

log = logging.getLogger(__name__)


def output_hashes(lock: dict[str, Any]) -> dict[str, str]:
    """Map every stage output path to its DVC hash, as recorded in ``dvc.lock``."""
    hashes = {}
    for stage in lock.get("stages", {}).values():
        for out in stage.get("outs", []):
            hashes[out["path"]] = out.get("md5") or out.get("hash", "")
    return hashes


_PROJECT = ProjectPaths.relative()

# saved with every experiment besides Git-tracked files: the run's summary, the registry and the champion pointer
EXPERIMENT_FILES = tuple(
    path.as_posix()
    for path in (
        _PROJECT.run_summary,
        _PROJECT.registry / "registry.json",
        _PROJECT.registry / "champion.json",
        _PROJECT.champion.with_suffix(".dvc"),
    )
)


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
        include = [*EXPERIMENT_FILES, (_PROJECT.run_records / f"{name}.json").as_posix()]
        present = [path for path in include if (dvc.root / path).is_file()]
        dvc("exp", "save", "--force", "--name", name, *(arg for path in present for arg in ("-I", path)))
    except DvcError as error:
        log.warning("could not save the run as a DVC experiment: %s", error)
        return None
    return name


def _registry_state(paths: ProjectPaths) -> dict[str, Any] | None:
    """The shared registry's newest snapshot (refreshing the local copies), or None without a DVC remote."""
    try:
        registry = Registry.open(paths.root)
    except ConfigError:
        return None
    state = registry.head()
    write_local_copies(paths, state)
    return state


def _evaluation(evaluation: dict[str, Any], ran: bool, approval: dict[str, Any] | None) -> dict[str, Any]:
    """The gate's decision of this run; a skipped evaluate made none (its report is an earlier run's)."""
    if not ran:
        reason = "evaluate was up to date (no new challenger and the same champion): no gate decision this run"
        return {
            "ran": False,
            "challenger": None,
            "champion": None,
            "gate": {"promote": None, "decision": "skipped", "reasons": [reason]},
        }
    promote = evaluation.get("promote")
    decision = "promote" if promote else "keep champion" if promote is False else "no decision"
    if promote and approval and approval.get("approved") is not None:
        decision = "approved" if approval["approved"] else "rejected by approver"
    return {
        "ran": True,
        "challenger": _scores(evaluation.get("challenger")),
        "champion": _scores(evaluation.get("champion")),
        "gate": {"promote": promote, "decision": decision, "reasons": evaluation.get("reasons", [])},
        "out_of_scope": _out_of_scope(evaluation.get("out_of_scope")),
        "approval": approval if approval and approval.get("approved") is not None else None,
        "report": _PROJECT.gate_report(".html").as_posix(),
    }


def build_summary(
    paths: ProjectPaths,
    run_id: str,
    stage_results: dict[str, Any] | None = None,
    trigger: dict[str, Any] | None = None,
    approval: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Collect the stage reports into one dictionary (counts, metrics and paths only, never text)."""
    reports = paths.reports
    ingest = read_json(reports / "ingest" / "ingest.json", {}) or {}
    validate = read_json(reports / "validate" / "validate.json", {}) or {}
    anonymise = read_json(reports / "anonymise" / "anonymise.json", {}) or {}
    train = read_json(reports / "train" / "metrics.json", {}) or {}
    evaluation = read_json(paths.gate, {}) or {}
    monitor = read_json(reports / "monitor" / "summary.json", {}) or {}
    lock = Dvc(paths.root).lock()
    ran = stage_results or {}
    state = _registry_state(paths)
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
            "rows_out": anonymise.get("rows_out"),
            "rows_held_back": anonymise.get("rows_held_back"),  # flagged by the leak gate's second scan
            "rows_changed": anonymise.get("rows_changed"),
            "entities_replaced": anonymise.get("entities", {}),
            "leak_gate": anonymise.get("leak_gate"),
            "key_id": (anonymise.get("settings") or {}).get("key_id"),
        },
        "train": {
            key: train.get(key)
            for key in (
                "device",
                "train_rows",
                "epochs",
                "validation_macro_f1",
                "train_seconds",
                "temperature",
                "validation_ece_before",
                "validation_ece_after",
            )
        },
        "evaluate": _evaluation(evaluation, ran.get("evaluate", True), approval),
        "champion": champion_of(state) if state else None,
        "registry": {"generation": state["generation"], "champion": state["champion"]} if state else None,
        "monitor": {
            "drift_failed": monitor.get("drift_failed"),  # the check's verdict (any gating test), not one test
            "failed_tests": monitor.get("failed_tests", []),
            "dataset_drift": monitor.get("dataset_drift"),
            "drift_share": monitor.get("drift_share"),
            "drifted_columns": monitor.get("drifted_columns", []),
            "unknown_share": (monitor.get("unknown_share") or {}).get("current"),
            "report": str((reports / "monitor" / "drift.html").relative_to(paths.root)),
        },
        "data_versions": output_hashes(lock),
    }


def _out_of_scope(section: dict[str, Any] | None) -> dict[str, Any] | None:
    """The challenger's out-of-scope and calibration figures on the test split (the gate report has the curve)."""
    challenger = (section or {}).get("challenger")
    if not challenger:
        return None
    keys = (
        *("in_scope_accuracy", "in_scope_precision", "in_scope_coverage", "oos_recall", "oos_precision"),
        *("unknown_share", "ece_before", "ece_after", "method", "threshold"),
    )
    return {
        **{key: challenger.get(key) for key in keys},
        "newest_batch_unknown_share": (challenger.get("newest_batch") or {}).get("unknown_share"),
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
    approval: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``reports/run_summary.json`` and ``reports/runs/<name>.json``, then save both in a DVC experiment."""
    summary = build_summary(paths, run_id, stage_results, trigger, approval)
    name = experiment_name(run_id)
    summary["experiment"] = name if save_experiment else None
    write_json(paths.run_record(run_id), summary)
    write_json(paths.run_summary, summary)
    if save_experiment and _save_experiment(Dvc(paths.root), name) is None:
        summary["experiment"] = None  # not saved: say so in the files too
        write_json(paths.run_record(run_id), summary)
        write_json(paths.run_summary, summary)
    return summary
