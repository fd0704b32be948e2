import pandas as pd

from feedbackflow.stages.split import assign_splits, split_frame
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
    paths.anonymised.mkdir(parents=True)
    frame.assign(text="hello").to_parquet(paths.anonymised / "feedback.parquet")

    with pytest.raises(DataQualityError) as raised:
        split.run(settings, paths)

    message = str(raised.value)
    assert "data/anonymised/feedback.parquet" in message and "validation split(s) came out empty" in message
    assert "validation 0" in message and "split.validation_share=0.1" in message and "Ingest more" in message
    assert not paths.split.exists()  # nothing half-written for train to pick up


def test_the_stage_streams_in_chunks_and_writes_what_one_pass_over_all_rows_gives(tmp_path):
    from feedbackflow.config import ProjectPaths
    from feedbackflow.stages import split

    settings = params_settings(split={"validation_share": 0.2, "test_share": 0.2})
    frame = _frame(500).assign(text="hello")
    frame.loc[::7, "label"] = None  # unlabelled rows spread over every chunk
    paths = ProjectPaths(tmp_path)
    paths.anonymised.mkdir(parents=True)
    frame.to_parquet(paths.anonymised / "feedback.parquet", index=False)
    whole = split_frame(frame, settings.split, settings.base.seed)

    summary = split.run(settings, paths, chunk_rows=37)  # 14 chunks, the last one short

    for name in ("train", "validation", "test"):
        written = pd.read_parquet(paths.split / f"{name}.parquet")
        pd.testing.assert_frame_equal(written, whole[name], check_dtype=False)
        assert summary["rows"][name] == len(whole[name])
    assert summary["unlabelled_rows"] == len(frame[::7])
    assert not list(tmp_path.joinpath("data").glob(".*partial"))
