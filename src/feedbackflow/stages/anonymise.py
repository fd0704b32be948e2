"""anonymise: replace personal data in validated feedback before anything learns from it, and prove it is gone.

Reads ``data/validated/feedback.parquet`` and writes ``data/anonymised`` as one Parquet part per input batch and an
``_index.json`` listing them in order (:mod:`feedbackflow.storage.partitions`; read them with its ``read_frame`` or
``iter_batches``): the same columns and row order as the input; only ``text`` changes, e.g. "My name is <PERSON>.
You can reach me at <EMAIL_ADDRESS_3f9a1c0b>.". Detection is Presidio with a spaCy model (see
:mod:`feedbackflow.privacy.engine`); each entity type is replaced by a typed placeholder or a keyed pseudonym, as
``anonymise.operators`` says (:mod:`feedbackflow.privacy.pseudonym`).

First each row's language is identified (:mod:`feedbackflow.privacy.language`): a row written in a language the
detectors do not read (``anonymise.languages``) never reaches them; it is held back with ``language: <code>`` as the
reason. Before anything is written the leak gate (:mod:`feedbackflow.privacy.leak_gate`) checks the output for the
planted canary values and re-scans it with an independent detector. Rows with a planted value (``planted value
missed``) or a second-scan finding are held back too, and the night goes on while they are at most
``anonymise.max_held_share`` of the rows the gate scanned; more raise :class:`PrivacyLeakError` and nothing is
published, so nothing downstream can run. Held-back rows are left out of the output and kept, as validated, in
the parts of ``data/held_back`` (restricted storage) with the entity types found and the reason, so one miss or
one false positive cannot stop every night that carries its row, and nothing is lost: rows in = rows out + rows held
back.

Only what is new is anonymised (:mod:`feedbackflow.privacy.incremental`): a batch whose part the previous run made
under the same identity (params, key id, privacy code, models, canaries: :mod:`feedbackflow.privacy.identity`, and
the batch's rows) is reused; a key rotation or a recognizer fix redoes every batch, and held-back rows are re-scanned
every night. The rest go through in chunks of ``CHUNK_ROWS`` (read, anonymised, gated, written aside), so memory is
the models plus a few chunks whatever the data's size; the parts are published only once the night's gate passed.
With ``anonymise.n_process`` above 1, that many worker processes (each with its own models) anonymise and gate
chunks in parallel while this process reads and writes them in order.

The report ``reports/anonymise/anonymise.json``, the audit record ``reports/anonymise/audit.json`` and the logs hold
counts, settings, hashes and the key id only, never a detected value: they leave the restricted data area.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import DataQualityError, PrivacyLeakError
from feedbackflow.io import run_id, write_json
from feedbackflow.modeling.card import anonymisation_summary
from feedbackflow.privacy import incremental
from feedbackflow.privacy.detector import detector_identity
from feedbackflow.privacy.engine import PrivacyEngine, build_engine, pseudonym_key
from feedbackflow.privacy.identity import anonymiser_identity
from feedbackflow.privacy.incremental import HELD_COLUMN, REASON_COLUMN, ChunkResult
from feedbackflow.privacy.language import LanguageFilter, language_model, load_language_filter
from feedbackflow.privacy.leak_gate import (
    LeakReport,
    SecondOpinion,
    build_second_opinion,
    check_output,
    load_canaries,
)
from feedbackflow.privacy.pseudonym import check_key_id
from feedbackflow.privacy.replace import anonymise_texts
from feedbackflow.progress import Progress
from feedbackflow.settings import AnonymiseSettings, Settings
from feedbackflow.storage import partitions

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

logger = logging.getLogger(__name__)

TEXT_COLUMN = "text"
ID_COLUMN = "id"
__all__ = ["HELD_COLUMN", "REASON_COLUMN", "ChunkResult", "run"]
#: The reason of a row held back because it is written in a language the detectors do not read ("language: zh").
LANGUAGE_REASON = "language"
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


def config_hash(config: AnonymiseSettings, detector: str | None = None) -> str:
    """A short SHA-256 of the anonymise settings, the language model and the learned detector's identity (canonical
    JSON): two runs with one hash were configured alike, and a new detector re-anonymises everything."""
    identity = {**config.model_dump(mode="json"), "language_model": language_model()}
    if config.detector:
        identity["detector_model"] = detector
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def audit_record(
    config: AnonymiseSettings,
    model: str,
    key_id: str | None,
    summary: dict,
    gate: LeakReport,
    detector: str | None = None,
) -> dict:
    """The per-run audit record: counts, operators, key id, config hash, models (``detector``: the learned
    detector's identity) and the leak gate's counts.

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
        "config_hash": config_hash(config, detector),
        "detector_model": detector if config.detector else None,
        "spacy_model": config.spacy_model,
        "spacy_pipeline": model,
        "score_threshold": config.score_threshold,
        "language_model": language_model(),
        "languages": list(config.languages),
        "rows_held_back_by_language": summary["rows_held_back_by_language"],
        "leak_gate": gate.summary(),
    }


