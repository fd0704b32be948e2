"""anonymise: replace personal data in validated feedback before anything learns from it, and prove it is gone.

Reads ``data/validated/feedback.parquet`` and writes ``data/anonymised/feedback.parquet`` with the same columns and
row order; only ``text`` changes, e.g. "My name is <PERSON>. You can reach me at <EMAIL_ADDRESS_3f9a1c0b>.". Detection
is Presidio with a spaCy model (see :mod:`feedbackflow.privacy.engine`); each entity type is replaced by a typed
placeholder or a keyed pseudonym, as ``anonymise.operators`` says (:mod:`feedbackflow.privacy.pseudonym`).

Before anything is written the leak gate (:mod:`feedbackflow.privacy.leak_gate`) checks the output for the planted
canary values and re-scans it with an independent detector. A planted value found anywhere, or second-scan findings in
more than ``anonymise.max_held_share`` of the rows, raise :class:`PrivacyLeakError` and nothing is written, so nothing
downstream can run. Rows the second scan flags within that share are held back: they are left out of the output and
kept, as validated, in ``data/held_back/held_back.parquet`` (restricted storage) with the entity types found, so a
false positive of the second opinion cannot stop every night that carries its row, and nothing is lost: rows in =
rows out + rows held back.

The rows go through in chunks of ``CHUNK_ROWS`` (read, anonymised, gated, appended to files aside), so memory is the
models plus a few chunks whatever the data's size; the files replace the outputs only once every chunk was gated.
With ``anonymise.n_process`` above 1, that many worker processes (each with its own models) anonymise and gate
chunks in parallel while this process reads and writes them in order.

The report ``reports/anonymise/anonymise.json``, the audit record ``reports/anonymise/audit.json`` and the logs hold
counts, settings, hashes and the key id only, never a detected value: they leave the restricted data area.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import DataQualityError, PrivacyLeakError
from feedbackflow.io import run_id, write_json
from feedbackflow.privacy.engine import PrivacyEngine, build_engine, pseudonym_key
from feedbackflow.privacy.leak_gate import (
    LeakReport,
    SecondOpinion,
    build_second_opinion,
    check_output,
    load_canaries,
)
from feedbackflow.privacy.pseudonym import check_key_id
from feedbackflow.privacy.replace import anonymise_texts
from feedbackflow.settings import AnonymiseSettings, Settings

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

logger = logging.getLogger(__name__)

TEXT_COLUMN = "text"
ID_COLUMN = "id"
HELD_FILE = "held_back.parquet"
#: The column of ``data/held_back/held_back.parquet`` naming what the second scan found in the row (types, no value).
HELD_COLUMN = "second_scan_found"
#: Rows read, anonymised, gated and written at a time: memory is the models plus one chunk, whatever the data's size.
CHUNK_ROWS = 20_000


def anonymise_frame(frame: pd.DataFrame, engine: PrivacyEngine) -> tuple[pd.DataFrame, dict]:
    """Return a copy of ``frame`` with personal data in ``text`` replaced, and counts of what was replaced.

    Args:
        frame: Feedback rows; needs a ``text`` column. Other columns and the row order are kept.
        engine: A loaded engine from :func:`feedbackflow.privacy.engine.build_engine`.

    Returns:
        The anonymised copy, and ``{"rows": ..., "rows_changed": ..., "entities": {type: count}}``.
    """
    texts = frame[TEXT_COLUMN].tolist()
    clean = [text if isinstance(text, str) else None for text in texts]
    anonymised, counts = anonymise_texts(clean, engine)
    out = frame.copy()
    # Non-string cells (missing text) are written back as they were; only strings can hold detected data.
    out[TEXT_COLUMN] = [new if isinstance(old, str) else old for old, new in zip(texts, anonymised, strict=True)]
    changed = sum(1 for old, new in zip(texts, anonymised, strict=True) if isinstance(old, str) and old != new)
    summary = {
        "rows": len(frame),
        "rows_changed": changed,
        "entities": {entity: counts.get(entity, 0) for entity in engine.entities},
    }
    return out, summary


def config_hash(config: AnonymiseSettings) -> str:
    """A short SHA-256 of the anonymise settings (canonical JSON): two runs with one hash were configured alike."""
    canonical = json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def audit_record(config: AnonymiseSettings, model: str, key_id: str | None, summary: dict, gate: LeakReport) -> dict:
    """The per-run audit record: counts, operators, key id, config hash, model and the leak gate's counts.

    It holds no value, no text and no row id, so it may live in the general remote next to the anonymised data.
    """
    return {
        "run_id": run_id(),
        "rows": summary["rows"],
        "rows_out": summary["rows_out"],
        "rows_held_back": summary["rows_held_back"],
        "rows_changed": summary["rows_changed"],
        "entities": summary["entities"],
        "operators": {entity: config.operator_for(entity) for entity in config.entities},
        "key_id": key_id,
        "config_hash": config_hash(config),
        "spacy_model": config.spacy_model,
        "spacy_pipeline": model,
        "score_threshold": config.score_threshold,
        "leak_gate": gate.summary(),
    }


def _row_ids(frame: pd.DataFrame, first_row: int = 0) -> list[str]:
    if ID_COLUMN in frame.columns:
        return [str(value) for value in frame[ID_COLUMN].tolist()]
    return [f"row {first_row + n}" for n in range(len(frame))]


@dataclass
class ChunkResult:
    """One chunk anonymised and gated: the rows to publish, the rows held back, counts, the gate's report, timing."""

    out: pd.DataFrame
    held: pd.DataFrame
    counts: dict
    gate: LeakReport
    seconds: dict[str, float]
    model: str


