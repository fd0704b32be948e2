import json

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


def test_an_existing_landing_file_with_other_rows_is_never_overwritten(corpus, tmp_path):
    from feedbackflow.demo.generate import write_batches

    landing = tmp_path / "landing"
    first = generate(corpus, nights=1, rows_per_night=300, seed=1)
    (path,) = write_batches(first, landing)
    before = path.read_bytes()

    assert write_batches(first, landing) == [path]  # the same command again: nothing changes
    other = generate(corpus, nights=1, rows_per_night=300, seed=2)  # same night, other rows
    with pytest.raises(FileExistsError, match=r"feedback-2026-01-01\.csv: already in the landing folder"):
        write_batches(other, landing)
    assert path.read_bytes() == before


def test_canaries_of_every_call_stay_listed(corpus, tmp_path):
    from feedbackflow.demo.generate import merge_canaries

    listed = tmp_path / "canaries.json"
    night1 = generate(corpus, nights=1, rows_per_night=300, seed=1, pii_share=0.3).canaries
    night2 = generate(corpus, nights=1, rows_per_night=300, seed=2, pii_share=0.3).canaries
    merge_canaries(listed, night1)
    merged = merge_canaries(listed, night2)
    on_disk = json.loads(listed.read_text(encoding="utf-8"))
    assert on_disk == merged
    for entity, values in [*night1.items(), *night2.items()]:
        assert set(values) <= set(on_disk[entity])
    assert sum(map(len, on_disk.values())) == len({(e, v) for c in (night1, night2) for e, vs in c.items() for v in vs})
    listed.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ValueError, match="expected an object"):
        merge_canaries(listed, night1)


def test_cli_generate_refuses_a_clash_and_merges_canaries(tmp_path):
    from typer.testing import CliRunner

    from feedbackflow.cli import app

    corpus_csv = tmp_path / "corpus.csv"
    labels = [f"intent_{i}" for i in range(20)]
    pd.DataFrame({"text": [f"message {i} about cards" for i in range(2000)], "category": labels * 100}).to_csv(
        corpus_csv, index=False
    )
    landing, canaries = tmp_path / "landing", tmp_path / "canaries.json"
    common = ["generate", "--corpus", str(corpus_csv), "--landing", str(landing), "--canaries", str(canaries)]
    runner = CliRunner()
    assert runner.invoke(app, [*common, "--rows-per-night", "200", "--pii-share", "0.5"]).exit_code == 0
    first = json.loads(canaries.read_text())
    clash = runner.invoke(app, [*common, "--rows-per-night", "250", "--seed", "7"])
    assert clash.exit_code == 1 and "already in the landing folder" in clash.output
    listed = canaries.read_text()
    nothing = runner.invoke(app, [*common, "--nights", "1", "--first-night", "2", "--rows-per-night", "200"])
    assert nothing.exit_code == 2 and "--first-night 2 --nights 3" in nothing.output
    assert canaries.read_text() == listed  # nothing planted for batches never written
    night2 = runner.invoke(app, [*common, "--nights", "2", "--first-night", "2", "--rows-per-night", "200"])
    assert night2.exit_code == 0, night2.output
    after = json.loads(canaries.read_text())
    assert all(set(values) <= set(after[entity]) for entity, values in first.items())
    assert sorted(p.name for p in landing.iterdir()) == ["feedback-2026-01-01.csv", "feedback-2026-01-02.csv"]


def test_out_of_scope_messages_are_planted_labelled_and_rise_with_drift(corpus):
    data = generate(corpus, nights=3, rows_per_night=2000, seed=2, dirt_share=0, oos_share=0.05, drift_from_night=3)
    first, last = data.batches[0].frame, data.batches[2].frame
    planted = first[first["label"] == "oos"]
    assert 0.03 < len(planted) / len(first) < 0.07
    assert not planted["text"].str.contains("message number").any()  # new text, nothing of the corpus message
    assert (last["label"] == "oos").mean() > 1.5 * (first["label"] == "oos").mean()
    none = generate(corpus, nights=1, rows_per_night=500, seed=2, dirt_share=0, oos_share=0)
    assert not (none.batches[0].frame["label"] == "oos").any()
    # the other draws do not depend on the out-of-scope share: the same rows keep their channel and id
    pd.testing.assert_series_equal(none.batches[0].frame["channel"], first["channel"][:500])
