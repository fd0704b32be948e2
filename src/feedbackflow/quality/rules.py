"""The validate stage's rules: their names, the groups they fall in, and their parameters (:class:`RuleSpec`).

The rules are checked twice on purpose (:mod:`feedbackflow.quality.suite` explains why): as pandas/Arrow masks
(:mod:`feedbackflow.quality.masks`, :mod:`feedbackflow.quality.ids`) that pick every failing row, and as Great
Expectations expectations (:mod:`feedbackflow.quality.expectations`) that
:class:`~feedbackflow.quality.validator.QualityValidator` runs and compares with the masks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:  # GX takes seconds to import; only the validate stage pays for it, at run time
    from feedbackflow.settings import ValidateSettings


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
#: Rows carrying an identifier of a subject erased on request (keyed hashes in ``erasure.subjects_file``): a
#: re-delivery from a source that still holds them. Not bad data: they do not count towards the quarantine share.
ERASED_SUBJECT = "erased_subject"

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
QUARANTINE_RULES = (FILE_READABLE, REQUIRED_COLUMNS, SUPERSEDED, ERASED_SUBJECT, *ROW_RULES)

#: Frame column naming a row's ingest source; rows of :data:`UPDATE_SOURCES` are versions: the latest one wins.
UPDATE_SOURCE_COLUMN = "source"
UPDATE_SOURCES = ("postgres",)
#: Sources of reviewers' labels (:mod:`feedbackflow.labelling`): the latest review row of an id replaces every earlier
#: row of that id, whatever its source (the replaced rows are quarantined under ``id_unique``, as updates are).
REVIEW_SOURCES = ("review",)
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
