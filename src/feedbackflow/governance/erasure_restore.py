"""Restoring an old data version: a clear refusal when an erasure deleted it, never DVC's "missing cache" error.

A Git revision or a DVC experiment names its data by the hashes in its ``dvc.lock``. Before anything is checked
out, those hashes are compared with the erasure log: when a request deleted one of them, the restore stops with a
message naming the request, its date and the outputs concerned, and says what to use instead (the newest version,
which holds every other row).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import NotFoundError
from feedbackflow.governance.erasure_certificate import erased_by
from feedbackflow.storage.dvc import Dvc


class ErasedVersionError(NotFoundError):
    """The version asked for held an erased subject's rows; its objects were deleted by an erasure request."""


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)


def resolve(root: Path, revision: str) -> str:
    """A commit for ``revision``: a Git revision, or the name of a DVC experiment (``run-...``).

    Raises:
        NotFoundError: neither resolves.
    """
    found = _git(root, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    if found.returncode == 0:
        return found.stdout.strip()
    refs = _git(root, "for-each-ref", "--format=%(refname) %(objectname)", "refs/exps").stdout.splitlines()
    for line in refs:
        name, _, commit = line.partition(" ")
        if name.rsplit("/", 1)[-1] == revision:
            return commit
    raise NotFoundError(f"{revision!r} is neither a Git revision nor a DVC experiment of this project")


def lock_outputs(lock: dict[str, Any]) -> dict[str, str]:
    """Output path -> DVC hash of every stage in a ``dvc.lock``."""
    return {
        str(out["path"]): str(out["md5"])
        for stage in (lock.get("stages") or {}).values()
        for out in stage.get("outs", [])
        if out.get("md5")
    }


def check_restorable(records: Path, outputs: dict[str, str], revision: str) -> None:
    """Raise :class:`ErasedVersionError` when an erasure deleted any of ``outputs`` (path -> hash)."""
    requests = erased_by(records, set(outputs.values()))
    if not requests:
        return
    deleted = set().union(*(set(request["objects"]) for request in requests))
    paths = sorted(path for path, md5 in outputs.items() if md5 in deleted)
    named = "; ".join(f"request {request['request_id']} of {request['at']}" for request in requests)
    raise ErasedVersionError(
        f"{revision} cannot be restored: its {', '.join(paths)} held rows erased by {named} "
        f"(the certificate is in {records}). Those data versions no longer exist anywhere by design; restore a "
        "later version or use the newest data, which keeps every other row"
    )


def restore(paths: ProjectPaths, records: Path, revision: str) -> dict[str, str]:
    """Check out the data of ``revision`` (its ``dvc.lock``, then ``dvc checkout``/``pull``).

    Raises:
        NotFoundError: the revision is unknown or has no ``dvc.lock``.
        ErasedVersionError: an erasure deleted some of its data.
    """
    commit = resolve(paths.root, revision)
    shown = _git(paths.root, "show", f"{commit}:dvc.lock")
    if shown.returncode != 0:
        raise NotFoundError(f"{revision} has no dvc.lock: nothing to restore")
    outputs = lock_outputs(yaml.safe_load(shown.stdout) or {})
    check_restorable(records, outputs, revision)
    (paths.root / "dvc.lock").write_text(shown.stdout, encoding="utf-8")
    Dvc(paths.root)("pull", "--force")
    return outputs
