"""Anonymise only what is new: one output part per input batch, reused while its identity and bytes still match.

An input batch is a run of validated rows with one ``batch_id`` (validate writes them in batch order), cut every
``anonymise.part_rows`` rows when longer, so a night of one large delivery still has parts for shards. Its part's
identity is the anonymiser's identity (:mod:`feedbackflow.privacy.identity`) and the batch's content hash, so the
same rows under the same anonymiser give the same part, and anything else gives a new one. Each night:

1. :func:`scan_batches` hashes the validated file batch by batch (one streaming pass, no model needed);
2. :func:`plan` reuses each batch whose part is in the previous index, present and with its recorded bytes; a part
   missing or corrupted is redone with a warning, never read;
3. :func:`rescan_held` runs the rows a reused part held back through the anonymiser and the leak gate again: if any
   outcome differs (a recognizer fix released a row), the whole batch is redone;
4. :func:`redo_chunks` streams the rows of the batches to redo, and :class:`PartSink` writes their parts aside;
5. :func:`night_totals` adds up every part's counts and leak-gate findings in input order: the same figures, rows and
   order as anonymising every batch from scratch.

A large night can spread step 4 over workers: shard ``i`` of ``k`` (:func:`shard_positions`) anonymises its share of
the batches to redo into a folder of its own with a :data:`SHARD_INDEX`, and the stage then takes each part a shard
made under the batch's identity, intact, instead of anonymising it (:func:`adopt_shards`). A part is a function of its
identity alone, and a shard cuts its batches into the same chunks, so the outputs are those of one worker.

The anonymised index holds counts only (it leaves restricted storage with the data); the held-back index, in
restricted storage, holds the gate's row ids per entity type, so a reused part's findings count again each night.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from feedbackflow.privacy.identity import identity_hash
from feedbackflow.privacy.leak_gate import LeakReport
from feedbackflow.storage import partitions

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

logger = logging.getLogger(__name__)

BATCH_COLUMN = "batch_id"
#: The column of a held-back part naming the entity types found in the row (types, no value).
HELD_COLUMN = "second_scan_found"
#: The column of a held-back part saying why the row is held back ("planted value missed", ...).
REASON_COLUMN = "held_reason"


@dataclass
class ChunkResult:
    """One chunk anonymised and gated: the rows to publish, the rows held back, counts, the gate's report, timing."""

    out: pd.DataFrame
    held: pd.DataFrame
    counts: dict
    gate: LeakReport
    seconds: dict[str, float]
    model: str
    languages: dict[str, int] = field(default_factory=dict)  # rows held back per language the detectors cannot read


#: ``(tag, frame, first row)`` jobs in, ``(tag, result)`` out, in order (one process or a pool of them).
Runner = Callable[[Iterator[tuple[Any, pd.DataFrame, int]]], Iterator[tuple[Any, ChunkResult]]]


@dataclass
class Batch:
    """One input batch: a run of validated rows with one ``batch_id`` (or one of the ``part_rows`` cuts of a longer
    run), and what its part is made under."""

    batch_id: str
    first_row: int
    rows: int
    input_sha256: str
    identity: str = ""


def _runs(keys: list[str]) -> Iterator[tuple[int, int]]:
    begin = 0
    for row in range(1, len(keys) + 1):
        if row == len(keys) or keys[row] != keys[begin]:
            yield begin, row
            begin = row


