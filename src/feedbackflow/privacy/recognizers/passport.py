"""Passport numbers of any country's shape near a passport cue (devformats dev set)."""

from __future__ import annotations

import functools
from typing import Any

from presidio_analyzer import EntityRecognizer, RecognizerResult

from feedbackflow.privacy.recognizers.common import DATE_LIKE

# Passport cue words in the languages customers write them (devformats dev set): "passport no.", "PP no", "pass. no.",
# "travel document", "Reisepass-Nr.", "numéro de passeport", "pasaporte", "passaporto", "paspoort", "paszport".
_PASSPORT_CUE = (
    r"(?i:\b(?:passports?|passeports?|pasaportes?|passaport[oe]s?|paspoort(?:nummer)?|paszport(?:u|y)?|"
    r"reisepass(?:nummer|nr)?|passnummer|travel[ ]doc(?:ument)?s?|ppt|pp(?=[ .]*(?:no|nr|num|#)))\b\.?"
    r"|\bpass\.(?=[ ]?(?:no|nr)))"
)
# Six to ten letters and digits, eight or nine digits, or nine digits in groups ("123 456 789", "75 1234567").
_PASSPORT_CANDIDATE = r"(?<![\w/.,+#-])(?:[A-Za-z0-9]{6,10}|\d{3}[ ]\d{3}[ ]\d{3}|\d{2}[ ]\d{7})(?![\w/-]|[.,]\d)"
# cue end .. candidate: no other number than a short one or a date ("passport issued 2019, number X", "expires 12/2031")
_PASSPORT_AFTER = r"(?:[^\d]|(?<![\w/.-])\d{1,4}(?:[/.-]\d{1,4}){0,2}(?![\w/.-]))*"
_PASSPORT_BEFORE = r"[ ]*[),-]?[ ]*\(?(?i:is[ ]+)?(?i:(?:my|the|our|his|her|a)[ ]+)?(?:[^\W\d]+[ ]+)?"
# Another kind of number's cue right before a candidate: that kind's number, not a passport.
_OTHER_THAN_PASSPORT = (
    r"\b(?i:order|ref|reference|invoice|account|acct|a/c|iban|sort[ ]code|routing|ticket|case|tracking|booking|"
    r"policy|phone|tel|mobile|card|customer|member(?:ship)?|loan|transaction|post[ ]?code|zip|serial|model|"
    r"licen[cs]e|nhs|ni|ssn|visa[ ]no)(?:[ ]+(?i:number|no\.?|nr\.?|id|code))?[ ]*(?:is[ ]+)?[:#]?[ ]*$"
)


@functools.cache
def _passport_patterns() -> tuple[Any, Any, Any, Any, Any]:
    import regex

    return (
        regex.compile(_PASSPORT_CUE),
        regex.compile(_PASSPORT_CANDIDATE),
        regex.compile(_PASSPORT_AFTER),
        regex.compile(_PASSPORT_BEFORE),
        regex.compile(_OTHER_THAN_PASSPORT),
    )


class PassportRecognizer(EntityRecognizer):
    """Passport numbers of any country's shape near a passport cue, in several languages (devformats dev set).

    A candidate is six to ten letters and digits with a digit (``C01X00T47``, ``12AB34567``, ``E12345678``), eight
    or nine digits, or nine digits in groups (``123 456 789``, ``75 1234567``). It counts after a cue
    (``passport no.``, ``travel document``, ``Reisepass-Nr.``, ``numéro de passeport``, ``pasaporte``, ...) with
    no other number in between than a year, a date or a short number, within 50 characters (a form's next line,
    "a copy of my passport, X", "passport issued 2019, number X"), within 40 after another passport number ("new
    number X, the old one was Y"), or right before a cue ("X is my passport number"). A number right after another
    kind of number's cue ("order", "account") is that kind's.
    """

    def __init__(self, supported_language: str = "en") -> None:
        super().__init__(
            supported_entities=["PASSPORT"], supported_language=supported_language, name="PassportRecognizer"
        )

    def load(self) -> None:
        return None

    def analyze(self, text, entities, nlp_artifacts=None):  # type: ignore[no-untyped-def]
        cue, candidate, after, before, other = _passport_patterns()
        cues = [m.span() for m in cue.finditer(text)]
        if not cues:
            return []
        results: list[RecognizerResult] = []
        last_end = -1
        for match in candidate.finditer(text):
            start, end = match.span()
            value = match.group(0)
            if not any(c.isdigit() for c in value) or DATE_LIKE.fullmatch(value):
                continue
            if other.search(text, max(0, start - 30), start):
                continue
            near = any(e <= start <= e + 50 and after.fullmatch(text, e, start) for _, e in cues)
            chained = last_end >= 0 and start <= last_end + 40 and after.fullmatch(text, last_end, start)
            ahead = any(s >= end and before.fullmatch(text, end, s) for s, _ in cues)
            if near or chained or ahead:
                # above spaCy's 0.85: the small model tags some of these numbers as places
                results.append(RecognizerResult("PASSPORT", start, end, 0.86))
                last_end = end
        return results
