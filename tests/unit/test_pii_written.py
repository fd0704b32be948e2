"""Bank accounts, postcodes, streets and names as customers write them (the devwritten dev set's subject).

Every value here is made up for the test; none comes from a PII set or from the dev part's generator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import replaced, run_bench_pii
from tools.pii import devformats, devshapes, devwritten, evalset

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "values"),
    [
        # grouped, dotted, dashed, with leading zeros
        ("bank details are 4417 2290 63, same as before", ["4417 2290 63"]),
        ("Acc. no.: 5512.7781", ["5512.7781"]),
        ("account number - 310.448.2276", ["310.448.2276"]),
        ("My account: 0008 143 227", ["0008 143 227"]),
        ("Account #: 71 4402 9913", ["71 4402 9913"]),
        ("refund to 9031-227-418 please, not the card", ["9031-227-418"]),
        # a domestic account number with its bank's letters
        ("My domestic account number is WXYZ 1020 3040 5060 70, the IBAN is on file.", ["WXYZ 1020 3040 5060 70"]),
        # the cue several words away, or after the number
        ("The account I pay my rent from is 002 418 5573.", ["002 418 5573"]),
        ("the account our mortgage comes out of is 66120948815", ["66120948815"]),
        ("44019273 is my account, not the card number.", ["44019273"]),
        ("730-112-4409 - that's my current account", ["730-112-4409"]),
        # payment verbs, lists, a form's line, names next to the number
        ("It was paid from 01928374 on the 3rd and you took it again.", ["01928374"]),
        ("My wages are paid into 5520 118903 but nothing came.", ["5520 118903"]),
        ("Please move the money from 83920177 to 10293847.", ["83920177", "10293847"]),
        ("my old acct was 551902837, the new one is 0040228191", ["551902837", "0040228191"]),
        ("savings acct 20019384 and checking 48 1120 9931", ["20019384", "48 1120 9931"]),
        ("Account number\n00917734", ["00917734"]),
        ("Beneficiary: Oskar Lindqvist 2291 0045 12", ["Oskar Lindqvist", "2291 0045 12"]),
        # sort codes with the account, in either order
        ("You can pay me back at 40-11-62 / 71234509.", ["40-11-62", "71234509"]),
        ("sc 30 92 17 acc no 55218830", ["30 92 17", "55218830"]),
        ("Kontonummer 4021 7788 19, bitte prüfen.", ["4021 7788 19"]),
        ("Please credit my a/c no.45678912 with the refund", ["45678912"]),
        ("Account: X0542811101000000123456", ["X0542811101000000123456"]),
        ("account 12345678-9 was blocked", ["12345678-9"]),
    ],
)
def test_bank_accounts_as_customers_write_them(engine, text, values) -> None:
    out = replaced(engine, text)
    assert all(value not in out for value in values), out
    assert "<PHONE_NUMBER>" not in out and "<CREDIT_CARD>" not in out, out


@pytest.mark.parametrize(
    "text",
    [
        "The account ending 4410 shows a fee I did not agree to.",
        "acct ****8127 was charged twice",
        "The last four digits of my account are 3107, can you find it?",
        "Order 644110 was refunded to my account on 09/05/2024.",
        "Transfer of £1,250.00 to my account on 12/03/2025 went through, thanks.",
        "Someone logged into my account from 203.0.113.77 and it wasn't me.",
        "I've had my account for 12 years, since 2011.",
        "Reference AB20931847 on the transfer of €40.00.",
        "Membership 69086113 expires 05/10/2026.",
        "Call me on the office line, ext. 4471.",
        "Paid to 0712345678 via mobile money.",
    ],
)
def test_masked_endings_amounts_and_references_are_no_accounts(engine, text) -> None:
    out = replaced(engine, text)
    assert "<UK_ACCOUNT_NUMBER>" not in out and "<US_BANK_NUMBER>" not in out, out


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("The form refused both postcodes, 40213 and 50667.", ["40213", "50667"]),
        ("Postcode\n20095", ["20095"]),
        ("Ship to: 81, MG Road, Pune, PIN: 411 001", ["81, MG Road", "411 001"]),
        ("cod poștal 010011 isn't recognised by the app", ["010011"]),
        ("Is there a branch in Köln (50667)?", ["50667"]),
        ("I'm in Thessaloniki 546 21 now.", ["546 21"]),
        ("From 8000 Aarhus C, the post takes a week.", ["8000"]),
        ("I moved to 72540 last year and the statements still go to the old address.", ["72540"]),
        ("Branch finder can't find anything near 3511 LX, is that right?", ["3511 LX"]),
        ("My address is Ermou 12, Athens, GR-105 63.", ["Ermou 12", "GR-105 63"]),
        ("Please update my address to Waldstraße 17, Hamburg (D-20095).", ["Waldstraße 17", "D-20095"]),
        ("Regards,\nAnna Berg\nStadiou 5\nAthens (105 64)", ["Stadiou 5", "105 64"]),
        ("We moved to Rotterdam 3011 AB last spring.", ["3011 AB"]),
        ("Send it to my office, 00184 Roma.", ["00184"]),
        ("Dear Sir,\n\n10115 Berlin\n\nplease close my account.", ["10115"]),
    ],
)
def test_postcodes_and_streets_as_customers_write_them(engine, text, values) -> None:
    out = replaced(engine, text)
    assert all(value not in out for value in values), out
    assert "<PHONE_NUMBER>" not in out, out


@pytest.mark.parametrize(
    "text",
    [
        "We moved in March 2024 and nothing changed.",
        "I live in 2 rooms, near 5000 other customers.",
        "Room 1234 was cold, floor 3.",
        "From 2019 onwards the fee doubled.",
        "The branch near 1200 homes closed.",
        "Flight from London 1234 was cancelled.",
        "Invoice 2024, 4500 Euros.",
        "Order 123, 4500 Units left.",
    ],
)
def test_years_rooms_and_counts_are_no_postcodes(engine, text) -> None:
    assert "<POSTCODE>" not in replaced(engine, text)


@pytest.mark.parametrize(
    ("text", "town"),
    [
        ("I'm in Den Haag (2511 CV) now.", "Den Haag"),
        ("Registered address: Herenlaan 113, 6877 TG EINDHOVEN", "EINDHOVEN"),
    ],
)
def test_a_town_next_to_its_postcode_is_no_person(engine, text, town) -> None:
    out = replaced(engine, text)
    assert town in out and "<PERSON>" not in out, out


def test_written_dev_set_is_seeded_committed_and_labelled_exactly() -> None:
    first, again = devwritten.generate(200), devwritten.generate(200)
    assert [m.to_json() for m in first] == [m.to_json() for m in again]
    committed = evalset.read_jsonl(ROOT / devwritten.DEFAULT_PATH)
    assert len(committed) == devwritten.SIZE
    assert [m.to_json() for m in committed] == [m.to_json() for m in devwritten.generate()]
    assert devwritten.ENTITIES == devshapes.ENTITIES
    labelled = {span[2] for message in committed for span in message.spans}
    assert {"BANK_ACCOUNT", "POSTCODE", "STREET_ADDRESS", "PERSON"} <= labelled <= set(devwritten.ENTITIES)
    negatives = sum(not message.spans for message in committed)
    assert 0.15 * len(committed) < negatives < 0.35 * len(committed)
    for message in committed:
        for start, end, entity in message.spans:
            value = message.text[start:end]
            assert value == value.strip() and value, (message.id, entity)
    ours = "\n".join(devwritten._BANK_TEMPLATES + devwritten._ADDRESS_TEMPLATES + devwritten._POSTCODE_TEMPLATES)
    assert not any(template in ours for template in devshapes._TEMPLATES)
    assert not set(devwritten._BANK_TEMPLATES) & set(devformats._BANK_TEMPLATES)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Ship to: Okonkwo, Adaeze, 56 Mill Lane, Bath BA1 1AA", "Okonkwo"),
        ("Kind regards,\nHalvorsen, Ingrid\n12 Park Road\nYork YO1 7HH", "Halvorsen, Ingrid"),
        ("c/o Tamsin Achterberg, Molenweg 4, 3512 AB Utrecht", "Tamsin Achterberg"),
    ],
)
def test_names_of_addressees_and_surname_first_signatures(engine, text, name) -> None:
    out = replaced(engine, text)
    assert name not in out and "<PERSON>" in out, out


def test_a_name_before_a_comma_and_a_postcode_stays_a_name(engine) -> None:
    out = replaced(engine, "Please post it to Adaeze Okonkwo, BA1 1AA, thank you.")
    assert "Adaeze Okonkwo" not in out and "<PERSON>" in out, out


def test_bench_scores_the_written_part_and_skips_the_locked_set_with_no_test(tmp_path: Path, capsys) -> None:
    pytest.importorskip("presidio_analyzer")
    sets = run_bench_pii(["--limit", "20", "--repeats", "1", "--no-test"], tmp_path / "pii.json")["sets"]
    printed = capsys.readouterr().out
    assert "written by customers" in printed and "LOCKED" not in printed
    assert set(sets) == {"dev", "dev_shapes", "dev_formats", "dev_written"}
    assert sets["dev_written"]["feedbackflow"]["BANK_ACCOUNT"]["gold"] > 0
