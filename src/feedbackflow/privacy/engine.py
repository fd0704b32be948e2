"""Build the analyzer from settings and run it over texts in batches: spaCy set-up, registry, findings clean-up.

Everything heavy (spaCy model, recognizers, the public suffix list) is loaded inside functions, never at import time.

The registry starts from **all of Presidio's predefined recognizers** for the configured entities (its card
recognizer with Luhn, ``US_SSN``, ``UK_NHS``, ``UK_NINO``, ``US_PASSPORT``, ``US_BANK_NUMBER``, IBAN, IP, ...) and adds
:mod:`feedbackflow.privacy.recognizers`. Three predefined recognizers are swapped for measured-better versions of
themselves: e-mail (offline suffix list, skipped without an ``@``), URL (skipped without a domain-like dot) and phone
(:class:`PhoneNumberRecognizer`: libphonenumber over ``anonymise.phone_regions`` plus any ``+CC`` number).

Findings are then cleaned (:func:`analyze_texts`):

* **trim, never drop**: a PERSON finding with a token holding a digit ("Amy Clarke 2nd floor") is cut to its name
  part ("Amy Clarke"); only a finding with no name part left is dropped; a handle ("@david_myers77") is kept whole;
* **lists**: when one name of a list ("Eklund, Marsh and Okoro") is a PERSON, every capitalised item of it is;
* **lower case**: a known first name followed by another word ("anna kowalski") is shown to spaCy title-cased,
  like names in capitals ("JAMES HOLLOWAY"); offsets do not change;
* a LOCATION that is a country or continent locates nobody and is kept (intents such as country_support need it);
  card networks and currencies tagged PERSON by the small model are kept too (:data:`_NON_PERSONAL_FINDINGS`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feedbackflow.errors import ConfigError
from feedbackflow.privacy import names, recognizers
from feedbackflow.privacy.pseudonym import PseudonymKey, load_key
from feedbackflow.privacy.spacy_model import resolve_spacy_model
from feedbackflow.settings import AnonymiseSettings

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry, RecognizerResult
    from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_anonymizer import AnonymizerEngine
    from spacy.language import Language

logger = logging.getLogger(__name__)

# Presidio's own spaCy mapping (conf/spacy.yaml), with the unmapped labels listed so they do not log a warning each.
_NER_MODEL_CONFIGURATION = {
    "model_to_presidio_entity_mapping": {
        "PER": "PERSON",
        "PERSON": "PERSON",
        "NORP": "NRP",
        "FAC": "LOCATION",
        "LOC": "LOCATION",
        "LOCATION": "LOCATION",
        "GPE": "LOCATION",
        "ORG": "ORGANIZATION",
        "ORGANIZATION": "ORGANIZATION",
        "DATE": "DATE_TIME",
        "TIME": "DATE_TIME",
    },
    "low_confidence_score_multiplier": 0.4,
    "low_score_entity_names": [],
    "labels_to_ignore": [
        *("ORG", "ORGANIZATION", "CARDINAL", "EVENT", "LANGUAGE", "LAW", "MONEY", "ORDINAL", "PERCENT", "PRODUCT"),
        *("QUANTITY", "WORK_OF_ART"),
    ],
}

# Findings made only of these words are not personal data: card networks and currencies the small model tags PERSON.
_NON_PERSONAL_FINDINGS = (
    r"\A(?:(?:visa|master ?card|matercard|maestro|amex|american express|atm|apple ?pay|google ?pay|paypal)\W*)+\Z",
    r"\A(?:dear[ ])?(?:sirs?|madam|sir or madam|tel|mob|fax)\W*\Z",
    r"\A(?:[a-z]+ )?(?:rubles?|roubles?|dollars?|euros?|pounds?|yen|francs?|pesos?|rupees?|yuan|zloty)\Z",
    # form labels and banking words the small model tags as a person or a place ("Reisepass-Nr", "Kontonummer",
    # "mi número de pasaporte", "Beneficiary IBAN", "Postcode"): devformats dev set
    r"\A(?:(?:mi|my|mon|ma|mein|meine|the|beneficiary|payee)\W+)*(?:(?:número|numero|numéro|n[°º]?)\W+(?:de\W+)?)?"
    r"(?:post ?code|postal code|zip(?: ?code)?|zipcode|plz|cep|eircode|ifsc|iban|bic|swift|sort(?: code)?|bsb|blz"
    r"|routing|transit|konto(?:nummer)?|kontonr|reisepass(?:nummer)?|passaporto|pasaporte|passeport|paspoort"
    r"(?:nummer)?|paszport|cuenta|compte|rekening(?:nummer)?|loan|payee|kod(?: pocztowy)?|nuban|clabe|acct)"
    r"(?:\W+(?:n|nr|no|number|code|pocztowy|de|cuenta|pasaporte|compte|passeport))*\W*\Z",
)


@functools.cache
def _non_personal() -> Any:
    import regex

    return regex.compile("|".join(_NON_PERSONAL_FINDINGS), flags=regex.IGNORECASE)


# spaCy components the analyzer does not read (about two thirds of the small model's time); see _slim_pipeline.
_UNUSED_PIPES = ("parser", "tagger", "attribute_ruler", "lemmatizer", "senter")


def placeholder(entity: str) -> str:
    """Return the typed placeholder that replaces a value of ``entity``, e.g. ``<EMAIL_ADDRESS>``."""
    return f"<{entity}>"


@contextlib.contextmanager
def _quiet(target: logging.Logger, level: int = logging.ERROR) -> Iterator[None]:
    previous = target.level
    target.setLevel(level)
    try:
        yield
    finally:
        target.setLevel(previous)


class _RedactArguments(logging.Filter):
    """Blank the arguments of a log record, which is where Presidio puts the text it is looking at."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple("<redacted>" for _ in record.args) if isinstance(record.args, tuple) else None
        return True


