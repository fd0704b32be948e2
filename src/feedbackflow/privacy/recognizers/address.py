"""Street addresses in many languages and the postcodes written with them."""

from __future__ import annotations

import functools
import re
from typing import Any

from presidio_analyzer import EntityRecognizer, RecognizerResult

from feedbackflow.privacy.recognizers.common import has_digit

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
    return has_digit(value) or re.match(rf"(?i:{_OPENING_WORD})[ ]", value) is not None


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
            if after and has_digit(after.group("code")):
                found[after.span("code")] = 0.7
        tail = _tail_postcode()
        for _, end in streets:
            stop = text.find("\n\n", end, end + 90)
            for match in tail.finditer(text, end, stop if stop != -1 else min(len(text), end + 90)):
                span = match.span("code")
                if not any(s <= span[0] < e for s, e in streets):
                    found.setdefault(span, 0.7)
        return [RecognizerResult("POSTCODE", s, e, score) for (s, e), score in found.items()]
