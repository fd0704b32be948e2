"""Task bodies for Airflow: each is one call from a DAG file, so the DAGs only wire.

Imports of Airflow happen inside the functions: the package works without an Airflow installation at import time.
Every function returns a small, JSON-serialisable dict (stage name, hashes, counts), never data.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from feedbackflow.config import ProjectPaths
from feedbackflow.orchestration.connections import connection_environment
from feedbackflow.orchestration.rules import STAGE_RULES
from feedbackflow.orchestration.runner import fail_without_retry as _fail_without_retry
from feedbackflow.orchestration.runner import merge_ran, merge_upstream, run_stage
from feedbackflow.settings import SOURCE_OVERRIDE_ENV, Settings, load_settings
from feedbackflow.storage.dvc import Dvc, pipeline

log = logging.getLogger(__name__)


def run_params() -> dict[str, Any]:
    """The run-time knobs of a retraining run, shown (typed) in Airflow's trigger form; never hyperparameters."""
    from airflow.sdk import Param

    return {
        "source": Param(
            None,
            type=["null", "string"],
            title="Source override",
            description="Ingest from here instead of params.yaml's source: a folder path, an s3://bucket/prefix URI "
            "or postgres:<table>. Empty: params.yaml.",
        ),
        "force_retrain": Param(
            False, type="boolean", title="Force retrain", description="Train even when the data did not change."
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Ingest, validate and anonymise only (check a delivery without training).",
        ),
        "reason": Param(
            "", type="string", maxLength=500, title="Reason", description="Why this run; kept in the run summary."
        ),
        "batch": Param(
            None,
            type=["null", "string"],
            title="Batch",
            description="Content hash of the feedback batch that triggered the run (set from the Asset event).",
        ),
    }


def run_trigger(dag_run: Any, params: dict[str, Any] | None) -> dict[str, Any]:
    """How a run started, for its summary: run type, reason, the triggering batch's hash and the Params."""
    params = dict(params or {})
    return {
        "run_type": str(getattr(dag_run, "run_type", None) or "manual"),
        "reason": params.get("reason") or None,
        "batch": params.get("batch"),
        "params": {key: params.get(key) for key in ("source", "force_retrain", "dry_run")},
    }


def retrain_request(params: dict[str, Any] | None, events: Any = None) -> dict[str, Any]:
    """The ``conf`` of the ``nightly_retrain`` run that ``feedback_retrain`` queues.

    ``events`` are the triggering Asset events (Airflow's ``triggering_asset_events``): the newest event's
    ``extra`` may carry ``batch`` (the batch's content hash), ``source`` and ``reason``; a person's Params win.
    """
    conf = {key: value for key, value in (params or {}).items() if key in run_params()}
    latest: dict[str, Any] = {}
    for asset_events in (events or {}).values():
        for event in asset_events:
            latest = {"uri": getattr(getattr(event, "asset", None), "uri", None), **dict(event.extra or {})}
    if latest:
        conf["batch"] = conf.get("batch") or latest.get("batch")
        conf["source"] = conf.get("source") or latest.get("source")
        conf["reason"] = conf.get("reason") or latest.get("reason") or f"asset event on {latest.get('uri')}"
    return conf


def run_options(stage: str, params: dict[str, Any] | None, settings: Settings) -> tuple[dict[str, str], bool]:
    """Extra environment and ``force`` for ``stage`` under a run's Params (rules: ``STAGE_RULES``).

    Raises:
        AirflowSkipException: a dry run and ``stage`` does not take part in one (it comes after anonymise).
    """
    params = params or {}
    rule = STAGE_RULES[stage]
    if params.get("dry_run") and not rule.in_dry_run:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(f"dry run: {stage} skipped (validate and anonymise only)")
    env: dict[str, str] = {}
    force = bool(rule.forced_by and params.get(rule.forced_by))
    if rule.takes_source and params.get("source"):
        # DVC cannot see the override (it is not in params.yaml): force the stage; the manifest keeps it idempotent
        env[SOURCE_OVERRIDE_ENV] = str(params["source"])
        force = True
    return env, force or bool(rule.always_runs and rule.always_runs(settings))


def stage_task(
    stage: str, upstream: Iterable[dict[str, Any] | None], run_id: str, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run one ``dvc.yaml`` stage; bad data, a privacy leak or a corrupt manifest fail the task without retries.

    The stage's connections (``STAGE_RULES``; ids from ``FEEDBACKFLOW_AWS_CONN_ID``, ``FEEDBACKFLOW_POSTGRES_CONN_ID``
    and ``FEEDBACKFLOW_PSEUDONYM_KEY_CONN_ID``) reach its subprocess as environment variables, masked in every log.
    """
    paths = ProjectPaths.discover()
    settings = load_settings(paths.params)  # once per task, passed down
    rule = STAGE_RULES[stage]
    extra_env, forced = run_options(stage, params, settings)
    env = {**connection_environment(rule.connections), **extra_env}
    upstream = _flat(upstream)
    with _fail_without_retry():
        for hook in (rule.before, rule.fetch):
            if hook:
                hook(paths, env)
        if rule.shards:
            from feedbackflow.orchestration.shard_tasks import restore_shards

            restore_shards(paths, env, upstream)  # the parts the mapped shard tasks made, from the DVC remote
        return run_stage(stage, upstream, run_id=run_id, root=str(paths.root), env=env, force=forced)


def _flat(upstream: Iterable[Any]) -> list[dict[str, Any] | None]:
    """Upstream results with a mapped task's results (a sequence of them) spread out."""
    flat: list[dict[str, Any] | None] = []
    for result in upstream:
        flat.extend(result if isinstance(result, Sequence) and not isinstance(result, str) else [result])
    return flat