@dataclass
class ChunkAnonymiser:
    """Anonymise and gate chunks of rows with one set of models (the stage's own process, or one worker process)."""

    engine: PrivacyEngine
    canaries: dict[str, list[str]]
    second: SecondOpinion | None
    load_seconds: float = 0.0  # model loading, reported with the first chunk only

    def __call__(self, frame: pd.DataFrame, first_row: int) -> ChunkResult:
        import numpy as np

        begun, begun_cpu = time.perf_counter(), time.process_time()
        out, counts = anonymise_frame(frame, self.engine)
        analysed, analysed_cpu = time.perf_counter(), time.process_time()
        ids = _row_ids(out, first_row)
        gate = check_output(ids, out[TEXT_COLUMN].tolist(), self.engine, self.canaries, self.second)
        found: dict[str, list[str]] = {}
        for entity, rows in sorted(gate.rescan_hits.items()):
            for row in rows:
                found.setdefault(row, []).append(entity)
        held = np.array([row in found for row in ids], dtype=bool)
        kept_aside = frame[held].copy()
        kept_aside[HELD_COLUMN] = [", ".join(found[row]) for row in ids if row in found]
        seconds = {
            "load": self.load_seconds,
            "analyse": analysed - begun,
            "gate": time.perf_counter() - analysed,
            "analyse_cpu": analysed_cpu - begun_cpu,
            "gate_cpu": time.process_time() - analysed_cpu,
        }
        self.load_seconds = 0.0
        return ChunkResult(out[~held], kept_aside, counts, gate, seconds, self.engine.model)


def load_anonymiser(config: AnonymiseSettings, canaries: dict[str, list[str]]) -> ChunkAnonymiser:
    """Load the engine and the second opinion (``anonymise.second_opinion``) for :class:`ChunkAnonymiser`."""
    started = time.perf_counter()
    engine = build_engine(config)
    second = build_second_opinion(config) if config.second_opinion else None
    return ChunkAnonymiser(engine, canaries, second, load_seconds=time.perf_counter() - started)


