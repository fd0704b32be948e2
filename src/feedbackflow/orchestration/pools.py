"""The Airflow pool of the train task: one slot per GPU, so two trainings never share a GPU."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from feedbackflow.settings import DagSettings

log = logging.getLogger(__name__)


def pool_command(settings: DagSettings, airflow: str = "airflow") -> list[str]:
    """``airflow pools set`` for the train task's pool (``dag.train_pool``, ``dag.train_pool_slots``)."""
    return [
        airflow,
        "pools",
        "set",
        settings.train_pool,
        str(settings.train_pool_slots),
        f"GPU slots for the train task ({settings.train_pool_slots} GPU(s)); see dag.train_pool in params.yaml",
    ]


def create_pools(settings: DagSettings) -> None:
    """Create or resize the train task's pool in the Airflow metadata database.

    ``airflow dags test`` ignores pools, but the scheduler leaves a task whose pool does not exist queued forever.

    Raises:
        subprocess.CalledProcessError: the Airflow CLI failed (e.g. the database is not migrated yet).
    """
    command = pool_command(settings, str(Path(sys.executable).parent / "airflow"))
    subprocess.run(command, check=True, capture_output=True, text=True)
    log.info("pool %s has %d slot(s)", settings.train_pool, settings.train_pool_slots)
