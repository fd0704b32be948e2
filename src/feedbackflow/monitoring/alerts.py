"""Governance alerts through an Airflow notifier: a webhook (HTTP connection) or e-mail (SMTP connection).

The connection is named by ``FEEDBACKFLOW_ALERT_CONN_ID`` (or passed explicitly), so endpoints and credentials live
in Airflow's connections or secrets backend, never in ``params.yaml``:

* ``http``/``https`` connection: the alert is POSTed as JSON to ``host`` (a full URL, or host + port + ``schema`` as
  the scheme, plus the ``endpoint`` extra); a password becomes an ``Authorization: Bearer`` header.
* ``smtp``/``email`` connection: sent with the SMTP provider's notifier to the ``to`` extra (``from_email`` extra
  optional).

Alerts carry kinds, counts, decisions and run ids only, never message text. Use an instance as a task or DAG
callback (``on_failure_callback=GovernanceAlert(kind="leak_gate", ...)``) or call :func:`send` from a task.

From the nightly run: :func:`alert_on_failure` (in the DAG's ``on_failure_callback`` list) raises ``leak_gate``
when a task stopped on the leak gate (personal data survived anonymisation), and :func:`alert_refused_promotion`
(called by the ``record`` task, which runs whatever the gate decided) raises ``promotion_refused`` when the gate or
the approver refused the challenger; :func:`alert_planted_value_missed` (same task) raises ``planted_value_missed``
when the leak gate held back rows in which a planted value survived (the night went on without them). The
drift_monitor DAG raises the drift and quarantine alerts.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from typing import Any

from airflow.sdk import BaseNotifier

ALERT_CONN_ENV = "FEEDBACKFLOW_ALERT_CONN_ID"
KINDS = (
    "drift_failed",
    "too_little_labelled_data",
    "quarantine_share",
    "leak_gate",
    "promotion_refused",
    "planted_value_missed",
)
log = logging.getLogger(__name__)


def _webhook_url(connection: Any) -> str:
    host = str(connection.host or "")
    endpoint = str((connection.extra_dejson or {}).get("endpoint", "")).lstrip("/")
    if host.startswith(("http://", "https://")):
        base = host.rstrip("/")
    else:
        port = f":{connection.port}" if connection.port else ""
        base = f"{connection.schema or 'http'}://{host}{port}"
    return f"{base}/{endpoint}" if endpoint else base


class GovernanceAlert(BaseNotifier):
    """Send one governance alert (``kind`` + ``message`` + figures) through the configured connection."""

    template_fields = ("message",)

    def __init__(
        self, *, kind: str, message: str, details: dict[str, Any] | None = None, conn_id: str | None = None
    ) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"unknown alert kind {kind!r}; one of {KINDS}")
        self.kind, self.message, self.details, self.conn_id = kind, message, details or {}, conn_id

    def payload(self, context: Any) -> dict[str, Any]:
        ti = context.get("ti") or context.get("task_instance")
        return {
            "source": "feedbackflow",
            "kind": self.kind,
            "message": self.message,
            "details": self.details,
            "dag_id": getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", None),
            "run_id": getattr(ti, "run_id", None) or context.get("run_id"),
            "task_id": getattr(ti, "task_id", None),
        }

    def notify(self, context: Any) -> None:
        conn_id = self.conn_id or os.environ.get(ALERT_CONN_ENV)
        if not conn_id:
            log.warning("governance alert %s not sent: set %s to an Airflow connection id", self.kind, ALERT_CONN_ENV)
            return
        from airflow.sdk import Connection

        connection = Connection.get(conn_id)
        payload = self.payload(context)
        if connection.conn_type in {"smtp", "email"}:
            from airflow.providers.smtp.notifications.smtp import SmtpNotifier

            extra = connection.extra_dejson or {}
            SmtpNotifier(
                to=extra["to"],
                from_email=extra.get("from_email"),
                subject=f"[feedbackflow] {self.kind}",
                html_content=json.dumps(payload, indent=2),
                smtp_conn_id=conn_id,
            ).notify(context)
            return
        request = urllib.request.Request(
            _webhook_url(connection),
            data=json.dumps(payload).encode("utf-8"),
            headers={
                "Content-Type": "application/json",
                **({"Authorization": f"Bearer {connection.password}"} if connection.password else {}),
            },
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            if response.status >= 300:
                raise RuntimeError(f"alert webhook answered HTTP {response.status}")


def send(kind: str, message: str, context: Any, details: dict[str, Any] | None = None) -> None:
    """Send an alert now (from inside a task); failures are logged by the notifier, never raised."""
    GovernanceAlert(kind=kind, message=message, details=details)(context)


def _exit_codes(error: BaseException | None) -> list[int]:
    """Exit codes along an exception's chain (the stage's ``DvcError`` sits under Airflow's fail exception)."""
    codes, seen = [], set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        code = getattr(error, "exit_code", None)
        if isinstance(code, int):
            codes.append(code)
        error = error.__cause__ or error.__context__
    return codes


