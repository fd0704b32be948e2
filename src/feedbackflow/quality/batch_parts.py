"""validate's reusable work: each raw batch read, typed and normalised once, kept as a DVC-tracked part.

Reading a raw batch (CSV parsing, values as text, type errors, text normalisation) is the part of validate that looks
at one batch only and costs the most per row. :class:`BatchParts` keeps its product, the *tagged rows* of each
readable batch, as ``data/validate_parts/part-<identity>.parquet`` with an ``_index.json``
(:mod:`feedbackflow.storage.partitions`), so the next run reads a compact Parquet part instead of parsing the raw
file again, and a fresh worker pulls the same parts from the DVC remote (the folder is a ``persist: true`` output of
the validate stage, in restricted storage: the rows still hold personal data).

A part's identity is :func:`validate_identity` (the validate params less the knobs that only change speed, the
quality package's code, the GX, pandas and PyArrow versions, the taxonomy and the erased-subject list) and the
batch's manifest entry (batch id, sequence, source, file name, delivered SHA-256 and erasure events). Change any of
these and the batch is read from raw again. A part missing or with other bytes than its index records is read from
raw again with a warning, never used. Batches that broke a header rule (unreadable, a required column missing) or
hold no rows get no part: they are small, and read from raw every night.

A part also keeps, per row, whether it passed every rule but ``id_unique`` when it was written (an id candidate) and
which of those rules it broke, and its index entry the batch's counts: a reused batch then runs no row rule but
``id_unique``, unless one of its rows was dated in the future when it was written (``created_at_not_future`` is the
only rule that depends on the time): such a batch runs every rule again.

Every rule that spans batches (``id_unique``, superseded batches, the erased subjects, volume, label minimum, the
quarantine share) still runs every night over the parts, so the outputs are exactly those of reading every raw batch
again (``tests/unit/test_validate_incremental.py`` compares them).
"""

from __future__ import annotations

import logging
import shutil
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from feedbackflow.settings import ValidateSettings
from feedbackflow.storage import partitions

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)

#: Settings that change how fast validate goes or what the report shows, never how a raw batch is read.
PERFORMANCE_KNOBS = frozenset({"chunk_rows", "gx_passing_rows", "data_docs_s3"})
QUALITY = Path(__file__).resolve().parent


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def validate_identity(params: ValidateSettings, taxonomy: list[str], erased_file: Path) -> dict[str, Any]:
    """What every part depends on besides its batch: hashes and versions only, no value."""
    knobs = {key: value for key, value in params.model_dump(mode="json").items() if key not in PERFORMANCE_KNOBS}
    erased = partitions.file_sha256(erased_file) if erased_file.is_file() else None
    return {
        "params_sha256": partitions.digest(knobs),
        "quality_code_sha256": partitions.tree_sha256(QUALITY),
        "versions": {name: _version(name) for name in ("great_expectations", "pandas", "pyarrow")},
        "taxonomy_sha256": partitions.digest(taxonomy),
        "erased_subjects_sha256": erased,
    }


