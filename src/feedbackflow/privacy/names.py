"""Name lists behind the lower-case and known-first-name rules: Faker's person lists and the model's English words.

The first and last names come from Faker's person providers of :data:`_GAZETTEER_LOCALES`. The locked test set's
locales are left out on purpose, so the lists cannot have been fitted to it (README, "PII sets"). English words come
from the lemmatizer tables of the configured spaCy model (``anonymise.spacy_model``, handed over by :func:`warm_up`):
WordNet lemmas, their irregular forms, and their regular inflections by the lemmatizer's own rules, so "floor said",
"grace period" or "job sites" is not taken for a name.
"""

from __future__ import annotations

import functools
import importlib
import re
from typing import Any

from feedbackflow.errors import ConfigError

# Faker locales whose first names make the lower-case name list. The locked test set's locales are left out on
# purpose, so the list cannot have been fitted to it (README, "PII sets").
_GAZETTEER_LOCALES = (
    *("en_GB", "en_US", "en_IE", "en_IN", "en_KE", "en_NG", "en_PK", "de_DE", "de_CH", "fr_FR", "fr_BE", "es_ES"),
    *("es_MX", "es_AR", "nl_NL", "nl_BE", "da_DK", "no_NO", "cs_CZ", "sk_SK", "ro_RO", "hr_HR", "sl_SI", "lt_LT"),
    *("lv_LV", "et_EE", "tr_TR", "id_ID", "sw", "yo_NG", "ig_NG", "zu_ZA", "ga_IE", "is_IS"),
)
# First names that are also everyday English words; a lower-case one is never taken for a name.
_COMMON_WORDS = frozenset(
    (
        *("will", "may", "mark", "bill", "grant", "rose", "pat", "sue", "art", "ray"),
        *("dean", "max", "page", "chase", "summer", "hope", "faith", "joy", "honey", "sunny", "guy", "jack", "frank"),
        *("rich", "penny", "sandy", "rusty", "buck"),
        *("bob", "don", "ken", "long", "young", "gay", "king", "miles", "norman", "paris", "sky", "star"),
        *("love", "precious", "blessing", "gift", "happy", "lucky", "rock", "stone", "son", "man", "ma", "pa"),
        *("card", "bank", "cash", "app", "so", "per", "an", "my", "me", "it", "us", "in", "on", "at", "by", "to"),
    )
)


@functools.cache
def _names(attributes: tuple[str, ...], english_only: bool = False, everyday: bool = False) -> frozenset[str]:
    names: set[str] = set()
    for locale in _GAZETTEER_LOCALES:
        if english_only and not locale.startswith("en"):
            continue
        provider = importlib.import_module(f"faker.providers.person.{locale}").Provider
        for attribute in attributes:
            values = getattr(provider, attribute, ())
            names.update(
                str(value).casefold() for value in values if re.fullmatch(r"[^\W\d_]+(?:['’-][^\W\d_]+)*", str(value))
            )
    return frozenset(name for name in names if len(name) > 2) - (frozenset() if everyday else _COMMON_WORDS)


_FIRST = ("first_names", "first_names_male", "first_names_female")

# The spaCy model whose English words the lists use: set by warm_up (the analyzer passes anonymise.spacy_model).
_spacy_model: dict[str, str] = {}


def _configured_model() -> str:
    """The model :func:`warm_up` was given; before any, the project's ``anonymise.spacy_model`` (``params.yaml``)."""
    if "name" not in _spacy_model:
        from feedbackflow.config import ProjectPaths
        from feedbackflow.settings import load_settings

        _spacy_model["name"] = load_settings(ProjectPaths.discover().params).anonymise.spacy_model
    return _spacy_model["name"]


def english_words() -> frozenset[str]:
    """English words from the configured spaCy model's lemmatizer tables (WordNet lemmas and irregular forms)."""
    return _english_words(_configured_model())


@functools.cache
def _english_words(spacy_model: str) -> frozenset[str]:
    lookups = _lemmatizer_lookups(spacy_model)
    if lookups is None:
        return frozenset()
    words: set[str] = set()
    for name, table in (
        ("lemma_index", lookups.get_table("lemma_index")),
        ("lemma_exc", lookups.get_table("lemma_exc")),
    ):
        for key in table:
            words.update(table[key] if name == "lemma_index" else table[key].keys())
    return frozenset(words)


