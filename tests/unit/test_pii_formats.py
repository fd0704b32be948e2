"""Real-world formats of passports, bank accounts, IBANs, postcodes and streets (the devformats dev set's subject).

Every value here is made up for the test (check digits computed where a format has one); none comes from a PII set.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import replaced
from tools.pii import devformats, devshapes, evalset

ROOT = Path(__file__).resolve().parents[2]


def _iban(country: str, bban: str) -> str:
    """A made-up IBAN with valid check digits for ``bban``."""
    check = 98 - int("".join(str(int(c, 36)) for c in bban + country + "00")) % 97
    return f"{country}{check:02d}{bban}"


def _grouped(value: str) -> str:
    return " ".join(value[i : i + 4] for i in range(0, len(value), 4))


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("my German passport C4F7XK219 was rejected", ["C4F7XK219"]),
        ("Reisepass-Nr. H2J8LM5T1, bitte aktualisieren.", ["H2J8LM5T1"]),
        ("N° de passeport : 07KD31245", ["07KD31245"]),
        ("mi número de pasaporte es PAB204518", ["PAB204518"]),
        ("travel doc E48213097 - expired?", ["E48213097"]),
        ("PP no RT3049182", ["RT3049182"]),
        ("You already have a copy of my passport, M40172635, why ask again?", ["M40172635"]),
        ("Document type: Passport\nDocument no.: NXK4R72P5", ["NXK4R72P5"]),
        ("My passport number is tz4528193 and the app says it is invalid.", ["tz4528193"]),
        ("Travel document number: 45 2918374", ["45 2918374"]),
        ("I renewed my passport: new number IP5931021, the old one was XE5894107.", ["IP5931021", "XE5894107"]),
        ("LC0732810 is my passport number, not the old one.", ["LC0732810"]),
        ("My passport, issued 2019 in Lagos, number A01234567, was rejected.", ["A01234567"]),
        ("I renewed my passport: new number 70 9859105, the old one was 222089979.", ["70 9859105", "222089979"]),
    ],
)
def test_passport_numbers_of_many_countries_near_a_cue(engine, text, values) -> None:
    out = replaced(engine, text)
    assert all(value not in out for value in values) and "<PASSPORT>" in out, out


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("Use BSB 062-417, account 10293847 for the rebate.", ["062-417", "10293847"]),
        ("BSB: 112879 Acc: 5675701", ["112879", "5675701"]),
        ("transit 13804, institution 002, account 98633012", ["13804", "002", "98633012"]),
        ("transit/institution 00135-006, account 405385087110", ["00135-006", "405385087110"]),
        ("void cheque: 45447 010 3289483011", ["45447 010 3289483011"]),
        ("pay into 12-3456-0123456-00 please", ["12-3456-0123456-00"]),
        ("Konto-Nr. 3880711 (BLZ 80144552)", ["3880711", "80144552"]),
        ("RIB 30004 00550 00012345678 42", ["30004 00550 00012345678 42"]),
        ("Ag. 0065-6 C/C 5052921-2", ["0065-6", "5052921-2"]),
        ("CLABE 002180012345678905", ["002180012345678905"]),
        ("account 7009946194, branch code 250655", ["7009946194", "250655"]),
        ("branch 765, ordinary account 5768021", ["765", "5768021"]),
        ("wire it to 35-43-14 2907 1972 thanks", ["35-43-14", "2907 1972"]),
        ("acc no 08370227 sort 87 63 41", ["08370227", "87 63 41"]),
        ("número de cuenta 22142725", ["22142725"]),
        ("rekeningnummer 9887493262", ["9887493262"]),
        ("account no. 2288134054 was frozen without notice", ["2288134054"]),
        ("Account: 183-152469-4", ["183-152469-4"]),
        ("agência 7108, conta corrente 51784-6", ["7108", "51784-6"]),
    ],
)
def test_bank_accounts_with_their_bank_and_branch_codes(engine, text, values) -> None:
    out = replaced(engine, text)
    assert all(value not in out for value in values), out
    assert "<PHONE_NUMBER>" not in out and "<UK_NHS>" not in out and "<POSTCODE>" not in out, out


@pytest.mark.parametrize(
    "value",
    [
        _grouped(_iban("LU", "1840" + "AB12CD34EF56G")),
        "-".join(_grouped(_iban("AT", "9768421339392824")).split()),
        _iban("CZ", "86309058053592626325"),
        _iban("LT", "6968457577813183").lower(),
        _grouped(_iban("RO", "MNFS" + "YG6HPUUUJ0OWYL45")).lower(),
        _iban("SE", "26320378704378271604"),
    ],
)
def test_ibans_in_any_case_grouping_and_country(engine, value) -> None:
    out = replaced(engine, f"please refund to {value} instead of my own account")
    assert value not in out and "<IBAN_CODE>" in out, out


def _split(value: str, sizes: list[int], separator: str = " ") -> str:
    parts, at = [], 0
    for size in sizes:
        parts.append(value[at : at + size])
        at += size
    return separator.join(part for part in [*parts, value[at:]] if part)


@pytest.mark.parametrize(
    "value",
    [
        "\u00a0".join(_grouped(_iban("DE", "370400440532013000")).split()),  # no-break spaces from a web page
        ".".join(_grouped(_iban("FR", "30006000011234567890189")).split()),
        "  ".join(_grouped(_iban("NL", "ABNA0417164300")).split()),
        _split(_iban("FR", "30006000011234567890189"), [4, 5, 5, 11, 2]),  # as the bank's RIB groups it
        _split(_iban("GB", "WEST12345698765432"), [2, 2, 4, 6, 8]),  # "GB 82 WEST 123456 98765432"
        _split(_iban("PL", "109010140000071219812874"), [3] * 10),
        "IBAN" + _iban("AT", "9768421339392824"),  # glued to the word
    ],
)
def test_ibans_written_with_other_separators_and_groups(engine, value) -> None:
    out = replaced(engine, f"refund it to {value} please")
    assert "<IBAN_CODE>" in out and not any(part in out for part in value.replace("IBAN", "").split()), out


def test_loosely_written_ibans_must_be_mostly_digits() -> None:
    """Spaces anywhere would let words pass for an IBAN's letters: written loosely, its tail must be half digits
    (a letter-heavy IBAN in groups of four still passes, as the registry allows)."""
    from feedbackflow.privacy.recognizers.iban import IbanAnyCaseRecognizer

    lettered = _iban("RO", "MNFS" + "YG6HPUUUJ0OWYL45")  # 4 digits of 20 after the check digits
    recognizer = IbanAnyCaseRecognizer()
    assert [r.entity_type for r in recognizer.analyze(f"to {_grouped(lettered)} now", ["IBAN_CODE"])] == ["IBAN_CODE"]
    assert recognizer.analyze(f"to {_split(lettered, [3] * 8)} now", ["IBAN_CODE"]) == []
    assert recognizer.analyze("we met at 12 Main Street 4 days ago in the branch", ["IBAN_CODE"]) == []


@pytest.mark.parametrize(
    ("written", "place", "kept"),
    [
        (".".join(_grouped(_iban("FI", "33767167453702")).split()) + " Berlin", (0, 29), ["Berlin"]),
        ("Bank in Madrid: IBAN" + _iban("BE", "401880010256"), (16, 39), []),
        ("Empfänger: IBAN IBAN" + _iban("AD", "94580730215736819303"), (11, 44), []),
    ],
)
def test_a_place_found_around_an_iban_keeps_only_its_words_outside_it(written, place, kept) -> None:
    """The learned detector tags some IBANs with the words around them as one place (the dev generators' IBANs,
    probe_iban_dev); the IBAN inside is the stronger finding, so it stays an IBAN and the place keeps the rest."""
    from presidio_analyzer import RecognizerResult

    from feedbackflow.privacy.engine import _clean
    from feedbackflow.privacy.recognizers.iban import IbanAnyCaseRecognizer

    ibans = IbanAnyCaseRecognizer().analyze(written, ["IBAN_CODE"])
    assert len(ibans) == 1 and ibans[0].score > 0.85
    detector = RecognizerResult("LOCATION", *place, 0.85)
    found = _clean(written, [*ibans, detector])
    assert [(r.entity_type, written[r.start : r.end]) for r in found if r.entity_type == "IBAN_CODE"] == [
        ("IBAN_CODE", written[ibans[0].start : ibans[0].end])
    ]
    assert [written[r.start : r.end] for r in found if r.entity_type == "LOCATION"] == kept


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("I'm in D04 W4FW, where is my nearest branch?", ["D04 W4FW"]),
        ("we moved to D6W 4K76 in summer", ["D6W 4K76"]),
        ("The letter was returned, postcode on it was ls17 6ns.", ["ls17 6ns"]),
        ("The branch finder shows nothing near CAP 20121.", ["20121"]),
        ("CP 28704 - that's where I live", ["28704"]),
        ("kod pocztowy 51-333 is outside the area", ["51-333"]),
        ("Post to 4326 Madison Road NW\nFresno, CA 93721", ["4326 Madison Road NW", "93721"]),
        ("My address is 152 George Parade, Sydney NSW 2071.", ["152 George Parade", "2071"]),
        ("Blk 563 Toa Payoh Lorong 1, #05-161, Singapore 310563", ["Blk 563 Toa Payoh Lorong 1", "310563"]),
        ("Registered address 3-6-16 Shibuya, Shibuya-ku, Tokyo 150-0002.", ["3-6-16 Shibuya", "150-0002"]),
        ("Please send the new card to Karlova 32, 360 00 Olomouc.", ["Karlova 32", "360 00"]),
        ("The statements still go to Am Mühlenbach 36, 8308 Zürich.", ["Am Mühlenbach 36", "8308"]),
        ("Delivery address: C/ de Goya, nº 120b, 18907 Granada", ["C/ de Goya, nº 120b", "18907"]),
        ("I moved to 113 ter place Jean Jaurès, 75011 Paris last month", ["113 ter place Jean Jaurès", "75011"]),
        ("The statements still go to 120 Castle Lawn, Galway, H91 7N9C.", ["120 Castle Lawn", "H91 7N9C"]),
        ("Delivery address: Rua do Ouro, 3, 1100-060 Lisboa", ["Rua do Ouro, 3", "1100-060"]),
        ("Kolkata, PIN 700128, my old flat", ["700128"]),
        ("I live in Austin, TX 78701 now, not at the old address.", ["78701"]),
        ("Statements go to my parents in Perth WA 6000.", ["6000"]),
        ("I live at 6/141 George Tce, Sydney NSW 2000 and the card went elsewhere.", ["6/141 George Tce", "2000"]),
        ("my new home is 2924 5th Blvd, Portland, OR 97201-8262", ["2924 5th Blvd", "97201-8262"]),
        ("Post to 9-20-16 Shibuya\nShibuya-ku, Tokyo 150-0002", ["9-20-16 Shibuya", "150-0002"]),
        ("we are at Kirkegate 75 now, same town", ["Kirkegate 75"]),
        ("The letter was returned, postcode on it was k1k 4x0.", ["k1k 4x0"]),
    ],
)
def test_postcodes_and_streets_in_each_countrys_order(engine, text, values) -> None:
    out = replaced(engine, text)
    assert all(value not in out for value in values), out
    assert "<PHONE_NUMBER>" not in out, out


@pytest.mark.parametrize(
    "text",
    [
        "I waited at gate 54 for an hour, then at terminal 5.",
        "Line 3 of the statement shows 98.30 twice.",
        "Route 35 bus stop is closer than the branch.",
        "Booking reference CG8809709 was cancelled without a refund.",
        "Payment reference RF18 5390 0754 7034 was rejected by the app.",
        "Card ending 4821 was charged 59.99 on 03/02/2025.",
        "The account ending in 0042 shows a fee.",
        "Tracking: RR123456785GB - stuck in customs.",
        "Order no. 482913057 was split into two parcels.",
    ],
)
def test_look_alike_codes_routes_and_masked_endings_are_kept(engine, text) -> None:
    assert replaced(engine, text) == text


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("Reisepassnummer: A93718033", "Reisepassnummer"),
        ("Konto 68126601 wurde gesperrt.", "Konto"),
        ("Beneficiary IBAN " + _grouped(_iban("FI", "66474043218847")), "Beneficiary IBAN"),
        ("I typed Postcode: 6760 TP and the lookup came back empty.", "Postcode"),
    ],
)
def test_form_labels_are_not_people(engine, text, label) -> None:
    out = replaced(engine, text)
    assert label in out and "<PERSON>" not in out and "<LOCATION>" not in out, out


def test_formats_dev_set_is_seeded_committed_and_labelled_exactly() -> None:
    first, again = devformats.generate(200), devformats.generate(200)
    assert [m.to_json() for m in first] == [m.to_json() for m in again]
    committed = evalset.read_jsonl(ROOT / devformats.DEFAULT_PATH)
    assert len(committed) == devformats.SIZE
    assert [m.to_json() for m in committed] == [m.to_json() for m in devformats.generate()]
    assert devformats.ENTITIES == devshapes.ENTITIES
    labelled = {span[2] for message in committed for span in message.spans}
    assert (
        {"PASSPORT", "BANK_ACCOUNT", "IBAN_CODE", "POSTCODE", "STREET_ADDRESS"} <= labelled <= set(devformats.ENTITIES)
    )
    negatives = sum(not message.spans for message in committed)
    assert 0.15 * len(committed) < negatives < 0.35 * len(committed)
    for message in committed:
        for start, end, entity in message.spans:
            value = message.text[start:end]
            assert value == value.strip() and value, (message.id, entity)
            if entity == "IBAN_CODE":
                assert devformats.iban_is_valid(value), message.id
    ours = "\n".join(devformats._PASSPORT_TEMPLATES + devformats._BANK_TEMPLATES + devformats._ADDRESS_TEMPLATES)
    assert not any(template in ours for template in devshapes._TEMPLATES)
