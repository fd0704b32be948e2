"""A labelled PII evaluation set of banking-style messages, and span-overlap scoring of a detector against it.

The set is *generated* (Faker plus validated formats), so every value is synthetic and every span label is exact:
the generator knows where it put each value. Its templates are written for this set only and share no sentence with
the demo generator (:mod:`feedbackflow.demo.generate`), so a recognizer tuned on the demo data is not graded on it.

What it contains, per message zero to three values of:

* ``PERSON``: "First Last", titles ("Mrs Okafor"), names in capitals ("JAMES HOLLOWAY"), across a line break
  ("Regards,\\nAmy Clarke") and with doubled spaces; first names alone are not labelled (too ambiguous to grade);
* ``EMAIL_ADDRESS``, ``URL``, ``IP_ADDRESS`` (v4 and v6), ``LOCATION`` (real towns and cities);
* ``PHONE_NUMBER``: UK national, UK international (``+44 (0)...``) and valid numbers of eight other countries;
* ``CREDIT_CARD``: Luhn-valid Visa, Mastercard and Amex numbers, compact, spaced or dashed;
* ``IBAN_CODE``: checksum-valid IBANs of five countries, compact or in groups of four;
* ``UK_SORT_CODE`` and ``UK_ACCOUNT_NUMBER``.

About a quarter of the messages hold no personal data but look as if they might (amounts, dates, reference
numbers, card brands, branch opening hours), so precision is measured on realistic text too.

Scoring (:func:`score`): predictions are first resolved the way Presidio's anonymizer resolves them (a finding
contained in a longer one is dropped). A gold span counts as *found* when a prediction of the same type overlaps it
by at least one character; a prediction is a *true positive* when it overlaps a gold span of its type, otherwise a
false positive. Types a detector reports that the set does not label (e.g. ``DATE_TIME``) are ignored. F2 weighs
recall four times as much as precision (a missed value is a leak; an extra placeholder is a small loss).
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ENTITIES = (
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "IP_ADDRESS",
    "URL",
    "LOCATION",
    "UK_SORT_CODE",
    "UK_ACCOUNT_NUMBER",
)

# Templates: literal text with {SLOT} markers; each slot is one labelled value of that entity type.
_TEMPLATES: tuple[str, ...] = (
    "Hi, this is {PERSON}. The direct debit to my gym left my account twice this month.",
    "Hello, {PERSON} here - my contactless payments keep getting rejected at the till.",
    "I'm writing on behalf of my mother, {PERSON}, who can't access her online banking.",
    "Please update the email on file to {EMAIL_ADDRESS}, the old one no longer works.",
    "Send the statement for March to {EMAIL_ADDRESS} rather than by post, thanks.",
    "Could someone ring me on {PHONE_NUMBER}? I've been on hold for forty minutes.",
    "My mobile changed, the new one is {PHONE_NUMBER}. Please stop texting the old number.",
    "The one-time passcode never reaches {PHONE_NUMBER}, so I can't approve the payment.",
    "A payment of 89.99 on card {CREDIT_CARD} is not mine, please block it.",
    "Replacement card {CREDIT_CARD} arrived but the PIN letter didn't.",
    "I need to cancel card {CREDIT_CARD}; I think it was skimmed at a cash machine.",
    "Salary was paid into {IBAN_CODE} but it isn't showing on my balance.",
    "Can you confirm that {IBAN_CODE} is the right IBAN for the international transfer?",
    "My landlord's IBAN is {IBAN_CODE} and the rent bounced back twice.",
    "Someone logged into my account from {IP_ADDRESS} and it wasn't me.",
    "The security alert said a login came from {IP_ADDRESS} at 3am.",
    "Is {URL} really one of your pages? It asked for my card details.",
    "I got a text with a link to {URL} claiming my account was locked.",
    "I moved to {LOCATION} last month and need to change my home branch.",
    "The cash machine at the {LOCATION} branch swallowed my card yesterday.",
    "Paid 40 pounds into the wrong account: sort code {UK_SORT_CODE}, account number {UK_ACCOUNT_NUMBER}.",
    "Please set up a standing order to sort code {UK_SORT_CODE}, account {UK_ACCOUNT_NUMBER}, monthly.",
    "My account number is {UK_ACCOUNT_NUMBER} and I was charged an overdraft fee in error.",
    "The payee's sort code is {UK_SORT_CODE} but the app says it is invalid.",
    "Dear team, {PERSON} again. My email is {EMAIL_ADDRESS} if you need anything else.",
    "Customer {PERSON}, phone {PHONE_NUMBER}, reports a declined card at a petrol station.",
    "Card {CREDIT_CARD} was used in {LOCATION} while I was at home.",
    "Refund to {IBAN_CODE} please, account holder {PERSON}.",
    "From {IP_ADDRESS} someone tried to reset my password and emailed {EMAIL_ADDRESS}.",
    "My husband {PERSON} and I share the joint account ending 4410.",
    "Please ask {PERSON} from your fraud team to call me back on {PHONE_NUMBER}.",
    "I can't open the app since the update. Kind regards,\n{PERSON}",
    "Why is the exchange rate so bad on euro transfers? Best,\n{PERSON}",
    "The transfer to {PERSON} is still pending after three days.",
    "Visa card {CREDIT_CARD}, expiry 09/28, keeps failing online.",
    "I want to dispute a charge from a shop in {LOCATION}. Contact me at {EMAIL_ADDRESS}.",
    "Wrong sort code on my statement, mine is {UK_SORT_CODE}.",
    "Reach me via {PHONE_NUMBER} or {EMAIL_ADDRESS} during office hours.",
    "The website {URL} keeps timing out when I try to pay a bill.",
    "{PERSON} - account {UK_ACCOUNT_NUMBER} - please close it, I am moving abroad.",
)

# Messages without personal data that still contain digits, capitals and bank words.
_NEGATIVE_TEMPLATES: tuple[str, ...] = (
    "I was charged a 2.50 fee for a top-up of 100 on 12/03/2026.",
    "Transaction ref TX-{digits6} shows as pending since Tuesday.",
    "Is Apple Pay supported for Mastercard debit cards?",
    "The ATM only gave me 50 but took 150 from my balance.",
    "Why does a SEPA transfer take 3 working days?",
    "My PIN is blocked after 3 wrong tries, how do I unblock it?",
    "The exchange rate for USD to GBP changed between 10:15 and 10:40.",
    "Your app version 7.4.2 crashes when I open the card tab.",
    "I paid 1,250.00 for the holiday and only 1,000.00 was refunded.",
    "Case number {digits6} has been open for two weeks without an answer.",
    "Please explain the 0.5% cashback on my Visa statement.",
    "When do branches open on Saturdays? The sign says 9 to 12.",
    "The direct debit for my council tax failed on the 1st.",
    "Top up via Google Pay failed three times in a row today.",
    "Can I get a virtual card for online shopping?",
    "Standing order of 300 every month stopped without notice.",
)

_CITIES = (
    "Manchester", "Leeds", "Glasgow", "Bristol", "Cardiff", "Edinburgh", "Belfast", "Liverpool", "Sheffield",
    "Nottingham", "Brighton", "Aberdeen", "Swansea", "Southampton", "Norwich", "York", "Dublin", "Madrid",
    "Barcelona", "Lisbon", "Paris", "Berlin", "Amsterdam", "Rome", "Warsaw", "New York", "Toronto", "Sydney",
)  # fmt: skip

_PHONE_REGIONS = ("US", "DE", "FR", "IE", "ES", "NL", "IN", "AU")
_IBAN_LOCALES = ("en_GB", "de_DE", "fr_FR", "nl_NL", "es_ES")
NAME_LOCALES = ("en_GB", "en_US", "en_IE", "en_IN")


@dataclass
class Message:
    """One evaluation message with its gold spans ``(start, end, entity)``."""

    id: str
    text: str
    spans: list[tuple[int, int, str]] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "text": self.text,
            "spans": [{"start": s, "end": e, "entity": t} for s, e, t in self.spans],
        }

    @classmethod
    def from_json(cls, data: dict) -> Message:
        return cls(data["id"], data["text"], [(s["start"], s["end"], s["entity"]) for s in data["spans"]])


class _Values:
    """Draws synthetic, valid values of each entity type."""

    def __init__(self, seed: int) -> None:
        from faker import Faker

        self.rng = random.Random(seed)
        # sorted: a set's order changes with the interpreter's hash seed, and each locale gets its own seed below
        self.fakers = {locale: Faker(locale) for locale in sorted({*_IBAN_LOCALES, *NAME_LOCALES})}
        for n, fake in enumerate(self.fakers.values()):
            fake.seed_instance(seed + n)
        self.gb = self.fakers["en_GB"]

    def person(self) -> str:
        fake = self.fakers[self.rng.choice(NAME_LOCALES)]
        style = self.rng.random()
        if style < 0.12:
            return f"{self.rng.choice(('Mr', 'Mrs', 'Ms', 'Dr'))} {fake.last_name()}"
        name = f"{fake.first_name()} {fake.last_name()}"
        if style < 0.27:
            return name.upper()
        if style < 0.35:
            return name.replace(" ", "  ")
        return name

    def email(self) -> str:
        value = self.rng.choice((self.gb.free_email, self.gb.company_email, self.gb.email))()
        return value if self.rng.random() < 0.85 else value[0].upper() + value[1:]

    def phone(self) -> str:
        import phonenumbers
        from phonenumbers import PhoneNumberFormat, PhoneNumberType

        style = self.rng.random()
        region = "GB" if style < 0.6 else self.rng.choice(_PHONE_REGIONS)
        kind = PhoneNumberType.MOBILE if self.rng.random() < 0.7 else PhoneNumberType.FIXED_LINE
        example = phonenumbers.example_number_for_type(region, kind)
        if example is None:  # libphonenumber has an example of both types for every region used here
            raise ValueError(f"no example {kind} number for {region}")
        while True:  # randomise the subscriber digits, keep only numbers libphonenumber calls valid
            national = str(example.national_number)
            digits = national[:-4] + "".join(str(self.rng.randrange(10)) for _ in range(4))
            number = phonenumbers.parse(f"+{example.country_code}{digits}")
            if phonenumbers.is_valid_number(number):
                break
        if region == "GB":
            if style < 0.35:
                return phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
            if style < 0.45:
                formatted = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
                return formatted.replace("+44 ", "+44 (0)", 1)
        if self.rng.random() < 0.2:
            return phonenumbers.format_number(number, PhoneNumberFormat.E164)
        return phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)

    def card(self) -> str:
        kind = self.rng.choice(("visa16", "mastercard", "amex"))
        number = self.gb.credit_card_number(card_type=kind)
        style = self.rng.random()
        if style < 0.4:
            return number
        groups = (
            [number[0:4], number[4:10], number[10:]]
            if len(number) == 15
            else [number[i : i + 4] for i in (0, 4, 8, 12)]
        )
        return (" " if style < 0.8 else "-").join(groups)

    def iban(self) -> str:
        value = self.fakers[self.rng.choice(_IBAN_LOCALES)].iban()
        if self.rng.random() < 0.5:
            return " ".join(value[i : i + 4] for i in range(0, len(value), 4))
        return value

    def ip(self) -> str:
        return self.gb.ipv6() if self.rng.random() < 0.2 else self.gb.ipv4_public()

    def url(self) -> str:
        base = self.gb.url().rstrip("/")
        path = self.rng.choice(
            ("/login", "/verify-account", "/secure/update", "/pay?id=" + str(self.rng.randrange(10**6)))
        )
        if self.rng.random() < 0.3:
            base = base.split("://", 1)[1]
            base = base if base.startswith("www.") else "www." + base
        return base + path

    def location(self) -> str:
        return self.rng.choice(_CITIES)

    def sort_code(self) -> str:
        digits = [f"{self.rng.randrange(100):02d}" for _ in range(3)]
        return self.rng.choice(("-", " ", "")).join(digits)

    def account(self) -> str:
        return f"{self.rng.randrange(10**7, 10**8)}"

    def draw(self, entity: str) -> str:
        makers: dict[str, Callable[[], str]] = {
            "PERSON": self.person,
            "EMAIL_ADDRESS": self.email,
            "PHONE_NUMBER": self.phone,
            "CREDIT_CARD": self.card,
            "IBAN_CODE": self.iban,
            "IP_ADDRESS": self.ip,
            "URL": self.url,
            "LOCATION": self.location,
            "UK_SORT_CODE": self.sort_code,
            "UK_ACCOUNT_NUMBER": self.account,
        }
        return makers[entity]()


def _fill(template: str, values: _Values) -> tuple[str, list[tuple[int, int, str]]]:
    import re

    text, spans, position = "", [], 0
    for match in re.finditer(r"\{([A-Z_]+|digits6)\}", template):
        text += template[position : match.start()]
        slot = match.group(1)
        if slot == "digits6":
            text += f"{values.rng.randrange(10**5, 10**6)}"
        else:
            value = values.draw(slot)
            spans.append((len(text), len(text) + len(value), slot))
            text += value
        position = match.end()
    return text + template[position:], spans


def generate(n: int = 1500, seed: int = 2026, negative_share: float = 0.25) -> list[Message]:
    """``n`` messages, deterministic for a given seed; about ``negative_share`` of them hold no personal data."""
    values = _Values(seed)
    messages = []
    for i in range(n):
        template = (
            values.rng.choice(_NEGATIVE_TEMPLATES)
            if values.rng.random() < negative_share
            else values.rng.choice(_TEMPLATES)
        )
        text, spans = _fill(template, values)
        messages.append(Message(f"pii-{i:05d}", text, spans))
    return messages


def write_jsonl(messages: Iterable[Message], path: Path) -> Path:
    """Write one JSON object per line (``id``, ``text``, ``spans``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for message in messages:
            handle.write(json.dumps(message.to_json(), ensure_ascii=False) + "\n")
    return path


def read_jsonl(path: Path) -> list[Message]:
    """Read a set written by :func:`write_jsonl`."""
    with path.open(encoding="utf-8") as handle:
        return [Message.from_json(json.loads(line)) for line in handle if line.strip()]


Span = tuple[int, int, str]


def resolve(predictions: Sequence[Span]) -> list[Span]:
    """Drop every prediction contained in a longer (or equal, earlier) one, as Presidio's anonymizer does."""
    ordered = sorted(set(predictions), key=lambda span: (-(span[1] - span[0]), span[0], span[2]))
    kept: list[Span] = []
    for span in ordered:
        if not any(k[0] <= span[0] and span[1] <= k[1] for k in kept):
            kept.append(span)
    return sorted(kept)


def _overlaps(a: Span, b: Span) -> bool:
    return a[0] < b[1] and b[0] < a[1]


@dataclass
class EntityScore:
    """Counts and scores of one entity type."""

    gold: int = 0
    found: int = 0
    predicted: int = 0
    true_positive: int = 0

    @property
    def recall(self) -> float | None:
        return self.found / self.gold if self.gold else None

    @property
    def precision(self) -> float | None:
        return self.true_positive / self.predicted if self.predicted else None

    @property
    def f2(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None or p + r == 0:
            return None if p is None or r is None else 0.0
        return 5 * p * r / (4 * p + r)

    def as_dict(self) -> dict:
        return {
            "gold": self.gold,
            "found": self.found,
            "predicted": self.predicted,
            "true_positive": self.true_positive,
            "precision": _round(self.precision),
            "recall": _round(self.recall),
            "f2": _round(self.f2),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def score(
    messages: Sequence[Message],
    predictions: Sequence[Sequence[Span]],
    entities: Sequence[str] = ENTITIES,
    accepts: dict[str, tuple[str, ...]] | None = None,
) -> dict[str, EntityScore]:
    """Per-entity span-overlap scores of ``predictions`` (one list per message) against the gold spans.

    ``accepts`` maps a gold label to the detector entity names that count for it (default: its own name only), the
    same for every detector scored, e.g. ``STREET_ADDRESS: (STREET_ADDRESS, LOCATION)``. A prediction whose name no
    gold label accepts is ignored; one that overlaps no gold span it may stand for is a false positive of the first
    label that accepts it. The key ``"overall"`` pools every entity type (micro average).
    """
    accepts = accepts or {}
    labels_for: dict[str, list[str]] = defaultdict(list)
    for entity in entities:
        for name in accepts.get(entity, (entity,)):
            labels_for[name].append(entity)
    scores: dict[str, EntityScore] = defaultdict(EntityScore)
    wanted = set(entities)
    for message, predicted in zip(messages, predictions, strict=True):
        resolved = [(s, e, t) for s, e, t in resolve(predicted) if t in labels_for]
        gold = [span for span in message.spans if span[2] in wanted]
        for span in gold:
            scores[span[2]].gold += 1
            if any(span[2] in labels_for[p[2]] and _overlaps(p, span) for p in resolved):
                scores[span[2]].found += 1
        for span in resolved:
            hit = next((g[2] for g in gold if g[2] in labels_for[span[2]] and _overlaps(g, span)), None)
            label = hit or labels_for[span[2]][0]
            scores[label].predicted += 1
            scores[label].true_positive += hit is not None
    overall = EntityScore()
    for entity in entities:
        item = scores[entity]
        overall.gold += item.gold
        overall.found += item.found
        overall.predicted += item.predicted
        overall.true_positive += item.true_positive
    return {**{entity: scores[entity] for entity in entities}, "overall": overall}


# The committed sets were generated on this day. Their generators pin "today" to it, so a regeneration on any later
# day writes the same bytes (Faker's own date_of_birth and "-2y" ranges read the clock).
REFERENCE_DAY = date(2026, 11, 30)


def date_of_birth(faker: Any, minimum_age: int, maximum_age: int) -> date:
    """Faker's ``date_of_birth`` as it was on ``REFERENCE_DAY`` (the same draws, the same result)."""
    from faker.providers.date_time import change_year

    start = change_year(REFERENCE_DAY, -(maximum_age + 1))
    end = change_year(REFERENCE_DAY, -minimum_age)
    day = faker.date_time_ad(start_datetime=start, end_datetime=end).date()
    return day if day != start else day + timedelta(days=1)


def date_in_last_years(faker: Any, years: int) -> date:
    """Faker's ``date_between(f"-{years}y", "today")`` as it was on ``REFERENCE_DAY``."""
    return faker.date_between_dates(date_start=REFERENCE_DAY + timedelta(days=-365.24 * years), date_end=REFERENCE_DAY)
