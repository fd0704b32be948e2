"""The promotion gate on known predictions: floors, paired test, significance, per-class/channel, label sets."""

from __future__ import annotations

import random

import pytest

from feedbackflow.modeling.gate import (
    Scored,
    decide,
    drop_test,
    holm,
    mcnemar,
    min_credible_rows,
    paired_bootstrap,
    tarone_k,
)
from feedbackflow.modeling.gate_report import render_html, render_markdown
from tests.helpers import section

LABELS = ["billing", "delivery", "login", "praise"]
RULES = section(
    "evaluate", min_accuracy=0.5, min_macro_f1=0.4, require_significant_gain=True, min_support=20, max_class_drop=0.05
)


def _test_rows(n: int = 800, seed: int = 1) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    truth = [LABELS[i % 4] for i in range(n)]
    channels = [rng.choice(["app", "email"]) for _ in range(n)]
    return truth, channels


def _predict(truth: list[str], accuracy: float, seed: int, wrong_only: set[str] | None = None) -> list[str]:
    """Predictions right on about ``accuracy`` of the rows (errors only on ``wrong_only`` labels when given)."""
    rng = random.Random(seed)
    out = []
    for label in truth:
        may_err = wrong_only is None or label in wrong_only
        if may_err and rng.random() > accuracy:
            out.append(rng.choice([other for other in LABELS if other != label]))
        else:
            out.append(label)
    return out


def _flip(predicted: list[str], truth: list[str], rows: int, seed: int, label: str | None = None) -> list[str]:
    """Make ``rows`` more rows wrong (of ``label`` only, when given)."""
    rng = random.Random(seed)
    out = list(predicted)
    candidates = [i for i, (p, t) in enumerate(zip(out, truth, strict=True)) if p == t and (label in (None, t))]
    for i in rng.sample(candidates, rows):
        out[i] = next(other for other in LABELS if other != truth[i])
    return out


def test_first_challenger_only_needs_the_floors():
    truth, channels = _test_rows()
    report = decide(truth, channels, LABELS, Scored(_predict(truth, 0.8, 1), LABELS), None, RULES)
    assert report.promote
    assert [rule.name for rule in report.rules] == [
        *("challenger_labels", "min_accuracy", "min_macro_f1", "min_in_scope_coverage", "champion")
    ]
    assert report.paired is None


def test_challenger_below_a_floor_is_refused_with_its_figures():
    truth, channels = _test_rows()
    report = decide(truth, channels, LABELS, Scored(_predict(truth, 0.3, 1), LABELS), None, RULES)
    assert not report.promote
    failed = [rule for rule in report.rules if not rule.passed]
    assert failed[0].name == "min_accuracy" and failed[0].figures["minimum"] == 0.5
    assert "< minimum 0.5000" in failed[0].detail


def test_challenger_below_the_coverage_minimum_is_refused_with_that_reason():
    """A better model that answers unknown too often would flood the review queue: refused, and the report says why."""
    truth, channels = _test_rows()
    champion = Scored(_predict(truth, 0.70, 2), LABELS, "champion")
    challenger = Scored(_predict(truth, 0.90, 3), LABELS)
    minimum = RULES.min_in_scope_coverage
    assert minimum == 0.6  # params.yaml's default: the 20 % BANKING77 probe's 0.19 is refused, the demo's 0.66 passes
    for coverage, promoted in ((0.19, False), (0.66, True), (None, True)):
        report = decide(truth, channels, LABELS, challenger, champion, RULES, coverage=coverage)
        assert report.promote is promoted, report.reasons
    refused = decide(truth, channels, LABELS, challenger, champion, RULES, coverage=0.19)
    failed = [rule for rule in refused.rules if not rule.passed]
    assert [rule.name for rule in failed] == ["min_in_scope_coverage"]
    assert failed[0].figures == {"value": 0.19, "minimum": 0.6}
    assert "FAIL: challenger in-scope coverage 0.1900 < minimum 0.6000" in refused.reasons[3]
    assert "81% of in-scope messages" in refused.reasons[3]
    # the gate report: the refusal with its plain meaning, the coverage of both models and the expected review load
    gate = refused.to_dict()
    gate["out_of_scope"] = {
        "label": "oos",
        "champion": {"in_scope_coverage": 0.66},
        "challenger": {"in_scope_coverage": 0.19, "newest_batch": {"review_load": 486, "review_budget": 200}},
    }
    markdown = render_markdown(gate, {"run_id": "r1", "champion_version": "v1", "min_support": 20})
    rule = next(line for line in markdown.splitlines() if line.startswith("| min_in_scope_coverage |"))
    assert "stay within what reviewers can label" in rule and "| **FAIL** | challenger in-scope coverage 0.1900" in rule
    assert "| in-scope coverage (in-scope messages not unknown) | 0.6600 | 0.1900 |" in markdown
    assert "labelling.budget 200) | - | 486 |" in markdown


