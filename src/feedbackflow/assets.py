"""The Airflow Assets that connect feedbackflow's DAGs: one owner for their names and URIs.

* ``FEEDBACK_BATCH``: a feedback collector posts an event when a batch lands (its ``extra`` may carry ``batch``, the
  content hash, ``source`` and ``reason``); ``feedback_retrain`` starts a retraining run on it.
* ``RUN_RECORDED``: a retraining run finished and was recorded (governance record, dashboard snapshot);
  ``drift_monitor`` checks drift against the (possibly new) champion and applies the drift -> retrain policy.
* ``DRIFT_RETRAIN``: the drift -> retrain policy asks for a retraining run; ``feedback_retrain`` starts it.
* ``ERASURE_RETRAIN``: an erasure request removed rows the champion was trained on (policy ``retrain_next_run``);
  ``feedback_retrain`` starts a retraining run without them (the gate still applies).

Imported by DAG files only (it imports the Airflow SDK).
"""

from __future__ import annotations

from airflow.sdk import Asset

FEEDBACK_BATCH = Asset(name="feedback_batch", uri="feedbackflow://feedback/batch")
RUN_RECORDED = Asset(name="run_recorded", uri="feedbackflow://pipeline/run-recorded")
DRIFT_RETRAIN = Asset(name="drift_retrain", uri="feedbackflow://drift/retrain")
ERASURE_RETRAIN = Asset(name="erasure_retrain", uri="feedbackflow://erasure/retrain")
