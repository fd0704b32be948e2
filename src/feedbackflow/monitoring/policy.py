"""The drift -> retrain policy: decide, for one drift check, whether to request a retraining run, and record why.

* Drift not checked, or drift tests passed: nothing to do.
* Drift failed, but fewer than ``monitor.retrain.min_new_labelled_rows`` labelled rows that the champion has not
  trained on: retraining would learn nothing new, so **alert** (ask for labelling) instead.
* Drift failed with enough new labelled rows: **retrain**, unless ``max_per_day`` requests were already made this UTC
  day or the last request is younger than ``cooldown_hours`` (**hold**, with the time the next one is allowed).

Every decision is appended to ``governance/retrain_decisions.jsonl`` (decision, reason, counts; no data) and shown
in the governance views. The function is pure: the DAG reads the history, calls :func:`decide` and records it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from feedbackflow.config import ProjectPaths
from feedbackflow.settings import RetrainPolicySettings

RETRAIN, NONE, ALERT, HOLD = "retrain", "none", "alert", "hold"


def decide(
    monitor: dict[str, Any],
    history: list[dict[str, Any]],
    policy: RetrainPolicySettings,
    now: datetime,
    run_id: str,
) -> dict[str, Any]:
    """The decision for one drift check.

    Args:
        monitor: ``reports/monitor/summary.json`` of the check.
        history: earlier decisions (oldest first), as recorded by :func:`record`.
        policy: ``monitor.retrain`` settings.
        now: the decision time (timezone-aware).
        run_id: the Airflow run that made the check.

    Returns:
        ``action`` (retrain, none, alert, hold), ``reason`` and the figures behind it.
    """
    new_rows = int(monitor.get("new_labelled_rows") or 0)
    failed = bool(monitor.get("drift_failed"))
    failed_tests = [str(name) for name in monitor.get("failed_tests") or []]
    decision: dict[str, Any] = {
        "run_id": run_id,
        "decided_at": now.astimezone(UTC).isoformat(),
        "drift_status": monitor.get("status"),
        "drift_failed": failed,
        "failed_tests": failed_tests,
        "new_labelled_rows": new_rows,
        "champion": (monitor.get("champion") or {}).get("version"),
    }
    if monitor.get("status") != "checked":
        return {**decision, "action": NONE, "reason": f"drift not checked: {monitor.get('reason', 'unknown')}"}
    if not failed:
        return {**decision, "action": NONE, "reason": "drift tests passed"}
    if new_rows < policy.min_new_labelled_rows:
        return {
            **decision,
            "action": ALERT,
            "reason": f"drift failed but only {new_rows} new labelled rows (< {policy.min_new_labelled_rows}): "
            "label more feedback before retraining",
        }
    retrains = [datetime.fromisoformat(item["decided_at"]) for item in history if item.get("action") == RETRAIN]
    today = [at for at in retrains if at.astimezone(UTC).date() == now.astimezone(UTC).date()]
    if len(today) >= policy.max_per_day:
        return {
            **decision,
            "action": HOLD,
            "reason": f"drift failed; {len(today)} retraining request(s) today already (max {policy.max_per_day})",
        }
    if retrains and now - max(retrains) < timedelta(hours=policy.cooldown_hours):
        allowed = max(retrains) + timedelta(hours=policy.cooldown_hours)
        return {
            **decision,
            "action": HOLD,
            "reason": f"drift failed; cooldown until {allowed.astimezone(UTC).isoformat()} "
            f"({policy.cooldown_hours:g} h after the last request)",
        }
    return {
        **decision,
        "action": RETRAIN,
        "reason": f"drift failed ({', '.join(failed_tests)}) with {new_rows} new labelled rows",
    }


def history(paths: ProjectPaths) -> list[dict[str, Any]]:
    """Every recorded decision, oldest first."""
    path = paths.retrain_decisions
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def record(paths: ProjectPaths, decision: dict[str, Any]) -> dict[str, Any]:
    """Append ``decision`` to the decision log (one JSON line)."""
    path = paths.retrain_decisions
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(decision, sort_keys=True) + "\n")
    return decision