def _row_ids(frame: pd.DataFrame, first_row: int = 0) -> list[str]:
    if ID_COLUMN in frame.columns:
        return [str(value) for value in frame[ID_COLUMN].tolist()]
    return [f"row {first_row + n}" for n in range(len(frame))]


@dataclass
class ChunkAnonymiser:
    """Anonymise and gate chunks of rows with one set of models (the stage's own process, or one worker process)."""

    engine: PrivacyEngine
    canaries: dict[str, list[str]]
    second: SecondOpinion | None
    languages: LanguageFilter | None = None
    load_seconds: float = 0.0  # model loading, reported with the first chunk only

    def __call__(self, frame: pd.DataFrame, first_row: int) -> ChunkResult:
        import numpy as np

        begun, begun_cpu = time.perf_counter(), time.process_time()
        ids = _row_ids(frame, first_row)
        unread = self.languages.uncovered(frame[TEXT_COLUMN].tolist()) if self.languages else [None] * len(frame)
        readable = np.array([language is None for language in unread], dtype=bool)
        out, counts = anonymise_frame(frame[readable], self.engine)
        analysed, analysed_cpu = time.perf_counter(), time.process_time()
        read_ids = [row for row, keep in zip(ids, readable, strict=True) if keep]
        gate = check_output(read_ids, out[TEXT_COLUMN].tolist(), self.engine, self.canaries, self.second)
        found = gate.held_rows()
        for row, language in zip(ids, unread, strict=True):
            if language is not None:
                found[row] = ([f"{LANGUAGE_REASON}: {language}"], [])
        held = np.array([row in found for row in ids], dtype=bool)
        kept_aside = frame[held].copy()
        kept_aside[HELD_COLUMN] = [", ".join(found[row][1]) for row in ids if row in found]
        kept_aside[REASON_COLUMN] = [", ".join(found[row][0]) for row in ids if row in found]
        seconds = {
            "load": self.load_seconds,
            "analyse": analysed - begun,
            "gate": time.perf_counter() - analysed,
            "analyse_cpu": analysed_cpu - begun_cpu,
            "gate_cpu": time.process_time() - analysed_cpu,
        }
        self.load_seconds = 0.0
        published = out[~np.array([row in found for row in read_ids], dtype=bool)]
        languages = Counter(language for language in unread if language is not None)
        return ChunkResult(
            published, kept_aside, {**counts, "rows": len(frame)}, gate, seconds, self.engine.model, dict(languages)
        )


def load_anonymiser(
    config: AnonymiseSettings, canaries: dict[str, list[str]], detector_dir: Path | None = None
) -> ChunkAnonymiser:
    """Load the engine (with the learned detector in ``detector_dir`` when ``anonymise.detector`` is on), the second
    opinion (``anonymise.second_opinion``) and the language filter."""
    started = time.perf_counter()
    engine = build_engine(config, detector_dir)
    second = build_second_opinion(config) if config.second_opinion else None
    languages = load_language_filter(config.languages, config.language_hold_below, config.language_min_letters)
    return ChunkAnonymiser(engine, canaries, second, languages, load_seconds=time.perf_counter() - started)


