"""Task bodies for Airflow: each is one call from the DAG file, so the DAG only wires.

Imports of Airflow happen inside the functions: the package works without an Airflow installation at import time.
Every function returns a small, JSON-serialisable dict (stage name, hashes, counts), never data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import DataQualityError
from feedbackflow.runner import _merge_ran, _merge_upstream, run_stage
from feedbackflow.storage.dvc import Dvc, DvcError

log = logging.getLogger(__name__)


def stage_task(stage: str, upstream: Iterable[dict[str, Any] | None], run_id: str) -> dict[str, Any]:
    """Run one ``dvc.yaml`` stage; a data-quality failure fails the task without retries (retrying cannot help)."""
    try:
        return run_stage(stage, upstream, run_id=run_id)
    except DvcError as error:
        if error.exit_code == DataQualityError.exit_code:
            from airflow.exceptions import AirflowFailException

            raise AirflowFailException(str(error)) from error
        raise


REPORTS = (
    "reports/ingest/ingest.json",
    "reports/validate/validate.json",
    "reports/anonymise/anonymise.json",
    "reports/train/metrics.json",
    "reports/evaluate/gate.json",
    "reports/monitor/summary.json",
)


def _pull_upstream(upstream: Iterable[dict[str, Any] | None], targets: Iterable[str]) -> ProjectPaths:
    """Bring the named upstream outputs into this worker's workspace, by hash, from the DVC remote."""
    paths = ProjectPaths.discover()
    dvc = Dvc(paths.root)
    dvc.merge_lock(_merge_upstream(upstream))
    wanted = [target for target in targets if target in {out for out in _known_outputs(dvc)}]
    if wanted:
        dvc("pull", "--allow-missing", *wanted)
    return paths


def _known_outputs(dvc: Dvc) -> set[str]:
    return {out["path"] for stage in dvc.lock().get("stages", {}).values() for out in stage.get("outs", [])}


def gate_task(upstream: Iterable[dict[str, Any] | None]) -> bool:
    """True when the evaluate stage's gate passed and the challenger is not already the champion."""
    from feedbackflow.stages.promote import should_promote

    allowed, reason = should_promote(_pull_upstream(upstream, ["reports/evaluate/gate.json"]))
    log.info("gate: %s", reason)
    return allowed


def promote_task(upstream: Iterable[dict[str, Any] | None], run_id: str) -> dict[str, Any]:
    """Promote the challenger (the gate already allowed it) and return the new champion record."""
    import os

    from feedbackflow.settings import load_settings
    from feedbackflow.stages import promote

    paths = _pull_upstream(upstream, ["reports/evaluate/gate.json", "models/challenger"])
    os.environ["FEEDBACKFLOW_RUN_ID"] = run_id
    return promote.run(load_settings(paths.params), paths)


def summarise_task(results: Iterable[dict[str, Any] | None], run_id: str) -> dict[str, Any]:
    """Write the run summary and save the run as a DVC experiment; returns the headline figures."""
    from feedbackflow.summary import write_summary

    results = [result for result in results if result]
    paths = _pull_upstream(results, REPORTS)
    ran = _merge_ran(results)
    summary = write_summary(paths, run_id, ran)
    return {
        "experiment": summary.get("experiment"),
        "promote": summary["evaluate"]["gate"]["promote"],
        "challenger": summary["evaluate"]["challenger"],
    }
