"""The validate stage's data-quality rules: a Great Expectations suite as code, plus the row masks that quarantine.

Every rule exists twice, on purpose:

* as a GX expectation, which is the documented check and supplies the success flag and counts of the report;
* as a vectorised pandas/Arrow mask, which selects the failing rows. GX only returns a capped sample of unexpected
  rows, so it cannot be used to select every row to quarantine.

:meth:`QualityValidator.validate_rows` compares the two after every run and raises :class:`SuiteMismatchError` when
they disagree, so a mask can never silently let through rows that GX flags (or quarantine rows GX accepts).

GX validates a *view* of the batch rather than the raw strings: blank values (null, empty or whitespace only) become
null, ``channel`` nulls become ``""`` and ``created_at`` is parsed to UTC timestamps. This keeps every rule to one
expectation with the same semantics as its mask: e.g. a blank text breaks ``text_not_empty`` only, not also
``text_length``, and a blank label is allowed (unlabelled traffic) because ``expect_column_values_to_be_in_set``
ignores nulls. Two rules check view columns computed here, since GX has no per-row form for them:
``value_types`` (:data:`TYPE_ERROR`, a value of a type its column does not allow, from JSON Lines or Parquet) and
``created_at_not_future`` (:data:`CREATED_AT_LEAD`, seconds after the validation time).

On large batches GX may check a subset (:func:`gx_positions`): every flagged row plus a seeded sample of passing
rows. Which rows are quarantined never depends on it.

The result format is ``BASIC`` with no unexpected value samples, so neither the report nor the Data Docs built from
the row suite's Checkpoint hold row values (raw text may hold personal data).

Rule ``id_unique`` keeps the first occurrence of an id among rows that pass every other rule and quarantines later
ones (in earlier batches or the same one). Rows from an updating source (PostgreSQL, :data:`UPDATE_SOURCES`) are
versions of one record, ingested oldest first: there the latest version keeps the id and the replaced ones are
quarantined under ``id_unique``. A row that broke another rule never claims its id, so a corrected
re-delivery of a quarantined row is accepted. GX's ``expect_column_values_to_be_unique`` counts *every* row that
shares an id (the first occurrence too), so for this rule the agreement check compares GX's count with the rows
involved in a repeat, not with the quarantined rows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:  # GX takes seconds to import; only the validate stage pays for it, at run time
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.core.expectation_suite import ExpectationSuite

    from feedbackflow.settings import ValidateSettings

#: Columns every batch must have, whatever ``validate.required_columns`` says: the rules and the outputs use them.
CORE_COLUMNS = ("id", "text", "label", "channel", "created_at")
#: Known columns a batch may lack (checked when present; a missing one reads as blank).
OPTIONAL_COLUMNS = ("language",)

# Rule names. They appear in the quarantine ``rules`` column, the report and error messages.
FILE_READABLE = "file_readable"
REQUIRED_COLUMNS = "required_columns"
ID_NOT_EMPTY = "id_not_empty"
ID_UNIQUE = "id_unique"
TEXT_NOT_EMPTY = "text_not_empty"
TEXT_LENGTH = "text_length"
LABEL_IN_TAXONOMY = "label_in_taxonomy"
CHANNEL_ALLOWED = "channel_allowed"
CREATED_AT_PARSEABLE = "created_at_parseable"
CREATED_AT_NOT_FUTURE = "created_at_not_future"
LANGUAGE_ALLOWED = "language_allowed"
VALUE_TYPES = "value_types"
TEXT_CONTROL_CHARS = "text_control_chars"
TEXT_MIXED_SCRIPT = "text_mixed_script"
BATCH_VOLUME = "batch_volume"
LABEL_MINIMUM = "label_minimum"
#: Not a check: the rows of a failed batch that was re-delivered under the same name (the re-delivery carries them).
SUPERSEDED = "superseded"

#: Rules that reject a whole batch (``label_minimum`` applies to the accumulated accepted rows, not one batch).
BATCH_RULES = (FILE_READABLE, REQUIRED_COLUMNS, BATCH_VOLUME, LABEL_MINIMUM, SUPERSEDED)
#: Rules evaluated per row, in the order they are listed in a quarantined row's ``rules``.
ROW_RULES = (
    VALUE_TYPES,
    ID_NOT_EMPTY,
    ID_UNIQUE,
    TEXT_NOT_EMPTY,
    TEXT_LENGTH,
    TEXT_CONTROL_CHARS,
    TEXT_MIXED_SCRIPT,
    LABEL_IN_TAXONOMY,
    CHANNEL_ALLOWED,
    LANGUAGE_ALLOWED,
    CREATED_AT_PARSEABLE,
    CREATED_AT_NOT_FUTURE,
)
RULES = BATCH_RULES + ROW_RULES
#: Rules that quarantine rows (counted per rule in the report).
QUARANTINE_RULES = (FILE_READABLE, REQUIRED_COLUMNS, SUPERSEDED, *ROW_RULES)

#: Frame column naming a row's ingest source; rows of :data:`UPDATE_SOURCES` are versions: the latest one wins.
UPDATE_SOURCE_COLUMN = "source"
UPDATE_SOURCES = ("postgres",)
#: View column that restricts ``id_unique`` to rows passing every other rule.
UNIQUE_CANDIDATE = "id_unique_candidate"
#: C0 control characters other than tab, newline and carriage return, and DEL (escaped: GX stores the pattern).
CONTROL_CHARS = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F]"
_LOOKALIKE = "[\u0370-\u03ff\u0400-\u04ff]"  # Greek and Cyrillic letters, as literal characters (RE2 and re)
#: A Latin letter or digit touching a Greek or Cyrillic letter: the homoglyph trick that hides an e-mail address or a
#: card number from the detectors (``jоhn@exаmple.com`` with Cyrillic о and а). NFKC does not fold these.
MIXED_SCRIPT = f"[A-Za-z0-9]{_LOOKALIKE}|{_LOOKALIKE}[A-Za-z0-9]"
#: Frame and view column: True where a source value has a type its column does not allow (see :func:`type_errors`).
TYPE_ERROR = "_type_error"
#: View column: seconds ``created_at`` lies after the validation's reference time (positive = in the future).
CREATED_AT_LEAD = "created_at_lead_seconds"

RULE_SEPARATOR = ";"


class SuiteMismatchError(RuntimeError):
    """The pandas masks and the GX results disagree: a bug in this module, never a data problem."""


@dataclass(frozen=True)
class RuleSpec:
    """Parameters of the rules, resolved from ``validate`` settings and the taxonomy file."""

    required_columns: tuple[str, ...]
    taxonomy: tuple[str, ...]
    channels: tuple[str, ...]
    min_text_chars: int
    max_text_chars: int
    languages: tuple[str, ...]
    now: pd.Timestamp
    max_future_seconds: float

    @classmethod
    def from_settings(
        cls, settings: ValidateSettings, taxonomy: Iterable[str], now: pd.Timestamp | None = None
    ) -> RuleSpec:
        """Build the spec; the core columns are always required, configured ones are added after them.

        Args:
            settings: The ``validate`` section of ``params.yaml``.
            taxonomy: Allowed label names.
            now: Reference time of ``created_at_not_future`` (default: the current time, UTC).

        Returns:
            The resolved rule parameters.
        """
        return cls(
            required_columns=tuple(dict.fromkeys([*CORE_COLUMNS, *settings.required_columns])),
            taxonomy=tuple(sorted(set(taxonomy))),
            channels=tuple(settings.channels),
            min_text_chars=settings.min_text_chars,
            max_text_chars=settings.max_text_chars,
            languages=tuple(settings.languages),
            now=now if now is not None else pd.Timestamp.now(tz="UTC"),
            max_future_seconds=float(settings.max_future_seconds),
        )

    @property
    def carried_columns(self) -> tuple[str, ...]:
        """The columns validation keeps from a batch: the required ones, then the optional known ones."""
        return (*self.required_columns, *(c for c in OPTIONAL_COLUMNS if c not in self.required_columns))


@dataclass(frozen=True)
class ExpectationOutcome:
    """One GX expectation result, reduced to what the report may show (no values, so no personal data)."""

    rule: str
    expectation_type: str
    column: str | None
    success: bool
    element_count: int | None
    unexpected_count: int | None
    expected_unexpected_count: int | None
    agrees: bool

    def as_dict(self) -> dict[str, Any]:
        """Return the outcome as a JSON-ready mapping."""
        return asdict(self)


@dataclass(frozen=True)
class RowValidation:
    """Row rule masks over a frame and the GX outcomes that confirmed them."""

    masks: dict[str, pd.Series]
    outcomes: list[ExpectationOutcome]
    prepared: Prepared
    gx_rows: int  # rows GX validated: all, or every flagged row plus a sample of passing ones

    @property
    def failing(self) -> pd.Series:
        """True for every row that broke at least one rule."""
        return any_rule(self.masks)


# ---------------------------------------------------------------------------------------------------------------
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
    trimmed = pc.utf8_length(pc.utf8_trim_whitespace(_arrow(values)))
    return pd.Series(pc.fill_null(pc.equal(trimmed, 0), True).to_numpy(zero_copy_only=False), index=values.index)


def _arrow(values: pd.Series) -> pa.Array:
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


def replaced_versions(frame: pd.DataFrame, masks: Mapping[str, pd.Series]) -> pd.Series:
    """True for rows quarantined only because a later version of the same record replaced them.

    Such rows (from an updating source, :data:`UPDATE_SOURCES`, whose only broken rule is ``id_unique``) are kept in
    the quarantine with their reason but are no bad rows: they never count toward a batch's quarantine share.
    """
    if UPDATE_SOURCE_COLUMN not in frame.columns:
        return pd.Series(False, index=frame.index)
    only_repeat = masks[ID_UNIQUE].to_numpy() & (np.add.reduce([m.to_numpy() for m in masks.values()]) == 1)
    return pd.Series(only_repeat & frame[UPDATE_SOURCE_COLUMN].isin(UPDATE_SOURCES).to_numpy(), index=frame.index)


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
        text = _arrow(frame["text"])  # converted once: three text rules read it

        def series(values: pa.Array) -> pd.Series:
            return pd.Series(values.to_numpy(zero_copy_only=False), index=frame.index)

        text_blank = pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0), True)
        return cls(
            blank={"id": blank(frame["id"]), "text": series(text_blank), "label": blank(frame["label"])},
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
    masks[ID_UNIQUE] = repeated & ~masks[ID_NOT_EMPTY]
    return {rule: masks[rule].astype(bool) for rule in ROW_RULES}


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
    or an earlier candidate of another source holds the id. The state is a row per distinct id (its text, four int64
    and its 64-bit hash, sorted, for lookups), not the rows.
    """

    def __init__(self, ids: pa.Array, positions: np.ndarray, versioned: np.ndarray) -> None:
        """Aggregate the candidates.

        Args:
            ids: Candidate ids (large strings, no nulls), in any order.
            positions: Each candidate's position in validation order.
            versioned: True for candidates from an updating source (:data:`UPDATE_SOURCES`).
        """
        ids = ids.cast(pa.large_string())
        positions = np.asarray(positions, dtype=np.int64)
        versioned = np.asarray(versioned, dtype=bool)
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

    def _index(self, ids: pd.Series | pa.Array) -> np.ndarray:
        """Each id's row in the claims table, -1 where it has none (or is null)."""
        values = ids.cast(pa.large_string()) if isinstance(ids, pa.Array) else _arrow(ids)
        if self._collisions or not len(self._sorted):
            found = pc.index_in(values, value_set=self._ids)
            return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        hashes = _hash_ids(values)
        at = np.minimum(np.searchsorted(self._sorted, hashes), len(self._sorted) - 1)
        index = np.where(self._sorted[at] == hashes, at, -1)
        same = pc.equal(self._ids.take(pa.array(np.maximum(index, 0))), values)
        return np.where(pc.fill_null(same, False).to_numpy(zero_copy_only=False), index, -1)

    def repeated(
        self, ids: pd.Series | pa.Array, positions: np.ndarray, candidate: np.ndarray, versioned: np.ndarray
    ) -> np.ndarray:
        """``id_unique`` before the ``id_not_empty`` exception, for rows of one chunk.

        Args:
            ids: The rows' ids (``str`` or ``None``).
            positions: Their positions in validation order.
            candidate: True where the row passes every rule but ``id_unique``.
            versioned: True where the row comes from an updating source.

        Returns:
            True where the row repeats an id.
        """
        index = self._index(ids)
        found = index >= 0
        at = np.where(found, index, 0)

        def pick(values: np.ndarray, default: int) -> np.ndarray:
            return np.where(found, values[at], default) if len(values) else np.full(len(index), default)

        first = pick(self._first, _NONE)
        plain = first < positions
        version = (pick(self._last_version, -1) > positions) | (pick(self._first_plain, _NONE) < positions)
        return np.where(candidate & versioned, version, plain) & found

    def shared(self, ids: pd.Series | pa.Array, candidate: np.ndarray) -> np.ndarray:
        """True for candidates whose id other candidates share (the rows GX's uniqueness check must see)."""
        index = self._index(ids)
        if not len(self._count):
            return np.zeros(len(index), dtype=bool)
        found = index >= 0
        return candidate & found & (self._count[np.where(found, index, 0)] > 1)


