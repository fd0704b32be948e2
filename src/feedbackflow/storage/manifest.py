"""The raw store's manifest: ``data/raw/_manifest.jsonl``, one JSON line per ingested batch.

Every batch has its content hash, size, source key and provenance (``source``, ``key``, ``ingested_at``,
``run_id``), plus the S3 ETag or the PostgreSQL watermark range. The ingest stage appends to it through
:class:`RawBatches`; validate reads it with :func:`read_manifest`.

Each batch is written aside, renamed into place and only then recorded (the manifest itself is replaced atomically),
so a crash never leaves a partial batch visible; a file left in ``data/raw`` by a crash between the rename and the
manifest write is not part of any batch and is removed by the next run.

A manifest that cannot be parsed is never repaired or guessed at: :func:`read_manifest` raises
:class:`~feedbackflow.errors.StateCorruptError` naming the file, the line and how to restore it from the DVC remote.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from feedbackflow.errors import StateCorruptError
from feedbackflow.io import atomic_path, file_digest, run_id

logger = logging.getLogger(__name__)

#: Provenance columns written into every PostgreSQL batch; validate knows them and never reports them as unknown.
PROVENANCE_COLUMNS = ("_ingest_source", "_ingest_key", "_ingest_at", "_ingest_run_id")
#: Keys every manifest entry has; a line without them is corrupt.
REQUIRED_KEYS = ("batch_id", "sequence", "source", "key", "size", "sha256", "raw_file")


def _corrupt(manifest: Path, problem: str) -> StateCorruptError:
    return StateCorruptError(
        f"{manifest}: {problem}. The manifest records every raw batch and is never repaired by guessing: restore "
        "the version dvc.lock records from the DVC remote with `dvc pull --force data/raw` (or from the local "
        "cache with `dvc checkout --force data/raw`), then rerun. Retrying without restoring it fails the same way"
    )


def read_manifest(manifest: Path) -> list[dict]:
    """Return the manifest entries, oldest first (empty when nothing was ingested yet).

    Raises:
        StateCorruptError: a line is not a JSON object with the keys of a batch entry.
    """
    if not manifest.exists():
        return []
    try:
        text = manifest.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _corrupt(manifest, "not UTF-8 text") from None
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            raise _corrupt(manifest, f"line {number} is not valid JSON ({error.msg})") from None
        if not isinstance(entry, dict) or not all(key in entry for key in REQUIRED_KEYS):
            raise _corrupt(manifest, f"line {number} is not a batch entry (needs {', '.join(REQUIRED_KEYS)})")
        entries.append(entry)
    return entries


def write_manifest(manifest: Path, entries: list[dict]) -> None:
    """Replace the manifest with ``entries``, atomically."""
    with atomic_path(manifest) as partial:
        partial.write_text("".join(json.dumps(entry, sort_keys=True) + "\n" for entry in entries), encoding="utf-8")


@dataclass
class RawBatches:
    """Admits new raw batches of one ingest run: hash check, write aside, rename, record."""

    raw_dir: Path
    manifest: Path
    source: str
    entries: list[dict] = field(init=False)
    sequence: int = field(init=False)
    now: datetime = field(init=False)
    new: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    _by_hash: dict[str, dict] = field(init=False)

    def __post_init__(self) -> None:
        self.entries = read_manifest(self.manifest)
        self._by_hash = {}
        for entry in self.entries:
            self._by_hash.setdefault(entry["sha256"], entry)
        self.sequence = max((entry["sequence"] for entry in self.entries), default=0) + 1
        self.now = datetime.now(UTC)
        self.raw_dir.mkdir(parents=True, exist_ok=True)
        self._remove_orphans()

    def _remove_orphans(self) -> None:
        """Drop raw files no manifest entry names: left by a crash after the rename, never part of a batch."""
        listed = {entry["raw_file"] for entry in self.entries} | {self.manifest.name}
        for path in self.raw_dir.iterdir():
            if path.is_file() and path.name not in listed:
                logger.warning("ingest: removing %s, left by an interrupted run (not in the manifest)", path.name)
                path.chmod(0o644)
                path.unlink()

    def known_hash(self, digest: str) -> dict | None:
        """The first manifest entry with this content hash, if any."""
        return self._by_hash.get(digest)

    def skip_if_known(self, digest: str, key: str) -> bool:
        """Record ``key`` as a duplicate and return True when its content was ingested before."""
        duplicate = self.known_hash(digest)
        if duplicate is not None:
            self.skipped.append({"key": key, "duplicate_of": duplicate["batch_id"]})
        return duplicate is not None

    def record_alias(self, digest: str, **alias: Any) -> None:
        """Note on the batch with this content that it was also delivered as ``alias`` (e.g. another S3 key).

        The S3 source lists the aliases with the batches' own keys, so a skipped duplicate is not downloaded again.
        """
        entry = self._by_hash[digest]
        aliases = entry.setdefault("aliases", [])
        if alias not in aliases:
            aliases.append(alias)
            write_manifest(self.manifest, self.entries)

    @contextmanager
    def partial(self) -> Iterator[Path]:
        """A temporary file in the raw folder (same file system, so the rename is atomic); removed unless admitted."""
        fd, name = tempfile.mkstemp(prefix=".ingest.", suffix=".partial", dir=self.raw_dir)
        os.close(fd)
        path = Path(name)
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    def admit(self, partial: Path, key: str, suffix: str, alias: dict | None = None, **extra: Any) -> dict | None:
        """Rename ``partial`` into place as a new batch and record it, unless its content was ingested before.

        Args:
            partial: The batch, written aside (from :meth:`partial`).
            key: The source key (file name, S3 key, table).
            suffix: The raw file's suffix (``.csv``).
            alias: Recorded on the earlier batch when the content is a duplicate (see :meth:`record_alias`).
            extra: More fields of the manifest entry (ETag, watermark range, ...).

        Returns:
            The new manifest entry, or None when the content is a duplicate (recorded in ``skipped``).
        """
        digest = file_digest(partial)
        if self.skip_if_known(digest, key):
            if alias is not None:
                self.record_alias(digest, **alias)
            return None
        batch_id = f"{self.now:%Y%m%dT%H%M%S}-{digest[:12]}"
        raw_file = self.raw_dir / f"{batch_id}{suffix}"
        size = partial.stat().st_size
        partial.chmod(0o444)
        partial.replace(raw_file)
        entry = {
            "batch_id": batch_id,
            "sequence": self.sequence,
            "source": self.source,
            "key": key,
            "size": size,
            "sha256": digest,
            "raw_file": raw_file.name,
            "ingested_at": self.now.isoformat(),
            "run_id": run_id(),
            **extra,
        }
        self.entries.append(entry)
        self._by_hash[digest] = entry
        write_manifest(self.manifest, self.entries)
        self.new.append(entry)
        return entry

    def summary(self) -> dict:
        """What this run admitted and skipped (the body of ``reports/ingest/ingest.json``)."""
        summary: dict[str, Any] = {
            "source": self.source,
            "new_batches": [entry["batch_id"] for entry in self.new],
            "new_files": [entry["key"] for entry in self.new],
            "skipped": self.skipped,
        }
        if self.source == "postgres":
            summary["rows_ingested"] = sum(entry["rows"] for entry in self.new)
        return summary
