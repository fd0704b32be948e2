"""Which rows a night sends for review: the champion's ``unknown`` rows, then its least confident, then a QC sample.

Confidence is the margin between the two most likely intents after temperature scaling (the champion's own
temperature): a small margin means the model hesitates between two intents. Pure functions: no model, no file.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd

from feedbackflow.modeling.oos import softmax

#: Why a row was sent (the ``reason`` column of the queue).
UNKNOWN, UNCERTAIN, QC = "unknown", "uncertain", "qc"


def margins(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Top-1 minus top-2 probability of each row after temperature scaling (1.0 for a one-class model)."""
    probs = softmax(np.asarray(logits, dtype=np.float64), temperature)
    if probs.shape[1] < 2:
        return np.ones(len(probs))
    top = np.sort(probs, axis=1)[:, -2:]
    return top[:, 1] - top[:, 0]


@dataclass(frozen=True)
class Budget:
    """A night's review budget split by reason."""

    total: int
    unknown_share: float
    qc_share: float

    @property
    def qc(self) -> int:
        return round(self.total * self.qc_share)

    @property
    def unknown(self) -> int:
        return min(round(self.total * self.unknown_share), self.total - self.qc)


def select_batch(candidates: pd.DataFrame, budget: Budget, exclude: Collection[str], seed: int) -> pd.DataFrame:
    """The review batch: rows of ``candidates`` with a ``reason`` column, at most ``budget.total`` of them.

    Args:
        candidates: one row per message with ``id``, ``margin`` (see :func:`margins`) and ``unknown`` (the champion
            answers ``unknown``).
        budget: the night's budget and shares.
        exclude: ids already queued or labelled: never sent again.
        seed: seeds the QC sample.

    Returns:
        ``unknown`` rows up to their share (least margin first); then the least-margin rows of the rest (unknown
        rows over their share included) up to the budget less the QC share; then a seeded random sample of the
        remaining, confident rows, for quality control.
    """
    pool = candidates.loc[~candidates["id"].astype(str).isin(set(exclude))].drop_duplicates("id", keep="last")
    pool = pool.sort_values(["margin", "id"], kind="stable")
    unknown = pool.loc[pool["unknown"].astype(bool)].head(budget.unknown)
    rest = pool.drop(unknown.index)
    uncertain = rest.head(max(budget.total - budget.qc - len(unknown), 0))
    confident = rest.drop(uncertain.index)
    qc = confident.sample(n=min(budget.qc, len(confident)), random_state=seed) if budget.qc else confident.head(0)
    return pd.concat(
        [unknown.assign(reason=UNKNOWN), uncertain.assign(reason=UNCERTAIN), qc.assign(reason=QC)],
        ignore_index=True,
    )


def expected_load(unknown_share: float | None, rows_per_night: float) -> float | None:
    """Rows a night would route to review at the model's unknown share (the queue's inflow before the budget)."""
    return None if unknown_share is None else round(unknown_share * rows_per_night, 1)