_PRESIDIO_LOGGERS = ("presidio-analyzer", "presidio-anonymizer")


@contextlib.contextmanager
def presidio_logs_without_text() -> Iterator[None]:
    """While analysing texts, keep Presidio's logs free of text (its levels capped, its log arguments blanked)."""
    # Presidio's DEBUG records carry analysed text verbatim, and its IBAN recognizer logs a failed candidate at ERROR.
    redactor = _RedactArguments()
    saved = []
    for name in _PRESIDIO_LOGGERS:
        target = logging.getLogger(name)
        saved.append((target, target.level))
        target.setLevel(max(target.getEffectiveLevel(), logging.WARNING))
        target.addFilter(redactor)
    try:
        yield
    finally:
        for target, level in saved:
            target.removeFilter(redactor)
            target.setLevel(level)


def nlp_configuration(language: str, model_name: str) -> dict:
    """The ``NlpEngineProvider`` configuration for one spaCy model serving ``language``."""
    return {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": language, "model_name": model_name}],
        "ner_model_configuration": _NER_MODEL_CONFIGURATION,
    }


def _context_enhancer(threshold: float) -> ContextAwareEnhancer:
    """Presidio's lemma context enhancer, skipped for texts where every finding already passes the threshold."""
    from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer

    class ThresholdContextEnhancer(LemmaContextAwareEnhancer):
        def enhance_using_context(  # type: ignore[no-untyped-def]
            self, text, raw_results, nlp_artifacts, recognizers, context=None
        ):
            if all(result.score >= threshold for result in raw_results):
                return raw_results
            return super().enhance_using_context(text, raw_results, nlp_artifacts, recognizers, context)

    return ThresholdContextEnhancer()


def _slim_pipeline(nlp: Language) -> None:
    """Disable the components the analyzer does not read (lemmas come from :func:`_fast_artifacts` instead)."""
    for pipe in _UNUSED_PIPES:
        if pipe in nlp.pipe_names:
            nlp.disable_pipe(pipe)
    if "tok2vec" in nlp.pipe_names:
        listeners = set(getattr(nlp.get_pipe("tok2vec"), "listening_components", []) or [])
        if not listeners & set(nlp.pipe_names):
            nlp.disable_pipe("tok2vec")


def _fast_artifacts(nlp_engine: SpacyNlpEngine) -> None:
    """Build Presidio's NLP artifacts from two arrays instead of two passes over spaCy ``Token`` objects.

    Presidio reads each token's lemma and offset (``[token.lemma_ for token in doc]``), which creates a Python object
    per token twice and was the largest cost after the NER model itself. The lemma is the lower-cased token (the
    lemmatizer is off, :func:`_slim_pipeline`), which is what the context words are compared with.
    """
    from presidio_analyzer.nlp_engine import NlpArtifacts
    from spacy.attrs import IDX, LOWER

    def doc_to_nlp_artifact(doc, language):  # type: ignore[no-untyped-def]
        columns = doc.to_array([LOWER, IDX])
        strings = doc.vocab.strings
        entities, scores = nlp_engine._get_updated_entities(  # type: ignore[attr-defined]
            nlp_engine._get_entities(doc),
            nlp_engine._get_scores_for_entities(doc),  # type: ignore[attr-defined]
        )
        return NlpArtifacts(
            entities=entities,
            tokens=doc,
            tokens_indices=columns[:, 1].tolist() if len(doc) else [],
            lemmas=[strings[value] for value in columns[:, 0].tolist()] if len(doc) else [],
            nlp_engine=nlp_engine,
            language=language,
            scores=scores,
        )

    nlp_engine._doc_to_nlp_artifact = doc_to_nlp_artifact  # type: ignore[method-assign]


