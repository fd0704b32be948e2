"""Calibration and the ``unknown`` decision: temperature scaling, out-of-scope scores, a threshold for a target.

A classifier trained on a closed taxonomy gives every message one of its intents. This module turns its logits into
calibrated probabilities (one temperature fitted on the validation split by minimising the negative log-likelihood)
and an out-of-scope score per message; below a threshold chosen on validation the prediction becomes ``unknown`` and
goes to a person. Two scores are measured and one is chosen per model by its validation figures (with
``oos.method: auto``: the one that, at the target precision, gets the most rows right, counting an out-of-scope row
made ``unknown`` as right):

* ``msp``: the largest softmax probability after temperature scaling (Hendrycks and Gimpel 2017);
* ``energy``: ``T * logsumexp(logits / T)``, the negative free energy (Liu et al. 2020), which keeps the magnitude
  of the logits that the softmax normalises away.

The threshold is the lowest score whose accepted validation rows reach ``oos.target_precision`` (share of accepted
rows whose intent is right; out-of-scope rows that are accepted count as wrong), so the model keeps as many messages
as the target allows. Rows labelled with ``oos.label`` are never taught to the classifier as an intent (unless the
taxonomy lists that label, then it is an ordinary class whose prediction also means ``unknown``); they are the
negatives the threshold must reject. Without any, the threshold is set from the in-scope errors alone.

Pure functions over arrays: no model, no file, no text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

UNKNOWN = "unknown"
METHODS = ("msp", "energy")
CALIBRATION_FILE = "calibration.json"
COVERAGES = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` (numerically stable)."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=1, keepdims=True)


def nll(logits: np.ndarray, targets: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true class ids at ``temperature``."""
    probs = softmax(logits, temperature)
    return float(-np.log(np.clip(probs[np.arange(len(targets)), targets], 1e-12, None)).mean())