def test_clearly_better_challenger_promotes():
    truth, channels = _test_rows()
    champion = Scored(_predict(truth, 0.70, 2), LABELS, "champion")
    challenger = Scored(_predict(truth, 0.90, 3), LABELS)
    report = decide(truth, channels, LABELS, challenger, champion, RULES)
    assert report.promote, report.reasons
    assert report.paired["ci_low"] > 0.1
    assert report.paired["mcnemar"]["p_value"] < 0.001
    assert any(rule.name == "significant_gain" and rule.passed for rule in report.rules)


def test_a_challenger_equal_within_noise_does_not_promote_when_significance_is_required():
    truth, channels = _test_rows()
    champion_predicted = _predict(truth, 0.80, 2)
    # same quality, different rows wrong: 30 rows fixed, 28 others broken (a point gain of 2 rows)
    fixed = list(champion_predicted)
    wrong = [i for i, (p, t) in enumerate(zip(fixed, truth, strict=True)) if p != t][:30]
    for i in wrong:
        fixed[i] = truth[i]
    challenger_predicted = _flip(fixed, truth, 28, seed=5)
    champion, challenger = Scored(champion_predicted, LABELS, "champion"), Scored(challenger_predicted, LABELS)
    report = decide(truth, channels, LABELS, challenger, champion, RULES)
    assert report.paired["macro_f1_difference"] > 0  # a point gain ...
    assert report.paired["ci_low"] < 0 < report.paired["ci_high"]  # ... within noise
    assert not report.promote
    assert [rule.name for rule in report.rules if not rule.passed] == ["significant_gain"]
    # without the significance rule the same challenger is "not significantly worse" and passes
    lenient = RULES.model_copy(update={"require_significant_gain": False})
    assert decide(truth, channels, LABELS, challenger, champion, lenient).promote


def test_a_significantly_worse_challenger_fails_the_paired_test():
    truth, channels = _test_rows()
    champion = Scored(_predict(truth, 0.90, 2), LABELS, "champion")
    challenger = Scored(_predict(truth, 0.75, 3), LABELS)
    lenient = RULES.model_copy(update={"require_significant_gain": False, "min_improvement": -1.0})
    report = decide(truth, channels, LABELS, challenger, champion, lenient)
    assert not report.promote
    assert "not_significantly_worse" in [rule.name for rule in report.rules if not rule.passed]


def test_a_per_class_regression_blocks_an_overall_better_challenger():
    truth, channels = _test_rows()
    champion_predicted = _predict(truth, 0.80, 2)
    # much better overall, but 'praise' loses more than half of its correct rows
    challenger_predicted = _predict(truth, 0.97, 3, wrong_only={"billing", "delivery", "login"})
    challenger_predicted = _flip(challenger_predicted, truth, 110, seed=4, label="praise")
    report = decide(
        truth,
        channels,
        LABELS,
        Scored(challenger_predicted, LABELS),
        Scored(champion_predicted, LABELS, "champion"),
        RULES,
    )
    assert not report.promote
    failed = {rule.name: rule for rule in report.rules if not rule.passed}
    assert set(failed) == {"class_non_regression"}, report.reasons
    assert failed["class_non_regression"].figures["failing"][0].startswith("praise ")
    praise = next(row for row in report.per_class if row["class"] == "praise")
    assert praise["change"] < -0.05 and praise["checked"] and not praise["passed"]


def test_a_per_channel_regression_blocks_and_small_groups_are_only_reported():
    truth, channels = _test_rows()
    champion_predicted = _predict(truth, 0.85, 2)
    challenger_predicted = list(champion_predicted)
    for i, channel in enumerate(channels):  # better on app, much worse on email
        if channel == "app":
            challenger_predicted[i] = truth[i]
        elif champion_predicted[i] == truth[i] and i % 6 == 0:
            challenger_predicted[i] = next(other for other in LABELS if other != truth[i])
    lenient = RULES.model_copy(
        update={"require_significant_gain": False, "min_improvement": -1.0, "max_class_drop": 1.0}
    )
    strict_channel = lenient.model_copy(update={"max_class_drop": 0.05})
    champion, challenger = Scored(champion_predicted, LABELS, "champion"), Scored(challenger_predicted, LABELS)
    assert decide(truth, channels, LABELS, challenger, champion, lenient).promote
    report = decide(truth, channels, LABELS, challenger, champion, strict_channel)
    failed = [rule for rule in report.rules if not rule.passed]
    assert "channel_non_regression" in [rule.name for rule in failed]
    assert any(item.startswith("email ") for item in failed[-1].figures["failing"])
    few = RULES.model_copy(update={"group_test": "threshold", "min_support": 10_000})  # every group too small
    assert all(not row["checked"] for row in decide(truth, channels, LABELS, challenger, champion, few).per_class)


