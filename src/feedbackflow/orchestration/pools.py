"""The Airflow pools feedbackflow's DAGs use.

* ``dag.train_pool``: the train task's pool, one slot per GPU, so two trainings never share a GPU;
* ``erasure.lock_pool``: one slot for the guards that keep an erasure and a nightly run apart
  (:mod:`~feedbackflow.orchestration.exclusion`).
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from feedbackflow.settings import DagSettings, ErasureSettings

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


def lock_pool_command(settings: ErasureSettings, airflow: str = "airflow") -> list[str]:
    """``airflow pools set`` for the erasure/night guards' pool (``erasure.lock_pool``): one slot, always."""
    description = "one guard at a time: an erasure and a nightly run never overlap; see erasure.lock_pool"
    return [airflow, "pools", "set", settings.lock_pool, "1", description]


def create_pools(settings: DagSettings, erasure: ErasureSettings) -> None:
    """Create or resize the train task's pool and the guards' pool in the Airflow metadata database.

    ``airflow dags test`` ignores pools, but the scheduler leaves a task whose pool does not exist queued forever.

    Raises:
        subprocess.CalledProcessError: the Airflow CLI failed (e.g. the database is not migrated yet).
    """
    airflow = str(Path(sys.executable).parent / "airflow")
    for command in (pool_command(settings, airflow), lock_pool_command(erasure, airflow)):
        subprocess.run(command, check=True, capture_output=True, text=True)
    log.info("pool %s has %d slot(s), pool %s 1", settings.train_pool, settings.train_pool_slots, erasure.lock_pool)
