"""split: assign every labelled message to train, validation or test, stably across nights.

The split of a message depends only on its id and the seed: a keyed hash of the id gives a number in [0, 1) that is
compared with the configured shares. New nights therefore never move an old message to another split, which keeps
the test set honest. Each label is split independently by the same rule, so per-label proportions match the shares
in expectation (stratified without a global shuffle that would move rows as data grows). Because a row's split
depends on nothing else, the stage streams: ``CHUNK_ROWS`` rows at a time, so its memory does not grow with the data.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
from pathlib import Path

import pandas as pd

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import DataQualityError
from feedbackflow.io import write_json
from feedbackflow.settings import Settings, SplitSettings

SPLITS = ("train", "validation", "test")
#: Rows read, assigned and written at a time: the stage's memory is one chunk, whatever the data's size.
CHUNK_ROWS = 100_000


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


def run(settings: Settings, paths: ProjectPaths, chunk_rows: int | None = None) -> dict:
    """Split ``data/anonymised/feedback.parquet`` into ``data/split/{train,validation,test}.parquet``.

    The rows are read, assigned and written ``chunk_rows`` at a time (a row's split depends on its id alone), so
    memory stays at one chunk whatever the data's size; the files are the same as from one pass over all rows.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = paths.anonymised / "feedback.parquet"
    building = paths.split.with_name(f".{paths.split.name}.partial")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    rows = dict.fromkeys(SPLITS, 0)
    labels: dict[str, set] = {name: set() for name in SPLITS}
    total = 0
    try:
        parquet = pq.ParquetFile(source)
        # the data columns only: a writer's pandas index is not carried into the splits
        schema = pa.schema([field for field in parquet.schema_arrow if not field.name.startswith("__index_level_")])
        with contextlib.ExitStack() as stack:
            writers = {
                name: stack.enter_context(pq.ParquetWriter(building / f"{name}.parquet", schema)) for name in SPLITS
            }
            for batch in parquet.iter_batches(batch_size=chunk_rows or CHUNK_ROWS, columns=schema.names):
                frame = batch.to_pandas()
                total += len(frame)
                for name, part in split_frame(frame, settings.split, settings.base.seed).items():
                    writers[name].write_table(pa.Table.from_pandas(part, schema=schema, preserve_index=False))
                    rows[name] += len(part)
                    labels[name].update(part["label"])
        _check_not_empty(rows, total, source.relative_to(paths.root), settings.split)
        paths.split.mkdir(parents=True, exist_ok=True)
        for name in SPLITS:
            (building / f"{name}.parquet").replace(paths.split / f"{name}.parquet")
    finally:
        shutil.rmtree(building, ignore_errors=True)
    summary = {
        "rows": rows,
        "labels": {name: len(found) for name, found in labels.items()},
        "unlabelled_rows": int(total - sum(rows.values())),
        "labels_missing_from_train": sorted((labels["validation"] | labels["test"]) - labels["train"]),
    }
    write_json(paths.stage_reports("split") / "split.json", summary)
    return summary


def _check_not_empty(rows: dict[str, int], total: int, source: Path, shares: SplitSettings) -> None:
    """Training needs rows in all three splits: validation scores every epoch, test gates the model."""
    empty = [name for name in SPLITS if not rows[name]]
    if empty:
        counts = ", ".join(f"{name} {rows[name]}" for name in SPLITS)
        raise DataQualityError(
            f"{source}: the {' and '.join(empty)} split(s) came out empty ({counts} of {total} rows; "
            f"split.validation_share={shares.validation_share}, split.test_share={shares.test_share}). Ingest more "
            "labelled feedback, or raise the share of the empty split in params.yaml (rows keep their split as data "
            "grows, so this resolves itself with more data)."
        )
