"""``push`` sends a night's review batch to reviewers, ``pull`` takes their labels back as a delivery.

``push`` scores the newest anonymised, unlabelled rows with the champion (margin after its temperature, its
``unknown`` decision), selects the batch (:mod:`.selection`), sends it to Label Studio (or writes the import JSON)
and appends it to the queue. ``pull`` reads the annotations (server export, or export files in a folder), resolves
them (:mod:`.annotations`), writes the new labels as a JSON Lines delivery that the next ingest takes with source
``review``, and appends them to the label store; disputed ids are rewritten in their own file each time.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from feedbackflow.config import ProjectPaths
from feedbackflow.io import read_json
from feedbackflow.labelling import store
from feedbackflow.labelling.annotations import delivery_rows, new_labels, resolve
from feedbackflow.labelling.selection import Budget, margins, select_batch
from feedbackflow.labelling.studio import API_KEY_ENV, Annotation, LabelStudio, import_tasks, label_config, read_exports
from feedbackflow.settings import Settings
from feedbackflow.storage import partitions
from feedbackflow.taxonomy import load_taxonomy

logger = logging.getLogger(__name__)


def anonymised_rows(paths: ProjectPaths) -> pd.DataFrame | None:
    """The published anonymised rows (``data/anonymised``, one part per batch), or None before anonymise has run."""
    if partitions.read_index(paths.anonymised) is None:
        return None
    return partitions.read_frame(paths.anonymised)


def newest_unlabelled(frame: pd.DataFrame, batches: int) -> pd.DataFrame:
    """Rows of the ``batches`` newest deliveries that carry no label."""
    if frame.empty:
        return frame
    newest = sorted(frame["sequence"].unique())[-batches:]
    rows = frame[frame["sequence"].isin(newest)]
    blank = rows["label"].isna() | (rows["label"].astype(str).str.strip() == "")
    return rows[blank].reset_index(drop=True)


def score(frame: pd.DataFrame, model_dir: Path, batch_size: int = 128) -> pd.DataFrame:
    """``frame`` with the champion's ``predicted`` decision, ``unknown`` flag and ``margin`` per row."""
    from feedbackflow.modeling.oos import UNKNOWN
    from feedbackflow.modeling.predict import load_calibration, predict_logits

    texts = frame["text"].fillna("").astype(str).tolist()
    logits, id2label = predict_logits(model_dir, texts, batch_size)
    calibration = load_calibration(model_dir)
    decided = calibration.decide(logits, id2label)
    return frame.assign(
        predicted=decided,
        unknown=[label == UNKNOWN for label in decided],
        margin=margins(logits, calibration.temperature) if len(texts) else [],
    )


def _client(settings: Settings) -> LabelStudio | None:
    url = settings.labelling.label_studio_url
    return LabelStudio(url, os.environ.get(API_KEY_ENV)) if url else None


def _choices(settings: Settings, paths: ProjectPaths) -> list[str]:
    taxonomy = load_taxonomy(paths.root / settings.validate_.taxonomy)
    return [label for label in taxonomy if label != settings.oos.label] + [settings.labelling.out_of_scope_choice]


