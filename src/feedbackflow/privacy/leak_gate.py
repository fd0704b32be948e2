"""The leak gate: after replacement, prove that no personal data is left before anything downstream may read it.

Two independent checks run over every anonymised text:

1. **Planted values.** The demo generator (or a test) writes every value it planted to a canary file that lives in
   restricted storage next to the raw data (``anonymise.canary_file``). None of them may appear in the output, in any
   letter case, written as planted or (numbers) with their spaces and dashes removed. One compiled regular
   expression scans all texts for all values in a single pass. A row in which one is found is held back
   (``planted value missed``), like a second-scan finding below: a missed value proves a blind spot of the detector,
   and the row that shows it is kept out of the output; the night goes on within the same share.
2. **A second opinion.** A detector that shares none of the first scan's filters re-scans the output
   (:func:`build_second_opinion`): Presidio's *unmodified* predefined recognizers (its own phone recognizer, card
   patterns, context words and thresholds) and its own spaCy NER pass over the full pipeline, without our allow-list,
   trimming, case normalisation or region filter. Any finding of a configured entity at or above the score
   threshold that is not one of our placeholders or pseudonyms means a value survived, so one blind spot of the first
   scan cannot hide a leak twice. Such a row is held back from the output (the anonymise stage keeps it, as
   validated, in restricted storage with the entity types found) while the flagged rows are at most
   ``anonymise.max_held_share`` of the night; one false positive of the second opinion ("app app" read as a PERSON)
   must not stop every night that carries the same row, and a real leak is kept out of the output either way.
   ``anonymise.second_opinion: false`` falls back to re-running the first analyzer.
   Two speed-ups change no finding (``benchmarks/bench_leak_gate.py`` compares every finding): spaCy runs on batches
   of ``anonymise.batch_size`` texts instead of Presidio's default of one, and a recognizer that provably needs a
   digit (every one of its regular expressions must consume one, read from the parsed expression) is skipped on a
   text without a digit.

The result names row ids and entity types, never a value, so it is safe for logs, the audit record and the Airflow
failure message.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feedbackflow.errors import ConfigError
from feedbackflow.privacy.engine import (
    PrivacyEngine,
    analyze_texts,
    nlp_configuration,
    presidio_logs_without_text,
    resolve_spacy_model,
)

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine, RecognizerResult

    from feedbackflow.settings import AnonymiseSettings


#: The reason a row is held back when a planted value was found in its anonymised text.
PLANTED_MISSED = "planted value missed"
#: The reason a row is held back when the second scan still found something in it.
SECOND_SCAN = "second scan"


@dataclass
class LeakReport:
    """What the gate found: row ids per entity type, for planted values and for second-scan findings.

    The verdict: a row with a planted value in its output (``planted value missed``) or a second-scan finding is held
    back from the output (the stage keeps it in restricted storage), and the night goes on as long as the rows held
    back are at most ``max_held_share`` of the rows scanned; more than that fails, because a detector that misses that
    much is broken, not unlucky. The default share of 0 makes any finding fail. Tests that plant values assert that
    none was missed (``canary_hits`` empty), so a miss stays a hard failure there.
    """

    rows_scanned: int
    canaries_checked: int
    canary_hits: dict[str, list[str]] = field(default_factory=dict)
    rescan_hits: dict[str, list[str]] = field(default_factory=dict)
    max_held_share: float = 0.0

    @property
    def held_back(self) -> set[str]:
        """Ids of the rows with a planted value or a second-scan finding: kept out of the output."""
        return {row for hits in (self.canary_hits, self.rescan_hits) for rows in hits.values() for row in rows}

    @property
    def passed(self) -> bool:
        return len(self.held_back) <= self.max_held_share * self.rows_scanned

    def held_rows(self) -> dict[str, tuple[list[str], list[str]]]:
        """Each held-back row id -> (its reasons, the entity types found), planted values first; no value."""
        rows: dict[str, tuple[list[str], list[str]]] = {}
        for reason, hits in ((PLANTED_MISSED, self.canary_hits), (SECOND_SCAN, self.rescan_hits)):
            for entity, ids in sorted(hits.items()):
                for row in ids:
                    reasons, entities = rows.setdefault(row, ([], []))
                    if reason not in reasons:
                        reasons.append(reason)
                    if entity not in entities:
                        entities.append(entity)
        return rows

    def merge(self, other: LeakReport) -> None:
        """Add ``other``'s rows and findings (the report of the next chunk) to this one."""
        self.rows_scanned += other.rows_scanned
        for hits, more in ((self.canary_hits, other.canary_hits), (self.rescan_hits, other.rescan_hits)):
            for entity, rows in more.items():
                hits.setdefault(entity, []).extend(rows)

    def summary(self) -> dict:
        """Counts only (for the audit record and XComs): no value and no row id."""
        planted_rows = {row for rows in self.canary_hits.values() for row in rows}
        return {
            "passed": self.passed,
            "rows_scanned": self.rows_scanned,
            "canaries_checked": self.canaries_checked,
            "canary_hits": {entity: len(rows) for entity, rows in sorted(self.canary_hits.items())},
            "second_scan_hits": {entity: len(rows) for entity, rows in sorted(self.rescan_hits.items())},
            "planted_value_missed": len(planted_rows),
            "second_scan_rows": len({row for rows in self.rescan_hits.values() for row in rows}),
            "rows_held_back": len(self.held_back),
            "max_held_share": self.max_held_share,
        }

    def message(self, max_rows: int = 10) -> str:
        """A failure message naming entity types and row ids (at most ``max_rows`` per type), never a value."""
        parts = []
        held = len(self.held_back)
        if held > self.max_held_share * self.rows_scanned:
            parts.append(
                f"the leak gate held back {held} of {self.rows_scanned} row(s), more than "
                f"anonymise.max_held_share={self.max_held_share:g} allows"
            )
        for label, hits in ((PLANTED_MISSED, self.canary_hits), (SECOND_SCAN, self.rescan_hits)):
            for entity, rows in sorted(hits.items()):
                shown = ", ".join(rows[:max_rows]) + (
                    f" and {len(rows) - max_rows} more" if len(rows) > max_rows else ""
                )
                parts.append(f"{label}: {entity} in {len(rows)} row(s): {shown}")
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


