"""Reviewers' answers turned into labels: one label per feedback id, or a dispute when reviewers disagree.

Per id, each reviewer's latest answer counts. When they all give the same answer it becomes the id's label (the
out-of-scope choice becomes ``oos.label``); when two disagree the id is disputed and no label is delivered: both
values are kept until the reviewers agree (one changes their answer in the tool). Across nights a newer label for an
id replaces the older one in validate (source ``review``: latest wins, the old row kept in the quarantine).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from feedbackflow.labelling.studio import Annotation

SOURCE = "review"


def _latest_per_annotator(answers: list[Annotation]) -> list[Annotation]:
    latest: dict[str, Annotation] = {}
    for answer in sorted(answers, key=lambda a: (a.annotated_at, a.task_id)):
        latest[answer.annotator] = answer
    return sorted(latest.values(), key=lambda a: (a.annotated_at, a.annotator))


def resolve(
    annotations: Iterable[Annotation], out_of_scope_choice: str, oos_label: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The labels reviewers agree on and the disputed ids.

    Returns:
        ``labels``: one record per agreed id (``id``, ``label``, ``annotator``, ``annotated_at``, ``task_id``,
        ``reviewers``, ``source``); ``disputes``: one record per id with every reviewer's latest value.
    """
    by_id: dict[str, list[Annotation]] = defaultdict(list)
    for annotation in annotations:
        by_id[annotation.feedback_id].append(annotation)
    labels, disputes = [], []
    for feedback_id, answers in sorted(by_id.items()):
        latest = _latest_per_annotator(answers)
        values = {oos_label if a.choice == out_of_scope_choice else a.choice for a in latest}
        if len(values) > 1:
            disputes.append(
                {
                    "id": feedback_id,
                    "values": [
                        {
                            "annotator": a.annotator,
                            "label": a.choice,
                            "annotated_at": a.annotated_at,
                            "task_id": a.task_id,
                        }
                        for a in latest
                    ],
                }
            )
            continue
        last = latest[-1]
        labels.append(
            {
                "id": feedback_id,
                "label": values.pop(),
                "annotator": ",".join(a.annotator for a in latest),
                "annotated_at": last.annotated_at,
                "task_id": last.task_id,
                "reviewers": len(latest),
                "source": SOURCE,
            }
        )
    return labels, disputes


def new_labels(labels: list[dict[str, Any]], taken: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The labels not taken back before (a changed label or a newer answer for an id is new)."""
    seen = {(str(r["id"]), r["label"], r.get("annotated_at")) for r in taken}
    return [r for r in labels if (r["id"], r["label"], r["annotated_at"]) not in seen]


def delivery_rows(labels: list[dict[str, Any]], queue: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Delivery rows of ``labels``: the queued row (anonymised text, channel, created_at) with the new label and its
    provenance. Returns the rows and how many labels had no queued row (not sent by this loop: skipped)."""
    sent = {str(r["id"]): r for r in queue}
    rows, unknown = [], 0
    for label in labels:
        row = sent.get(label["id"])
        if row is None:
            unknown += 1
            continue
        rows.append(
            {
                "id": label["id"],
                "text": row["text"],
                "label": label["label"],
                "channel": row["channel"],
                "created_at": row["created_at"],
                "annotator": label["annotator"],
                "annotated_at": label["annotated_at"],
                "task_id": label["task_id"],
                "review_source": SOURCE,
            }
        )
    return rows, unknown
