"""anonymise: replace personal data in validated feedback by typed placeholders before anything learns from it.

Reads ``data/validated/feedback.parquet`` and writes ``data/anonymised/feedback.parquet`` with the same columns and
row order; only ``text`` changes, e.g. "My name is <PERSON>. You can reach me at <EMAIL_ADDRESS>.". Detection is
Presidio with a spaCy model (see :mod:`feedbackflow.privacy.analyzer`).

The report ``reports/anonymise/anonymise.json`` and the logs hold counts and settings only, never a detected value:
they leave the restricted data area.
"""

from __future__ import annotations

import logging
import time

import pandas as pd

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import DataQualityError
from feedbackflow.io import atomic_path, run_id, write_json
from feedbackflow.privacy.analyzer import PrivacyEngine, anonymise_texts, build_engine
from feedbackflow.settings import Settings

logger = logging.getLogger(__name__)

TEXT_COLUMN = "text"


def anonymise_frame(frame: pd.DataFrame, engine: PrivacyEngine) -> tuple[pd.DataFrame, dict]:
    """Return a copy of ``frame`` with personal data in ``text`` replaced, and counts of what was replaced.

    Args:
        frame: Feedback rows; needs a ``text`` column. Other columns and the row order are kept.
        engine: A loaded engine from :func:`feedbackflow.privacy.analyzer.build_engine`.

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


def run(settings: Settings, paths: ProjectPaths) -> dict:
    """Anonymise ``data/validated/feedback.parquet`` into ``data/anonymised/feedback.parquet``.

    Returns:
        ``rows``, ``rows_changed`` and replaced ``entities`` per type (the report holds the same plus settings).

    Raises:
        DataQualityError: the validated file has no ``text`` column.
        ConfigError: the spaCy model is not installed or an entity in ``anonymise.entities`` is unknown.
    """
    source = paths.validated / "feedback.parquet"
    target = paths.anonymised / "feedback.parquet"
    config = settings.anonymise
    frame = pd.read_parquet(source)
    if TEXT_COLUMN not in frame.columns:
        raise DataQualityError(f"{source}: no '{TEXT_COLUMN}' column; re-run the validate stage")

    started = time.perf_counter()
    engine = build_engine(config)
    loaded = time.perf_counter()
    out, summary = anonymise_frame(frame, engine)
    finished = time.perf_counter()

    with atomic_path(target) as partial:
        out.to_parquet(partial, index=False)

    seconds = finished - loaded
    report = {
        **summary,
        "run_id": run_id(),
        "settings": {
            "language": config.language,
            "spacy_model": config.spacy_model,
            "spacy_pipeline": engine.model,
            "entities": list(config.entities),
            "score_threshold": config.score_threshold,
            "batch_size": config.batch_size,
            "n_process": config.n_process,
        },
        "timing": {
            "load_seconds": round(loaded - started, 3),
            "analyse_seconds": round(seconds, 3),
            "texts_per_second": round(len(frame) / seconds, 1) if seconds > 0 else None,
        },
    }
    write_json(paths.stage_reports("anonymise") / "anonymise.json", report)
    logger.info(
        "anonymised %d rows (%d changed) in %.1fs: %s",
        summary["rows"],
        summary["rows_changed"],
        seconds,
        ", ".join(f"{entity}={count}" for entity, count in summary["entities"].items()),
    )
    return summary