def run(settings: Settings, paths: ProjectPaths, chunk_rows: int | None = None) -> dict:
    """Anonymise ``data/validated/feedback.parquet`` into parts of ``data/anonymised`` behind the leak gate.

    Each input batch has one part; a part the previous run made under the same identity (params, key id, privacy
    code, models, canaries and the batch's rows) is reused, the rest are anonymised ``chunk_rows`` rows at a time
    (default ``CHUNK_ROWS``) into files aside (:mod:`feedbackflow.privacy.incremental`). The held-back rows of
    reused parts are re-scanned every night. The parts and indexes are published only once the night's gate passed:
    the outputs equal a run that anonymised every batch again.

    Returns:
        ``rows`` (in), ``rows_out``, ``rows_held_back``, ``rows_changed``, replaced ``entities`` per type, the
        leak gate's counts and what was reused (``incremental``).

    Raises:
        DataQualityError: the validated file has no ``text`` column.
        ConfigError: the spaCy model is not installed, an entity in ``anonymise.entities`` is unknown, a pseudonym
            operator is configured without a key, or the canary file is malformed.
        PrivacyLeakError: the leak gate found planted values or second-scan findings in more than
            ``anonymise.max_held_share`` of the rows; nothing is published in ``data/anonymised``.
    """
    import pyarrow.parquet as pq

    source = paths.validated / "feedback.parquet"
    config = settings.anonymise
    parquet = pq.ParquetFile(source)
    schema = data_schema(parquet.schema_arrow)
    if TEXT_COLUMN not in schema.names:
        raise DataQualityError(f"{source}: no '{TEXT_COLUMN}' column; re-run the validate stage")
    started = time.perf_counter()
    night, key_id = _night(config, paths, chunk_rows)
    summary, gate, seconds, audit = _anonymise_in_place(paths, (source, parquet, schema), night, key_id)
    wall = time.perf_counter() - started
    report = _report(config, summary, gate, audit, seconds, wall)
    write_json(paths.stage_reports("anonymise") / "anonymise.json", report)
    write_json(paths.anonymise_card, {"anonymisation": anonymisation_summary(report, audit)})
    _log_night(paths, summary, gate, wall)
    return {**summary, "leak_gate": gate.summary()}


def _log_night(paths: ProjectPaths, summary: dict, gate: LeakReport, wall: float) -> None:
    counts = gate.summary()
    reused = summary["incremental"]
    logger.info(
        "anonymised %d rows (%d changed) in %.1fs: %s; %d of %d batch(es) reused (%d rows), %d anonymised (%d rows); "
        "leak gate passed (%d planted values checked); %d row(s) held back: %d planted value missed, %d second scan, "
        "by language %s",
        summary["rows"],
        summary["rows_changed"],
        wall,
        ", ".join(f"{entity}={count}" for entity, count in summary["entities"].items()),
        reused["batches_reused"],
        reused["batches"],
        reused["rows_reused"],
        reused["batches_anonymised"],
        reused["rows_anonymised"],
        gate.canaries_checked,
        summary["rows_held_back"],
        counts["planted_value_missed"],
        counts["second_scan_rows"],
        summary["rows_held_back_by_language"] or "none",
    )
    if counts["planted_value_missed"]:
        logger.warning(
            "planted value missed in %d row(s) (%s): held back in %s; the detector has a blind spot for these types",
            counts["planted_value_missed"],
            ", ".join(counts["canary_hits"]),
            paths.held_back.relative_to(paths.root),
        )