def expected_calibration_error(probs: np.ndarray, targets: np.ndarray, bins: int = 15) -> float:
    """ECE: the confidence-weighted gap between confidence and accuracy over ``bins`` equal-width confidence bins."""
    if len(targets) == 0:
        return 0.0
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == targets
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            total += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(total)


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature that minimises the validation NLL (bounded search over log T in [-3, 3]; 1.0 without rows)."""
    if len(targets) == 0:
        return 1.0
    from scipy.optimize import minimize_scalar

    result = minimize_scalar(
        lambda log_t: nll(logits, targets, float(np.exp(log_t))), bounds=(-3.0, 3.0), method="bounded"
    )
    return round(float(np.exp(result.x)), 6)


def scores(logits: np.ndarray, temperature: float, method: str) -> np.ndarray:
    """The in-scope score of each row (higher: more likely one of the intents)."""
    logits = np.asarray(logits, dtype=np.float64)
    if method == "msp":
        return softmax(logits, temperature).max(axis=1)
    if method == "energy":
        scaled = logits / temperature
        peak = scaled.max(axis=1)
        return temperature * (peak + np.log(np.exp(scaled - peak[:, None]).sum(axis=1)))
    raise ValueError(f"unknown out-of-scope method {method!r}; expected one of {', '.join(METHODS)}")


def choose_threshold(score: np.ndarray, correct: np.ndarray, target_precision: float) -> dict[str, Any]:
    """The lowest threshold whose accepted rows (score >= threshold) reach ``target_precision``.

    Args:
        score: the in-scope score of each validation row.
        correct: whether the row's predicted intent is right (False for every out-of-scope row).
        target_precision: the share of accepted rows that must be right.

    Returns:
        ``threshold``, the ``precision`` and ``coverage`` (share of rows accepted) it gives, and ``target_met``.
        When no threshold reaches the target, the one with the best precision is returned with ``target_met``
        False (the gate report shows it).
    """
    if len(score) == 0:
        return {"threshold": float("-inf"), "precision": None, "coverage": None, "target_met": False}
    order = np.argsort(-score, kind="stable")
    ranked, right = score[order], correct[order].astype(np.float64)
    precision = np.cumsum(right) / np.arange(1, len(ranked) + 1)
    # a threshold accepts every row tied with it: only the last position of each run of ties is a valid cut
    cut = np.r_[ranked[1:] != ranked[:-1], True]
    valid = np.flatnonzero(cut)
    meeting = valid[precision[valid] >= target_precision]
    met = meeting.size > 0
    position = int(meeting.max()) if met else int(valid[np.argmax(precision[valid])])
    return {
        "threshold": float(ranked[position]),
        "precision": round(float(precision[position]), 6),
        "coverage": round((position + 1) / len(ranked), 6),
        "target_met": bool(met),
    }


def coverage_accuracy(score: np.ndarray, correct: np.ndarray, coverages: Sequence[float] = COVERAGES) -> list[dict]:
    """Selective prediction: the accuracy of the most confident ``coverage`` share of rows, for each coverage."""
    if len(score) == 0:
        return []
    order = np.argsort(-score, kind="stable")
    right = correct[order].astype(np.float64)
    rows = []
    for share in coverages:
        kept = max(1, round(share * len(right)))
        rows.append({"coverage": share, "accuracy": round(float(right[:kept].mean()), 6)})
    return rows


@dataclass
class Calibration:
    """What the train stage stores beside the weights (``calibration.json``) and inference applies."""

    temperature: float = 1.0
    method: str = "msp"
    threshold: float = float("-inf")
    target_precision: float = 0.95
    oos_label: str = "oos"
    oos_class: bool = False  # the taxonomy lists ``oos_label``: a prediction of it is also ``unknown``
    validation: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["threshold"] = None if not np.isfinite(self.threshold) else self.threshold
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        data = dict(data)
        data["threshold"] = float("-inf") if data.get("threshold") is None else float(data["threshold"])
        return cls(**{key: value for key, value in data.items() if key in cls.__dataclass_fields__})

    def decide(self, logits: np.ndarray, id2label: dict[int, str]) -> list[str]:
        """The label of each row, or ``unknown`` when its score is below the threshold (or it is the OOS class)."""
        if len(logits) == 0:
            return []
        score = scores(logits, self.temperature, self.method)
        predicted = np.asarray(logits).argmax(axis=1)
        labels = [id2label[int(index)] for index in predicted]
        return [
            UNKNOWN if value < self.threshold or (self.oos_class and label == self.oos_label) else label
            for value, label in zip(score, labels, strict=True)
        ]


def _method_figures(
    logits: np.ndarray, targets: np.ndarray, in_scope: np.ndarray, temperature: float, method: str, target: float
) -> dict[str, Any]:
    score = scores(logits, temperature, method)
    correct = in_scope & (logits.argmax(axis=1) == targets)
    chosen = choose_threshold(score, correct, target)
    accepted = score >= chosen["threshold"]
    figures = {
        **chosen,
        "in_scope_coverage": round(float(accepted[in_scope].mean()), 6) if in_scope.any() else None,
        "oos_recall": round(float((~accepted[~in_scope]).mean()), 6) if (~in_scope).any() else None,
        "aurc": round(_aurc(score[in_scope], correct[in_scope]), 6) if in_scope.any() else None,
        # right intents accepted plus out-of-scope rows made unknown: what a reviewer does not have to fix
        "decision_accuracy": round(float(((accepted & correct) | (~accepted & ~in_scope)).mean()), 6)
        if len(score)
        else None,
    }
    if (~in_scope).any() and in_scope.any():
        from sklearn.metrics import roc_auc_score

        figures["oos_auroc"] = round(float(roc_auc_score(in_scope, score)), 6)
    return figures


def _aurc(score: np.ndarray, correct: np.ndarray) -> float:
    """Area under the risk-coverage curve (mean error rate over all coverages; lower is better)."""
    order = np.argsort(-score, kind="stable")
    wrong = 1.0 - correct[order].astype(np.float64)
    return float((np.cumsum(wrong) / np.arange(1, len(wrong) + 1)).mean())


def fit_calibration(
    logits: np.ndarray,
    targets: Sequence[int],
    *,
    method: str,
    target_precision: float,
    oos_label: str,
    oos_class_id: int | None = None,
    bins: int = 15,
) -> Calibration:
    """Fit the temperature and the ``unknown`` threshold on validation logits.

    Args:
        logits: validation logits, one row per message.
        targets: the class id of each row, or -1 for an out-of-scope row (not an intent of the model).
        method: ``msp``, ``energy`` or ``auto`` (both measured; of those meeting the target precision, the one with
            the higher decision accuracy wins: right intents accepted plus out-of-scope rows made unknown, over all
            rows, which without out-of-scope rows is the in-scope coverage at the target; ties: ``msp``).
        target_precision: share of accepted validation rows that must be right.
        oos_label: the label value of out-of-scope rows.
        oos_class_id: the class id of ``oos_label`` when the taxonomy lists it (an extra class), else None.
        bins: confidence bins of the ECE.
    """
    logits = np.asarray(logits, dtype=np.float64)
    targets_array = np.asarray(targets, dtype=np.int64)
    in_scope = targets_array >= 0
    if oos_class_id is not None:
        in_scope &= targets_array != oos_class_id
    calibrated = targets_array >= 0  # the temperature is fitted on every row the model has a class for
    temperature = fit_temperature(logits[calibrated], targets_array[calibrated])
    validation: dict[str, Any] = {
        "rows": len(targets_array),
        "in_scope_rows": int(in_scope.sum()),
        "oos_rows": int((~in_scope).sum()),
        "nll_before": round(nll(logits[calibrated], targets_array[calibrated]), 6) if calibrated.any() else None,
        "nll_after": round(nll(logits[calibrated], targets_array[calibrated], temperature), 6)
        if calibrated.any()
        else None,
        "ece_before": round(expected_calibration_error(softmax(logits[in_scope]), targets_array[in_scope], bins), 6),
        "ece_after": round(
            expected_calibration_error(softmax(logits[in_scope], temperature), targets_array[in_scope], bins), 6
        ),
    }
    # a prediction of the OOS class is routed to review whatever its score: those rows do not set the threshold
    kept = logits.argmax(axis=1) != oos_class_id if oos_class_id is not None else np.ones(len(logits), dtype=bool)
    figures = {
        name: _method_figures(logits[kept], targets_array[kept], in_scope[kept], temperature, name, target_precision)
        for name in METHODS
    }
    validation["methods"] = figures
    chosen = method if method != "auto" else _pick(figures)
    validation["chosen_because"] = _reason(figures, chosen, method)
    return Calibration(
        temperature=temperature,
        method=chosen,
        threshold=figures[chosen]["threshold"],
        target_precision=target_precision,
        oos_label=oos_label,
        oos_class=oos_class_id is not None,
        validation=validation,
    )


def _pick(figures: dict[str, dict[str, Any]]) -> str:
    def key(name: str) -> tuple:
        row = figures[name]
        return (row["target_met"], row.get("decision_accuracy") or 0.0, name == "msp")

    return max(METHODS, key=key)


def _reason(figures: dict[str, dict[str, Any]], chosen: str, method: str) -> str:
    if method != "auto":
        return f"oos.method is {method}"
    parts = [
        f"{name}: decision accuracy {row.get('decision_accuracy')}, OOS recall {row.get('oos_recall')}, "
        f"in-scope coverage {row.get('in_scope_coverage')}, target met {row['target_met']}"
        for name, row in figures.items()
    ]
    return f"auto chose {chosen} on validation (target met, then decision accuracy; ties msp): " + "; ".join(parts)


def selective_metrics(
    truth: Sequence[str],
    logits: np.ndarray,
    id2label: dict[int, str],
    calibration: Calibration,
    in_scope_labels: Sequence[str],
    bins: int = 15,
) -> dict[str, Any]:
    """Out-of-scope and calibration figures of one model on labelled rows (test split).

    Rows whose truth is not an in-scope label are out of scope. Returns in-scope accuracy (argmax, as if every
    message were accepted), the decision's in-scope precision and coverage, OOS recall and precision, the unknown
    share, ECE before and after temperature scaling and the coverage-accuracy curve.
    """
    logits = np.asarray(logits, dtype=np.float64)
    decided = calibration.decide(logits, id2label)
    argmax = [id2label[int(index)] for index in logits.argmax(axis=1)] if len(logits) else []
    labels = set(in_scope_labels)
    in_scope = np.array([label in labels for label in truth], dtype=bool)
    unknown = np.array([label == UNKNOWN for label in decided], dtype=bool)
    correct = np.array([t == p for t, p in zip(truth, argmax, strict=True)], dtype=bool) & in_scope
    accepted_right = np.array([t == p for t, p in zip(truth, decided, strict=True)], dtype=bool) & in_scope
    label2id = {label: index for index, label in id2label.items()}
    targets = np.array([label2id.get(label, -1) for label in truth], dtype=np.int64)
    scored = in_scope & (targets >= 0)

    def share(numerator: int, denominator: int) -> float | None:
        return round(numerator / denominator, 6) if denominator else None

    score = scores(logits, calibration.temperature, calibration.method) if len(logits) else np.zeros(0)
    return {
        "rows": len(truth),
        "in_scope_rows": int(in_scope.sum()),
        "oos_rows": int((~in_scope).sum()),
        "in_scope_accuracy": share(int(correct.sum()), int(in_scope.sum())),
        "in_scope_precision": share(int(accepted_right.sum()), int((~unknown).sum())),
        "in_scope_coverage": share(int((~unknown & in_scope).sum()), int(in_scope.sum())),
        "oos_recall": share(int((unknown & ~in_scope).sum()), int((~in_scope).sum())),
        "oos_precision": share(int((unknown & ~in_scope).sum()), int(unknown.sum())) if (~in_scope).any() else None,
        "unknown_share": share(int(unknown.sum()), len(truth)),
        "ece_before": round(expected_calibration_error(softmax(logits[scored]), targets[scored], bins), 6),
        "ece_after": round(
            expected_calibration_error(softmax(logits[scored], calibration.temperature), targets[scored], bins), 6
        ),
        "coverage_accuracy": coverage_accuracy(score, correct),
        "method": calibration.method,
        "temperature": calibration.temperature,
        "threshold": calibration.to_dict()["threshold"],
        "target_precision": calibration.target_precision,
    }
