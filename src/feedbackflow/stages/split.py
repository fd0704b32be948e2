"""split: assign every labelled message to train, validation or test, stably across nights.

The split of a message depends on its id and the seed: a keyed hash of the id gives a number in [0, 1) (its unit)
that is compared with the configured shares: test below ``test_share``, validation up to ``test_share +
validation_share``, train above. Each label is split by the same rule, so per-label proportions match the shares in
expectation (stratified without a global shuffle that would move rows as data grows).

A small label can still draw too few test rows for the gate to see it regress (a lost intent needs about a dozen
paired test rows to be credible, see the gate's per-group rule). ``split.min_test_rows_per_label`` tops each label's
test rows up from its *validation* rows with the smallest units, keeping at least half of the label's expected
validation rows. Train rows are never moved, so no model is ever tested on a row it was trained on. As a label grows
its extra test rows go back to validation; only while a label is too small to give the full minimum can one of its
validation rows move into test on a later night.
The stage streams in two passes of ``CHUNK_ROWS`` rows: the first finds each label's cut from the id and label
columns, the second writes the splits, so its memory does not grow with the data.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import math
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import DataQualityError
from feedbackflow.io import write_json
from feedbackflow.settings import Settings, SplitSettings
from feedbackflow.storage import partitions

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


def assign_splits(
    frame: pd.DataFrame, shares: SplitSettings, seed: int, cuts: Mapping[str, float] | None = None
) -> pd.Series:
    """Return the split name of each row of ``frame`` (needs an ``id`` column; ``label`` where ``cuts`` is given).

    ``cuts`` maps a label to the largest unit of its topped-up test rows (:func:`label_cuts`): validation rows of
    that label at or below it are test rows too.
    """
    unit = hash_unit(frame["id"], seed)
    test_edge = shares.test_share
    validation_edge = test_edge + shares.validation_share
    names = pd.Series("train", index=frame.index, dtype="object")
    names[unit < validation_edge] = "validation"
    names[unit < test_edge] = "test"
    if cuts:
        cut = frame["label"].map(cuts).astype(float).fillna(-1.0)
        names[(unit < validation_edge) & (unit <= cut)] = "test"
    return names


def label_cuts(chunks: Iterable[pd.DataFrame], shares: SplitSettings, seed: int) -> dict[str, float]:
    """Each label's test cut over ``chunks`` (``id`` and ``label`` columns), streamed: see :func:`cuts_of_units`."""
    labelled = (chunk[chunk["label"].notna() & (chunk["label"].astype(str) != "")] for chunk in chunks)
    return cuts_of_units(((part["label"].astype(str), hash_unit(part["id"], seed)) for part in labelled), shares)


def cuts_of_units(pairs: Iterable[tuple[Iterable[str], Iterable[float]]], shares: SplitSettings) -> dict[str, float]:
    """Each label's test cut: the unit of its ``min_test_rows_per_label``-th smallest non-train row.

    ``pairs`` yields (labels, units) of successive chunks; per label at most that many units are kept. A label keeps
    at least half its expected validation rows, so a small label gets fewer extra test rows; one whose plain test
    rows already reach the minimum gets no cut.
    """
    minimum = shares.min_test_rows_per_label
    if not minimum:
        return {}
    edge = shares.test_share + shares.validation_share
    smallest: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    for labels, units in pairs:
        for label, unit in zip(labels, units, strict=True):
            if unit < edge:
                counts[label] = counts.get(label, 0) + 1
                kept = smallest.setdefault(label, [])
                heapq.heappush(kept, -unit)  # a max-heap of the smallest units
                if len(kept) > minimum:
                    heapq.heappop(kept)
    cuts = {}
    for label, kept in smallest.items():
        validation = math.ceil(counts[label] * shares.validation_share / edge / 2)
        take = min(minimum, counts[label] - validation)
        if take > 0:
            cuts[label] = sorted(-unit for unit in kept)[take - 1]
    return {label: cut for label, cut in cuts.items() if cut >= shares.test_share}


def split_frame(
    frame: pd.DataFrame, shares: SplitSettings, seed: int, cuts: Mapping[str, float] | None = None
) -> dict[str, pd.DataFrame]:
    """Split the labelled rows of ``frame``; unlabelled rows (empty label) are not used for training.

    ``cuts`` defaults to the cuts of ``frame`` itself (:func:`label_cuts`); a chunked caller passes the cuts of all
    rows.
    """
    labelled = frame[frame["label"].notna() & (frame["label"].astype(str) != "")]
    if cuts is None:
        cuts = label_cuts([labelled], shares, seed)
    names = assign_splits(labelled, shares, seed, cuts)
    return {name: labelled[names == name].reset_index(drop=True) for name in SPLITS}


def run(settings: Settings, paths: ProjectPaths, chunk_rows: int | None = None) -> dict:
    """Split ``data/anonymised`` (its parts in index order) into ``data/split/{train,validation,test}.parquet``.

    The rows are read, assigned and written ``chunk_rows`` at a time (a row's split depends on its id alone), so
    memory stays at one chunk whatever the data's size; the files are the same as from one pass over all rows.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = paths.anonymised
    building = paths.split.with_name(f".{paths.split.name}.partial")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    rows = dict.fromkeys(SPLITS, 0)
    labels: dict[str, set] = {name: set() for name in SPLITS}
    total = 0
    try:
        schema = partitions.schema(source)
        with contextlib.ExitStack() as stack:
            writers = {
                name: stack.enter_context(pq.ParquetWriter(building / f"{name}.parquet", schema)) for name in SPLITS
            }
            size = chunk_rows or CHUNK_ROWS
            keys = (batch.to_pandas() for batch in partitions.iter_batches(source, ["id", "label"], size))
            cuts = label_cuts(keys, settings.split, settings.base.seed)
            for batch in partitions.iter_batches(source, schema.names, size):
                frame = batch.to_pandas()
                total += len(frame)
                for name, part in split_frame(frame, settings.split, settings.base.seed, cuts).items():
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
        "labels_topped_up": len(cuts),
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