# Predefined recognizers replaced by a measured-better version of the same check (see the module docstring).
_REPLACED = ("EmailRecognizer", "UrlRecognizer", "PhoneRecognizer")


def build_analyzer(settings: AnonymiseSettings, detector_dir: Path | None = None) -> AnalyzerEngine:
    """Build a Presidio ``AnalyzerEngine`` for ``settings.language`` backed by ``settings.spacy_model``, with the
    learned name detector in ``detector_dir`` when ``settings.detector`` is on.

    Raises:
        ConfigError: the spaCy model is not installed, or ``settings.entities`` names an entity no recognizer finds.
    """
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider, SpacyNlpEngine

    from feedbackflow.privacy.recognizers import cue, person

    language = settings.language
    model_name = resolve_spacy_model(settings.spacy_model)
    nlp_engine = NlpEngineProvider(nlp_configuration=nlp_configuration(language, model_name)).create_engine()
    if not isinstance(nlp_engine, SpacyNlpEngine):
        raise TypeError(f"expected a spaCy NLP engine, got {type(nlp_engine).__name__}")
    _slim_pipeline(nlp_engine.get_nlp(language))
    _fast_artifacts(nlp_engine)

    classes = recognizers.recognizer_classes()
    registry = RecognizerRegistry(supported_languages=[language])
    with _quiet(logging.getLogger("presidio-analyzer")):
        registry.load_predefined_recognizers(languages=[language], nlp_engine=nlp_engine)
    for name in _REPLACED:
        registry.remove_recognizer(name)
    added = [
        classes["email"](supported_language=language),
        classes["url"](supported_language=language),
        classes["phone"](settings.phone_regions, supported_language=language),
        classes["card"](supported_language=language),
        classes["address"](supported_language=language),
        classes["passport"](supported_language=language),
        classes["iban"](supported_language=language),
        classes["account"](supported_language=language),
        person.name_cue_recognizer(language),
        person.name_after_verb_recognizer(language),
        person.known_name_recognizer(language),
        *cue.cue_recognizers(language, settings.entities),
        *_learned_detector(settings, detector_dir),
    ]
    for recognizer in added:
        registry.add_recognizer(recognizer)
    for recognizer in _disabled_predefined(registry, settings.entities, language):
        registry.add_recognizer(recognizer)
    for recognizer in registry.recognizers:
        _skip_texts_without_digits(recognizer)
    names.warm_up(settings.spacy_model)  # the name and word lists load here, not inside the first batch

    analyzer = AnalyzerEngine(
        registry=registry,
        nlp_engine=nlp_engine,
        supported_languages=[language],
        default_score_threshold=settings.score_threshold,
        context_aware_enhancer=_context_enhancer(settings.score_threshold),
    )
    unsupported = unsupported_entities(analyzer, settings.entities, language)
    if unsupported:
        raise ConfigError(
            f"anonymise.entities: no recognizer for {unsupported} in language '{language}'; "
            f"remove them or add a recognizer"
        )
    return analyzer


def _learned_detector(settings: AnonymiseSettings, detector_dir: Path | None) -> list:
    """The learned detector's recognizer when ``anonymise.detector`` is on (none otherwise).

    Raises:
        ConfigError: the detector is on and ``detector_dir`` holds no trained detector.
    """
    if not settings.detector:
        return []
    from feedbackflow.privacy.detector import NameDetector
    from feedbackflow.privacy.recognizers.detector import LearnedNameRecognizer

    if detector_dir is None:
        raise ConfigError("anonymise.detector is on but no detector folder was given (models/detector)")
    detector = NameDetector.load(detector_dir, settings.detector_threshold)
    return [LearnedNameRecognizer(detector, supported_language=settings.language)]


# Entities whose every value holds a digit: their pattern recognizers need not look at a text without one.
_NUMERIC_ENTITIES = frozenset(
    {
        *("CREDIT_CARD", "IBAN_CODE", "US_SSN", "UK_NINO", "UK_NHS", "US_BANK_NUMBER", "US_PASSPORT", "PASSPORT"),
        *("UK_SORT_CODE", "UK_ACCOUNT_NUMBER", "DATE_OF_BIRTH", "AGE", "US_ITIN", "US_DRIVER_LICENSE"),
    }
)


