"""The end of the grace period: model versions trained on erased rows are retired and their weights deleted.

With ``erasure.policy: retrain_next_run`` an erasure marks the affected versions with ``retire_after`` (the request's
date plus ``erasure.grace_days``) and leaves their weights in place while the next run retrains without the rows.
:func:`sweep` (``feedbackflow forget --sweep``, daily from cron or by hand) retires the versions whose date has
passed: one registry write moves the champion off them (to the newest earlier champion neither affected nor retired,
or to none) and sets their status to ``retired``; only then are their weights deleted from the DVC cache and every
remote (every S3 object version too), except files a version still in use shares, such as the tokenizer. A sweep
cut short (a remote down) deletes the rest next time: every retired version's weights are deleted again, and objects
already gone count zero.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from feedbackflow.config import ProjectPaths
from feedbackflow.governance.erasure import Scan, add_weights
from feedbackflow.governance.erasure_models import retire_due
from feedbackflow.governance.erasure_store import open_stores

log = logging.getLogger(__name__)


def sweep(paths: ProjectPaths, now: str | None = None) -> dict[str, Any]:
    """Retire the versions past ``retire_after`` at ``now`` (default: the current time) and delete their weights.

    Returns:
        ``retired`` (versions retired now), ``champion`` (after) and ``weights_deleted``: per store, the object
        hashes deleted and the object versions removed.
    """
    from feedbackflow.storage.registry import Registry

    at = now or datetime.now(UTC).isoformat(timespec="seconds")
    outcome = retire_due(Registry.open(paths.root), at)
    stores = open_stores(paths.root)
    doomed = Scan()
    add_weights(stores, doomed, outcome["retire_weights"], outcome["keep_weights"])
    deleted: dict[str, dict[str, Any]] = {}
    for store in stores:
        objects = sorted(doomed.holding.get(store.name, set()))
        deleted[store.name] = {"objects": objects, "versions": sum(store.delete(md5) for md5 in objects)}
    log.info("erasure sweep: retired %s; %d weight objects deleted", outcome["versions"] or "none", len(doomed.objects))
    return {"retired": outcome["versions"], "champion": outcome["champion"], "weights_deleted": deleted}
