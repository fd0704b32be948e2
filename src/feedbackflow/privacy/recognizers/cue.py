"""Pattern recognizers anchored on a cue word before the value: ids, dates of birth, ages, bank details.

A cue makes a short or common shape personal: "passport X1234567", "born on 3 May 1961", "a 79 year old", "sort code
12-34-56", "account number 12345678", "my SSN is 123-45-6789" (Presidio's SSN recognizer rejects numbers such as
123-45-6789 as examples; after an explicit cue the writer meant it).
"""

from __future__ import annotations

from collections.abc import Sequence

import regex
from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer


class CueRecognizer(PatternRecognizer):
    """A pattern recognizer that keeps the case of its patterns (the registry's flags are case-insensitive).

    With a ``prefilter`` (a case-insensitive pattern every one of its patterns needs: a cue word or a shape), a
    text where it does not occur is skipped before the patterns run.
    """

    def __init__(
        self, entity: str, name: str, patterns: list[Pattern], language: str, prefilter: str | None = None
    ) -> None:
        super().__init__(
            supported_entity=entity,
            patterns=patterns,
            supported_language=language,
            name=name,
            global_regex_flags=regex.DOTALL | regex.MULTILINE,
        )
        self.prefilter = regex.compile(prefilter, regex.IGNORECASE) if prefilter else None

    def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):  # type: ignore[no-untyped-def]
        if self.prefilter is not None and not self.prefilter.search(text):
            return []
        return super().analyze(text, entities, nlp_artifacts, regex_flags)


_GAP = r"[^\d\n]{0,30}?"
# a bank or branch code's own word, then at most "number"/"no."/"code", "is", a colon: nothing else
_CODE_CUE = r"(?:[ ]+(?i:number|no\.?|nr\.?|code|#))?[ ]*(?:(?i:is)[ ]+)?[:#]?[ ]*"
_NUMBER_WORD = r"(?:[ ]+(?i:number|no\.?|nr\.?|num|n[°º]\.?))?"
_ACCOUNT_CUE = (
    r"(?i:konto(?:nummer|-?nr\.?)?|compte|cuenta(?:[ ]clabe)?|conta(?:[ ]corrente)?|c/c|rekening(?:nummer)?|"
    r"numer[ ]konta|nuban|clabe|account[ ]number)"
)
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DATE = (
    rf"(?:\d{{1,2}}[./-]\d{{1,2}}[./-]\d{{2,4}}|\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}(?:st|nd|rd|th)?[ ](?i:{_MONTH})"
    rf"\.?,?[ ]\d{{4}}|(?i:{_MONTH})\.?[ ]\d{{1,2}}(?:st|nd|rd|th)?,?[ ]\d{{4}})"
)

# What every pattern of an entity needs, so that a text without it is skipped: its cue words or its shapes.
_SHAPES = (
    r"\d{2}[- ]\d{2}[- ]\d{2}[ ]+\d{4}|\d{2}-\d{4}-\d{7}|\d{5}[ ]\d{5}[ ]|\d{5}[ -]\d{3}[ -]\d{7}"
    r"|\d{2}-\d{2}-\d{2}[ ]*[/,]|\d[ ]*[/,][ ]*\d{2}-\d{2}-\d{2}"
)
_PREFILTERS = {
    "PASSPORT": r"passport",
    "DATE_OF_BIRTH": r"born|birth|d\.?o\.?b",
    "AGE": r"year|yr|age|turn|i'm|i’m|i am|he's|she's|he is|she is",
    "US_SSN": r"ssn|social security",
    "US_BANK_NUMBER": r"routing|aba|rtn|transit|bsb|ifsc|swift|bank ?code|blz|bankleitzahl|institution|ag[eê]ncia"
    r"|ag\.|branch",
    "UK_SORT_CODE": rf"sort|s/c|\bsc\b|{_SHAPES}",
    "UK_ACCOUNT_NUMBER": rf"acc|a/c|konto|compte|cuenta|conta|c/c|rekening|konta|nuban|clabe|{_SHAPES}",
}


def _passport_patterns() -> list[Pattern]:
    """A passport number right after the word passport."""
    return [
        Pattern(
            "Passport after cue",
            r"(?<=\b(?i:passport)(?:[ ](?i:number|no\.?|nr\.?|#|id))?[ ]*[:#(]?[ ]*(?:(?i:is|was)[ ]+)?)"
            r"(?=[A-Z0-9]*\d)[A-Z0-9]{6,10}\b",
            0.8,
        )
    ]


