"""The second half of the dev set: the issue's scope list of personal-data shapes, in its own templates and locales.

``data/pii_eval/pii_eval.jsonl`` (:mod:`tools.pii.evalset`) holds banking messages with the ten original
entity types. This generator writes ``data/pii_eval/pii_eval_shapes.jsonl``: a *dev* set (recognizers are tuned on
it) that covers every kind of personal data the issue lists as in scope, labelled with the same fifteen types as the
locked test set so the two read side by side:

* names in any case and of many origins, alone, with particles ("Marco van der Berg"), hyphenated, next to digits,
  in lists of full names or surnames only, after verbs ("spoke to", "ask for") and in greetings;
* street addresses in each country's own order (Faker's street formats of the dev locales), in forms, letter heads
  and running text; postcodes before or after the town, after a cue, or alone on a form line;
* phone numbers libphonenumber validates, national and international, in the layouts people write them;
* cards of every brand Faker knows (Visa 13/16/19, Mastercard, Amex, Discover, Diners, JCB, Maestro), IBANs,
  account numbers (UK, US, Indian, with or without a routing or sort code), e-mail, IP addresses, personal URLs;
* national ids with their cue (US SSN in three layouts, UK NI number, passport numbers of several countries),
  dates of birth and ages in context;
* a quarter of negatives: amounts, order, invoice, ticket and tracking numbers, dates, times, versions, product codes.

It is written by the same team as the recognizers, from the issue's list, without reading the locked test set's
templates or misses. Its locales share none with the locked set's name, address, phone or IBAN locales (a unit test
checks), and a third of its names come from Faker locales the name lists (:mod:`feedbackflow.privacy.names`) do not
read, so a name rule is not graded only on names it was built from.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable
from pathlib import Path

from tools.pii.evalset import Message, date_in_last_years, date_of_birth

DEFAULT_PATH = Path("data/pii_eval/pii_eval_shapes.jsonl")
SEED = 4711
SIZE = 1500

# The same fifteen labels (and the same accepted detector names) as the locked test set, so both read alike.
ENTITIES = (
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "IP_ADDRESS",
    "URL",
    "STREET_ADDRESS",
    "POSTCODE",
    "US_SSN",
    "UK_NINO",
    "PASSPORT",
    "DATE_OF_BIRTH",
    "AGE",
    "BANK_ACCOUNT",
)

# Names: gazetteer locales (the name lists read them) and locales the lists do not read (es_CL, es_CO, az_AZ, ...).
NAME_LOCALES = (
    *("en_GB", "en_US", "en_IE", "en_IN", "de_DE", "fr_FR", "es_ES", "nl_NL", "da_DK", "cs_CZ", "tr_TR", "en_NG"),
    *("es_CL", "es_CO", "az_AZ", "fr_CH", "de_LU", "zu_ZA"),
)
ADDRESS_LOCALES = (
    *("en_GB", "en_US", "en_IE", "en_IN", "de_DE", "de_CH", "fr_FR", "fr_CH", "es_ES", "es_MX", "nl_NL", "da_DK"),
    *("sk_SK", "hr_HR", "sl_SI", "ro_RO", "es_CL"),
)
PHONE_REGIONS = ("GB", "IE", "IN", "DE", "CH", "LU", "ES", "NL", "DK", "NO", "CZ", "SK", "RO", "ZA", "GR")
IBAN_LOCALES = ("en_GB", "de_DE", "fr_FR", "es_ES", "nl_NL", "da_DK", "en_IE", "ro_RO", "sk_SK", "el_GR")
CARD_TYPES = ("visa16", "visa13", "visa19", "mastercard", "amex", "discover", "diners", "jcb15", "jcb16", "maestro")

# {SLOT} or {SLOT:style}; LIST slots write several PERSON spans. Written for this set only.
_TEMPLATES: tuple[str, ...] = (
    # names, any case, any origin, lists, verbs, greetings
    "Spoke to {PERSON} on the phone yesterday and she promised a refund within five days.",
    "please pass this on to {PERSON:lower}, she handled my claim last spring",
    "I asked for {PERSON} at the counter but was told he had left the company.",
    "Thanks to {PERSON} for sorting out the mess with my standing orders!",
    "Hi {PERSON}, following our chat: the second charge is still there.",
    "Complaint filed by {PERSON:caps} regarding the branch closure.",
    "cc {PERSON:lower} and {PERSON:lower} - they both saw the letter",
    "The agents involved were {LIST:full}. None of them called back.",
    "Staff on duty that day: {LIST:surnames}.",
    "My neighbours {LIST:full} got the same scam text.",
    "{PERSON} 3rd floor, flat 12, keeps getting my post.",
    "Please deliver to {PERSON} 2B, reception will sign.",
    "Joint holders: {PERSON} & {PERSON}.",
    "I'm {PERSON}, customer since 2009, and this is the worst service I have had.",
    "{PERSON} wrote to you twice in April. Nobody replied.",
    "Yesterday {PERSON:lower} from the mortgage team told me something different.",
    "escalate to {PERSON} please, she knows the history",
    "Form filled in by {PERSON:initial} on behalf of the estate.",
    "Tell {PERSON} that the cheque bounced again.",
    "Our accountant, {PERSON}, disputes the interest calculation.",
    # addresses and postcodes in each country's order
    "My new address is {ADDRESS}, {POSTCODE} {CITY}.",
    "Post the card to {ADDRESS}, {CITY} {POSTCODE} please.",
    "Address: {ADDRESS}\nPostal code: {POSTCODE}\nCity: {CITY}",
    "I moved from {ADDRESS} to {ADDRESS} in March and the statements still go to the old place.",
    "The letter went to {ADDRESS} which is my ex-partner's house.",
    "{PERSON}\n{ADDRESS}\n{POSTCODE} {CITY}\n\nDear Sir or Madam, I wish to close my account.",
    "Delivery address {ADDRESS} ({CITY}), postcode {POSTCODE}.",
    "zip {POSTCODE} is rejected by your form even though it is correct",
    "Your courier left the parcel at {ADDRESS} instead of number 4.",
    "Branch finder can't find anything near {POSTCODE}, is that right?",
    "We live at {ADDRESS}, {CITY}. Please update the records.",
    # phone numbers
    "Call me back on {PHONE}, any time after 6pm.",
    "mobile {PHONE} / work {PHONE}",
    "My number changed to {PHONE:national}, please update it.",
    "Tried ringing {PHONE:international} from abroad but the line was dead.",
    "whatsapp me at {PHONE} if that's easier",
    "Tel. {PHONE:national} - ask for the owner.",
    # cards, IBAN, accounts
    "Someone used my card {CARD} at a petrol station in another country.",
    "card number: {CARD} expiry 11/29 - please cancel it",
    "The refund went to {CARD} instead of my current card.",
    "{CARD} was declined at checkout even though I have funds.",
    "Please refund to IBAN {IBAN}.",
    "the money was sent to {IBAN} by mistake, can you recall it?",
    "Beneficiary: {PERSON}, {IBAN}, reference rent May.",
    "My account number is {ACCOUNT:any} and the sort code {SORTCODE}.",
    "routing number {ROUTING}, account {ACCOUNT:us}, checking - the transfer never arrived.",
    "Acct no. {ACCOUNT:any} shows a fee I never agreed to.",
    "Transfer 200 to account {ACCOUNT:any} failed twice.",
    "salary account {ACCOUNT:in} (IFSC {IFSC}) is blocked since Monday",
    "Please close a/c {ACCOUNT:uk}, sort code {SORTCODE}.",
    "I have two accounts, {ACCOUNT:uk} and {ACCOUNT:uk}, please merge them.",
    # e-mail, IP, URL
    "Write to {EMAIL} rather than calling.",
    "my login from {IP} was blocked, which is my home connection",
    "My blog {URL} has screenshots of the error.",
    # national ids
    "My SSN is {SSN} and your form keeps rejecting it.",
    "social security number {SSN:spaced} - please fix it on my tax form",
    "ssn: {SSN:compact}",
    "National Insurance number {NINO} is wrong on my ISA declaration.",
    "NI no: {NINO:compact}",
    "Passport no. {PASSPORT} was used as ID when opening the account.",
    "I uploaded my passport ({PASSPORT}) three times already.",
    "ID check failed for passport number {PASSPORT} even though it is valid until 2031.",
    "my passport is {PASSPORT}, issued last year",
    # dates of birth and ages
    "Date of birth: {DOB}. Name: {PERSON}.",
    "I was born on {DOB:words} and your app says I am too young.",
    "DOB {DOB} - the system shows the wrong one.",
    "My father is {AGE} years old and can't use the app.",
    "a {AGE}-year-old customer should not have to queue outside",
    "I'm {AGE} and have banked with you all my life.",
    "Age: {AGE}. Occupation: retired.",
    "my mother, aged {AGE}, was charged twice",
    # mixed
    "{PERSON}, {PHONE}, {EMAIL} - please call before noon.",
    "Name: {PERSON}\nPhone: {PHONE}\nAddress: {ADDRESS}, {POSTCODE} {CITY}",
    "Hello, I'm {PERSON:lower}, born {DOB}, passport {PASSPORT}.",
    "For {PERSON} (DOB {DOB}), account {ACCOUNT:uk}: please update the address to {ADDRESS}.",
)

_NEGATIVE_TEMPLATES: tuple[str, ...] = (
    "Order #{NUM:7} arrived damaged, box 2 of 3 missing.",
    "Invoice INV-{NUM:4}-{NUM:5} lists 3 items at 49.99 each.",
    "Ticket {NUM:8} was closed without an answer on {DATE}.",
    "Tracking number 1Z{ALNUM:16} shows no movement since {DATE}.",
    "The fee went up from 4.50 to 7.25 per month on {DATE}.",
    "App version {NUM:1}.{NUM:2}.{NUM:3} still crashes on login.",
    "Product code {LETTERS:3}-{NUM:5} is out of stock at 14 stores.",
    "Transaction of 1,299.00 on {DATE} at 14:32 is correct, thanks.",
    "Reference {NUM:10} for my complaint, opened on {DATE}.",
    "I was on hold for 45 minutes between 09:10 and 09:55.",
    "The branch on Station Road opens at 9:30 on weekdays.",
    "Error code E{NUM:4} appears when I scan the QR code.",
    "We paid 250 EUR deposit and 1,750 EUR balance.",
    "Chapter 11 of the terms and conditions, section 4.2, says otherwise.",
    "Your ad says 0% interest for 24 months; I got 19.9% APR.",
    "Loan reference LN/{NUM:6}/{NUM:2} - monthly payment 312.45.",
    "The Premier League promotion code FOOTY{NUM:2} does not work.",
    "My card expires 08/27 and the new one hasn't arrived.",
    "Your Visa Platinum and Mastercard World cards have different fees?",
    "Batch {NUM:6} of cheques cleared on {DATE}.",
)

_CITIES = (
    "Leeds", "Cork", "Mumbai", "Hamburg", "Lyon", "Zaragoza", "Utrecht", "Aarhus", "Brno", "Ljubljana", "Cluj-Napoca",
    "Valparaíso", "Geneva", "Bratislava", "Split", "Guadalajara", "Denver", "Pune", "Galway", "Bordeaux",
)  # fmt: skip


class _Drawer:
    """Draws synthetic values of each shape from seeded Faker instances and a seeded random generator."""

    def __init__(self, seed: int) -> None:
        from faker import Faker

        self.rng = random.Random(seed)
        locales = sorted({*NAME_LOCALES, *ADDRESS_LOCALES, *IBAN_LOCALES})
        self.fakers = {locale: Faker(locale) for locale in locales}
        for n, locale in enumerate(locales):
            self.fakers[locale].seed_instance(seed + n)
        self.us = self.fakers["en_US"]
        self.locale: str | None = None

    def _name(self) -> tuple[str, str]:
        fake = self.fakers[self.rng.choice(NAME_LOCALES)]
        first = fake.first_name()
        last = fake.last_name()
        if self.rng.random() < 0.08:
            last = f"{self.rng.choice(('van der', 'de la', 'von', 'da', 'el', 'Mac', 'O’'))} {last}".replace(
                "O’ ", "O’"
            )
        return first, last

    def person(self, style: str = "") -> str:
        first, last = (part.replace("İ", "I") for part in self._name())
        if style == "lower":
            return f"{first} {last}".lower()
        if style == "caps":
            return f"{first} {last}".upper()
        if style == "initial":
            return f"{first[0]}. {last}"
        roll = self.rng.random()
        if roll < 0.08:
            return f"{self.rng.choice(('Mr', 'Mrs', 'Ms', 'Dr', 'Mx'))} {last}"
        if roll < 0.14:
            return f"{first} {self.fakers['en_US'].first_name()[0]}. {last}"
        if roll < 0.2:
            return f"{first} {last}".lower()
        return f"{first} {last}"

    def name_list(self, style: str) -> list[str]:
        count = self.rng.randint(2, 4)
        if style == "surnames":
            return [self._name()[1] for _ in range(count)]
        return [" ".join(self._name()) for _ in range(count)]

    def address(self) -> str:
        self.locale = self.rng.choice(ADDRESS_LOCALES)
        return " ".join(self.fakers[self.locale].street_address().split())

    def postcode(self) -> str:
        """A postcode of the message's address locale (a random one when the message has no address)."""
        return self.fakers[self.locale or self.rng.choice(ADDRESS_LOCALES)].postcode()

    def city(self) -> str:
        return self.rng.choice(_CITIES)

    def phone(self, style: str = "") -> str:
        import phonenumbers
        from phonenumbers import PhoneNumberFormat, PhoneNumberType

        region = self.rng.choice(PHONE_REGIONS)
        kind = self.rng.choice((PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE))
        example = phonenumbers.example_number_for_type(region, kind) or phonenumbers.example_number(region)
        if example is None:  # libphonenumber has an example for every region listed
            raise ValueError(f"no example number for {region}")
        while True:
            national = str(example.national_number)
            digits = national[:-5] + "".join(str(self.rng.randrange(10)) for _ in range(5))
            number = phonenumbers.parse(f"+{example.country_code}{digits}")
            if phonenumbers.is_valid_number(number):
                break
        style = style or self.rng.choice(("national", "international", "e164", "dots", "compact"))
        if style == "national":
            return phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
        if style == "international":
            return phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
        if style == "e164":
            return phonenumbers.format_number(number, PhoneNumberFormat.E164)
        national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
        if style == "dots":
            return re.sub(r"[ ()-]+", ".", national).strip(".")
        return re.sub(r"\D", "", national) if national.lstrip().startswith("0") else national

    def card(self) -> str:
        number = self.us.credit_card_number(card_type=self.rng.choice(CARD_TYPES))
        roll = self.rng.random()
        if roll < 0.4 or len(number) % 4:
            return number
        return (" " if roll < 0.8 else "-").join(number[i : i + 4] for i in range(0, len(number), 4))

    def iban(self) -> str:
        value = self.fakers[self.rng.choice(IBAN_LOCALES)].iban()
        return " ".join(value[i : i + 4] for i in range(0, len(value), 4)) if self.rng.random() < 0.5 else value

    def account(self, style: str) -> str:
        style = style if style != "any" else self.rng.choice(("uk", "us", "in"))
        length = {"uk": 8, "us": self.rng.randint(9, 12), "in": self.rng.randint(11, 16)}[style]
        digits = str(self.rng.randrange(1, 10)) + "".join(str(self.rng.randrange(10)) for _ in range(length - 1))
        if style == "uk" and self.rng.random() < 0.2:
            return f"{digits[:4]} {digits[4:]}"
        return digits

    def sort_code(self) -> str:
        return self.rng.choice(("-", " ", "")).join(f"{self.rng.randrange(100):02d}" for _ in range(3))

    def ssn(self, style: str = "") -> str:
        area, group, serial = self.rng.randint(101, 665), self.rng.randint(10, 99), self.rng.randint(1000, 9999)
        separator = {"spaced": " ", "compact": ""}.get(style, "-")
        return f"{area}{separator}{group}{separator}{serial}"

    def nino(self, style: str = "") -> str:
        letters = "ABCEGHJKLMNPRSTWXYZ"
        prefix = self.rng.choice(letters) + self.rng.choice(letters.replace("O", ""))
        digits = [f"{self.rng.randrange(100):02d}" for _ in range(3)]
        suffix = self.rng.choice("ABCD")
        return prefix + "".join(digits) + suffix if style == "compact" else " ".join((prefix, *digits, suffix))

    def passport(self) -> str:
        shapes = (
            lambda: "".join(self.rng.choice(string.digits) for _ in range(9)),  # US, UK
            lambda: (
                self.rng.choice("CFGHJK") + "".join(self.rng.choice("CFGHJKLMNPRTVWXYZ0123456789") for _ in range(8))
            ),
            lambda: (
                f"{self.rng.randint(10, 99)}{self.rng.choice(string.ascii_uppercase)}"
                f"{self.rng.choice(string.ascii_uppercase)}{self.rng.randint(10000, 99999)}"
            ),  # France
            lambda: (
                self.rng.choice("ABJKLMNPRSTZ") + "".join(self.rng.choice(string.digits) for _ in range(7))
            ),  # India
            lambda: (
                "".join(self.rng.choice(string.ascii_uppercase) for _ in range(3))
                + "".join(self.rng.choice(string.digits) for _ in range(6))
            ),  # Spain
            lambda: (
                "".join(self.rng.choice(string.ascii_uppercase) for _ in range(2))
                + "".join(self.rng.choice(string.ascii_uppercase + string.digits) for _ in range(6))
                + str(self.rng.randrange(10))
            ),  # Netherlands
        )
        return self.rng.choice(shapes)()

    def dob(self, style: str = "") -> str:
        date = date_of_birth(self.us, 18, 90)
        if style == "words":
            return self.rng.choice((f"{date.day} {date:%B %Y}", f"{date:%B} {date.day}, {date.year}"))
        return self.rng.choice((f"{date:%d/%m/%Y}", f"{date:%Y-%m-%d}", f"{date:%d.%m.%Y}", f"{date:%m/%d/%Y}"))

    def age(self) -> str:
        return str(self.rng.randint(18, 97))

    def ip(self) -> str:
        return self.us.ipv6() if self.rng.random() < 0.25 else self.us.ipv4_public()

    def url(self) -> str:
        first, last = self._name()
        handle = re.sub(r"[^a-z]", "", (first + last).lower()) or "home"
        return self.rng.choice(
            (
                f"https://{handle}.blogspot.com",
                f"www.{handle}.me/about",
                f"https://github.com/{handle}",
                f"http://{handle}.photos.example.org/2024",
            )
        )

    def email(self) -> str:
        return self.fakers[self.rng.choice(NAME_LOCALES[:12])].email()

    def filler(self, kind: str, size: int) -> str:
        alphabet = {"NUM": string.digits, "ALNUM": string.ascii_uppercase + string.digits}.get(
            kind, string.ascii_uppercase
        )
        return "".join(self.rng.choice(alphabet) for _ in range(size))

    def date(self) -> str:
        date = date_in_last_years(self.us, 2)
        return self.rng.choice((f"{date:%d/%m/%Y}", f"{date.day} {date:%B}", f"{date:%Y-%m-%d}"))


