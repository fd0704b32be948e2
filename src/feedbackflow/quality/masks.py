"""The row rules as vectorised pandas/Arrow masks: they pick every row to quarantine (GX only samples them)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:  # GX takes seconds to import; only the validate stage pays for it, at run time
    pass

from feedbackflow.quality.rules import (
    CHANNEL_ALLOWED,
    CONTROL_CHARS,
    CREATED_AT_NOT_FUTURE,
    CREATED_AT_PARSEABLE,
    ID_NOT_EMPTY,
    ID_UNIQUE,
    LABEL_IN_TAXONOMY,
    LANGUAGE_ALLOWED,
    MIXED_SCRIPT,
    REVIEW_SOURCES,
    ROW_RULES,
    RULE_SEPARATOR,
    TEXT_CONTROL_CHARS,
    TEXT_LENGTH,
    TEXT_MIXED_SCRIPT,
    TEXT_NOT_EMPTY,
    TYPE_ERROR,
    UPDATE_SOURCE_COLUMN,
    UPDATE_SOURCES,
    VALUE_TYPES,
    RuleSpec,
)

# Vectorised helpers (pandas only).


def as_text(values: pd.Series) -> pd.Series:
    """Return ``values`` as an object Series of ``str`` or ``None``, without losing what the source held.

    CSV columns are strings already (fast path). JSON Lines and Parquet may hold numbers, booleans, timestamps or
    nested values: these are written as JSON (``1`` -> ``"1"``, ``true`` -> ``"true"``) or ISO 8601 text.

    Args:
        values: One column of a raw batch.

    Returns:
        Same index, object dtype, ``None`` where the source had a null.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        return (
            values.map(lambda stamp: stamp.isoformat(), na_action="ignore").astype(object).where(values.notna(), None)
        )
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        return values.astype(object).where(values.notna(), None)
    return values.astype(object).map(_scalar_text)


#: Python types a source value may have per column (CSV values are always ``str``); anything else breaks
#: ``value_types``. Booleans are never accepted, although ``bool`` is a subclass of ``int``.
ALLOWED_TYPES: dict[str, tuple[type, ...]] = {
    "id": (str, int, np.integer),
    "created_at": (str, pd.Timestamp, np.datetime64),
}
TEXT_TYPES: tuple[type, ...] = (str,)


def type_errors(values: pd.Series, column: str) -> np.ndarray:
    """True where a value of a raw batch column is neither null nor of a type the column allows.

    Args:
        values: One column of a raw batch, as read (before :func:`as_text`).
        column: Its name (``id`` and ``created_at`` allow more than strings).

    Returns:
        Boolean array, one flag per row.
    """
    allowed = ALLOWED_TYPES.get(column, TEXT_TYPES)
    dtype = values.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return values.notna().to_numpy(dtype=bool)
    if pd.api.types.is_integer_dtype(dtype):
        return np.full(len(values), int not in allowed, dtype=bool)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return np.full(len(values), pd.Timestamp not in allowed, dtype=bool) & values.notna().to_numpy(dtype=bool)
    if pd.api.types.is_float_dtype(dtype):
        return values.notna().to_numpy(dtype=bool)  # a float id or text is a broken export either way
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        return np.zeros(len(values), dtype=bool)

    def wrong(value: Any) -> bool:
        if value is None or (np.ndim(value) == 0 and pd.isna(value)):
            return False
        return isinstance(value, bool | np.bool_) or not isinstance(value, allowed)

    return np.fromiter((wrong(value) for value in values.to_numpy(dtype=object)), dtype=bool, count=len(values))


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return None
    if isinstance(value, np.generic | np.ndarray):  # numpy scalars and arrays (Parquet lists) -> Python values
        value = value.tolist()
    if hasattr(value, "isoformat"):  # datetime, date, time, pd.Timestamp
        return value.isoformat()
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def blank(values: pd.Series) -> pd.Series:
    """True where a value is null, empty or whitespace only.

    Args:
        values: Object Series of ``str`` or ``None`` (see :func:`as_text`).

    Returns:
        Boolean Series on the same index.
    """
    if values.empty:
        return pd.Series(False, index=values.index, dtype=bool)
    # Arrow's kernels: several times faster than pandas' per-object str.strip on a million rows.
    return pd.Series(blank_values(arrow_strings(values)), index=values.index)


def blank_values(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """:func:`blank` of Arrow strings, as a boolean array."""
    empty = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(values)), 0)
    return np.asarray(pc.fill_null(empty, True).to_numpy(zero_copy_only=False), dtype=bool)


def arrow_strings(values: pd.Series) -> pa.Array:
    """An object Series of ``str``/``None`` as an Arrow string array (nulls where ``None``)."""
    return pa.array(values.to_numpy(dtype=object), type=pa.large_string(), from_pandas=True)


