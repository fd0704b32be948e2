"""anonymise: replace personal data in validated feedback before anything learns from it, and prove it is gone.

Reads ``data/validated/feedback.parquet`` and writes ``data/anonymised/feedback.parquet`` with the same columns and
row order; only ``text`` changes, e.g. "My name is <PERSON>. You can reach me at <EMAIL_ADDRESS_3f9a1c0b>.". Detection
is Presidio with a spaCy model (see :mod:`feedbackflow.privacy.engine`); each entity type is replaced by a typed
placeholder or a keyed pseudonym, as ``anonymise.operators`` says (:mod:`feedbackflow.privacy.pseudonym`).

Before anything is written the leak gate (:mod:`feedbackflow.privacy.leak_gate`) checks the output for the planted
canary values and re-scans it; if anything is found the stage raises :class:`PrivacyLeakError` and writes no data, so
nothing downstream can run.

The rows go through in chunks of ``CHUNK_ROWS`` (read, anonymised, gated, appended to a file aside), so memory is
the models plus one chunk whatever the data's size; the file replaces the output only once every chunk passed.

The report ``reports/anonymise/anonymise.json``, the audit record ``reports/anonymise/audit.json`` and the logs hold
counts, settings, hashes and the key id only, never a detected value: they leave the restricted data area.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import DataQualityError, PrivacyLeakError
from feedbackflow.io import run_id, write_json
from feedbackflow.privacy.engine import PrivacyEngine, build_engine
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


def audit_record(config: AnonymiseSettings, engine: PrivacyEngine, summary: dict, gate: LeakReport) -> dict:
    """The per-run audit record: counts, operators, key id, config hash, model and the leak gate's counts.

    It holds no value, no text and no row id, so it may live in the general remote next to the anonymised data.
    """
    return {
        "run_id": run_id(),
        "rows": summary["rows"],
        "rows_changed": summary["rows_changed"],
        "entities": summary["entities"],
        "operators": {entity: engine.operator_for(entity) for entity in engine.entities},
        "key_id": engine.key_id,
        "config_hash": config_hash(config),
        "spacy_model": config.spacy_model,
        "spacy_pipeline": engine.model,
        "score_threshold": config.score_threshold,
        "leak_gate": gate.summary(),
    }


def _row_ids(frame: pd.DataFrame) -> list[str]:
    if ID_COLUMN in frame.columns:
        return [str(value) for value in frame[ID_COLUMN].tolist()]
    return [f"row {n}" for n in range(len(frame))]


def run(settings: Settings, paths: ProjectPaths, chunk_rows: int | None = None) -> dict:
    """Anonymise ``data/validated/feedback.parquet`` into ``data/anonymised/feedback.parquet`` behind the leak gate.

    The rows are read, anonymised, gated and written ``chunk_rows`` at a time (default ``CHUNK_ROWS``) into a file
    aside, so memory stays at the models plus one chunk whatever the data's size; the file replaces the previous
    output only once every chunk passed the gate.

    Returns:
        ``rows``, ``rows_changed``, replaced ``entities`` per type and the leak gate's counts.

    Raises:
        DataQualityError: the validated file has no ``text`` column.
        ConfigError: the spaCy model is not installed, an entity in ``anonymise.entities`` is unknown, a pseudonym
            operator is configured without a key, or the canary file is malformed.
        PrivacyLeakError: the leak gate found a planted value or a second-scan finding in the output; nothing is
            written to ``data/anonymised``.
    """
    import pyarrow.parquet as pq

    source = paths.validated / "feedback.parquet"
    target = paths.anonymised / "feedback.parquet"
    config = settings.anonymise
    parquet = pq.ParquetFile(source)
    schema = data_schema(parquet.schema_arrow)
    if TEXT_COLUMN not in schema.names:
        raise DataQualityError(f"{source}: no '{TEXT_COLUMN}' column; re-run the validate stage")
    canary_path = paths.root / config.canary_file if config.canary_file else None
    canaries = load_canaries(canary_path)

    started = time.perf_counter()
    engine = build_engine(config)
    check_key_id(paths.root, engine.key_id)
    second = build_second_opinion(config) if config.second_opinion else None
    loaded = time.perf_counter()
    building = paths.root / ".work" / "anonymise" / f"{target.name}.partial"
    building.parent.mkdir(parents=True, exist_ok=True)
    try:
        summary, gate, seconds = _anonymise_chunks(
            parquet, schema, building, engine, canaries, second, chunk_rows or CHUNK_ROWS
        )
        audit = audit_record(config, engine, summary, gate)
        write_json(paths.stage_reports("anonymise") / "audit.json", audit)
        if not gate.passed:
            # The output never reaches data/anonymised: DVC removed the previous one before the stage ran, and a
            # failed stage is not committed, so split and everything after it have nothing to read.
            _remove_stale(target)
            raise PrivacyLeakError(
                f"leak gate: personal data survived anonymisation of {source.name} ({gate.message()}); nothing was "
                f"written to {target.parent}. Add or tune a recognizer for these entity types, then re-run"
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        building.replace(target)
    finally:
        building.unlink(missing_ok=True)

    report = {
        **summary,
        "run_id": audit["run_id"],
        "leak_gate": gate.summary(),
        "settings": {
            "language": config.language,
            "spacy_model": config.spacy_model,
            "spacy_pipeline": engine.model,
            "entities": list(config.entities),
            "operators": audit["operators"],
            "key_id": engine.key_id,
            "config_hash": audit["config_hash"],
            "score_threshold": config.score_threshold,
            "batch_size": config.batch_size,
            "n_process": config.n_process,
        },
        "timing": {
            "load_seconds": round(loaded - started, 3),
            "analyse_seconds": round(seconds["analyse"], 3),
            "leak_gate_seconds": round(seconds["gate"], 3),
            # this process's CPU time (spaCy's worker processes, with n_process > 1, not included)
            "analyse_cpu_seconds": round(seconds["analyse_cpu"], 3),
            "leak_gate_cpu_seconds": round(seconds["gate_cpu"], 3),
            "texts_per_second": round(summary["rows"] / seconds["analyse"], 1) if seconds["analyse"] > 0 else None,
        },
    }
    write_json(paths.stage_reports("anonymise") / "anonymise.json", report)
    logger.info(
        "anonymised %d rows (%d changed) in %.1fs: %s; leak gate passed (%d planted values checked, second scan clean)",
        summary["rows"],
        summary["rows_changed"],
        seconds["analyse"],
        ", ".join(f"{entity}={count}" for entity, count in summary["entities"].items()),
        gate.canaries_checked,
    )
    return {**summary, "leak_gate": gate.summary()}


def data_schema(schema: pa.Schema) -> pa.Schema:
    """The data columns of a Parquet file's schema (a writer's pandas index column is not carried on)."""
    import pyarrow as pa

    return pa.schema([field for field in schema if not field.name.startswith("__index_level_")])


def _anonymise_chunks(
    parquet: pq.ParquetFile,
    schema: pa.Schema,
    building: Path,
    engine: PrivacyEngine,
    canaries: dict[str, list[str]],
    second: SecondOpinion | None,
    chunk_rows: int,
) -> tuple[dict, LeakReport, dict[str, float]]:
    """Anonymise and gate ``parquet`` chunk by chunk into ``building``; the summed counts, gate report and seconds."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    summary: dict = {"rows": 0, "rows_changed": 0, "entities": dict.fromkeys(engine.entities, 0)}
    gate = LeakReport(rows_scanned=0, canaries_checked=sum(len(values) for values in canaries.values()))
    seconds = {"analyse": 0.0, "gate": 0.0, "analyse_cpu": 0.0, "gate_cpu": 0.0}
    with pq.ParquetWriter(building, schema) as writer:
        for batch in parquet.iter_batches(batch_size=chunk_rows, columns=schema.names):
            begun, begun_cpu = time.perf_counter(), time.process_time()
            out, counts = anonymise_frame(batch.to_pandas(), engine)
            analysed, analysed_cpu = time.perf_counter(), time.process_time()
            found = check_output(_row_ids(out), out[TEXT_COLUMN].tolist(), engine, canaries, second)
            seconds["analyse"] += analysed - begun
            seconds["gate"] += time.perf_counter() - analysed
            seconds["analyse_cpu"] += analysed_cpu - begun_cpu
            seconds["gate_cpu"] += time.process_time() - analysed_cpu
            summary["rows"] += counts["rows"]
            summary["rows_changed"] += counts["rows_changed"]
            for entity, count in counts["entities"].items():
                summary["entities"][entity] += count
            gate.rows_scanned += found.rows_scanned
            for hits, more in ((gate.canary_hits, found.canary_hits), (gate.rescan_hits, found.rescan_hits)):
                for entity, rows in more.items():
                    hits.setdefault(entity, []).extend(rows)
            writer.write_table(pa.Table.from_pandas(out, schema=schema, preserve_index=False))
    return summary, gate, seconds


def _remove_stale(target: Path) -> None:
    target.unlink(missing_ok=True)