def _skip_texts_without_digits(recognizer: object) -> None:
    """Make a pattern recognizer of numeric entities return nothing at once for a text without a digit."""
    from presidio_analyzer import PatternRecognizer

    if not isinstance(recognizer, PatternRecognizer) or not set(recognizer.supported_entities) <= _NUMERIC_ENTITIES:
        return
    analyze = recognizer.analyze

    def analyze_if_digits(text, entities, nlp_artifacts=None, regex_flags=None):  # type: ignore[no-untyped-def]
        if not _DIGIT.search(text):
            return []
        return analyze(text, entities, nlp_artifacts, regex_flags)

    recognizer.analyze = analyze_if_digits  # type: ignore[method-assign]


_DIGIT = re.compile(r"\d")


def _disabled_predefined(registry: RecognizerRegistry, entities: Sequence[str], language: str) -> list:
    """Presidio's predefined recognizers its default configuration leaves off (e.g. ``UkNinoRecognizer``) for the
    configured entities that nothing loaded finds yet."""
    from presidio_analyzer import PatternRecognizer, predefined_recognizers

    missing = set(entities) - {entity for r in registry.recognizers for entity in r.supported_entities}
    found = []
    for name in sorted(getattr(predefined_recognizers, "__all__", [])):
        cls = getattr(predefined_recognizers, name, None)
        if not missing or not isinstance(cls, type) or not issubclass(cls, PatternRecognizer):
            continue
        try:
            recognizer = cls(supported_language=language)  # type: ignore[call-arg]
        except Exception:
            continue
        if set(recognizer.supported_entities) & missing:
            found.append(recognizer)
            missing -= set(recognizer.supported_entities)
    return found


def unsupported_entities(analyzer: AnalyzerEngine, entities: Sequence[str], language: str) -> list[str]:
    """Return the entities in ``entities`` that no recognizer of ``analyzer`` detects in ``language``, sorted."""
    return sorted(set(entities) - set(analyzer.get_supported_entities(language)))


@dataclass
class PrivacyEngine:
    """A loaded analyzer and anonymizer plus the settings that say how to run them."""

    analyzer: AnalyzerEngine
    anonymizer: AnonymizerEngine
    language: str
    entities: list[str]
    score_threshold: float
    batch_size: int = 64
    model: str = ""
    operators: dict[str, str] = field(default_factory=dict)
    key: PseudonymKey | None = None
    hex_chars: int = 8

    def operator_for(self, entity: str) -> str:
        """``placeholder`` or ``pseudonym``: how values of ``entity`` are replaced."""
        return self.operators.get(entity, "placeholder")

    @property
    def key_id(self) -> str | None:
        """The id of the pseudonym key in use (never the key), or None when no entity is pseudonymised."""
        return self.key.key_id if self.key is not None else None


def _pipeline_name(analyzer: AnalyzerEngine, language: str) -> str:
    nlp = getattr(analyzer.nlp_engine, "nlp", None) or {}
    meta = nlp[language].meta if language in nlp else {}
    return f"{meta.get('lang', '')}_{meta.get('name', '')}-{meta.get('version', '')}".strip("_-")


def pseudonym_key(settings: AnonymiseSettings) -> PseudonymKey | None:
    """The pseudonym key when any configured entity is pseudonymised, else None; no model is loaded.

    Raises:
        ConfigError: an entity is to be pseudonymised and no key is set.
    """
    if any(settings.operator_for(entity) == "pseudonym" for entity in settings.entities):
        return load_key()
    return None


def build_engine(settings: AnonymiseSettings, detector_dir: Path | None = None) -> PrivacyEngine:
    """Load everything :func:`feedbackflow.privacy.replace.anonymise_texts` needs (loads the spaCy model, and the
    learned detector from ``detector_dir`` when ``anonymise.detector`` is on).

    Raises:
        ConfigError: an entity is to be pseudonymised and no key is set (checked before the model is loaded), the
            spaCy model is missing or an entity is unknown.
    """
    from presidio_anonymizer import AnonymizerEngine

    operators = {entity: settings.operator_for(entity) for entity in settings.entities}
    key = pseudonym_key(settings)
    analyzer = build_analyzer(settings, detector_dir)
    return PrivacyEngine(
        analyzer=analyzer,
        anonymizer=AnonymizerEngine(),
        language=settings.language,
        entities=list(settings.entities),
        score_threshold=settings.score_threshold,
        batch_size=settings.batch_size,
        model=_pipeline_name(analyzer, settings.language),
        operators=operators,
        key=key,
        hex_chars=settings.pseudonym_hex_chars,
    )