_NOT_RECHECKED = ("LOCATION",)
# The gate's own list of words Presidio's spaCy NER tags PERSON that name no person (payment networks, currencies:
# "some Euros for my holiday" stopped a demo night). It is the gate's, written for it, not the first scan's
# allow-list, and it only ever excuses a whole finding made of one of them.
_GATE_NOT_PEOPLE = re.compile(
    r"(?i)\A(?:visa|master ?card|maestro|amex|paypal|apple pay|google pay|revolut"
    r"|euros?|dollars?|yen|yuan|pesos?|rupees?|zloty|kron(?:a|e|or|er))\Z"
)


@dataclass
class SecondOpinion:
    """Presidio's default analyzer, as shipped, for the leak gate's independent re-scan."""

    analyzer: AnalyzerEngine
    language: str
    entities: list[str]
    score_threshold: float
    batch_size: int  # texts per spaCy batch (Presidio's default of 1 runs the models once per text)

    def analyze(self, texts: Sequence[str]) -> list[list[RecognizerResult]]:
        """The findings of each text (one spaCy batch pass, then Presidio's unmodified recognizers)."""
        from presidio_analyzer import BatchAnalyzerEngine

        presidio = logging.getLogger("presidio-analyzer")
        level = presidio.level
        # Presidio's own spaCy mapping warns once per unmapped label per text ("Entity CARDINAL is not mapped"); the
        # records hold labels, not text, but would flood the task log.
        presidio.setLevel(logging.ERROR)
        try:
            found = BatchAnalyzerEngine(self.analyzer).analyze_iterator(
                list(texts),
                language=self.language,
                entities=self.entities,
                score_threshold=self.score_threshold,
                batch_size=self.batch_size,
            )
            return [list(results) for results in found]
        finally:
            presidio.setLevel(level)


def build_second_opinion(settings: AnonymiseSettings) -> SecondOpinion:
    """Presidio's predefined recognizers, unmodified, with their own spaCy NER (full pipeline, Presidio's mapping).

    Only the e-mail check's public suffix list is pointed at tldextract's bundled copy, so nothing touches the network.
    The entities are the configured ones this detector knows (it has no street-address or age recognizer: the
    planted-value check covers those), except LOCATION: Presidio's default tags every country ("I live in Germany"),
    which the first scan keeps on purpose because a country locates nobody.
    """
    import tldextract.tldextract
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    from feedbackflow.privacy.recognizers import offline_tld_extractor

    tldextract.tldextract.TLD_EXTRACTOR = offline_tld_extractor()
    configuration = nlp_configuration(settings.language, resolve_spacy_model(settings.spacy_model))
    configuration.pop("ner_model_configuration")  # Presidio's own defaults, not ours
    nlp_engine = NlpEngineProvider(nlp_configuration=configuration).create_engine()
    registry = RecognizerRegistry(supported_languages=[settings.language])
    registry.load_predefined_recognizers(languages=[settings.language], nlp_engine=nlp_engine)
    for recognizer in registry.recognizers:
        if needs_a_digit(recognizer):
            recognizer.analyze = _only_with_digits(recognizer.analyze)  # type: ignore[method-assign]
    analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=[settings.language])
    known = set(analyzer.get_supported_entities(settings.language)) - set(_NOT_RECHECKED)
    return SecondOpinion(
        analyzer=analyzer,
        language=settings.language,
        entities=[entity for entity in settings.entities if entity in known],
        score_threshold=settings.score_threshold,
        batch_size=settings.batch_size,
    )


_DIGIT = re.compile(r"\d")