def _makers(drawer: _Drawer) -> dict[str, tuple[str | None, Callable[[str], str]]]:
    """Slot name -> (gold label or None, maker taking the slot's style)."""
    return {
        "PERSON": ("PERSON", drawer.person),
        "ADDRESS": ("STREET_ADDRESS", lambda _: drawer.address()),
        "POSTCODE": ("POSTCODE", lambda _: drawer.postcode()),
        "CITY": (None, lambda _: drawer.city()),
        "PHONE": ("PHONE_NUMBER", drawer.phone),
        "CARD": ("CREDIT_CARD", lambda _: drawer.card()),
        "IBAN": ("IBAN_CODE", lambda _: drawer.iban()),
        "ACCOUNT": ("BANK_ACCOUNT", drawer.account),
        "SORTCODE": ("BANK_ACCOUNT", lambda _: drawer.sort_code()),
        "ROUTING": ("BANK_ACCOUNT", lambda _: drawer.us.aba()),
        "IFSC": (None, lambda _: drawer.filler("LETTERS", 4) + "0" + drawer.filler("ALNUM", 6)),
        "EMAIL": ("EMAIL_ADDRESS", lambda _: drawer.email()),
        "IP": ("IP_ADDRESS", lambda _: drawer.ip()),
        "URL": ("URL", lambda _: drawer.url()),
        "SSN": ("US_SSN", drawer.ssn),
        "NINO": ("UK_NINO", drawer.nino),
        "PASSPORT": ("PASSPORT", lambda _: drawer.passport()),
        "DOB": ("DATE_OF_BIRTH", drawer.dob),
        "AGE": ("AGE", lambda _: drawer.age()),
        "DATE": (None, lambda _: drawer.date()),
    }


