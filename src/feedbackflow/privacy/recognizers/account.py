"""Bank account numbers as customers write them, near what says "account" (devwritten dev set)."""

from __future__ import annotations

import functools
import re
from typing import Any

from presidio_analyzer import EntityRecognizer, RecognizerResult

from feedbackflow.privacy.recognizers.common import DATE_LIKE, IPV4

# Round 4 (devwritten dev set): account numbers as customers write them (AccountNumberRecognizer).
_ACCOUNT_PREFILTER = (
    r"acc|a/c|bank|beneficiar|payee|saving|checking|paid|pay|refund|transfer|money|funds|salary|wages|deposit|wire"
    r"|konto|compte|cuenta|conta|rekening"
)
_ACCOUNT_VALUE = (
    r"(?<![\w,/+#@-])(?<!\d\.)(?:[A-Z]{1,4}[ ]?\d{2,4}(?:[ ]?[\dA-Z]{2,4}){2,7}|\d{2,6}(?:[ .-]\d{2,8}){1,5}"
    r"(?:-[\dXx])?|\d{6,30}(?:-[\dXx])?)"
    r"(?![\w/@-]|[.,]\d)"
)
_ACCOUNT_WORD = (
    r"(?<![\w/])(?i:accounts?|accts?|a/c|acc|bank(?:ing)?[ ]details|bank[ ]info|payment[ ]details|beneficiary|payee"
    r"|checking|savings|konto(?:nummer|nr|-nr)?|compte|cuenta|conta|rekening(?:nummer)?|numer[ ]konta)(?![\w/])\.?"
)
_ACCOUNT_PAYMENT = (
    r"\b(?i:refund(?:ed|s)?|transfer(?:red|s)?|paid|pay|payments?|deposit(?:ed)?|wired?|credit(?:ed)?|money|funds"
    r"|salary|wages|send[ ]the[ ]refund)(?:[ ]+(?i:it|them|me[ ]back|the[ ]money|the[ ]refund|back))?"
    r"[ ]+(?i:to|from|into|in[ ]to|at|onto)[ ]*:?[ ]*$"
)
_ACCOUNT_AFTER = (
    r"[ ]*[-–—:,]?[ ]*(?i:(?:is|was|that's|that is|it's|=)[ ]+)?(?i:(?:my|the|our|his|her|their|a)[ ]+)?"
    r"(?:\p{L}+[ ]+){0,2}?(?i:accounts?|acct|a/c)(?!\w)"
)
# Another kind of number's word right before a candidate: that kind's number ("order 12345678", "card ending 1234").
_NOT_ACCOUNT_BEFORE = (
    r"\b(?i:ticket|order|ref|reference|invoice|case|passport|batch|tracking|loan|policy|transaction|member(?:ship)?"
    r"|customer|card|parcel|id|phone|tel|mobile|call|serial|model|booking|quote|ending(?:[ ]in)?|digits(?:[ ]are)?"
    r"|ext\.?|extension|iban|routing|transit|bsb|sort[ ]code|branch(?:[ ]code)?|ifsc|swift|bic|zip|post[ ]?code"
    r"|postal[ ]code|pin)(?:[ ]+(?i:number|no\.?|nr\.?|num|id|code|#))?[ ]*(?:is[ ]+)?[:#(]?[ ]*$"
)
# Words between an account cue and a number that say the number is something else.
_ACCOUNT_GAP_STOP = (
    r"\b(?i:phone|tel|mobile|call|order|invoice|ticket|ref|reference|tracking|card|ending|last|digits|balance|fees?"
    r"|since|case|booking|member(?:ship)?|customer|id|pin|passport|iban|swift|bic|sort|routing|transit|bsb|branch"
    r"|ifsc|zip|post[ ]?code|postal|amount|total|years?|days?|months?|weeks?|opened|closed[ ]on|charged)\b"
)
# "paid to 0712345678 via mobile money": after a payment verb alone, a number followed by a phone word is a phone's
_PHONE_AFTER = re.compile(r"[^\n.!?]*\b(?i:mobile|phone|whatsapp|sms|text|m-pesa|mpesa)\b")
_LIST_JOIN = re.compile(r"(?i:,|\band\b|&|\bor\b|/|\bto\b|\binto\b|\bfrom\b)")
_POSTCODE_SHAPE = re.compile(r"\d{5}-\d{3,4}|\d{3}-\d{4}")
_AMOUNT = re.compile(r"\d{1,3}(?:[,.]\d{3})*[.,]\d{2}|\d+[.,]\d{2}")


