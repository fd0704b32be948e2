"""Run one ``dvc.yaml`` stage as an orchestrator task.

``dvc.yaml`` owns the stage graph; this runner only executes one stage the way a remote worker would:

1. merge the upstream tasks' ``dvc.lock`` entries (passed as small XComs) into the local lock file;
2. ``dvc repro --single-item --pull <stage>``: DVC pulls any missing input by hash from the remote, decides whether
   the stage is up to date, and runs it or restores it from the run cache;
3. ``dvc push <stage>``: the stage's outputs go to their remote (restricted data to the restricted remote);
4. return the stage's own lock entry, so downstream tasks can do the same on any machine.

On the embedded default (one workspace) steps 1 and 2 find everything in place and cost little.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from feedbackflow.config import ProjectPaths
from feedbackflow.storage.dvc import Dvc

log = logging.getLogger(__name__)


def merge_upstream(upstream: Iterable[dict[str, Any] | None]) -> dict[str, Any]:
    """The ``dvc.lock`` entries of every stage upstream of these task results (stage name -> entry)."""
    entries: dict[str, Any] = {}
    for result in upstream:
        if result and result.get("lock"):
            entries.update(result.get("upstream_locks", {}))
            entries[result["stage"]] = result["lock"]
    return entries


def merge_ran(upstream: Iterable[dict[str, Any] | None]) -> dict[str, bool]:
    """Which upstream stages ran (True) or were found up to date (False)."""
    ran: dict[str, bool] = {}
    for result in upstream:
        if result:
            ran.update(result.get("stages_ran", {}))
    return ran


def run_stage(
    stage: str,
    upstream: Iterable[dict[str, Any] | None] = (),
    *,
    run_id: str | None = None,
    push: bool = True,
    root: str | None = None,
    env: dict[str, str] | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Execute ``stage`` through DVC and return what downstream tasks need.

    The result holds ``stage``, ``ran`` (False when DVC found it up to date), ``lock`` (its ``dvc.lock`` entry),
    ``upstream_locks`` and ``stages_ran`` (the same two for every upstream stage).

    Args:
        stage: a stage name of ``dvc.yaml``.
        upstream: the return values of the upstream tasks' ``run_stage`` calls.
        run_id: the orchestrator's run id, recorded in provenance.
        push: push the stage's outputs to the DVC remote afterwards.
        root: the project root (default: ``FEEDBACKFLOW_PROJECT_DIR`` or the working directory).
        env: extra environment for DVC and the stage command (e.g. S3 credentials from an Airflow connection).
        force: run the stage even if DVC finds it up to date (for sources DVC cannot hash, e.g. S3 ingest).

    Raises:
        DvcError: the stage failed; ``exit_code`` is the stage command's exit code (65 for bad data).
    """
    paths = ProjectPaths.discover(root)
    dvc = Dvc(paths.root, {**(env or {}), **({"FEEDBACKFLOW_RUN_ID": run_id} if run_id else {})})
    upstream = list(upstream)
    upstream_locks = merge_upstream(upstream)
    dvc.merge_lock(upstream_locks)
    if stage in dvc.lock().get("stages", {}):
        # persistent outputs (the append-only raw store) must be present before the stage appends to them
        dvc("pull", "--allow-missing", stage)
    output = dvc("repro", "--single-item", "--pull", *(["--force"] if force else []), stage)
    ran = bool(re.search(rf"Running stage '{re.escape(stage)}'", output))
    if push:
        dvc("push", stage)
    entry = dvc.lock().get("stages", {}).get(stage)
    log.info("stage %s %s", stage, "ran" if ran else "was up to date (skipped)")
    ran_so_far = {**merge_ran(upstream), stage: ran}
    return {"stage": stage, "ran": ran, "lock": entry, "upstream_locks": upstream_locks, "stages_ran": ran_so_far}
