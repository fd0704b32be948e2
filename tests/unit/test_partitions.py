"""Partitioned outputs: readers see the parts in index order; publishing replaces the index and drops stale parts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from feedbackflow.storage import partitions


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"id": [f"r{n}" for n in range(7)], "text": list("abcdefg"), "batch_id": ["2", "2", "1", "1", "1", "3", "3"]}
    )


def test_parts_read_back_in_index_order_whatever_their_file_names(tmp_path: Path) -> None:
    written = partitions.write_frame(tmp_path, _frame())

    assert len(set(written)) == 3  # one part per run of a batch id
    pd.testing.assert_frame_equal(partitions.read_frame(tmp_path), _frame())
    batches = partitions.iter_batches(tmp_path, ["id"], batch_size=2)
    assert [row for batch in batches for row in batch.column("id").to_pylist()] == _frame()["id"].tolist()
    assert partitions.schema(tmp_path).names == ["id", "text", "batch_id"]


def test_a_batch_with_no_label_yet_and_a_labelled_one_read_as_one_string_column(tmp_path: Path) -> None:
    """Night 1 unlabelled (stored as Arrow's null type), night 2 the reviewers' labels: the label stays a string."""
    import pyarrow as pa

    frame = pd.DataFrame({"id": ["a", "b", "c"], "label": [None, None, "refund"], "batch_id": ["1", "1", "2"]})
    partitions.write_frame(tmp_path, frame)

    assert partitions.schema(tmp_path).field("label").type == pa.string()
    pd.testing.assert_frame_equal(partitions.read_frame(tmp_path), frame)


def test_publish_moves_new_parts_in_and_removes_what_the_index_no_longer_names(tmp_path: Path) -> None:
    out = tmp_path / "out"
    partitions.write_frame(out, _frame())
    (out / "feedback.parquet").write_bytes(b"a single-file output from before parts")
    keep = partitions.published_index(out)["parts"][1]
    staged = tmp_path / "staged"
    new = partitions.write_frame(staged, _frame().iloc[:2])[0]
    parts = [keep, {"file": new.name, "sha256": partitions.file_sha256(new)}]

    partitions.publish(staged, out, parts)

    assert sorted(path.name for path in out.iterdir()) == sorted([partitions.INDEX, keep["file"], new.name])
    assert partitions.read_frame(out)["id"].tolist() == ["r2", "r3", "r4", "r0", "r1"]
    assert all(partitions.intact(out, entry) for entry in parts)
    (out / new.name).write_bytes(b"corrupted")
    assert not partitions.intact(out, parts[1])


def test_an_unpublished_folder_is_an_error_naming_it(tmp_path: Path) -> None:
    partitions.write_frame(tmp_path, _frame())
    partitions.unpublish(tmp_path)

    with pytest.raises(partitions.NotPublishedError, match=str(tmp_path)):
        partitions.read_frame(tmp_path)
    assert partitions.read_index(tmp_path) is None and list(tmp_path.glob("part-*.parquet"))


def test_a_part_rewritten_by_an_erasure_is_recorded_in_the_index_and_reads_as_intact(tmp_path: Path) -> None:
    from feedbackflow.governance.erasure_data import write_rows

    written = partitions.write_frame(tmp_path, _frame())
    part = written[1]
    kept = pd.read_parquet(part).iloc[1:]  # the subject's row is removed from one part
    write_rows(kept.reset_index(drop=True), part)
    entry = next(e for e in partitions.published_index(tmp_path)["parts"] if e["file"] == part.name)
    assert not partitions.intact(tmp_path, entry)

    assert partitions.refresh_part(part) is True
    entry = next(e for e in partitions.published_index(tmp_path)["parts"] if e["file"] == part.name)
    assert partitions.intact(tmp_path, entry)
    assert len(partitions.read_frame(tmp_path)) == len(_frame()) - 1
    assert partitions.refresh_part(tmp_path / "elsewhere.parquet") is False
