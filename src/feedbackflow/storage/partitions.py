"""Partitioned stage outputs: one Parquet part per input batch, listed in order by a small ``_index.json``.

A stage that works batch by batch (``anonymise``) writes ``<folder>/part-<identity>.parquet`` per batch and an index
naming the parts in input order, with each part's identity (what made it), its SHA-256 and counts. The folder is a
``persist: true`` DVC output, so unchanged parts keep their cache objects and a worker with an empty disk pulls them;
the next run reuses a part whose identity and bytes still match and redoes the rest.

Every reader goes through :func:`iter_batches` or :func:`read_frame`: the parts in index order, so the rows and their
order are what one pass over all batches would give. A folder without an index is not published (a failed run, or
the stage never ran) and reads as an error naming the folder.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from feedbackflow.io import atomic_path

if TYPE_CHECKING:
    import pyarrow as pa

INDEX = "_index.json"
#: The index format; a reader refuses a newer one rather than guessing.
FORMAT = 1


class NotPublishedError(FileNotFoundError):
    """The folder holds no published index: its stage has not run, or its last run failed."""


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def digest(payload: Any) -> str:
    """SHA-256 of ``payload`` as canonical JSON (sorted keys): the hash of an identity's components."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def tree_sha256(folder: Path) -> str:
    """SHA-256 over a source folder's files (names and bytes, in name order; Python caches left out)."""
    found = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            found.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return found.hexdigest()


def part_name(identity: str) -> str:
    """The file name of the part made under ``identity`` (a hex digest): equal identities share one file."""
    return f"part-{identity[:24]}.parquet"


def read_index(folder: Path) -> dict[str, Any] | None:
    """The folder's index, or None when it has none or it cannot be read (then nothing in it is reused)."""
    try:
        index = json.loads((folder / INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(index, dict) or index.get("format") != FORMAT or not isinstance(index.get("parts"), list):
        return None
    return index


def published_index(folder: Path) -> dict[str, Any]:
    """The folder's index; raises :class:`NotPublishedError` naming the folder when there is none."""
    index = read_index(folder)
    if index is None:
        raise NotPublishedError(
            f"{folder}: no {INDEX}; the stage that writes it has not run or its last run failed (run it first)"
        )
    return index


def intact(folder: Path, entry: dict[str, Any], file_key: str = "file", hash_key: str = "sha256") -> bool:
    """Whether the part ``entry`` names is present with the bytes its index recorded."""
    name = entry.get(file_key)
    if not name:
        return False
    path = folder / name
    return path.is_file() and file_sha256(path) == entry.get(hash_key)


def write_index(folder: Path, parts: list[dict[str, Any]], **extra: Any) -> Path:
    """Write ``folder/_index.json`` (atomically) listing ``parts`` in order, plus ``extra`` top-level keys."""
    target = folder / INDEX
    with atomic_path(target) as partial:
        payload = {"format": FORMAT, **extra, "parts": parts}
        partial.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return target


def refresh_part(path: Path) -> bool:
    """Record the new bytes of a part rewritten in place (an erasure request removed rows from it) in its folder's
    index, so the index still describes the files. The part's identity keeps its input hash: the input lost the same
    rows, so the next run redoes that part. Returns whether an index named the file."""
    index = read_index(path.parent)
    named = [entry for entry in (index or {}).get("parts", []) if entry.get("file") == path.name]
    for entry in named:
        entry["sha256"] = file_sha256(path)
    if index is not None and named:
        extra = {key: value for key, value in index.items() if key not in ("format", "parts")}
        write_index(path.parent, index["parts"], **extra)
    return bool(named)


def unpublish(folder: Path) -> None:
    """Remove the folder's index: readers then refuse it; the parts stay for the next run to check and reuse."""
    (folder / INDEX).unlink(missing_ok=True)


def publish(staged: Path, folder: Path, parts: list[dict[str, Any]], file_key: str = "file", **extra: Any) -> None:
    """Move the staged part files into ``folder``, write its index, then remove parts the index no longer names.

    Parts are written aside and renamed in (never written in place), so a DVC cache link is never modified and a
    killed run leaves either the previous index or the new one, each naming files that exist.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted(staged.glob("part-*.parquet")) if staged.is_dir() else []:
        os.replace(path, folder / path.name)
    write_index(folder, parts, **extra)
    named = {entry[file_key] for entry in parts if entry.get(file_key)} | {INDEX}
    for stale in folder.iterdir():
        if stale.is_file() and stale.name not in named:  # parts no batch needs now, a single-file output before parts
            stale.unlink()


def part_files(folder: Path, file_key: str = "file") -> list[Path]:
    """The published parts' paths, in index order (parts without a file left out)."""
    index = published_index(folder)
    return [folder / entry[file_key] for entry in index["parts"] if entry.get(file_key)]


def schema(folder: Path) -> pa.Schema:
    """The data columns of the published parts (all parts' schemas unified, or the index for an empty output).

    A column that is empty in one batch (no row labelled yet: a night of unlabelled feedback) is stored as Arrow's
    null type in that part; unifying takes the type the other parts give it, so a later labelled batch still fits.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = part_files(folder)
    if files:
        found = pa.unify_schemas([pq.read_schema(path) for path in files], promote_options="default")
        return pa.schema([field for field in found if not field.name.startswith("__index_level_")])
    columns = published_index(folder).get("columns") or []
    return pa.schema([(name, pa.string()) for name in columns])


def iter_batches(folder: Path, columns: list[str] | None = None, batch_size: int = 65_536) -> Iterator[pa.RecordBatch]:
    """The published rows as Arrow record batches, part after part in index order."""
    import pyarrow.parquet as pq

    for path in part_files(folder):
        yield from pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=columns)


def read_frame(folder: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """All published rows as one frame, in index order (the order one pass over every batch gives)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = part_files(folder)
    if not files:
        return pd.DataFrame(columns=columns or schema(folder).names)
    tables = [pq.read_table(path, columns=columns) for path in files]
    return pa.concat_tables(tables, promote_options="default").to_pandas().reset_index(drop=True)


def write_frame(folder: Path, frame: pd.DataFrame, batch_column: str = "batch_id") -> list[Path]:
    """Publish ``frame`` as parts, one per run of equal ``batch_column`` values (one part without that column).

    For fixtures and benchmarks that need an output in this layout without running the stage that makes it.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    frame = frame.reset_index(drop=True)
    keys = frame[batch_column].astype(str) if batch_column in frame else pd.Series([""] * len(frame))
    starts = [0, *[i for i in range(1, len(frame)) if keys.iat[i] != keys.iat[i - 1]], len(frame)]
    parts, written = [], []
    for begin, end in itertools.pairwise(starts):
        piece = frame.iloc[begin:end]
        identity = hashlib.sha256(pd.util.hash_pandas_object(piece, index=False).to_numpy().tobytes()).hexdigest()
        target = folder / part_name(identity)
        pq.write_table(pa.Table.from_pandas(piece, preserve_index=False), target)
        written.append(target)
        parts.append({"file": target.name, "sha256": file_sha256(target), "rows_out": len(piece)})
    write_index(folder, parts, columns=list(frame.columns))
    return written
