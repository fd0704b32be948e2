"""What the governance views show about one run, joined from the records the pipeline keeps (counts and hashes only).

Sources, all written by the pipeline: the run record ``reports/runs/<experiment>.json`` (``dvc.lock`` hashes,
validation and anonymisation counts, gate decision, champion), the governance record
``governance/runs/<experiment>.json`` (drift tests and the Evidently snapshot id, quarantine and PII counts, the
anonymiser config hash) and, for the latest run, ``reports/run_summary.json``. Only whitelisted fields are copied:
no message text, no row values, no quarantined rows. The review loop's figures per night come from its own state
(:func:`feedbackflow.labelling.metrics.review_loop`, re-exported here for the view).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from feedbackflow.config import ProjectPaths
from feedbackflow.io import read_json, write_json
from feedbackflow.labelling.metrics import review_loop
from feedbackflow.monitoring import data_docs
from feedbackflow.monitoring.policy import history

__all__ = [
    "data_docs_page",
    "held_back",
    "recent_decisions",
    "recent_records",
    "review_loop",
    "run_view",
    "write_record",
]


def write_record(paths: ProjectPaths, run_id: str, dag_id: str | None, snapshot: dict[str, Any]) -> Path:
    """Keep this run's governance record: drift outcome, snapshot ids and counts from ``reports/monitor``."""
    monitor = read_json(paths.stage_reports("monitor") / "summary.json", {}) or {}
    record = {
        "run_id": run_id,
        "dag_id": dag_id,
        "snapshot": snapshot,
        "drift": {
            key: monitor.get(key)
            for key in (
                "status",
                "reason",
                "drift_failed",
                "failed_tests",
                "tests",
                "drift_share",
                "drifted_columns",
                "unknown_share",
                "embedding_drift",
                "quality",
                "sampling",
                "current_batch",
                "new_labelled_rows",
                "champion",
            )
        },
        "governance": monitor.get("governance") or {},
        "data_docs": data_docs_page(paths, run_id),
        "data_docs_index": data_docs.index_page(paths),
    }
    return write_json(paths.governance_record(run_id), record)


def data_docs_page(paths: ProjectPaths, run_id: str) -> str | None:
    """This run's validation page (relative to ``reports/``): its page in the Data Docs history, which keeps every
    run (:func:`feedbackflow.monitoring.data_docs.add_validation` stores it there first), else the latest Data Docs.
    """
    page = data_docs.add_validation(paths)
    if page is not None:
        return page
    index = paths.data_docs / "index.html"
    return index.relative_to(paths.reports).as_posix() if index.is_file() else None


def _gate(summary: dict[str, Any]) -> dict[str, Any]:
    evaluate = summary.get("evaluate") or {}
    gate = evaluate.get("gate") or {}
    stages = summary.get("stages") or {}
    skipped = bool(evaluate.get("skipped")) or stages.get("evaluate") is False or gate.get("promote") is None
    reason = evaluate.get("skipped_reason") or evaluate.get("reason")
    return {
        "outcome": "skipped" if skipped else ("promoted" if gate.get("promote") else "refused"),
        "reasons": [str(item) for item in gate.get("reasons") or []],
        "skipped_reason": str(reason) if skipped and reason else None,
        "challenger": evaluate.get("challenger"),
        "champion": evaluate.get("champion"),
    }


def review_view(summary: dict[str, Any]) -> dict[str, Any] | None:
    """The review loop of one night from its run summary: what each of its tasks did (or why it failed), the night's
    figures, and the challenger's in-scope coverage and expected review load beside the minimum and the budget."""
    review = summary.get("review")
    coverage = (summary.get("evaluate") or {}).get("out_of_scope") or {}
    if not review and not coverage:
        return None

    def task(result: dict[str, Any] | None) -> dict[str, Any]:
        result = result or {}
        return {key: result.get(key) for key in ("mode", "status", "error", "sent", "labelled", "disputed", "reason")}

    review = review or {}
    keys = ("in_scope_coverage", "min_in_scope_coverage", "review_load", "review_budget")
    return {
        "pull": task(review.get("pull")),
        "push": task(review.get("push")),
        "night": review.get("night") or {},
        "coverage": {key: coverage.get(key) for key in keys},
    }