# Two or three words in capitals ("JAMES HOLLOWAY", "GÜNAYDIN ÖCALAN"): the small model tags almost none of them, in
# title case it does.
_CAPS_WORD = r"\p{Lu}{2,}(?:['\u2019-]\p{Lu}+)*"
_CAPS_RUN = rf"(?<!\p{{Lu}}[ \t])\b{_CAPS_WORD}(?:[ \t]{{1,2}}{_CAPS_WORD}){{1,2}}\b(?![ \t]{{1,2}}\p{{Lu}}{{2}})"
_ACRONYMS = frozenset(
    {
        *("ATM", "PIN", "IBAN", "BIC", "SWIFT", "SEPA", "BACS", "CHAPS", "CVV", "CVC", "OTP", "USD", "GBP", "EUR"),
        *("UK", "US", "USA", "EU", "ID", "APP", "FAQ", "ISA", "PDF", "SMS", "NFC", "SSN", "DOB", "NI", "ZIP"),
    }
)
# Lower-case words, each with where it starts: "anna kowalski", "akira tanaka", "sonia gutiérrez".
_LOWER_WORD = r"(?<![\w@./-])\p{Ll}[\p{Ll}'\u2019-]+(?![\w@/-])"


@functools.cache
def _case_patterns() -> tuple[Any, Any]:
    import regex

    return regex.compile(_CAPS_RUN), regex.compile(_LOWER_WORD)


def _title_case_run(match: Any) -> str:
    run = match.group(0)
    titled = run.title()
    return run if _ACRONYMS & set(run.split()) or len(titled) != len(run) else titled


def _title_case_name_pairs(text: str, lower_word: Any) -> str:
    """Title-case every lower-case first name + surname pair; pairs overlap ("to anna kowalski" tries both)."""
    words = [(m.start(), m.end()) for m in lower_word.finditer(text)]
    chars, skip = list(text), -1
    for n in range(len(words) - 1):
        (s1, e1), (s2, e2) = words[n], words[n + 1]
        if n <= skip or not 1 <= s2 - e1 <= 2 or text[e1:s2].strip(" "):
            continue
        first, last = text[s1:e1], text[s2:e2]
        if names.is_name_pair(first, last):
            titled = first.title() + text[e1:s2] + last.title()
            if len(titled) == e2 - s1:
                chars[s1:e2] = titled
                skip = n + 1
    return "".join(chars)


def case_normalised(text: str) -> str:
    """``text`` with capital runs and lower-case first-name pairs in title case; offsets are unchanged."""
    caps_run, lower_word = _case_patterns()
    if any(c.isupper() for c in text):
        text = caps_run.sub(_title_case_run, text)
    return _title_case_name_pairs(text, lower_word) if any(c.islower() for c in text) else text


def analyze_texts(texts: Sequence[str], engine: PrivacyEngine) -> list[list[RecognizerResult]]:
    """Run the analyzer over ``texts`` in spaCy batches; return the cleaned findings of each text, in order.

    The analyzer sees :func:`case_normalised` text, whose character offsets equal the original's.
    """
    import regex
    from presidio_analyzer import BatchAnalyzerEngine

    if not texts:
        return []
    shown = [case_normalised(text) for text in texts]
    learned = _learned_recognizer(engine)
    if learned is not None:
        learned.prime(shown)
    findings = BatchAnalyzerEngine(engine.analyzer).analyze_iterator(
        shown,
        language=engine.language,
        batch_size=engine.batch_size,
        entities=engine.entities,
        score_threshold=engine.score_threshold,
        allow_list=list(_NON_PERSONAL_FINDINGS),
        allow_list_match="regex",
        regex_flags=regex.IGNORECASE,
    )
    return [_clean(text, results) for text, results in zip(shown, findings, strict=True)]


def _learned_recognizer(engine: PrivacyEngine) -> Any:
    registry = engine.analyzer.registry
    return next((r for r in registry.recognizers if getattr(r, "name", "") == "LearnedNameRecognizer"), None)


