"""
### erasure_request

Forgets one customer (GDPR article 17): their rows in every dataset and data version, every copy in the DVC cache
and both remotes (every S3 object version), the model versions trained on them, and a certificate
(`governance/erasure/<request id>.json` and `.html`) that holds no identifier. See docs/erasure.md.

* **Manual only**: the trigger form (typed Params: request id, who asked, and any of e-mail, phone, customer id,
  name), `airflow dags trigger erasure_request --conf '{...}'` or the REST API.
* **Approval**: with `erasure.require_approval` in `params.yaml`, a person approves in Airflow before anything is
  deleted; a Reject, or no answer in time, erases nothing.
* **One at a time, never during a night**: `max_active_runs=1`; `wait_for_night` waits while a `nightly_retrain`
  run is running, and that DAG's `wait_for_erasure` keeps a night from starting while `forget` erases (both guards
  share the one-slot pool `erasure.lock_pool`).
* When rows a model was trained on went, `erasure_retrain` is emitted (`erasure.policy: retrain_next_run`) and
  `feedback_retrain` starts a retraining run without them.

The identifiers stay in the run's Params only: XComs and logs carry counts and hashes.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task

from feedbackflow.assets import ERASURE_RETRAIN
from feedbackflow.config import ProjectPaths
from feedbackflow.orchestration.erasure_tasks import erasure_params
from feedbackflow.orchestration.exclusion import wait_for_night
from feedbackflow.settings import load_settings

_SETTINGS = load_settings(ProjectPaths.discover().params)
ERASURE = _SETTINGS.erasure


@dag(
    dag_id="erasure_request",
    schedule=None,
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=_SETTINGS.dag.paused_upon_creation,
    doc_md=__doc__,
    params=erasure_params(),
    tags=["feedbackflow", "governance", "erasure"],
    default_args={"owner": "feedbackflow", "retries": 0},
)
def erasure_request() -> None:
    @task
    def forget(params: dict | None = None, ti=None) -> dict:
        from feedbackflow.orchestration.erasure_tasks import erase

        return erase(params or {}, ti.xcom_pull(task_ids="approve") if ERASURE.require_approval else None)

    @task(outlets=[ERASURE_RETRAIN])
    def request_retrain(certificate: dict, *, outlet_events=None) -> dict:
        outlet_events[ERASURE_RETRAIN].extra = {"reason": f"erasure {certificate['request_id']}"}
        return certificate["models"]

    @task.short_circuit
    def retrain_needed(certificate: dict) -> bool:
        return bool(certificate["models"]["versions"]) and certificate["models"]["action"] == "retrain_next_run"

    erased = forget()
    guard = wait_for_night(ERASURE)
    guard >> erased
    if ERASURE.require_approval:
        from airflow.providers.standard.operators.hitl import ApprovalOperator

        approve = ApprovalOperator(
            task_id="approve",
            subject="Erase the subject of request {{ params.request_id }}?",
            body="Requested by {{ params.requested_by }}. Every copy of their rows will be deleted.",
            defaults=ApprovalOperator.REJECT,
            response_timeout=timedelta(hours=ERASURE.approval_timeout_hours),
        )
        approve >> guard  # a pending approval does not hold a night back
    retrain_needed(erased) >> request_retrain(erased)


erasure_request()
