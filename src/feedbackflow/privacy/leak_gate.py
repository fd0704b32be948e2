"""The leak gate: after replacement, prove that no personal data is left before anything downstream may read it.

Two independent checks run over every anonymised text:

1. **Planted values.** The demo generator (or a test) writes every value it planted to a canary file that lives in
   restricted storage next to the raw data (``anonymise.canary_file``). None of them may appear in the output, in any
   letter case, written as planted or (numbers) with their spaces and dashes removed. One compiled regular
   expression scans all texts for all values in a single pass.
2. **A second scan.** The same analyzer runs again over the output; any finding at or above the score threshold
   that is not one of our own placeholders or pseudonyms means a value survived (e.g. replacing a neighbour changed
   what spaCy sees).

The result names row ids and entity types, never a value, so it is safe for logs, the audit record and the Airflow
failure message.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from feedbackflow.errors import ConfigError
from feedbackflow.privacy.analyzer import PrivacyEngine, analyze_texts, presidio_logs_without_text


@dataclass
class LeakReport:
    """What the gate found: row ids per entity type, for planted values and for second-scan findings."""

    rows_scanned: int
    canaries_checked: int
    canary_hits: dict[str, list[str]] = field(default_factory=dict)
    rescan_hits: dict[str, list[str]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.canary_hits and not self.rescan_hits

    def summary(self) -> dict:
        """Counts only (for the audit record and XComs): no value and no row id."""
        return {
            "passed": self.passed,
            "rows_scanned": self.rows_scanned,
            "canaries_checked": self.canaries_checked,
            "canary_hits": {entity: len(rows) for entity, rows in sorted(self.canary_hits.items())},
            "second_scan_hits": {entity: len(rows) for entity, rows in sorted(self.rescan_hits.items())},
        }

    def message(self, max_rows: int = 10) -> str:
        """A failure message naming entity types and row ids (at most ``max_rows`` per type), never a value."""
        parts = []
        for label, hits in (("planted value", self.canary_hits), ("second scan", self.rescan_hits)):
            for entity, rows in sorted(hits.items()):
                shown = ", ".join(rows[:max_rows]) + (
                    f" and {len(rows) - max_rows} more" if len(rows) > max_rows else ""
                )
                parts.append(f"{label} {entity} in {len(rows)} row(s): {shown}")
        return "; ".join(parts)


def load_canaries(path: Path | None) -> dict[str, list[str]]:
    """Read planted values ``{entity: [value, ...]}``; an absent file (or no path) means nothing was planted.

    Raises:
        ConfigError: the file exists but is not such a mapping.
    """
    if path is None or not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"{path} (anonymise.canary_file): not valid JSON: {error.msg} at line {error.lineno}"
        ) from None
    if not isinstance(data, dict) or not all(
        isinstance(values, list) and all(isinstance(v, str) for v in values) for values in data.values()
    ):
        raise ConfigError(f"{path} (anonymise.canary_file): expected a JSON object of entity -> list of strings")
    return {str(entity): list(values) for entity, values in data.items()}


def _variants(value: str) -> set[str]:
    # Numbers (cards, IBANs, phones) also count written without their spaces and dashes; names do not ("Mark Ham"
    # is not "Markham").
    compact = re.sub(r"[\s-]+", "", value)
    return {value, compact} if sum(c.isdigit() for c in compact) >= 6 else {value}


def canary_pattern(canaries: dict[str, list[str]]) -> tuple[re.Pattern[str] | None, dict[str, str]]:
    """One case-insensitive pattern matching any planted value, and a map from a match (case-folded) to its entity."""
    owner: dict[str, str] = {}
    for entity, values in canaries.items():
        for value in values:
            for variant in _variants(value.strip()):
                if variant:
                    owner.setdefault(variant.casefold(), entity)
    if not owner:
        return None, owner
    # Longest first, so a value that contains another is reported as itself.
    alternatives = sorted(owner, key=len, reverse=True)
    return re.compile("|".join(re.escape(value) for value in alternatives), re.IGNORECASE), owner


def replacement_pattern(entities: Sequence[str]) -> re.Pattern[str]:
    """Our own replacements: ``<ENTITY>`` placeholders and ``<ENTITY_hex>`` pseudonyms of the configured entities."""
    names = "|".join(re.escape(entity) for entity in sorted(entities, key=len, reverse=True))
    return re.compile(rf"<(?:{names})(?:_[0-9a-f]{{6,12}})?>")


def check_output(
    ids: Sequence[str], texts: Sequence[str | None], engine: PrivacyEngine, canaries: dict[str, list[str]]
) -> LeakReport:
    """Scan anonymised ``texts`` (row ids in ``ids``) for planted values and for anything the analyzer still finds.

    A second-scan finding that lies entirely inside one of our replacement tokens is ignored: ``<PERSON_3f9a1c0b>``
    is the placeholder, not a person, and its hex digits are no bank detail.
    """
    pattern, owner = canary_pattern(canaries)
    canary_hits: dict[str, list[str]] = defaultdict(list)
    present = [(row, text) for row, text in zip(ids, texts, strict=True) if isinstance(text, str) and text]
    if pattern is not None:
        for row, text in present:
            for entity in sorted({owner[match.group(0).casefold()] for match in pattern.finditer(text)}):
                canary_hits[entity].append(row)

    tokens = replacement_pattern(engine.entities)
    rescan_hits: dict[str, list[str]] = defaultdict(list)
    with presidio_logs_without_text():
        findings = analyze_texts([text for _, text in present], engine)
    for (row, text), results in zip(present, findings, strict=True):
        spans = [match.span() for match in tokens.finditer(text)]
        leaked = {
            result.entity_type
            for result in results
            if not any(start <= result.start and result.end <= end for start, end in spans)
        }
        for entity in sorted(leaked):
            rescan_hits[entity].append(row)
    return LeakReport(
        rows_scanned=len(present),
        canaries_checked=sum(len(values) for values in canaries.values()),
        canary_hits=dict(canary_hits),
        rescan_hits=dict(rescan_hits),
    )