def scan_batches(
    parquet: pq.ParquetFile, columns: list[str], chunk_rows: int, part_rows: int | None = None
) -> list[Batch]:
    """The input's batches in order, each with the SHA-256 of its rows (columns, types and values).

    With ``part_rows``, a run of one ``batch_id`` longer than that is cut into batches of ``part_rows`` rows (the last
    one shorter), counted from the run's first row: the same rows give the same cuts every night.
    """
    batches: list[Batch] = []
    digests: list[Any] = []
    seed = ",".join(f"{f.name}:{f.type}" for f in parquet.schema_arrow if f.name in columns).encode()
    row = 0
    for record in parquet.iter_batches(batch_size=chunk_rows, columns=columns):
        frame = record.to_pandas()
        keys = frame[BATCH_COLUMN].astype(str).tolist() if BATCH_COLUMN in frame else [""] * len(frame)
        for begin, end in _runs(keys):
            start = begin
            while start < end:
                last = batches[-1] if batches else None
                full = last is not None and part_rows is not None and last.rows >= part_rows
                if not (start == 0 and last is not None and last.batch_id == keys[start] and not full):
                    batches.append(Batch(keys[start], row + start, 0, ""))
                    digests.append(hashlib.sha256(seed))
                stop = end if part_rows is None else min(end, start + part_rows - batches[-1].rows)
                hashed = pd.util.hash_pandas_object(frame.iloc[start:stop], index=False).to_numpy()
                digests[-1].update(hashed.tobytes())
                batches[-1].rows += stop - start
                start = stop
        row += len(frame)
    for batch, digest in zip(batches, digests, strict=True):
        batch.input_sha256 = digest.hexdigest()
    return batches


@dataclass
class Plan:
    """Which batches reuse their part (position -> the previous index entries) and which are redone."""

    batches: list[Batch]
    reuse: dict[int, tuple[dict, dict]] = field(default_factory=dict)
    redo: set[int] = field(default_factory=set)
    missing: int = 0  # parts the index named that were missing or corrupted


def _by_identity(index: dict | None) -> dict[str, dict]:
    return {entry["identity"]: entry for entry in (index or {}).get("parts", []) if entry.get("identity")}


def plan(batches: list[Batch], night: dict, outputs: tuple[Path, Path]) -> Plan:
    """Reuse every batch whose part (and held-back part) the previous run made under the same identity, intact."""
    anonymised, held_back = outputs
    previous = _by_identity(partitions.read_index(anonymised))
    previous_held = _by_identity(partitions.read_index(held_back))
    result = Plan(batches)
    for position, batch in enumerate(batches):
        batch.identity = identity_hash(night, batch.input_sha256)
        entry, held = previous.get(batch.identity), previous_held.get(batch.identity)
        if entry is not None and held is None and not entry.get("rows_held_back"):
            held = {"file": None, "sha256": None, "canary_hits": {}, "rescan_hits": {}}  # nothing was held back
        if entry is None:
            result.redo.add(position)
        elif held is not None and _intact(anonymised, held_back, entry, held):
            result.reuse[position] = (entry, held)
        else:
            logger.warning(
                "anonymise: the part of batch %s is missing or corrupted (%s): anonymised again",
                batch.batch_id or "(no batch id)",
                entry.get("file"),
            )
            result.missing += 1
            result.redo.add(position)
    return result


def _intact(anonymised: Path, held_back: Path, entry: dict, held: dict) -> bool:
    held_ok = partitions.intact(held_back, held) if entry.get("rows_held_back") else True
    return partitions.intact(anonymised, entry) and held_ok


def _held_outcome(frame: pd.DataFrame) -> list[tuple[str, str, str]]:
    return list(zip(*(frame[c].astype(str).tolist() for c in ("id", HELD_COLUMN, REASON_COLUMN)), strict=True))


def rescan_held(night_plan: Plan, held_back: Path, run: Runner) -> int:
    """Re-scan the held-back rows of every reused part; a part whose outcome changed moves to the redo set.

    Returns:
        The number of rows re-scanned.
    """
    stored: dict[int, pd.DataFrame] = {}
    for position, (entry, held) in sorted(night_plan.reuse.items()):
        if entry.get("rows_held_back"):
            stored[position] = pd.read_parquet(held_back / held["file"])
    jobs = ((pos, frame.drop(columns=[HELD_COLUMN, REASON_COLUMN]), 0) for pos, frame in stored.items())
    for position, result in run(jobs):
        _, held = night_plan.reuse[position]
        same = _held_outcome(result.held) == _held_outcome(stored[position]) and result.out.empty
        if not (
            same and result.gate.canary_hits == held["canary_hits"] and result.gate.rescan_hits == held["rescan_hits"]
        ):
            logger.info(
                "anonymise: held-back rows of batch %s came out differently: the batch is anonymised again",
                night_plan.batches[position].batch_id or "(no batch id)",
            )
            del night_plan.reuse[position]
            night_plan.redo.add(position)
    return sum(len(frame) for frame in stored.values())


