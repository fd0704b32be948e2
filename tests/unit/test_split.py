import math

import pandas as pd

from feedbackflow.stages.split import assign_splits, split_frame
from feedbackflow.storage import partitions
from tests.helpers import params_settings, section


def _frame(n, labels=("a", "b", "c")):
    return pd.DataFrame({"id": [f"id-{i}" for i in range(n)], "label": [labels[i % len(labels)] for i in range(n)]})


def test_a_message_keeps_its_split_when_new_data_arrives():
    shares = section("split", validation_share=0.1, test_share=0.2)
    night1 = _frame(1000)
    night2 = pd.concat([night1, _frame(3000).iloc[1000:]], ignore_index=True)
    first = dict(zip(night1["id"], assign_splits(night1, shares, seed=7), strict=True))
    second = dict(zip(night2["id"], assign_splits(night2, shares, seed=7), strict=True))
    assert all(second[key] == value for key, value in first.items())


def test_shares_are_respected_per_label():
    parts = split_frame(_frame(9000), section("split", validation_share=0.1, test_share=0.2), seed=1)
    for label in "abc":
        counts = {name: int((part["label"] == label).sum()) for name, part in parts.items()}
        assert abs(counts["test"] / 3000 - 0.2) < 0.03
        assert abs(counts["validation"] / 3000 - 0.1) < 0.03


def test_seed_changes_the_assignment_and_unlabelled_rows_are_left_out():
    frame = _frame(500)
    frame.loc[:9, "label"] = None
    a = split_frame(frame, section("split", test_share=0.1), seed=1)
    b = split_frame(frame, section("split", test_share=0.1), seed=2)
    assert sum(len(part) for part in a.values()) == 490
    assert set(a["test"]["id"]) != set(b["test"]["id"])


def test_an_empty_validation_split_is_a_clear_data_error_not_an_index_error(tmp_path):
    import pytest

    from feedbackflow.config import ProjectPaths
    from feedbackflow.errors import DataQualityError
    from feedbackflow.stages import split

    settings = params_settings(split={"validation_share": 0.1, "test_share": 0.2})
    candidates = _frame(40)
    names = assign_splits(candidates, settings.split, settings.base.seed)
    frame = candidates[names != "validation"].head(12)  # labelled rows, none of which hashes to validation
    assert not frame.empty and set(assign_splits(frame, settings.split, settings.base.seed)) == {"train", "test"}
    paths = ProjectPaths(tmp_path)
    partitions.write_frame(paths.anonymised, frame.assign(text="hello"))

    with pytest.raises(DataQualityError) as raised:
        split.run(settings, paths)

    message = str(raised.value)
    assert "data/anonymised" in message and "validation split(s) came out empty" in message
    assert "validation 0" in message and "split.validation_share=0.1" in message and "Ingest more" in message
    assert not paths.split.exists()  # nothing half-written for train to pick up


def test_the_stage_streams_in_chunks_and_writes_what_one_pass_over_all_rows_gives(tmp_path):
    from feedbackflow.config import ProjectPaths
    from feedbackflow.stages import split

    # a minimum above every label's plain test rows: the chunked cuts must equal the cuts of all rows at once
    settings = params_settings(split={"validation_share": 0.2, "test_share": 0.2, "min_test_rows_per_label": 40})
    frame = _frame(500).assign(text="hello")
    frame.loc[::7, "label"] = None  # unlabelled rows spread over every chunk
    paths = ProjectPaths(tmp_path)
    partitions.write_frame(paths.anonymised, frame.assign(batch_id=[f"b{n // 120}" for n in range(len(frame))]))
    frame = partitions.read_frame(paths.anonymised)  # five parts, read back in order
    whole = split_frame(frame, settings.split, settings.base.seed)

    summary = split.run(settings, paths, chunk_rows=37)  # 14 chunks, the last one short

    for name in ("train", "validation", "test"):
        written = pd.read_parquet(paths.split / f"{name}.parquet")
        pd.testing.assert_frame_equal(written, whole[name], check_dtype=False)
        assert summary["rows"][name] == len(whole[name])
    assert summary["unlabelled_rows"] == len(frame[::7])
    assert summary["labels_topped_up"] == 3 and all((whole["test"]["label"] == label).sum() == 40 for label in "abc")
    assert not list(tmp_path.joinpath("data").glob(".*partial"))


def _small_label(n_small, n_big=3000):
    big = _frame(n_big, labels=("big",))
    small = pd.DataFrame({"id": [f"small-{i}" for i in range(n_small)], "label": "small"})
    return pd.concat([big, small], ignore_index=True)


def test_a_small_label_is_topped_up_to_the_minimum_from_validation_never_from_train():
    frame = _small_label(70)
    shares = section("split", validation_share=0.3, test_share=0.05, min_test_rows_per_label=12)
    plain = dict(zip(frame["id"], assign_splits(frame, shares, seed=3), strict=True))
    parts = split_frame(frame, shares, seed=3)
    test = parts["test"]
    assert sum(name == "test" for key, name in plain.items() if key.startswith("small")) < 12  # the draw fell short
    assert (test["label"] == "small").sum() == 12
    assert all(plain[key] in ("test", "validation") for key in test["id"])  # no train row is moved
    assert set(parts["train"]["id"]) == {key for key, name in plain.items() if name == "train"}
    assert (test["label"] == "big").sum() == sum(name == "test" for key, name in plain.items() if "id-" in key)


def test_a_message_never_enters_test_from_train_and_leaves_extra_test_rows_as_its_label_grows():
    shares = section("split", validation_share=0.3, test_share=0.05, min_test_rows_per_label=12)
    night1 = _small_label(70)
    grown = pd.DataFrame({"id": [f"small-{i}" for i in range(70, 400)], "label": "small"})
    night2 = pd.concat([night1, grown], ignore_index=True)
    first = set(split_frame(night1, shares, seed=3)["test"]["id"])
    second = split_frame(night2, shares, seed=3)
    assert set(second["test"]["id"]) & set(night1["id"]) <= first  # the label now has the full minimum
    assert set(second["train"]["id"]) & set(night1["id"]) == set(split_frame(night1, shares, seed=3)["train"]["id"])


def test_the_minimum_is_off_at_zero():
    frame = _small_label(70)
    shares = section("split", validation_share=0.1, test_share=0.15, min_test_rows_per_label=0)
    plain = assign_splits(frame, shares, seed=3)
    assert split_frame(frame, shares, seed=3)["test"]["id"].tolist() == frame["id"][plain == "test"].tolist()


def test_a_small_label_keeps_half_its_expected_validation_rows():
    shares = section("split", validation_share=0.1, test_share=0.15, min_test_rows_per_label=12)
    for seed in range(20):
        frame = _small_label(60)
        plain = assign_splits(frame, shares, seed=seed)[frame["id"].str.startswith("small")]
        non_train, plain_test = int((plain != "train").sum()), int((plain == "test").sum())
        keep = math.ceil(non_train * 0.1 / 0.25 / 2)  # half the label's expected validation rows
        parts = split_frame(frame, shares, seed=seed)
        assert (parts["test"]["label"] == "small").sum() == max(plain_test, min(12, non_train - keep))
