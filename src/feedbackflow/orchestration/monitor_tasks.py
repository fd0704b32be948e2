"""Task bodies of monitoring: the ``drift_monitor`` DAG's check, record and decide (``nightly_retrain`` records too).

Each is one call from a DAG file, so the DAGs only wire.

Every function returns a small, JSON-serialisable dict (status, ids, counts, the decision), never data.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from feedbackflow.config import ProjectPaths
from feedbackflow.io import read_json
from feedbackflow.orchestration.tasks import stage_task


def check(run_id: str) -> dict[str, Any]:
    """Run the ``monitor`` dvc stage on the current data and champion (no retraining)."""
    result = stage_task("monitor", [], run_id)
    summary = read_json(ProjectPaths.discover().stage_reports("monitor") / "summary.json", {}) or {}
    return {"stage": result.get("stage"), "ran": result.get("ran"), "status": summary.get("status")}


def _current_context() -> Any:
    """The running task's Airflow context, or None outside a task (a script, a test)."""
    try:
        from airflow.sdk import get_current_context

        return get_current_context()
    except Exception:  # no task is running: nothing to alert from
        return None


def run_date(context: Any) -> datetime | None:
    """The date a run describes, for the dashboard's time axis: the DAG run's logical date, else the end of its data
    interval, else when it was due (``run_after``; an Asset-triggered run has no logical date); ``None`` without a
    run."""
    dag_run = context.get("dag_run") if context is not None else None
    for name in ("logical_date", "data_interval_end", "run_after"):
        value = getattr(dag_run, name, None)
        if isinstance(value, datetime):
            return value
    return None


#: Why a run that changed nothing adds no Evidently snapshot (its governance record says so).
NOTHING_NEW = "no stage ran (nothing new): the dashboard's last point still describes the data and the model"


def nothing_ran(run: dict[str, Any], run_id: str) -> bool:
    """True for a successful run ``run_id`` whose summary lists every stage as up to date (a night with nothing new:
    `changes` skipped the stages). Its snapshot would repeat the last one's drift and counts at a new date."""
    stages = run.get("stages") or {}
    ours = run.get("run_id") == run_id and run.get("status") == "succeeded"
    return ours and bool(stages) and not any(stages.values())


def record(run_id: str, dag_id: str, context: Any = None) -> dict[str, Any]:
    """Add the run's snapshot to the Evidently workspace, timestamped with the run's date (:func:`run_date`), keep
    its governance record and, with the task's ``context``, alert when this run's challenger was refused (gate or
    approver). Idempotent: recording the same run again replaces its snapshot and record. A run in which no stage
    ran (:func:`nothing_ran`) gets its record without a snapshot, and Evidently is not loaded."""
    from feedbackflow.monitoring import alerts, governance
    from feedbackflow.settings import load_settings

    paths = ProjectPaths.discover()
    settings = load_settings(paths.params)
    context = context if context is not None else _current_context()
    run = read_json(paths.run_summary, {}) or {}
    if nothing_ran(run, run_id):
        snapshot: dict[str, Any] = {"skipped": NOTHING_NEW}
    else:
        from feedbackflow.monitoring import workspace

        snapshot = workspace.record_run(
            paths, settings.monitor.workspace, run_id, list(settings.anonymise.entities), timestamp=run_date(context)
        )
    governance.write_record(paths, run_id, dag_id, snapshot)
    if run.get("run_id") == run_id and context is not None:  # drift_monitor finds the last nightly's: not its own
        alerts.alert_refused_promotion(run, context)
        alerts.alert_planted_value_missed(run, context)
    return snapshot


def decide(run_id: str, context: Any) -> dict[str, Any]:
    """Apply the drift -> retrain policy, record the decision and send the alerts it calls for."""
    from feedbackflow.monitoring import alerts, policy
    from feedbackflow.settings import load_settings

    paths = ProjectPaths.discover()
    settings = load_settings(paths.params)
    monitor = read_json(paths.stage_reports("monitor") / "summary.json", {}) or {}
    decision = policy.decide(monitor, policy.history(paths), settings.monitor.retrain, datetime.now(UTC), run_id)
    policy.record(paths, decision)
    figures = {key: decision[key] for key in ("action", "reason", "failed_tests", "new_labelled_rows", "champion")}
    if decision["action"] == policy.ALERT:
        alerts.send("too_little_labelled_data", decision["reason"], context, figures)
    elif decision["drift_failed"]:
        alerts.send("drift_failed", decision["reason"], context, figures)
    share = float((monitor.get("governance") or {}).get("quarantine_share") or 0.0)
    if share > settings.monitor.quarantine_warning_share:
        alerts.send(
            "quarantine_share",
            f"{share:.1%} of the batch quarantined (warning level {settings.monitor.quarantine_warning_share:.1%})",
            context,
            {"quarantine_share": share},
        )
    return decision