def test_a_champion_with_another_label_set_is_a_gate_failure_naming_the_labels():
    truth, channels = _test_rows()
    champion = Scored([], ["billing", "delivery", "login", "refund"], "champion")
    report = decide(truth, channels, LABELS, Scored(_predict(truth, 0.9, 1), LABELS), champion, RULES)
    assert not report.promote
    rule = next(rule for rule in report.rules if rule.name == "champion_labels")
    assert not rule.passed
    assert rule.figures == {"missing": ["praise"], "extra": ["refund"]}
    assert "missing ['praise'], extra ['refund']" in rule.detail
    assert report.paired is None  # not scored silently


def test_paired_bootstrap_is_reproducible_and_brackets_the_point_difference():
    truth, _ = _test_rows(400)
    a, b = _predict(truth, 0.85, 1), _predict(truth, 0.8, 2)
    first = paired_bootstrap(truth, a, b, resamples=500, confidence=0.9, seed=7)
    assert first == paired_bootstrap(truth, a, b, resamples=500, confidence=0.9, seed=7)
    assert first["ci_low"] <= first["macro_f1_difference"] <= first["ci_high"]
    wider = paired_bootstrap(truth, a, b, resamples=500, confidence=0.99, seed=7)
    assert wider["ci_high"] - wider["ci_low"] > first["ci_high"] - first["ci_low"]
    assert mcnemar(truth, a, a) == {"only_challenger_right": 0, "only_champion_right": 0, "p_value": 1.0}


@pytest.mark.parametrize("label", ["<script>alert(1)</script>", "a|b"])
def test_reports_escape_labels_and_carry_every_rule(label):
    labels = [*LABELS[:3], label]
    truth = [labels[i % 4] for i in range(200)]
    channels = ["app"] * 200
    champion = Scored(_predict(truth, 0.8, 2), labels, "champion")
    report = decide(truth, channels, labels, Scored(list(truth), labels), champion, RULES).to_dict()
    meta = {
        "run_id": "r1",
        "challenger_sha256": "abc",
        "champion_version": "v1",
        "champion_sha256": "def",
        "min_support": 20,
    }
    markdown, html = render_markdown(report, meta), render_html(report, meta)
    for rule in report["rules"]:
        assert rule["name"] in markdown and rule["name"] in html
    if label.startswith("<"):
        assert label not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    else:
        assert "| a\\|b |" in markdown  # a pipe in a label does not break the Markdown table
    assert "paired bootstrap CI" in markdown and "McNemar" in html


MANY = [f"intent_{i:02d}" for i in range(30)]


def _many_class_night(small_rows: int, seed: int = 3) -> tuple[list[str], list[str], list[str], list[str]]:
    """30 intents of 40 test rows plus one small intent; the challenger is clearly better on the 30."""
    truth = [label for label in MANY for _ in range(40)] + ["small"] * small_rows
    channels = ["app" if i % 2 else "web" for i in range(len(truth))]
    rng = random.Random(seed)
    champion = [t if t == "small" or rng.random() < 0.80 else rng.choice(MANY) for t in truth]
    challenger = [t if t == "small" or rng.random() < 0.92 else rng.choice(MANY) for t in truth]
    return truth, channels, champion, challenger


@pytest.mark.parametrize("method", ["tarone", "holm"])
def test_noise_on_a_small_intent_does_not_block_a_better_challenger(method):
    truth, channels, champion, challenger = _many_class_night(small_rows=22)
    challenger[truth.index("small")] = MANY[0]  # one message of 22: F1 1.000 -> 0.977 (the night)
    labels = [*MANY, "small"]
    rules = RULES.model_copy(update={"max_class_drop": 0.01, "group_test": method})
    report = decide(truth, channels, labels, Scored(challenger, labels), Scored(champion, labels, "champion"), rules)
    small = next(row for row in report.per_class if row["class"] == "small")
    assert small["change"] < -0.01 and small["passed"]
    assert report.promote, report.reasons
    threshold = rules.model_copy(update={"group_test": "threshold"})  # the old rule refuses the same night
    old = decide(truth, channels, labels, Scored(challenger, labels), Scored(champion, labels, "champion"), threshold)
    assert [rule.name for rule in old.rules if not rule.passed] == ["class_non_regression"]


