"""Readers of raw batches: CSV, JSON Lines and Parquet, parsed without coercing any value.

A file that cannot be parsed raises :class:`UnreadableBatchError`, whose message names positions (line, field
counts), never cell values: raw text may hold personal data.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
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
    keeps its column types. :func:`feedbackflow.quality.masks.as_text` turns them into strings later.

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
    import pyarrow.csv as pacsv

    names = _csv_header(path)
    if names is None:
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
    for number, record in _jsonl_records(path):
        records.append(record)
        line_numbers.append(number)
    # dtype=object keeps ints as ints (no float upcast when a value is missing in another row).
    frame = pd.DataFrame(records, dtype=object) if records else pd.DataFrame()
    return frame, np.asarray(line_numbers, dtype=np.int64)


#: Rows per chunk when a raw batch is read in pieces (``validate.chunk_rows`` sets the stage's).
CHUNK_ROWS = 50_000
_CSV_BLOCK_BYTES = 4 << 20  # Arrow's CSV reader parses this much text per record batch


class RestartBatchError(Exception):
    """Arrow's CSV parser gave up after some chunks were handed out: read the batch again from the start."""


class RawBatch:
    """One raw batch read chunk by chunk, as often as the caller needs (the validate stage reads it twice).

    Every chunk of a batch has the same columns, and the chunks together hold exactly the rows and values of
    :func:`read_raw_batch`; there is always at least one chunk (an empty one for an empty file). CSV (Arrow's streaming
    parser), Parquet (row groups) and JSON Lines (a first pass collects the keys, a second builds the rows) hold one
    chunk at a time; a CSV that only pandas can read (a NUL byte, a ragged row) is read whole and handed out in chunks.
    """

    def __init__(self, path: Path, chunk_rows: int = CHUNK_ROWS) -> None:
        """Remember the file and the chunk size (rows); nothing is read yet."""
        self.path = path
        self.chunk_rows = max(1, chunk_rows)
        self._arrow_csv: bool | None = None  # None until the first read decides

    def chunks(self) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
        """Yield ``(rows, 1-based row numbers)`` pieces of at most ``chunk_rows`` rows, in file order.

        Raises:
            UnreadableBatchError: the file type is unsupported or the content cannot be parsed.
            RestartBatchError: the CSV turned out to need pandas after chunks were yielded; call again.
        """
        suffix = self.path.suffix.lower()
        if suffix not in READERS:
            raise UnreadableBatchError(f"unsupported file type '{suffix}' (expected one of {', '.join(READERS)})")
        try:
            if suffix == ".csv":
                yield from self._csv()
            elif suffix == ".parquet":
                yield from self._parquet()
            else:
                yield from self._jsonl()
        except (UnreadableBatchError, RestartBatchError):
            raise
        except (ValueError, OSError, pa.ArrowException, pd.errors.ParserError, UnicodeDecodeError) as error:
            raise UnreadableBatchError(f"{type(error).__name__}: {str(error)[:200]}") from None

    def _pieces(self, frame: pd.DataFrame, row_numbers: np.ndarray) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
        if len(frame) == 0:
            yield frame, row_numbers
        for start in range(0, len(frame), self.chunk_rows):
            stop = start + self.chunk_rows
            yield frame.iloc[start:stop].reset_index(drop=True), row_numbers[start:stop]

    def _csv(self) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
        if self._arrow_csv is None:
            self._arrow_csv = not _has_nul(self.path) and _csv_header(self.path) is not None
        if self._arrow_csv:
            done = 0
            try:
                for frame in self._csv_arrow():
                    for piece, numbers in self._pieces(frame, np.arange(done + 1, done + len(frame) + 1)):
                        yield piece, numbers
                    done += len(frame)
                return
            except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, _NotArrowError):
                self._arrow_csv = False  # pandas decides, as in read_raw_batch
                if done:
                    raise RestartBatchError(str(self.path)) from None
        frame, numbers = read_raw_batch(self.path)
        yield from self._pieces(frame, numbers)

    def _csv_arrow(self) -> Iterator[pd.DataFrame]:
        import pyarrow.csv as pacsv

        names = _csv_header(self.path) or []
        reader = pacsv.open_csv(
            self.path,
            read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in names}, strings_can_be_null=False
            ),
        )
        if reader.schema.names != names:
            raise _NotArrowError
        empty = True
        for batch in reader:
            empty = False
            yield batch.to_pandas()
        if empty:
            yield reader.schema.empty_table().to_pandas()

    def _parquet(self) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
        import pyarrow.parquet as pq

        source = pq.ParquetFile(self.path)
        schema = source.schema_arrow
        # pandas reads an integer column with a null anywhere in the file as float64: so must every chunk
        integers = [field.name for field in schema if pa.types.is_integer(field.type)]
        with_nulls = {name for name in integers if pq.read_table(self.path, columns=[name]).column(name).null_count}
        done = 0
        for batch in source.iter_batches(batch_size=self.chunk_rows):
            frame = pa.Table.from_batches([batch], schema=schema).to_pandas().reset_index(drop=True)
            for name in with_nulls & set(frame.columns):
                if isinstance(frame[name].dtype, np.dtype) and frame[name].dtype.kind in "iu":
                    frame[name] = frame[name].astype("float64")  # not for pandas' own Int64: it holds nulls
            yield frame, np.arange(done + 1, done + len(frame) + 1)
            done += len(frame)
        if not done:
            yield schema.empty_table().to_pandas().reset_index(drop=True), np.zeros(0, dtype=np.int64)

    def _jsonl(self) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
        keys: dict[str, None] = {}  # the union of keys in first-appearance order, as pandas builds the columns
        for _, record in _jsonl_records(self.path):
            keys.update(dict.fromkeys(record))
        if not keys:  # no rows, or only empty objects: nothing to stream
            yield from self._pieces(*_read_jsonl(self.path))
            return
        records: list[dict] = []
        numbers: list[int] = []
        for number, record in _jsonl_records(self.path):
            records.append(record)
            numbers.append(number)
            if len(records) == self.chunk_rows:
                yield pd.DataFrame(records, dtype=object, columns=list(keys)), np.asarray(numbers, dtype=np.int64)
                records, numbers = [], []
        if records:
            yield pd.DataFrame(records, dtype=object, columns=list(keys)), np.asarray(numbers, dtype=np.int64)


class _NotArrowError(Exception):
    """Arrow's header differs from the one Python's csv module read: pandas decides."""


def _csv_header(path: Path) -> list[str] | None:
    """The CSV header as Python's csv module reads it; None when Arrow must not read the file (see below)."""
    import csv

    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            names = next(csv.reader(handle))
    except (StopIteration, UnicodeDecodeError, csv.Error):
        return None
    if not names or len(set(names)) != len(names) or any(not name for name in names):
        return None
    return names


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict]]:
    """Each non-blank line's number and object; raises :class:`UnreadableBatchError` at the first bad line."""
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
            yield number, record
