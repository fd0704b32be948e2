"""The fourth part of the dev set: how customers *write* bank accounts, postcodes, streets and names, by a new author.

The locked test set (read its scores, never its misses) leaves bank account numbers, postcodes and some streets and
names well below the other types, while the three existing dev parts (:mod:`tools.pii.evalset`,
:mod:`tools.pii.devshapes`, :mod:`tools.pii.devformats`) score them 0.98 to 1.00. Those parts
ask *which national formats exist*; this one asks *how people type them* in e-mails, chat, letters and web forms.
It was written by another author from general knowledge of customer writing, without reading the locked set, its
generator, its misses or the other generators' templates, and without Faker locales of the locked set (names come
from :data:`NAME_LOCALES`, domestic account numbers from Faker's ``bban()`` of :data:`BBAN_LOCALES`). It writes
``data/pii_eval/pii_eval_written.jsonl``, a *dev* set (recognizers are tuned on it), labelled with the fifteen types
of :mod:`tools.pii.devshapes` and scored under the same accepted detector names:

* **bank account numbers** with and without a cue word (``account``, ``acct``, ``a/c``, ``acc no``, ``account #``,
  ``bank details``, ``my account``, ``paid from``, ``transfer to``, ``refund to``, in any case), the cue several words
  away ("the account I pay from is 0123 4567 89") or after the number ("12345678 is my account"); digits in groups
  with spaces, dashes or dots, with leading zeros; domestic account numbers (BBANs) with letters; sort, branch, transit
  and routing codes with the account in several orders; on a form's own line, in brackets, after a colon, two in a
  list. A sort, branch or routing code is labelled ``BANK_ACCOUNT`` like the account (the convention of the other
  parts); a bank's SWIFT/BIC is not labelled;
* **postcodes** inside addresses in many orders (number-street-town-postcode, postcode-town, town-postcode, state or
  province and postcode, a country prefix ``D-10115``, on separate lines of a letter, after a comma, in lower case),
  alone after the cue words customers use in English text (``zip``, ``postal code``, ``post code``, ``PLZ``, ``CEP``,
  ``CP``, ``code postal``), in form fields, in "I moved to 12345", two in a list; the town, state and country are
  never labelled;
* **streets and person names** in those letters and forms: names in signatures ("Regards,\\nname"), in form fields,
  next to account numbers, in lower case and in capitals;
* a quarter of **look-alike negatives**: order, invoice, ticket and tracking numbers, amounts, dates, product codes,
  phone extensions and masked endings. A masked account ("account ending 1234", "acct ****1234", "the last four digits
  are 1234") is *not* labelled: four digits identify no account on their own, and the devformats part decided the
  same.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tools.pii.devformats import Segment, _aba, _Drawer, _fill
from tools.pii.devshapes import ENTITIES
from tools.pii.evalset import Message

__all__ = ["BBAN_LOCALES", "DEFAULT_PATH", "ENTITIES", "NAME_LOCALES", "SEED", "SIZE", "generate"]

DEFAULT_PATH = Path("data/pii_eval/pii_eval_written.jsonl")
SEED = 6262
SIZE = 1000

# Faker locales for person names (none of the locked set's) and for domestic account numbers (``bban()``).
NAME_LOCALES = (
    *("en_GB", "en_US", "en_IE", "en_IN", "de_DE", "fr_FR", "es_ES", "es_AR", "nl_NL", "da_DK", "hr_HR", "lt_LT"),
    *("sk_SK", "ro_RO"),
)
BBAN_LOCALES = ("en_GB", "en_IE", "de_DE", "fr_FR", "es_ES", "nl_NL", "ro_RO", "da_DK")

_B, _P, _S, _N = "BANK_ACCOUNT", "POSTCODE", "STREET_ADDRESS", "PERSON"

# Street names and towns by country (general knowledge; the town is never labelled).
_UK_STREETS = ("High", "Church", "Station", "Victoria", "Mill", "Kingsway", "Albert", "Park", "London", "Manor")
_UK_TYPES = ("Street", "St", "Road", "Rd", "Lane", "Avenue", "Close", "Crescent", "Drive", "Way", "Gardens", "Terrace")
_UK_TOWNS = ("Leeds", "Sheffield", "Bath", "York", "Cardiff", "Glasgow", "Brighton", "Exeter", "Hull", "Oxford")
_US_STREETS = ("Pine", "Hickory", "Sunset", "Lake", "Jefferson", "Madison", "Walnut", "Highland", "Center", "Ridge")
_US_TYPES = ("St", "Street", "Ave", "Avenue", "Blvd", "Dr", "Rd", "Ln", "Ct", "Way", "Pl")
_US_PLACES = (
    *(("Springfield", "IL"), ("Boise", "ID"), ("Omaha", "NE"), ("Spokane", "WA"), ("Dayton", "OH")),
    *(("Richmond", "VA"), ("Savannah", "GA"), ("Reno", "NV"), ("Buffalo", "NY"), ("Lansing", "MI")),
)
_US_STATE_NAMES = ("Illinois", "Ohio", "Texas", "Georgia", "Oregon", "Michigan", "Virginia", "Nevada")
_DE_STREETS = ("Haupt", "Bahnhof", "Schiller", "Goethe", "Linden", "Berg", "Garten", "Kirch", "Wald", "Schul")
_DE_ENDS = ("straße", "str.", "strasse", "weg", "gasse", "allee", "platz")
_DE_TOWNS = ("Berlin", "Hamburg", "Köln", "Leipzig", "Dresden", "Hannover", "Bremen", "Nürnberg", "Bonn")
_FR_STREETS = ("de la République", "Victor Hugo", "des Lilas", "du Moulin", "Pasteur", "de la Gare", "Jean Moulin")
_FR_TYPES = ("rue", "avenue", "boulevard", "place", "impasse", "allée", "chemin")
_FR_TOWNS = ("Paris", "Lyon", "Nantes", "Lille", "Rennes", "Toulouse", "Dijon", "Reims", "Tours")
_NL_STREETS = ("Kerk", "Dorps", "School", "Molen", "Heren", "Keizers", "Stations", "Prinsen")
_NL_ENDS = ("straat", "laan", "weg", "gracht", "plein", "kade")
_NL_TOWNS = ("Amsterdam", "Rotterdam", "Den Haag", "Eindhoven", "Breda", "Nijmegen", "Maastricht")
_ES_STREETS = ("Mayor", "del Sol", "de Alcalá", "Real", "San Juan", "de la Paz", "Nueva", "del Carmen")
_ES_TYPES = ("Calle", "C/", "Avenida", "Avda.", "Plaza", "Paseo")
_ES_TOWNS = ("Madrid", "Sevilla", "Valencia", "Bilbao", "Málaga", "Zaragoza", "Murcia")
_DK_STREETS = ("Nørregade", "Vestergade", "Østerbrogade", "Strandvejen", "Algade", "Søndergade")
_DK_TOWNS = ("København K", "Aarhus C", "Odense", "Aalborg", "Esbjerg")
_IE_STREETS = ("Main Street", "Church Road", "Abbey Street", "Mill Lane", "Strand Road", "Green Park")
_IE_PLACES = (("Dublin 2", "D02"), ("Dublin 8", "D08"), ("Cork", "T12"), ("Galway", "H91"), ("Limerick", "V94"))
_IN_STREETS = ("MG Road", "Brigade Road", "Park Street", "Linking Road", "Anna Salai", "Residency Road")
_IN_PLACES = (("Bengaluru", "560"), ("Mumbai", "400"), ("Chennai", "600"), ("Kolkata", "700"), ("Pune", "411"))
_RO_STREETS = ("Strada Florilor", "Strada Victoriei", "Bulevardul Unirii", "Strada Lalelor", "Calea Moșilor")
_RO_TOWNS = ("București", "Cluj-Napoca", "Iași", "Timișoara", "Brașov")
_LT_STREETS = ("Gedimino pr.", "Pilies g.", "Vilniaus g.", "Laisvės al.", "Savanorių pr.")
_LT_TOWNS = ("Vilnius", "Kaunas", "Klaipėda")
_MX_STREETS = ("Av. Insurgentes Sur", "Calle Durango", "Av. Álvaro Obregón", "Calle Colima", "Av. Chapultepec")
_GR_STREETS = ("Ermou", "Stadiou", "Panepistimiou", "Akadimias", "Tsimiski")
_GR_TOWNS = ("Athens", "Thessaloniki", "Patras")
_COUNTRIES = {
    "uk": "UK", "us": "USA", "de": "Germany", "fr": "France", "nl": "Netherlands", "es": "Spain", "dk": "Denmark",
    "ie": "Ireland", "in": "India", "ro": "Romania", "lt": "Lithuania", "mx": "Mexico", "gr": "Greece",
}  # fmt: skip


class _WrittenDrawer(_Drawer):
    """The devformats drawer's helpers (digits, houses, UK, Irish and Canadian postcodes) with this part's makers."""

    def __init__(self, seed: int) -> None:
        from faker import Faker

        super().__init__(seed)
        self.fakers = {locale: Faker(locale) for locale in NAME_LOCALES}
        for n, locale in enumerate(NAME_LOCALES):
            self.fakers[locale].seed_instance(seed + n)
        self.banks = {locale: Faker(locale) for locale in BBAN_LOCALES}
        for n, locale in enumerate(BBAN_LOCALES):
            self.banks[locale].seed_instance(seed + 100 + n)

    # -- bank accounts ------------------------------------------------------------------------------------------------
    def account_value(self, style: str = "") -> str:
        """An account number as a customer types it: plain, leading zeros, grouped, dashed, dotted, a BBAN."""
        kind = style or self.pick(
            ("plain", "plain", "plain", "zeros", "zeros", "spaces", "spaces", "dashes", "dots", "bban", "bban")
        )
        if kind == "bban":
            value = self.banks[self.pick(BBAN_LOCALES)].bban()
            return " ".join(value[i : i + 4] for i in range(0, len(value), 4)) if self.rng.random() < 0.4 else value
        digits = self.d(self.rng.randint(8, 12))
        if kind == "plain":
            return self.nz(1) + digits[1:]
        if kind == "zeros":
            return self.pick(("0", "00", "000")) + digits[: self.rng.randint(6, 9)]
        sizes = self.pick(((4, 4, 2), (4, 4), (4, 4, 4), (3, 3, 4), (2, 4, 4), (3, 6), (4, 6), (2, 6, 2), (4, 3, 3)))
        digits = self.d(sum(sizes))
        parts, at = [], 0
        for size in sizes:
            parts.append(digits[at : at + size])
            at += size
        return {"spaces": " ", "dashes": "-", "dots": "."}[kind].join(parts)

    def acct(self, style: str = "") -> list[Segment]:
        return [(self.account_value(style), _B)]

    def sort_code(self) -> str:
        return self.pick(("-", " ", "", "-")).join(self.d(2) for _ in range(3))

    def bank_pair(self, style: str = "") -> list[Segment]:
        """A bank, branch, transit or routing code and the account, in several orders and separators."""
        account = self.account_value(self.pick(("plain", "zeros", "spaces")))
        kind = style or self.pick(("sort", "sort", "sort", "routing", "branch", "transit"))
        if kind == "sort":
            code = self.sort_code()
            return self.pick(
                (
                    [("sort code ", None), (code, _B), (", account ", None), (account, _B)],
                    [("account ", None), (account, _B), (", sort code ", None), (code, _B)],
                    [(account, _B), (" / ", None), (code, _B)],
                    [(code, _B), (" / ", None), (account, _B)],
                    [("acc ", None), (account, _B), (" (sort ", None), (code, _B), (")", None)],
                    [("a/c ", None), (account, _B), (" s/c ", None), (code, _B)],
                    [("Sort code: ", None), (code, _B), ("\nAccount number: ", None), (account, _B)],
                    [("sc ", None), (code, _B), (" acc no ", None), (account, _B)],
                    [("account number ", None), (account, _B), (" and sort code ", None), (code, _B)],
                )
            )
        if kind == "routing":
            routing = _aba(self.rng)
            return self.pick(
                (
                    [("routing ", None), (routing, _B), (" account ", None), (account, _B)],
                    [("acct ", None), (account, _B), (", routing # ", None), (routing, _B)],
                    [("Routing: ", None), (routing, _B), ("\nAccount: ", None), (account, _B)],
                    [("account ", None), (account, _B), (" (ABA ", None), (routing, _B), (")", None)],
                )
            )
        if kind == "branch":
            branch = self.d(self.pick((3, 4, 5)))
            return self.pick(
                (
                    [("branch ", None), (branch, _B), (", account ", None), (account, _B)],
                    [("account ", None), (account, _B), (" at branch ", None), (branch, _B)],
                    [("Branch: ", None), (branch, _B), ("\nAccount: ", None), (account, _B)],
                    [("branch code ", None), (branch, _B), (" acc ", None), (account, _B)],
                )
            )
        transit = self.d(5)
        return self.pick(
            (
                [("transit ", None), (transit, _B), (" account ", None), (account, _B)],
                [("account ", None), (account, _B), (" transit no. ", None), (transit, _B)],
            )
        )

    # -- postcodes ----------------------------------------------------------------------------------------------------
    def postcode(self, country: str) -> str:
        """A postcode of ``country`` as a customer types it (sometimes in lower case, sometimes without a space)."""
        if country == "uk":
            return self.uk_postcode()
        if country == "us":
            return self.d(5) if self.rng.random() < 0.75 else f"{self.d(5)}-{self.d(4)}"
        if country in ("de", "fr", "es", "mx"):
            return self.nz(2) + self.d(3)
        if country == "nl":
            code = f"{self.nz(4)}{self.pick((' ', ''))}{self.u(2, 'ABCDEGHJKLMNPRSTVWXZ')}"
            return code.lower() if self.rng.random() < 0.1 else code
        if country == "dk":
            return self.nz(4)
        if country == "ie":
            return self.eircode()
        if country == "in":
            return self.nz(3) + self.pick(("", "", " ")) + self.d(3)
        if country == "ro":
            return self.nz(1) + self.d(5)
        if country == "lt":
            return self.d(5)
        if country == "gr":
            return f"{self.nz(3)} {self.d(2)}"
        if country == "ca":
            return self.ca_postcode()
        return self.nz(5)

    def prefixed(self, country: str, code: str) -> str:
        """A country prefix some customers write before a continental code: ``D-10115``, ``DK-2100``, ``LT-01103``."""
        prefix = {"de": "D-", "fr": "F-", "nl": "NL-", "dk": "DK-", "lt": "LT-", "ro": "RO-", "gr": "GR-", "es": "E-"}
        return prefix[country] + code if country in prefix else code

    def postcode_with_cue(self, style: str = "") -> list[Segment]:
        """A postcode alone after the cue word a customer uses in English text."""
        country, cue = self.pick(
            (
                ("us", "zip"), ("us", "zip code"), ("us", "ZIP"), ("us", "Zip:"), ("us", "my zip is"),
                ("uk", "postcode"), ("uk", "post code"), ("uk", "Postcode:"), ("uk", "my postcode is"),
                ("ca", "postal code"), ("de", "PLZ"), ("de", "postcode"), ("fr", "code postal"), ("fr", "CP"),
                ("es", "CP"), ("mx", "C.P."), ("nl", "postcode"), ("in", "pincode"), ("in", "PIN code"),
                ("ie", "Eircode"), ("dk", "postnummer"), ("ro", "cod poștal"), ("gr", "postal code"),
                ("uk", "postal code"), ("us", "zipcode"), ("de", "Postleitzahl"),
            )
        )  # fmt: skip
        code = self.postcode(country)
        if style == "lower" or (country in ("uk", "ca", "ie") and self.rng.random() < 0.25):
            cue, code = cue.lower(), code.lower()
        return [(f"{cue} ", None), (code, _P)]

    def bare_postcode(self) -> list[Segment]:
        """A postcode with no cue of its own, for templates that say what it is ("I moved to 12345")."""
        country = self.pick(("us", "us", "uk", "uk", "de", "fr", "nl", "ie", "in", "ca", "es", "dk"))
        code = self.postcode(country)
        return [(code.lower() if country in ("uk", "ca") and self.rng.random() < 0.2 else code, _P)]

    # -- addresses ----------------------------------------------------------------------------------------------------
    def street(self, country: str) -> str:
        if country == "uk":
            street = f"{self.house(200)} {self.pick(_UK_STREETS)} {self.pick(_UK_TYPES)}"
            return f"Flat {self.rng.randint(1, 30)}, {street}" if self.rng.random() < 0.2 else street
        if country == "us":
            street = f"{self.rng.randint(1, 19999)} {self.pick(('', '', 'N ', 'S ', 'E '))}{self.pick(_US_STREETS)} "
            street += self.pick(_US_TYPES)
            return street + self.pick(("", "", "", f" Apt {self.house(40)}", f", Apt. {self.rng.randint(1, 30)}"))
        if country == "de":
            end = self.pick(_DE_ENDS)
            return f"{self.pick(_DE_STREETS)}{end} {self.house(150)}"
        if country == "fr":
            return f"{self.house(150)}{self.pick((' ', ', '))}{self.pick(_FR_TYPES)} {self.pick(_FR_STREETS)}"
        if country == "nl":
            return f"{self.pick(_NL_STREETS)}{self.pick(_NL_ENDS)} {self.house(250)}"
        if country == "es":
            street = f"{self.pick(_ES_TYPES)} {self.pick(_ES_STREETS)}{self.pick((' ', ', '))}{self.house(120)}"
            return street + self.pick(("", "", f", {self.rng.randint(1, 8)}º {self.pick('ABCD')}"))
        if country == "dk":
            return f"{self.pick(_DK_STREETS)} {self.house(90)}" + self.pick(("", "", ", 2. th.", ", 1. tv."))
        if country == "ie":
            return f"{self.house(90)} {self.pick(_IE_STREETS)}"
        if country == "in":
            return f"{self.rng.randint(1, 400)}, {self.pick(_IN_STREETS)}"
        if country == "ro":
            return f"{self.pick(_RO_STREETS)} nr. {self.rng.randint(1, 120)}"
        if country == "lt":
            return f"{self.pick(_LT_STREETS)} {self.house(80)}"
        if country == "gr":
            return f"{self.pick(_GR_STREETS)} {self.rng.randint(1, 120)}"
        return f"{self.pick(_MX_STREETS)} {self.rng.randint(1, 3999)}"

    def town(self, country: str) -> str:
        towns = {
            "uk": _UK_TOWNS, "de": _DE_TOWNS, "fr": _FR_TOWNS, "nl": _NL_TOWNS, "es": _ES_TOWNS, "dk": _DK_TOWNS,
            "ro": _RO_TOWNS, "lt": _LT_TOWNS, "gr": _GR_TOWNS, "mx": ("Ciudad de México", "Guadalajara"),
        }  # fmt: skip
        return self.pick(towns.get(country, _UK_TOWNS))

    def address(self, style: str = "") -> list[Segment]:
        """A street, town and postcode in one of the orders people write them; ``lines`` puts them on lines."""
        country = self.pick(
            ("uk", "uk", "uk", "us", "us", "us", "de", "de", "fr", "nl", "es", "dk", "ie", "in", "ro", "lt", "mx", "gr")
        )
        street = self.street(country)
        sep = "\n" if style == "lines" else ", "
        country_name = (sep + self.pick((_COUNTRIES[country], _COUNTRIES[country].upper()))) * (self.rng.random() < 0.2)
        if country == "uk":
            code = self.postcode("uk")
            town = self.town("uk")
            return self.pick(
                (
                    [(street, _S), (f"{sep}{town} ", None), (code, _P), (country_name, None)],
                    [(street, _S), (f"{sep}{town}{sep}", None), (code, _P), (country_name, None)],
                    [(street, _S), (f"{sep}{town.upper()}{sep}", None), (code, _P)],
                    [(street, _S), (f", {town}, ", None), (code.lower(), _P)],
                )
            )
        if country == "us":
            town, state = self.pick(_US_PLACES)
            code = self.postcode("us")
            return self.pick(
                (
                    [(street, _S), (f"{sep}{town}, {state} ", None), (code, _P), (country_name, None)],
                    [(street, _S), (f"{sep}{town} {state} ", None), (code, _P)],
                    [(street, _S), (f"{sep}{town}, {state}, ", None), (code, _P)],
                    [(street, _S), (f", {town}, {self.pick(_US_STATE_NAMES)} ", None), (code, _P)],
                    [(street, _S), (f"{sep}{town.upper()} {state} ", None), (code, _P)],
                )
            )
        if country == "ie":
            town, key = self.pick(_IE_PLACES)
            code = key + self.pick((" ", "")) + self.u(4, "ACDEFHKNPRTVWXY0123456789")
            return [(street, _S), (f"{sep}{town}{sep}", None), (code, _P), (country_name, None)]
        if country == "in":
            town, prefix = self.pick(_IN_PLACES)
            code = prefix + self.pick(("", " ")) + self.d(3)
            return self.pick(
                (
                    [(street, _S), (f", {town} - ", None), (code, _P)],
                    [(street, _S), (f"{sep}{town} ", None), (code, _P), (country_name, None)],
                    [(street, _S), (f", {town}, PIN: ", None), (code, _P)],
                )
            )
        if country == "mx":
            return [(street, _S), (", Col. Roma Norte, C.P. ", None), (self.postcode("mx"), _P), (", CDMX", None)]
        town = self.town(country)
        code = self.postcode(country)
        if self.rng.random() < 0.25:
            code = self.prefixed(country, code)
        return self.pick(
            (
                [(street, _S), (sep, None), (code, _P), (f" {town}", None), (country_name, None)],
                [(street, _S), (sep, None), (code, _P), (f" {town.upper()}", None)],
                [(street, _S), (f"{sep}{town} ", None), (code, _P), (country_name, None)],
                [(street, _S), (f", {town}, ", None), (code, _P)],
                [(street, _S), (f"{sep}{town} (", None), (code, _P), (")", None)],
                [(street, _S), (sep, None), (code, _P), (f" - {town}", None)],
            )
        )

    def town_code(self) -> list[Segment]:
        """A town and a postcode with no street, in several orders: "Leeds LS1 4AB", "10115 Berlin", "Omaha, NE"."""
        country = self.pick(("uk", "us", "de", "fr", "nl", "es", "dk", "in", "gr"))
        code = self.postcode(country)
        if country == "us":
            town, state = self.pick(_US_PLACES)
            return [(f"{town}, {state} ", None), (code, _P)]
        if country == "in":
            town, prefix = self.pick(_IN_PLACES)
            return [(f"{town} ", None), (prefix + self.d(3), _P)]
        town = self.town(country)
        return self.pick(
            (
                [(code, _P), (f" {town}", None)],
                [(f"{town} ", None), (code, _P)],
                [(f"{town}, ", None), (code, _P)],
                [(f"{town} (", None), (code, _P), (")", None)],
            )
        )

    def street_alone(self) -> list[Segment]:
        return [(self.street(self.pick(("uk", "us", "de", "fr", "nl", "es", "dk", "ie", "ro", "lt"))), _S)]

    def form_address(self) -> list[Segment]:
        """An address in a web form's fields, one per line; field names vary by site."""
        country = self.pick(("uk", "us", "de", "fr", "nl", "ie", "es"))
        street, code = self.street(country), self.postcode(country)
        town = self.town(country) if country not in ("us", "ie") else self.pick(("Omaha", "Dublin 4", "Reno"))
        street_label = self.pick(("Address line 1: ", "Street: ", "Address: ", "Street address: ", "Line 1: "))
        town_label = self.pick(("Town: ", "City: ", "Town/City: "))
        code_label = self.pick(("Postcode: ", "ZIP: ", "Postal code: ", "Post code: ", "Zip/Postal code: "))
        return [
            (street_label, None),
            (street, _S),
            (f"\n{town_label}{town}\n{code_label}", None),
            (code, _P),
            (f"\nCountry: {_COUNTRIES.get(country, 'UK')}", None),
        ]

    # -- people -------------------------------------------------------------------------------------------------------
    def name(self, style: str = "") -> list[Segment]:
        fake = self.fakers[self.pick(NAME_LOCALES)]
        first, last = fake.first_name(), fake.last_name()
        roll = self.rng.random()
        if style == "first":
            return [(first, _N)]
        if style == "plain" or roll < 0.7:
            value = f"{first} {last}"
        elif roll < 0.8:
            value = f"{first} {last}".lower()
        elif roll < 0.88:
            value = f"{first} {last}".upper()
        elif roll < 0.95:
            value = f"{first[0]}. {last}"
        else:
            value = f"{last}, {first}"
        return [(value, _N)]

    def email_of(self) -> list[Segment]:
        return [(self.fakers[self.pick(NAME_LOCALES)].email(), "EMAIL_ADDRESS")]

    # -- negatives ----------------------------------------------------------------------------------------------------
    def ext(self) -> str:
        return self.pick((f"ext. {self.d(4)}", f"extension {self.d(3)}", f"x{self.d(4)}", f"ext {self.d(3)}"))