def parse_timestamps(values: pd.Series) -> pd.Series:
    """Parse ISO 8601 timestamps to UTC; unparseable, blank or out-of-range values become ``NaT``.

    Naive timestamps are read as UTC. Only parseability matters here; the validated output keeps the original string.

    Args:
        values: Object Series of ``str`` or ``None``.

    Returns:
        ``datetime64[ns, UTC]`` Series on the same index.
    """
    return pd.to_datetime(values, format="ISO8601", utc=True, errors="coerce")


def any_rule(masks: Mapping[str, pd.Series]) -> pd.Series:
    """True for rows where at least one of ``masks`` is True."""
    columns = list(masks.values())
    if not columns:
        raise ValueError("no rule masks given")
    return pd.Series(np.logical_or.reduce([mask.to_numpy() for mask in columns]), index=columns[0].index)


def replaced_versions(
    frame: pd.DataFrame, masks: Mapping[str, pd.Series], reviewed_later: np.ndarray | None = None
) -> pd.Series:
    """True for rows quarantined only because a later version of the same record replaced them.

    Such rows (from an updating source, :data:`UPDATE_SOURCES`, or any row a later reviewer's label replaced:
    ``reviewed_later``, whose only broken rule is ``id_unique``) are kept in the quarantine with their reason but are
    no bad rows: they never count toward a batch's quarantine share.
    """
    only_repeat = masks[ID_UNIQUE].to_numpy() & (np.add.reduce([m.to_numpy() for m in masks.values()]) == 1)
    replaced = np.zeros(len(frame), bool) if reviewed_later is None else np.asarray(reviewed_later, dtype=bool)
    if UPDATE_SOURCE_COLUMN in frame.columns:
        replaced = replaced | frame[UPDATE_SOURCE_COLUMN].isin(UPDATE_SOURCES).to_numpy()
    return pd.Series(only_repeat & replaced, index=frame.index)


#: The rules of :func:`field_masks` (every row rule but ``id_unique``), in the bit order of :func:`pack_masks`.
FIELD_RULES = tuple(rule for rule in ROW_RULES if rule != ID_UNIQUE)


def pack_masks(masks: Mapping[str, pd.Series]) -> np.ndarray:
    """:func:`field_masks` as one int64 per row, bit ``i`` set where the row broke ``FIELD_RULES[i]``."""
    packed = np.zeros(len(next(iter(masks.values()))), dtype=np.int64)
    for bit, rule in enumerate(FIELD_RULES):
        packed |= masks[rule].to_numpy(dtype=bool).astype(np.int64) << bit
    return packed


def unpack_masks(packed: np.ndarray, index: pd.Index) -> dict[str, pd.Series]:
    """The field masks :func:`pack_masks` packed, on ``index``."""
    packed = np.asarray(packed, dtype=np.int64)
    return {rule: pd.Series((packed >> bit) & 1 == 1, index=index) for bit, rule in enumerate(FIELD_RULES)}


def rules_column(masks: Mapping[str, pd.Series]) -> pd.Series:
    """Name every rule each row broke, joined with ``;`` in rule order (``""`` for rows that broke none).

    Args:
        masks: Rule name -> boolean Series, all on the same index.

    Returns:
        Object Series of rule lists.
    """
    index = next(iter(masks.values())).index
    joined = np.full(len(index), "", dtype=object)
    for rule, mask in masks.items():
        joined = joined + np.where(mask.to_numpy(), rule + RULE_SEPARATOR, "")
    return pd.Series(joined, index=index, dtype=object).str.rstrip(RULE_SEPARATOR)


@dataclass(frozen=True)
class Prepared:
    """Per-row values several rules and the GX view share, computed once (they dominate the run time)."""

    blank: dict[str, pd.Series]
    created_at: pd.Series
    created_at_lead: pd.Series
    language: pd.Series
    text_length: pd.Series  # characters (code points, as Python's len), NaN for null
    text_control: pd.Series  # holds a character of CONTROL_CHARS
    text_mixed_script: pd.Series  # matches MIXED_SCRIPT

    @classmethod
    def of(cls, frame: pd.DataFrame, now: pd.Timestamp) -> Prepared:
        """Compute blank flags, the parsed ``created_at`` and its lead over ``now``, and the blank-free language.

        Args:
            frame: Rows with the core columns as ``str`` or ``None`` (``language`` may be absent).
            now: Reference time of ``created_at_not_future``.

        Returns:
            The shared values, on ``frame``'s index.
        """
        created_at = parse_timestamps(frame["created_at"])
        language = frame["language"] if "language" in frame.columns else pd.Series(None, frame.index, dtype=object)
        text = arrow_strings(frame["text"])  # converted once: three text rules read it

        def series(values: pa.Array) -> pd.Series:
            return pd.Series(values.to_numpy(zero_copy_only=False), index=frame.index)

        return cls(
            blank={
                "id": blank(frame["id"]),
                "text": pd.Series(blank_values(text), index=frame.index),
                "label": blank(frame["label"]),
            },
            created_at=created_at,
            created_at_lead=(created_at - now).dt.total_seconds(),
            language=language.where(~blank(language), None),
            text_length=series(pc.cast(pc.utf8_length(text), pa.float64())),
            text_control=series(pc.fill_null(pc.match_substring_regex(text, CONTROL_CHARS), False)),
            text_mixed_script=series(pc.fill_null(pc.match_substring_regex(text, MIXED_SCRIPT), False)),
        )