def run_shard(settings: Settings, paths: ProjectPaths, shard: int, shards: int, chunk_rows: int | None = None) -> dict:
    """Anonymise shard ``shard`` (from 0) of ``shards`` of the night's batches to redo, for the stage to take.

    The shard plans the night as the stage will (the previous parts, the same identity), anonymises and gates its
    share (:func:`incremental.shard_positions`) into ``data/anonymise_shards/<shard+1>-of-<shards>`` (the output parts
    in ``anonymised/``, the held-back parts and the shard's index in ``restricted/``) and publishes nothing: the
    stage checks and takes the parts, re-scans held-back rows and gives the night's verdict.

    Returns:
        ``shard``, ``shards``, the ``batches`` and ``rows`` it anonymised.
    """
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(paths.validated / "feedback.parquet")
    schema = data_schema(parquet.schema_arrow)
    night, _ = _night(settings.anonymise, paths, chunk_rows)
    batches = incremental.scan_batches(parquet, schema.names, night.chunk_rows, night.config.part_rows)
    night_plan = incremental.plan(batches, night.identity, (paths.anonymised, paths.held_back))
    night_plan.redo = set(incremental.shard_positions(night_plan, shard, shards))
    folder = paths.anonymise_shard(shard, shards)
    shutil.rmtree(folder, ignore_errors=True)
    staging = (folder / incremental.SHARD_PARTS, folder / incremental.SHARD_RESTRICTED)
    for part_folder in staging:
        part_folder.mkdir(parents=True)
    sink = incremental.PartSink(batches, staging, (schema, held_schema(schema)))
    with Anonymisers(night.config, night.canaries, night.detector_dir) as anonymisers:
        label = f"anonymise shard {shard + 1} of {shards}"
        rows = _redo(label, (parquet, schema), night, night_plan, anonymisers, sink)
    incremental.write_shard_index(folder, batches, sink)
    return {"shard": shard, "shards": shards, "batches": len(night_plan.redo), "rows": rows}


def _redo(
    label: str,
    validated: tuple[pq.ParquetFile, pa.Schema],
    night: Night,
    night_plan: incremental.Plan,
    anonymisers: Anonymisers,
    sink: incremental.PartSink,
) -> int:
    """Anonymise and gate the batches ``night_plan`` redoes into ``sink``'s parts, with progress lines; the rows."""
    parquet, schema = validated
    rows = sum(night_plan.batches[position].rows for position in night_plan.redo)
    progress = Progress(logger, label, rows)
    for position, result in anonymisers.results(
        incremental.redo_chunks(parquet, schema.names, night_plan, night.chunk_rows)
    ):
        sink.add(position, result)
        progress.advance(result.counts["rows"])
    sink.close()
    return rows


def _night(config: AnonymiseSettings, paths: ProjectPaths, chunk_rows: int | None) -> tuple[Night, str | None]:
    """What this run anonymises with (the identity from params, key id, code, models and canaries), and the key id.

    Raises:
        ConfigError: a pseudonym operator without a key, a key whose id differs from the recorded one, or a malformed
            canary file.
    """
    canaries = load_canaries(paths.root / config.canary_file if config.canary_file else None)
    key = pseudonym_key(config)
    key_id = key.key_id if key is not None else None
    check_key_id(paths.root, key_id)
    detector = detector_identity(paths.detector) if config.detector else None
    identity = anonymiser_identity(config, key_id, canaries, detector)
    return Night(config, canaries, identity, chunk_rows or CHUNK_ROWS, paths.detector, detector), key_id


@dataclass
class Night:
    """What one run anonymises with: the settings, the planted values, the identity and the chunk size."""

    config: AnonymiseSettings
    canaries: dict[str, list[str]]
    identity: dict
    chunk_rows: int
    detector_dir: Path | None = None
    detector: str | None = None  # the learned detector's identity, when anonymise.detector is on