def needs_a_digit(recognizer: Any) -> bool:
    """True when ``recognizer`` provably finds nothing in a text without a digit (``\\d``, any script's digits).

    That holds for a pattern recognizer whose every regular expression must consume a digit to match
    (:func:`regex_needs_digit`, which reads the parsed expression) and for Presidio's phone recognizer, whose only
    source of candidates is python-phonenumbers' matcher pattern (checked the same way). Skipping such a recognizer on
    a text without a digit changes no finding: it is exact, not a filter.
    """
    from presidio_analyzer import PatternRecognizer
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    if type(recognizer) is PhoneRecognizer:
        from phonenumbers import phonenumbermatcher

        return regex_needs_digit(phonenumbermatcher._PATTERN.pattern, phonenumbermatcher._PATTERN.flags)
    if isinstance(recognizer, PatternRecognizer):
        patterns: list[Any] = list(getattr(recognizer, "patterns", []))
        flags = recognizer.global_regex_flags or 0
        return bool(patterns) and all(regex_needs_digit(pattern.regex, flags) for pattern in patterns)
    return False


def _only_with_digits(analyze: Callable[..., list]) -> Callable[..., list]:
    @functools.wraps(analyze)
    def gated(text: str, *args: Any, **kwargs: Any) -> list:
        return analyze(text, *args, **kwargs) if _DIGIT.search(text) else []

    return gated


def regex_needs_digit(pattern: str, flags: int = 0) -> bool:
    """True when every match of ``pattern`` contains a character of ``\\d`` (decided on the parsed expression).

    Conservative: look-arounds, back-references, conditionals and optional parts count as needing nothing, so a
    False may be a pattern that does need a digit; a True never is wrong.
    """
    import re._parser as parser  # the standard library's own regex parser (sre_parse)

    return _sequence_needs_digit(parser.parse(pattern, flags))


def _sequence_needs_digit(items: Any) -> bool:
    return any(_item_needs_digit(op, value) for op, value in items)


def _item_needs_digit(op: Any, value: Any) -> bool:
    import re._constants as c

    if op is c.LITERAL:
        return chr(value).isdecimal()
    if op is c.IN:
        return bool(value) and all(_class_item_is_digit(item_op, item) for item_op, item in value)
    if op is c.BRANCH:
        return all(_sequence_needs_digit(branch) for branch in value[1])
    if op is c.SUBPATTERN:
        return _sequence_needs_digit(value[-1])
    if op is c.ATOMIC_GROUP:
        return _sequence_needs_digit(value)
    if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
        low, _, item = value
        return low >= 1 and _sequence_needs_digit(item)
    return False


def _class_item_is_digit(op: Any, value: Any) -> bool:
    import re._constants as c

    if op is c.LITERAL:
        return chr(value).isdecimal()
    if op is c.RANGE:
        return ord("0") <= value[0] <= value[1] <= ord("9")
    return op is c.CATEGORY and value is c.CATEGORY_DIGIT


def _leaks(text: str, result: RecognizerResult, tokens: list[tuple[int, int]]) -> bool:
    """A second-scan finding is a leak unless it lies in our tokens or is no person by the gate's own rules.

    A PERSON finding must keep a word of letters outside our tokens ("<PERSON_3ca598ec> 3rd" is the token and a
    floor number) and must not be only a payment network's or a currency's name.
    """
    if any(start <= result.start and result.end <= end for start, end in tokens):
        return False
    if result.entity_type != "PERSON":
        return True
    found = list(text[result.start : result.end])
    for start, end in tokens:
        for i in range(max(start, result.start), min(end, result.end)):
            found[i - result.start] = " "
    rest = "".join(found)
    return bool(re.search(r"(?<!\w)[^\W\d_]{2,}(?!\w)", rest)) and not _GATE_NOT_PEOPLE.match(rest.strip())


def check_output(
    ids: Sequence[str],
    texts: Sequence[str | None],
    engine: PrivacyEngine,
    canaries: dict[str, list[str]],
    second_opinion: SecondOpinion | None = None,
) -> LeakReport:
    """Scan anonymised ``texts`` (row ids in ``ids``) for planted values and for anything a second scan still finds.

    The second scan is ``second_opinion`` when given (an independent detector), else ``engine``'s own analyzer. A
    finding that lies entirely inside one of our replacement tokens is ignored: ``<PERSON_3f9a1c0b>`` is the
    placeholder, not a person, and its hex digits are no bank detail.
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
        plain = [text for _, text in present]
        findings = second_opinion.analyze(plain) if second_opinion else analyze_texts(plain, engine)
    for (row, text), results in zip(present, findings, strict=True):
        spans = [match.span() for match in tokens.finditer(text)]
        leaked = {result.entity_type for result in results if _leaks(text, result, spans)}
        for entity in sorted(leaked):
            rescan_hits[entity].append(row)
    return LeakReport(
        rows_scanned=len(present),
        canaries_checked=sum(len(values) for values in canaries.values()),
        canary_hits=dict(canary_hits),
        rescan_hits=dict(rescan_hits),
    )