def run(settings: Settings, paths: ProjectPaths, chunk_rows: int | None = None) -> dict:
    """Anonymise ``data/validated/feedback.parquet`` into ``data/anonymised/feedback.parquet`` behind the leak gate.

    The rows are read, anonymised, gated and written ``chunk_rows`` at a time (default ``CHUNK_ROWS``) into files
    aside, so memory stays at the models plus a few chunks whatever the data's size; the files replace the previous
    outputs only once every chunk was gated. Rows the second scan flags (at most ``anonymise.max_held_share`` of
    them) go to ``data/held_back/held_back.parquet`` instead of the output.

    Returns:
        ``rows`` (in), ``rows_out``, ``rows_held_back``, ``rows_changed``, replaced ``entities`` per type and the
        leak gate's counts.

    Raises:
        DataQualityError: the validated file has no ``text`` column.
        ConfigError: the spaCy model is not installed, an entity in ``anonymise.entities`` is unknown, a pseudonym
            operator is configured without a key, or the canary file is malformed.
        PrivacyLeakError: the leak gate found a planted value, or second-scan findings in more than
            ``anonymise.max_held_share`` of the rows; nothing is written to ``data/anonymised``.
    """
    import pyarrow.parquet as pq

    source = paths.validated / "feedback.parquet"
    config = settings.anonymise
    parquet = pq.ParquetFile(source)
    schema = data_schema(parquet.schema_arrow)
    if TEXT_COLUMN not in schema.names:
        raise DataQualityError(f"{source}: no '{TEXT_COLUMN}' column; re-run the validate stage")
    canary_path = paths.root / config.canary_file if config.canary_file else None
    canaries = load_canaries(canary_path)
    key = pseudonym_key(config)
    key_id = key.key_id if key is not None else None
    check_key_id(paths.root, key_id)

    started = time.perf_counter()
    summary, gate, seconds, audit = _anonymise_in_place(
        paths, (source, parquet, schema), config, canaries, key_id, chunk_rows or CHUNK_ROWS
    )
    wall = time.perf_counter() - started
    write_json(
        paths.stage_reports("anonymise") / "anonymise.json", _report(config, summary, gate, audit, seconds, wall)
    )
    logger.info(
        "anonymised %d rows (%d changed) in %.1fs: %s; leak gate passed (%d planted values checked, %d row(s) held "
        "back by the second scan)",
        summary["rows"],
        summary["rows_changed"],
        wall,
        ", ".join(f"{entity}={count}" for entity, count in summary["entities"].items()),
        gate.canaries_checked,
        summary["rows_held_back"],
    )
    return {**summary, "leak_gate": gate.summary()}


def _anonymise_in_place(
    paths: ProjectPaths,
    validated: tuple[Path, pq.ParquetFile, pa.Schema],
    config: AnonymiseSettings,
    canaries: dict[str, list[str]],
    key_id: str | None,
    chunk_rows: int,
) -> tuple[dict, LeakReport, dict[str, float], dict]:
    """Anonymise and gate every chunk into files aside, write the audit, and move the files into place if it passed.

    Returns:
        The summary, the leak gate's report, the summed timings and the audit record.

    Raises:
        PrivacyLeakError: the leak gate failed; the previous outputs are removed and nothing new is written.
    """
    source, parquet, schema = validated
    target = paths.anonymised / "feedback.parquet"
    held_target = paths.held_back / HELD_FILE
    aside = paths.anonymise_work
    building, holding = aside / f"{target.name}.partial", aside / f"{held_target.name}.partial"
    aside.mkdir(parents=True, exist_ok=True)
    try:
        summary, gate, seconds, model = _anonymise_chunks(
            parquet, schema, (building, holding), config, canaries, chunk_rows
        )
        audit = audit_record(config, model, key_id, summary, gate)
        write_json(paths.stage_reports("anonymise") / "audit.json", audit)
        if not gate.passed:
            # The output never reaches data/anonymised: DVC removed the previous one before the stage ran, and a
            # failed stage is not committed, so split and everything after it have nothing to read.
            for stale in (target, held_target):
                stale.unlink(missing_ok=True)
            raise PrivacyLeakError(
                f"leak gate: personal data survived anonymisation of {source.name} ({gate.message()}); nothing was "
                f"written to {target.parent}. Add or tune a recognizer for these entity types, then re-run"
            )
        for partial, final in ((building, target), (holding, held_target)):
            final.parent.mkdir(parents=True, exist_ok=True)
            partial.replace(final)
    finally:
        building.unlink(missing_ok=True)
        holding.unlink(missing_ok=True)
    return summary, gate, seconds, audit


def _report(
    config: AnonymiseSettings, summary: dict, gate: LeakReport, audit: dict, seconds: dict[str, float], wall: float
) -> dict:
    """``reports/anonymise/anonymise.json``: the summary, the gate's counts, the settings used and the timings."""
    return {
        **summary,
        "run_id": audit["run_id"],
        "leak_gate": gate.summary(),
        "settings": {
            "language": config.language,
            "spacy_model": config.spacy_model,
            "spacy_pipeline": audit["spacy_pipeline"],
            "entities": list(config.entities),
            "operators": audit["operators"],
            "key_id": audit["key_id"],
            "config_hash": audit["config_hash"],
            "score_threshold": config.score_threshold,
            "max_held_share": config.max_held_share,
            "batch_size": config.batch_size,
            "n_process": config.n_process,
        },
        "timing": {
            "seconds": round(wall, 3),
            # summed over the processes that did the work (with n_process > 1 they overlap in wall time)
            "load_seconds": round(seconds["load"], 3),
            "analyse_seconds": round(seconds["analyse"], 3),
            "leak_gate_seconds": round(seconds["gate"], 3),
            "analyse_cpu_seconds": round(seconds["analyse_cpu"], 3),
            "leak_gate_cpu_seconds": round(seconds["gate_cpu"], 3),
            "texts_per_second": round(summary["rows"] / wall, 1) if wall > 0 else None,
        },
    }


