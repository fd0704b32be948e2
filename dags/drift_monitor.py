"""
### drift_monitor

Checks incoming feedback for drift against what the serving champion learned from, **without retraining**:
daily, and after every retraining run has been recorded (the `run_recorded` Asset, emitted by `nightly_retrain`'s
`record` task), so each new batch is checked against the champion that now serves.

`monitor` (the `monitor` dvc stage: Evidently drift report against the champion's training data) -> `record`
(snapshot in the Evidently workspace, governance record) -> `decide` (drift -> retrain policy) ->
`request_retrain` (only when the policy says so).

The policy (`monitor.retrain` in `params.yaml`): drift tests failed and at least `min_new_labelled_rows` labelled rows
the champion has not seen -> emit the `drift_retrain` Asset event (`feedback_retrain` starts a retraining run on it),
unless `max_per_day` requests were made today or the last is younger than `cooldown_hours`; too little labelled
data -> alert instead. Every decision is appended to `governance/retrain_decisions.jsonl` and shown under
*Governance*. Alerts go through the connection named by `FEEDBACKFLOW_ALERT_CONN_ID` (webhook or SMTP).
Schedule and retries: `dag.drift_monitor` in `params.yaml`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from feedbackflow.assets import DRIFT_RETRAIN as RETRAIN_REQUEST
from feedbackflow.assets import RUN_RECORDED
from feedbackflow.config import ProjectPaths
from feedbackflow.settings import load_settings

_DAG = load_settings(ProjectPaths.discover().params).dag
SETTINGS = _DAG.drift_monitor


@dag(
    dag_id="drift_monitor",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(SETTINGS.schedule, timezone=SETTINGS.timezone), assets=RUN_RECORDED
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=_DAG.paused_upon_creation,  # the daily check runs from the first day, as the nightly does
    doc_md=__doc__,
    tags=["feedbackflow", "monitoring", "governance"],
    default_args={"owner": "feedbackflow", "retries": SETTINGS.retries},
)
def drift_monitor() -> None:
    @task
    def monitor(run_id: str | None = None) -> dict:
        from feedbackflow.orchestration.monitor_tasks import check

        return check(run_id or "manual")

    @task
    def record(checked: dict, run_id: str | None = None, dag_run=None) -> dict:
        from feedbackflow.orchestration.monitor_tasks import record as record_run

        return record_run(run_id or "manual", dag_run.dag_id if dag_run else "drift_monitor")

    @task
    def decide(recorded: dict, run_id: str | None = None, **context) -> dict:
        from feedbackflow.orchestration.monitor_tasks import decide as apply_policy

        return apply_policy(run_id or "manual", context)

    @task.short_circuit
    def retrain_needed(decision: dict) -> bool:
        return decision["action"] == "retrain"

    @task(outlets=[RETRAIN_REQUEST])
    def request_retrain(decision: dict, *, outlet_events=None) -> dict:
        outlet_events[RETRAIN_REQUEST].extra = {"reason": decision["reason"], "run_id": decision["run_id"]}
        return decision

    decision = decide(record(monitor()))
    retrain_needed(decision) >> request_retrain(decision)


drift_monitor()