def _birth_date_patterns() -> list[Pattern]:
    """A date after a birth cue."""
    return [
        Pattern(
            "Date after birth cue",
            rf"(?<=\b(?i:born(?:[ ]on)?|date[ ]of[ ]birth|d\.?o\.?b\.?|birth ?date|birthday(?:[ ]is)?)"
            rf"[ ]*[:,-]?[ ]*(?:(?i:is|on)[ ]+)?){_DATE}",
            0.85,
        )
    ]


def _age_patterns() -> list[Pattern]:
    """An age: '79 years old', 'a 79-year-old', 'aged 79', 'I am 79'."""
    return [
        Pattern("Years old", r"\b\d{1,3}(?=[ -](?i:years?|yrs?)[ -](?i:old)\b)", 0.7),
        Pattern("Year-old", r"\b\d{1,3}(?=[ -](?i:year)[ -]?(?i:old)s?\b)", 0.7),
        Pattern("Aged", r"(?<=\b(?i:aged|age|turned|turning)[ ]*:?[ ]*)\d{1,3}\b(?![.,:/]\d)", 0.7),
        Pattern(
            "I am N",
            r"(?<=\b(?i:i'm|i’m|i am|he's|she's|he is|she is)[ ]+)\d{1,3}"
            r"(?=[ ]*(?:,|\.(?!\d)|$|[ ](?i:and|now|yo|y/o|this|next|last)\b))",
            0.7,
        ),
    ]


def _ssn_patterns() -> list[Pattern]:
    """A US social security number after its cue."""
    return [
        Pattern(
            "SSN after cue",
            rf"(?<=\b(?i:ssn|social security(?: number| no\.?)?){_GAP})(?<!\d)\d{{3}}[- ]?\d{{2}}[- ]?\d{{4}}(?!\d)",
            0.85,
        )
    ]


def _bank_code_patterns() -> list[Pattern]:
    """Routing, BSB, transit, BLZ, agencia and branch codes, each after its own cue."""
    return [
        Pattern(
            "Routing number after cue",
            rf"(?<=\b(?i:routing|aba|rtn|transit|bsb|ifsc|swift|bank code|blz)"
            rf"(?:[ ]+(?i:number|no\.?|code|#))?{_GAP})"
            r"(?<![\d.,])\d{3}[ -]?\d{3}[ -]?\d{3}(?![\d-]|[.,]\d)",
            0.85,
        ),
        # bank and branch codes of other countries, each after its own cue (devformats dev set)
        Pattern("BSB after cue", rf"(?<=\b(?i:bsb){_CODE_CUE})\d{{3}}[ -]?\d{{3}}(?![\d-])", 0.85),
        Pattern(
            "Transit and institution after cue",
            rf"(?<=\b(?i:transit(?:[ ]number)?(?:/institution)?){_CODE_CUE})\d{{5}}(?:-\d{{3}})?(?![\d-])",
            0.85,
        ),
        Pattern("Institution after cue", rf"(?<=\b(?i:institution){_CODE_CUE})\d{{3}}(?![\d-])", 0.85),
        Pattern(
            "BLZ after cue",
            rf"(?<=\b(?i:blz|bankleitzahl|bank[ ]code){_CODE_CUE})\d{{3}}[ ]?\d{{3}}[ ]?\d{{2}}(?![\d-])",
            0.85,
        ),
        Pattern("Agencia after cue", rf"(?<=\b(?i:ag[eê]ncia|ag\.){_CODE_CUE})\d{{4}}(?:-[\dXx])?(?![\d-])", 0.85),
        Pattern(
            "Branch code next to an account",
            rf"(?<=\b(?i:branch){_CODE_CUE})\d{{3,6}}(?![\d-])(?=[^\d\n]{{0,25}}\b(?i:account|acct|a/c|acc)\b)"
            rf"|(?<=\b(?i:account|acct|a/c|acc)\b[^\n]{{0,40}}\b(?i:branch){_CODE_CUE})\d{{3,6}}(?![\d-])",
            0.85,
        ),
    ]


def _sort_code_patterns() -> list[Pattern]:
    """UK sort codes after a cue or next to an account number."""
    return [
        Pattern(
            "Sort code after cue",
            rf"(?<=\b(?i:sort[ -]?codes?)\b{_GAP})(?<!\d)\d{{2}}[ -]?\d{{2}}[ -]?\d{{2}}(?![\d-])",
            0.85,
        ),
        Pattern(
            "Sort code after short cue",
            rf"(?<=\b(?i:sort|s/c|sc){_CODE_CUE})\d{{2}}[ -]?\d{{2}}[ -]?\d{{2}}(?![\d-])",
            0.85,
        ),
        # devwritten dev set: a dashed sort code and an account with a slash or comma between, in either order
        Pattern(
            "Sort code next to an account",
            r"(?<![\d-])\d{2}-\d{2}-\d{2}(?=[ ]*[/,][ ]*\d{6,10}(?![\d-]))"
            r"|(?<=(?<![\d-])\d{6,10}[ ]*[/,][ ]*)\d{2}-\d{2}-\d{2}(?![\d-])",
            0.85,
        ),
        Pattern(
            "Sort code before an account number",
            r"(?<![\d-])\d{2}[- ]\d{2}[- ]\d{2}(?=[ ]+\d{4}[ ]?\d{4}(?![\d-]))",
            0.6,
        ),
    ]


