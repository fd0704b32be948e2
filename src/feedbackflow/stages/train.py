"""train: fine-tune the base model on the train split; the challenger lands in ``models/challenger``."""

from __future__ import annotations

import csv
import shutil

import pandas as pd

from feedbackflow.config import ProjectPaths
from feedbackflow.io import write_json
from feedbackflow.modeling.model import resolve_base_model
from feedbackflow.modeling.training import fine_tune
from feedbackflow.settings import Settings
from feedbackflow.taxonomy import load_taxonomy


def run(settings: Settings, paths: ProjectPaths) -> dict:
    """Train on ``data/split/train.parquet``, score each epoch on the validation split, save the challenger."""
    labels = load_taxonomy(paths.root / settings.validate_.taxonomy)
    train = pd.read_parquet(paths.split / "train.parquet")
    validation = pd.read_parquet(paths.split / "validation.parquet")
    work_dir = paths.root / ".work" / "train"
    shutil.rmtree(paths.challenger, ignore_errors=True)
    result = fine_tune(
        base_model=resolve_base_model(settings.train.base_model, paths.root),
        labels=labels,
        train=(train["text"].tolist(), train["label"].tolist()),
        validation=(validation["text"].tolist(), validation["label"].tolist()),
        settings=settings.train,
        seed=settings.base.seed,
        output_dir=paths.challenger,
        work_dir=work_dir,
    )
    reports = paths.stage_reports("train")
    write_json(reports / "metrics.json", result.metrics)
    reports.mkdir(parents=True, exist_ok=True)
    with (reports / "history.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=["epoch", "train_loss", "validation_accuracy", "validation_macro_f1"]
        )
        writer.writeheader()
        writer.writerows(result.history)
    return result.metrics
