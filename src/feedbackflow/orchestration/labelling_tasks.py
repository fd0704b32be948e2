"""Task bodies of the review loop in ``nightly_retrain``: labels back before ingest, tonight's batch out after the
champion is decided.

``label_pull`` runs first, so the reviewers' answers arrive as a delivery that night's ``ingest`` takes (source
``review``); ``label_push`` runs after ``promote`` (run or skipped), so the champion that serves tomorrow picks the
batch. The loop is a side road of the night: with ``labelling.budget`` 0 both tasks do nothing, without
``labelling.label_studio_url`` they use files (docs/labelling.md), and a labelling server that is down, refuses the
token or returns a bad export never fails the night: the task succeeds and says what failed, and the run summary
keeps it. Each returns a small dict (mode, status, counts), never text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import FeedbackflowError
from feedbackflow.orchestration.connections import connection_environment
from feedbackflow.orchestration.rules import sync_champion
from feedbackflow.orchestration.tasks import pull_upstream
from feedbackflow.settings import Settings, load_settings

log = logging.getLogger(__name__)

OFF, OK, FAILED = "off", "ok", "failed"


def mode(settings: Settings) -> str:
    """``off`` (budget 0), ``label_studio`` (a server is configured) or ``files`` (import/export JSON)."""
    if settings.labelling.budget == 0:
        return OFF
    return "label_studio" if settings.labelling.label_studio_url else "files"


def guarded(step: str, work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one step of the loop; its failure is reported (status ``failed``, the error's kind and message), not
    raised. The loop's errors name the server, file or line, never a text value or a token."""
    try:
        return {"status": OK, **work()}
    except (FeedbackflowError, OSError) as error:
        message = f"{type(error).__name__}: {error}"[:300]
        log.warning("labelling %s failed; the night goes on without it: %s", step, message)
        return {"status": FAILED, "error": message}


def label_pull_task() -> dict[str, Any]:
    """Take the reviewers' new labels back as a delivery for tonight's ingest (:func:`labelling.loop.pull`)."""
    from feedbackflow.labelling import loop

    paths = ProjectPaths.discover()
    settings = load_settings(paths.params)
    how = mode(settings)
    if how == OFF:
        return {"mode": how, "status": OFF}
    return {"mode": how, **guarded("pull", lambda: loop.pull(settings, paths))}


def label_push_task(upstream: Iterable[dict[str, Any] | None], params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Send tonight's review batch, picked by the shared registry's champion (:func:`labelling.loop.push`).

    ``upstream`` is the ``anonymise`` task's result: its rows come from the DVC remote by hash, as the champion does.

    Raises:
        AirflowSkipException: a dry run (nothing goes to reviewers from a delivery that was only checked).
    """
    if (params or {}).get("dry_run"):
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException("dry run: no review batch is sent")
    paths = ProjectPaths.discover()
    settings = load_settings(paths.params)
    how = mode(settings)
    if how == OFF:
        return {"mode": how, "status": OFF}
    return {"mode": how, **guarded("push", lambda: _push(settings, paths, upstream))}


def _push(settings: Settings, paths: ProjectPaths, upstream: Iterable[dict[str, Any] | None]) -> dict[str, Any]:
    from feedbackflow.labelling import loop

    env = connection_environment(("aws",))
    pull_upstream(upstream, [ProjectPaths.relative().anonymised.as_posix()])
    return loop.push(settings, paths, sync=lambda: sync_champion(paths, env))  # synced only when a row is to go
