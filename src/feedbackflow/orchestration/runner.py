"""Run one ``dvc.yaml`` stage as an orchestrator task.

``dvc.yaml`` owns the stage graph; this runner only executes one stage the way a remote worker would:

1. merge the upstream tasks' ``dvc.lock`` entries (passed as small XComs) into the local lock file;
2. ``dvc repro --single-item --pull <stage>``: DVC pulls any missing input by hash from the remote, decides whether
   the stage is up to date, and runs it or restores it from the run cache;
3. ``dvc push <stage>``: the stage's outputs go to their remote (restricted data to the restricted remote);
4. return the stage's own lock entry, so downstream tasks can do the same on any machine.

On the embedded default (one workspace) steps 1 and 2 find everything in place and cost little.

A stage that fails after writing outputs must not block the next run: DVC would refuse to overwrite those unsaved
files when the next run pulls the stage's last good outputs ("Can't remove the following unsaved files without
confirmation"). So when a stage command fails, whatever it wrote is moved aside to ``.work/failed/<stage>/<run>/``
(kept for inspection, never pushed; the newest five per stage) with ``failure.json`` (the stage's own message and
exit code), and the task fails with the stage's own message. A pull that still finds unsaved files (a run killed
before it could clean up) moves them aside the same way and pulls again.

Persistent outputs (the append-only raw store) are not removed by DVC before a run, so they are rolled back instead:
a hard-link snapshot taken before ``dvc repro`` (:mod:`feedbackflow.storage.rollback`) puts them back as they were
when the stage fails (what it appended goes to the same ``.work/failed/`` folder), or at the start of the next run
when the worker was killed. A retry never sees half a delivery.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import DataQualityError, FeedbackflowError, PrivacyLeakError, StateCorruptError
from feedbackflow.io import write_json
from feedbackflow.storage.dvc import Dvc, DvcError
from feedbackflow.storage.rollback import PersistentSnapshot

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
    snapshot = persistent_snapshot(paths, stage)
    if snapshot.pending():  # a killed run appended to the persistent outputs: undo that first
        snapshot.restore(paths.failed_runs / stage / _label(run_id))
    pull_inputs(dvc, paths, stage, upstream_locks, run_id)
    snapshot.take()
    try:
        output = dvc("repro", "--single-item", "--pull", *(["--force"] if force else []), stage)
    except DvcError as error:
        raise stage_failure(paths, stage, error, run_id, snapshot) from None
    snapshot.discard()
    ran = bool(re.search(rf"Running stage '{re.escape(stage)}'", output))
    if push:
        dvc("push", stage)
    entry = dvc.lock().get("stages", {}).get(stage)
    log.info("stage %s %s", stage, "ran" if ran else "was up to date (skipped)")
    ran_so_far = {**merge_ran(upstream), stage: ran}
    return {"stage": stage, "ran": ran, "lock": entry, "upstream_locks": upstream_locks, "stages_ran": ran_so_far}


def pull_inputs(
    dvc: Dvc, paths: ProjectPaths, stage: str, upstream_locks: dict[str, Any], run_id: str | None = None
) -> None:
    """Bring ``stage``'s last outputs and the upstream outputs it reads into this workspace, by hash."""
    if stage in dvc.lock().get("stages", {}):
        # persistent outputs (the append-only raw store) must be present before the stage appends to them
        _pull_stage(dvc, paths, stage, run_id)
    needed = upstream_outputs(paths.root, stage, upstream_locks)
    if needed:
        # `repro --pull` cannot fetch a dependency that is a file inside another stage's output folder
        # (data/split/train.parquet of data/split) on a worker that never had it: pull those outputs by hash first
        dvc("pull", "--allow-missing", *needed)


UNSAVED = "Can't remove the following unsaved files"
#: Failed runs kept aside per stage (the oldest go first): enough to compare a few nights, bounded on disk.
KEEP_FAILED = 5


def _pull_stage(dvc: Dvc, paths: ProjectPaths, stage: str, run_id: str | None) -> None:
    """Pull the stage's last good outputs; files a killed run left behind are moved aside first, never lost."""
    try:
        dvc("pull", "--allow-missing", stage)
    except DvcError as error:
        if UNSAVED not in error.output:
            raise
        kept = set_aside_outputs(paths, stage, _label(run_id))
        log.warning("stage %s: unsaved outputs of an interrupted run moved to %s", stage, kept)
        dvc("pull", "--allow-missing", stage)


def persistent_snapshot(paths: ProjectPaths, stage: str) -> PersistentSnapshot:
    """The rollback snapshot of ``stage``'s persistent outputs, in ``.work/rollback/<stage>/``."""
    persistent = tuple(path for path, persist in stage_outputs(paths.root, stage) if persist)
    return PersistentSnapshot(paths.root, paths.rollback(stage), persistent)


