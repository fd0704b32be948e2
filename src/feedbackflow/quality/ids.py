"""Rule ``id_unique`` across the whole history: which row keeps an id, and which later ones repeat it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:  # GX takes seconds to import; only the validate stage pays for it, at run time
    pass

from feedbackflow.quality.masks import any_rule, arrow_strings
from feedbackflow.quality.rules import ID_UNIQUE

_NONE = np.iinfo(np.int64).max


def _hash_ids(ids: pa.Array, piece: int = 65_536) -> np.ndarray:
    """64-bit hashes of Arrow strings (pandas' SipHash), converted a piece at a time to keep the Python objects few."""
    if not len(ids):
        return np.zeros(0, dtype=np.uint64)
    return np.concatenate(
        [
            pd.util.hash_array(ids.slice(start, piece).to_numpy(zero_copy_only=False).astype(object), categorize=False)
            for start in range(0, len(ids), piece)
        ]
    )


class IdClaims:
    """``id_unique`` over a history seen chunk by chunk: per id, where its candidate rows lie (O(distinct ids)).

    Built from the ``id_unique`` candidates (rows passing every other rule) of the whole history: their ids, their
    positions in validation order and whether they are versions of an updating source. :meth:`repeated` then decides
    ``id_unique`` for any row exactly as :func:`compute_rule_masks` does on the whole frame: a row repeats an id when
    a candidate with that id came earlier; a version of an updating source, when a later version of the same record
    or an earlier candidate of another source holds the id. A reviewer's label (:data:`REVIEW_SOURCES`) repeats an id
    only when a later review holds it, and every other row of an id that a later review holds repeats it. The state
    is a row per distinct id (its text, four int64 and its 64-bit hash, sorted, for lookups), plus the last position
    of each reviewed id, not the rows.
    """

    def __init__(
        self, ids: pa.Array, positions: np.ndarray, versioned: np.ndarray, reviewed: np.ndarray | None = None
    ) -> None:
        """Aggregate the candidates.

        Args:
            ids: Candidate ids (large strings, no nulls), in any order.
            positions: Each candidate's position in validation order.
            versioned: True for candidates from an updating source (:data:`UPDATE_SOURCES`).
            reviewed: True for candidates from a review source (:data:`REVIEW_SOURCES`); None: none.
        """
        ids = ids.cast(pa.large_string())
        positions = np.asarray(positions, dtype=np.int64)
        versioned = np.asarray(versioned, dtype=bool)
        reviewed = np.zeros(len(positions), bool) if reviewed is None else np.asarray(reviewed, dtype=bool)
        self._last_review = self._last_of(ids, positions, reviewed)
        # Grouped by the ids' 64-bit hashes with numpy (a few int64 per candidate, no hash table of strings); the
        # ids of each group are compared, so the grouping is by id: a collision takes Arrow's group-by instead.
        hashes = _hash_ids(ids)
        order = np.argsort(hashes, kind="stable")
        ordered = hashes[order]
        new = np.ones(len(order), dtype=bool)
        new[1:] = ordered[1:] != ordered[:-1]
        starts = np.flatnonzero(new)
        if len(order) and not pc.all(pc.equal(ids.take(order), ids.take(order[starts][np.cumsum(new) - 1]))).as_py():
            self._group_by_arrow(ids, positions, versioned)
            return
        at, version = positions[order], versioned[order]
        self._ids = ids.take(order[starts])
        self._sorted = ordered[starts]  # lookups: the row of an id is where its hash sorts
        self._collisions = False
        empty = np.zeros(0, dtype=np.int64)
        self._first = np.minimum.reduceat(at, starts) if len(starts) else empty
        self._first_plain = np.minimum.reduceat(np.where(version, _NONE, at), starts) if len(starts) else empty
        self._last_version = np.maximum.reduceat(np.where(version, at, -1), starts) if len(starts) else empty
        self._count = np.diff(np.append(starts, len(order)))

    @staticmethod
    def _last_of(ids: pa.Array, positions: np.ndarray, chosen: np.ndarray) -> dict[str, int]:
        """Id -> the last position among the ``chosen`` candidates (reviews are few: a small dict)."""
        last: dict[str, int] = {}
        picked = pa.array(chosen)
        for key, at in zip(ids.filter(picked).to_pylist(), positions[chosen].tolist(), strict=True):
            last[key] = max(at, last.get(key, -1))
        return last

    def reviewed_later(self, ids: pd.Series | pa.Array, positions: np.ndarray) -> np.ndarray:
        """True where a review row later than the row holds its id (the row's label was replaced)."""
        if not self._last_review:
            return np.zeros(len(positions), dtype=bool)
        values = ids.to_pylist() if isinstance(ids, pa.Array) else ids.tolist()
        return np.array(
            [
                self._last_review.get(key, -1) > at
                for key, at in zip(values, np.asarray(positions).tolist(), strict=True)
            ],
            dtype=bool,
        )

    def _group_by_arrow(self, ids: pa.Array, positions: np.ndarray, versioned: np.ndarray) -> None:
        """Two distinct ids share a hash: group by the id text (Arrow), and look ids up with Arrow's set lookup."""
        position = pa.array(positions, type=pa.int64())
        versioned_ = pa.array(versioned, type=pa.bool_())
        table = pa.table(
            {
                "id": ids,
                "first": position,
                "first_plain": pc.if_else(versioned_, pa.scalar(None, pa.int64()), position),
                "last_version": pc.if_else(versioned_, position, pa.scalar(None, pa.int64())),
            }
        )
        grouped = table.group_by("id", use_threads=False).aggregate(
            [("first", "min"), ("first_plain", "min"), ("last_version", "max"), ("first", "count")]
        )
        self._ids = grouped["id"].combine_chunks()
        self._first = grouped["first_min"].to_numpy()
        self._first_plain = pc.fill_null(grouped["first_plain_min"], _NONE).to_numpy()
        self._last_version = pc.fill_null(grouped["last_version_max"], -1).to_numpy()
        self._count = grouped["first_count"].to_numpy()
        self._sorted = np.zeros(0, dtype=np.uint64)
        self._collisions = True

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def nbytes(self) -> int:
        """Memory held (bytes)."""
        arrays = (self._first, self._first_plain, self._last_version, self._count, self._sorted)
        return int(self._ids.nbytes + sum(array.nbytes for array in arrays))

    def lookup(self, ids: pd.Series | pa.Array) -> np.ndarray:
        """Each id's row in the claims table, -1 where it has none (or is null): :meth:`repeated` and :meth:`shared`
        take it as ``index`` when both look up the same ids."""
        values = ids.cast(pa.large_string()) if isinstance(ids, pa.Array) else arrow_strings(ids)
        if self._collisions or not len(self._sorted):
            found = pc.index_in(values, value_set=self._ids)
            return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        hashes = _hash_ids(values)
        at = np.minimum(np.searchsorted(self._sorted, hashes), len(self._sorted) - 1)
        index = np.where(self._sorted[at] == hashes, at, -1)
        same = pc.equal(self._ids.take(pa.array(np.maximum(index, 0))), values)
        return np.where(pc.fill_null(same, False).to_numpy(zero_copy_only=False), index, -1)

    def repeated(
        self,
        ids: pd.Series | pa.Array,
        positions: np.ndarray,
        candidate: np.ndarray,
        versioned: np.ndarray,
        reviewed: np.ndarray | None = None,
        index: np.ndarray | None = None,
    ) -> np.ndarray:
        """``id_unique`` before the ``id_not_empty`` exception, for rows of one chunk.

        Args:
            ids: The rows' ids (``str`` or ``None``).
            positions: Their positions in validation order.
            candidate: True where the row passes every rule but ``id_unique``.
            versioned: True where the row comes from an updating source.
            reviewed: True where the row comes from a review source (None: none).
            index: :meth:`lookup` of ``ids`` when the caller has it.

        Returns:
            True where the row repeats an id.
        """
        index = self.lookup(ids) if index is None else index
        found = index >= 0
        at = np.where(found, index, 0)

        def pick(values: np.ndarray, default: int) -> np.ndarray:
            return np.where(found, values[at], default) if len(values) else np.full(len(index), default)

        first = pick(self._first, _NONE)
        plain = first < positions
        version = (pick(self._last_version, -1) > positions) | (pick(self._first_plain, _NONE) < positions)
        base = np.where(candidate & versioned, version, plain) & found
        later = self.reviewed_later(ids, positions)
        review = np.zeros(len(index), bool) if reviewed is None else np.asarray(reviewed, dtype=bool)
        return np.where(candidate & review, later, base | later)

    def shared(self, ids: pd.Series | pa.Array, candidate: np.ndarray, index: np.ndarray | None = None) -> np.ndarray:
        """True for candidates whose id other candidates share (the rows GX's uniqueness check must see); ``index``:
        :meth:`lookup` of ``ids`` when the caller has it."""
        index = self.lookup(ids) if index is None else index
        if not len(self._count):
            return np.zeros(len(index), dtype=bool)
        found = index >= 0
        return candidate & found & (self._count[np.where(found, index, 0)] > 1)


def unique_candidates(masks: Mapping[str, pd.Series]) -> pd.Series:
    """Rows that pass every rule but ``id_unique``: the population ``id_unique`` is evaluated on."""
    return ~any_rule({rule: mask for rule, mask in masks.items() if rule != ID_UNIQUE})