def _clean(text: str, results: list[RecognizerResult]) -> list[RecognizerResult]:
    cleaned = []
    for result in results:
        if result.entity_type == "PERSON":
            trimmed = _trimmed(text, result)
            if trimmed is not None:
                cleaned.append(trimmed)
        elif result.entity_type != "LOCATION" or _without_article(text[result.start : result.end]) not in _regions():
            cleaned.append(result)
    cleaned += _list_names(text, cleaned)
    cleaned += _letter_head_names(text, cleaned)
    # A Luhn-valid number found after an account cue is that account, not a card ("account 4826585207546551"); a
    # number read as an account or a bank code is not also a phone number, an NHS number, a postcode or a place
    # ("BSB 062-000", "Konto-Nr. 3880709", "35-43-14 2907 1972"), unless written +CC.
    banks = [r for r in cleaned if r.entity_type in _BANK_ENTITIES]
    if banks:
        cleaned = [r for r in cleaned if not _shadowed_by_bank(text, r, banks)]
    # A number read as a passport number near its cue is not also a phone number ("new number 70 9859105", which
    # the context word "number" lifts above the passport's score), unless written +CC.
    passports = [r for r in cleaned if r.entity_type == "PASSPORT"]
    if passports:
        cleaned = [
            r
            for r in cleaned
            if r.entity_type != "PHONE_NUMBER"
            or text[r.start : r.end].lstrip("(").startswith("+")
            or not any(p.start < r.end and r.start < p.end for p in passports)
        ]
    # A name inside a street, a URL or an e-mail address is part of that value ("Khatri Road", "github.com/jdoe").
    # A single word right after a street or a postcode is its town ("Nevská 5 (Split)", "23644 Pune"), not a person;
    # so are the words right before a postcode with no comma between, or right after one at the end of a line ("Den
    # Haag (6993GM)", "Breda 8112 NL", "9373 WK DEN HAAG": devwritten dev set). With a comma between ("Ship to: Adaeze
    # Okonkwo, BA1 1AA") the words may be a name, and a dropped name is a leak, so they stay.
    containers = [r for r in cleaned if r.entity_type in _CONTAINERS]
    places = [r.end for r in cleaned if r.entity_type in ("STREET_ADDRESS", "POSTCODE")]
    codes = [(r.start, r.end) for r in cleaned if r.entity_type == "POSTCODE"]
    cleaned = [
        r
        for r in cleaned
        if r.entity_type != "PERSON"
        or not (
            any(c.start < r.end and r.start < c.end for c in containers)
            or (
                " " not in text[r.start : r.end] and any(re.fullmatch(r"[ ,(]{1,3}", text[e : r.start]) for e in places)
            )
            or any(re.fullmatch(r"[ ]{1,2}\(?", text[r.end : s]) for s, _ in codes)
            or any(
                s <= r.start
                and (r.start < e or re.fullmatch(r"[ ]{1,2}", text[e : r.start]))
                and re.match(r"[ ]*(?:[,.;)]|\n|$)", text[r.end :])
                for s, e in codes
            )
        )
    ]
    # A name or a place found around a stronger value of another type keeps only its words outside that value
    # ("FI67.3376.7167.4537.02 Berlin" -> "Berlin"; "IBANAT64..." -> nothing): else the anonymizer drops the value
    # inside the longer finding and replaces an IBAN as a place (probe_iban_dev, dev generators' IBANs).
    cleaned = [part for r in cleaned for part in _outside_stronger(text, r, cleaned)]
    # A finding inside a stronger one of another type is that one's part ("12345678" after "account number" is the
    # account, not a phone number), as Presidio's anonymizer would resolve it.
    return [
        r
        for r in cleaned
        if not any(
            o is not r
            and o.entity_type != r.entity_type
            and o.start <= r.start
            and r.end <= o.end
            and o.score > r.score
            for o in cleaned
        )
    ]


def _outside_stronger(text: str, result: RecognizerResult, findings: list[RecognizerResult]) -> list[RecognizerResult]:
    """``result`` (a PERSON or LOCATION) as the runs of its words that overlap no stronger finding of another type
    inside it; a run with no letters, or only a form label ("IBAN"), is dropped. Any other finding is kept as it is."""
    if result.entity_type not in ("PERSON", "LOCATION"):
        return [result]
    inner = [
        o
        for o in findings
        if o.entity_type != result.entity_type
        and o.score > result.score
        and result.start <= o.start
        and o.end <= result.end
        and o.end - o.start < result.end - result.start
    ]
    if not inner:
        return [result]
    runs: list[list[tuple[int, int]]] = [[]]
    for match in _TOKEN.finditer(text, result.start, result.end):
        if any(o.start < match.end() and match.start() < o.end for o in inner):
            runs.append([])
        else:
            runs[-1].append(match.span())
    parts = []
    for run in filter(None, runs):
        start, end = run[0][0], run[-1][1]
        while end > start and not text[end - 1].isalnum():
            end -= 1
        value = text[start:end]
        if any(c.isalpha() for c in value) and not _non_personal().search(value):
            parts.append(_part(result, start, end))
    return parts