def _unique_candidates(masks: Mapping[str, pd.Series]) -> pd.Series:
    """Rows that pass every rule but ``id_unique``: the population ``id_unique`` is evaluated on."""
    return ~any_rule({rule: mask for rule, mask in masks.items() if rule != ID_UNIQUE})


def gx_view(frame: pd.DataFrame, masks: Mapping[str, pd.Series], prepared: Prepared) -> pd.DataFrame:
    """Build the frame GX validates (see the module docstring for why a view and not the raw strings).

    Args:
        frame: The frame the masks were computed on.
        masks: Output of :func:`compute_rule_masks`.
        prepared: The :class:`Prepared` values the masks were computed from.

    Returns:
        Columns ``id``, ``text``, ``label``, ``channel``, ``language``, ``created_at``, :data:`CREATED_AT_LEAD` and
        :data:`UNIQUE_CANDIDATE`.
    """
    view = pd.DataFrame(index=frame.index)
    for column in ("id", "text", "label"):
        view[column] = frame[column].where(~prepared.blank[column], None)
    view[TYPE_ERROR] = masks[VALUE_TYPES]
    view["channel"] = frame["channel"].fillna("")
    view["language"] = prepared.language
    view["created_at"] = prepared.created_at
    view[CREATED_AT_LEAD] = prepared.created_at_lead
    view[UNIQUE_CANDIDATE] = _unique_candidates(masks)
    return view


