"""An erasure and a nightly run never overlap: each DAG waits behind a guard sensor for the other.

``erasure_request`` deletes rows, commits new data versions and deletes objects; ``nightly_retrain`` reads and
writes the same datasets stage by stage over hours. Two guards keep them apart, with Airflow's own means:

* ``wait_for_night`` (before ``forget``): waits while a ``nightly_retrain`` run is running;
* ``wait_for_erasure`` (before the night's first stages): waits while an erasure run has passed its guard and its
  ``forget`` task has not finished.

The asymmetry breaks the tie (a night that started first goes on, the erasure waits), so the two never wait for
each other. Both guards are sensors in reschedule mode in one pool with one slot (``erasure.lock_pool``): two pokes
never run at once, and a poke that returns True marks its guard done before the other guard's poke can start, so
"look, then go" is atomic. Between pokes a guard holds neither a slot nor a worker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from feedbackflow.settings import ErasureSettings

NIGHT_DAG = "nightly_retrain"
ERASURE_DAG = "erasure_request"
NIGHT_GUARD = "wait_for_erasure"
ERASURE_GUARD = "wait_for_night"
FORGET_TASK = "forget"
#: task instance states after which ``forget`` deletes nothing more
FINISHED = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})


def erasure_may_start(running_nights: int) -> bool:
    """The erasure guard's test: no nightly run is running (a queued one waits behind the night guard)."""
    return running_nights == 0


def erasing_runs(task_states: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Erasure runs (ids) past their guard whose ``forget`` has not finished, from ``{run_id: {task_id: state}}``."""
    return [
        run_id
        for run_id, states in task_states.items()
        if states.get(ERASURE_GUARD) == "success" and states.get(FORGET_TASK) not in FINISHED
    ]


def night_may_start(task_states: Mapping[str, Mapping[str, Any]], run_state: Callable[[str], str]) -> bool:
    """The night guard's test: no running erasure run is erasing (``run_state``: a run id's dag run state)."""
    return not [run_id for run_id in erasing_runs(task_states) if run_state(run_id) == "running"]


def _guard(task_id: str, erasure: ErasureSettings, poke: Callable[[Any], bool]) -> Any:
    from airflow.sdk import task

    @task.sensor(
        task_id=task_id,
        pool=erasure.lock_pool,
        mode="reschedule",
        poke_interval=erasure.wait_poke_seconds,
        timeout=timedelta(hours=erasure.wait_hours).total_seconds(),
    )
    def guard(ti: Any = None) -> bool:
        return poke(ti)

    return guard()


def wait_for_night(erasure: ErasureSettings) -> Any:
    """The ``erasure_request`` guard task: waits while a nightly run is running."""
    return _guard(ERASURE_GUARD, erasure, lambda ti: erasure_may_start(ti.get_dr_count(NIGHT_DAG, states=["running"])))


def wait_for_erasure(erasure: ErasureSettings) -> Any:
    """The ``nightly_retrain`` guard task: waits while an erasure run is erasing."""

    def poke(ti: Any) -> bool:
        states = ti.get_task_states(ERASURE_DAG, task_ids=[ERASURE_GUARD, FORGET_TASK])
        return night_may_start(states, lambda run_id: ti.get_dagrun_state(ERASURE_DAG, run_id))

    return _guard(NIGHT_GUARD, erasure, poke)
