"""Payment card numbers of any brand (Luhn-checked)."""

from __future__ import annotations

import re
from typing import ClassVar

from presidio_analyzer import Pattern, PatternRecognizer

_ACCOUNT_CUE = re.compile(
    r"\b(?i:accounts?|acct|a/c|acc)\.?(?:[ ]+(?i:number|no\.?|nr\.?|num|#))?[ ]*(?:is[ ]+)?[:#]?[ ]*$"
)


def _luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char)
        if i % 2 == 1:
            value *= 2
            value -= 9 if value > 9 else 0
        total += value
    return total % 10 == 0


class AnyCardRecognizer(PatternRecognizer):
    """Card numbers of any brand: 12 to 19 digits (spaces or dashes between groups) that pass the Luhn check.

    Presidio's ``CreditCardRecognizer`` only knows some issuer prefixes and lengths (19-digit Visa, 12-digit
    Maestro, 15-digit JCB, Mir and 2-series Mastercard fall through); it stays, this one adds the rest. A number
    whose first digit is a card industry's (2 to 6) scores above the threshold; others need a context word.
    """

    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern("Luhn 12-19 digits", r"(?<![\d.,-])\d(?:[ -]?\d){11,18}(?![\d-]|[.,]\d)", 0.3),
    ]
    CONTEXT: ClassVar[list[str]] = [
        *("card", "credit", "debit", "visa", "mastercard", "amex", "maestro", "jcb", "discover", "diners"),
        *("unionpay", "mir", "cc", "charged", "payment"),
    ]

    def __init__(self, supported_language: str = "en") -> None:
        super().__init__(
            supported_entity="CREDIT_CARD",
            patterns=self.PATTERNS,
            context=self.CONTEXT,
            supported_language=supported_language,
            name="AnyCardRecognizer",
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        digits = re.sub(r"\D", "", pattern_text)
        groups = re.split(r"[ -]", pattern_text)
        if len(groups) > 1 and any(len(group) < 3 for group in groups):  # "12 34 56 78 ..." is no card layout
            return False
        return _luhn(digits) and len(set(digits)) > 1

    def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):  # type: ignore[no-untyped-def]
        results = [
            r
            for r in super().analyze(text, entities, nlp_artifacts, regex_flags)
            if not _ACCOUNT_CUE.search(text, max(0, r.start - 40), r.start)
        ]
        for result in results:
            if text[result.start] in "23456" and result.score >= 0.3:
                result.score = max(result.score, 0.6)
        return results