def field_masks(frame: pd.DataFrame, spec: RuleSpec, prepared: Prepared) -> dict[str, pd.Series]:
    """Every row rule but ``id_unique``: each depends on its own row only, so any chunk of rows can be checked alone.

    Args:
        frame: Rows, core columns as ``str`` or ``None``.
        spec: Rule parameters.
        prepared: ``Prepared.of(frame)``.

    Returns:
        Rule name -> boolean Series, True where the row broke the rule.
    """
    label = frame["label"]
    text_blank = prepared.blank["text"]
    type_error = frame[TYPE_ERROR] if TYPE_ERROR in frame.columns else pd.Series(False, index=frame.index)
    return {
        VALUE_TYPES: type_error.astype(bool),
        ID_NOT_EMPTY: prepared.blank["id"],
        TEXT_NOT_EMPTY: text_blank,
        TEXT_LENGTH: ~text_blank & ~prepared.text_length.between(spec.min_text_chars, spec.max_text_chars),
        TEXT_CONTROL_CHARS: ~text_blank & prepared.text_control,
        TEXT_MIXED_SCRIPT: ~text_blank & prepared.text_mixed_script,
        LABEL_IN_TAXONOMY: ~prepared.blank["label"] & ~label.isin(spec.taxonomy),
        CHANNEL_ALLOWED: ~frame["channel"].fillna("").isin(spec.channels),
        LANGUAGE_ALLOWED: prepared.language.notna() & ~prepared.language.isin(spec.languages),
        CREATED_AT_PARSEABLE: prepared.created_at.isna(),
        CREATED_AT_NOT_FUTURE: prepared.created_at_lead.gt(spec.max_future_seconds).fillna(False),
    }


def compute_rule_masks(frame: pd.DataFrame, spec: RuleSpec, prepared: Prepared | None = None) -> dict[str, pd.Series]:
    """Evaluate every row rule with vectorised pandas.

    Args:
        frame: Rows in validation order (earlier batches first), core columns as ``str`` or ``None``.
        spec: Rule parameters.
        prepared: ``Prepared.of(frame)`` when the caller has it already.

    Returns:
        Rule name (in :data:`ROW_RULES` order) -> boolean Series, True where the row broke the rule.
    """
    prepared = prepared or Prepared.of(frame, spec.now)
    ids = frame["id"]
    masks = field_masks(frame, spec, prepared)
    candidate = ~any_rule(masks)
    # Number of earlier candidate rows with the same id: a row repeats an id once this is positive.
    claimed = candidate.astype(np.int64)
    earlier = claimed.groupby(ids, sort=False, dropna=True).cumsum().sub(claimed).fillna(0)
    repeated = earlier > 0
    if UPDATE_SOURCE_COLUMN in frame.columns:
        # Rows of an updating source (PostgreSQL) are versions of one record, ingested oldest first: the latest
        # version claims the id and each replaced version is quarantined (kept in the restricted store).
        versioned = frame[UPDATE_SOURCE_COLUMN].isin(UPDATE_SOURCES).to_numpy() & candidate.to_numpy()
        version = pd.Series(versioned.astype(np.int64), index=frame.index)
        later = version[::-1].groupby(ids[::-1], sort=False, dropna=True).cumsum()[::-1].sub(version).fillna(0)
        others = (claimed - version).groupby(ids, sort=False, dropna=True).cumsum().sub(claimed - version).fillna(0)
        repeated = repeated.where(~versioned, (later > 0) | (others > 0))
        # A reviewer's label replaces every earlier row of its id; the latest review keeps the id.
        review = pd.Series(
            (frame[UPDATE_SOURCE_COLUMN].isin(REVIEW_SOURCES) & candidate).to_numpy().astype(np.int64),
            index=frame.index,
        )
        after = review[::-1].groupby(ids[::-1], sort=False, dropna=True).cumsum()[::-1].sub(review).fillna(0) > 0
        repeated = repeated.where(review == 0, after) | (after & (review == 0))
    masks[ID_UNIQUE] = repeated & ~masks[ID_NOT_EMPTY]
    return {rule: masks[rule].astype(bool) for rule in ROW_RULES}