def alert_on_failure(context: Any) -> None:
    """Airflow ``on_failure_callback``: a task stopped by the leak gate raises the ``leak_gate`` alert.

    The stage's exit code says why it failed (``PrivacyLeakError.exit_code``); the alert names the task and the run,
    never the stage's message (it would not hold values, but alerts carry no text from the data side at all).
    Other failures are left to Airflow's own failure handling.
    """
    from feedbackflow.errors import PrivacyLeakError

    if PrivacyLeakError.exit_code not in _exit_codes(context.get("exception")):
        return
    ti = context.get("ti") or context.get("task_instance")
    task = getattr(ti, "task_id", "task")
    send(
        "leak_gate",
        f"{task} stopped the run: personal data survived anonymisation (leak gate); nothing downstream ran. "
        "See the stage's leak report.",
        context,
        {"task_id": task, "exit_code": PrivacyLeakError.exit_code},
    )


def refused_promotion(run_summary: dict[str, Any]) -> dict[str, Any] | None:
    """The refusal in a run summary (``reports/run_summary.json``): the gate kept the champion, or the approver
    rejected the challenger; None when the challenger was promoted or no decision was made (evaluate skipped)."""
    evaluate = run_summary.get("evaluate") or {}
    gate = evaluate.get("gate") or {}
    approval = evaluate.get("approval") or {}
    if gate.get("promote") is False:
        by = "gate"
    elif gate.get("decision") == "rejected by approver" or approval.get("approved") is False:
        by = "approver"
    else:
        return None
    return {
        "refused_by": by,
        "decision": gate.get("decision"),
        "reasons": [str(reason) for reason in gate.get("reasons") or []],
        "challenger": evaluate.get("challenger"),
        "champion": (run_summary.get("champion") or {}).get("version"),
    }


def alert_refused_promotion(run_summary: dict[str, Any], context: Any) -> dict[str, Any] | None:
    """Send ``promotion_refused`` when the run's challenger was refused; returns the refusal (or None)."""
    refusal = refused_promotion(run_summary)
    if refusal is not None:
        reasons = "; ".join(refusal["reasons"]) or refusal["decision"] or "no reason recorded"
        send("promotion_refused", f"challenger not promoted ({refusal['refused_by']}): {reasons}", context, refusal)
    return refusal


def alert_planted_value_missed(run_summary: dict[str, Any], context: Any) -> dict[str, Any] | None:
    """Send ``planted_value_missed`` when the run's leak gate held back rows with a planted value in their output.

    The night went on without those rows; the alert says how many and of which entity types (counts only), so the
    privacy owner knows the detector has a blind spot. Returns the details sent (or None).
    """
    gate = (run_summary.get("anonymise") or {}).get("leak_gate") or {}
    rows = gate.get("planted_value_missed") or 0
    if not rows:
        return None
    types = sorted(gate.get("canary_hits") or {})
    details: dict[str, Any] = {"rows_held_back": rows, "entity_types": types}
    send(
        "planted_value_missed",
        f"planted value missed in {rows} row(s) ({', '.join(types)}): held back by the leak gate, the run went on "
        "without them",
        context,
        details,
    )
    return details
