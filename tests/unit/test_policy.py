"""The drift -> retrain policy (both ways: retrain and cooldown) and governance alerts through a loopback webhook."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from feedbackflow.config import ProjectPaths
from feedbackflow.monitoring import policy
from feedbackflow.settings import RetrainPolicySettings

POLICY = RetrainPolicySettings(min_new_labelled_rows=500, cooldown_hours=24, max_per_day=1)
NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)


def drifted(new_rows: int = 800) -> dict:
    return {
        "status": "checked",
        "drift_failed": True,
        "failed_tests": ["embedding_drift", "prediction_drift"],
        "new_labelled_rows": new_rows,
        "champion": {"version": "v4"},
    }


def test_failed_drift_with_enough_labelled_rows_requests_retraining():
    decision = policy.decide(drifted(), [], POLICY, NOW, "scheduled__1")
    assert decision["action"] == policy.RETRAIN
    assert "embedding_drift" in decision["reason"] and "800 new labelled rows" in decision["reason"]
    assert decision["champion"] == "v4" and decision["run_id"] == "scheduled__1"


def test_a_second_request_within_the_cooldown_is_held():
    first = policy.decide(drifted(), [], POLICY, NOW - timedelta(hours=30), "a")
    assert first["action"] == policy.RETRAIN
    # Next day (a new UTC day, so not the daily cap), but only 20 h later: the cooldown holds it.
    later = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    previous = {**first, "decided_at": later.isoformat()}
    held = policy.decide(drifted(), [previous], POLICY, NOW + timedelta(hours=2), "b")
    assert held["action"] == policy.HOLD and "cooldown until 2026-03-02T12:00:00+00:00" in held["reason"]
    after = policy.decide(drifted(), [previous], POLICY, later + timedelta(hours=25), "c")
    assert after["action"] == policy.RETRAIN


def test_daily_maximum_applies_even_without_cooldown():
    relaxed = RetrainPolicySettings(min_new_labelled_rows=1, cooldown_hours=0, max_per_day=2)
    history = [{"action": "retrain", "decided_at": (NOW - timedelta(hours=h)).isoformat()} for h in (1, 2)]
    held = policy.decide(drifted(), history, relaxed, NOW, "x")
    assert held["action"] == policy.HOLD and "max 2" in held["reason"]
    assert policy.decide(drifted(), history[:1], relaxed, NOW, "y")["action"] == policy.RETRAIN


def test_too_little_labelled_data_alerts_instead():
    decision = policy.decide(drifted(new_rows=120), [], POLICY, NOW, "z")
    assert decision["action"] == policy.ALERT and "only 120 new labelled rows" in decision["reason"]


def test_passed_or_unchecked_drift_does_nothing():
    passed = {**drifted(), "drift_failed": False}
    assert policy.decide(passed, [], POLICY, NOW, "p")["action"] == policy.NONE
    skipped = {"status": "skipped", "reason": "no champion yet"}
    decision = policy.decide(skipped, [], POLICY, NOW, "s")
    assert decision["action"] == policy.NONE and "no champion yet" in decision["reason"]


def test_decisions_are_recorded_in_order(tmp_path):
    paths = ProjectPaths(tmp_path)
    first = policy.record(paths, policy.decide(drifted(), [], POLICY, NOW, "1"))
    second = policy.record(paths, policy.decide(drifted(), policy.history(paths), POLICY, NOW, "2"))
    assert [item["action"] for item in policy.history(paths)] == [first["action"], second["action"]]
    assert [item["action"] for item in policy.history(paths)] == ["retrain", "hold"]
    from feedbackflow.monitoring.governance import recent_decisions

    shown = recent_decisions(paths)
    assert [item["action"] for item in shown] == ["hold", "retrain"]  # newest first, as the Governance page lists
    assert "cooldown" in shown[0]["reason"] or "today already" in shown[0]["reason"]


# --- alerts -------------------------------------------------------------------------------------------------------


@pytest.fixture
def webhook():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "auth": self.headers.get("Authorization"), **json.loads(body)})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], received
    server.shutdown()


@pytest.fixture
def alert_webhook(webhook, monkeypatch) -> list[dict]:
    """The alerts' connection pointed at the test webhook; the alerts it receives."""
    from feedbackflow.monitoring import alerts

    port, received = webhook
    monkeypatch.setenv(
        "AIRFLOW_CONN_FEEDBACKFLOW_ALERTS", json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": port})
    )
    monkeypatch.setenv(alerts.ALERT_CONN_ENV, "feedbackflow_alerts")
    return received


