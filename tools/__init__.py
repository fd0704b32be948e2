"""Development tooling that is not installed with feedbackflow and is no stage's dependency.

Run from the repository root: ``python -m tools.cluster`` (``make airflow-celery``), ``python -m tools.screenshots``
(``make screenshots``), ``python -m tools.pii.<generator>`` (rewrite a committed PII set; see :mod:`tools.pii`).
"""