# Slots: {KIND} or {KIND:style}.
_BANK_TEMPLATES: tuple[str, ...] = (
    "Please refund to my account {ACCT}.",
    "refund to {ACCT} please, not the card",
    "It was paid from {ACCT} on the 3rd and you took it again.",
    "The transfer to {ACCT} never arrived.",
    "transfer to acct {ACCT} still pending",
    "my account is {ACCT}",
    "My account: {ACCT}",
    "acct {ACCT} - why the fee?",
    "a/c {ACCT} statement missing for March",
    "acc no {ACCT}",
    "Acc. no.: {ACCT}",
    "Account #: {ACCT}",
    "account # {ACCT} was closed without notice",
    "ACCOUNT NO {ACCT}",
    "Bank details: {ACCT}",
    "bank details are {ACCT}, same as before",
    "Bank details for the refund:\n{PAIR}",
    "Account: {ACCT}\nName: {NAME}",
    "Name: {NAME}\nAccount number: {ACCT}\nReason: duplicate charge",
    "The account I pay from is {ACCT}, the other one is just savings.",
    "the account we use for bills is {ACCT}",
    "The account the salary goes into is {ACCT}.",
    "{ACCT} is my account, not the card number.",
    "{ACCT} is the account you should use.",
    "{ACCT} - that's my current account",
    "I have two accounts, {ACCT} and {ACCT}.",
    "accounts: {ACCT}, {ACCT}",
    "Please move the money from {ACCT} to {ACCT}.",
    "Please close account no. {ACCT} (joint with my wife).",
    "Could you check the direct debit (account {ACCT})?",
    "account number - {ACCT}",
    "my account number is {ACCT} but the app shows another one",
    "The direct debit comes out of acct {ACCT} every month.",
    "My wages are paid into {ACCT} but nothing came this week.",
    "{NAME}, account {ACCT}",
    "Payee: {NAME}\nAccount: {ACCT}",
    "acc holder {NAME} acc no {ACCT}",
    "Beneficiary: {NAME} {ACCT}",
    "Please send it to {NAME}'s account {ACCT}.",
    "Account number\n{ACCT}",
    "My domestic account number is {BBAN}, the IBAN is on your letter.",
    "bank account {BBAN}",
    "Refund to: {PAIR}",
    "You can pay me back at {PAIR}.",
    "My details are {PAIR}, please hurry.",
    "Account details\n{PAIR}\nAccount name: {NAME}",
    "{PAIR}",
    "savings acct {ACCT} and checking {ACCT}",
    "Hi, I moved my salary to a new account ({ACCT}), please update my file.",
    "Your app says account {ACCT} does not exist but I use it every day.",
    "I'd like a statement for my a/c {ACCT} please",
    "my old acct was {ACCT}, the new one is {ACCT}",
    "Transfer from account ending 77 failed, it should go to {ACCT}.",
    "Regards,\n{NAME}\nAcct {ACCT}",
)
_ADDRESS_TEMPLATES: tuple[str, ...] = (
    "My address is {ADDR}.",
    "my address is {ADDR} not the old one",
    "I live at {ADDR} and the card never came.",
    "Please update my address to {ADDR}.",
    "New address: {ADDR}",
    "Address:\n{ADDR:lines}",
    "{NAME}\n{ADDR:lines}\n\nDear Sir or Madam,\nmy card has not arrived.",
    "Dear team,\n\nplease send the letter again.\n\nRegards,\n{NAME}\n{ADDR:lines}",
    "Kind regards,\n{NAME}\n{ADDR:lines}",
    "Thanks\n{NAME:first}",
    "Best,\n{NAME}",
    "Cheers, {NAME}",
    "Ship to: {NAME}, {ADDR}",
    "Deliver to {NAME}\n{ADDR:lines}",
    "{FORMADDR}",
    "Name: {NAME}\n{FORMADDR}",
    "the parcel went to {STREET} instead of {ADDR}",
    "we've moved from {STREET} to {ADDR}",
    "The courier left it at {STREET}, that's my neighbour.",
    "I'm at {STREET} now, same town.",
    "Billing address {ADDR}; delivery address {ADDR}.",
    "correspondence address: {ADDR:lines}",
    "Registered address: {ADDR}",
    "{NAME} ({EMAIL}) - {ADDR}",
    "Send it c/o {NAME}, {ADDR}",
)
_POSTCODE_TEMPLATES: tuple[str, ...] = (
    "{PC} - is that in your delivery area?",
    "Your site won't accept my {PC}",
    "The form rejects {PC}, what format do you want?",
    "I typed {PC} and it found no address.",
    "{PC:lower} isn't recognised by the app",
    "I moved to {CODE} last year and the statements still go to the old address.",
    "we live in {CODE} now",
    "the branch nearest {CODE} closed",
    "I'm in {TOWNCODE} now.",
    "Is there a branch in {TOWNCODE}?",
    "From {TOWNCODE}, the post takes a week.",
    "Both our postcodes, {CODE} and {CODE}, were refused.",
    "Old postcode {CODE}, new postcode {CODE}.",
    "zip {CODE:us}? that's the one on my card",
    "My zip is {CODE:us}.",
    "Postcode\n{CODE}",
)
_NEGATIVE_TEMPLATES: tuple[str, ...] = (
    "Order #{NUM:8} hasn't arrived yet.",
    "order no. {NUM:9}, still waiting",
    "Invoice INV-{NUM:6} shows {AMOUNT} instead of the agreed price.",
    "Ticket {NUM:7} was closed without an answer.",
    "Tracking {UPU} says delivered, it wasn't.",
    "The account ending {NUM:4} shows a fee I did not agree to.",
    "acct ****{NUM:4} was charged twice",
    "The last four digits of my account are {NUM:4}, can you find it?",
    "account ending in {NUM:4}, opened on {DATE}",
    "card ending {NUM:4}",
    "Call me on the office line, {EXT}.",
    "Product code {UPPER:3}-{NUM:5} is out of stock.",
    "Model {UPPER:2}{NUM:4} keeps resetting.",
    "I paid {AMOUNT} on {DATE} and got nothing.",
    "Transfer of {AMOUNT} to my account on {DATE} went through, thanks.",
    "My account has been locked for {NUM:1} days now.",
    "I've had my account for {NUM:2} years, since {YEAR}.",
    "Account balance: {AMOUNT}",
    "Reference {UPPER:2}{NUM:8} on the transfer of {AMOUNT}.",
    "Booking {UPPER:3}{NUM:6} for {NUM:1} nights.",
    "Room {NUM:3}, floor {NUM:1}, please.",
    "Flight BA{NUM:4} on {DATE} was delayed {NUM:1} hours.",
    "Customer since {YEAR}, {NUM:2} accounts with you over the years.",
    "Statement {NUM:2}/{YEAR} has {NUM:3} lines.",
    "Case {NUM:4}-{NUM:4} escalated on {DATE}.",
    "Parcel {NUM:1} of {NUM:1} arrived at {NUM:2}:{NUM:2}.",
    "Quote ref Q{NUM:7} for {AMOUNT}.",
    "version {NUM:1}.{NUM:1}.{NUM:2} of the app crashes",
    "The fee went up from {AMOUNT} to {AMOUNT} in {YEAR}.",
    "Your branch at the station opens at 9:30, not 10.",
    "Serial no. {UPPER:2}{NUM:10}",
    "Membership {NUM:8} expires {DATE}.",
    "Order {NUM:6} was refunded to my account on {DATE}.",
    "{NUM:3} items, {AMOUNT} total, order placed {DATE}",
)

