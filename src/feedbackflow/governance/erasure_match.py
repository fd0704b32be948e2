"""Finding one person's rows: identifiers in normalised forms, compared as keyed hashes, in text and in columns.

An erasure subject is given by any of an e-mail address, a phone number, a customer or account id and a name. Each
is normalised so that the ways people write it compare equal:

* e-mail: trimmed and case-folded (``Jane.Roe@Example.COM`` = ``jane.roe@example.com``);
* phone: the national significant number, digits only (``+44 7700 900123``, ``07700-900 123`` and
  ``0044 (0)7700 900123`` all become ``7700900123``); libphonenumber parses it when it can, and a number in text
  matches when its digits end with it, whatever the country prefix or trunk zero;
* customer or account id: NFKC, case-folded, with spaces, dashes and underscores removed (``ACC-00 42`` =
  ``acc0042``); in text only tokens holding a digit are read as ids;
* name: NFKC, case-folded, runs of spaces collapsed; in text a name matches as whole words.

Only keyed hashes of these forms are ever stored (:class:`ErasureKey`): the erased-subjects list, the certificate
and the logs hold ``blake2b(key, kind:value)`` and nothing a reader could turn back into the person. Matching works
on the hashes too, so the same code finds the subject during the erasure and stops a re-delivery in validate.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from feedbackflow.errors import ConfigError

KEY_ENV = "FEEDBACKFLOW_ERASURE_KEY"
#: Used when no erasure key is set: the pseudonym key is as secret, and already held by the workers.
FALLBACK_KEY_ENV = "FEEDBACKFLOW_PSEUDONYM_KEY"
MIN_KEY_CHARS = 16
KINDS = ("email", "phone", "customer_id", "name")
#: Shortest national number a phone identifier may have: shorter digit runs match far too much.
MIN_PHONE_DIGITS = 7

EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
PHONE = re.compile(r"\+?\(?\d[\d\s().-]{5,}\d")
TOKEN = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]*[0-9A-Za-z]")
WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
#: Separators the pre-filter ignores on both sides, so ``7700.900 123`` still shows the fragment ``0123``.
SEPARATORS = re.compile(r"[\s_.()+-]+")


@dataclass(frozen=True)
class ErasureKey:
    """The secret of the keyed hashes; ``repr`` shows the key id only."""

    secret: bytes = field(repr=False)

    @property
    def key_id(self) -> str:
        """A short id of this key (safe to record: it cannot be used to compute hashes)."""
        return hmac.new(self.secret, b"erasure-key-id", hashlib.sha256).hexdigest()[:12]

    def digest(self, kind: str, value: str) -> str:
        """The keyed hash of one normalised identifier."""
        data = f"{kind}:{value}".encode()
        return hashlib.blake2b(data, key=self.secret[:64], digest_size=16).hexdigest()

    def __repr__(self) -> str:
        return f"ErasureKey(key_id={self.key_id!r})"


def load_key(environ: Mapping[str, str] | None = None) -> ErasureKey:
    """The erasure key from ``FEEDBACKFLOW_ERASURE_KEY``, else ``FEEDBACKFLOW_PSEUDONYM_KEY``.

    Raises:
        ConfigError: neither is set, or the key is shorter than 16 characters.
    """
    environ = os.environ if environ is None else environ
    secret = environ.get(KEY_ENV) or environ.get(FALLBACK_KEY_ENV) or ""
    if not secret:
        raise ConfigError(
            f"erasure needs a key for its keyed hashes: set {KEY_ENV} (or {FALLBACK_KEY_ENV}) to at least "
            f"{MIN_KEY_CHARS} random characters; the same key must be set wherever validate runs"
        )
    if len(secret) < MIN_KEY_CHARS:
        raise ConfigError(f"{KEY_ENV} is too short: use at least {MIN_KEY_CHARS} random characters")
    return ErasureKey(secret.encode("utf-8"))


def _nfkc(value: str) -> str:
    return unicodedata.normalize("NFKC", value)


def normalise_email(value: str) -> str:
    """``Jane.Roe@Example.COM `` -> ``jane.roe@example.com`` (a ``mailto:`` prefix dropped)."""
    value = _nfkc(value).strip().casefold()
    return value.removeprefix("mailto:")


def normalise_phone(value: str, region: str = "GB") -> str:
    """The national significant number, digits only; ``region`` reads numbers written without ``+``.

    Raises:
        ValueError: fewer than 7 digits remain (too short to identify anyone).
    """
    import phonenumbers

    text = _nfkc(value).replace("(0)", "")
    try:
        number = phonenumbers.parse(text, None if text.strip().startswith("+") else region)
        national = phonenumbers.national_significant_number(number)
    except phonenumbers.NumberParseException:
        national = re.sub(r"\D", "", text).lstrip("0")
    if len(national) < MIN_PHONE_DIGITS:
        raise ValueError(f"a phone number needs at least {MIN_PHONE_DIGITS} digits after the country code")
    return national


def normalise_id(value: str) -> str:
    """``ACC-00 42`` -> ``acc0042``."""
    return re.sub(r"[\s_-]+", "", _nfkc(value)).casefold()


def normalise_name(value: str) -> str:
    """``  Jane   ROE`` -> ``jane roe``."""
    return " ".join(_nfkc(value).casefold().split())


NORMALISERS = {"email": normalise_email, "phone": normalise_phone, "customer_id": normalise_id, "name": normalise_name}


def subject_forms(identifiers: Mapping[str, Iterable[str]]) -> dict[str, set[str]]:
    """The normalised forms of a subject's identifiers, by kind (blank values dropped).

    Raises:
        ValueError: an unknown kind, an unusable phone number, or no identifier at all.
    """
    forms: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for kind, values in identifiers.items():
        if kind not in NORMALISERS:
            raise ValueError(f"unknown identifier kind {kind!r} (known: {', '.join(KINDS)})")
        forms[kind] |= {NORMALISERS[kind](value) for value in values if value and value.strip()}
    forms = {kind: {form for form in found if form} for kind, found in forms.items()}
    if not any(forms.values()):
        raise ValueError("no identifier given: pass at least one of --email, --phone, --customer-id, --name")
    return forms


@dataclass(frozen=True)
class Matcher:
    """Finds values holding any of a set of keyed identifier hashes.

    Attributes:
        key: The erasure key the hashes were made with.
        hashes: Keyed hashes of the normalised identifiers.
        name_words: Word counts of the erased names (text is read in word n-grams of these lengths).
        literals: Case-folded fragments one of which any matching value holds; a cheap pre-filter, only known
            while the plain identifiers are at hand (during an erasure), empty otherwise.
    """

    key: ErasureKey
    hashes: frozenset[str] = field(repr=False)
    name_words: tuple[int, ...] = ()
    literals: tuple[str, ...] = field(default=(), repr=False)  # fragments of the identifiers: never in a log

    @classmethod
    def for_subject(cls, key: ErasureKey, forms: Mapping[str, set[str]]) -> Matcher:
        """The matcher of one subject, from :func:`subject_forms`."""
        hashes = frozenset(key.digest(kind, value) for kind, values in forms.items() for value in values)
        words = tuple(sorted({len(name.split()) for name in forms.get("name", ())}))
        literals = [*forms.get("email", ()), *(phone[-4:] for phone in forms.get("phone", ()))]
        literals += [max(name.split(), key=len) for name in forms.get("name", ())]
        literals += [value[-3:] for value in forms.get("customer_id", ())]
        compact = {SEPARATORS.sub("", literal) for literal in literals}
        return cls(key, hashes, words, tuple(sorted(literal for literal in compact if literal)))

    def candidates(self, value: str) -> set[tuple[str, str]]:
        """Every normalised identifier ``value`` may hold, as ``(kind, form)`` pairs (the value whole, and in text)."""
        text = _nfkc(value).casefold()
        found = {("email", normalise_email(email)) for email in EMAIL.findall(text)}
        for run in PHONE.findall(text):
            digits = re.sub(r"\D", "", run)
            found |= {("phone", digits[start:]) for start in range(len(digits) - MIN_PHONE_DIGITS + 1)}
        tokens = TOKEN.findall(text)
        # an id written with a space inside (``acc 0042``) is two tokens: adjacent pairs are read as one too
        joined = [*tokens, *(left + right for left, right in pairwise(tokens))]
        found |= {("customer_id", normalise_id(token)) for token in joined if any(c.isdigit() for c in token)}
        found.add(("customer_id", normalise_id(text)))
        found.add(("name", normalise_name(text)))
        words = WORD.findall(text)
        for size in self.name_words:
            found |= {("name", " ".join(words[i : i + size])) for i in range(len(words) - size + 1)}
        found.add(("email", normalise_email(text)))
        return found

    def matches(self, value: object) -> bool:
        """Whether ``value`` (any cell) holds one of the identifiers."""
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return False
        text = str(value)
        return any(self.key.digest(kind, form) in self.hashes for kind, form in self.candidates(text))

    def column_mask(self, values: pd.Series) -> np.ndarray:
        """True where a cell of ``values`` holds one of the identifiers."""
        text = values.astype("string").fillna("")
        maybe = _holds_any(text, self.literals) if self.literals else (text != "").to_numpy(dtype=bool)
        mask = np.zeros(len(values), dtype=bool)
        for position in np.flatnonzero(maybe):
            mask[position] = self.matches(text.iat[position])
        return mask

    def frame_mask(self, frame: pd.DataFrame, skip: Iterable[str] = ()) -> np.ndarray:
        """True for rows with an identifier in any text column (``skip``: columns never read, e.g. the row id)."""
        mask = np.zeros(len(frame), dtype=bool)
        skipped = set(skip)
        for column in frame.columns:
            if column in skipped or not _texty(frame[column]):
                continue
            mask |= self.column_mask(frame[column])
        return mask

    def text_holds(self, text: str) -> bool:
        """Whether a whole document (a report, a JSON file) holds an identifier, read line by line."""
        compact = SEPARATORS.sub("", _nfkc(text).casefold())
        if self.literals and not any(literal in compact for literal in self.literals):
            return False
        return any(self.matches(line) for line in text.splitlines() if line.strip())


def _holds_any(text: pd.Series, literals: tuple[str, ...]) -> np.ndarray:
    """The cheap pre-filter, in Arrow's vectorised kernels: which cells hold any of ``literals`` once NFKC-normalised,
    case-folded (lower-cased, with the folds that differ from it) and stripped of separators."""
    import pyarrow as pa
    import pyarrow.compute as pc

    folded = pc.utf8_lower(pc.utf8_normalize(pa.array(text.to_numpy(dtype=object), pa.large_string()), "NFKC"))
    for before, after in _FOLDS:
        folded = pc.replace_substring(folded, before, after)
    folded = pc.replace_substring_regex(folded, SEPARATORS.pattern, "")
    found = np.zeros(len(text), dtype=bool)
    for literal in literals:
        found |= pc.match_substring(folded, literal).to_numpy(zero_copy_only=False).astype(bool)
    return found


#: Where case-folding differs from lower-casing in ways an identifier may show (``Straße``, a final sigma).
_FOLDS = (("ß", "ss"), ("ς", "σ"), ("ſ", "s"))


def _texty(values: pd.Series) -> bool:
    return values.dtype == object or pd.api.types.is_string_dtype(values)


def read_erased(path: Path) -> dict[str, Any]:
    """The erased-subjects list (keyed hashes only); an empty list when the file does not exist."""
    if not path.is_file():
        return {"format": 1, "hashes": [], "key_id": None, "name_words": [], "requests": []}
    return dict(json.loads(path.read_text(encoding="utf-8")))


def add_erased(path: Path, matcher: Matcher, request_id: str, at: str) -> None:
    """Add one subject's hashes to the list (idempotent per request).

    Raises:
        ConfigError: the list was made with another key: its hashes could never match again.
    """
    erased = read_erased(path)
    if erased["hashes"] and erased["key_id"] not in (None, matcher.key.key_id):
        raise ConfigError(
            f"{path} holds hashes made with erasure key {erased['key_id']}, not the key set now "
            f"({matcher.key.key_id}): set the key the list was made with"
        )
    erased["key_id"] = matcher.key.key_id
    erased["hashes"] = sorted(set(erased["hashes"]) | matcher.hashes)
    erased["name_words"] = sorted(set(erased["name_words"]) | set(matcher.name_words))
    if request_id not in {request["request_id"] for request in erased["requests"]}:
        erased["requests"].append({"request_id": request_id, "at": at, "hashes": len(matcher.hashes)})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(erased, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def erased_matcher(path: Path, environ: Mapping[str, str] | None = None) -> Matcher | None:
    """The matcher validate applies to every row: None when nothing was erased yet.

    Raises:
        ConfigError: subjects were erased but the key is not set, or is another key than the list's.
    """
    erased = read_erased(path)
    if not erased["hashes"]:
        return None
    key = load_key(environ)
    if key.key_id != erased["key_id"]:
        raise ConfigError(
            f"{path} was made with erasure key {erased['key_id']} but {KEY_ENV} holds key {key.key_id}: "
            "set the key the list was made with, or erased subjects could come back"
        )
    return Matcher(key, frozenset(erased["hashes"]), tuple(erased["name_words"]))