def _account_patterns() -> list[Pattern]:
    """Account numbers after a cue in several languages, next to a sort code, or in a shape that says account."""
    return [
        Pattern(
            "Account number after cue",
            rf"(?<=\b(?i:accounts?|acc|a/c|acct)\.?(?:[ ]+(?i:number|no\.?|num|nr\.?|#))?{_GAP})"
            r"(?<![\d.,])\d{4}[ -]?\d{4}(?:\d{1,9})?(?![\d-]|[.,]\d)",
            0.85,
        ),
        Pattern(
            "Second account of a list",
            r"(?<=\b(?i:accounts)\b[^\d\n]{0,20}\d{4}[ -]?\d{4,13}[ ]*(?:,|and|&|or)[ ]*)"
            r"(?<![\d.,])\d{4}[ -]?\d{4}(?:\d{1,9})?(?![\d-]|[.,]\d)",
            0.85,
        ),
        # any country's account after its own word ("Konto", "numéro de compte", "C/C", "CLABE"): 8 to 18 digits,
        # or, right after the cue, 6 or 7 digits, a check digit ("5052921-2") or dashed groups (NZ)
        Pattern(
            "Account after cue, any language",
            rf"(?<=\b{_ACCOUNT_CUE}{_GAP})(?<![\d.,])\d{{8,18}}(?![\d-]|[.,]\d)",
            0.85,
        ),
        Pattern(
            "Short or grouped account right after cue",
            rf"(?<=\b(?:{_ACCOUNT_CUE}|(?i:accounts?|acc|a/c|acct)\.?){_NUMBER_WORD}{_CODE_CUE})(?<![\d.,])"
            r"(?:\d{6,18}(?:-[\dXx])?|\d{4,5}-[\dXx]|\d{2,6}(?:-\d{2,8}){1,3}(?:-[\dXx])?|\d{4}(?:[ ]\d{4}){1,3})"
            r"(?![\d-]|[.,]\d)",
            0.85,
        ),
        Pattern(
            "Account number after a sort code",
            r"(?<=(?<![\d-])\d{2}[- ]\d{2}[- ]\d{2}[ ]+)\d{4}[ ]?\d{4}(?![\d-])",
            0.6,
        ),
        Pattern(
            "Account next to a dashed sort code",
            r"(?<=(?<![\d-])\d{2}-\d{2}-\d{2}[ ]*[/,][ ]*)\d{6,10}(?![\d-])"
            r"|(?<![\d-])\d{6,10}(?=[ ]*[/,][ ]*\d{2}-\d{2}-\d{2}(?![\d-]))",
            0.85,
        ),
        # shapes that say bank account alone: New Zealand's bank-branch-account-suffix, a French RIB, a Canadian
        # cheque's transit, institution and account
        Pattern("New Zealand account", r"(?<![\d-])\d{2}-\d{4}-\d{7}-\d{2,3}(?![\d-])", 0.6),
        Pattern("French RIB", r"(?<!\d)(?<!\d[ ])\d{5}[ ]\d{5}[ ][0-9A-Z]{11}[ ]\d{2}(?![\d])", 0.6),
        Pattern("Canadian cheque line", r"(?<![\d-])\d{5}[ -]\d{3}[ -]\d{7,12}(?![\d-])", 0.6),
    ]


_PATTERNS = {
    "PASSPORT": _passport_patterns,
    "DATE_OF_BIRTH": _birth_date_patterns,
    "AGE": _age_patterns,
    "US_SSN": _ssn_patterns,
    "US_BANK_NUMBER": _bank_code_patterns,
    "UK_SORT_CODE": _sort_code_patterns,
    "UK_ACCOUNT_NUMBER": _account_patterns,
}


def cue_recognizers(language: str, entities: Sequence[str]) -> list[EntityRecognizer]:
    """One :class:`CueRecognizer` per configured entity that has cue patterns (:data:`_PATTERNS`)."""
    return [
        CueRecognizer(
            entity, f"{entity.title().replace('_', '')}CueRecognizer", patterns(), language, _PREFILTERS.get(entity)
        )
        for entity, patterns in _PATTERNS.items()
        if entity in entities
    ]