def gx_positions(frame: pd.DataFrame, masks: Mapping[str, pd.Series], passing_rows: int | None) -> np.ndarray | None:
    """Row positions GX re-checks when validating every row would cost too much; None for all rows.

    The quarantine never depends on GX (the masks select every failing row). GX's role is to confirm the masks, and
    that needs every row a mask flags (so GX's unexpected count must equal the mask's), every row sharing an id
    among ``id_unique`` candidates (the population uniqueness is judged on), and a seeded random sample of
    ``passing_rows`` other rows (on which GX must find nothing). A disagreement still raises
    :class:`SuiteMismatchError`.

    Args:
        frame: The frame the masks were computed on.
        masks: Output of :func:`compute_rule_masks`.
        passing_rows: Sample size of rows no rule flags; None disables sampling.

    Returns:
        Sorted positions, or None when GX should see every row.
    """
    if passing_rows is None:
        return None
    candidates = _unique_candidates(masks)
    ids = frame["id"].where(candidates)
    involved = any_rule(masks) | (ids.notna() & ids.duplicated(keep=False))
    others = np.flatnonzero(~involved.to_numpy())
    if len(others) <= passing_rows:
        return None
    sample = np.random.default_rng(len(frame)).choice(others, passing_rows, replace=False)
    return np.sort(np.concatenate([np.flatnonzero(involved.to_numpy()), sample]))