@pytest.mark.parametrize("method", ["tarone", "holm"])
def test_a_real_one_intent_regression_blocks(method):
    truth, channels, champion, challenger = _many_class_night(small_rows=0)
    lost = [i for i, t in enumerate(truth) if t == MANY[5] and champion[i] == t][:25]
    for i in lost:  # the challenger misroutes most of one intent's messages
        challenger[i] = MANY[6]
    rules = RULES.model_copy(update={"group_test": method})
    report = decide(truth, channels, MANY, Scored(challenger, MANY), Scored(champion, MANY, "champion"), rules)
    assert report.paired["ci_low"] > 0  # better overall, significantly
    failed = {rule.name: rule for rule in report.rules if not rule.passed}
    assert list(failed) == ["class_non_regression"], report.reasons
    assert failed["class_non_regression"].figures["failing"][0].startswith(f"{MANY[5]} ")
    row = next(row for row in report.per_class if row["class"] == MANY[5])
    assert row["p_adjusted"] < 0.05 and not row["passed"]


def test_tarone_finds_a_lost_eight_row_intent_that_holm_cannot():
    """Real models share most of their answers: few groups have enough disagreements to ever be credible."""
    truth = [label for label in MANY for _ in range(40)] + ["small"] * 8
    channels = ["app" if i % 2 else "web" for i in range(len(truth))]
    champion = [MANY[(MANY.index(t) + 1) % 30] if t != "small" and i % 40 < 6 else t for i, t in enumerate(truth)]
    challenger = list(champion)
    for label in MANY:  # one more message of each intent right ...
        challenger[truth.index(label)] = label
    for i, t in enumerate(truth):  # ... and all eight of the small intent lost: p = 0.5**8, above 0.05 / 33
        if t == "small":
            challenger[i] = MANY[0]
    labels = [*MANY, "small"]
    lenient = RULES.model_copy(update={"require_significant_gain": False, "min_improvement": -1.0})
    failed = {}  # the per-group rules only: losing a whole intent also costs 1/31 of macro-F1
    for method in ("tarone", "holm"):
        rules = lenient.model_copy(update={"group_test": method})
        report = decide(
            truth, channels, labels, Scored(challenger, labels), Scored(champion, labels, "champion"), rules
        )
        failed[method] = [rule.name for rule in report.rules if not rule.passed and "non_regression" in rule.name]
        small = next(row for row in report.per_class if row["class"] == "small")
        if method == "tarone":
            assert report.group_test["testable"] == 2  # the small intent and the web channel (34 disagreements)
            assert small["checked"] and small["p_adjusted"] == pytest.approx(2 * 0.5**8, abs=1e-6)
        else:
            assert not small["checked"]  # 8 rows < min_credible_rows(33, 0.05): too small to tell under Holm
    assert failed == {"tarone": ["class_non_regression"], "holm": []}


def test_groups_too_small_to_show_a_credible_drop_are_reported_not_gated():
    truth, channels, champion, challenger = _many_class_night(small_rows=3)
    for i, t in enumerate(truth):  # the small intent loses every message, yet 3 rows can never be credible
        if t == "small":
            challenger[i] = MANY[0]
    labels = [*MANY, "small"]
    report = decide(truth, channels, labels, Scored(challenger, labels), Scored(champion, labels, "champion"), RULES)
    small = next(row for row in report.per_class if row["class"] == "small")
    assert not small["checked"] and small["passed"] and small["change"] == -1.0 and small["p_adjusted"] is None
    assert report.group_test["method"] == "tarone" and report.group_test["groups"] == 33
    meta = {"run_id": "r1", "challenger_sha256": "a", "champion_version": "v1", "champion_sha256": "b"}
    html, markdown = render_html(report.to_dict(), meta), render_markdown(report.to_dict(), meta)
    assert "no (too small)" in html and "too small to tell" in markdown
    assert f"disagree on at least {report.group_test['min_disagreements']} test rows" in markdown


def test_holm_tarone_and_the_smallest_credible_group():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]
    assert min_credible_rows(82, 0.05) == 11  # 0.5**11 < 0.05 / 82 <= 0.5**10
    assert 0.5 ** min_credible_rows(82, 0.05) < 0.05 / 82 <= 0.5 ** (min_credible_rows(82, 0.05) - 1)
    # 80 groups with 2 disagreements can never reach p <= 0.05 / K: only the 3 with many disagreements count
    assert tarone_k([2] * 80 + [20, 15, 12], 0.05) == 3
    assert tarone_k([30] * 5, 0.05) == 5
    assert drop_test(["a"] * 4, ["a"] * 4, ["b"] * 4) == (pytest.approx(0.0625), 4)
    assert drop_test(["a", "a"], ["b", "a"], ["a", "b"]) == (pytest.approx(0.75), 2)
