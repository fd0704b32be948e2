"""The locked PII test set: a second, independent generator whose output is written once and never tuned on.

:mod:`tools.pii.evalset` generates the *dev* set (``data/pii_eval``) that recognizers are tuned on. This
module generates the *locked test* set (``data/pii_test``) from different hands, so that a rule fitted to the dev
set's quirks does not get graded on them:

* other sentence shapes: free-running complaints, letters, chat transcripts, filled-in forms, lists of people,
  lower-case names, names next to digits;
* other Faker locales for names, streets and postcodes: en_CA, en_AU, en_NZ, pt_BR, pt_PT, fr_CA, de_AT, hu_HU,
  fi_FI, it_IT, pl_PL, sv_SE and ja_JP (romanised names), none of which the dev set draws from;
* every card brand Faker knows (Visa 13/16/19, Mastercard, Amex, Diners, Discover, JCB 15/16, 12-digit Maestro)
  plus UnionPay and Mir numbers built here with a Luhn check digit;
* phone numbers in national forms (``416-555-0182``, ``(613) 555-0142``, ``0490 12 34 56``, ``01.84.22.19.07``,
  seven-digit local numbers) besides international ones;
* national ids (US SSN, UK NI number, passport numbers after a cue), dates of birth, ages, bank account numbers;
* negatives: amounts, order and invoice numbers, dates, product codes, tracking numbers and 16-digit references that
  fail the Luhn check.

The set is written once (``python -m tools.pii.testset``) and committed; its commit says it is locked.
The rule for everyone: read its *scores* (``make bench-pii``), never its misses, and never change a recognizer
because of it. ``tests/unit/test_pii_testset.py`` checks the committed file is exactly what this generator writes,
so the set cannot be edited by hand either.

Gold labels (the ``entity`` of a span) are the kinds of personal data below; how a detector's entity names map onto
them is :data:`ACCEPTS`, shared by every detector the bench scores.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from pathlib import Path

from tools.pii.evalset import Message, date_in_last_years, date_of_birth, write_jsonl

DEFAULT_PATH = Path("data/pii_test/pii_test.jsonl")
SEED = 90210
SIZE = 1500

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

# Which detector entity names count for a gold label (span overlap, the same for every detector scored).
ACCEPTS: dict[str, tuple[str, ...]] = {
    "STREET_ADDRESS": ("STREET_ADDRESS", "LOCATION"),
    "POSTCODE": ("POSTCODE", "LOCATION"),
    "PASSPORT": ("PASSPORT", "US_PASSPORT", "UK_PASSPORT"),
    "DATE_OF_BIRTH": ("DATE_OF_BIRTH", "DATE_TIME"),
    "AGE": ("AGE", "DATE_TIME"),
    "BANK_ACCOUNT": ("BANK_ACCOUNT", "UK_ACCOUNT_NUMBER", "UK_SORT_CODE", "US_BANK_NUMBER"),
}

NAME_LOCALES = (
    "en_CA", "en_AU", "en_NZ", "pt_BR", "pt_PT", "fr_CA", "de_AT", "hu_HU", "fi_FI", "it_IT", "pl_PL", "sv_SE", "ja_JP",
)  # fmt: skip
ADDRESS_LOCALES = tuple(locale for locale in NAME_LOCALES if locale != "ja_JP")  # Japanese streets are in kanji
PHONE_REGIONS = ("CA", "US", "AU", "NZ", "BR", "PT", "AT", "HU", "FI", "IT", "PL", "SE", "BE", "FR", "JP", "MX")
IBAN_LOCALES = ("pt_PT", "de_AT", "fi_FI", "it_IT", "pl_PL", "pt_BR", "de_CH", "nl_BE", "cs_CZ", "no_NO", "tr_TR")

_TEMPLATES: tuple[str, ...] = (
    # free-running complaints
    "honestly the worst service ever, {PERSON} at the counter laughed when I asked about the refund",
    "I have been a customer for 11 years and {PERSON} just hung up on me, unbelievable",
    "Your courier left the parcel at {STREET_ADDRESS} which is not even my building!!",
    "three calls, two emails and still nothing. my number is {PHONE_NUMBER} if anyone actually cares",
    "follow up with {PERSON_LOWER} about the duplicate charge please",
    "spoke to {PERSON_LOWER} yesterday, she promised a call back that never came",
    "{PERSON} 2nd floor reception said the form was lost, again",
    "the card ending in nothing - full number {CREDIT_CARD} - was charged twice for one order",
    "charged on {CREDIT_CARD} after I cancelled, want my money back",
    "why do you need my SSN {US_SSN} just to change the delivery slot?",
    "my SSN is {US_SSN} and your form keeps rejecting it",
    "a {AGE} year old customer should not have to queue outside in the rain",
    "my mother is {AGE} years old and cannot use the app, please send paper statements",
    "Mum turned {AGE} last week and the bank froze her card for 'unusual activity'",
    "we went to the branch on {STREET_ADDRESS}, {POSTCODE} and it was closed during opening hours",
    "the refund went to IBAN {IBAN_CODE} which I closed years ago",
    "login alert from {IP_ADDRESS}, not me, I was asleep",
    "this link {URL} came in a text saying it was you, is it a scam?",
    "my profile page {URL} still shows my old photo after I deleted it",
    "send everything to {EMAIL_ADDRESS} not the old address",
    # letters
    "Dear Sir or Madam,\n\nI am writing about the closure of my account. I moved to {STREET_ADDRESS}, {POSTCODE} "
    "and never received the final statement.\n\nYours faithfully,\n{PERSON}",
    "To whom it may concern,\nMy father {PERSON} (date of birth {DATE_OF_BIRTH}) passed away in May. Please "
    "close his accounts.\nSincerely,\n{PERSON}",
    "Dear team, I was born on {DATE_OF_BIRTH} and your system says I am too young for a pension account.",
    "Hello,\nplease update my passport number to {PASSPORT} before my trip.\nThanks, {PERSON}",
    "Dear customer services, my National Insurance number is {UK_NINO} and it is wrong on my tax letter.",
    "To the complaints department: my NI number {UK_NINO} was printed on an envelope. This is a data breach.",
    "Dear {PERSON},\nthank you for your help on the phone. Could you call me on {PHONE_NUMBER} again?",
    # chat turns
    "agent: how can I help today?\ncustomer: hi its {PERSON_LOWER}, my card got declined",
    "bot: please confirm your phone number\nuser: {PHONE_NUMBER}",
    "agent: can I have the account number?\ncustomer: sure it's {BANK_ACCOUNT}",
    "user: email is {EMAIL_ADDRESS}\nagent: thanks, and your postcode?\nuser: {POSTCODE}",
    "customer: passport {PASSPORT}, expires next year\nagent: thanks, checking now",
    "user: DOB {DATE_OF_BIRTH}\nagent: thank you, I can see the account now",
    "agent: who is the second card holder?\ncustomer: {PERSON}, my partner",
    "customer: call me on {PHONE_NUMBER} after 6\nagent: noted",
    "user: the payment to acct {BANK_ACCOUNT} bounced",
    # forms
    "Name: {PERSON}\nAddress: {STREET_ADDRESS}\nPostcode: {POSTCODE}\nPhone: {PHONE_NUMBER}",
    "Full name: {PERSON} | Street: {STREET_ADDRESS} | ZIP: {POSTCODE} | Email: {EMAIL_ADDRESS}",
    "Applicant: {PERSON}; date of birth: {DATE_OF_BIRTH}; SSN: {US_SSN}",
    "Contact: {PERSON}, tel. {PHONE_NUMBER}, {EMAIL_ADDRESS}",
    "Delivery address: {STREET_ADDRESS}, {POSTCODE} {CITY}. Recipient: {PERSON}",
    "Billing: {STREET_ADDRESS}\n{POSTCODE} {CITY}\nCard: {CREDIT_CARD}",
    "Account holder: {PERSON}\nAccount no.: {BANK_ACCOUNT}\nIBAN: {IBAN_CODE}",
    "Age: {AGE}\nName: {PERSON}\nPhone: {PHONE_NUMBER}",
    # lists
    "founders: {LAST}, {LAST} and {LAST}",
    "cc: {PERSON}, {PERSON}, {PERSON}",
    "the people on the joint account are {PERSON} and {PERSON}",
    "ask {LAST} or {LAST} in accounts, they handled it last time",
)

_NEGATIVE_TEMPLATES: tuple[str, ...] = (
    "I was charged {AMOUNT} twice for order {ORDER}.",
    "order {ORDER} arrived on {DATE} but the box was empty",
    "The invoice {INVOICE} shows {AMOUNT} instead of {AMOUNT}.",
    "product code {PRODUCT} is listed at {AMOUNT} online and more in store",
    "tracking number {TRACKING} has not moved since {DATE}",
    "reference {REFERENCE} - refund of {AMOUNT} still missing",
    "Promo code SAVE20 did not work on {DATE}, expected {AMOUNT} off",
    "the app (version 12.4.1) crashed at 14:32 during checkout",
    "Delivery window 08:00-12:00 on {DATE} was missed again.",
    "Bought 3 items for {AMOUNT} on {DATE}, order {ORDER}, only 2 came.",
    "The ATM at the station gave me {AMOUNT} less than requested.",
    "Fee of {AMOUNT} for a transfer of {AMOUNT}? That's 4.5%!",
    "My loyalty points dropped from 12,400 to 9,850 overnight.",
    "The warranty for model {PRODUCT} ends on {DATE}, can I extend it?",
    "case {REFERENCE} was closed without an answer",
    "Paid with Visa, then Mastercard, both declined at the self checkout.",
)


_CARD_BRANDS = (
    *("visa13", "visa16", "visa19", "mastercard", "amex", "diners", "discover", "jcb15", "jcb16", "maestro"),
    *("unionpay", "mir"),
)


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    total = 0
    for i, char in enumerate(reversed(body)):
        digit = int(char)
        if i % 2 == 0:
            digit *= 2
            digit -= 9 if digit > 9 else 0
        total += digit
    return body + str((10 - total % 10) % 10)


def _luhn_valid(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for i, digit in enumerate(reversed(digits)):
        if i % 2 == 1:
            digit *= 2
            digit -= 9 if digit > 9 else 0
        total += digit
    return total % 10 == 0


class _Drawer:
    def __init__(self, seed: int) -> None:
        from faker import Faker

        self.rng = random.Random(seed)
        locales = sorted({*NAME_LOCALES, *IBAN_LOCALES, "en_US"})
        self.fakers = {locale: Faker(locale) for locale in locales}
        for n, fake in enumerate(self.fakers.values()):
            fake.seed_instance(seed + 7 * n)
        self.us = self.fakers["en_US"]

    def _name_parts(self) -> tuple[str, str]:
        locale = self.rng.choice(NAME_LOCALES)
        fake = self.fakers[locale]
        if locale == "ja_JP":
            return fake.first_romanized_name().title(), fake.last_romanized_name().title()
        return fake.first_name(), fake.last_name()

    def person(self) -> str:
        first, last = self._name_parts()
        return f"{first} {last}"

    def person_lower(self) -> str:
        return self.person().lower()

    def last(self) -> str:
        return self._name_parts()[1]

    def email(self) -> str:
        fake = self.fakers[self.rng.choice(ADDRESS_LOCALES)]
        return self.rng.choice((fake.free_email, fake.email, fake.company_email))()

    def phone(self) -> str:
        import phonenumbers
        from phonenumbers import PhoneNumberFormat, PhoneNumberType

        region = self.rng.choice(PHONE_REGIONS)
        kind = PhoneNumberType.MOBILE if self.rng.random() < 0.6 else PhoneNumberType.FIXED_LINE
        example = phonenumbers.example_number_for_type(region, kind) or phonenumbers.example_number(region)
        if example is None:  # libphonenumber has an example number for every region listed
            raise ValueError(f"no example number for {region}")
        national = str(example.national_number)
        number = example
        for attempt in range(200):  # random subscriber digits that libphonenumber still calls valid
            tail = 4 if attempt < 100 else 2
            digits = national[:-tail] + "".join(str(self.rng.randrange(10)) for _ in range(tail))
            candidate = phonenumbers.parse(f"+{example.country_code}{digits}")
            if phonenumbers.is_valid_number(candidate):
                number = candidate
                break
        style = self.rng.random()
        if region in ("US", "CA") and style < 0.15:  # a local number without the area code, e.g. 467 3395
            local = str(number.national_number)[3:]
            return f"{local[:3]}{self.rng.choice((' ', '-'))}{local[3:]}"
        if region in ("US", "CA") and style < 0.45:
            area, rest = str(number.national_number)[:3], str(number.national_number)[3:]
            return self.rng.choice((f"{area}-{rest[:3]}-{rest[3:]}", f"({area}) {rest[:3]}-{rest[3:]}"))
        if style < 0.6:
            formatted = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
            return formatted.replace(" ", ".") if self.rng.random() < 0.3 else formatted
        if style < 0.85:
            return phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
        return phonenumbers.format_number(number, PhoneNumberFormat.E164)

    def card(self) -> str:
        brand = self.rng.choice(_CARD_BRANDS)
        if brand == "unionpay":
            number = _luhn_complete("62" + str(self.rng.randrange(10, 100)), self.rng.choice((16, 19)), self.rng)
        elif brand == "mir":
            number = _luhn_complete(f"220{self.rng.randrange(5)}", 16, self.rng)
        else:
            number = self.us.credit_card_number(card_type=brand)
        style = self.rng.random()
        if style < 0.5 or len(number) not in (15, 16):
            return number if style < 0.7 else " ".join(number[i : i + 4] for i in range(0, len(number), 4))
        if len(number) == 15:
            return " ".join((number[:4], number[4:10], number[10:]))
        return self.rng.choice((" ", "-")).join(number[i : i + 4] for i in range(0, 16, 4))

    def iban(self) -> str:
        value = self.fakers[self.rng.choice(IBAN_LOCALES)].iban()
        return " ".join(value[i : i + 4] for i in range(0, len(value), 4)) if self.rng.random() < 0.5 else value

    def ip(self) -> str:
        return self.us.ipv6() if self.rng.random() < 0.25 else self.us.ipv4_public()

    def url(self) -> str:
        fake = self.fakers[self.rng.choice(ADDRESS_LOCALES)]
        handle = fake.user_name()
        return self.rng.choice(
            (
                f"https://www.facebook.com/{handle}",
                f"https://linkedin.com/in/{handle}",
                f"{fake.domain_name()}/~{handle}",
                f"https://{handle}.{fake.free_email_domain().split('.')[0]}.blog/about",
            )
        )

    def _address_faker(self):  # type: ignore[no-untyped-def]
        return self.fakers[self.rng.choice(ADDRESS_LOCALES)]

    def street(self) -> str:
        return self._address_faker().street_address()

    def postcode(self) -> str:
        return self._address_faker().postcode()

    def city(self) -> str:
        # it_IT draws its cities outside the seeded generator, so they would change from run to run
        return self.fakers[self.rng.choice([locale for locale in ADDRESS_LOCALES if locale != "it_IT"])].city()

    def ssn(self) -> str:
        value = self.us.ssn()
        return value.replace("-", " ") if self.rng.random() < 0.2 else value

    def nino(self) -> str:
        letters = "ABCEGHJKLMNPRSTWXYZ"
        prefix = self.rng.choice(letters) + self.rng.choice(letters.replace("O", ""))
        digits = "".join(str(self.rng.randrange(10)) for _ in range(6))
        suffix = self.rng.choice("ABCD")
        if self.rng.random() < 0.4:
            return f"{prefix} {digits[:2]} {digits[2:4]} {digits[4:]} {suffix}"
        return f"{prefix}{digits}{suffix}"

    def passport(self) -> str:
        kind = self.rng.random()
        if kind < 0.4:
            return "".join(str(self.rng.randrange(10)) for _ in range(9))
        if kind < 0.7:
            letters = "".join(self.rng.choice("ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(2))
            return letters + "".join(str(self.rng.randrange(10)) for _ in range(7))
        return self.rng.choice("CFGHJK") + "".join(self.rng.choice("0123456789CFGHJKLMNPRTVWXYZ") for _ in range(8))

    def dob(self) -> str:
        day = date_of_birth(self.us, 18, 95)
        return self.rng.choice(
            (
                day.strftime("%d/%m/%Y"),
                day.strftime("%m/%d/%Y"),
                day.isoformat(),
                f"{day.day} {day.strftime('%B %Y')}",
                day.strftime("%B ") + f"{day.day}, {day.year}",
            )
        )

    def age(self) -> str:
        return str(self.rng.randrange(18, 100))

    def bank_account(self) -> str:
        length = self.rng.choice((8, 8, 10, 12))
        digits = "".join(str(self.rng.randrange(10)) for _ in range(length))
        return f"{digits[:4]} {digits[4:]}" if self.rng.random() < 0.25 else digits

    # negatives (unlabelled)
    def amount(self) -> str:
        value = self.rng.randrange(100, 500000) / 100
        return self.rng.choice(
            (f"${value:,.2f}", f"€{value:.2f}".replace(".", ","), f"{value:.2f} CAD", f"£{value:.2f}")
        )

    def order(self) -> str:
        return self.rng.choice(
            (f"#{self.rng.randrange(10**7, 10**9)}", f"A-{self.rng.randrange(1000, 9999)}-{self.rng.randrange(10**4)}")
        )

    def invoice(self) -> str:
        return f"INV-{self.rng.randrange(2019, 2027)}-{self.rng.randrange(10**5):05d}"

    def date(self) -> str:
        day = date_in_last_years(self.us, 2)
        return self.rng.choice((day.isoformat(), day.strftime("%d/%m/%Y"), day.strftime("%d %B")))

    def product(self) -> str:
        return self.rng.choice(
            (
                f"XR-{self.rng.randrange(100, 9999)}",
                f"SKU {self.rng.randrange(10**11, 10**12)}",
                f"{self.rng.choice('ABCDEFGH')}{self.rng.randrange(10**5, 10**6)}-{self.rng.randrange(10, 99)}",
            )
        )

    def tracking(self) -> str:
        return self.rng.choice(
            (
                "1Z" + "".join(self.rng.choice("0123456789ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(16)),
                self._not_luhn(16),
            )
        )

    def reference(self) -> str:
        return self.rng.choice((self._not_luhn(16), str(self.rng.randrange(10**5, 10**7))))

    def _not_luhn(self, length: int) -> str:
        while True:
            value = "".join(str(self.rng.randrange(10)) for _ in range(length))
            if not _luhn_valid(value):
                return value


def _makers(drawer: _Drawer) -> dict[str, tuple[str | None, Callable[[], str]]]:
    """Slot name -> (gold label or None for unlabelled context, value maker)."""
    return {
        "PERSON": ("PERSON", drawer.person),
        "PERSON_LOWER": ("PERSON", drawer.person_lower),
        "LAST": ("PERSON", drawer.last),
        "EMAIL_ADDRESS": ("EMAIL_ADDRESS", drawer.email),
        "PHONE_NUMBER": ("PHONE_NUMBER", drawer.phone),
        "CREDIT_CARD": ("CREDIT_CARD", drawer.card),
        "IBAN_CODE": ("IBAN_CODE", drawer.iban),
        "IP_ADDRESS": ("IP_ADDRESS", drawer.ip),
        "URL": ("URL", drawer.url),
        "STREET_ADDRESS": ("STREET_ADDRESS", drawer.street),
        "POSTCODE": ("POSTCODE", drawer.postcode),
        "US_SSN": ("US_SSN", drawer.ssn),
        "UK_NINO": ("UK_NINO", drawer.nino),
        "PASSPORT": ("PASSPORT", drawer.passport),
        "DATE_OF_BIRTH": ("DATE_OF_BIRTH", drawer.dob),
        "AGE": ("AGE", drawer.age),
        "BANK_ACCOUNT": ("BANK_ACCOUNT", drawer.bank_account),
        "CITY": (None, drawer.city),
        "AMOUNT": (None, drawer.amount),
        "ORDER": (None, drawer.order),
        "INVOICE": (None, drawer.invoice),
        "DATE": (None, drawer.date),
        "PRODUCT": (None, drawer.product),
        "TRACKING": (None, drawer.tracking),
        "REFERENCE": (None, drawer.reference),
    }


def _fill(template: str, makers: dict[str, tuple[str | None, Callable[[], str]]]) -> Message:
    text, spans, position = "", [], 0
    for match in re.finditer(r"\{([A-Z_]+)\}", template):
        text += template[position : match.start()]
        label, make = makers[match.group(1)]
        value = make()
        if label is not None:
            spans.append((len(text), len(text) + len(value), label))
        text += value
        position = match.end()
    return Message("", text + template[position:], spans)


def generate(n: int = SIZE, seed: int = SEED, negative_share: float = 0.25) -> list[Message]:
    """``n`` messages of the locked test set, deterministic for a given seed."""
    drawer = _Drawer(seed)
    makers = _makers(drawer)
    messages = []
    for i in range(n):
        negative = drawer.rng.random() < negative_share
        template = drawer.rng.choice(_NEGATIVE_TEMPLATES if negative else _TEMPLATES)
        message = _fill(template, makers)
        message.id = f"test-{i:05d}"
        messages.append(message)
    return messages


def main() -> None:
    """Write the locked set to ``data/pii_test/pii_test.jsonl`` (run once; the file is committed)."""
    path = write_jsonl(generate(), DEFAULT_PATH)
    print(f"wrote {SIZE} messages to {path}")


if __name__ == "__main__":
    main()