def expected_unexpected_counts(frame: pd.DataFrame, masks: Mapping[str, pd.Series]) -> dict[str, int]:
    """The ``unexpected_count`` GX must report for each rule if the masks are right.

    Args:
        frame: The frame the masks were computed on.
        masks: Output of :func:`compute_rule_masks`.

    Returns:
        Rule name -> count.
    """
    counts = {rule: int(mask.sum()) for rule, mask in masks.items()}
    # GX counts every row of a repeated id, the kept first occurrence included.
    counts[ID_UNIQUE] = int(frame["id"][_unique_candidates(masks)].duplicated(keep=False).sum())
    return counts


# ---------------------------------------------------------------------------------------------------------------
# Great Expectations suites.


def _import_gx() -> Any:
    """Import GX lazily; quiet its INFO chatter (import-time docs registration) unless logging was configured for it."""
    gx_logger = logging.getLogger("great_expectations")
    if gx_logger.level == logging.NOTSET:
        gx_logger.setLevel(logging.WARNING)
    import great_expectations

    return great_expectations


def build_batch_suite(spec: RuleSpec) -> ExpectationSuite:
    """The batch-level suite: the required columns are present (extra columns are allowed).

    Args:
        spec: Rule parameters.

    Returns:
        An unsaved GX expectation suite.
    """
    gx = _import_gx()

    return gx.ExpectationSuite(
        name="feedback_batch",
        expectations=[
            gx.expectations.ExpectTableColumnsToMatchSet(
                column_set=list(spec.required_columns),
                exact_match=False,
                meta={"rule": REQUIRED_COLUMNS},
                description="Every required column is present; extra columns are allowed and ignored.",
            )
        ],
    )


