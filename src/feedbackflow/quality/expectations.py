"""The rules as a Great Expectations suite as code, the view GX validates, and the rows it re-checks."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # GX takes seconds to import; only the validate stage pays for it, at run time
    from great_expectations.core.expectation_suite import ExpectationSuite


from feedbackflow.quality.ids import unique_candidates
from feedbackflow.quality.masks import Prepared, any_rule
from feedbackflow.quality.rules import (
    CHANNEL_ALLOWED,
    CONTROL_CHARS,
    CREATED_AT_LEAD,
    CREATED_AT_NOT_FUTURE,
    CREATED_AT_PARSEABLE,
    ID_NOT_EMPTY,
    ID_UNIQUE,
    LABEL_IN_TAXONOMY,
    LANGUAGE_ALLOWED,
    MIXED_SCRIPT,
    REQUIRED_COLUMNS,
    ROW_RULES,
    TEXT_CONTROL_CHARS,
    TEXT_LENGTH,
    TEXT_MIXED_SCRIPT,
    TEXT_NOT_EMPTY,
    TYPE_ERROR,
    UNIQUE_CANDIDATE,
    VALUE_TYPES,
    RuleSpec,
)


def gx_view(frame: pd.DataFrame, masks: Mapping[str, pd.Series], prepared: Prepared) -> pd.DataFrame:
    """Build the frame GX validates (:mod:`feedbackflow.quality.suite` says why a view and not the raw strings).

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
    view[UNIQUE_CANDIDATE] = unique_candidates(masks)
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
    candidates = unique_candidates(masks)
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
    counts[ID_UNIQUE] = int(frame["id"][unique_candidates(masks)].duplicated(keep=False).sum())
    return counts


# ---------------------------------------------------------------------------------------------------------------
# Great Expectations suites.


def import_gx() -> Any:
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
    gx = import_gx()

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
    gx = import_gx()
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