def redo_chunks(
    parquet: pq.ParquetFile, columns: list[str], night_plan: Plan, chunk_rows: int
) -> Iterator[tuple[int, pd.DataFrame, int]]:
    """``(position, rows, first row)`` of the batches to redo, at most ``chunk_rows`` rows at a time, in order."""
    ranges = sorted((night_plan.batches[p].first_row, night_plan.batches[p].rows, p) for p in night_plan.redo)
    if not ranges:
        return
    row = 0
    for record in parquet.iter_batches(batch_size=chunk_rows, columns=columns):
        end = row + record.num_rows
        frame = None
        for first, rows, position in ranges:
            begin, stop = max(first, row), min(first + rows, end)
            if begin < stop:
                frame = record.to_pandas() if frame is None else frame
                yield position, frame.iloc[begin - row : stop - row].reset_index(drop=True), begin
        row = end


class PartSink:
    """Write the redone batches' parts (output and held back) aside, one pair at a time, as their chunks arrive."""

    def __init__(self, batches: list[Batch], staging: tuple[Path, Path], schemas: tuple[pa.Schema, pa.Schema]) -> None:
        """Write the parts of ``batches`` into the two staging folders (anonymised, held back) with the two schemas."""
        self.identities = [batch.identity for batch in batches]
        self.staging, self.schemas = staging, schemas
        self.entries: dict[int, tuple[dict, dict]] = {}
        self.seconds: dict[str, float] = {}
        self.model = ""
        self._open: tuple[int, list[ChunkResult]] | None = None

    def add(self, position: int, result: ChunkResult) -> None:
        """Add one chunk's result to the part of batch ``position`` (chunks arrive in order)."""
        for key, value in result.seconds.items():
            self.seconds[key] = self.seconds.get(key, 0.0) + value
        self.model = result.model or self.model
        if self._open is not None and self._open[0] != position:
            self.close()
        if self._open is None:
            self._open = (position, [])
        self._open[1].append(result)

    def close(self) -> None:
        """Write the open part (called between batches and after the last chunk)."""
        if self._open is not None:
            self.entries[self._open[0]] = self._write(*self._open)
            self._open = None

    def _write(self, position: int, results: list[ChunkResult]) -> tuple[dict, dict]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        name = partitions.part_name(self.identities[position])
        (out_dir, held_dir), (out_schema, held_schema) = self.staging, self.schemas
        out = pd.concat([result.out for result in results], ignore_index=True)
        held = pd.concat([result.held for result in results], ignore_index=True)
        pq.write_table(pa.Table.from_pandas(out, schema=out_schema, preserve_index=False), out_dir / name)
        entry = _counts(results) | {"file": name, "sha256": partitions.file_sha256(out_dir / name)}
        gate = LeakReport(0, 0)
        for result in results:
            gate.merge(result.gate)
        held_entry: dict = {"file": None, "sha256": None}
        if len(held):
            pq.write_table(pa.Table.from_pandas(held, schema=held_schema, preserve_index=False), held_dir / name)
            held_entry = {"file": name, "sha256": partitions.file_sha256(held_dir / name)}
        held_entry |= {"canary_hits": gate.canary_hits, "rescan_hits": gate.rescan_hits}
        return entry, held_entry


def _counts(results: list[ChunkResult]) -> dict:
    entities: dict[str, int] = {}
    languages: dict[str, int] = {}
    for result in results:
        for entity, count in result.counts["entities"].items():
            entities[entity] = entities.get(entity, 0) + count
        for language, count in result.languages.items():
            languages[language] = languages.get(language, 0) + count
    return {
        "rows": sum(result.counts["rows"] for result in results),
        "rows_out": sum(len(result.out) for result in results),
        "rows_held_back": sum(len(result.held) for result in results),
        "rows_changed": sum(result.counts["rows_changed"] for result in results),
        "rows_scanned": sum(result.gate.rows_scanned for result in results),
        "entities": entities,
        "languages": languages,
    }


