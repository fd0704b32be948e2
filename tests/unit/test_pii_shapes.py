"""The shapes of personal data issue 10 lists, each with made-up values: found and replaced, or kept (negatives).

Every value here is invented for the test; none comes from the dev or the locked PII set.
"""

from __future__ import annotations

import pytest

from feedbackflow.errors import ConfigError
from feedbackflow.privacy import engine as privacy
from feedbackflow.privacy.leak_gate import build_second_opinion, check_output
from feedbackflow.privacy.pseudonym import KEY_ENV, KEY_ID_FILE, NO_KEY, PseudonymKey, check_key_id, write_key_id
from feedbackflow.privacy.replace import anonymise_texts
from tests.helpers import params_settings, replaced


def _luhn(prefix: str, length: int) -> str:
    """A made-up card number: ``prefix``, zeros and ones, and a Luhn check digit."""
    body = (prefix + "1020304050607080901")[: length - 1]
    total = 0
    for i, char in enumerate(reversed(body)):
        digit = int(char) * (2 if i % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return body + str((10 - total % 10) % 10)


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("Call me on 416-555-0182 after six.", ["416-555-0182"]),
        ("My office line is (613) 555-0142.", ["(613) 555-0142"]),
        ("Mon numéro: 0490 12 34 56", ["0490 12 34 56"]),
        ("Rappelez-moi au 01.84.22.19.07 svp", ["01.84.22.19.07"]),
        ("you can call me at 467 3395 tonight", ["467 3395"]),
        ("Reach me on +351 912 345 678 or +49 1512 3456789.", ["+351 912 345 678", "+49 1512 3456789"]),
    ],
)
def test_phone_numbers_in_national_and_international_forms(engine, text, values) -> None:
    out = replaced(engine, text)
    assert all(value not in out for value in values), out
    assert "<PHONE_NUMBER>" in out


@pytest.mark.parametrize(
    "number", [_luhn("4", 19), _luhn("501800", 12), _luhn("2131", 15), _luhn("2200", 16), _luhn("6212", 19)]
)
def test_card_numbers_of_any_brand_and_length(engine, number) -> None:
    out = replaced(engine, f"They charged card {number} twice.")
    assert number not in out and "<CREDIT_CARD>" in out


def test_card_number_failing_luhn_is_kept(engine) -> None:
    number = _luhn("4", 16)[:-1] + str((int(_luhn("4", 16)[-1]) + 1) % 10)
    assert number in replaced(engine, f"Tracking reference {number} has not moved.")


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("Ines Moreau lives at 12 Rua das Flores, Porto", ["Ines Moreau", "12 Rua das Flores"]),
        ("Send it to 221B Baker Street, London NW1 6XE please", ["221B Baker Street", "NW1 6XE"]),
        ("Address: Calle Mayor 12, 28013 Madrid", ["Calle Mayor 12", "28013"]),
        ("Please deliver to 8 rue de Rivoli, 75004 Paris", ["8 rue de Rivoli", "75004"]),
        ("The parcel went to Lindenweg 14, 3011 Bern instead", ["Lindenweg 14", "3011"]),
        ("ZIP: 94103", ["94103"]),
    ],
)
def test_street_addresses_and_postcodes_in_any_order(engine, text, values) -> None:
    out = replaced(engine, text)
    assert all(value not in out for value in values), out


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("please follow up with anna kowalski about the refund", "anna kowalski"),
        ("spoke with maria santos on friday", "maria santos"),
        ("please let mark davies know, she handles our account", "mark davies"),  # a surname that looks inflected
        ("I already explained all this to Brett Fisher last week.", "Brett Fisher"),
    ],
)
def test_names_in_lower_case_and_running_text(engine, text, value) -> None:
    assert value not in replaced(engine, text)


@pytest.mark.parametrize(
    ("text", "pair"),
    [
        ("the job sites were closed all week", ("job", "sites")),
        ("my account says can babies open one?", ("can", "babies")),
        ("they shot innocent civilians", ("innocent", "civilians")),
    ],
)
def test_a_first_name_before_an_inflected_english_word_is_no_lower_case_name(engine, text, pair) -> None:
    """ "sites", "babies", "civilians" are English words though only "site", "baby", "civilian" are lemmas: the
    lemmatizer's own rules say so, so "job sites" is no lower-case first name + surname (human-labelled dev text)."""
    from feedbackflow.privacy import names

    assert names.is_english(pair[1]) and not names.is_name_pair(*pair)
    assert " ".join(pair) in replaced(engine, text)


def test_listed_surnames_stay_names_though_they_look_inflected() -> None:
    from feedbackflow.privacy import names

    assert names.is_name_pair("anna", "kowalski") and not names.is_english("kowalski")
    assert names.is_name_pair("mark", "davies") and names.is_name_pair("maria", "rivers")  # "davy" + -ies, "river" + -s


def test_names_in_lists_once_one_of_them_is_a_person(engine) -> None:
    out = replaced(engine, "The joint account is with Daniel Hughes, Okafor and Lindqvist.")
    assert not {"Daniel Hughes", "Okafor", "Lindqvist"} & set(out.replace(",", " ").replace(".", " ").split()), out