_WEIGHTS = ((_BANK_TEMPLATES, 0.45), (_ADDRESS_TEMPLATES, 0.35), (_POSTCODE_TEMPLATES, 0.20))


def _makers(drawer: _WrittenDrawer) -> dict[str, Callable[[str], list[Segment]]]:
    def code(style: str) -> list[Segment]:
        return [(drawer.postcode(style), _P)] if style else drawer.bare_postcode()

    return {
        "ACCT": drawer.acct,
        "BBAN": lambda _: drawer.acct("bban"),
        "PAIR": drawer.bank_pair,
        "NAME": drawer.name,
        "EMAIL": lambda _: drawer.email_of(),
        "ADDR": drawer.address,
        "FORMADDR": lambda _: drawer.form_address(),
        "STREET": lambda _: drawer.street_alone(),
        "PC": drawer.postcode_with_cue,
        "CODE": code,
        "TOWNCODE": lambda _: drawer.town_code(),
        "EXT": lambda _: [(drawer.ext(), None)],
        "UPU": lambda _: [(drawer.upu_tracking(), None)],
        "DATE": lambda _: [(drawer.date(), None)],
        "YEAR": lambda _: [(str(drawer.rng.randint(1995, 2024)), None)],
        "AMOUNT": lambda _: [(drawer.amount(), None)],
        "NUM": lambda size: [(drawer.d(int(size)), None)],
        "UPPER": lambda size: [(drawer.u(int(size)), None)],
    }


def generate(n: int = SIZE, seed: int = SEED, negative_share: float = 0.25) -> list[Message]:
    """``n`` messages, deterministic for a given seed; about ``negative_share`` of them hold no personal data."""
    drawer = _WrittenDrawer(seed)
    makers = _makers(drawer)
    groups = [group for group, _ in _WEIGHTS]
    weights = [weight for _, weight in _WEIGHTS]
    messages = []
    for i in range(n):
        if drawer.rng.random() < negative_share:
            template = drawer.pick(_NEGATIVE_TEMPLATES)
        else:
            template = drawer.pick(drawer.rng.choices(groups, weights)[0])
        text, spans = _fill(template, makers)
        messages.append(Message(f"written-{i:05d}", text, spans))
    return messages


def main() -> None:
    """Write the set to :data:`DEFAULT_PATH` (``python -m tools.pii.devwritten``)."""
    from tools.pii.evalset import write_jsonl

    print(write_jsonl(generate(), DEFAULT_PATH))


if __name__ == "__main__":
    main()
