"""
### nightly_retrain

Retrains the feedback classifier every night, governed end to end:

`ingest` -> `validate` -> `anonymise` -> `split` -> `train` -> `evaluate` -> `gate` -> (`approve`) -> `promote`,
with `monitor` (Evidently drift report) after `split` whatever the gate decides, and `summarise` last.

The champion lives in the shared registry in the DVC remote: `evaluate` takes it from there (any worker sees the
same one), `gate` records refused challengers, `promote` pushes the model and then moves the registry pointer.
With `evaluate.require_approval: true` the `approve` task (Airflow's ApprovalOperator) shows the gate report and
waits for a human; no answer within `evaluate.approval_timeout_hours` (under a day) counts as Reject, so a pending
approval never holds the next night's run (`max_active_runs=1`). The decision and the approver go to the registry.

Each stage task runs one `dvc.yaml` stage (`dvc repro --single-item --pull`): DVC skips stages whose inputs did not
change, pulls inputs by hash and pushes outputs to the DVC remote. The run summary is written to
`reports/run_summary.json` and the run is saved as a DVC experiment.

The `train` task goes to the Celery queue and the Airflow pool named by `dag.train_queue` and `dag.train_pool`
(both `gpu`): only GPU workers listen to that queue, and the pool's slots (one per GPU) cap concurrent trainings.
Create the pool once with `airflow pools set gpu <number of GPUs> "GPU slots"` (`make airflow-init` does).

Trigger manually (or from feedback collection) with `airflow dags trigger nightly_retrain`.
All knobs live in `params.yaml`; this file only wires the tasks.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronTriggerTimetable, dag, task

from feedbackflow.approval import GateApprovalOperator
from feedbackflow.config import ProjectPaths
from feedbackflow.orchestration import APPROVE_TASK
from feedbackflow.settings import load_settings

_PARAMS = load_settings(ProjectPaths.discover().params)
SETTINGS = _PARAMS.dag
APPROVAL = _PARAMS.evaluate
TRAIN_GPUS = _PARAMS.train.num_gpus


@dag(
    dag_id="nightly_retrain",
    schedule=CronTriggerTimetable(SETTINGS.schedule, timezone=SETTINGS.timezone),
    start_date=pendulum.datetime(2026, 1, 1, tz=SETTINGS.timezone),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=["feedbackflow", "retraining"],
    default_args={
        "owner": "feedbackflow",
        "retries": SETTINGS.retries,
        "retry_delay": timedelta(minutes=SETTINGS.retry_delay_minutes),
    },
)
def nightly_retrain() -> None:
    def stage(name: str, **overrides: object):  # one dvc.yaml stage as one task
        @task(task_id=name, **overrides)
        def run_stage(*upstream: dict, run_id: str | None = None) -> dict:
            from feedbackflow.orchestration import stage_task

            return stage_task(name, upstream, run_id or "manual")

        return run_stage

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def gate(upstream: dict, run_id: str | None = None, ti=None) -> bool:
        from feedbackflow.orchestration import gate_task

        return gate_task([upstream], run_id or "manual", ti)

    @task
    def promote(upstream: dict, run_id: str | None = None, ti=None) -> dict:
        from feedbackflow.orchestration import promote_task

        return promote_task([upstream], run_id or "manual", ti)

    @task(trigger_rule="none_failed")
    def summarise(evaluated: dict, monitored: dict, run_id: str | None = None, ti=None) -> dict:
        from feedbackflow.orchestration import summarise_task

        return summarise_task([evaluated, monitored], run_id or "manual", ti)

    split_done = stage("split")(stage("anonymise")(stage("validate")(stage("ingest")())))
    # GPU workers only; the pool has one slot per GPU and a training takes one per GPU it uses
    train = stage("train", queue=SETTINGS.train_queue, pool=SETTINGS.train_pool, pool_slots=TRAIN_GPUS)
    evaluated = stage("evaluate")(train(split_done))
    monitored = stage("monitor")(split_done)
    decision = gate(evaluated)
    if not APPROVAL.require_approval:
        promoted = promote(evaluated)
        decision >> promoted
        promoted >> summarise(evaluated, monitored)
        return
    # a human decides between gate and promote; Reject (or no answer before the timeout) skips promote
    approve = GateApprovalOperator(
        task_id=APPROVE_TASK,
        evaluated_task_id="evaluate",
        subject="Promote the challenger of run {{ run_id }}?",
        body="{{ ti.xcom_pull(task_ids='gate', key='report') }}",
        defaults=GateApprovalOperator.REJECT,
        response_timeout=timedelta(hours=APPROVAL.approval_timeout_hours),
    )
    promoted = promote(evaluated)
    decision >> approve >> promoted
    promoted >> summarise(evaluated, monitored)  # reads approve's XCom: an edge from approve would skip it on Reject


nightly_retrain()
