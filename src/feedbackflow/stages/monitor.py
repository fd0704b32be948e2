"""monitor: compare the newest feedback batch with the training data and report data drift.

Reference is ``data/split/train.parquet`` (what the model learned from), sampled deterministically to at most
``monitor.max_reference_rows`` rows. Current is the newest batch in ``data/anonymised/feedback.parquet``: the rows
with the highest ingest ``sequence``. Texts are already anonymised at this point.

Writes ``reports/monitor/drift.html`` (Evidently's self-contained report), ``drift.json`` (Evidently's metric and
test results) and ``summary.json`` (the decision-relevant numbers, without any row values).
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pandas as pd

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import DataQualityError
from feedbackflow.io import atomic_path, write_json
from feedbackflow.monitoring import drift
from feedbackflow.settings import Settings


def _read(path: Path, hint: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} not found; {hint}") from None


def run(settings: Settings, paths: ProjectPaths) -> dict:
    """Build the drift report of the newest batch against the training data.

    Returns:
        ``dataset_drift``, ``drift_share``, ``drifted_columns`` and the report paths (``html``, ``json``,
        ``summary``) relative to the project root.

    Raises:
        FileNotFoundError: the split or anonymise output is missing.
        DataQualityError: the training split or the newest batch has no rows.
    """
    train_file = paths.split / "train.parquet"
    feedback_file = paths.anonymised / "feedback.parquet"
    train = _read(train_file, "run the split stage first")
    feedback = _read(feedback_file, "run the anonymise stage first")
    current = drift.latest_batch(feedback)
    if train.empty or current.empty:
        raise DataQualityError(
            f"nothing to compare: {train_file} has {len(train)} rows, the newest batch of {feedback_file} has "
            f"{len(current)}; ingest labelled feedback and rerun the pipeline"
        )
    reference = drift.sample_reference(train, settings.monitor.max_reference_rows, settings.base.seed)

    report = drift.compare(reference, current, settings.monitor.drift_share)

    out = paths.stage_reports("monitor")
    html_file, json_file, summary_file = out / "drift.html", out / "drift.json", out / "summary.json"
    with atomic_path(html_file) as partial:
        partial.write_text(report.snapshot.get_html_str(as_iframe=False), encoding="utf-8")
    with atomic_path(json_file) as partial:
        partial.write_text(report.snapshot.json(), encoding="utf-8")

    def relative(path: Path) -> str:
        return path.relative_to(paths.root).as_posix()

    labels = current["label"]
    unlabelled = int((labels.isna() | (labels.astype(str) == "")).sum())
    summary = drift.summarise(report)
    summary.update(
        {
            "current_batch": sorted(current["batch_id"].astype(str).unique().tolist()),
            "current_sequence": int(current["sequence"].max()),
            "current_unlabelled_rows": unlabelled,
            "training_rows": len(train),
            "seed": settings.base.seed,
            "evidently_version": version("evidently"),
            "html": relative(html_file),
            "json": relative(json_file),
        }
    )
    write_json(summary_file, summary)
    return {
        "dataset_drift": summary["dataset_drift"],
        "drift_share": summary["drift_share"],
        "drifted_columns": summary["drifted_columns"],
        "html": relative(html_file),
        "json": relative(json_file),
        "summary": relative(summary_file),
    }