def test_list_of_surnames_alone(engine) -> None:
    out = replaced(engine, "founders: Eklund, Marsh and Okoro")
    assert "Eklund" not in out and "Marsh" not in out and "Okoro" not in out


def test_name_next_to_digits_is_trimmed_not_dropped(engine) -> None:
    out = replaced(engine, "Amy Clarke 2nd floor said the form was lost")
    assert "Amy Clarke" not in out and "2nd floor" in out


def test_trim_keeps_the_name_part_of_a_finding_with_a_digit_token() -> None:
    from presidio_analyzer import RecognizerResult

    text = "ask Amy Clarke 2nd floor"
    trimmed = privacy._trimmed(text, RecognizerResult("PERSON", 4, len(text), 0.85))
    assert trimmed is not None and text[trimmed.start : trimmed.end] == "Amy Clarke"
    text = "ref 4921 Amy Clarke"
    trimmed = privacy._trimmed(text, RecognizerResult("PERSON", 4, len(text), 0.85))
    assert trimmed is not None and text[trimmed.start : trimmed.end] == "Amy Clarke"
    assert privacy._trimmed("AB12 34", RecognizerResult("PERSON", 0, 7, 0.85)) is None


@pytest.mark.parametrize(
    ("text", "value", "entity"),
    [
        ("my SSN is 123-45-6789", "123-45-6789", "US_SSN"),
        ("social security number 078-12-3456 on the form", "078-12-3456", "US_SSN"),
        ("my NI number is AB 12 34 56 C", "AB 12 34 56 C", "UK_NINO"),
        ("passport number X1234567 expires soon", "X1234567", "PASSPORT"),
        ("I was born on 3 May 1961 and the app says I am too young", "3 May 1961", "DATE_OF_BIRTH"),
        ("DOB: 14/02/1958", "14/02/1958", "DATE_OF_BIRTH"),
        ("a 79 year old customer should not queue outside", "79", "AGE"),
        ("my father, aged 84, cannot use the app", "84", "AGE"),
        ("account number 12345678 was charged", "12345678", "UK_ACCOUNT_NUMBER"),
        ("sort code 12-34-56 is wrong", "12-34-56", "UK_SORT_CODE"),
    ],
)
def test_national_ids_dates_of_birth_ages_and_accounts_after_a_cue(engine, text, value, entity) -> None:
    out = replaced(engine, text)
    assert value not in out and f"<{entity}>" in out, out


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("Your driver left it at 417, rue Vaublanc, 69003 Lyon.", ["417, rue Vaublanc", "69003"]),
        ("We live at Kalinova 12b/3, Zagreb. Please update it.", ["Kalinova 12b/3"]),
        ("Address: 5512 Harlow Crossing\nPostal code: 3818KT\nCity: Utrecht", ["5512 Harlow Crossing", "3818KT"]),
        ("Tomasz Wrona\nPod Lipami 14\n612 00 Brno\n\nDear Sir or Madam,", ["Pod Lipami 14", "612 00"]),
        ("Post it to Strada Ion Creangă please", ["Strada Ion Creangă"]),
        ("Send it to 88 Quarry Mews, Leeds 51420 please", ["88 Quarry Mews", "51420"]),
        ("my pin code is 560034", ["560034"]),
    ],
)
def test_streets_and_postcodes_of_the_dev_sets_scope_shapes(engine, text, values) -> None:
    out = replaced(engine, text)
    assert all(value not in out for value in values), out


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        ("Spoke to Zdeněk Vorlíček yesterday about the fee.", ["Zdeněk Vorlíček"]),
        ("please pass this on to tomasz wrona, he has the file", ["tomasz wrona"]),
        ("Complaint filed by ÖZLEM ARSLANTÜRK about the branch.", ["ÖZLEM ARSLANTÜRK"]),
        ("Form filled in by K. Lindqvist on behalf of the estate.", ["Lindqvist"]),
        ("Staff on duty that day: Brankovic, Oyelaran and Szabados.", ["Brankovic", "Oyelaran", "Szabados"]),
        ("Joint holders: Heinz-Dieter Wollny & Gerda Pfaff.", ["Heinz-Dieter Wollny", "Gerda Pfaff"]),
    ],
)
def test_names_with_accents_capitals_initials_and_surname_lists(engine, text, gone) -> None:
    out = replaced(engine, text)
    assert all(value not in out for value in gone), out


@pytest.mark.parametrize(
    ("text", "value", "entity"),
    [
        ("I uploaded my passport (K48213977) twice already.", "K48213977", "PASSPORT"),
        ("I'm 67 and have banked with you all my life.", "67", "AGE"),
        ("My account number is 4410928374615 and the fee is wrong.", "4410928374615", "UK_ACCOUNT_NUMBER"),
        ("I have two accounts, 40718263 and 55102938, please merge them.", "55102938", "UK_ACCOUNT_NUMBER"),
        ("routing number 021000021, the transfer never arrived", "021000021", "US_BANK_NUMBER"),
    ],
)
def test_ids_ages_and_accounts_of_the_dev_sets_scope_shapes(engine, text, value, entity) -> None:
    out = replaced(engine, text)
    assert value not in out and f"<{entity}>" in out, out


