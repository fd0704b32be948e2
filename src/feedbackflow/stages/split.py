"""split: assign every labelled message to train, validation or test, stably across nights.

The split of a message depends only on its id and the seed: a keyed hash of the id gives a number in [0, 1) that is
compared with the configured shares. New nights therefore never move an old message to another split, which keeps
the test set honest. Each label is split independently by the same rule, so per-label proportions match the shares
in expectation (stratified without a global shuffle that would move rows as data grows).
"""

from __future__ import annotations

import hashlib

import pandas as pd

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import DataQualityError
from feedbackflow.io import write_json
from feedbackflow.settings import Settings, SplitSettings

SPLITS = ("train", "validation", "test")


def hash_unit(ids: pd.Series, seed: int) -> pd.Series:
    """Map each id to a stable pseudo-random number in [0, 1) keyed by ``seed``."""
    key = str(seed).encode()

    def unit(value: str) -> float:
        digest = hashlib.blake2b(str(value).encode(), key=key, digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    return ids.map(unit)


def assign_splits(frame: pd.DataFrame, shares: SplitSettings, seed: int) -> pd.Series:
    """Return the split name of each row of ``frame`` (needs an ``id`` column)."""
    unit = hash_unit(frame["id"], seed)
    test_edge = shares.test_share
    validation_edge = test_edge + shares.validation_share
    names = pd.Series("train", index=frame.index, dtype="object")
    names[unit < validation_edge] = "validation"
    names[unit < test_edge] = "test"
    return names


def split_frame(frame: pd.DataFrame, shares: SplitSettings, seed: int) -> dict[str, pd.DataFrame]:
    """Split the labelled rows of ``frame``; unlabelled rows (empty label) are not used for training."""
    labelled = frame[frame["label"].notna() & (frame["label"].astype(str) != "")]
    names = assign_splits(labelled, shares, seed)
    return {name: labelled[names == name].reset_index(drop=True) for name in SPLITS}


def run(settings: Settings, paths: ProjectPaths) -> dict:
    """Split ``data/anonymised/feedback.parquet`` into ``data/split/{train,validation,test}.parquet``."""
    source = paths.anonymised / "feedback.parquet"
    frame = pd.read_parquet(source)
    parts = split_frame(frame, settings.split, settings.base.seed)
    empty = [name for name in SPLITS if parts[name].empty]
    if empty:
        # Training needs rows in all three: validation scores every epoch, test gates the model.
        counts = ", ".join(f"{name} {len(parts[name])}" for name in SPLITS)
        raise DataQualityError(
            f"{source.relative_to(paths.root)}: the {' and '.join(empty)} split(s) came out empty ({counts} of "
            f"{len(frame)} rows; split.validation_share={settings.split.validation_share}, "
            f"split.test_share={settings.split.test_share}). Ingest more labelled feedback, or raise the share of "
            "the empty split in params.yaml (rows keep their split as data grows, so this resolves itself with more "
            "data)."
        )
    paths.split.mkdir(parents=True, exist_ok=True)
    for name, part in parts.items():
        part.to_parquet(paths.split / f"{name}.parquet", index=False)
    train_labels = set(parts["train"]["label"])
    summary = {
        "rows": {name: len(part) for name, part in parts.items()},
        "labels": {name: int(part["label"].nunique()) for name, part in parts.items()},
        "unlabelled_rows": int(len(frame) - sum(len(part) for part in parts.values())),
        "labels_missing_from_train": sorted(
            (set(parts["validation"]["label"]) | set(parts["test"]["label"])) - train_labels
        ),
    }
    write_json(paths.stage_reports("split") / "split.json", summary)
    return summary
