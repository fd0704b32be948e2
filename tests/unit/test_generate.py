import pandas as pd
import pytest

from feedbackflow.demo.generate import generate


@pytest.fixture
def corpus():
    labels = [f"intent_{i}" for i in range(20)]
    return pd.DataFrame({"text": [f"message number {i} about things" for i in range(10000)], "label": labels * 500})


def test_same_seed_same_batches(corpus):
    a = generate(corpus, nights=2, rows_per_night=300, seed=3)
    b = generate(corpus, nights=2, rows_per_night=300, seed=3)
    for left, right in zip(a.batches, b.batches, strict=True):
        pd.testing.assert_frame_equal(left.frame, right.frame)
    assert a.canaries == b.canaries


def test_planted_pii_is_listed_and_present(corpus):
    data = generate(corpus, nights=1, rows_per_night=500, seed=1, pii_share=0.2, dirt_share=0)
    text = " ".join(data.batches[0].frame["text"])
    planted = [value for values in data.canaries.values() for value in values]
    assert len(planted) > 50
    assert all(value in text for value in planted)
    assert {"PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE"} <= set(data.canaries)


def test_dirt_and_drift(corpus):
    data = generate(corpus, nights=3, rows_per_night=500, seed=1, dirt_share=0.02, drift_from_night=3)
    night1, night3 = data.batches[0].frame, data.batches[2].frame
    assert night1["id"].duplicated().any()
    assert (night1["text"] == "").any()
    assert (night1["label"] == "no_such_intent").any()
    assert night1["text"].str.len().max() > 1000
    top_share = night3["label"].value_counts(normalize=True).iloc[:2].sum()
    assert top_share > 2 * night1["label"].value_counts(normalize=True).iloc[:2].sum()


def test_too_small_corpus_is_refused(corpus):
    with pytest.raises(ValueError, match="do not fit"):
        generate(corpus, nights=5, rows_per_night=2500)