@functools.cache
def _account_patterns() -> tuple[Any, ...]:
    import regex

    return (
        regex.compile(_ACCOUNT_PREFILTER, regex.IGNORECASE),
        regex.compile(_ACCOUNT_VALUE),
        regex.compile(_ACCOUNT_WORD),
        regex.compile(_ACCOUNT_PAYMENT),
        regex.compile(_ACCOUNT_AFTER),
        regex.compile(_NOT_ACCOUNT_BEFORE),
        regex.compile(_ACCOUNT_GAP_STOP),
    )


def _account_gap_ok(gap: str, stop: Any) -> bool:
    """No digit, no sentence end and no other kind of number's word between a cue and a candidate; a newline only
    after a form label that ends its line ("Account number\\n12345678")."""
    if any(c.isdigit() for c in gap) or re.search(r"[!?;]|\.[ ]+\S|\n.*\n", gap):
        return False
    if "\n" in gap and not re.fullmatch(r"(?i:[ \t]*(?:number|no\.?|nr\.?|#)?[ \t]*[:#-]?[ \t]*\n[ \t]*)", gap):
        return False
    return stop.search(gap) is None


def _not_an_account(text: str, start: int, end: int, candidate: str) -> bool:
    """A date, an amount, an IP address or a piece of a longer code (an IBAN's or a reference's groups)."""
    if DATE_LIKE.fullmatch(candidate) or _AMOUNT.fullmatch(candidate) or IPV4.fullmatch(candidate):
        return True
    before = text[max(0, start - 6) : start]
    if re.search(r"[$€£¥]\s*$|\b[A-Za-z]{2}\d{2}[ -]$", before):
        return True
    return re.match(r"[ ]*(?i:eur|usd|gbp|euros?|dollars?|pounds?|%|am|pm)\b", text[end : end + 8]) is not None


class AccountNumberRecognizer(EntityRecognizer):
    """Bank account numbers as customers write them, near what says "account" (devwritten dev set).

    A candidate is six to thirty digits, plain or in groups of two or more with spaces, dashes or dots ("0123 4567
    89", "35.034406.72"), or a domestic account number with its bank's four letters ("NWBK 6016 1331 9268 19"). It
    counts after an account word (``account``, ``acct``, ``a/c``, ``acc no``, ``bank details``, ``beneficiary``,
    ``payee``, ``savings``, ``checking``, ...) up to 45 characters before it on the same line or on the line above
    a form's label, with no digit, sentence end or other kind of number's word (order, phone, card, ending,
    reference, ...) in between; right after a payment verb and its preposition ("refund to", "paid from", "paid
    into", "transfer to", "money from"); right before "is my account" or "- that's my current account"; or within
    30 characters after another account of the same text ("accounts 123 and 456", "from 123 to 456"). Dates,
    amounts, ZIP+4 and CEP shapes are not accounts; a number after a payment verb needs seven digits.
    """

    def __init__(self, supported_language: str = "en") -> None:
        super().__init__(
            supported_entities=["UK_ACCOUNT_NUMBER"],
            supported_language=supported_language,
            name="AccountNumberRecognizer",
        )

    def load(self) -> None:
        return None

    def analyze(self, text, entities, nlp_artifacts=None):  # type: ignore[no-untyped-def]
        prefilter, value, word, payment, after, other, gap_stop = _account_patterns()
        if not prefilter.search(text):
            return []
        results: list[RecognizerResult] = []
        last_end = -1
        for match in value.finditer(text):
            start, end = match.span()
            candidate = match.group(0)
            digits = sum(c.isdigit() for c in candidate)
            if not 6 <= digits <= 30 or _not_an_account(text, start, end, candidate):
                continue
            if other.search(text, max(0, start - 40), start):
                continue
            cue = None
            for found in word.finditer(text, max(0, start - 60), start):
                cue = found
            gap = text[cue.end() : start] if cue else ""
            accepted = cue is not None and len(gap) <= 45 and _account_gap_ok(gap, gap_stop)
            loose = (
                digits >= 7 and not _POSTCODE_SHAPE.fullmatch(candidate) and not _PHONE_AFTER.match(text, end, end + 30)
            )
            accepted = accepted or (loose and payment.search(text, max(0, start - 40), start) is not None)
            accepted = accepted or (loose and after.match(text, end) is not None)
            if not accepted and last_end >= 0 and start - last_end <= 30:
                between = text[last_end:start]
                accepted = _account_gap_ok(between, gap_stop) and _LIST_JOIN.search(between) is not None
            if accepted:
                results.append(RecognizerResult("UK_ACCOUNT_NUMBER", start, end, 0.88))
                last_end = end
        return results
