"""Recognizers added to Presidio's predefined ones, each for a kind of personal data Presidio's defaults miss.

Presidio's predefined recognizers are the floor (:func:`feedbackflow.privacy.engine.build_analyzer` loads all of them
for the configured entities); the classes here only add findings, except where one is named as replacing a
predefined recognizer and was measured better on the dev set (``make bench-pii``).

Everything imports Presidio lazily (:func:`recognizer_classes` builds the classes on first use), so importing this
module stays cheap for the CLI, DVC and the Airflow DAG parser.

Which set each rule came from (the README repeats this): every rule here was written from the issue's list of shapes
and tuned on the dev set ``data/pii_eval``; none was changed after scoring the locked set ``data/pii_test``. Rules
marked "devformats dev set" (passports of any country near a cue in several languages, IBANs in any case, other
countries' bank and branch codes and accounts, more postcode cues and shapes, postcodes in an address's tail, more
street forms, form labels that are no person) came from the third dev part, ``data/pii_eval/pii_eval_formats.jsonl``
(:mod:`tools.pii.devformats`), written by another author without reading the locked set or its misses.
Rules marked "devwritten dev set" (:class:`AccountNumberRecognizer` for accounts as customers write them, a dashed
sort code next to an account, postcodes after plural cues, on a form label's next line, in lists, next to a town
without a street or after "moved to"/"live in"/"near", prefixed and spaced codes in an address's tail, a street
before a town and its code) came from the fourth part, ``data/pii_eval/pii_eval_written.jsonl``
(:mod:`tools.pii.devwritten`), written by a fourth author who saw neither the locked set's misses nor its
scores after round 3.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import tldextract
    from presidio_analyzer import EntityRecognizer

# Street words in the languages customers write addresses in (general knowledge, not fitted to any set). A street is
# a house number next to one to four words that end in or contain one of these.
_ENGLISH_STREET_WORDS = (
    *("street", "st", "road", "rd", "avenue", "ave", "lane", "ln", "drive", "dr", "way", "court", "ct", "place"),
    *("pl", "crescent", "boulevard", "blvd", "parade", "terrace", "close", "square", "sq", "highway", "hwy"),
    *("grove", "gardens", "row", "mews", "hill", "park", "walk", "green", "rise", "view", "circle", "trail"),
    *("parkway", "pkwy", "line", "village", "suite", "apt", "flat", "unit", "route", "esplanade", "quay", "wharf"),
    # devformats dev set: Irish and US forms, Malay
    *("lawn", "heights", "hts", "vale", "glen", "ter", "trl", "cir", "xing", "expy", "fwy", "tpke", "cres", "gdns"),
    *("tce",),
)
_STREET_WORDS = (
    # English
    *_ENGLISH_STREET_WORDS,
    # Malay
    *("jalan", "lorong"),
    # South Asia
    *("marg", "nagar", "chowk", "path", "gali", "colony", "sector"),
    # Romance languages
    *("rua", "avenida", "av", "praça", "praca", "travessa", "alameda", "largo", "estrada", "rodovia", "rue"),
    *("chemin", "allée", "impasse", "rang", "quai", "cours", "calle", "carrer", "paseo", "plaza", "camino"),
    *("via", "viale", "piazza", "corso", "vicolo", "strada", "piazzale", "borgo", "contrada"),
    *("callejón", "calzada", "cerrada", "circuito", "corredor", "pasaje", "psje", "peatonal", "privada", "retorno"),
    *("prolongación", "andador", "diagonal", "periférico", "avda", "aleea", "intrarea", "bulevardul", "soseaua"),
    *("șoseaua", "drumul", "calea", "splaiul"),
    # Germanic languages
    *("straße", "strasse", "str", "gasse", "weg", "platz", "allee", "ring", "damm", "ufer", "steig", "markt"),
    *("straat", "laan", "plein", "gracht", "kade", "dijk", "gatan", "gata", "vägen", "väg", "gränd", "torget"),
    *("stigen", "gade", "vej", "veien", "gate", "plass", "stræde", "plads", "torv", "singel", "steeg", "hof"),
    # Finnic, Hungarian, Slavic
    *("katu", "tie", "kuja", "polku", "kaari", "väylä", "rinne", "utca", "út", "útja", "tér", "körút", "köz"),
    *("ulica", "ul", "aleja", "al", "plac", "osiedle", "os", "ulice", "náměstí", "třída", "námestie", "nábrežie"),
    *("cesta", "trg", "put", "vijenac", "prilaz", "odvojak", "obala", "nábřeží"),
)
# Street words that open a street name with no house number needed ("Strada Dorian Suciu", "rue de la Paix"): none
# of them is an English word, so a capitalised name after one is a street, not a person.
_OPENING_STREET_WORDS = (
    *("rua", "avenida", "travessa", "alameda", "rue", "chemin", "allée", "calle", "carrer", "paseo", "camino"),
    *("viale", "piazza", "corso", "vicolo", "strada", "callejón", "calzada", "cerrada", "circuito", "corredor"),
    *("pasaje", "peatonal", "privada", "prolongación", "andador", "aleea", "intrarea", "bulevardul", "soseaua"),
    *("șoseaua", "drumul", "calea", "splaiul", "ulica", "aleja", "boulevard", "avenue"),
)
_STREET_WORD = "|".join(sorted({re.escape(word) for word in _STREET_WORDS}, key=len, reverse=True))
_ENGLISH_WORD = "|".join(sorted({re.escape(word) for word in (*_ENGLISH_STREET_WORDS, "gate")}, key=len, reverse=True))
_OPENING_WORD = "|".join(sorted({re.escape(word) for word in _OPENING_STREET_WORDS}, key=len, reverse=True))
# Compound street names end in the street word ("Erlerstraße", "Dosentinkuja", "Skolvägen", "Blåbærstræde").
_COMPOUND_SUFFIX = (
    r"(?:straße|strasse|gasse|weg|platz|allee|ring|damm|straat|laan|gracht|gatan|vägen|gränd|torget|stigen|gade|vej"
    r"|veien|katu|tie|kuja|polku|kaari|väylä|rinne|stræde|plads|singel|pad|plein|dijk|kade|dreef|markt|steeg|str\.)"
)
_WORD = r"[\w'’.-]+"
_CAP_WORD = r"(?:\p{Lu}[\w'’.-]*)"
_PARTICLE = r"(?:de|da|das|do|dos|di|del|della|la|le|les|du|des|van|von|der|den|of|the|y|e)"
# Capitalised words (with their particles) that continue a street name after its street word: "Rua das Flores".
_NAME_TAIL = rf"(?:[ ](?:{_PARTICLE}[ ])*\p{{Lu}}[\w'’-]+){{0,3}}"
_HOUSE = (
    r"(?:(?:(?i:nr|no|n°|nº|n\.º|núm|h\.no)\.?[ ]?)?\d{1,5}(?:[ ]?[A-Za-z](?![\w]))?(?:[ ](?i:bis|ter|quater)(?![\w]))?"
    r"(?:[/-]\d{1,4}(?:[a-z](?!\w))?)?\.?)"
)
_UNIT = r"(?:[ ]+(?i:suite|apt\.?|unit|flat|interior|piso|puerta|dpto\.?|depto\.?|bl\.|sc\.|ap\.|et\.)[ ]*\d+)*"
# A postcode's shape next to a town (devwritten dev set): four to six digits, "123 45", "1234 AB", "12345-678", with a
# country prefix ("D-10115", "GR-430 26").
_PLACE_CODE = r"(?:[A-Z]{1,2}-)?(?:\d{5}-\d{3,4}|\d{3}[ ]\d{2,3}|\d{4}[ ]?[A-Z]{2}|\d{4,6})"
_STREET_PATTERNS = (
    # number first: "12 Rua das Flores", "77763 Tony Village Suite 690", "1777 avenue Poirier", "717, rue Seguin"
    rf"(?<![\w,.-]){_HOUSE},?[ ]+(?:(?:{_CAP_WORD}|{_PARTICLE}|\d{{1,3}}(?:st|nd|rd|th))[ ]+){{0,4}}?"
    rf"(?i:{_STREET_WORD})\.?(?![\w]){_NAME_TAIL}"
    rf"{_UNIT}",
    # number first, English street types of every kind ("4169 Victoria Circles", "98376 Gonzalez Neck"): the number,
    # one to three capitalised words, a capitalised street type
    rf"(?<![\w,.-]){_HOUSE},?[ ]+(?:{_CAP_WORD}[ ]+){{1,3}}(?:{{english_types}})(?![\w]){_UNIT}",
    # name first: "Rua das Flores, 12", "Oroszfürdői utca 54.", "aleja Okrężna 776", "Viale Sermonti, 13"
    rf"(?<![\w])(?i:{_STREET_WORD})\.?[ ]+(?:(?:{_CAP_WORD}|{_PARTICLE})[ ]+){{0,3}}?{_WORD},?[ ]+{_HOUSE}"
    rf"(?![\w:]){_UNIT}",
    # (an English street word alone before a number is something else: "gate 54", "Line 2", "Route 35")
    rf"(?<![\w])(?:(?:{_CAP_WORD}[ ]+){{1,3}}?|(?!(?i:{_ENGLISH_WORD})\b))(?<![\w])(?i:{_STREET_WORD})\.?,?[ ]+{_HOUSE}"
    rf"(?![\w:]){_UNIT}",
    # compound: "Erlerstraße 7/6", "Dosentinkuja 76"
    rf"(?<![\w])[\w'’-]+(?i:{_COMPOUND_SUFFIX}),?[ ]+{_HOUSE}(?![\w:]){_UNIT}",
    # an opening street word and a capitalised name, no number: "Strada Dorian Suciu", "rue de Jacques"
    rf"(?<![\w])(?i:{_OPENING_WORD})[ ]+(?:{_PARTICLE}[ ]+)*{_CAP_WORD}(?:[ ](?:{_PARTICLE}[ ])*{_CAP_WORD}){{0,2}}"
    rf"(?:,?[ ]+{_HOUSE}(?![\w:]))?{_UNIT}",
    # devformats dev set: German "Am Mühlenbach 36", "An der Kirche 3"
    rf"(?<![\w])(?:Am|An der|An den|Im|In der|Auf der|Auf dem|Zum|Zur|Unter den|Hinter der|Vor dem)[ ]+"
    rf"(?!(?:Januar|Februar|März|April|Mai|Juni|Juli|August|September|Oktober|November|Dezember|Jahr)\b)"
    rf"{_CAP_WORD}(?:[ ]{_CAP_WORD})?[ ]+{_HOUSE}(?![\w:]){_UNIT}",
    # a name and a house number right before a postcode and a town: "Karlova 32, 360 00 Olomouc"
    rf"(?<![\w])\p{{Lu}}[\w'’.-]+(?:[ ][\w'’.-]+){{0,2}}?[ ]{_HOUSE}(?=,[ ]+(?:\d{{3}}[ ]\d{{2}}|\d{{4,5}}|"
    rf"\d{{4}}[ ]?[A-Z]{{2}}|\d{{2}}-\d{{3}}|\d{{4}}-\d{{3}}|[A-Z]{{1,2}}-\d{{4,5}})[ ]+\p{{Lu}}[\p{{Ll}}\p{{Lu}}]"
    # devwritten dev set: or right before a town and then a postcode ("Tsimiski 24, Patras, 229 34")
    rf"|,[ ]+\p{{Lu}}[\w'’-]+(?:[ ]\p{{Lu}}[\w'’-]+){{0,2}},?[ ]+\(?{_PLACE_CODE}\)?[ ]*(?:[,.;)\n]|$))",
    # Japanese block numbers before or after the district, before a ward or city: "1-2-3 Shibuya, Shibuya-ku"
    rf"(?<![\w-])\d{{1,2}}-\d{{1,3}}-\d{{1,3}}[ ]+{_CAP_WORD}(?=(?:,[ ]*|[ ]*\n)[\w-]+-(?i:ku|shi|cho|machi|gun)\b)",
    rf"(?<![\w]){_CAP_WORD}[ ]+\d{{1,2}}-\d{{1,3}}-\d{{1,3}}(?![\w-])"
    rf"(?=(?:,[ ]*|[ ]*\n)[\w-]+-(?i:ku|shi|cho|machi|gun)\b)",
    # Norwegian and Swedish compounds: "Kirkegate 75", "Storgata 5", "Skogveien 3"
    rf"(?<![\w])\p{{Lu}}[\w'’-]+(?:gate|gata|gaten|vei|veg|vegen),?[ ]+{_HOUSE}(?![\w:]){_UNIT}",
    # Singapore's blocks: "Blk 123 Ang Mo Kio Ave 3, #12-345"
    r"(?<![\w])(?:Blk|BLK|Block)[ ]+\d{1,4}[A-Z]?(?:[ ][\w]+){1,5}?(?:,[ ]*#\d{2}-\d{2,5})?(?=[ ]*(?:,|\n|$))",
    # Spanish "C/ Mayor, 12"
    rf"(?<![\w])C/[ ]?(?:(?:{_CAP_WORD}|{_PARTICLE})[ ]+){{0,3}}?{_WORD},?[ ]+{_HOUSE}(?![\w:]){_UNIT}",
)
# A name and a house number count as a street after an address cue or on the line above a postcode and a town:
# "address is Voćarska 9c/6", "We live at Krležin gvozd 4", "Jurjevska 3a\n71436 Aarhus".
_STREET_AFTER_CUE = (
    r"(?<=\b(?i:address(?:[ ]is)?|addr\.?|live[sd]?[ ]at|living[ ]at|reside[sd]?[ ]at|moved[ ](?:from|to)|"
    r"moving[ ]to|parcel[ ](?:at|to)|left[ ]at|address[ ]to|went[ ]to|post(?:ed)?[ ](?:it|the[ ]\w+)[ ]to)"
    rf"[ ]*:?[ ]+){_CAP_WORD}(?:[ ][\w'’.-]+){{0,3}}?,?[ ]{_HOUSE}(?![\w:]){_UNIT}"
)

# Postcodes whose shape alone says postcode (UK, Canada, Brazil's CEP, US ZIP+4, Dutch, Irish Eircode).
_STRONG_POSTCODES = (
    r"\b(?:GIR ?0AA|[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2})\b",
    r"\b[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z][ ]?\d[ABCEGHJ-NPRSTV-Z]\d\b",
    r"\b\d{5}-\d{3}\b",
    r"\b\d{5}-\d{4}\b",
    r"\b\d{4}[ ]?[A-Z]{2}\b(?=[ ,]+[A-Z][a-z])",
    r"\b[AC-FHKNPRTV-Y]\d{2}[ ]?[AC-FHKNPRTV-Y\d]{4}\b(?=[ ,]+[A-Z][a-z]|[ ]*$)",
    # devformats dev set: an Eircode whose unique part holds a letter needs no town after it ("D04 W4FW"), nor does
    # Dublin's D6W; a UK postcode in lower case ("ls17 6ns") when its area is a real postcode area
    r"\b(?:[AC-FHKNPRTV-Y]\d{2}|D6W)[ ]?(?=[AC-FHKNPRTV-Y\d]{0,3}[AC-FHKNPRTV-Y])[AC-FHKNPRTV-Y\d]{4}\b",
    r"(?<![\w@./-])(?:{uk_areas})\d[a-z\d]?[ ]?\d[abd-hjlnp-uw-z]{2}(?![\w@/-])",
    r"(?<![\w@./-])[abceghj-nprstvxy]\d[abceghj-nprstv-z][ ]?\d[abceghj-nprstv-z]\d(?![\w@/-])",  # Canada, lower case
    # a ZIP code after a town and a US state, a postcode after an Australian state: "Austin, TX 78701", "Perth WA 6000"
    r"(?<=\p{Lu}[\w'’.-]*,?[ ]+(?:{us_states})[ ]+)\d{5}(?:-\d{4})?(?![\w-])",
    r"(?<=\p{Lu}[\w'’.-]*,?[ ]+(?:NSW|VIC|QLD|WA|SA|TAS|ACT|NT)[ ]+)\d{4}(?![\w-])",
)
_US_STATES = (
    *("AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY"),
    *("LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH"),
    *("OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY", "PR"),
)
# The UK's postcode areas (Royal Mail), for postcodes written in lower case.
_UK_POSTCODE_AREAS = (
    *("ab", "al", "b", "ba", "bb", "bd", "bh", "bl", "bn", "br", "bs", "bt", "ca", "cb", "cf", "ch", "cm", "co", "cr"),
    *("ct", "cv", "cw", "da", "dd", "de", "dg", "dh", "dl", "dn", "dt", "dy", "e", "ec", "eh", "en", "ex", "fk", "fy"),
    *("g", "gl", "gu", "gy", "ha", "hd", "hg", "hp", "hr", "hs", "hu", "hx", "ig", "im", "ip", "iv", "je", "ka", "kt"),
    *("kw", "ky", "l", "la", "ld", "le", "ll", "ln", "ls", "lu", "m", "me", "mk", "ml", "n", "ne", "ng", "nn", "np"),
    *("nr", "nw", "ol", "ox", "pa", "pe", "ph", "pl", "po", "pr", "rg", "rh", "rm", "s", "sa", "se", "sg", "sk", "sl"),
    *("sm", "sn", "so", "sp", "sr", "ss", "st", "sw", "sy", "ta", "td", "tf", "tn", "tq", "tr", "ts", "tw", "ub", "w"),
    *("wa", "wc", "wd", "wf", "wn", "wr", "ws", "wv", "yo", "ze"),
)
# Any country's code: letters, digits, one dash or space, after a cue or next to a street address and a town.
_GENERIC_POSTCODE = (
    r"(?:[A-Z]{1,2}-?)?\d{2,7}(?:[- ]\d{2,4})?(?:[ ]?[A-Z]{2}(?![a-z]))?|[A-Z]\d{2}[ ]?[A-Z\d]{4}|[A-Z]\d{6}"
)
# A town: one to three capitalised words ("Cluj-Napoca", "New York").
_TOWN = r"\p{Lu}[\w'’-]+(?:[ ]\p{Lu}[\w'’-]+){0,2}"


def _luhn(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char)
        if i % 2 == 1:
            value *= 2
            value -= 9 if value > 9 else 0
        total += value
    return total % 10 == 0


@functools.cache
def offline_tld_extractor() -> tldextract.TLDExtract:
    """Return a tldextract extractor that never goes to the network (bundled public suffix snapshot, no cache dir)."""
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


_DOMAIN_HINT = re.compile(r"\.[A-Za-z]")
# A run of digits with the separators people write numbers with; libphonenumber decides whether it is a number.
_PHONE_CANDIDATE = re.compile(r"(?<![\w+.,/-])(?:\+|\(\+?)?\d(?:[ .()/-]{0,2}\d){6,16}(?![\w-]|[.,]\d)")
_DIGIT_RUN = re.compile(r"\d(?:[ ().-]{0,2}\d){6,}")


@functools.cache
def recognizer_classes() -> dict[str, type]:
    """The recognizer classes, built on first use so that importing this module does not import Presidio."""
    import phonenumbers
    import regex
    from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult
    from presidio_analyzer.predefined_recognizers import EmailRecognizer, UrlRecognizer

    class OfflineEmailRecognizer(EmailRecognizer):
        """Presidio's e-mail recognizer with the offline suffix list; skipped for texts without an ``@``."""

        def validate_result(self, pattern_text: str) -> bool:
            return offline_tld_extractor()(pattern_text).fqdn != ""

        def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):  # type: ignore[no-untyped-def]
            if "@" not in text:
                return []
            return super().analyze(text, entities, nlp_artifacts, regex_flags)

    class PrefilteredUrlRecognizer(UrlRecognizer):
        """Presidio's URL recognizer, skipped for texts with no dot followed by a letter (every domain has one)."""

        def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):  # type: ignore[no-untyped-def]
            if not _DOMAIN_HINT.search(text):
                return []
            return super().analyze(text, entities, nlp_artifacts, regex_flags)

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
            return results + [r for r in self._local_numbers(text) if not _covered(r, results)]

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

    class AddressRecognizer(EntityRecognizer):
        """Street addresses with a house number in either order, and the postcode written next to one.

        A street is a house number next to a street word in one of many languages (:data:`_STREET_WORDS`), either
        separately ("12 Rua das Flores", "Viale Sermonti, 13") or compounded ("Erlerstraße 7/6"). A postcode counts
        when its shape alone says so (UK, Canada, Brazil, ZIP+4), after a cue ("postcode", "zip", "PLZ"), or right
        after a street address (", 8706-690 Lixa").
        """

        def __init__(self, supported_language: str = "en") -> None:
            super().__init__(
                supported_entities=["STREET_ADDRESS", "POSTCODE"],
                supported_language=supported_language,
                name="AddressRecognizer",
            )

        def load(self) -> None:
            return None

        def analyze(self, text, entities, nlp_artifacts=None):  # type: ignore[no-untyped-def]
            results: list[RecognizerResult] = []
            if "STREET_ADDRESS" in entities:
                candidates: list[tuple[int, int]] = []
                numbered = any(c.isdigit() for c in text)
                for pattern in _street_patterns() if numbered else _street_patterns()[-1:]:
                    for match in pattern.finditer(text):
                        value = match.group(0).rstrip(" ,.")
                        if (
                            _is_street(value)
                            and not _STATE_AND_CODE.search(value)
                            and not _TOWN_AND_DUTCH_CODE.match(text, match.start())
                            and not _NOT_A_STREET_START.match(value)
                        ):
                            candidates.append((match.start(), match.start() + len(value)))
                # the earliest start wins, then the longest: "173 Joshua Row, 65763" is a street and a postcode
                spans: list[tuple[int, int]] = []
                for start, end in sorted(candidates, key=lambda span: (span[0], -span[1])):
                    if not any(s < end and start < e for s, e in spans):
                        spans.append((start, end))
                results += [RecognizerResult("STREET_ADDRESS", s, e, 0.7) for s, e in spans]
            if "POSTCODE" in entities:
                results += self._postcodes(text, [(r.start, r.end) for r in results])
            return results

        @staticmethod
        def _postcodes(text: str, streets: list[tuple[int, int]]) -> list[RecognizerResult]:
            found: dict[tuple[int, int], float] = {}
            for pattern in _strong_postcodes():
                for match in pattern.finditer(text):
                    found[match.span(1) if match.groups() else match.span()] = 0.6
            after_cue, after_street, after_town = _postcode_context()
            town_codes, list_next = _town_postcodes()
            for match in after_cue.finditer(text):
                found[match.span("code")] = 0.7
                chained = list_next.match(text, match.end("code"))
                while chained:
                    found[chained.span("code")] = 0.7
                    chained = list_next.match(text, chained.end("code"))
            for pattern in town_codes if _FOUR_DIGITS.search(text) else ():
                for match in pattern.finditer(text):
                    town, code = match.groupdict().get("town"), match.group("code")
                    if (town and town.split()[0].casefold() in _NOT_TOWNS) or _YEAR.fullmatch(code):
                        continue
                    span = match.span("code")
                    if not any(s < span[1] and span[0] < e for s, e in streets):
                        found.setdefault(span, 0.7)
            for _, end in streets:
                after = after_street.match(text, end) or after_town.match(text, end)
                if after and _has_digit(after.group("code")):
                    found[after.span("code")] = 0.7
            tail = _tail_postcode()
            for _, end in streets:
                stop = text.find("\n\n", end, end + 90)
                for match in tail.finditer(text, end, stop if stop != -1 else min(len(text), end + 90)):
                    span = match.span("code")
                    if not any(s <= span[0] < e for s, e in streets):
                        found.setdefault(span, 0.7)
            return [RecognizerResult("POSTCODE", s, e, score) for (s, e), score in found.items()]

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
                if not any(c.isdigit() for c in value) or _DATE_LIKE.fullmatch(value):
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

    class IbanAnyCaseRecognizer(EntityRecognizer):
        """IBANs of every country in the ISO 13616 registry, grouped or not, in any case, with spaces or dashes.

        Presidio's ``IbanRecognizer`` stays; this one adds what it misses (lower case, dashes, some countries): two
        letters of a registered country, two check digits, then letters and digits (a single space or dash only between
        groups of four) up to the country's length, a word boundary, and the mod-97 check.
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
                if length is None:
                    continue
                compact, position = [], match.start()
                while position < len(text) and len(compact) < length:
                    char = text[position]
                    if char.isascii() and char.isalnum():
                        compact.append(char)
                    elif not (
                        char in " -"
                        and len(compact) % 4 == 0
                        and position + 1 < len(text)
                        and text[position + 1].isalnum()
                    ):  # a space or dash only between groups of four
                        break
                    position += 1
                if len(compact) != length or (position < len(text) and text[position].isalnum()):
                    continue
                value = "".join(compact).upper()
                if _mod97(value[4:] + value[:4]) == 1:
                    results.append(RecognizerResult("IBAN_CODE", match.start(), position, 0.9))
            return results

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
                    digits >= 7
                    and not _POSTCODE_SHAPE.fullmatch(candidate)
                    and not _PHONE_AFTER.match(text, end, end + 30)
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

    return {
        "email": OfflineEmailRecognizer,
        "url": PrefilteredUrlRecognizer,
        "phone": PhoneNumberRecognizer,
        "card": AnyCardRecognizer,
        "cue": CueRecognizer,
        "address": AddressRecognizer,
        "passport": PassportRecognizer,
        "iban": IbanAnyCaseRecognizer,
        "account": AccountNumberRecognizer,
    }


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
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2})\d{2}(?=[ -]?[A-Za-z0-9])")


def _mod97(value: str) -> int:
    """ISO 7064 mod 97-10 remainder of letters and digits (letters count 10..35)."""
    remainder = 0
    for char in value:
        for digit in str(int(char, 36)):
            remainder = (remainder * 10 + int(digit)) % 97
    return remainder


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
    if _DATE_LIKE.fullmatch(candidate) or _AMOUNT.fullmatch(candidate) or _IPV4.fullmatch(candidate):
        return True
    before = text[max(0, start - 6) : start]
    if re.search(r"[$€£¥]\s*$|\b[A-Za-z]{2}\d{2}[ -]$", before):
        return True
    return re.match(r"[ ]*(?i:eur|usd|gbp|euros?|dollars?|pounds?|%|am|pm)\b", text[end : end + 8]) is not None


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


_LOCAL_NUMBER = re.compile(r"(?<![\w+().-])\d{3}[ -]\d{4}(?![\w-]|[.,]\d)")
_POSTCODE_AFTER_CUE = (
    r"(?:(?i:\b(?:post ?code|postal code|postal|zip(?: ?code)?|cep|plz|code postal|pin ?code|pincode|eircode"
    # devformats dev set: the cue words of more countries, and words between the cue and the code
    r"|cap|cp|c[óo]digo postal|codice postale|kod pocztowy|postleitzahl|postnummer|postinumero|irányítószám|psč"
    # devwritten dev set: plurals ("both our postcodes, A and B"), Romanian
    r"|post ?codes|postal codes|zip ?codes|zipcodes?|cod po[șs]tal)\b)"
    r"|(?i:c\.p\.)|〒|\bPIN(?=[ ]*:?[ ]*[1-9]\d{2}[ ]?\d{3}\b))"
    r"(?:[ ]+(?i:is|was|are|were|on it was|on the \w+ (?:is|was)|should be|number|no\.?))?[ ]*[:#,-]?[ ]*"
    # devwritten dev set: a form's label on its own line, the code on the next ("Postcode\n01764")
    r"(?:\n[ ]*)?"
    rf"(?P<code>{_GENERIC_POSTCODE})(?![\w-])"
)
# devwritten dev set: the next code of a list after a cue ("postcodes, 940057 and 57310", "zip 12345 or 12346").
_POSTCODE_LIST_NEXT = rf"[ ]*(?:,|,?[ ]+(?:and|or|&)|[ ]*/)[ ]+(?P<code>{_GENERIC_POSTCODE})(?![\w-])"
# devwritten dev set: a postcode next to a town without a street, or after "moved to" / "live in": "Köln (11660)",
# "Thessaloniki 667 20", "in 34452 Paris", "I moved to 72540 last year". Shapes that say postcode: four to six digits,
# "123 45", "1234 AB", "12345-678", with a country prefix ("D-10115", "GR-430 26").
_PLACE_LEAD = r"(?:^|(?<=[,\n(])|\b(?i:in|from|to|at|near|nearest|of))[ ]*"
_PLACE_TOWN = r"(?P<town>\p{Lu}[\w'’-]+(?:[ ]\p{Lu}[\w'’-]+){0,2})"
_PLACE_END = (
    r"(?![\w/-]|[.,]\d)(?=[ ]*(?:[,.;:)!?\n]|$)|[ ]+(?i:now|instead|too|and|but|last|next|this|since|please|closed"
    r"|area|region|district|then|so|where|which|recently|before|after|until|yet)\b)"
)
_TOWN_POSTCODES = (
    rf"{_PLACE_LEAD}{_PLACE_TOWN}[ ]*\([ ]*(?P<code>{_PLACE_CODE})[ ]*\)",
    rf"{_PLACE_LEAD}{_PLACE_TOWN},?[ ]+(?P<code>{_PLACE_CODE}){_PLACE_END}",
    rf"\b(?i:in|from|to|at|near)[ ]+(?P<code>{_PLACE_CODE})(?![\w/-]|[.,]\d)[ ]+{_PLACE_TOWN}(?![\w'’-])",
    # a code and a town that end their clause, after a comma or alone on a line: ", 00184 Roma.", "\n00-950 Warszawa"
    rf"(?:(?<=,)|(?<=^|\n))[ ]*(?P<code>{_PLACE_CODE}|\d{{2}}-\d{{3}})(?![\w/-]|[.,]\d)[ ]+{_PLACE_TOWN}"
    r"(?=[ ]*(?:[,.;:!?\n]|$))",
    r"\b(?:(?i:moved|move|moving|relocated|relocating)[ ]+(?i:to)|(?i:live|living|lives|based|we're|we[ ]are|i'm"
    r"|i[ ]am)[ ]+(?i:in)|(?i:nearest|closest[ ]to|near))[ ]+"
    rf"(?P<code>{_PLACE_CODE}){_PLACE_END}",
)
# Capitalised words that come before a number and are no town ("Room 1234", "in March 2024", "Order (12345)").
_NOT_TOWNS = frozenset(
    {
        *("january", "february", "march", "april", "may", "june", "july", "august", "september", "october"),
        *("november", "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov"),
        *("dec", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "room", "floor"),
        *("gate", "terminal", "platform", "line", "route", "flight", "order", "invoice", "ticket", "case", "version"),
        *("model", "step", "chapter", "section", "page", "year", "total", "account", "balance", "reference"),
        *("booking", "parcel", "serial", "membership", "statement", "quote", "product", "error", "loan", "policy"),
        *("contract", "cheque", "transaction", "card", "tracking", "item", "items", "unit", "suite", "apt", "flat"),
        *("box", "po", "no", "nr", "number", "code", "pin", "id", "ref", "tel", "phone", "mobile", "fax", "iban"),
        *("acct", "acc", "sort", "bsb", "routing", "customer", "member", "batch", "level", "bus", "train", "seat"),
        *("table", "week", "day", "month", "chf", "eur", "usd", "gbp", "covid", "windows", "iphone", "android"),
        *("i", "we", "you", "the", "a", "an", "my", "our", "euro", "euros", "dollars", "pounds", "units", "points"),
        *("people", "customers", "pieces", "times", "miles", "km", "kg", "users", "members", "accounts", "orders"),
    }
)
# devformats dev set: a postcode in the lines after a street address, next to its town, state or province ("Denver,
# CO 80203", "Perth WA 6000", "Singapore 560123", ", 1100-148 Lisboa", "\n185 87 Ostrava"), not a quantity.
_TAIL_POSTCODE = (
    r"(?:(?<=[,\n-][ ]*)|(?<=\p{Lu}[\w'’-]*[ ]*,?[ ]+)|(?<=(?i:c\.p\.|cep|pin)[ ]*:?[ ]*)|(?<=\p{Lu}[\w'’-]*[ ]*\())"
    r"(?P<code>(?<![\w#/-])(?:[A-Z]\d{4}[A-Z]{3}|(?:[A-Z]{1,2}-)?\d{4,6}(?:-\d{3,4})?|(?:[A-Z]{1,2}-)?\d{3}[ ]\d{2,3}"
    r"|\d{2}-\d{3}|\d{3}-\d{4}|(?:[A-Z]{1,2}-)?\d{4}[ ]?[A-Z]{2})(?![\w/-]|[.,]\d))"
    r"(?=[ ]*(?:[,.;:)\n!?]|$)|[ ]+(?!(?i:times|minutes|hours|days|weeks|months|years|people|customers|euros?|"
    r"dollars|pounds|eur|usd|gbp|km|miles|items|pages)\b)\S)"
)
_POSTCODE_AFTER_STREET = rf"[ ]*[,\n][ ]*(?:\w+[ ]*:[ ]*)?(?P<code>{_GENERIC_POSTCODE})(?![\w-])"
# ", Aarhus 08608", " (Cork), postcode 884869" is the cue's; "\nCity: Aarhus" has no code
_POSTCODE_AFTER_TOWN = rf"[ ]*,[ ]*{_TOWN}[ ]+(?P<code>{_GENERIC_POSTCODE})(?![\w-])"
_STREET_ABOVE_POSTCODE = (
    rf"(?m)(?<=^[ ]*)\p{{Lu}}[^\n\d]{{1,40}}?[ ]{_HOUSE}(?=[ ]*\n[ ]*(?:(?:{_GENERIC_POSTCODE})[ ]+\p{{Lu}}"
    # devwritten dev set: or a town and then its postcode on the next line ("Stadiou 59\nThessaloniki (GR-524 37)")
    rf"|{_TOWN},?[ ]+\(?{_PLACE_CODE}\)?[ ]*(?:\n|$)))"
)


def _phone_score(raw: str) -> float:
    """+CC: certain; a national form with a trunk 0 or separators: likely; a bare digit run: only with context."""
    if raw.lstrip("(").startswith("+"):
        return 0.85
    if raw.startswith(("0", "(")) or re.search(r"\d[ .()-]+\d", raw):
        return 0.6
    return 0.4


_IPV4 = re.compile(r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}")
# A number right after one of these words is that kind of number, not a phone number.
_OTHER_NUMBER_CUE = re.compile(
    r"\b(?i:ticket|order|ref|reference|invoice|case|routing|account|accounts|acct|a/c|passport|batch|tracking|loan"
    r"|policy|transaction|member(?:ship)?|customer|iban|sort code|ssn|social security|card|parcel|id)"
    r"(?:[ ]+(?i:number|no\.?|nr\.?|num|id|code))?[ ]*(?:is[ ]+)?[:#(]?[ ]*$"
)
# A Luhn-valid number right after these words is an account number, not a card ("account 561980231576").
_ACCOUNT_CUE = re.compile(
    r"\b(?i:accounts?|acct|a/c|acc)\.?(?:[ ]+(?i:number|no\.?|nr\.?|num|#))?[ ]*(?:is[ ]+)?[:#]?[ ]*$"
)
_CODE_BEFORE = re.compile(r"(?<![\w])[A-Za-z]+\d+[ ]$")
_DATE_LIKE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}|\d+[.,]\d{2}")


def _not_a_phone(text: str, start: int, end: int) -> bool:
    """A date, an amount or a piece of a longer number that libphonenumber's matcher would read as a number."""
    candidate = text[start:end]
    if _IPV4.fullmatch(candidate.strip()):
        return True
    if _OTHER_NUMBER_CUE.search(text, max(0, start - 40), start):  # "ticket 03383506", "routing number 050643200"
        return True
    if sum(c.isdigit() for c in candidate) < 7:  # short codes of small countries are no one's contact number
        return True
    if not candidate.lstrip("(").startswith("+") and _DATE_LIKE.fullmatch(candidate.strip()):
        return True
    if re.fullmatch(r"\d{5}-\d{4}", candidate.strip()):  # a ZIP+4 postcode
        return True
    if _CODE_BEFORE.search(text, max(0, start - 12), start):  # "RF73 7962 2613 658": part of a longer code
        return True
    before, after = text[max(0, start - 2) : start], text[end : end + 2]
    # an amount, a piece of a decimal number, or one part of a dashed code ("INV-2025-00417", "A-5531-2290")
    return bool(re.search(r"[$€£¥]|\d[.,]$|[#]$|\w-$", before) or re.match(r"-\w", after))


