"""The review loop: which rows go to reviewers, how Label Studio exports are read, how answers become labels."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from feedbackflow.errors import DataQualityError
from feedbackflow.labelling.annotations import delivery_rows, new_labels, resolve
from feedbackflow.labelling.selection import QC, UNCERTAIN, UNKNOWN, Budget, margins, select_batch
from feedbackflow.labelling.studio import Annotation, import_tasks, label_config, parse_export, read_exports


def _candidates(rows: int = 40) -> pd.DataFrame:
    """Rows r0..r39 with margins rising with the index; every 4th row is answered unknown."""
    return pd.DataFrame(
        {
            "id": [f"r{n}" for n in range(rows)],
            "margin": np.linspace(0.01, 0.99, rows)[::-1][::-1],
            "unknown": [n % 4 == 0 for n in range(rows)],
        }
    )


def test_unknown_rows_come_first_then_least_margin_then_a_qc_sample() -> None:
    candidates = _candidates()
    batch = select_batch(candidates, Budget(total=10, unknown_share=0.3, qc_share=0.2), exclude=(), seed=1)

    assert len(batch) == 10 and batch["id"].is_unique
    by_reason = batch.groupby("reason")["id"].apply(list).to_dict()
    assert by_reason[UNKNOWN] == ["r0", "r4", "r8"]  # the unknown share, least margin first
    assert by_reason[UNCERTAIN] == ["r1", "r2", "r3", "r5", "r6"]  # then the least margin among the rest
    qc = candidates.set_index("id").loc[by_reason[QC]]
    assert len(qc) == 2 and (qc["margin"] > 0.15).all()  # the QC sample is drawn from the confident rest
    again = select_batch(candidates, Budget(10, 0.3, 0.2), exclude=(), seed=1)
    assert again["id"].tolist() == batch["id"].tolist()  # seeded


def test_nothing_queued_or_labelled_is_sent_again() -> None:
    candidates = _candidates()
    sent = set(select_batch(candidates, Budget(10, 0.3, 0.2), exclude=(), seed=1)["id"])
    second = select_batch(candidates, Budget(10, 0.3, 0.2), exclude=sent, seed=1)
    assert len(second) == 10 and not sent & set(second["id"])
    everything = select_batch(candidates, Budget(100, 0.3, 0.2), exclude=sent, seed=1)
    assert len(everything) == 30  # a budget larger than the pool sends the pool once


def test_margin_is_taken_after_temperature_scaling() -> None:
    logits = np.array([[4.0, 1.0, 0.0], [2.0, 1.9, 0.0]])
    at_one, at_three = margins(logits, 1.0), margins(logits, 3.0)
    assert at_one[0] > at_one[1]  # the second row hesitates between two intents
    assert at_three[0] < at_one[0]  # a higher temperature flattens the probabilities
    assert margins(np.zeros((2, 1)), 1.0).tolist() == [1.0, 1.0]


def _export() -> list[dict]:
    """A Label Studio JSON export: a task two reviewers agree on, one they disagree on, an out-of-scope answer,
    a cancelled annotation and a reviewer who changed their answer."""

    def answer(who: int | dict, choice: str | None, at: str, cancelled: bool = False) -> dict:
        result = (
            []
            if choice is None
            else [{"type": "choices", "from_name": "label", "to_name": "text", "value": {"choices": [choice]}}]
        )
        return {"completed_by": who, "result": result, "updated_at": at, "was_cancelled": cancelled}

    return [
        {
            "id": 11,
            "data": {"feedback_id": "f1", "text": "t"},
            "annotations": [
                answer(1, "billing", "2026-12-01T10:00:00+00:00"),
                answer({"email": "b@x"}, "billing", "2026-12-01T11:00:00+00:00"),
            ],
        },
        {
            "id": 12,
            "data": {"feedback_id": "f2", "text": "t"},
            "annotations": [
                answer(1, "billing", "2026-12-01T10:00:00+00:00"),
                answer(2, "login", "2026-12-01T10:05:00+00:00"),
            ],
        },
        {
            "id": 13,
            "data": {"feedback_id": "f3", "text": "t"},
            "annotations": [
                answer(1, "out of scope", "2026-12-01T12:00:00+00:00"),
                answer(2, None, "2026-12-01T12:00:00+00:00", True),
            ],
        },
        {
            "id": 14,
            "data": {"feedback_id": "f4", "text": "t"},
            "annotations": [
                answer(1, "login", "2026-12-01T09:00:00+00:00"),
                answer(1, "delivery", "2026-12-01T13:00:00+00:00"),
            ],
        },
        {"id": 15, "data": {"feedback_id": "f5", "text": "t"}, "annotations": []},
    ]


def test_export_parsing_skips_cancelled_and_empty_answers(tmp_path) -> None:
    (tmp_path / "export.json").write_text(json.dumps(_export()), encoding="utf-8")
    annotations = read_exports(tmp_path)
    assert len(annotations) == 7
    assert Annotation("f1", 11, "b@x", "billing", "2026-12-01T11:00:00+00:00") in annotations
    (tmp_path / "broken.json").write_text(json.dumps([{"id": 1, "data": {"text": "no id"}}]), encoding="utf-8")
    with pytest.raises(DataQualityError, match=r"broken.json, task 0: no data.feedback_id"):
        read_exports(tmp_path)
    with pytest.raises(DataQualityError, match="not a Label Studio JSON export"):
        parse_export({"tasks": []}, "x.json")


def test_agreement_gives_a_label_disagreement_a_dispute_with_both_values() -> None:
    labels, disputes = resolve(parse_export(_export(), "export.json"), "out of scope", "oos")
    by_id = {row["id"]: row for row in labels}
    assert by_id["f1"]["label"] == "billing" and by_id["f1"]["reviewers"] == 2
    assert by_id["f3"]["label"] == "oos"  # "out of scope" becomes oos.label
    assert by_id["f4"]["label"] == "delivery"  # a reviewer's latest answer counts
    assert by_id["f1"]["source"] == "review" and by_id["f1"]["task_id"] == 11
    assert [d["id"] for d in disputes] == ["f2"] and "f2" not in by_id
    assert sorted(v["label"] for v in disputes[0]["values"]) == ["billing", "login"]


def test_labels_taken_once_and_delivered_with_the_queued_row() -> None:
    labels, _ = resolve(parse_export(_export(), "export.json"), "out of scope", "oos")
    taken = [labels[0]]
    fresh = new_labels(labels, taken)
    assert [row["id"] for row in fresh] == ["f3", "f4"]
    changed = [{**labels[0], "label": "login", "annotated_at": "2026-12-02T09:00:00+00:00"}]
    assert new_labels(changed, taken) == changed  # a newer answer for an id taken before is new
    queue = [{"id": "f3", "text": "<PERSON> asked about the weather", "channel": "app", "created_at": "2026-12-01"}]
    rows, not_sent = delivery_rows(fresh, queue)
    assert not_sent == 1 and len(rows) == 1
    assert rows[0] | {} == {
        "id": "f3",
        "text": "<PERSON> asked about the weather",
        "label": "oos",
        "channel": "app",
        "created_at": "2026-12-01",
        "annotator": "1",
        "annotated_at": "2026-12-01T12:00:00+00:00",
        "task_id": 13,
        "review_source": "review",
    }


def test_label_config_lists_every_choice_escaped() -> None:
    from xml.etree import ElementTree

    choices = ["billing", 'a "quoted" <intent>', "it's & more", "out of scope"]
    view = ElementTree.fromstring(label_config(choices))
    assert [node.get("value") for node in view.iter("Choice")] == choices
    tasks = import_tasks([{"id": 7, "text": "hi", "reason": "qc", "channel": "web", "predicted": "x"}])
    assert tasks == [{"data": {"text": "hi", "feedback_id": "7", "reason": "qc", "channel": "web"}}]