def night_totals(entities: list[str], parts: list[tuple[dict, dict]], gate: LeakReport) -> dict:
    """The night's summary from every part's counts, in input order; the parts' findings are merged into ``gate``."""
    summary: dict = {
        "rows": 0,
        "rows_out": 0,
        "rows_held_back": 0,
        "rows_changed": 0,
        "entities": dict.fromkeys(entities, 0),
        "rows_held_back_by_language": {},
    }
    for entry, held in parts:
        for key in ("rows", "rows_out", "rows_held_back", "rows_changed"):
            summary[key] += entry[key]
        for entity, count in entry["entities"].items():
            summary["entities"][entity] = summary["entities"].get(entity, 0) + count
        by_language = summary["rows_held_back_by_language"]
        for language, count in entry["languages"].items():
            by_language[language] = by_language.get(language, 0) + count
        found = {entity: list(rows) for entity, rows in held["canary_hits"].items()}
        again = {entity: list(rows) for entity, rows in held["rescan_hits"].items()}
        gate.merge(LeakReport(entry["rows_scanned"], 0, found, again))
    return summary


#: A shard's folder: its output parts (no personal data) and, apart, its held-back parts with its index (each part
#: it made, by identity, with its index entries and the model that made it: row ids, so restricted like the rows).
SHARD_PARTS, SHARD_RESTRICTED, SHARD_INDEX = "anonymised", "restricted", "shard.json"


def shard_positions(night_plan: Plan, shard: int, shards: int) -> list[int]:
    """The batches to redo that shard ``shard`` of ``shards`` anonymises: contiguous runs of about equal rows."""
    redo = sorted(night_plan.redo)
    total = sum(night_plan.batches[position].rows for position in redo)
    mine, done = [], 0
    for position in redo:
        if (min(done * shards // total, shards - 1) if total else 0) == shard:
            mine.append(position)
        done += night_plan.batches[position].rows
    return mine


def write_shard_index(folder: Path, batches: list[Batch], sink: PartSink) -> None:
    """Record the parts ``sink`` wrote into ``folder`` by identity (counts and row ids only, like the indexes)."""
    from feedbackflow.io import write_json

    parts = {batches[n].identity: {"entry": entry, "held": held} for n, (entry, held) in sorted(sink.entries.items())}
    write_json(folder / SHARD_RESTRICTED / SHARD_INDEX, {"model": sink.model, "parts": parts})


def adopt_shards(night_plan: Plan, shards: Path, staging: tuple[Path, Path], sink: PartSink) -> int:
    """Take the parts shards made for batches to redo (same identity, intact) into ``staging`` and ``sink``.

    Returns:
        The number of batches taken from shards (they leave the redo set).
    """
    from feedbackflow.io import read_json

    found: dict[str, tuple[Path, dict, str]] = {}
    for index in sorted(shards.glob(f"*/{SHARD_RESTRICTED}/{SHARD_INDEX}")) if shards.is_dir() else []:
        record = read_json(index, {}) or {}
        for identity, pair in (record.get("parts") or {}).items():
            found[identity] = (index.parent.parent, pair, record.get("model") or "")
    adopted = 0
    for position in sorted(night_plan.redo):
        hit = found.get(night_plan.batches[position].identity)
        if hit is None:
            continue
        folder, pair, model = hit
        entry, held = pair["entry"], pair["held"]
        if not _intact(folder / SHARD_PARTS, folder / SHARD_RESTRICTED, entry, held):
            logger.warning("anonymise: a shard's part of batch %s is corrupted: anonymised here", entry.get("file"))
            continue
        shutil.copyfile(folder / SHARD_PARTS / entry["file"], staging[0] / entry["file"])
        if held.get("file"):
            shutil.copyfile(folder / SHARD_RESTRICTED / held["file"], staging[1] / held["file"])
        sink.entries[position] = (entry, held)
        sink.model = sink.model or model
        night_plan.redo.discard(position)
        adopted += 1
    return adopted