@functools.cache
def _street_patterns() -> tuple[Any, ...]:
    """The street patterns, compiled on first use; English street types are the US postal list Faker ships."""
    import regex
    from faker.providers.address.en_US import Provider

    english_types = "|".join(sorted({re.escape(suffix) for suffix in Provider.street_suffixes}, key=len, reverse=True))
    patterns = [pattern.replace("{english_types}", english_types) for pattern in _STREET_PATTERNS]
    # the opening-word pattern last: it is the one that needs no digit in the text
    opening = patterns.pop(_OPENING_PATTERN)
    return tuple(regex.compile(p) for p in (*patterns, _STREET_AFTER_CUE, _STREET_ABOVE_POSTCODE, opening))


@functools.cache
def _strong_postcodes() -> tuple[Any, ...]:
    import regex

    areas = "|".join(sorted(_UK_POSTCODE_AREAS, key=len, reverse=True))
    states = "|".join(_US_STATES)
    return tuple(
        regex.compile(pattern.replace("{uk_areas}", areas).replace("{us_states}", states))
        for pattern in _STRONG_POSTCODES
    )


@functools.cache
def _tail_postcode() -> Any:
    import regex

    return regex.compile(_TAIL_POSTCODE)


@functools.cache
def _town_postcodes() -> tuple[Any, Any]:
    import regex

    return (
        tuple(regex.compile(p) for p in _TOWN_POSTCODES),
        regex.compile(_POSTCODE_LIST_NEXT),
    )


