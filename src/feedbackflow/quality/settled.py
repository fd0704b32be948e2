"""Pass 2 over a *settled* part in Arrow: a batch whose stored field rules hold tonight, read without pandas.

A part written tonight, or on an earlier night with no row dated in the future, keeps the rules of
:func:`~feedbackflow.quality.masks.field_masks` each row broke (:func:`~feedbackflow.quality.masks.pack_masks`).
What pass 2 adds is ``id_unique`` from the id claims; the rest is moving rows. Reading such a part into pandas and
writing its accepted rows back to Arrow was most of a night's second pass once every batch but one is reused, so the
accepted rows go from the part's Arrow table to the validated file as Arrow. Only the few rows that need pandas
(the quarantined ones and the rows GX re-checks) are converted. The files are the same bytes as the pandas path's
(``tests/unit/test_validate_incremental.py`` and ``tests/unit/test_validate_chunks.py`` compare them).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from feedbackflow.quality.masks import FIELD_RULES, blank_values, unpack_masks
from feedbackflow.quality.outputs import VALIDATED_SCHEMA
from feedbackflow.quality.rules import ID_NOT_EMPTY, ID_UNIQUE, ROW_RULES


def id_unique(bits: np.ndarray, repeated: np.ndarray) -> np.ndarray:
    """``id_unique`` from the claims' ``repeated`` and the stored rules: a blank id breaks ``id_not_empty`` only."""
    return repeated & ((bits >> FIELD_RULES.index(ID_NOT_EMPTY)) & 1 == 0)


def row_masks(bits: np.ndarray, unique: np.ndarray, index: pd.Index) -> dict[str, pd.Series]:
    """Every row rule's mask (in :data:`ROW_RULES` order) from the stored field rules and ``id_unique``."""
    masks = unpack_masks(bits, index)
    masks[ID_UNIQUE] = pd.Series(unique, index=index)
    return {rule: masks[rule] for rule in ROW_RULES}


def rule_counts(bits: np.ndarray, unique: np.ndarray) -> dict[str, int]:
    """Rows breaking each row rule."""
    counts = {rule: int(((bits >> bit) & 1).sum()) for bit, rule in enumerate(FIELD_RULES)}
    counts[ID_UNIQUE] = int(unique.sum())
    return {rule: counts[rule] for rule in ROW_RULES}


def accepted_rows(table: pa.Table, keep: np.ndarray, entry: dict[str, Any]) -> tuple[pa.Table, Counter[str]]:
    """The rows in ``keep`` as the validated file holds them (a blank label as null), and their label counts."""
    good = table.filter(pa.array(keep))
    label = good["label"]
    label = pc.if_else(pa.array(blank_values(label)), pa.scalar(None, label.type), label)
    rows = good.num_rows
    columns = {
        "id": good["id"],
        "text": good["text"],
        "label": label,
        "channel": good["channel"],
        "created_at": good["created_at"],
        "batch_id": pa.array([entry["batch_id"]] * rows, pa.string()),
        "sequence": pa.array(np.full(rows, entry["sequence"], dtype=np.int64)),
    }
    arrays = [pc.cast(columns[name], VALIDATED_SCHEMA.field(name).type) for name in VALIDATED_SCHEMA.names]
    labels: Counter[str] = Counter()
    for item in pc.value_counts(pc.drop_null(label)).to_pylist():
        labels[item["values"]] += item["counts"]
    return pa.Table.from_arrays(arrays, schema=VALIDATED_SCHEMA), labels