def _anonymise_in_place(
    paths: ProjectPaths, validated: tuple[Path, pq.ParquetFile, pa.Schema], night: Night, key_id: str | None
) -> tuple[dict, LeakReport, dict[str, float], dict]:
    """Plan, anonymise what is new into files aside, write the audit, and publish the parts if the gate passed.

    Returns:
        The summary, the leak gate's report, the summed timings and the audit record.

    Raises:
        PrivacyLeakError: the leak gate failed; the outputs are unpublished (their indexes removed) and nothing new
            is moved in.
    """
    source, parquet, schema = validated
    staging = (paths.anonymise_work / "anonymised", paths.anonymise_work / "held_back")
    for folder in staging:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    try:
        parts, gate, seconds, summary = _anonymise_parts(paths, (parquet, schema), night, staging)
        audit = audit_record(night.config, summary.pop("spacy_pipeline"), key_id, summary, gate, night.detector)
        write_json(paths.stage_reports("anonymise") / "audit.json", audit)
        if not gate.passed:
            # Readers (split and everything after it) find no published output; the parts stay for the retry.
            for folder in (paths.anonymised, paths.held_back):
                partitions.unpublish(folder)
            raise PrivacyLeakError(
                f"leak gate: personal data survived anonymisation of {source.name} in too many rows to hold back "
                f"({gate.message()}); nothing was written to {paths.anonymised}. The detector misses these entity "
                "types in this data: the privacy owner reads the rows named here (restricted data) before the night "
                "re-runs"
            )
        extra = {"identity": night.identity, "spacy_pipeline": audit["spacy_pipeline"], "columns": schema.names}
        partitions.publish(staging[0], paths.anonymised, [entry for entry, _ in parts], **extra)
        partitions.publish(staging[1], paths.held_back, [held for _, held in parts], identity=night.identity)
        shutil.rmtree(paths.anonymise_shards, ignore_errors=True)  # taken: the parts are published
    finally:
        for folder in staging:
            shutil.rmtree(folder, ignore_errors=True)
    return summary, gate, seconds, audit


def _anonymise_parts(
    paths: ProjectPaths, validated: tuple[pq.ParquetFile, pa.Schema], night: Night, staging: tuple[Path, Path]
) -> tuple[list[tuple[dict, dict]], LeakReport, dict[str, float], dict]:
    """Reuse what matches, re-scan held-back rows, anonymise the rest; every part's entries in input order."""
    parquet, schema = validated
    batches = incremental.scan_batches(parquet, schema.names, night.chunk_rows, night.config.part_rows)
    night_plan = incremental.plan(batches, night.identity, (paths.anonymised, paths.held_back))
    sink = incremental.PartSink(batches, staging, (schema, held_schema(schema)))
    with Anonymisers(night.config, night.canaries, night.detector_dir) as anonymisers:
        rescanned = incremental.rescan_held(night_plan, paths.held_back, anonymisers.results)
        from_shards = incremental.adopt_shards(night_plan, paths.anonymise_shards, staging, sink)
        _redo("anonymise", (parquet, schema), night, night_plan, anonymisers, sink)
    parts = [sink.entries.get(n) or night_plan.reuse[n] for n in range(len(batches))]
    for (entry, held), batch in zip(parts, batches, strict=True):
        entry.update(identity=batch.identity, batch_id=batch.batch_id, input_sha256=batch.input_sha256)
        held["identity"] = batch.identity
    gate = LeakReport(0, sum(len(v) for v in night.canaries.values()), max_held_share=night.config.max_held_share)
    summary = incremental.night_totals(list(night.config.entities), parts, gate)
    reused = [batches[n].rows for n in night_plan.reuse]
    summary["incremental"] = {
        "batches": len(batches),
        "batches_reused": len(reused),
        "batches_anonymised": len(batches) - len(reused),
        "rows_reused": sum(reused),
        "rows_anonymised": summary["rows"] - sum(reused),
        "batches_from_shards": from_shards,
        "parts_missing_or_corrupted": night_plan.missing,
        "held_rows_rescanned": rescanned,
    }
    previous = partitions.read_index(paths.anonymised) or {}
    summary["spacy_pipeline"] = sink.model or anonymisers.model or previous.get("spacy_pipeline", "")
    seconds = {"load": 0.0, "analyse": 0.0, "gate": 0.0, "analyse_cpu": 0.0, "gate_cpu": 0.0}
    for key, value in anonymisers.seconds.items():
        seconds[key] = seconds.get(key, 0.0) + value
    return parts, gate, seconds, summary


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
            "detector_model": audit["detector_model"],
            "score_threshold": config.score_threshold,
            "max_held_share": config.max_held_share,
            "languages": list(config.languages),
            "language_model": audit["language_model"],
            "language_hold_below": config.language_hold_below,
            "language_min_letters": config.language_min_letters,
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
    """Columns of the parts of ``data/held_back``: the validated row's columns, the entity types found and why."""
    import pyarrow as pa

    return schema.append(pa.field(HELD_COLUMN, pa.string())).append(pa.field(REASON_COLUMN, pa.string()))