def run_view(paths: ProjectPaths, dag_id: str, run_id: str, airflow_run: dict[str, Any] | None) -> dict[str, Any]:
    """Everything the per-run governance page shows, or ``found: False`` when the pipeline kept no record."""
    summary = read_json(paths.run_record(run_id)) or {}
    if not summary:
        latest = read_json(paths.run_summary, {}) or {}
        summary = latest if latest.get("run_id") == run_id else {}
    record = read_json(paths.governance_record(run_id), {}) or {}
    anonymise = summary.get("anonymise") or {}
    governance = record.get("governance") or {}
    champion = summary.get("champion") or (record.get("drift") or {}).get("champion") or {}
    return {
        "found": bool(summary or record),
        "dag_id": dag_id,
        "run_id": run_id,
        "airflow": airflow_run or {},
        "status": summary.get("status"),
        "failed": summary.get("failed"),  # a failed night: its stage, exit code and the stage's own message
        "data_versions": {str(k): str(v) for k, v in sorted((summary.get("data_versions") or {}).items())},
        "validation": {
            key: (summary.get("validate") or {}).get(key)
            for key in ("rows_read", "rows_accepted", "rows_quarantined", "quarantined_by_rule")
        },
        "data_docs": record.get("data_docs"),
        "data_docs_index": record.get("data_docs_index"),
        "anonymiser": {
            "config_hash": governance.get("anonymiser_config_hash"),
            "key_id": anonymise.get("key_id"),
            "rows": anonymise.get("rows"),
            "rows_changed": anonymise.get("rows_changed"),
            "entities_replaced": anonymise.get("entities_replaced") or governance.get("pii_by_entity") or {},
            "leak_gate": anonymise.get("leak_gate"),
            "held_back": held_back(anonymise),
        },
        "model": {"champion_version": champion.get("version"), "model_sha256": champion.get("model_sha256")},
        "gate": _gate(summary) if summary else None,
        "review": review_view(summary),
        "drift": record.get("drift") or {},
        "snapshot": record.get("snapshot") or {},
        "decision": next((item for item in recent_decisions(paths, 500) if item.get("run_id") == run_id), None),
    }


def held_back(anonymise: dict[str, Any]) -> dict[str, Any]:
    """Rows the anonymise stage held back, by reason: planted values missed (with their entity types), second-scan
    findings and each language the detectors do not read. Counts and entity types only."""
    gate = anonymise.get("leak_gate") or {}
    return {
        "rows": anonymise.get("rows_held_back"),
        "planted_value_missed": gate.get("planted_value_missed") or 0,
        "planted_entities": sorted(gate.get("canary_hits") or {}),
        "second_scan": gate.get("second_scan_rows") or 0,
        "by_language": dict(sorted((anonymise.get("rows_held_back_by_language") or {}).items())),
    }


def recent_records(paths: ProjectPaths, limit: int = 50) -> list[dict[str, Any]]:
    """The newest governance records (run, drift outcome, snapshot), newest first."""
    folder = paths.governance_records
    files = (
        sorted(folder.glob("*.json"), key=lambda path: path.stat().st_mtime, reverse=True) if folder.is_dir() else []
    )
    rows = []
    for path in files[:limit]:
        record = read_json(path, {}) or {}
        drift = record.get("drift") or {}
        rows.append(
            {
                "run_id": record.get("run_id"),
                "dag_id": record.get("dag_id"),
                "status": drift.get("status"),
                "drift_failed": drift.get("drift_failed"),
                "drift_share": drift.get("drift_share"),
                # share of the batch the champion answered unknown: rising, the taxonomy needs a review
                "unknown_share": (drift.get("unknown_share") or {}).get("current"),
                "quarantine_share": (record.get("governance") or {}).get("quarantine_share"),
                "pii_entities_removed": (record.get("governance") or {}).get("pii_entities_removed"),
            }
        )
    return rows


def recent_decisions(paths: ProjectPaths, limit: int = 50) -> list[dict[str, Any]]:
    """The newest drift -> retrain decisions (action, reason, figures), newest first."""
    keys = ("decided_at", "run_id", "action", "reason", "new_labelled_rows", "champion")
    return [{key: item.get(key) for key in keys} for item in reversed(history(paths)[-limit:])]
