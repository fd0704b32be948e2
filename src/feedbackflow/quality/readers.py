"""Readers of raw batches: CSV, JSON Lines and Parquet, parsed without coercing any value.

A file that cannot be parsed raises :class:`UnreadableBatchError`, whose message names positions (line, field
counts), never cell values: raw text may hold personal data.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

#: File types the validate stage reads, by suffix.
READERS = {".csv": "CSV", ".jsonl": "JSON Lines", ".ndjson": "JSON Lines", ".parquet": "Parquet"}


class UnreadableBatchError(ValueError):
    """A raw file could not be parsed into rows (the message holds no data values)."""


def read_raw_batch(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """Parse one raw batch without coercing any value.

    CSV is read with every column as a string (a BOM is tolerated); JSON Lines values keep their JSON types; Parquet
    keeps its column types. :func:`feedbackflow.quality.suite.as_text` turns them into strings later.

    Args:
        path: A file in ``data/raw`` (opened read-only).

    Returns:
        The rows and each row's 1-based data row number in the file (for JSON Lines: its line number).

    Raises:
        UnreadableBatchError: the file type is unsupported or the content cannot be parsed.
    """
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise UnreadableBatchError(f"unsupported file type '{suffix}' (expected one of {', '.join(READERS)})")
    try:
        if suffix == ".csv":
            # pandas' C parser cuts a field at a NUL byte; the Python engine keeps it (see text_control_chars).
            engine = "python" if _has_nul(path) else "c"
            fast = _read_csv_arrow(path) if engine == "c" else None
            if fast is not None:
                return fast, np.arange(1, len(fast) + 1)
            try:
                frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", engine=engine)
            except pd.errors.EmptyDataError:  # a zero-byte file: no header, no rows
                return pd.DataFrame(), np.zeros(0, dtype=np.int64)
            if not isinstance(frame.index, pd.RangeIndex):
                # pandas silently turns the first column into the index when every row has one field too many.
                raise UnreadableBatchError("data rows have more fields than the header")
            return frame, np.arange(1, len(frame) + 1)
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
            return frame.reset_index(drop=True), np.arange(1, len(frame) + 1)
        return _read_jsonl(path)
    except UnreadableBatchError:
        raise
    except (ValueError, OSError, pa.ArrowException, pd.errors.ParserError, UnicodeDecodeError) as error:
        # The messages of these errors name positions, not cell values; cut them short all the same.
        raise UnreadableBatchError(f"{type(error).__name__}: {str(error)[:200]}") from None


def _read_csv_arrow(path: Path) -> pd.DataFrame | None:
    """Read a well-formed CSV with Arrow's parser (several times faster than pandas'); None when pandas must decide.

    Every column is read as text and empty fields stay ``""``, as with pandas' ``dtype=str, keep_default_na=False``.
    Anything unusual (no or duplicate header names, ragged rows, invalid UTF-8, an empty file) returns None, so
    pandas reads the file and gives the established outcome (a quarantine or a ``file_readable`` message).
    """
    import csv

    import pyarrow.csv as pacsv

    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            names = next(csv.reader(handle))
    except (StopIteration, UnicodeDecodeError, csv.Error):
        return None
    if not names or len(set(names)) != len(names) or any(not name for name in names):
        return None
    try:
        table = pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in names}, strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError):
        return None
    if table.column_names != names:
        return None
    return table.to_pandas()


def _has_nul(path: Path) -> bool:
    with path.open("rb") as handle:
        return any(b"\x00" in chunk for chunk in iter(lambda: handle.read(1 << 22), b""))


def _read_jsonl(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    records, line_numbers = [], []
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise UnreadableBatchError(f"line {number} is not valid JSON ({error.msg})") from None
            if not isinstance(record, dict):
                raise UnreadableBatchError(f"line {number} is not a JSON object")
            records.append(record)
            line_numbers.append(number)
    # dtype=object keeps ints as ints (no float upcast when a value is missing in another row).
    frame = pd.DataFrame(records, dtype=object) if records else pd.DataFrame()
    return frame, np.asarray(line_numbers, dtype=np.int64)
