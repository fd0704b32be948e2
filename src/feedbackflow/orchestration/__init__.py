"""What Airflow runs: task bodies, each one call from a DAG file, so the DAGs only wire.

- :mod:`~feedbackflow.orchestration.tasks`: the task bodies (stage, gate, promote, summarise) and the run Params;
- :mod:`~feedbackflow.orchestration.rules`: one table of per-stage rules (credentials, work before the stage,
  dry run, forcing Params);
- :mod:`~feedbackflow.orchestration.runner`: one ``dvc.yaml`` stage through DVC, the way a remote worker runs it;
- :mod:`~feedbackflow.orchestration.connections`: Airflow connections -> the environment of a stage subprocess;
- :mod:`~feedbackflow.orchestration.pools`: the train task's GPU pool;
- :mod:`~feedbackflow.orchestration.summary`: the run summary and the run's DVC experiment;
- :mod:`~feedbackflow.orchestration.monitor_tasks`: the task bodies of the ``drift_monitor`` DAG (check, record,
  decide).

Imports of Airflow happen inside the functions: the package works without an Airflow installation at import time.
Every task body returns a small, JSON-serialisable dict (stage name, hashes, counts), never data.
"""
