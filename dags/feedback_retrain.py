"""
### feedback_retrain

Starts a retraining run when new feedback arrives, when the drift policy asks for one, or when a person does.

* **Asset-triggered**: scheduled on the Assets `feedbackflow://feedback/batch` (a feedback collector posts an event
  when a batch lands; its `extra` may carry `batch` (the content hash), `source` and `reason`) and
  `feedbackflow://drift/retrain` (the drift policy's event) and `feedbackflow://erasure/retrain` (an erasure
  request removed rows a model was trained on).
* **Manual**: the trigger form (typed Params), `airflow dags trigger feedback_retrain --conf '{...}'` or the REST API.

The run itself is a `nightly_retrain` run queued with these Params: that DAG runs one run at a time
(`max_active_runs=1`), so a feedback-triggered run never races the nightly one on the same workspace and model.
Retries and timeout: `dag.feedback_retrain` in `params.yaml`.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag, task

from feedbackflow.assets import DRIFT_RETRAIN, ERASURE_RETRAIN, FEEDBACK_BATCH
from feedbackflow.config import ProjectPaths
from feedbackflow.orchestration.tasks import run_params
from feedbackflow.settings import load_settings

_DAG = load_settings(ProjectPaths.discover().params).dag
SETTINGS = _DAG.feedback_retrain


@dag(
    dag_id="feedback_retrain",
    schedule=FEEDBACK_BATCH | DRIFT_RETRAIN | ERASURE_RETRAIN,
    catchup=False,
    is_paused_upon_creation=_DAG.paused_upon_creation,
    doc_md=__doc__,
    params=run_params(),
    tags=["feedbackflow", "retraining"],
    default_args={
        "owner": "feedbackflow",
        "retries": SETTINGS.retries,
        "execution_timeout": timedelta(minutes=SETTINGS.timeout_minutes),
    },
)
def feedback_retrain() -> None:
    @task
    def request(params: dict | None = None, triggering_asset_events=None) -> dict:
        from feedbackflow.orchestration.tasks import retrain_request

        return retrain_request(params, triggering_asset_events)

    TriggerDagRunOperator(task_id="start_retrain", trigger_dag_id="nightly_retrain", conf=request())


feedback_retrain()
