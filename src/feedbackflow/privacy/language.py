"""Which language a row is written in, so that no text reaches a detector that cannot read it.

The anonymiser reads English (spaCy ``en``, English name lists, English context words), and so does the leak gate's
second scan: a Chinese message with a name, a mobile number, a resident id and a bank card came out of both with
nothing found. Each row's language is identified offline by py3langid (a naive Bayes model over byte n-grams of 97
languages, shipped inside its wheel; no download at run time) before anonymisation, and a row the configured detectors
cannot read (``anonymise.languages``) is held back with its language as the reason instead of passing unread.

Short rows ("Visa or Mastercard?", "Cancel Transaction") are where an identifier errs, so a row is held back only when
the covered languages together get less than ``anonymise.language_hold_below`` of the probability, and never when it
has fewer than ``anonymise.language_min_letters`` letters (digits and a word or two: nothing to tell a language by,
and nothing the English detector cannot read). Text py3langid reads as no language at all (``zxx``: card numbers,
IBANs and a word) counts as covered, since the shape recognizers read it in any language. Both knobs were chosen on
BANKING77 and HWU64 train and spaCy's example sentences of 66 languages (``benchmarks/bench_language.py``; figures in
``docs/privacy.md``).

:data:`LANGUAGE_VERSION` names the package version this code expects; :func:`load_language_filter` refuses another, so a
new model comes in only with a change to this file, which is a dependency of the anonymise stage (every row is
anonymised again) and part of the anonymise config hash.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from feedbackflow.errors import ConfigError

LANGUAGE_PACKAGE = "py3langid"
#: py3langid's label for text with no linguistic content (codes, numbers, "Card 4539..., IBAN GB82 WEST ..."): read by
#: the shape recognizers whatever the language, so it counts as covered.
NO_LANGUAGE = "zxx"
#: The language identifier this code was measured with: a different version is refused, not silently used.
LANGUAGE_VERSION = "0.4.0"


def language_model() -> str:
    """The language model's identity: package, version and the first 16 hex digits of its model file's SHA-256."""
    return f"{LANGUAGE_PACKAGE}=={LANGUAGE_VERSION} sha256:{_model_digest(str(_model_file()))}"


def _model_file() -> Path:
    from py3langid import langid

    return Path(langid.MODEL_DIR) / langid.MODEL_FILE


@functools.lru_cache(maxsize=4)
def _model_digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


@dataclass
class LanguageFilter:
    """Tells, for each text, the language it is written in when the configured detectors do not read it."""

    identifier: Any  # py3langid.langid.LanguageIdentifier with normalised probabilities
    covered: frozenset[str]
    hold_below: float
    min_letters: int

    def uncovered(self, texts: Sequence[str | None]) -> list[str | None]:
        """Per text: the most probable language when the covered languages are less likely than ``hold_below``
        (the row must be held back), else None (readable, too short to tell, or no text)."""
        return [self._language(text) if isinstance(text, str) else None for text in texts]

    def _language(self, text: str) -> str | None:
        if sum(character.isalpha() for character in text) < self.min_letters:
            return None
        ranked = self.identifier.rank(text)
        readable = self.covered | {NO_LANGUAGE}
        covered = sum(probability for language, probability in ranked if language in readable)
        if covered >= self.hold_below:
            return None
        # Named by the likeliest ISO 639-1 language: on a short text py3langid's regional varieties (Extremaduran
        # "ext" for Spanish, Cantonese "yue" for Chinese) may edge out the language they belong to.
        return next((str(code) for code, _ in ranked if len(code) == 2), str(ranked[0][0]))


def load_language_filter(languages: Sequence[str], hold_below: float, min_letters: int) -> LanguageFilter:
    """Load py3langid's bundled model for ``languages`` (ISO 639-1 codes the detectors read).

    Raises:
        ConfigError: py3langid is not the pinned version, or a language in ``anonymise.languages`` is not one it
            knows (it would never be identified, so every row of it would be held back).
    """
    installed = metadata.version(LANGUAGE_PACKAGE)
    if installed != LANGUAGE_VERSION:
        raise ConfigError(
            f"{LANGUAGE_PACKAGE} {installed} is installed, the anonymise stage was measured with {LANGUAGE_VERSION}: "
            "install the pinned version (requirements/constraints-3.11.txt)"
        )
    from py3langid.langid import LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(_model_file(), norm_probs=True)
    unknown = sorted(set(languages) - set(identifier.nb_classes))
    if unknown:
        raise ConfigError(f"anonymise.languages: {unknown} unknown to {LANGUAGE_PACKAGE} (ISO 639-1 codes, e.g. en)")
    return LanguageFilter(identifier, frozenset(languages), hold_below, min_letters)