_YEAR = re.compile(r"(?:19|20)\d{2}")
_FOUR_DIGITS = re.compile(r"\d{4}|\d{3}[ ]\d{2}")  # every shape of _PLACE_CODE has one


@functools.cache
def _postcode_context() -> tuple[Any, Any, Any]:
    """Postcodes after a cue, right after a street address, and after a street address's town."""
    import regex

    return (
        regex.compile(_POSTCODE_AFTER_CUE),
        regex.compile(_POSTCODE_AFTER_STREET),
        regex.compile(_POSTCODE_AFTER_TOWN),
    )


_OPENING_PATTERN = 5
# "Sydney NSW 2000" after "moved to" is a town, a state and a postcode, not a street and a house number
_STATE_AND_CODE = re.compile(
    r"[ ](?:" + "|".join(("NSW", "VIC", "QLD", "TAS", "ACT", "NT", *_US_STATES)) + r")[ ]+\d{4,5}$"
)
# "Rotterdam 3011 AB" after "moved to" is a town and a Dutch postcode, not a street and a house number (devwritten)
_TOWN_AND_DUTCH_CODE = re.compile(r"[A-Z][a-z]+[ ]\d{4}[ ]?[A-Z]{2}\b")
# A street never starts with another kind of number's word: "Invoice 2024, 4500 Euros" is no street and postcode.
_NOT_A_STREET_START = re.compile(
    r"(?i:order|invoice|ticket|case|version|model|step|chapter|section|page|year|total|account|balance|reference"
    r"|booking|parcel|serial|membership|statement|quote|product|error|loan|policy|contract|cheque|transaction|card"
    r"|tracking|item|items|room|gate|terminal|platform|flight|seat|table|level|week|day|month|customer|member)\b"
)
_TITLE_FIRST = re.compile(r"Dr\.?[ ]")  # "Dr Okafor 2B" is a doctor; "Dr" as "Drive" comes after the name
_UNIT_ONLY = re.compile(r"(?i)(?:suite|apt\.?|unit|flat|floor|interior|piso)[ ]*\d+\w?")