def data_schema(schema: pa.Schema) -> pa.Schema:
    """The data columns of a Parquet file's schema (a writer's pandas index column is not carried on)."""
    import pyarrow as pa

    return pa.schema([field for field in schema if not field.name.startswith("__index_level_")])


def held_schema(schema: pa.Schema) -> pa.Schema:
    """Columns of ``data/held_back/held_back.parquet``: the validated row's columns and the entity types found."""
    import pyarrow as pa

    return schema.append(pa.field(HELD_COLUMN, pa.string()))


# One ChunkAnonymiser per worker process, loaded by its first chunk (a load error then reaches the stage as that
# chunk's exception, not as a broken pool).
_WORKER: dict[str, object] = {}


def _start_worker(config: AnonymiseSettings, canaries: dict[str, list[str]]) -> None:
    _WORKER.update(config=config, canaries=canaries)


def _in_worker(frame: pd.DataFrame, first_row: int) -> ChunkResult:
    if "anonymiser" not in _WORKER:
        _WORKER["anonymiser"] = load_anonymiser(_WORKER["config"], _WORKER["canaries"])  # type: ignore[arg-type]
    return _WORKER["anonymiser"](frame, first_row)  # type: ignore[operator]


def _chunk_results(
    chunks: Iterator[pd.DataFrame], config: AnonymiseSettings, canaries: dict[str, list[str]]
) -> Iterator[ChunkResult]:
    """Each chunk's result, in order: in this process, or in ``config.n_process`` worker processes."""
    first_row = 0
    if config.n_process == 1:
        anonymiser = load_anonymiser(config, canaries)
        for frame in chunks:
            yield anonymiser(frame, first_row)
            first_row += len(frame)
        return
    import multiprocessing
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    # spawn: a fork of a process that already runs threads (Airflow's task runner, torch, Arrow) can deadlock
    context = multiprocessing.get_context("spawn")
    pending: deque = deque()
    with ProcessPoolExecutor(config.n_process, context, _start_worker, (config, canaries)) as pool:
        for frame in chunks:
            pending.append(pool.submit(_in_worker, frame, first_row))
            first_row += len(frame)
            if len(pending) > config.n_process:  # a bounded number of chunks in flight: memory does not grow
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _anonymise_chunks(
    parquet: pq.ParquetFile,
    schema: pa.Schema,
    partials: tuple[Path, Path],
    config: AnonymiseSettings,
    canaries: dict[str, list[str]],
    chunk_rows: int,
) -> tuple[dict, LeakReport, dict[str, float], str]:
    """Anonymise and gate ``parquet`` chunk by chunk into the two partial files (output, held back).

    Returns the summed counts, the gate's report, the seconds and the spaCy pipeline's name.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    summary: dict = {
        "rows": 0,
        "rows_out": 0,
        "rows_held_back": 0,
        "rows_changed": 0,
        "entities": dict.fromkeys(config.entities, 0),
    }
    gate = LeakReport(
        rows_scanned=0,
        canaries_checked=sum(len(values) for values in canaries.values()),
        max_held_share=config.max_held_share,
    )
    seconds = {"load": 0.0, "analyse": 0.0, "gate": 0.0, "analyse_cpu": 0.0, "gate_cpu": 0.0}
    model = ""
    building, holding = partials
    chunks = (batch.to_pandas() for batch in parquet.iter_batches(batch_size=chunk_rows, columns=schema.names))
    kept_aside = held_schema(schema)
    with pq.ParquetWriter(building, schema) as writer, pq.ParquetWriter(holding, kept_aside) as held:
        for result in _chunk_results(chunks, config, canaries):
            model = result.model
            for key, value in result.seconds.items():
                seconds[key] += value
            summary["rows"] += result.counts["rows"]
            summary["rows_changed"] += result.counts["rows_changed"]
            summary["rows_out"] += len(result.out)
            summary["rows_held_back"] += len(result.held)
            for entity, count in result.counts["entities"].items():
                summary["entities"][entity] += count
            gate.merge(result.gate)
            writer.write_table(pa.Table.from_pandas(result.out, schema=schema, preserve_index=False))
            held.write_table(pa.Table.from_pandas(result.held, schema=kept_aside, preserve_index=False))
    return summary, gate, seconds, model
