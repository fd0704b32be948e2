"""The review loop per night, from its own state: sent, labelled, turnaround, agreement, unknown share.

Counts and shares only (no text), for the governance view. A night is the UTC date a batch was sent.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from statistics import median
from typing import Any

from feedbackflow.config import ProjectPaths
from feedbackflow.labelling import store
from feedbackflow.labelling.selection import QC, UNKNOWN


def _hours(start: str, end: str) -> float | None:
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() / 3600
    except (TypeError, ValueError):
        return None


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def night_row(night: str, sent: list[dict[str, Any]], labels: dict[str, dict[str, Any]], disputed: set[str]) -> dict:
    """The figures of one night's batch: ``sent`` rows, and the latest label taken back per id."""
    labelled = [(row, labels[row["id"]]) for row in sent if row["id"] in labels]
    turnaround = [h for row, label in labelled if (h := _hours(row["sent_at"], label["annotated_at"])) is not None]
    qc = [(row, label) for row, label in labelled if row["reason"] == QC]
    multi = [label for _, label in labelled if label.get("reviewers", 1) > 1]
    disputes = sum(1 for row in sent if row["id"] in disputed)
    return {
        "night": night,
        "sent": len(sent),
        "unknown_sent": sum(1 for row in sent if row["reason"] == UNKNOWN),
        "labelled": len(labelled),
        "disputed": disputes,
        "turnaround_hours": round(median(turnaround), 2) if turnaround else None,
        "qc_labelled": len(qc),
        "qc_model_agreement": _share(sum(1 for row, label in qc if row["predicted"] == label["label"]), len(qc)),
        "reviewer_agreement": _share(len(multi), len(multi) + disputes),
        "unknown_share": _share(sum(1 for row in sent if row["predicted"] == UNKNOWN), len(sent)),
    }


def review_loop(paths: ProjectPaths, limit: int = 30) -> list[dict[str, Any]]:
    """One row per night a batch was sent, newest first."""
    queue = store.read_lines(paths.review_queue)
    labels = {str(record["id"]): record for record in store.read_lines(paths.review_labels)}
    disputed = {str(record["id"]) for record in store.read_lines(paths.review_disputes)}
    nights: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in queue:
        nights[str(row["sent_at"])[:10]].append({**row, "id": str(row["id"])})
    return [night_row(night, nights[night], labels, disputed) for night in sorted(nights, reverse=True)[:limit]]


def night_figures(paths: ProjectPaths, night: str) -> dict[str, Any]:
    """The loop's figures of one night (a UTC date), for the run summary and the dashboard.

    ``sent``, ``unknown_sent`` and ``unknown_share`` are about the batch sent that night; ``labelled``,
    ``turnaround_hours`` and the agreements are about the labels taken back that night (answers to earlier nights'
    batches); ``disputed`` counts the ids whose reviewers disagree now, and ``reviewer_agreement`` sets the labels
    taken that night with two or more reviewers against them.
    """
    queue = {str(row["id"]): {**row, "id": str(row["id"])} for row in store.read_lines(paths.review_queue)}
    taken = {
        str(label["id"]): label
        for label in store.read_lines(paths.review_labels)
        if str(label.get("taken_at", ""))[:10] == night
    }
    disputed = {str(record["id"]) for record in store.read_lines(paths.review_disputes)}
    figures = night_row(night, [queue[key] for key in taken if key in queue], taken, set())
    sent = [row for row in queue.values() if str(row["sent_at"])[:10] == night]
    multi = sum(1 for label in taken.values() if label.get("reviewers", 1) > 1)
    return {
        **figures,
        "sent": len(sent),
        "unknown_sent": sum(1 for row in sent if row["reason"] == UNKNOWN),
        "unknown_share": _share(sum(1 for row in sent if row["predicted"] == UNKNOWN), len(sent)),
        "disputed": len(disputed),
        "reviewer_agreement": _share(multi, multi + len(disputed)),
    }
