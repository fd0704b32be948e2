"""The training set's policy: the newest rows (a window), every label kept at a minimum, a replay sample of the rest.

A pure function of the training rows, the ``train.window`` params and the seed: the same split and params give the
same rows, whatever the day the stage runs (ages are measured from the newest row, never from the clock).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from feedbackflow.settings import TrainWindowSettings

#: rows are ordered newest first by this column, ties broken by ``id``
TIME_COLUMN = "created_at"


@dataclass(frozen=True)
class WindowSelection:
    """The rows to train on and what the policy did (for the train report)."""

    rows: pd.DataFrame
    report: dict[str, Any]


def newest_first(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` ordered newest first (``created_at`` descending, then ``id`` ascending): a total, stable order."""
    keys = pd.DataFrame(
        {"time": pd.to_datetime(frame[TIME_COLUMN], utc=True, format="mixed"), "id": frame["id"].astype(str)}
    )
    order = keys.sort_values(["time", "id"], ascending=[False, True], kind="mergesort").index
    return frame.loc[order]


def is_bounded(window: TrainWindowSettings) -> bool:
    """True when the policy can drop a row: a row or age limit is set."""
    return window.max_rows is not None or window.max_days is not None


def select_window(frame: pd.DataFrame, window: TrainWindowSettings, seed: int) -> WindowSelection:
    """The training rows of ``frame`` (columns ``id``, ``label``, ``created_at``) under ``window``.

    1. The window: the newest ``max_rows`` rows, and only those created at most ``max_days`` before the newest row.
    2. Every label with fewer than ``min_rows_per_label`` rows in the window gets its newest older rows up to that
       count (or all it has).
    3. Replay: a random sample (``seed``) of the remaining older rows, ``replay_share`` x the window's size.

    The rows come back in ``frame``'s order. Without a row or age limit every row is kept and nothing is replayed.
    """
    if not is_bounded(window):
        return WindowSelection(frame, _report(frame, frame.index, frame.index[:0], frame.index[:0], {}, window))
    ordered = newest_first(frame)
    in_window = _window_mask(ordered, window)
    kept = ordered.index[in_window]
    older = ordered[~in_window]
    topped, topped_up = _label_minimum(ordered.loc[kept], older, window.min_rows_per_label)
    rest = older.drop(index=topped)
    wanted = min(len(rest), round(window.replay_share * len(kept)))
    replay = rest.sample(n=wanted, random_state=np.random.RandomState(seed)).index if wanted else rest.index[:0]
    chosen = frame.index.isin(kept.union(topped).union(replay))
    return WindowSelection(frame[chosen], _report(frame, kept, topped, replay, topped_up, window))


def _window_mask(ordered: pd.DataFrame, window: TrainWindowSettings) -> np.ndarray:
    """Which rows of ``ordered`` (newest first) the row and age limits keep."""
    mask = np.ones(len(ordered), dtype=bool)
    if window.max_rows is not None:
        mask[window.max_rows :] = False
    if window.max_days is not None and len(ordered):
        times = pd.to_datetime(ordered[TIME_COLUMN], utc=True, format="mixed")
        mask &= (times >= times.max() - pd.Timedelta(days=window.max_days)).to_numpy()
    return mask


def _label_minimum(kept: pd.DataFrame, older: pd.DataFrame, minimum: int) -> tuple[pd.Index, dict[str, int]]:
    """The newest older rows that bring each label up to ``minimum`` rows, and how many each label got."""
    counts = kept["label"].value_counts()
    added: list[Any] = []
    topped_up: dict[str, int] = {}
    for label, rows in older.groupby("label", sort=True):
        missing = minimum - int(counts.get(label, 0))
        if missing > 0:
            take = rows.index[:missing]  # ``older`` is newest first, and groupby keeps that order
            added.extend(take)
            topped_up[str(label)] = len(take)
    return pd.Index(added), topped_up


def _report(
    frame: pd.DataFrame,
    kept: pd.Index,
    topped: pd.Index,
    replay: pd.Index,
    topped_up: dict[str, int],
    window: TrainWindowSettings,
) -> dict[str, Any]:
    """Counts (never texts) of what the policy kept, for ``reports/train/metrics.json``."""
    chosen = frame.loc[kept.union(topped).union(replay)]
    dated = len(kept) and TIME_COLUMN in frame
    times = pd.to_datetime(frame.loc[kept, TIME_COLUMN], utc=True, format="mixed") if dated else None
    return {
        "bounded": is_bounded(window),
        "rows_available": len(frame),
        "rows_in_window": len(kept),
        "rows_added_for_label_minimum": len(topped),
        "labels_topped_up": topped_up,
        "replay_rows": len(replay),
        "rows_selected": len(chosen),
        "min_rows_per_label": window.min_rows_per_label,
        "fewest_rows_of_a_label": int(chosen["label"].value_counts().min()) if len(chosen) else 0,
        "window_from": times.min().isoformat() if times is not None else None,
        "window_to": times.max().isoformat() if times is not None else None,
    }