def build_row_suite(spec: RuleSpec) -> ExpectationSuite:
    """The row-level suite, one expectation per rule of :data:`ROW_RULES`, over :func:`gx_view`.

    Args:
        spec: Rule parameters.

    Returns:
        An unsaved GX expectation suite.
    """
    gx = _import_gx()
    from great_expectations.expectations.row_conditions import Column

    expect = gx.expectations
    expectations = {
        VALUE_TYPES: expect.ExpectColumnValuesToBeInSet(
            column=TYPE_ERROR,
            value_set=[False],
            description="every value has its column's type: text for text, label, channel and language; text or "
            "an integer for id; text or a timestamp for created_at (JSON Lines and Parquet can hold others).",
        ),
        ID_NOT_EMPTY: expect.ExpectColumnValuesToNotBeNull(column="id", description="id is not blank."),
        ID_UNIQUE: expect.ExpectColumnValuesToBeUnique(
            column="id",
            row_condition=Column(UNIQUE_CANDIDATE) == True,  # noqa: E712 (builds a GX condition, not a comparison)
            description="id is unique among rows that pass every other rule, across all batches.",
        ),
        TEXT_NOT_EMPTY: expect.ExpectColumnValuesToNotBeNull(column="text", description="text is not blank."),
        TEXT_LENGTH: expect.ExpectColumnValueLengthsToBeBetween(
            column="text",
            min_value=spec.min_text_chars,
            max_value=spec.max_text_chars,
            description="text length in characters is within [min_text_chars, max_text_chars].",
        ),
        TEXT_CONTROL_CHARS: expect.ExpectColumnValuesToNotMatchRegex(
            column="text",
            regex=CONTROL_CHARS,
            description="text holds no control characters (NUL and other C0 codes; tab and newlines are fine).",
        ),
        TEXT_MIXED_SCRIPT: expect.ExpectColumnValuesToNotMatchRegex(
            column="text",
            regex=MIXED_SCRIPT,
            description="no Latin letter or digit touches a Greek or Cyrillic letter (look-alike characters that "
            "hide e-mail addresses or card numbers from anonymisation).",
        ),
        LABEL_IN_TAXONOMY: expect.ExpectColumnValuesToBeInSet(
            column="label",
            value_set=list(spec.taxonomy),
            description="label is in the taxonomy; a blank label (unlabelled traffic) is allowed.",
        ),
        CHANNEL_ALLOWED: expect.ExpectColumnValuesToBeInSet(
            column="channel", value_set=list(spec.channels), description="channel is one of the allowed channels."
        ),
        LANGUAGE_ALLOWED: expect.ExpectColumnValuesToBeInSet(
            column="language",
            value_set=list(spec.languages),
            description="language, when given, is one of the allowed languages.",
        ),
        CREATED_AT_PARSEABLE: expect.ExpectColumnValuesToNotBeNull(
            column="created_at", description="created_at parses as an ISO 8601 timestamp."
        ),
        CREATED_AT_NOT_FUTURE: expect.ExpectColumnValuesToBeBetween(
            column=CREATED_AT_LEAD,
            max_value=spec.max_future_seconds,
            description="created_at is not in the future (seconds after the validation time, max_future_seconds "
            "of clock skew allowed).",
        ),
    }
    for rule, expectation in expectations.items():
        expectation.meta = {"rule": rule}
    return gx.ExpectationSuite(name="feedback_rows", expectations=[expectations[rule] for rule in ROW_RULES])


