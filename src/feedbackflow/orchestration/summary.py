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
from collections.abc import Iterable
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


def _save_experiment(dvc: Dvc, name: str, ran: Iterable[str] = ()) -> str | None:
    has_commit = (
        subprocess.run(
            ["git", "rev-parse", "--verify", "HEAD"], cwd=dvc.root, capture_output=True, check=False
        ).returncode
        == 0
    )
    if not has_commit:
        log.warning("not a Git repository with a commit: run not saved as a DVC experiment")
        return None
    # `dvc exp save` without targets runs `dvc commit --force` on every stage: a stage that did not run tonight (a
    # dry run, a failed night) would have its new inputs recorded against its old outputs, and the next night would
    # skip it. It commits the stages that ran tonight (`ran`: what changed since is the champion pointer promote
    # moved, so a promotion does not re-run evaluate and monitor) and the champion pointer; with neither, dvc.lock is
    # put back as the stages wrote it.
    lock = dvc.root / "dvc.lock"
    written = lock.read_bytes() if lock.is_file() else None
    champion = _PROJECT.champion.with_suffix(".dvc").as_posix()
    targets = [*ran, *([champion] if (dvc.root / champion).is_file() else [])]
    try:
        include = [*EXPERIMENT_FILES, (_PROJECT.run_records / f"{name}.json").as_posix()]
        present = [path for path in include if (dvc.root / path).is_file()]
        dvc("exp", "save", "--force", "--name", name, *(arg for path in present for arg in ("-I", path)), *targets)
    except DvcError as error:
        log.warning("could not save the run as a DVC experiment: %s", error)
        return None
    finally:
        if not targets and written is not None and lock.read_bytes() != written:
            lock.write_bytes(written)
            log.warning("dvc exp save rewrote dvc.lock: put back as the stages wrote it")
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
        "out_of_scope": _out_of_scope(
            evaluation.get("out_of_scope"), (evaluation.get("thresholds") or {}).get("min_in_scope_coverage")
        ),
        "approval": approval if approval and approval.get("approved") is not None else None,
        "report": _PROJECT.gate_report(".html").as_posix(),
    }


def build_summary(
    paths: ProjectPaths,
    run_id: str,
    stage_results: dict[str, Any] | None = None,
    trigger: dict[str, Any] | None = None,
    approval: dict[str, Any] | None = None,
    review: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Collect the stage reports into one dictionary (counts, metrics and paths only, never text).

    ``review`` holds the results of the review loop's tasks (``label_pull``, ``label_push``) when the run had them.
    """
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
        "status": "succeeded",
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
            "rows_held_back": anonymise.get("rows_held_back"),  # planted value missed, second scan, or language
            "rows_held_back_by_language": anonymise.get("rows_held_back_by_language") or {},
            "rows_changed": anonymise.get("rows_changed"),
            "entities_replaced": anonymise.get("entities", {}),
            "leak_gate": anonymise.get("leak_gate"),
            "key_id": (anonymise.get("settings") or {}).get("key_id"),
            # batches and rows reused from earlier nights' parts, and anonymised this night
            "incremental": anonymise.get("incremental"),
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
        "review": review_section(paths, review),
    }


def review_section(paths: ProjectPaths, tasks: dict[str, Any] | None, now: datetime | None = None) -> dict[str, Any]:
    """What the review loop did this night: its tasks' results (a failure is kept here, never fails the run) and
    the night's figures (sent, labelled, turnaround, agreement, unknown share; :func:`labelling.metrics.night_figures`).
    """
    from feedbackflow.labelling.metrics import night_figures

    night = (now or datetime.now(UTC)).astimezone(UTC).date().isoformat()
    tasks = tasks or {}
    return {"pull": tasks.get("label_pull"), "push": tasks.get("label_push"), "night": night_figures(paths, night)}


def _out_of_scope(section: dict[str, Any] | None, minimum: float | None = None) -> dict[str, Any] | None:
    """The challenger's out-of-scope and calibration figures on the test split (the gate report has the curve), the
    gate's coverage minimum and the expected review load per night beside the budget."""
    challenger = (section or {}).get("challenger")
    if not challenger:
        return None
    keys = (
        *("in_scope_accuracy", "in_scope_precision", "in_scope_coverage", "oos_recall", "oos_precision"),
        *("unknown_share", "ece_before", "ece_after", "method", "threshold"),
    )
    return {
        **{key: challenger.get(key) for key in keys},
        "min_in_scope_coverage": minimum,
        "newest_batch_unknown_share": (challenger.get("newest_batch") or {}).get("unknown_share"),
        # the review queue's expected inflow per night if this challenger served, beside the nightly budget
        "review_load": (challenger.get("newest_batch") or {}).get("review_load"),
        "review_budget": (challenger.get("newest_batch") or {}).get("review_budget"),
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
    review: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``reports/run_summary.json`` and ``reports/runs/<name>.json``, then save both in a DVC experiment."""
    summary = build_summary(paths, run_id, stage_results, trigger, approval, review)
    return _write(paths, run_id, summary, save_experiment)


def _write(paths: ProjectPaths, run_id: str, summary: dict[str, Any], save_experiment: bool) -> dict[str, Any]:
    name = experiment_name(run_id)
    summary["experiment"] = name if save_experiment else None
    write_json(paths.run_record(run_id), summary)
    write_json(paths.run_summary, summary)
    ran = [stage for stage, did in (summary.get("stages") or {}).items() if did is True]
    if save_experiment and _save_experiment(Dvc(paths.root), name, ran) is None:
        summary["experiment"] = None  # not saved: say so in the files too
        write_json(paths.run_record(run_id), summary)
        write_json(paths.run_summary, summary)
    return summary


def failure_of(paths: ProjectPaths, run_id: str) -> dict[str, Any] | None:
    """The newest ``failure.json`` a stage of ``run_id`` left in ``.work/failed/`` (stage, exit code, its message)."""
    found = [read_json(path, {}) or {} for path in paths.failed_runs.glob("*/*/failure.json")]
    mine = [record for record in found if record.get("run_id") == run_id]
    return max(mine, key=lambda record: record.get("failed_at") or "", default=None)


def write_failed_summary(
    paths: ProjectPaths,
    run_id: str,
    failed_tasks: list[str],
    trigger: dict[str, Any] | None = None,
    save_experiment: bool = True,
) -> dict[str, Any]:
    """Record a night that failed: ``status: failed``, the failed tasks and the failed stage's own message.

    The summary and the run record say what the night was and why it stopped, so the governance view and the
    experiment list show the failure instead of the previous good night. The champion and the data versions are the
    ones in place after the failure (the failed stage's outputs were set aside, persistent outputs rolled back).
    """
    failure = failure_of(paths, run_id) or {}
    state = _registry_state(paths)
    summary = {
        "run_id": run_id,
        "status": "failed",
        "finished_at": datetime.now(UTC).isoformat(),
        "trigger": trigger or {"run_type": "manual"},
        "failed": {
            "tasks": sorted(failed_tasks),
            "stage": failure.get("stage"),
            "exit_code": failure.get("exit_code"),
            "message": failure.get("message"),
            "kept": (paths.failed_runs / failure["stage"]).relative_to(paths.root).as_posix() if failure else None,
        },
        "champion": champion_of(state) if state else None,
        "data_versions": output_hashes(Dvc(paths.root).lock()),
    }
    return _write(paths, run_id, summary, save_experiment)