def _part(result: RecognizerResult, start: int, end: int) -> RecognizerResult:
    from presidio_analyzer import RecognizerResult as Result

    return Result(
        result.entity_type,
        start,
        end,
        result.score,
        analysis_explanation=result.analysis_explanation,
        recognition_metadata=result.recognition_metadata,
    )


_CONTAINERS = frozenset({"STREET_ADDRESS", "URL", "EMAIL_ADDRESS"})
_BANK_ENTITIES = frozenset({"UK_ACCOUNT_NUMBER", "US_BANK_NUMBER", "UK_SORT_CODE"})
_BANK_SHADOWED = frozenset({"CREDIT_CARD", "UK_NHS", "PHONE_NUMBER", "POSTCODE", "LOCATION", "PERSON"})


def _shadowed_by_bank(text: str, result: RecognizerResult, banks: list[RecognizerResult]) -> bool:
    """``result`` is a card, NHS number, phone number, postcode or place overlapping a bank finding (a card or a
    person only inside it, "HONQ 7512 4293 7868 67", a phone number only when not written with +CC)."""
    if result.entity_type not in _BANK_SHADOWED:
        return False
    if result.entity_type in ("CREDIT_CARD", "PERSON"):
        return any(b.start <= result.start and result.end <= b.end for b in banks)
    if result.entity_type == "PHONE_NUMBER" and text[result.start : result.end].lstrip("(").startswith("+"):
        return False
    return any(b.start < result.end and result.start < b.end for b in banks)


_TOKEN = re.compile(r"\S+")


def _trimmed(text: str, result: RecognizerResult) -> RecognizerResult | None:
    """``result`` cut to the name words before its first token holding a digit (or capitalised words after it).

    "Amy Clarke 2nd floor" -> "Amy Clarke"; "4921 Amy Clarke" -> "Amy Clarke"; "Card 4921" -> "Card" (kept: a false
    positive costs one word, a dropped name is a leak). Only a finding with no name part left is dropped.
    """
    found = text[result.start : result.end]
    tokens = [(m.start(), m.end()) for m in _TOKEN.finditer(found)]
    before = text[: result.start]
    numeric = [_numeric(found, tokens, i, before) for i in range(len(tokens))]
    if not any(numeric):
        return result
    digit_at = numeric.index(True)
    after = [t for t, is_numeric in zip(tokens[digit_at + 1 :], numeric[digit_at + 1 :], strict=True) if not is_numeric]
    keep = tokens[:digit_at] or [t for t in after if found[t[0]].isupper()]
    if not keep:
        return None
    start, end = keep[0][0], keep[-1][1]
    while end > start and not found[end - 1].isalnum():
        end -= 1
    if not any(c.isalpha() for c in found[start:end]) or not _name_like(found[start:end]):
        return None
    if _non_personal().search(found[start:end]):  # "Konto 68126601" trimmed to "Konto" is a form label
        return None
    result.start, result.end = result.start + start, result.start + end
    return result


_HANDLE = re.compile(r"@?(?!\d)\w{1,30}")  # not "@ 5pm"


def _numeric(found: str, tokens: list[tuple[int, int]], i: int, before: str) -> bool:
    """Token ``i`` of a finding holds a digit and is no social media handle: "@david_myers77", or "mansell79" after
    an "@" (tweets' person mentions are mostly handles, and a handle names a person, digits and all)."""
    word = found[tokens[i][0] : tokens[i][1]]
    if not any(c.isdigit() for c in word):
        return False
    after_at = (found[tokens[i - 1][0] : tokens[i - 1][1]] == "@") if i else before.endswith(("@", "@ "))
    return not (_HANDLE.fullmatch(word) and (word.startswith("@") or after_at))


def _name_like(value: str, strict: bool = False) -> bool:
    """Some word (``strict``: every word) of ``value`` is a known name or no English word ("Amy Clarke", "Okafor";
    not "Order")."""
    words = re.findall(r"[^\W\d_]+", value)
    check = all if strict else any
    return bool(words) and check(names.is_first_name(word) or names.is_surname_like(word) for word in words)