CHANGES_TASK = "changes"


def changes_task(upstream: Iterable[dict[str, Any] | None], params: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the night has left to do once the source stages ran: ``{"changed": [stages]}``, or ``{}`` for nothing.

    The ``changes`` task is Airflow's short-circuit: ``{}`` (falsy) skips every later stage task without starting it,
    where each would start a worker process and DVC only to find itself up to date (5 to 14 s a task). The check is
    DVC's own decision, made once: each later stage's work before ``dvc repro`` (the key id, train's start, the
    champion from the shared registry), then one ``dvc status`` of those stages. A forced or always-run stage counts
    as changed; so does an output missing from this worker's workspace (a fresh worker): the stage tasks then decide
    for themselves, as without the check.
    """
    paths = ProjectPaths.discover()
    settings = load_settings(paths.params)
    params = params or {}
    later = [name for name in night_stages(paths, params) if not STAGE_RULES[name].takes_source]
    rules = [STAGE_RULES[name] for name in later]
    forced = [
        name
        for name, rule in zip(later, rules, strict=True)
        if (rule.forced_by and params.get(rule.forced_by)) or (rule.always_runs and rule.always_runs(settings))
    ]
    if forced:
        return {"changed": forced}  # the stages run: the summary needs no word from here
    env = connection_environment(tuple(sorted({kind for rule in rules for kind in rule.connections})))
    with _fail_without_retry():
        for before in dict.fromkeys(rule.before for rule in rules if rule.before):  # each once, in stage order
            before(paths, env)
        dvc = Dvc(paths.root, env)
        dvc.merge_lock(merge_upstream(upstream))
        changed = sorted(stage_status(dvc, later))
    log.info("changes: %s", ", ".join(changed) if changed else "none (every later stage is up to date)")
    return {"changed": changed} if changed else {}


def night_stages(paths: ProjectPaths, params: dict[str, Any] | None) -> list[str]:
    """The ``dvc.yaml`` stages a run with these Params takes part in (a dry run: those up to anonymise)."""
    dry_run = bool((params or {}).get("dry_run"))
    return [name for name in pipeline(paths.dvc_yaml) if STAGE_RULES[name].in_dry_run or not dry_run]


def stage_status(dvc: Dvc, stages: list[str]) -> dict[str, Any]:
    """``dvc status --json`` of ``stages`` (each alone, not its upstream): stage -> what changed; empty: up to date."""
    output = dvc("status", "--json", *stages) if stages else "{}"
    document = next((line for line in reversed(output.splitlines()) if line.startswith("{")), "{}")
    return {name: change for name, change in json.loads(document).items() if change}


#: the report files among the stages' outputs that the run summary reads (the rest, e.g. plots, stay in the remote)
REPORT_SUFFIXES = (".json", ".md", ".html")


def stage_reports(paths: ProjectPaths) -> list[str]:
    """Every report file a ``dvc.yaml`` stage writes under ``reports/`` (one owner of that list: ``dvc.yaml``)."""
    return [
        out
        for spec in pipeline(paths.dvc_yaml).values()
        for out in spec.outs
        if Path(out).is_relative_to(ProjectPaths.relative().reports) and out.endswith(REPORT_SUFFIXES)
    ]


def pull_upstream(upstream: Iterable[dict[str, Any] | None], targets: Iterable[str]) -> ProjectPaths:
    """Bring the named upstream outputs into this worker's workspace, by hash, from the DVC remote."""
    paths = ProjectPaths.discover()
    dvc = Dvc(paths.root)
    dvc.merge_lock(merge_upstream(upstream))
    wanted = dvc.to_pull(targets)  # what the lock records and this workspace lacks
    if wanted:
        dvc("pull", "--allow-missing", *wanted)
    return paths


APPROVE_TASK = "approve"
#: the review loop's tasks (:mod:`feedbackflow.orchestration.labelling_tasks`): the summary keeps their results
LABEL_PULL_TASK, LABEL_PUSH_TASK = "label_pull", "label_push"
DECISION_KEY = "decision"
"""The XCom key under which the ``approve`` task (:mod:`feedbackflow.approval`) keeps its decision."""
GATE_REPORTS = [
    path.as_posix()
    for path in (
        ProjectPaths.relative().gate,
        ProjectPaths.relative().gate_report(),
        ProjectPaths.relative().gate_report(".html"),
    )
]


def gate_task(upstream: Iterable[dict[str, Any] | None], run_id: str, ti: Any = None) -> bool:
    """True when the gate passed, the challenger is not yet champion and the champion is the one it was compared with.

    A refused challenger is kept in the registry as ``rejected`` with its report. With ``ti`` the gate report
    (Markdown) goes to the XCom ``report``, the body of the approval task.
    """
    from feedbackflow.modeling.gate import load_gate
    from feedbackflow.stages.promote import record_rejection, should_promote

    with _fail_without_retry():
        paths = pull_upstream(upstream, GATE_REPORTS)
        allowed, reason = should_promote(paths)
        if load_gate(paths) and not load_gate(paths).get("promote"):
            record_rejection(paths, run_id, "gate", reason)
    log.info("gate: %s", reason)
    if ti is not None and paths.gate_report().is_file():
        ti.xcom_push(key="report", value=paths.gate_report().read_text(encoding="utf-8"))
    return allowed


def approval_decision(approval: dict[str, Any] | None) -> tuple[bool | None, str | None]:
    """(approved, by whom) from the approval task's XCom; (None, None) when no approval was asked."""
    if not approval:
        return None, None
    approved = "Approve" in (approval.get("chosen_options") or [])
    user = approval.get("responded_by_user") or {}
    by = user.get("name") or user.get("id") or "approval timeout (default: Reject)"
    return approved, str(by)


def approval_decision_of(ti: Any) -> dict[str, Any] | None:
    """The ``approve`` task's decision ({approved, by}) in this run, or None when the DAG asks no approval."""
    return ti.xcom_pull(task_ids=APPROVE_TASK, key=DECISION_KEY) if ti is not None else None


def promote_task(upstream: Iterable[dict[str, Any] | None], run_id: str, ti: Any = None) -> dict[str, Any]:
    """Promote the challenger (the gate, and the approver when required, allowed it); return the champion record."""
    from feedbackflow.stages import promote

    approval = approval_decision_of(ti)
    with _fail_without_retry():
        paths = pull_upstream(upstream, [*GATE_REPORTS, ProjectPaths.relative().challenger.as_posix()])
        approver = approval["by"] if approval else None
        return promote.run(load_settings(paths.params), paths, run_id=run_id, approved_by=approver)


def record_rejection_task(upstream: Iterable[dict[str, Any] | None], run_id: str, by: str) -> None:
    """Keep the challenger a human rejected (or left unanswered) in the shared registry as ``rejected``."""
    from feedbackflow.stages.promote import record_rejection

    with _fail_without_retry():
        paths = pull_upstream(upstream, GATE_REPORTS)
        entry = record_rejection(paths, run_id, by, f"rejected in the approval task by {by}")
    log.info("approval: rejected by %s, recorded as %s", by, entry["version"] if entry else "-")


def summarise_task(
    results: Iterable[dict[str, Any] | None], run_id: str, trigger: dict[str, Any] | None = None, ti: Any = None
) -> dict[str, Any]:
    """Write the run summary and save the run as a DVC experiment; returns the headline figures.

    ``trigger`` says how the run started (run type, reason, the batch hash of an Asset event, the Params); with
    ``ti`` the decision of the ``approve`` task (when the DAG has one) and the review loop's task results go into the
    summary.
    """
    from feedbackflow.orchestration.summary import write_summary

    approval = approval_decision_of(ti)
    review = (
        {task: ti.xcom_pull(task_ids=task) for task in (LABEL_PULL_TASK, LABEL_PUSH_TASK)} if ti is not None else None
    )
    results = [result for result in results if result]
    with _fail_without_retry():
        paths = pull_upstream(results, stage_reports(ProjectPaths.discover()))
        ran = merge_ran(results)
        if all(STAGE_RULES[name].takes_source for name in ran):  # `changes` skipped the rest: all up to date
            ran = {name: ran.get(name, False) for name in night_stages(paths, (trigger or {}).get("params"))}
        summary = write_summary(paths, run_id, ran, trigger=trigger, approval=approval, review=review)
    return {
        "experiment": summary.get("experiment"),
        "promote": summary["evaluate"]["gate"]["promote"],
        "challenger": summary["evaluate"]["challenger"],
    }


def record_failed_night(context: Any) -> None:
    """Airflow DAG ``on_failure_callback``: the failed night gets a run summary and record too (``status: failed``).

    Without it ``summarise`` (which needs its upstream to succeed) never runs, and the run summary, the governance
    view and the experiment list keep showing the previous good night. A failure to record is logged, never raised:
    the run has failed already and its own reason must stay the one Airflow shows.
    """
    from feedbackflow.orchestration.summary import write_failed_summary

    ti = context.get("ti") or context.get("task_instance")
    run_id = str(context.get("run_id") or getattr(context.get("dag_run"), "run_id", None) or "manual")
    try:
        trigger = run_trigger(context.get("dag_run"), context.get("params"))
        summary = write_failed_summary(ProjectPaths.discover(), run_id, [ti.task_id] if ti else [], trigger)
    except Exception:  # recording is best effort: the run has failed already
        log.exception("could not record the failed run %s", run_id)
        return
    log.error("run %s failed at %s: recorded in the run summary", run_id, summary["failed"]["stage"] or ti)
