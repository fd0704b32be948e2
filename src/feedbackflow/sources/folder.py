"""The landing-folder source: files dropped into ``ingest.landing_dir`` (CSV, JSON Lines, Parquet), copied as they are.

A file is taken only once it is complete (``ingest.complete_when``):

* ``stable``: its size and modification time stay the same for ``ingest.settle_seconds`` (a file last changed
  longer ago than that passes the two looks at once; a fresh one is looked at again after the wait);
* ``marker``: a ``<name>.done`` file sits beside it (the sender writes it after the file).

A file that is not complete yet waits for the next run (listed under ``waiting`` in the report). Symbolic links and
special files (FIFOs, sockets, devices, directories matching a pattern) are refused with the reason (``refused``):
the raw store takes only regular files the landing folder itself holds. Files are opened without following links,
and a file that changes while it is copied is put back to wait.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from feedbackflow.storage.manifest import RawBatches

logger = logging.getLogger(__name__)

MARKER_SUFFIX = ".done"


@dataclass(frozen=True)
class Found:
    """What one look at the landing folder found."""

    candidates: list[Path]
    refused: list[dict]


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "a device or other special file"


def discover(landing_dir: Path, patterns: list[str]) -> Found:
    """List regular files matching ``patterns``, sorted by name; hidden files are skipped, links and specials refused.

    Raises:
        FileNotFoundError: the landing folder does not exist.
    """
    if not landing_dir.is_dir():
        raise FileNotFoundError(f"landing folder {landing_dir} does not exist; create it or set ingest.landing_dir")
    found = {path for pattern in patterns for path in landing_dir.glob(pattern) if not path.name.startswith(".")}
    candidates, refused = [], []
    for path in sorted(found):
        mode = path.lstat().st_mode
        if stat.S_ISREG(mode):
            candidates.append(path)
        else:
            refused.append(
                {
                    "key": path.name,
                    "reason": f"{_kind(mode)}, not a regular file: refused; put the file itself into the landing "
                    "folder (the raw store copies only regular files the folder holds)",
                }
            )
    return Found(candidates, refused)


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    return info.st_size, info.st_mtime_ns


def complete(
    candidates: list[Path],
    complete_when: str,
    settle_seconds: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[list[Path], list[dict]]:
    """Split ``candidates`` into complete files and files still being written (with the reason they wait).

    Args:
        candidates: Regular files found by :func:`discover`.
        complete_when: ``stable`` or ``marker`` (``ingest.complete_when``).
        settle_seconds: ``ingest.settle_seconds``.
        sleep: The wait between the two looks (tests pass a recorder).
    """
    if complete_when == "marker":
        ready = [path for path in candidates if path.with_name(path.name + MARKER_SUFFIX).is_file()]
        waiting = [
            {"key": path.name, "reason": f"no {path.name}{MARKER_SUFFIX} marker yet"}
            for path in candidates
            if path not in ready
        ]
        return ready, waiting
    first = {path: _signature(path) for path in candidates}
    now_ns = time.time_ns()
    settle_ns = int(settle_seconds * 1e9)
    fresh = [path for path, sig in first.items() if sig is not None and now_ns - sig[1] < settle_ns]
    if fresh:
        sleep(settle_seconds)  # some files changed less than settle_seconds ago: look at them again after it
    ready, waiting = [], []
    for path, sig in first.items():
        if sig is not None and (path not in fresh or _signature(path) == sig):
            ready.append(path)
        else:
            waiting.append(
                {"key": path.name, "reason": f"still being written (size or mtime changed within {settle_seconds} s)"}
            )
    return ready, waiting


def _open_regular(path: Path) -> tuple[int, os.stat_result]:
    """Open without following a link (a file swapped for a link after the look is refused) and without blocking."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise IsADirectoryError(f"{path.name} is no longer a regular file")
    return fd, info


def ingest_folder(
    landing_dir: Path,
    patterns: list[str],
    raw_dir: Path,
    manifest: Path,
    *,
    complete_when: str = "stable",
    settle_seconds: float = 0.0,
    sleep: Callable[[float], None] = time.sleep,
    source_name: str = "folder",
) -> dict:
    """Copy every complete, not-yet-ingested file from ``landing_dir`` into ``raw_dir`` and record it.

    The stage passes ``ingest.complete_when`` and ``ingest.settle_seconds``; the defaults here (no settling) suit
    callers that wrote the files themselves (tests, benchmarks). ``source_name`` names the batches' source in the
    manifest (``review``: reviewers' labels, which validate lets replace an earlier label of the same id).

    Returns:
        The run summary, with ``waiting`` (incomplete files) and ``refused`` (links, special files) besides the
        admitted and skipped files.
    """
    batches = RawBatches(raw_dir, manifest, source_name)
    found = discover(landing_dir, patterns)
    refused = list(found.refused)
    ready, waiting = complete(found.candidates, complete_when, settle_seconds, sleep=sleep)
    for path in ready:
        try:
            fd, before = _open_regular(path)
        except OSError as error:  # became a link (ELOOP) or a special file, or vanished, since the look
            refused.append({"key": path.name, "reason": f"changed into something else while ingesting ({error})"})
            continue
        with os.fdopen(fd, "rb") as source:
            digest = file_digest_of(source)
            if batches.skip_if_known(digest, path.name):
                continue  # hashed in place: a file ingested before is not copied again
            with batches.partial() as partial:
                source.seek(0)
                with partial.open("wb") as target:
                    shutil.copyfileobj(source, target, 1 << 20)
                if _signature(path) != (before.st_size, before.st_mtime_ns):
                    waiting.append({"key": path.name, "reason": "changed while it was copied"})
                    continue
                batches.admit(partial, path.name, "".join(path.suffixes))
    for item in refused:
        logger.warning("ingest: landing file %s refused: %s", item["key"], item["reason"])
    for item in waiting:
        logger.info("ingest: landing file %s not taken yet: %s", item["key"], item["reason"])
    return {**batches.summary(), "waiting": waiting, "refused": refused}


def file_digest_of(handle: object) -> str:
    """SHA-256 of an open binary file, read in chunks."""
    import hashlib

    return hashlib.file_digest(handle, "sha256").hexdigest()  # type: ignore[arg-type]