def test_luhn_number_after_an_account_cue_is_an_account_not_a_card(engine) -> None:
    number = _luhn("7", 12)
    out = replaced(engine, f"Acct no. {number} shows a fee I never agreed to.")
    assert number not in out and "<UK_ACCOUNT_NUMBER>" in out and "<CREDIT_CARD>" not in out, out


@pytest.mark.parametrize(
    "text",
    [
        "Ticket 03383506 was closed without an answer.",
        "The branch on Station Road opens at 9:30 on weekdays.",
        "Dear Sir or Madam, my card was declined.",
        "I am 5 minutes away from the branch.",
    ],
)
def test_tickets_times_greetings_and_durations_are_kept(engine, text) -> None:
    out = replaced(engine, text)
    assert "<PHONE_NUMBER>" not in out and "<PERSON>" not in out and "<STREET_ADDRESS>" not in out
    assert "<AGE>" not in out, out


@pytest.mark.parametrize(
    "text",
    [
        "I was charged $1,249.99 twice for order #100234987.",
        "Order A-5531-2290 arrived on 2025-03-14 but the box was empty.",
        "Invoice INV-2025-00417 shows 89.90 EUR.",
        "Product code XR-2210 is listed at 14.99 online.",
        "The delivery on 14/03/2025 between 08:00 and 12:00 was missed.",
        "Visa or Mastercard? I live in Germany.",
    ],
)
def test_amounts_orders_dates_and_product_codes_are_kept(engine, text) -> None:
    assert replaced(engine, text) == text


def test_entities_can_be_switched_off() -> None:
    settings = params_settings(anonymise={"entities": ["EMAIL_ADDRESS"]}).anonymise
    engine = privacy.build_engine(settings)
    out = replaced(engine, "My name is Eleanor Whitfield, mail eleanor@example.org")
    assert "Eleanor Whitfield" in out and "eleanor@example.org" not in out


def test_second_opinion_catches_a_name_the_first_scan_was_made_to_miss() -> None:
    settings = params_settings().anonymise
    blind = privacy.build_engine(settings)
    for name in ("SpacyRecognizer", "NameCueRecognizer", "KnownFirstNameRecognizer"):
        blind.analyzer.registry.remove_recognizer(name)
    texts = ["I complained to Margaret Thornbury about the fee twice."]
    out, _ = anonymise_texts(texts, blind)
    assert "Margaret Thornbury" in out[0]  # the first scan's blind spot
    assert check_output(["r1"], out, blind, {}).passed, "re-running the same analyzer cannot see its own blind spot"
    report = check_output(["r1"], out, blind, {}, build_second_opinion(settings))
    assert not report.passed and report.rescan_hits == {"PERSON": ["r1"]}
    assert "Margaret" not in report.message()


def test_second_opinion_passes_clean_output_with_countries_and_card_networks() -> None:
    settings = params_settings().anonymise
    engine = privacy.build_engine(settings)
    texts = ["My name is Eleanor Whitfield. Does my Mastercard work in Germany?", "Call +44 7123 456789."]
    out, _ = anonymise_texts(texts, engine)
    assert check_output(["a", "b"], out, engine, {}, build_second_opinion(settings)).passed


def test_key_id_file_follows_the_key_and_never_holds_it(tmp_path) -> None:
    secret = "rotation-test-key-5c1e9a7b3d"
    assert write_key_id(tmp_path, {}) == NO_KEY
    key_id = write_key_id(tmp_path, {KEY_ENV: secret})
    assert key_id == PseudonymKey(secret.encode()).key_id
    assert (tmp_path / KEY_ID_FILE).read_text().strip() == key_id and secret not in (tmp_path / KEY_ID_FILE).read_text()
    check_key_id(tmp_path, key_id)
    with pytest.raises(ConfigError, match="another pseudonym key"):
        check_key_id(tmp_path, PseudonymKey(b"another-key-entirely-123").key_id)


def test_demo_plants_names_in_running_text_lists_lower_case_and_next_to_digits() -> None:
    import re

    import pandas as pd

    from feedbackflow.demo.generate import generate

    corpus = pd.DataFrame({"text": [f"message {i} about a card" for i in range(3000)], "label": ["a", "b"] * 1500})
    data = generate(corpus, nights=1, rows_per_night=2000, seed=5, pii_share=0.3, dirt_share=0)
    texts = data.batches[0].frame["text"].tolist()
    names = data.canaries["PERSON"]
    assert any(name.islower() for name in names), "lower-case names"
    assert any(re.search(rf"{re.escape(n)} \d", t) for n in names for t in texts), "names next to digits"
    assert any(re.search(rf"{re.escape(n)}, \w+ \w+ and ", t) for n in names for t in texts), "names in lists"
    assert any(re.search(rf"to {re.escape(n)} last week", t) for n in names for t in texts), "running text"
