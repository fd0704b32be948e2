"""Calibration and the unknown decision as pure functions: temperature, threshold, selective metrics."""

from __future__ import annotations

import numpy as np
import pytest

from feedbackflow.modeling.card import calibration_section
from feedbackflow.modeling.oos import (
    UNKNOWN,
    Calibration,
    choose_threshold,
    coverage_accuracy,
    expected_calibration_error,
    fit_calibration,
    nll,
    scores,
    selective_metrics,
    softmax,
)


def _overconfident(rows: int = 2000, classes: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A model whose true class probabilities are softmax(z), reporting 4 z: right ~70 % of the time, far surer."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.0, (rows, classes))
    z[np.arange(rows), rng.integers(0, classes, rows)] += 2.0
    probs = softmax(z)
    targets = np.array([rng.choice(classes, p=row) for row in probs])
    return z * 4.0, targets


def test_temperature_scaling_lowers_nll_and_ece_of_an_overconfident_model():
    logits, targets = _overconfident()
    calibration = fit_calibration(logits, targets, method="msp", target_precision=0.9, oos_label="oos")
    figures = calibration.validation
    assert calibration.temperature > 2.0  # the logits were inflated: the fitted temperature deflates them
    assert figures["nll_after"] < figures["nll_before"] - 0.5
    assert figures["ece_after"] < 0.5 * figures["ece_before"]
    # checked independently of the fitted figures: a fresh sample of the same model is better calibrated too
    fresh, fresh_targets = _overconfident(seed=1)
    before = expected_calibration_error(softmax(fresh), fresh_targets)
    after = expected_calibration_error(softmax(fresh, calibration.temperature), fresh_targets)
    assert after < 0.5 * before
    assert nll(fresh, fresh_targets, calibration.temperature) < nll(fresh, fresh_targets)


def test_threshold_is_the_lowest_that_meets_the_target_precision():
    rng = np.random.default_rng(3)
    correct = rng.random(400) < 0.8
    score = np.where(correct, rng.normal(0.8, 0.1, 400), rng.normal(0.5, 0.15, 400))
    chosen = choose_threshold(score, correct, 0.95)
    accepted = score >= chosen["threshold"]
    assert chosen["target_met"] is True
    assert correct[accepted].mean() >= 0.95
    assert chosen["precision"] == pytest.approx(correct[accepted].mean(), abs=1e-6)
    assert chosen["coverage"] == pytest.approx(accepted.mean(), abs=1e-6)
    # every lower threshold (the next rows down) falls short of the target: coverage is as large as it can be
    lower = np.sort(score[~accepted])[::-1]
    for cut in lower[:20]:
        assert correct[score >= cut].mean() < 0.95


def test_an_unreachable_target_is_reported_not_hidden():
    correct = np.array([False, True, False, True])
    chosen = choose_threshold(np.array([0.9, 0.8, 0.7, 0.6]), correct, 0.99)
    assert chosen["target_met"] is False
    assert chosen["precision"] == 0.5  # the best precision any threshold gives


def test_out_of_scope_rows_are_negatives_and_both_scores_are_measured():
    rng = np.random.default_rng(5)
    in_logits = rng.normal(0, 1, (300, 4))
    targets = rng.integers(0, 4, 300)
    in_logits[np.arange(300), targets] += 6.0  # confident and right
    oos_logits = rng.normal(0, 1, (100, 4))  # flat: nothing stands out
    logits = np.concatenate([in_logits, oos_logits])
    labels = np.concatenate([targets, np.full(100, -1)])
    calibration = fit_calibration(logits, labels, method="auto", target_precision=0.95, oos_label="oos")
    figures = calibration.validation
    assert figures["oos_rows"] == 100 and figures["in_scope_rows"] == 300
    assert set(figures["methods"]) == {"msp", "energy"}
    chosen = figures["methods"][calibration.method]
    # the lowest threshold meeting 95 % precision may let through up to 5 % of the accepted rows as OOS
    assert chosen["target_met"] and chosen["oos_recall"] >= 0.8 and chosen["oos_auroc"] > 0.95
    assert "auto chose" in figures["chosen_because"]
    decided = calibration.decide(logits, {0: "a", 1: "b", 2: "c", 3: "d"})
    accepted_oos = sum(label != UNKNOWN for label in decided[300:])
    accepted_in_scope = sum(label != UNKNOWN for label in decided[:300])
    assert accepted_in_scope >= 280
    assert accepted_oos / (accepted_oos + accepted_in_scope) <= 0.05


def test_without_out_of_scope_rows_the_threshold_comes_from_in_scope_errors():
    logits, targets = _overconfident(seed=7)
    calibration = fit_calibration(logits, targets, method="energy", target_precision=0.9, oos_label="oos")
    assert calibration.method == "energy"
    methods = calibration.validation["methods"]
    assert methods["energy"]["oos_recall"] is None and "oos_auroc" not in methods["energy"]
    assert methods["energy"]["target_met"] and methods["energy"]["precision"] >= 0.9
    assert 0.0 < methods["energy"]["in_scope_coverage"] < 1.0  # a 70 %-accurate model must abstain on some


def test_an_oos_class_in_the_taxonomy_is_always_unknown():
    calibration = Calibration(threshold=0.0, oos_class=True, oos_label="oos")
    logits = np.array([[5.0, 0.0], [0.0, 5.0]])
    assert calibration.decide(logits, {0: "billing", 1: "oos"}) == ["billing", UNKNOWN]


def test_calibration_round_trips_through_its_file_form():
    calibration = Calibration(temperature=1.7, method="energy", threshold=float("-inf"))
    data = calibration.to_dict()
    assert data["threshold"] is None  # JSON has no -inf: a model that never abstains
    assert Calibration.from_dict(data).threshold == float("-inf")


def test_selective_metrics_count_unknowns_oos_recall_and_precision():
    id2label = {0: "billing", 1: "login"}
    # rows: billing right and sure, login wrong and sure, billing unsure (unknown), two OOS (one caught)
    logits = np.array([[6.0, 0.0], [6.0, 0.0], [0.1, 0.0], [0.0, 0.05], [6.0, 0.0]])
    truth = ["billing", "login", "billing", "oos", "oos"]
    calibration = Calibration(temperature=1.0, method="msp", threshold=0.9)
    figures = selective_metrics(truth, logits, id2label, calibration, ["billing", "login"])
    assert figures["in_scope_rows"] == 3 and figures["oos_rows"] == 2
    assert figures["in_scope_accuracy"] == pytest.approx(2 / 3, abs=1e-6)  # argmax: rows 1 and 3 right
    assert figures["in_scope_coverage"] == pytest.approx(2 / 3, abs=1e-6)
    assert figures["in_scope_precision"] == pytest.approx(1 / 3, abs=1e-6)  # 3 accepted, 1 right
    assert figures["oos_recall"] == 0.5 and figures["oos_precision"] == 0.5
    assert figures["unknown_share"] == 0.4
    assert figures["coverage_accuracy"][-1] == {"coverage": 1.0, "accuracy": 0.4}


def test_energy_score_keeps_the_logit_magnitude_that_msp_loses():
    logits = np.array([[10.0, 0.0], [1.0, 0.0]]) * np.array([[1.0], [1.0]])
    scaled = logits * 3
    assert scores(scaled, 1.0, "energy")[0] > scores(logits, 1.0, "energy")[0]
    with pytest.raises(ValueError, match="unknown out-of-scope method"):
        scores(logits, 1.0, "mahalanobis")
    assert coverage_accuracy(np.array([0.9, 0.1]), np.array([True, False]), (0.5, 1.0)) == [
        {"coverage": 0.5, "accuracy": 1.0},
        {"coverage": 1.0, "accuracy": 0.5},
    ]


def test_card_section_shows_ece_before_and_after_and_the_choice():
    logits, targets = _overconfident()
    calibration = fit_calibration(logits, targets, method="auto", target_precision=0.9, oos_label="oos")
    text = "\n".join(calibration_section(calibration.to_dict()))
    figures = calibration.validation
    assert f"| expected calibration error | {figures['ece_before']} | {figures['ece_after']} |" in text
    assert f"T = {calibration.temperature}" in text and "Chosen: `" in text
    assert "never answers `unknown`" in "\n".join(calibration_section(None))
