"""IBANs of every registered country, in any case, grouped in any way (mod-97 checked)."""

from __future__ import annotations

import re

from presidio_analyzer import EntityRecognizer, RecognizerResult

# Country code -> IBAN length (ISO 13616 registry).
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29,
    "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
    "YE": 30,
}  # fmt: skip
# An IBAN starts after a non-alphanumeric character, or glued to the word "IBAN" ("IBANDE89..."): a country's two
# letters and the two check digits, spaces allowed between them ("DE 89 3704...", "GB8 2WE ST1...").
_IBAN_START = re.compile(r"(?:(?<![A-Za-z0-9])|(?<=IBAN)|(?<=iban))([A-Za-z]{2})(?=[^\S\r\n]{0,2}\d[^\S\r\n]{0,2}\d)")
# What people put between an IBAN's characters: one or two spaces of any kind (a no-break space from a bank's web
# page, a tab), a dash, a dot or a slash.
_SEPARATOR = re.compile(r"[^\S\r\n]{1,2}|[-./]")
# Written other than in groups of four split by one space or dash, an IBAN must be at least half digits after its
# check digits (as the registry's own examples are), so that words swept up by the loose separators never pass.
_LOOSE_MIN_DIGIT_SHARE = 0.5


def _mod97(value: str) -> int:
    """ISO 7064 mod 97-10 remainder of letters and digits (letters count 10..35)."""
    remainder = 0
    for char in value:
        for digit in str(int(char, 36)):
            remainder = (remainder * 10 + int(digit)) % 97
    return remainder


class IbanAnyCaseRecognizer(EntityRecognizer):
    """IBANs of every country in the ISO 13616 registry, in any case, grouped in any way.

    Presidio's ``IbanRecognizer`` stays; this one adds what it misses (lower case, dashes, dots, no-break or double
    spaces, groups other than four, some countries): two letters of a registered country, two check digits, then
    letters and digits with separators between them up to the country's length, a word boundary, and the mod-97
    check. Written other than in groups of four split by one space or dash, at least half of what follows the check
    digits must be digits.
    """

    def __init__(self, supported_language: str = "en") -> None:
        super().__init__(
            supported_entities=["IBAN_CODE"], supported_language=supported_language, name="IbanAnyCaseRecognizer"
        )

    def load(self) -> None:
        return None

    def analyze(self, text, entities, nlp_artifacts=None):  # type: ignore[no-untyped-def]
        results = []
        for match in _IBAN_START.finditer(text):
            length = _IBAN_LENGTHS.get(match.group(1).upper())
            if length is not None and (end := _iban_end(text, match.start(), length)) is not None:
                results.append(RecognizerResult("IBAN_CODE", match.start(), end, 0.9))
        return results


def _iban_end(text: str, start: int, length: int) -> int | None:
    """Where the IBAN that starts at ``start`` ends: ``length`` letters and digits with separators between them, then
    no letter or digit, and the mod-97 check; ``None`` when there is none."""
    compact: list[str] = []
    regular, position = True, start
    while position < len(text) and len(compact) < length:
        char = text[position]
        if char.isascii() and char.isalnum():
            compact.append(char)
            position += 1
            continue
        separator = _SEPARATOR.match(text, position)
        if separator is None or separator.end() >= len(text) or not text[separator.end()].isalnum():
            break
        regular = regular and separator.group() in (" ", "-") and len(compact) % 4 == 0
        position = separator.end()
    if len(compact) != length or (position < len(text) and text[position].isalnum()):
        return None
    value = "".join(compact).upper()
    if not value[2:4].isdigit():
        return None
    if not regular and sum(c.isdigit() for c in value[4:]) < _LOOSE_MIN_DIGIT_SHARE * (length - 4):
        return None
    return position if _mod97(value[4:] + value[:4]) == 1 else None