def test_alert_is_posted_to_the_webhook_connection(webhook, monkeypatch):
    from feedbackflow.monitoring import alerts

    port, received = webhook
    connection = {
        "conn_type": "http",
        "host": "127.0.0.1",
        "port": port,
        "password": "s3cret-token",
        "extra": {"endpoint": "hooks/governance"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_FEEDBACKFLOW_ALERTS", json.dumps(connection))
    monkeypatch.setenv(alerts.ALERT_CONN_ENV, "feedbackflow_alerts")
    decision = policy.decide(drifted(new_rows=10), [], POLICY, NOW, "scheduled__9")
    alerts.send("too_little_labelled_data", decision["reason"], {"run_id": "scheduled__9"}, {"new": 10})
    assert len(received) == 1
    alert = received[0]
    assert alert["path"] == "/hooks/governance" and alert["auth"] == "Bearer s3cret-token"
    assert alert["kind"] == "too_little_labelled_data" and alert["run_id"] == "scheduled__9"
    assert "only 10 new labelled rows" in alert["message"] and alert["details"] == {"new": 10}


def test_unknown_alert_kind_is_refused():
    from feedbackflow.monitoring import alerts

    with pytest.raises(ValueError, match="unknown alert kind"):
        alerts.GovernanceAlert(kind="whatever", message="x")


class _StageFailed(Exception):
    def __init__(self, exit_code: int) -> None:
        super().__init__(f"stage failed (exit {exit_code})")
        self.exit_code = exit_code


def _failure(exit_code: int) -> BaseException:
    """An Airflow fail exception raised from the stage's error, as the task raises it."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        try:
            raise _StageFailed(exit_code)
        except _StageFailed as error:
            raise AirflowFailException(str(error)) from error
    except AirflowFailException as failure:
        return failure


def test_leak_gate_failure_alerts_and_other_failures_do_not(alert_webhook):
    from feedbackflow.errors import DataQualityError, PrivacyLeakError
    from feedbackflow.monitoring import alerts

    received = alert_webhook

    ti = type("TI", (), {"dag_id": "nightly_retrain", "run_id": "scheduled__1", "task_id": "anonymise"})()
    alerts.alert_on_failure({"ti": ti, "exception": _failure(DataQualityError.exit_code)})
    assert received == []
    alerts.alert_on_failure({"ti": ti, "exception": _failure(PrivacyLeakError.exit_code)})
    (alert,) = received
    assert alert["kind"] == "leak_gate" and alert["task_id"] == "anonymise" and alert["run_id"] == "scheduled__1"
    assert alert["details"] == {"task_id": "anonymise", "exit_code": PrivacyLeakError.exit_code}


def test_refused_promotion_alerts_for_gate_and_approver_but_not_a_promotion(alert_webhook):
    from feedbackflow.monitoring import alerts

    received = alert_webhook

    context = {"run_id": "scheduled__2"}
    refused = {"evaluate": {"gate": {"promote": False, "decision": "keep champion", "reasons": ["macro_f1 fell"]}}}
    rejected = {"evaluate": {"gate": {"promote": True, "decision": "rejected by approver", "reasons": []}}}
    promoted = {"evaluate": {"gate": {"promote": True, "decision": "approved", "reasons": []}}}
    skipped = {"evaluate": {"gate": {"promote": None, "decision": "skipped", "reasons": []}}}
    assert alerts.alert_refused_promotion(promoted, context) is None
    assert alerts.alert_refused_promotion(skipped, context) is None
    assert alerts.alert_refused_promotion(refused, context)["refused_by"] == "gate"
    assert alerts.alert_refused_promotion(rejected, context)["refused_by"] == "approver"
    assert [alert["kind"] for alert in received] == ["promotion_refused", "promotion_refused"]
    assert "macro_f1 fell" in received[0]["message"] and received[1]["details"]["refused_by"] == "approver"


def test_a_planted_value_missed_alerts_with_counts_and_types_only(alert_webhook):
    from feedbackflow.monitoring import alerts

    received = alert_webhook

    context = {"run_id": "scheduled__3"}
    clean = {"anonymise": {"leak_gate": {"passed": True, "planted_value_missed": 0, "canary_hits": {}}}}
    missed = {
        "anonymise": {
            "leak_gate": {"passed": True, "planted_value_missed": 2, "canary_hits": {"PERSON": 1, "IBAN_CODE": 1}}
        }
    }
    assert alerts.alert_planted_value_missed(clean, context) is None
    assert alerts.alert_planted_value_missed({}, context) is None
    assert alerts.alert_planted_value_missed(missed, context) == {
        "rows_held_back": 2,
        "entity_types": ["IBAN_CODE", "PERSON"],
    }
    (alert,) = received
    assert alert["kind"] == "planted_value_missed" and alert["run_id"] == "scheduled__3"
    assert alert["message"].startswith("planted value missed in 2 row(s) (IBAN_CODE, PERSON): held back")