class BatchParts:
    """The parts of one validate run: those reused from the previous run and those written aside for this one."""

    def __init__(self, folder: Path, identity: dict[str, Any], columns: list[str]) -> None:
        """Read the previous index of ``folder``; parts of this run are staged beside it until :meth:`publish`.

        Args:
            folder: The parts folder (``data/validate_parts``).
            identity: :func:`validate_identity`.
            columns: The stored columns, in order: the carried data columns, the type-error flag, the row's number in
                the raw file and its place in the batch.
        """
        self.folder = folder
        self.identity = identity
        self.columns = columns
        self.staging = folder.with_name(f".{folder.name}.partial")
        shutil.rmtree(self.staging, ignore_errors=True)  # what a killed run left aside
        previous = partitions.read_index(folder) or {}
        self._previous = {entry["identity"]: entry for entry in previous.get("parts", []) if entry.get("identity")}
        self.entries: dict[int, dict[str, Any]] = {}  # batch position -> index entry of this run
        self.reused = self.missing = 0

    def batch_identity(self, entry: dict[str, Any]) -> str:
        """The identity of the part of the batch with manifest entry ``entry``."""
        return partitions.digest([self.identity, entry])

    def reusable(self, position: int, entry: dict[str, Any]) -> tuple[Path, dict[str, Any]] | None:
        """The intact part of this batch made under this identity, and its index entry; None to read the raw file."""
        found = self._previous.get(self.batch_identity(entry))
        if found is None:
            return None
        if not partitions.intact(self.folder, found):
            logger.warning(
                "validate: the part of batch %s is missing or corrupted (%s): read from the raw file again",
                entry["batch_id"],
                found.get("file"),
            )
            self.missing += 1
            return None
        self.entries[position] = found
        self.reused += 1
        return self.folder / found["file"], found

    def writer(self, entry: dict[str, Any]) -> PartWriter:
        """A writer for the part of a batch read from raw tonight."""
        identity = self.batch_identity(entry)
        self.staging.mkdir(parents=True, exist_ok=True)
        return PartWriter(self.staging / partitions.part_name(identity), identity, self.columns, entry["batch_id"])

    def add(self, position: int, written: dict[str, Any]) -> None:
        """Record the part a :class:`PartWriter` finished for the batch at ``position``."""
        self.entries[position] = written

    def publish(self) -> None:
        """Publish the index of this run's parts (in batch order) and drop the parts no batch needs now."""
        parts = [self.entries[position] for position in sorted(self.entries)]
        partitions.publish(self.staging, self.folder, parts, identity=self.identity)
        shutil.rmtree(self.staging, ignore_errors=True)


class PartWriter:
    """Streams one batch's tagged rows into its part, chunk by chunk."""

    def __init__(self, path: Path, identity: str, columns: list[str], batch_id: str) -> None:
        """Open nothing yet: the part is created on the first chunk."""
        self.path, self.identity, self.columns, self.batch_id = path, identity, columns, batch_id
        self._writer: Any = None
        self.rows = self.future_rows = 0

    def _schema(self, frame: pd.DataFrame) -> pa.Schema:
        """Text columns as large strings (all-null ones included), flags as booleans, row numbers as int64."""
        import pyarrow as pa

        def kind(values: pd.Series) -> pa.DataType:
            if pd.api.types.is_bool_dtype(values):
                return pa.bool_()
            return pa.int64() if pd.api.types.is_integer_dtype(values) else pa.large_string()

        return pa.schema([(name, kind(frame[name])) for name in self.columns])

    def write(self, tagged: pd.DataFrame, future_rows: int) -> None:
        """Append a tagged chunk's stored columns; ``future_rows``: its rows dated in the future tonight."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        frame = tagged[self.columns]
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, self._schema(frame))
        self._writer.write_table(pa.Table.from_pandas(frame, schema=self._writer.schema, preserve_index=False))
        self.rows += len(frame)
        self.future_rows += future_rows

    def close(self, header: dict[str, Any]) -> dict[str, Any]:
        """Finish the part; returns its index entry (``header``: what the raw file's header told)."""
        if self._writer is None:
            raise ValueError(f"{self.path.name}: no rows written")
        self._writer.close()
        return {
            "identity": self.identity,
            "batch_id": self.batch_id,
            "file": self.path.name,
            "sha256": partitions.file_sha256(self.path),
            "rows": self.rows,
            **header,
        }

    def abandon(self) -> None:
        """Drop a part half written (the batch is read again from its start)."""
        if self._writer is not None:
            self._writer.close()
        self.path.unlink(missing_ok=True)
        self._writer, self.rows, self.future_rows = None, 0, 0


def read_part(path: Path, chunk_rows: int) -> Any:
    """The part's rows, at most ``chunk_rows`` at a time, as frames (stored columns only)."""
    import pyarrow.parquet as pq

    for record in pq.ParquetFile(path).iter_batches(batch_size=max(1, chunk_rows)):
        yield record.to_pandas()