_SLOT = re.compile(r"\{([A-Z]+)(?::(\w+))?\}")


def _fill(template: str, drawer: _Drawer, makers: dict[str, tuple[str | None, Callable[[str], str]]]) -> Message:
    text, spans, position = "", [], 0
    for match in _SLOT.finditer(template):
        text += template[position : match.start()]
        slot, style = match.group(1), match.group(2) or ""
        if slot == "LIST":
            items = drawer.name_list(style)
            for n, item in enumerate(items):
                text += "" if n == 0 else (" and " if n == len(items) - 1 else ", ")
                spans.append((len(text), len(text) + len(item), "PERSON"))
                text += item
        elif slot in ("NUM", "ALNUM", "LETTERS"):
            text += drawer.filler(slot, int(style))
        else:
            label, make = makers[slot]
            value = make(style)
            if label is not None:
                spans.append((len(text), len(text) + len(value), label))
            text += value
        position = match.end()
    return Message("", text + template[position:], spans)


def generate(n: int = SIZE, seed: int = SEED, negative_share: float = 0.25) -> list[Message]:
    """``n`` messages, deterministic for a given seed; about ``negative_share`` of them hold no personal data."""
    drawer = _Drawer(seed)
    makers = _makers(drawer)
    messages = []
    for i in range(n):
        drawer.locale = None
        negative = drawer.rng.random() < negative_share
        template = drawer.rng.choice(_NEGATIVE_TEMPLATES if negative else _TEMPLATES)
        message = _fill(template, drawer, makers)
        message.id = f"shape-{i:05d}"
        messages.append(message)
    return messages


def main() -> None:
    """Write the set to :data:`DEFAULT_PATH` (``python -m tools.pii.devshapes``)."""
    from tools.pii.evalset import write_jsonl

    print(write_jsonl(generate(), DEFAULT_PATH))


if __name__ == "__main__":
    main()
