"""The locked PII test set: the committed file is exactly what its own generator writes, and it is independent."""

from __future__ import annotations

from pathlib import Path

from tools.pii import devformats, devshapes, devwritten, evalset, testset

ROOT = Path(__file__).resolve().parents[2]


def test_committed_locked_set_is_what_the_generator_writes(tmp_path):
    written = evalset.write_jsonl(testset.generate(), tmp_path / "pii_test.jsonl")
    assert written.read_bytes() == (ROOT / testset.DEFAULT_PATH).read_bytes(), (
        "data/pii_test is locked: regenerate it only with a new seed, never edit it by hand"
    )


def test_locked_set_shares_no_text_and_no_name_locale_with_the_dev_set():
    dev = evalset.read_jsonl(ROOT / "data" / "pii_eval" / "pii_eval.jsonl")
    test = evalset.read_jsonl(ROOT / testset.DEFAULT_PATH)
    assert not {m.text for m in dev} & {m.text for m in test}
    assert len(set(testset.NAME_LOCALES) - set(evalset.NAME_LOCALES)) >= 8
    assert not set(testset.NAME_LOCALES) & set(evalset.NAME_LOCALES)


def test_no_dev_part_names_people_from_a_locale_of_the_locked_set():
    """Every dev part keeps out of the locked set's name locales, and at least 8 of the locked set's locales are
    used by no dev part at all (devshapes shares three IBAN countries with it: cs_CZ, de_CH, tr_TR; devwritten's
    domestic account numbers come from none of them)."""
    used: set[str] = set()
    for part in (evalset, devshapes, devformats, devwritten):
        assert not set(part.NAME_LOCALES) & set(testset.NAME_LOCALES), part.__name__
        used |= {
            locale
            for name in ("NAME_LOCALES", "ADDRESS_LOCALES", "IBAN_LOCALES", "BBAN_LOCALES")
            for locale in getattr(part, name, ())
        }
    locked = {*testset.NAME_LOCALES, *testset.ADDRESS_LOCALES, *testset.IBAN_LOCALES}
    assert len(locked - used) >= 8
    assert locked & used == {"cs_CZ", "de_CH", "tr_TR"}


def test_locked_set_labels_every_personal_type_and_holds_negatives():
    test = evalset.read_jsonl(ROOT / testset.DEFAULT_PATH)
    labelled = {span[2] for message in test for span in message.spans}
    assert labelled == set(testset.ENTITIES)
    negatives = [m for m in test if not m.spans]
    assert len(negatives) > 200
    assert all(message.text[s:e].strip() == message.text[s:e] for message in test for s, e, _ in message.spans)


def test_committed_sets_do_not_depend_on_the_day_they_are_regenerated(tmp_path, monkeypatch):
    """Faker's clock (the one date_of_birth reads) moved five years on: the locked set and the dev shapes part
    still regenerate byte for byte."""
    import datetime as real

    import faker.providers.date_time as faker_dates

    later = real.datetime(2031, 6, 15, 12, 0, 0)

    class MovedDateTime(real.datetime):
        @classmethod
        def now(cls, tz=None):
            return later.replace(tzinfo=tz)

    monkeypatch.setattr(faker_dates, "datetime", MovedDateTime)
    assert faker_dates.datetime.now().year == 2031
    for module in (testset, devshapes):
        written = evalset.write_jsonl(module.generate(), tmp_path / f"{module.__name__}.jsonl")
        assert written.read_bytes() == (ROOT / module.DEFAULT_PATH).read_bytes(), module.__name__