@functools.cache
def _lemmatizer_lookups(spacy_model: str) -> Any:
    """The lemmatizer tables of ``spacy_model``, or None where it has none (loaded once per process)."""
    import spacy.util

    from feedbackflow.privacy.spacy_model import resolve_spacy_model

    try:
        nlp = spacy.util.load_model(resolve_spacy_model(spacy_model), disable=["ner", "parser"])
    except ConfigError:  # a custom model folder without the default pipeline: no word list, fewer names found
        return None
    if "lemmatizer" not in nlp.pipe_names:
        return None
    return nlp.get_pipe("lemmatizer").lookups  # type: ignore[attr-defined]


def is_english(word: str) -> bool:
    """``word`` (lower case) is an English word: a lemma or irregular form of :func:`english_words`, or a regular
    inflection of a lemma by the lemmatizer's own rules ("sites", "babies", "gets", "braver"). A surname of the lists
    is read by its lemma alone: "davies" and "rivers" look inflected ("davy", "river") but are names first."""
    if word in english_words():
        return True
    if word in _names(("last_names",)):
        return False
    return any(
        word.endswith(suffix) and len(word) > len(suffix) + 1 and word[: len(word) - len(suffix)] + lemma_end in lemmas
        for suffix, lemma_end, lemmas in _inflection_rules(_configured_model())
    )


@functools.cache
def _inflection_rules(spacy_model: str) -> tuple[tuple[str, str, frozenset[str]], ...]:
    """(suffix, lemma ending, lemmas of that part of speech) of the model's rule lemmatizer: ("ies", "y", nouns)."""
    lookups = _lemmatizer_lookups(spacy_model)
    if lookups is None:
        return ()
    rules, index = lookups.get_table("lemma_rules"), lookups.get_table("lemma_index")
    lemmas = {pos: frozenset(index[pos]) for pos in rules if pos in index}  # one set per part of speech, shared
    return tuple((suffix, lemma_end, lemmas[pos]) for pos in lemmas for suffix, lemma_end in rules[pos] if suffix)


def is_name_pair(first: str, last: str) -> bool:
    """A lower-case first name followed by a surname-like word: "anna kowalski", "maria santos", not "floor said"."""
    from spacy.lang.en.stop_words import STOP_WORDS

    if last in STOP_WORDS or last in _COMMON_WORDS:
        return False
    if first not in _names(_FIRST):
        # "mark davies": an everyday word that is also a first name, before a surname that is no English word
        return first in _names(_FIRST, everyday=True) and last in _names(("last_names",)) and not is_english(last)
    if not is_english(last):
        return True
    return last in _names(("last_names",)) and (not is_english(first) or first in _names(_FIRST, english_only=True))


def is_first_name(word: str) -> bool:
    """``word`` (any case) is a first name of the lists; capitalised, "June" or "Will" count too."""
    folded = word.casefold()
    return folded in _names(_FIRST) or (word[:1].isupper() and folded in _names(_FIRST, everyday=True))


def warm_up(spacy_model: str) -> None:
    """Take the English words of ``spacy_model`` (``anonymise.spacy_model``) and load every list now.

    Loading the words loads that spaCy pipeline: done here, the first texts analysed do not pay for it.
    """
    _spacy_model["name"] = spacy_model
    english_words()
    _inflection_rules(spacy_model)
    stop_words()
    _names(_FIRST)
    _names(_FIRST, everyday=True)
    _names(_FIRST, english_only=True)
    _names(("last_names",))


def is_surname_like(word: str) -> bool:
    """``word`` (any case) is a surname of the lists or no English word: "Nielsen", "Okafor"; not "Thanks"."""
    folded = word.casefold()
    return folded in _names(("last_names",)) or not is_english(folded)


@functools.cache
def stop_words() -> frozenset[str]:
    """spaCy's English stop words plus the everyday words that are also first names."""
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS) | _COMMON_WORDS