_CAP_NAME = r"\p{Lu}[\w'\u2019-]*\p{Ll}[\w'\u2019-]*(?:[ ]\p{Lu}[\w'\u2019-]*\p{Ll}[\w'\u2019-]*){0,2}"
_LIST = rf"{_CAP_NAME}(?:(?:,[ ]|,?[ ](?:and|or|&)[ ]){_CAP_NAME})+"
# Words that say the list after them names people: "founders: Eklund, Marsh and Okoro".
_PEOPLE_CUE = (
    r"\b(?i:founders|staff|agents?|advisers|advisors|colleagues|neighbours|neighbors|people|persons|members|managers"
    r"|holders|directors|partners|team|tenants|witnesses|signatories|attendees|employees|names|cc|with|by|from)\b"
    r"[^.!?\n]{0,25}$"
)


@functools.cache
def _list_patterns() -> tuple[Any, Any, Any]:
    import regex

    return regex.compile(_LIST), regex.compile(_CAP_NAME), regex.compile(_PEOPLE_CUE)


def _list_names(text: str, results: list[RecognizerResult]) -> list[RecognizerResult]:
    """Every item of a list of capitalised names that is a list of people.

    A list is one of people when one of its items is already a PERSON finding, or when every item is name-like (a
    known name or no English word) and a word before it says it names people ("staff on duty: Carnero and Olaya").
    Findings of another type on its items (the small model tags many surnames as places) give way.
    """
    from presidio_analyzer import RecognizerResult

    if "," not in text and " and " not in text and " or " not in text and " & " not in text:
        return []
    chain_pattern, item_pattern, cue = _list_patterns()
    people = [(r.start, r.end) for r in results if r.entity_type == "PERSON"]
    added = []
    for chain in chain_pattern.finditer(text):
        if not re.search(r" (?:and|or|&) ", chain.group(0)):  # "Regards, Thomas Baker" is no list
            continue
        items = [(chain.start() + m.start(), chain.start() + m.end()) for m in item_pattern.finditer(chain.group(0))]
        named = any(s < pe and ps < e for s, e in items for ps, pe in people)
        if not named and not (
            cue.search(text, max(0, chain.start() - 60), chain.start())
            and all(_name_like(text[s:e], strict=True) for s, e in items)
        ):
            continue
        added += [
            RecognizerResult("PERSON", s, e, 0.7, recognition_metadata={"recognizer_name": "NameListRule"})
            for s, e in items
            if not any(ps <= s and e <= pe for ps, pe in people)
        ]
    if added:
        results[:] = [
            r
            for r in results
            if r.entity_type not in ("LOCATION", "ORGANIZATION")
            or not any(a.start < r.end and r.start < a.end for a in added)
        ]
    return added


_HEAD_LINE = re.compile(r"(?:(?:Mr|Mrs|Ms|Miss|Mx|Dr)\.?[ ])?[^\W\d_][\w'\u2019.-]*(?:[ ][^\W\d_][\w'\u2019.-]*){0,3}")


def _letter_head_names(text: str, results: list[RecognizerResult]) -> list[RecognizerResult]:
    """The line above a street address that starts a line, when it is a name: a letter head or a form's top lines
    ("Tomasz Wrona\\nPod Lipami 14\\n612 00 Brno")."""
    from presidio_analyzer import RecognizerResult

    added = []
    for street in (r for r in results if r.entity_type == "STREET_ADDRESS"):
        if street.start < 2 or text[street.start - 1] != "\n":
            continue
        line_start = text.rfind("\n", 0, street.start - 1) + 1
        line = text[line_start : street.start - 1].strip()
        start = line_start + text[line_start:].index(line[:1]) if line else 0
        if not line or not _HEAD_LINE.fullmatch(line) or not line[0].isupper():
            continue
        if any(r.start < start + len(line) and start < r.end for r in results if r.entity_type == "PERSON"):
            continue
        if _name_like(line, strict=True):
            added.append(
                RecognizerResult(
                    "PERSON", start, start + len(line), 0.7, recognition_metadata={"recognizer_name": "LetterHeadRule"}
                )
            )
    return added


def _without_article(value: str) -> str:
    value = " ".join(value.casefold().split())
    return value[4:] if value.startswith("the ") else value


_REGIONS = (
    *("UK", "U.K.", "US", "U.S.", "U.S", "USA", "U.S.A.", "EU", "E.U.", "EEA", "Europe", "European Union"),
    *("European Economic Area", "America", "Africa", "Asia", "Oceania", "Scandinavia", "Middle East"),
    *("Latin America", "South America", "North America", "Britain", "Great Britain", "England", "Scotland"),
    *("Wales", "Northern Ireland", "United Kingdom", "United States", "United States of America"),
)


@functools.cache
def _regions() -> frozenset[str]:
    from faker.providers.address.en import Provider

    return frozenset(_without_article(name) for name in (*Provider.countries, *_REGIONS))