# One ChunkAnonymiser per worker process, loaded by its first chunk (a load error then reaches the stage as that
# chunk's exception, not as a broken pool).
_WORKER: dict[str, object] = {}


def _start_worker(config: AnonymiseSettings, canaries: dict[str, list[str]], detector_dir: Path | None) -> None:
    _WORKER.update(config=config, canaries=canaries, detector_dir=detector_dir)


def _in_worker(frame: pd.DataFrame, first_row: int) -> ChunkResult:
    if "anonymiser" not in _WORKER:
        _WORKER["anonymiser"] = load_anonymiser(
            _WORKER["config"],  # type: ignore[arg-type]
            _WORKER["canaries"],  # type: ignore[arg-type]
            _WORKER["detector_dir"],  # type: ignore[arg-type]
        )
    return _WORKER["anonymiser"](frame, first_row)  # type: ignore[operator]


class Anonymisers:
    """Anonymise and gate chunks in this process or in ``config.n_process`` worker processes, loading the models
    only when the first chunk arrives: a night with nothing new loads none."""

    def __init__(
        self, config: AnonymiseSettings, canaries: dict[str, list[str]], detector_dir: Path | None = None
    ) -> None:
        """Nothing is loaded yet."""
        self.config, self.canaries, self.detector_dir = config, canaries, detector_dir
        self.model = ""
        self.seconds: dict[str, float] = {}
        self._local: ChunkAnonymiser | None = None
        self._pool: Any = None

    def __enter__(self) -> Anonymisers:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def results(self, jobs: Iterator[tuple[Any, pd.DataFrame, int]]) -> Iterator[tuple[Any, ChunkResult]]:
        """Each job's ``(tag, result)``, in order."""
        for tag, result in self._results(jobs):
            self.model = result.model or self.model
            for key, value in result.seconds.items():
                self.seconds[key] = self.seconds.get(key, 0.0) + value
            yield tag, result

    def _results(self, jobs: Iterator[tuple[Any, pd.DataFrame, int]]) -> Iterator[tuple[Any, ChunkResult]]:
        if self.config.n_process == 1:
            for tag, frame, first_row in jobs:
                if self._local is None:
                    self._local = load_anonymiser(self.config, self.canaries, self.detector_dir)
                yield tag, self._local(frame, first_row)
            return
        from collections import deque

        pending: deque = deque()
        for tag, frame, first_row in jobs:
            pending.append((tag, self._workers().submit(_in_worker, frame, first_row)))
            if len(pending) > self.config.n_process:  # a bounded number of chunks in flight: memory does not grow
                tag, future = pending.popleft()
                yield tag, future.result()
        while pending:
            tag, future = pending.popleft()
            yield tag, future.result()

    def _workers(self) -> Any:
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn: a fork of a process that already runs threads (Airflow's task runner, torch, Arrow) can deadlock
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                self.config.n_process, context, _start_worker, (self.config, self.canaries, self.detector_dir)
            )
        return self._pool
