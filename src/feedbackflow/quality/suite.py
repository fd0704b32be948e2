"""The validate stage's data-quality rules: a Great Expectations suite as code, plus the row masks that quarantine.

Every rule exists twice, on purpose:

* as a GX expectation, which is the documented check and supplies the success flag and counts of the report;
* as a vectorised pandas/Arrow mask, which selects the failing rows. GX only returns a capped sample of unexpected
  rows, so it cannot be used to select every row to quarantine.

:meth:`QualityValidator.validate_rows` compares the two after every run and raises :class:`SuiteMismatchError` when
they disagree, so a mask can never silently let through rows that GX flags (or quarantine rows GX accepts).

Where each part lives: the rule names, groups and parameters in :mod:`feedbackflow.quality.rules`; the masks in
:mod:`feedbackflow.quality.masks` and, for ``id_unique`` across the history, :mod:`feedbackflow.quality.ids`; the GX
suites, the view and the re-checked rows in :mod:`feedbackflow.quality.expectations`; the runner that compares the two
in :mod:`feedbackflow.quality.validator`. This module re-exports their public names for callers.

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

from feedbackflow.quality.expectations import (
    build_batch_suite,
    build_row_suite,
    expected_unexpected_counts,
    gx_positions,
    gx_view,
    import_gx,
)
from feedbackflow.quality.ids import (
    IdClaims,
    unique_candidates,
)
from feedbackflow.quality.masks import (
    ALLOWED_TYPES,
    TEXT_TYPES,
    Prepared,
    any_rule,
    arrow_strings,
    as_text,
    blank,
    compute_rule_masks,
    field_masks,
    parse_timestamps,
    replaced_versions,
    rules_column,
    type_errors,
)
from feedbackflow.quality.rules import (
    BATCH_RULES,
    BATCH_VOLUME,
    CHANNEL_ALLOWED,
    CONTROL_CHARS,
    CORE_COLUMNS,
    CREATED_AT_LEAD,
    CREATED_AT_NOT_FUTURE,
    CREATED_AT_PARSEABLE,
    FILE_READABLE,
    ID_NOT_EMPTY,
    ID_UNIQUE,
    LABEL_IN_TAXONOMY,
    LABEL_MINIMUM,
    LANGUAGE_ALLOWED,
    MIXED_SCRIPT,
    OPTIONAL_COLUMNS,
    QUARANTINE_RULES,
    REQUIRED_COLUMNS,
    ROW_RULES,
    RULE_SEPARATOR,
    RULES,
    SUPERSEDED,
    TEXT_CONTROL_CHARS,
    TEXT_LENGTH,
    TEXT_MIXED_SCRIPT,
    TEXT_NOT_EMPTY,
    TYPE_ERROR,
    UNIQUE_CANDIDATE,
    UPDATE_SOURCE_COLUMN,
    UPDATE_SOURCES,
    VALUE_TYPES,
    RuleSpec,
)
from feedbackflow.quality.validator import (
    DATA_DOCS_SITE,
    ExpectationOutcome,
    QualityValidator,
    RowValidation,
    SuiteMismatchError,
)

__all__ = [
    "ALLOWED_TYPES",
    "BATCH_RULES",
    "BATCH_VOLUME",
    "CHANNEL_ALLOWED",
    "CONTROL_CHARS",
    "CORE_COLUMNS",
    "CREATED_AT_LEAD",
    "CREATED_AT_NOT_FUTURE",
    "CREATED_AT_PARSEABLE",
    "DATA_DOCS_SITE",
    "FILE_READABLE",
    "ID_NOT_EMPTY",
    "ID_UNIQUE",
    "LABEL_IN_TAXONOMY",
    "LABEL_MINIMUM",
    "LANGUAGE_ALLOWED",
    "MIXED_SCRIPT",
    "OPTIONAL_COLUMNS",
    "QUARANTINE_RULES",
    "REQUIRED_COLUMNS",
    "ROW_RULES",
    "RULES",
    "RULE_SEPARATOR",
    "SUPERSEDED",
    "TEXT_CONTROL_CHARS",
    "TEXT_LENGTH",
    "TEXT_MIXED_SCRIPT",
    "TEXT_NOT_EMPTY",
    "TEXT_TYPES",
    "TYPE_ERROR",
    "UNIQUE_CANDIDATE",
    "UPDATE_SOURCES",
    "UPDATE_SOURCE_COLUMN",
    "VALUE_TYPES",
    "ExpectationOutcome",
    "IdClaims",
    "Prepared",
    "QualityValidator",
    "RowValidation",
    "RuleSpec",
    "SuiteMismatchError",
    "any_rule",
    "arrow_strings",
    "as_text",
    "blank",
    "build_batch_suite",
    "build_row_suite",
    "compute_rule_masks",
    "expected_unexpected_counts",
    "field_masks",
    "gx_positions",
    "gx_view",
    "import_gx",
    "parse_timestamps",
    "replaced_versions",
    "rules_column",
    "type_errors",
    "unique_candidates",
]