def _is_street(value: str) -> bool:
    """Letters and a house number, or an opening street word and a name; not a flat or suite number alone."""
    if _UNIT_ONLY.fullmatch(value) or sum(c.isalpha() for c in value) < 3 or _TITLE_FIRST.match(value):
        return False
    return _has_digit(value) or re.match(rf"(?i:{_OPENING_WORD})[ ]", value) is not None


def _has_digit(value: str) -> bool:
    return any(c.isdigit() for c in value)


def _has_letters_and_digits(value: str) -> bool:
    return any(c.isdigit() for c in value) and sum(c.isalpha() for c in value) >= 3


def _covered(result: Any, others: Sequence[Any]) -> bool:
    return any(other.start <= result.start and result.end <= other.end for other in others)


def cue_recognizers(language: str, entities: Sequence[str]) -> list[EntityRecognizer]:
    """Pattern recognizers anchored on a cue word before the value: ids, dates of birth, ages, bank details, names.

    A cue makes a short or common shape personal: "passport X1234567", "born on 3 May 1961", "a 79 year old", "sort
    code 12-34-56", "account number 12345678", "my SSN is 123-45-6789" (Presidio's SSN recognizer rejects numbers such
    as 123-45-6789 as examples; after an explicit cue the writer meant it).
    """
    from presidio_analyzer import Pattern

    cue = recognizer_classes()["cue"]
    gap = r"[^\d\n]{0,30}?"
    # a bank or branch code's own word, then at most "number"/"no."/"code", "is", a colon: nothing else
    code_cue = r"(?:[ ]+(?i:number|no\.?|nr\.?|code|#))?[ ]*(?:(?i:is)[ ]+)?[:#]?[ ]*"
    number_word = r"(?:[ ]+(?i:number|no\.?|nr\.?|num|n[°º]\.?))?"
    account_cue = (
        r"(?i:konto(?:nummer|-?nr\.?)?|compte|cuenta(?:[ ]clabe)?|conta(?:[ ]corrente)?|c/c|rekening(?:nummer)?|"
        r"numer[ ]konta|nuban|clabe|account[ ]number)"
    )
    month = (
        r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|"
        r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
    )
    date = (
        rf"(?:\d{{1,2}}[./-]\d{{1,2}}[./-]\d{{2,4}}|\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}(?:st|nd|rd|th)?[ ](?i:{month})"
        rf"\.?,?[ ]\d{{4}}|(?i:{month})\.?[ ]\d{{1,2}}(?:st|nd|rd|th)?,?[ ]\d{{4}})"
    )
    table: dict[str, list[Pattern]] = {
        "PASSPORT": [
            Pattern(
                "Passport after cue",
                r"(?<=\b(?i:passport)(?:[ ](?i:number|no\.?|nr\.?|#|id))?[ ]*[:#(]?[ ]*(?:(?i:is|was)[ ]+)?)"
                r"(?=[A-Z0-9]*\d)[A-Z0-9]{6,10}\b",
                0.8,
            )
        ],
        "DATE_OF_BIRTH": [
            Pattern(
                "Date after birth cue",
                rf"(?<=\b(?i:born(?:[ ]on)?|date[ ]of[ ]birth|d\.?o\.?b\.?|birth ?date|birthday(?:[ ]is)?)"
                rf"[ ]*[:,-]?[ ]*(?:(?i:is|on)[ ]+)?){date}",
                0.85,
            )
        ],
        "AGE": [
            Pattern("Years old", r"\b\d{1,3}(?=[ -](?i:years?|yrs?)[ -](?i:old)\b)", 0.7),
            Pattern("Year-old", r"\b\d{1,3}(?=[ -](?i:year)[ -]?(?i:old)s?\b)", 0.7),
            Pattern("Aged", r"(?<=\b(?i:aged|age|turned|turning)[ ]*:?[ ]*)\d{1,3}\b(?![.,:/]\d)", 0.7),
            Pattern(
                "I am N",
                r"(?<=\b(?i:i'm|i’m|i am|he's|she's|he is|she is)[ ]+)\d{1,3}"
                r"(?=[ ]*(?:,|\.(?!\d)|$|[ ](?i:and|now|yo|y/o|this|next|last)\b))",
                0.7,
            ),
        ],
        "US_SSN": [
            Pattern(
                "SSN after cue",
                rf"(?<=\b(?i:ssn|social security(?: number| no\.?)?){gap})(?<!\d)\d{{3}}[- ]?\d{{2}}[- ]?\d{{4}}(?!\d)",
                0.85,
            )
        ],
        "US_BANK_NUMBER": [
            Pattern(
                "Routing number after cue",
                rf"(?<=\b(?i:routing|aba|rtn|transit|bsb|ifsc|swift|bank code|blz)"
                rf"(?:[ ]+(?i:number|no\.?|code|#))?{gap})"
                r"(?<![\d.,])\d{3}[ -]?\d{3}[ -]?\d{3}(?![\d-]|[.,]\d)",
                0.85,
            ),
            # bank and branch codes of other countries, each after its own cue (devformats dev set)
            Pattern("BSB after cue", rf"(?<=\b(?i:bsb){code_cue})\d{{3}}[ -]?\d{{3}}(?![\d-])", 0.85),
            Pattern(
                "Transit and institution after cue",
                rf"(?<=\b(?i:transit(?:[ ]number)?(?:/institution)?){code_cue})\d{{5}}(?:-\d{{3}})?(?![\d-])",
                0.85,
            ),
            Pattern("Institution after cue", rf"(?<=\b(?i:institution){code_cue})\d{{3}}(?![\d-])", 0.85),
            Pattern(
                "BLZ after cue",
                rf"(?<=\b(?i:blz|bankleitzahl|bank[ ]code){code_cue})\d{{3}}[ ]?\d{{3}}[ ]?\d{{2}}(?![\d-])",
                0.85,
            ),
            Pattern("Agencia after cue", rf"(?<=\b(?i:ag[eê]ncia|ag\.){code_cue})\d{{4}}(?:-[\dXx])?(?![\d-])", 0.85),
            Pattern(
                "Branch code next to an account",
                rf"(?<=\b(?i:branch){code_cue})\d{{3,6}}(?![\d-])(?=[^\d\n]{{0,25}}\b(?i:account|acct|a/c|acc)\b)"
                rf"|(?<=\b(?i:account|acct|a/c|acc)\b[^\n]{{0,40}}\b(?i:branch){code_cue})\d{{3,6}}(?![\d-])",
                0.85,
            ),
        ],
        "UK_SORT_CODE": [
            Pattern(
                "Sort code after cue",
                rf"(?<=\b(?i:sort[ -]?codes?)\b{gap})(?<!\d)\d{{2}}[ -]?\d{{2}}[ -]?\d{{2}}(?![\d-])",
                0.85,
            ),
            Pattern(
                "Sort code after short cue",
                rf"(?<=\b(?i:sort|s/c|sc){code_cue})\d{{2}}[ -]?\d{{2}}[ -]?\d{{2}}(?![\d-])",
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
        ],
        "UK_ACCOUNT_NUMBER": [
            Pattern(
                "Account number after cue",
                rf"(?<=\b(?i:accounts?|acc|a/c|acct)\.?(?:[ ]+(?i:number|no\.?|num|nr\.?|#))?{gap})"
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
                rf"(?<=\b{account_cue}{gap})(?<![\d.,])\d{{8,18}}(?![\d-]|[.,]\d)",
                0.85,
            ),
            Pattern(
                "Short or grouped account right after cue",
                rf"(?<=\b(?:{account_cue}|(?i:accounts?|acc|a/c|acct)\.?){number_word}{code_cue})(?<![\d.,])"
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
        ],
    }
    # What every pattern of an entity needs, so that a text without it is skipped: its cue words or its shapes.
    shapes = (
        r"\d{2}[- ]\d{2}[- ]\d{2}[ ]+\d{4}|\d{2}-\d{4}-\d{7}|\d{5}[ ]\d{5}[ ]|\d{5}[ -]\d{3}[ -]\d{7}"
        r"|\d{2}-\d{2}-\d{2}[ ]*[/,]|\d[ ]*[/,][ ]*\d{2}-\d{2}-\d{2}"
    )
    prefilters = {
        "PASSPORT": r"passport",
        "DATE_OF_BIRTH": r"born|birth|d\.?o\.?b",
        "AGE": r"year|yr|age|turn|i'm|i’m|i am|he's|she's|he is|she is",
        "US_SSN": r"ssn|social security",
        "US_BANK_NUMBER": r"routing|aba|rtn|transit|bsb|ifsc|swift|bank ?code|blz|bankleitzahl|institution|ag[eê]ncia"
        r"|ag\.|branch",
        "UK_SORT_CODE": rf"sort|s/c|\bsc\b|{shapes}",
        "UK_ACCOUNT_NUMBER": rf"acc|a/c|konto|compte|cuenta|conta|c/c|rekening|konta|nuban|clabe|{shapes}",
    }
    return [
        cue(entity, f"{entity.title().replace('_', '')}CueRecognizer", patterns, language, prefilters.get(entity))
        for entity, patterns in table.items()
        if entity in entities
    ]


def name_cue_recognizer(language: str) -> EntityRecognizer:
    """One to three capitalised words after a cue that introduces a person (introduction, title, sign-off)."""
    from presidio_analyzer import Pattern

    word = r"\p{Lu}[\w'’-]*\p{Ll}[\w'’-]*"
    name = rf"{word}(?:[ ]{{1,2}}{word}){{0,2}}"
    patterns = [
        Pattern(
            "Name after introduction",
            r"(?<=\b(?i:my name is|my name's|i am called|this is|account holder|name on the account is|"
            r"on behalf of(?: my \w+,?)?|my (?:husband|wife|partner|mother|father|son|daughter|brother|sister),?|"
            r"name|full name|contact|recipient|applicant|customer|holder"
            # devwritten dev set: a parcel's or a payment's addressee
            r"|ship to|deliver to|c/o|attn|for the attention of|payee|beneficiary)[ ]*:?[ ]+)" + name + r"\b",
            0.85,
        ),
        Pattern("Name after title", r"(?<=\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?[ ]+)" + name + r"\b", 0.85),
        Pattern(
            "Name after sign-off",
            r"(?<=\b(?i:regards|best wishes|best|sincerely|faithfully|many thanks|thanks|thank you|cheers)"
            r"[ ]*[,.!-]?[ \n]+)" + rf"(?:{name}|{word},[ ]{word})" + r"(?=[ ]*[.!]?[ ]*$)",
            0.85,
        ),
        Pattern(
            "Name after greeting",
            r"(?<=^[ ]*(?i:hi|hello|hey|dear|good morning|good afternoon|good evening)[ ]+)"
            + name
            + r"(?=[ ]*[,!:\n])",
            0.85,
        ),
    ]
    return recognizer_classes()["cue"]("PERSON", "NameCueRecognizer", patterns, language)


def name_after_verb_recognizer(language: str) -> EntityRecognizer:
    """A first name and a surname after a verb of contact ("spoke to", "ask for", "thanks to"): a person when every
    word is name-like (a known name or no English word), so "thanks to Apple Pay" stays."""
    from presidio_analyzer import Pattern

    from feedbackflow.privacy import names

    word = r"\p{Lu}[\w'’-]*\p{Ll}[\w'’-]*"
    pattern = Pattern(
        "Name after a verb of contact",
        r"(?<=\b(?i:spoke to|spoke with|speak to|speaking to|talked to|talking to|asked for|ask for|tell|told|"
        r"thanks to|thank|escalate to|escalated to|pass (?:this|it) on to|forwarded to|forward to|cc|according to|"
        r"called|emailed|met with|dealt with|helped by|handled by|served by|signed by|filled in by)[ ]+)"
        + rf"{word}(?:[ ](?:\p{{Lu}}\.[ ])?{word}){{1,2}}\b",
        0.85,
    )
    recognizer = recognizer_classes()["cue"]("PERSON", "NameAfterVerbRecognizer", [pattern], language)

    def validate_result(pattern_text: str) -> bool | None:
        words = re.findall(r"[^\W\d_]{2,}", pattern_text)
        return None if all(names.is_first_name(w) or names.is_surname_like(w) for w in words) else False

    recognizer.validate_result = validate_result  # type: ignore[method-assign]
    return recognizer


def known_name_recognizer(language: str) -> EntityRecognizer:
    """A capitalised known first name followed by one or two capitalised words: "Brett Fisher", "Georgia Price".

    The small spaCy model misses many names in running text, or calls them places ("Georgia Price"); a first name
    from :mod:`feedbackflow.privacy.names` followed by a capitalised surname-like word is a person.
    """
    from presidio_analyzer import EntityRecognizer, RecognizerResult

    from feedbackflow.privacy import names

    class KnownFirstNameRecognizer(EntityRecognizer):
        def load(self) -> None:
            return None

        def analyze(self, text, entities, nlp_artifacts=None):  # type: ignore[no-untyped-def]
            pair, initial = _name_patterns()
            results = []
            for match in pair.finditer(text):
                first, last = match.group("first"), match.group("last")
                if last.casefold() in names.stop_words():
                    continue
                if names.is_first_name(first) or names.is_first_name(first.split("-")[0]):
                    # above spaCy's 0.85: the small model calls many such names places ("Merete Dam")
                    results.append(RecognizerResult("PERSON", match.start(), match.end(), 0.86))
            for match in initial.finditer(text):  # "S. Nielsen", "J. R. Okafor"
                last = match.group("last")
                if last.casefold() not in names.stop_words() and names.is_surname_like(last):
                    results.append(RecognizerResult("PERSON", match.start(), match.end(), 0.6))
            return results

    return KnownFirstNameRecognizer(
        supported_entities=["PERSON"], supported_language=language, name="KnownFirstNameRecognizer"
    )


_NAME_WORD = r"\p{Lu}\p{Ll}+(?:\p{Lu}\p{Ll}+)?(?:['’-]\p{Lu}?\p{Ll}+)*"
# A capitalised first name (hyphenated too), an optional middle initial or particle, a capitalised surname.
_CAPITALISED_PAIR = (
    rf"(?<![\w@./-])(?P<first>{_NAME_WORD})[ ]{{1,2}}(?:\p{{Lu}}\.[ ]|(?:van der|van|von|de la|de|da|dos|del|el|le|"
    rf"la|di|du|ter|ten|bin|ibn)[ ])?(?P<last>{_NAME_WORD})(?![\w@/-])"
)
_INITIAL_NAME = rf"(?<![\w@./-])(?:\p{{Lu}}\.[ ]?){{1,2}}[ ](?P<last>(?:O['’])?{_NAME_WORD})(?![\w@/-])"


@functools.cache
def _name_patterns() -> tuple[Any, Any]:
    import regex

    return regex.compile(_CAPITALISED_PAIR), regex.compile(_INITIAL_NAME)
