"""Classification metrics shared by training and evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def classification_metrics(truth: Sequence[Any], predicted: Sequence[Any], labels: Sequence[Any]) -> dict[str, Any]:
    """Accuracy, macro-F1 over the labels present in ``truth`` and per-class F1.

    Macro-F1 averages over the classes that occur in the evaluation set, so a taxonomy label nobody used yet does not
    pull the score down.
    """
    from sklearn.metrics import accuracy_score, f1_score

    present = [label for label in labels if label in set(truth)]
    per_class = f1_score(truth, predicted, labels=present, average=None, zero_division=0)
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "macro_f1": float(f1_score(truth, predicted, labels=present, average="macro", zero_division=0)),
        "per_class_f1": {str(label): round(float(score), 6) for label, score in zip(present, per_class, strict=True)},
    }