def stage_failure(
    paths: ProjectPaths, stage: str, error: DvcError, run_id: str | None, snapshot: PersistentSnapshot | None = None
) -> DvcError:
    """Clean up after a failed ``dvc repro`` of ``stage`` and return the error the task should fail with.

    When the stage command ran (DVC removed its previous outputs first), everything it wrote is moved to
    ``.work/failed/<stage>/<run>/`` with a ``failure.json``, so the next run and any retry start from a clean
    workspace; persistent outputs are rolled back to ``snapshot`` (what the run appended is moved there too). The
    returned error carries the stage's own message (file, rule, what to do) rather than DVC's output,
    and the same exit code.
    """
    message = stage_message(stage, error.output) or str(error)
    if not re.search(rf"Running stage '{re.escape(stage)}'", error.output):
        if snapshot is not None:
            snapshot.discard()
        return DvcError(message, exit_code=error.exit_code, output=error.output)  # failed before the command ran
    label = _label(run_id)
    kept = set_aside_outputs(paths, stage, label)
    folder = paths.failed_runs / stage / label
    if snapshot is not None:
        kept += snapshot.restore(folder)
    write_json(
        folder / "failure.json",
        {
            "stage": stage,
            "run_id": run_id,
            "failed_at": datetime.now(UTC).isoformat(),
            "exit_code": error.exit_code,
            "message": message,
            "kept": [path.relative_to(folder).as_posix() for path in kept],
        },
    )
    where = folder.relative_to(paths.root).as_posix()
    note = f"(what the failed run wrote is kept in {where}/; the next run starts clean)"
    log.error("stage %s failed (exit %d): %s\n%s", stage, error.exit_code, message, note)
    return DvcError(f"{message}\n{note}", exit_code=error.exit_code, output=error.output)


def stage_message(stage: str, output: str) -> str | None:
    """The stage command's own error message in DVC's output (``error in <stage>: ...``, as the CLI prints it)."""
    lines = output.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith((f"error in {stage}: ", "error: "))]
    if not starts:
        return None
    body: list[str] = []
    for line in lines[starts[-1] :]:
        if line.startswith("ERROR: ") and body:  # DVC's own summary line follows the command's output
            break
        body.append(line)
    first = body[0].split(": ", 1)[1]
    return "\n".join([first, *body[1:]]).strip()


def stage_spec(root: Path, stage: str) -> dict[str, Any]:
    """``stage``'s definition in ``dvc.yaml`` (empty when it has none)."""
    return (yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8")) or {}).get("stages", {}).get(stage) or {}


def stage_outputs(root: Path, stage: str) -> list[tuple[str, bool]]:
    """``(path, persist)`` of every output, metric and plot file ``dvc.yaml`` declares for ``stage``."""
    spec = stage_spec(root, stage)
    found = []
    for kind in ("outs", "metrics", "plots"):
        for item in spec.get(kind) or []:
            if isinstance(item, str):
                found.append((item, False))
            else:
                found.extend((path, bool((options or {}).get("persist"))) for path, options in item.items())
    return found


def upstream_outputs(root: Path, stage: str, upstream_locks: dict[str, Any]) -> list[str]:
    """The upstream outputs ``stage`` depends on (an output equal to, or a folder holding, one of its dependencies)."""
    spec = stage_spec(root, stage)
    deps = [dep for dep in spec.get("deps") or [] if isinstance(dep, str) and "${" not in dep]
    outs = {out["path"] for entry in upstream_locks.values() for out in (entry or {}).get("outs", [])}
    return sorted(out for out in outs if any(dep == out or dep.startswith(out.rstrip("/") + "/") for dep in deps))


def set_aside_outputs(paths: ProjectPaths, stage: str, label: str) -> list[Path]:
    """Move the stage's non-persistent outputs present in the workspace to ``.work/failed/<stage>/<label>/``.

    Persistent outputs (the append-only raw store) stay: the stage appends to them and never rewrites them.

    Returns:
        The moved paths, at their new place.
    """
    folder = paths.failed_runs / stage / label
    _prune(folder.parent, keep=KEEP_FAILED - 1)
    moved = []
    for path, persist in stage_outputs(paths.root, stage):
        source = paths.root / path
        if persist or not (source.exists() or source.is_symlink()):
            continue
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(source, target)
        moved.append(target)
    return moved


def _prune(stage_folder: Path, keep: int) -> None:
    """Remove all but the ``keep`` newest kept-aside runs of one stage (names start with a sortable UTC time)."""
    if not stage_folder.is_dir():
        return
    runs = sorted(path for path in stage_folder.iterdir() if path.is_dir())
    for old in runs[: max(len(runs) - keep, 0)]:
        log.info("removing %s: only the %d newest failed runs of a stage are kept", old, KEEP_FAILED)
        shutil.rmtree(old, ignore_errors=True)


def _label(run_id: str | None) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}-{re.sub(r'[^A-Za-z0-9._-]+', '_', run_id or 'manual')}"


#: Exit codes of failures a retry cannot fix: bad data, a privacy leak, a corrupt state file (the raw manifest).
NO_RETRY_EXIT_CODES = (DataQualityError.exit_code, PrivacyLeakError.exit_code, StateCorruptError.exit_code)


@contextmanager
def fail_without_retry() -> Iterator[None]:
    """Bad data, a leak, a corrupt manifest or registry fail the task once: retrying cannot fix them."""
    try:
        yield
    except FeedbackflowError as error:
        if getattr(error, "exit_code", None) in NO_RETRY_EXIT_CODES:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(str(error)) from error
        raise


def log_task_failure(context: Any) -> None:
    """Airflow ``on_failure_callback``: end the failed task's log with its reason, free of any traceback."""
    task = context.get("task_instance") or context.get("ti")
    name = getattr(task, "task_id", "task")
    log.error("%s failed: %s", name, context.get("exception") or "no reason recorded (see above)")