def push(
    settings: Settings, paths: ProjectPaths, now: datetime | None = None, sync: Callable[[], None] | None = None
) -> dict[str, Any]:
    """Select tonight's review batch and send it; returns counts by reason (no text).

    The champion scores only when there is a row to send: a night with no unlabelled row of the newest deliveries
    that was not sent before (or labelled) loads no model, sends nothing and writes no import file. ``sync`` is
    called then, before the champion is read (the task takes it from the shared registry).
    """
    config = settings.labelling
    now = now or datetime.now(UTC)
    if config.budget == 0:
        return {"sent": 0, "reason": "labelling.budget is 0"}
    anonymised = anonymised_rows(paths)
    if anonymised is None:
        return {"sent": 0, "reason": f"no published {paths.anonymised.name} data yet"}
    queue, labels = store.read_lines(paths.review_queue), store.read_lines(paths.review_labels)
    known = store.known_ids(queue, labels)
    candidates = newest_unlabelled(anonymised, config.newest_batches)
    if candidates["id"].astype(str).isin(known).all():  # select_batch would pick none of them: no scoring
        reason = "every unlabelled row of the newest deliveries was sent or labelled before"
        return {"sent": 0, "candidates": len(candidates), "reason": reason if len(candidates) else "none unlabelled"}
    if sync is not None:
        sync()
    if not (paths.champion / "config.json").is_file():
        return {"sent": 0, "candidates": len(candidates), "reason": "no champion yet: nothing can pick the batch"}
    scored = score(candidates, paths.champion, settings.train.eval_batch_size)
    budget = Budget(config.budget, config.unknown_share, config.qc_share)
    batch = select_batch(scored, budget, known, settings.base.seed)
    records = _queue_records(batch, now, read_json(paths.registry / "champion.json", {}) or {})
    destination = _send(settings, paths, records, now)
    store.append_lines(paths.review_queue, records)
    counts = batch["reason"].value_counts().to_dict() if len(batch) else {}
    logger.info("labelling: sent %d rows for review (%s) to %s", len(records), counts, destination)
    return {"sent": len(records), "by_reason": counts, "candidates": len(candidates), "destination": destination}


def _queue_records(batch: pd.DataFrame, now: datetime, champion: dict[str, Any]) -> list[dict[str, Any]]:
    columns = ["id", "text", "channel", "created_at", "reason", "predicted", "margin"]
    records = batch[columns].astype({"id": str}).to_dict("records")
    for record in records:
        record.update(
            margin=round(float(record["margin"]), 6), sent_at=now.isoformat(), model_version=champion.get("version")
        )
    return records


def _send(settings: Settings, paths: ProjectPaths, records: list[dict[str, Any]], now: datetime) -> str:
    tasks = import_tasks(records)
    client = _client(settings)
    if client is not None:
        project = client.project(settings.labelling.project_title, _choices(settings, paths))
        if tasks:
            client.import_tasks(project, tasks)
        return f"{settings.labelling.label_studio_url} project {project}"
    target = paths.review_import / f"batch-{now:%Y%m%dT%H%M%S}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(tasks, indent=1, ensure_ascii=False), encoding="utf-8")
    (paths.review_import / "label_config.xml").write_text(_config(settings, paths), encoding="utf-8")
    return str(target.relative_to(paths.root))


def _config(settings: Settings, paths: ProjectPaths) -> str:
    return label_config(_choices(settings, paths))


def _annotations(settings: Settings, paths: ProjectPaths) -> list[Annotation]:
    client = _client(settings)
    if client is None:
        return read_exports(paths.review_export)
    return client.export(client.project(settings.labelling.project_title, _choices(settings, paths)))


def pull(settings: Settings, paths: ProjectPaths, now: datetime | None = None) -> dict[str, Any]:
    """Take reviewers' labels back as a delivery for the next ingest; returns counts (no text)."""
    now = now or datetime.now(UTC)
    labels, disputes = resolve(
        _annotations(settings, paths), settings.labelling.out_of_scope_choice, settings.oos.label
    )
    taken = store.read_lines(paths.review_labels)
    fresh = new_labels(labels, taken)
    rows, not_sent = delivery_rows(fresh, store.read_lines(paths.review_queue))
    delivered = {row["id"] for row in rows}
    delivery = None
    if rows:
        folder = paths.review_deliveries(settings.ingest.landing_dir)
        delivery = folder / f"review-{now:%Y%m%dT%H%M%S}.jsonl"
        store.write_lines(delivery, rows)
    store.append_lines(paths.review_labels, ({**r, "taken_at": now.isoformat()} for r in fresh if r["id"] in delivered))
    store.write_lines(paths.review_disputes, disputes)
    logger.info("labelling: %d new label(s) delivered, %d disputed id(s)", len(rows), len(disputes))
    return {
        "labelled": len(rows),
        "disputed": len(disputes),
        "not_sent_by_loop": not_sent,
        "delivery": str(delivery.relative_to(paths.root)) if delivery else None,
    }
