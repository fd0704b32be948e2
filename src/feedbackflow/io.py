"""Small file helpers shared by the stages: atomic writes and JSON reports."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success rename it over ``target`` in one step.

    A crash leaves no partial file under the final name.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    partial = Path(name)
    try:
        yield partial
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def write_json(path: Path, payload: Any) -> Path:
    """Write ``payload`` as indented, key-sorted JSON, atomically."""
    with atomic_path(path) as partial:
        partial.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return path


def read_json(path: Path, default: Any = None) -> Any:
    """Read a JSON file, or return ``default`` when it does not exist."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return default


def run_id() -> str:
    """The orchestrator's run id (set by the Airflow runner), or ``manual`` for a CLI run."""
    return os.environ.get("FEEDBACKFLOW_RUN_ID", "manual")


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in chunks (``md5`` is what DVC records in ``dvc.lock``).

    The digest identifies content; it protects no secret (``usedforsecurity=False`` keeps MD5 usable on FIPS hosts).
    """
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, lambda: hashlib.new(algorithm, usedforsecurity=False)).hexdigest()
