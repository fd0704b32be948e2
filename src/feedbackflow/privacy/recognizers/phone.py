"""Phone numbers of any country, validated by libphonenumber."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

import phonenumbers
from presidio_analyzer import EntityRecognizer, RecognizerResult

from feedbackflow.privacy.recognizers.common import DATE_LIKE, IPV4, covered

# A run of digits with the separators people write numbers with; libphonenumber decides whether it is a number.
_PHONE_CANDIDATE = re.compile(r"(?<![\w+.,/-])(?:\+|\(\+?)?\d(?:[ .()/-]{0,2}\d){6,16}(?![\w-]|[.,]\d)")
_DIGIT_RUN = re.compile(r"\d(?:[ ().-]{0,2}\d){6,}")


_LOCAL_NUMBER = re.compile(r"(?<![\w+().-])\d{3}[ -]\d{4}(?![\w-]|[.,]\d)")


_OTHER_NUMBER_CUE = re.compile(
    r"\b(?i:ticket|order|ref|reference|invoice|case|routing|account|accounts|acct|a/c|passport|batch|tracking|loan"
    r"|policy|transaction|member(?:ship)?|customer|iban|sort code|ssn|social security|card|parcel|id)"
    r"(?:[ ]+(?i:number|no\.?|nr\.?|num|id|code))?[ ]*(?:is[ ]+)?[:#(]?[ ]*$"
)


_CODE_BEFORE = re.compile(r"(?<![\w])[A-Za-z]+\d+[ ]$")


def _phone_score(raw: str) -> float:
    """+CC: certain; a national form with a trunk 0 or separators: likely; a bare digit run: only with context."""
    if raw.lstrip("(").startswith("+"):
        return 0.85
    if raw.startswith(("0", "(")) or re.search(r"\d[ .()-]+\d", raw):
        return 0.6
    return 0.4


def _not_a_phone(text: str, start: int, end: int) -> bool:
    """A date, an amount or a piece of a longer number that libphonenumber's matcher would read as a number."""
    candidate = text[start:end]
    if IPV4.fullmatch(candidate.strip()):
        return True
    if _OTHER_NUMBER_CUE.search(text, max(0, start - 40), start):  # "ticket 03383506", "routing number 050643200"
        return True
    if sum(c.isdigit() for c in candidate) < 7:  # short codes of small countries are no one's contact number
        return True
    if not candidate.lstrip("(").startswith("+") and DATE_LIKE.fullmatch(candidate.strip()):
        return True
    if re.fullmatch(r"\d{5}-\d{4}", candidate.strip()):  # a ZIP+4 postcode
        return True
    if _CODE_BEFORE.search(text, max(0, start - 12), start):  # "RF73 7962 2613 658": part of a longer code
        return True
    before, after = text[max(0, start - 2) : start], text[end : end + 2]
    # an amount, a piece of a decimal number, or one part of a dashed code ("INV-2025-00417", "A-5531-2290")
    return bool(re.search(r"[$€£¥]|\d[.,]$|[#]$|\w-$", before) or re.match(r"-\w", after))


class PhoneNumberRecognizer(EntityRecognizer):
    """Every phone number libphonenumber validates: international (``+CC``, any country) or national forms.

    Replaces Presidio's ``PhoneRecognizer`` (same library) with four changes measured on the dev set: a number
    written with ``+CC`` is valid for any country, not only the listed regions; national numbers are read for
    every region in ``regions`` (params: ``anonymise.phone_regions``); a number libphonenumber calls valid scores
    above the threshold without a context word when it has a trunk 0 or separators (Presidio scores 0.4 and relies
    on context words); and candidates are cut from the text once and parsed per region, instead of running
    libphonenumber's matcher over the whole text once per region (its cost grows with the region list). A text
    with fewer than seven digits in a row is skipped (no phone number has fewer).
    Numbers shaped like a local seven-digit number (``467 3395``) count only next to a context word.
    """

    CONTEXT: ClassVar[list[str]] = [
        *("phone", "telephone", "tel", "mobile", "cell", "number", "call", "ring", "text", "reach", "contact"),
        *("whatsapp", "landline", "fax", "sms", "nr", "no"),
    ]

    def __init__(self, regions: Sequence[str], supported_language: str = "en") -> None:
        self.regions = tuple(regions)
        super().__init__(
            supported_entities=["PHONE_NUMBER"],
            supported_language=supported_language,
            name="PhoneNumberRecognizer",
            context=self.CONTEXT,
        )

    def load(self) -> None:
        return None

    def analyze(self, text, entities, nlp_artifacts=None):  # type: ignore[no-untyped-def]
        if not _DIGIT_RUN.search(text):
            return self._local_numbers(text)
        results = []
        for match in _PHONE_CANDIDATE.finditer(text):
            start, end = match.span()
            if text[start] == "(" and ")" not in match.group(0):  # "(241976980)": the bracket is the text's
                start += 1
            candidate = text[start:end]
            if _not_a_phone(text, start, end) or not self._valid(candidate):
                continue
            score = _phone_score(candidate)
            results.append(RecognizerResult("PHONE_NUMBER", start, end, score, self._explanation(score)))
        return results + [r for r in self._local_numbers(text) if not covered(r, results)]

    def _valid(self, candidate: str) -> bool:
        """libphonenumber calls ``candidate`` valid: with its +CC for any country, else for a listed region."""
        cleaned = candidate.replace("(0)", "")
        international = cleaned.lstrip("(").startswith("+")
        for region in (None,) if international else self.regions:
            try:
                number = phonenumbers.parse(cleaned, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(number):
                return True
            # "+CC" or a UK mobile-style 07 already says phone number; numbers from unallocated ranges (+44 76..)
            # are still someone's contact data to a reader, so only their length is checked.
            mobile_style = number.country_code == 44 and str(number.national_number).startswith("7")
            if (international or mobile_style) and phonenumbers.is_possible_number(number):
                return True
        return False

    def _local_numbers(self, text: str) -> list[RecognizerResult]:
        return [
            RecognizerResult("PHONE_NUMBER", m.start(), m.end(), 0.3, self._explanation(0.3))
            for m in _LOCAL_NUMBER.finditer(text)
        ]

    def _explanation(self, score: float) -> Any:
        from presidio_analyzer import AnalysisExplanation

        return AnalysisExplanation(
            recognizer="PhoneNumberRecognizer", original_score=score, textual_explanation="phone"
        )
