"""
### nightly_retrain

Retrains the feedback classifier every night, governed end to end:

`ingest` -> `validate` -> `anonymise` -> `split` -> `train` -> `evaluate` -> `gate` -> (`approve`) -> `promote`,
with `monitor` (Evidently drift report) after `anonymise` whatever the gate decides, then `summarise` (run summary,
DVC experiment) and `record` (governance record and Evidently snapshot; its Asset event starts `drift_monitor`).

The review loop (docs/labelling.md) rides along: `label_pull` takes the reviewers' new labels before `ingest`, so they
arrive that night as a delivery of source `review`; `label_push` sends the next review batch once the champion is
decided (after `promote`, run or skipped). With `labelling.budget: 0` both do nothing; without
`labelling.label_studio_url` they use import/export JSON files. A labelling server that is down never fails the
night: the task succeeds, and the run summary says what failed.

The champion lives in the shared registry in the DVC remote: `evaluate` takes it from there (any worker sees the
same one), `gate` records refused challengers, `promote` pushes the model and then moves the registry pointer.
With `evaluate.require_approval: true` the `approve` task (Airflow's ApprovalOperator) shows the gate report and
waits for a human; no answer within `evaluate.approval_timeout_hours` (under a day) counts as Reject, so a pending
approval never holds the next night's run (`max_active_runs=1`). The decision and the approver go to the registry.

Each stage task runs one `dvc.yaml` stage (`dvc repro --single-item --pull`): DVC skips stages whose inputs did not
change, pulls inputs by hash and pushes outputs to the DVC remote. A night with nothing new stops early: after
`ingest` the `changes` task asks DVC once (`dvc status`) whether any later stage has work, and when none has it skips
their tasks without starting them (a short-circuit); `label_push`, `summarise` and `record` still run. The run
summary is written to `reports/run_summary.json` and the run is saved as a DVC experiment.

The `train` task goes to the Celery queue and the Airflow pool named by `dag.train_queue` and `dag.train_pool`
(both `gpu`): only GPU workers listen to that queue, and the pool's slots (one per GPU) cap concurrent trainings.
Create the pool once with `airflow pools set gpu <number of GPUs> "GPU slots"` (`make airflow-init` does).

Manual runs take typed Params (trigger form, `--conf`, or the REST API): `source` (override the ingest source),
`force_retrain`, `dry_run` (ingest, validate and anonymise only) and a `reason` kept in the run summary.
Feedback-triggered runs start from the `feedback_retrain` DAG (an Asset event or a person), which queues a run
here: `max_active_runs=1` serialises every run that touches the model.
All knobs live in `params.yaml`; this file only wires the tasks.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import CronTriggerTimetable, dag, task

from feedbackflow.approval import GateApprovalOperator
from feedbackflow.assets import RUN_RECORDED
from feedbackflow.config import ProjectPaths
from feedbackflow.monitoring.alerts import alert_on_failure
from feedbackflow.orchestration.exclusion import wait_for_erasure
from feedbackflow.orchestration.rules import STAGE_RULES
from feedbackflow.orchestration.runner import log_task_failure
from feedbackflow.orchestration.tasks import APPROVE_TASK, CHANGES_TASK, record_failed_night, run_params
from feedbackflow.settings import load_settings
from feedbackflow.storage.dvc import pipeline

PATHS = ProjectPaths.discover()
_PARAMS = load_settings(PATHS.params)
SETTINGS = _PARAMS.dag
APPROVAL = _PARAMS.evaluate
TRAIN_GPUS = _PARAMS.train.num_gpus


@dag(
    dag_id="nightly_retrain",
    # run_immediately=0: a new deployment's first run is the next scheduled time. Airflow's default starts the missed
    # run when it is under 2.4 h old, so what a fresh install did depended on the hour it was unpaused.
    schedule=CronTriggerTimetable(SETTINGS.schedule, timezone=SETTINGS.timezone, run_immediately=timedelta(0)),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=SETTINGS.paused_upon_creation,
    doc_md=__doc__,
    params=run_params(),
    on_failure_callback=record_failed_night,  # a failed night gets its run summary too (status: failed, the reason)
    tags=["feedbackflow", "retraining"],
    default_args={
        "owner": "feedbackflow",
        "retries": SETTINGS.retries,
        "retry_delay": timedelta(minutes=SETTINGS.retry_delay_minutes),
        "execution_timeout": timedelta(minutes=SETTINGS.task_timeout_minutes),
        "on_failure_callback": [log_task_failure, alert_on_failure],  # stage's message ends the log; leak -> alert
    },
)
def nightly_retrain() -> None:
    def stage(name: str, **overrides: object):  # one dvc.yaml stage as one task
        @task(task_id=name, **overrides)
        def run_stage(*upstream: dict, run_id: str | None = None, params: dict | None = None) -> dict:
            from feedbackflow.orchestration.tasks import stage_task

            return stage_task(name, upstream, run_id or "manual", params)

        return run_stage

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def gate(upstream: dict, run_id: str | None = None, ti=None) -> bool:
        from feedbackflow.orchestration.tasks import gate_task

        return gate_task([upstream], run_id or "manual", ti)

    def shard(name: str):  # one mapped task per shard of a stage's work, on any worker
        @task(task_id=f"{name}_shard", map_index_template="{{ task.op_kwargs['shard'] + 1 }}")
        def run_shard(shard: int, upstream: list) -> dict:
            from feedbackflow.orchestration.shard_tasks import shard_task

            return shard_task(name, shard, upstream)

        return run_shard

    @task.short_circuit(task_id=CHANGES_TASK, ignore_downstream_trigger_rules=False)
    def changes(*upstream: dict, params: dict | None = None) -> dict:  # {}: the later stages skip, never started
        from feedbackflow.orchestration.tasks import changes_task

        return changes_task(upstream, params)

    @task
    def promote(upstream: dict, run_id: str | None = None, ti=None) -> dict:
        from feedbackflow.orchestration.tasks import promote_task

        return promote_task([upstream], run_id or "manual", ti)

    @task(outlets=[RUN_RECORDED])
    def record(summary: dict, run_id: str | None = None) -> dict:  # dashboards snapshot; drift_monitor runs next
        from feedbackflow.orchestration.monitor_tasks import record as record_run

        return record_run(run_id or "manual", "nightly_retrain")

    @task(task_id="label_pull")
    def label_pull() -> dict:  # the reviewers' labels become tonight's review delivery
        from feedbackflow.orchestration.labelling_tasks import label_pull_task

        return label_pull_task()

    @task(task_id="label_push", trigger_rule="none_failed")  # promote skipped (gate refused): the champion stays
    def label_push(anonymised: dict, params: dict | None = None) -> dict:
        from feedbackflow.orchestration.labelling_tasks import label_push_task

        return label_push_task([anonymised], params)

    @task(trigger_rule="none_failed")
    def summarise(
        *results: dict, run_id: str | None = None, params: dict | None = None, dag_run=None, ti=None
    ) -> dict:  # anonymised is among the results: a dry run skips everything after it
        from feedbackflow.orchestration.tasks import run_trigger, summarise_task

        return summarise_task(results, run_id or "manual", run_trigger(dag_run, params), ti)

    # one task per dvc.yaml stage, wired as dvc.yaml's outs -> deps edges; GPU stages go to the GPU workers' queue
    # and take one slot of their pool per GPU
    gpu = {
        "queue": SETTINGS.train_queue,
        "pool": SETTINGS.train_pool,
        "pool_slots": TRAIN_GPUS,
        "execution_timeout": timedelta(minutes=SETTINGS.train_timeout_minutes),
    }
    # The source stages (ingest) run first; `changes` then skips every later stage task when none has work to do
    specs = pipeline(PATHS.dvc_yaml).values()
    sources = [spec for spec in specs if STAGE_RULES[spec.name].takes_source]
    results: dict = {spec.name: stage(spec.name)() for spec in sources}
    checked = changes(*results.values())
    for spec in specs:
        if spec not in sources:
            rule = STAGE_RULES[spec.name]
            upstream = [results[name] for name in spec.upstream]
            if (count := rule.shard_count(_PARAMS)) > 1:  # a large night: mapped shard tasks first, on every worker
                upstream.append(shard(spec.name).partial(upstream=list(upstream)).expand(shard=list(range(count))))
            results[spec.name] = stage(spec.name, **(gpu if rule.gpu else {}))(*upstream)
            checked >> results[spec.name]
    wait_for_erasure(_PARAMS.erasure) >> [results[spec.name] for spec in specs if not spec.upstream]
    anonymised, evaluated, monitored = results["anonymise"], results["evaluate"], results["monitor"]
    label_pull() >> results["ingest"]
    decision = gate(evaluated)
    promoted = promote(evaluated)
    if APPROVAL.require_approval:
        # a human decides between gate and promote; Reject (or no answer before the timeout) skips promote
        approve = GateApprovalOperator(
            task_id=APPROVE_TASK,
            evaluated_task_id="evaluate",
            subject="Promote the challenger of run {{ run_id }}?",
            body="{{ ti.xcom_pull(task_ids='gate', key='report') }}",
            defaults=GateApprovalOperator.REJECT,
            response_timeout=timedelta(hours=APPROVAL.approval_timeout_hours),
        )
        decision >> approve >> promoted
    else:
        decision >> promoted
    # summarise reads approve's XCom: an edge from approve would skip it on Reject; label_push's result goes in too
    ingested = [results[spec.name] for spec in sources]  # a night `changes` stopped early is summarised from these
    record(promoted >> label_push(anonymised) >> summarise(evaluated, monitored, anonymised, *ingested))


nightly_retrain()
