"""Governance alerts through an Airflow notifier: a webhook (HTTP connection) or e-mail (SMTP connection).

The connection is named by ``FEEDBACKFLOW_ALERT_CONN_ID`` (or passed explicitly), so endpoints and credentials live
in Airflow's connections or secrets backend, never in ``params.yaml``:

* ``http``/``https`` connection: the alert is POSTed as JSON to ``host`` (a full URL, or host + port + ``schema`` as
  the scheme, plus the ``endpoint`` extra); a password becomes an ``Authorization: Bearer`` header.
* ``smtp``/``email`` connection: sent with the SMTP provider's notifier to the ``to`` extra (``from_email`` extra
  optional).

Alerts carry kinds, counts, decisions and run ids only, never message text. Use an instance as a task or DAG
callback (``on_failure_callback=GovernanceAlert(kind="leak_gate", ...)``) or call :func:`send` from a task.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from typing import Any

from airflow.sdk import BaseNotifier

ALERT_CONN_ENV = "FEEDBACKFLOW_ALERT_CONN_ID"
KINDS = ("drift_failed", "too_little_labelled_data", "quarantine_share", "leak_gate", "promotion_refused")
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