DATA_DOCS_SITE = "feedbackflow"


class QualityValidator:
    """Runs the suites through an ephemeral GX context; GX writes only the Data Docs site, when one is asked for.

    The row suite runs through a GX Checkpoint, so its validation result is stored in the context and, with
    ``docs_dir``, rendered into a file-system Data Docs site by an ``UpdateDataDocsAction``. The result format keeps
    counts and percentages only (no unexpected value samples), so the Data Docs and the report carry no row values.
    """

    # BASIC gives counts; no sample of unexpected values, which could hold personal data.
    RESULT_FORMAT: ClassVar[dict[str, Any]] = {"result_format": "BASIC", "partial_unexpected_count": 0}

    def __init__(
        self,
        spec: RuleSpec,
        docs_dir: Path | None = None,
        run_name: str = "manual",
        gx_passing_rows: int | None = None,
    ) -> None:
        """Create the context, a pandas data source, the two suites and the row suite's checkpoint.

        Args:
            spec: Rule parameters.
            docs_dir: Folder of the Data Docs site to build (None: no Data Docs).
            run_name: Run name shown in the Data Docs (the orchestrator's run id).
            gx_passing_rows: See :func:`gx_positions` (None: GX validates every row).
        """
        self.gx_passing_rows = gx_passing_rows
        gx = _import_gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.spec = spec
        self.run_name = run_name
        self.docs_dir = docs_dir
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)  # keep task logs readable
        actions = []
        if docs_dir is not None:
            context.add_data_docs_site(
                site_name=DATA_DOCS_SITE,
                site_config={
                    "class_name": "SiteBuilder",
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                    "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                },
            )
            actions.append(gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=[DATA_DOCS_SITE]))
        asset = context.data_sources.add_pandas("feedbackflow").add_dataframe_asset("feedback")
        self._batch_definition: BatchDefinition = asset.add_batch_definition_whole_dataframe("whole_frame")
        self.batch_suite = build_batch_suite(spec)
        self.row_suite = context.suites.add(build_row_suite(spec))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name="feedback_rows", data=self._batch_definition, suite=self.row_suite)
        )
        self._checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name="feedback_rows",
                validation_definitions=[definition],
                actions=actions,
                result_format=self.RESULT_FORMAT,
            )
        )
        self._context = context
        self.last_result: Any = None

    def _run_checkpoint(self, view: pd.DataFrame) -> list[Any]:
        from great_expectations.core.run_identifier import RunIdentifier

        result = self._checkpoint.run(
            batch_parameters={"dataframe": view}, run_id=RunIdentifier(run_name=self.run_name)
        )
        (validation,) = result.run_results.values()
        self.last_result = validation  # the stored validation (counts only), for the Data Docs history
        return list(validation.results)

    def _validate(self, frame: pd.DataFrame, suite: ExpectationSuite) -> list[Any]:
        batch = self._batch_definition.get_batch(batch_parameters={"dataframe": frame})
        return list(batch.validate(suite, result_format=self.RESULT_FORMAT).results)

    def check_columns(self, frame: pd.DataFrame) -> tuple[bool, list[str]]:
        """Check one batch's header against :data:`RuleSpec.required_columns`.

        Args:
            frame: A raw batch (only its columns are looked at).

        Returns:
            GX's success flag and the missing columns in required order.

        Raises:
            SuiteMismatchError: GX and the column comparison disagree.
        """
        missing = [column for column in self.spec.required_columns if column not in frame.columns]
        (result,) = self._validate(frame.head(0), self.batch_suite)
        if bool(result.success) == bool(missing) or result.exception_info.get("raised_exception"):
            raise SuiteMismatchError(f"rule '{REQUIRED_COLUMNS}': GX success={result.success}, missing={missing}")
        return bool(result.success), missing

    def validate_rows(self, frame: pd.DataFrame) -> RowValidation:
        """Compute the row masks and confirm each rule's count with GX.

        Args:
            frame: Rows in validation order, core columns as ``str`` or ``None``; any index.

        Returns:
            The masks (on ``frame``'s index) and one outcome per row rule.

        Raises:
            SuiteMismatchError: a GX expectation raised, or its count differs from the mask's.
        """
        prepared = Prepared.of(frame, self.spec.now)
        masks = compute_rule_masks(frame, self.spec, prepared)
        view = gx_view(frame, masks, prepared).reset_index(drop=True)
        positions = gx_positions(frame, masks, self.gx_passing_rows)
        if positions is not None:
            frame = frame.iloc[positions]
            view = view.iloc[positions].reset_index(drop=True)
            expected = expected_unexpected_counts(frame, {rule: mask.iloc[positions] for rule, mask in masks.items()})
        else:
            expected = expected_unexpected_counts(frame, masks)
        return RowValidation(masks=masks, outcomes=self.confirm(view, expected), prepared=prepared, gx_rows=len(view))

    def confirm(self, view: pd.DataFrame, expected: Mapping[str, int]) -> list[ExpectationOutcome]:
        """Run the row suite's checkpoint on ``view`` and compare every rule's count with the masks'.

        Args:
            view: The rows GX re-checks (:func:`gx_view`), index 0..n-1.
            expected: Output of :func:`expected_unexpected_counts` on the same rows.

        Returns:
            One outcome per row rule.

        Raises:
            SuiteMismatchError: a GX expectation raised, or its count differs from the mask's.
        """
        outcomes = []
        for result in self._run_checkpoint(view):
            config = result.expectation_config
            rule = (config.meta or {})["rule"]
            info = result.exception_info or {}
            if info.get("raised_exception"):
                raise SuiteMismatchError(f"rule '{rule}': GX raised {info.get('exception_message')}")
            counts = result.result or {}
            unexpected = counts.get("unexpected_count")
            outcomes.append(
                ExpectationOutcome(
                    rule=rule,
                    expectation_type=config.type,
                    column=config.kwargs.get("column"),
                    success=bool(result.success),
                    element_count=counts.get("element_count"),
                    unexpected_count=unexpected,
                    expected_unexpected_count=expected[rule],
                    agrees=unexpected == expected[rule],
                )
            )
        wrong = [outcome for outcome in outcomes if not outcome.agrees]
        if wrong:
            detail = ", ".join(
                f"{o.rule}: GX {o.unexpected_count} vs mask {o.expected_unexpected_count}" for o in wrong
            )
            raise SuiteMismatchError(f"row masks disagree with Great Expectations ({detail})")
        return outcomes
