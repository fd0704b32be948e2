"""The promotion gate: floors, a paired test against the champion, and per-class and per-channel non-regression.

Both models are scored on the same test rows, so the comparison is paired: the bootstrap resamples rows (the same
resample for both models) and reports a confidence interval of the macro-F1 difference; McNemar's exact test on the
rows exactly one model gets right is reported beside it. A class or channel blocks only when its F1 drop is both
larger than a margin and credible: a one-sided exact McNemar test on the group's rows, corrected over every class
and channel (``evaluate.group_test``: Tarone or Holm), so noise in one small group does not keep a better model
out night after night. Every rule returns its figures, so the gate report shows why a challenger passed or
failed. Pure functions over label lists: no model, no file, no message text.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from feedbackflow.config import ProjectPaths
from feedbackflow.io import read_json
from feedbackflow.settings import EvaluateSettings


@dataclass(frozen=True)
class Scored:
    """One model's predictions on the test rows (same order as the truth)."""

    predicted: Sequence[str]
    labels: Sequence[str]  # the label set the model was trained on
    name: str = "challenger"


@dataclass
class Rule:
    """One gate rule: its name, whether it passed, a one-line explanation and its figures."""

    name: str
    passed: bool
    detail: str
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class GateReport:
    """Everything the gate decided and measured; rendered as Markdown and HTML by :mod:`gate_report`."""

    promote: bool
    rules: list[Rule]
    test_rows: int
    challenger: dict[str, Any]
    champion: dict[str, Any] | None
    paired: dict[str, Any] | None = None
    per_class: list[dict[str, Any]] = field(default_factory=list)
    per_channel: list[dict[str, Any]] = field(default_factory=list)
    group_test: dict[str, Any] = field(default_factory=dict)
    confusion_changes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        return [f"{'pass' if rule.passed else 'FAIL'}: {rule.detail}" for rule in self.rules]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "reasons": self.reasons}


def _f1_table(truth: np.ndarray, predicted: np.ndarray, k: int, weights: np.ndarray) -> np.ndarray:
    """Per-class F1 for each row of ``weights`` (resample counts per test row): shape (resamples, k)."""
    hit = np.zeros((truth.size, k), dtype=np.float32)
    correct = truth == predicted
    hit[np.flatnonzero(correct), truth[correct]] = 1.0
    true_onehot = np.zeros((truth.size, k), dtype=np.float32)
    true_onehot[np.arange(truth.size), truth] = 1.0
    pred_onehot = np.zeros((truth.size, k), dtype=np.float32)
    valid = predicted >= 0
    pred_onehot[np.flatnonzero(valid), predicted[valid]] = 1.0
    tp, t, p = weights @ hit, weights @ true_onehot, weights @ pred_onehot
    denominator = t + p
    return np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)


def paired_bootstrap(
    truth: Sequence[str],
    challenger: Sequence[str],
    champion: Sequence[str],
    *,
    resamples: int,
    confidence: float,
    seed: int,
) -> dict[str, Any]:
    """Paired bootstrap of macro-F1(challenger) - macro-F1(champion) over the same resampled test rows.

    Macro-F1 averages over the classes present in the full test set (as :func:`classification_metrics` does).
    Returns the point difference, the two-sided percentile interval at ``confidence`` and the share of resamples in
    which the challenger was better.
    """
    classes = sorted(set(truth))
    index = {label: i for i, label in enumerate(classes)}
    t = np.array([index[label] for label in truth])
    a = np.array([index.get(label, -1) for label in challenger])
    b = np.array([index.get(label, -1) for label in champion])
    k, n = len(classes), t.size
    rng = np.random.default_rng(seed)
    diffs = []
    for start in range(0, resamples, 200):  # chunks keep the (resamples x rows) weight matrix small
        size = min(200, resamples - start)
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=size).astype(np.float32)
        diffs.append(_f1_table(t, a, k, weights).mean(axis=1) - _f1_table(t, b, k, weights).mean(axis=1))
    diff = np.concatenate(diffs)
    full = np.ones((1, n), dtype=np.float32)
    point = float(_f1_table(t, a, k, full).mean() - _f1_table(t, b, k, full).mean())
    tail = (1 - confidence) / 2
    low, high = np.quantile(diff, [tail, 1 - tail])
    return {
        "macro_f1_difference": round(point, 6),
        "ci_low": round(float(low), 6),
        "ci_high": round(float(high), 6),
        "confidence": confidence,
        "resamples": resamples,
        "share_challenger_better": round(float((diff > 0).mean()), 4),
    }


def _discordant(truth: Sequence[str], first: Sequence[str], second: Sequence[str]) -> tuple[int, int]:
    """Rows only ``first`` gets right, and rows only ``second`` gets right (McNemar's discordant pairs)."""
    only_first = sum(1 for t, a, b in zip(truth, first, second, strict=True) if a == t != b)
    only_second = sum(1 for t, a, b in zip(truth, first, second, strict=True) if b == t != a)
    return only_first, only_second


def mcnemar(truth: Sequence[str], challenger: Sequence[str], champion: Sequence[str]) -> dict[str, Any]:
    """McNemar's exact test on accuracy: rows only the challenger gets right vs rows only the champion gets right."""
    from scipy.stats import binomtest

    only_challenger, only_champion = _discordant(truth, challenger, champion)
    discordant = only_challenger + only_champion
    p_value = binomtest(only_challenger, discordant, 0.5).pvalue if discordant else 1.0
    return {"only_challenger_right": only_challenger, "only_champion_right": only_champion, "p_value": p_value}


def _per_class_f1(truth: Sequence[str], predicted: Sequence[str], classes: Sequence[str]) -> dict[str, float]:
    from sklearn.metrics import f1_score

    scores = f1_score(truth, predicted, labels=list(classes), average=None, zero_division=0)
    return {label: float(score) for label, score in zip(classes, scores, strict=True)}


def _accuracy(truth: Sequence[str], predicted: Sequence[str]) -> float:
    return sum(t == p for t, p in zip(truth, predicted, strict=True)) / max(len(truth), 1)


def _macro_f1(truth: Sequence[str], predicted: Sequence[str]) -> float:
    classes = sorted(set(truth))
    return float(np.mean(list(_per_class_f1(truth, predicted, classes).values()))) if classes else 0.0


def label_set_rule(model: Scored, taxonomy: Sequence[str]) -> Rule:
    """A model whose labels differ from the taxonomy cannot be compared: the rule names the differing labels."""
    missing, extra = sorted(set(taxonomy) - set(model.labels)), sorted(set(model.labels) - set(taxonomy))
    ok = not missing and not extra
    detail = f"{model.name} label set matches the taxonomy ({len(taxonomy)} labels)"
    if not ok:
        detail = (
            f"{model.name} label set differs from the taxonomy: missing {missing or 'none'}, "
            f"extra {extra or 'none'}; it cannot be scored against this test set"
        )
    return Rule(f"{model.name}_labels", ok, detail, {"missing": missing, "extra": extra})


def _floor_rules(scores: dict[str, float], rules: EvaluateSettings) -> list[Rule]:
    found = []
    for metric, floor in (("accuracy", rules.min_accuracy), ("macro_f1", rules.min_macro_f1)):
        ok = scores[metric] >= floor
        found.append(
            Rule(
                f"min_{metric}",
                ok,
                f"challenger {metric} {scores[metric]:.4f} {'>=' if ok else '<'} minimum {floor:.4f}",
                {"value": round(scores[metric], 6), "minimum": floor},
            )
        )
    return found


def coverage_rule(coverage: float | None, minimum: float) -> Rule:
    """The challenger must accept (not answer ``unknown``) at least ``minimum`` of the in-scope test rows.

    Below it, too much of a night's feedback would go to review for reviewers to keep up (docs/labelling.md).
    ``coverage`` None: not measured (no in-scope test rows, or a model without an unknown decision); the rule passes.
    """
    if coverage is None:
        return Rule("min_in_scope_coverage", True, "in-scope coverage not measured", {"minimum": minimum})
    ok = coverage >= minimum
    detail = f"challenger in-scope coverage {coverage:.4f} {'>=' if ok else '<'} minimum {minimum:.4f}" + (
        "" if ok else f": it answers unknown for {1 - coverage:.0%} of in-scope messages, all sent to review"
    )
    return Rule("min_in_scope_coverage", ok, detail, {"value": coverage, "minimum": minimum})


def _paired_rules(paired: dict[str, Any], test: dict[str, Any], rules: EvaluateSettings) -> list[Rule]:
    level = f"{paired['confidence']:.0%}"
    interval = f"[{paired['ci_low']:+.4f}, {paired['ci_high']:+.4f}]"
    worse = paired["ci_high"] < 0
    found = [
        Rule(
            "not_significantly_worse",
            not worse,
            f"macro-F1 difference {paired['macro_f1_difference']:+.4f}, {level} paired bootstrap CI {interval}"
            + (" lies below 0" if worse else " reaches 0 or above"),
            {**paired, "mcnemar": test},
        ),
        Rule(
            "min_improvement",
            paired["macro_f1_difference"] >= rules.min_improvement,
            f"macro-F1 difference {paired['macro_f1_difference']:+.4f} "
            f"{'>=' if paired['macro_f1_difference'] >= rules.min_improvement else '<'} "
            f"required {rules.min_improvement:+.4f}",
            {"difference": paired["macro_f1_difference"], "required": rules.min_improvement},
        ),
    ]
    if rules.require_significant_gain:
        gain = paired["ci_low"] > 0
        found.append(
            Rule(
                "significant_gain",
                gain,
                f"{level} CI {interval} " + ("lies above 0" if gain else "includes 0 or less: gain not significant"),
                {"ci_low": paired["ci_low"], "confidence": paired["confidence"]},
            )
        )
    return found


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values: a group is credible at level alpha when its adjusted p is below alpha.

    Controls the chance of blocking on any group by luck (the family-wise error rate) without assuming the groups
    are independent; rows of one class and of one channel overlap, so a method that needs independence would not do.
    """
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [1.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def min_credible_rows(groups: int, alpha: float) -> int:
    """Fewest rows on which a drop can be credible: with every row going against the challenger, the exact one-sided
    test gives p = 0.5**rows, which must get below the strictest step, alpha / groups (Holm: all groups; Tarone:
    the testable ones)."""
    return max(1, math.ceil(math.log2(groups / alpha)))


def drop_test(truth: Sequence[str], champion: Sequence[str], challenger: Sequence[str]) -> tuple[float, int]:
    """One-sided exact McNemar test that the challenger gets more of these rows wrong than the champion does.

    Returns the p-value and the number of rows the two models disagree on (right for one only); conditional on
    that number the smallest p-value the test can give is 0.5 ** disagreements.
    """
    from scipy.stats import binomtest

    lost, gained = _discordant(truth, champion, challenger)
    disagree = lost + gained
    return (float(binomtest(lost, disagree, 0.5, alternative="greater").pvalue) if disagree else 1.0), disagree


def tarone_k(disagreements: Sequence[int], alpha: float) -> int:
    """Tarone's count of testable groups: the smallest K such that at most K groups could reach p <= alpha / K.

    A group whose smallest possible p-value (0.5 ** disagreements) exceeds alpha / K can never be found credible, so
    it cannot cause a false block and need not be paid for in the correction (Tarone 1990, Biometrics 46:515).
    """
    for k in range(1, len(disagreements) + 1):
        if sum(1 for d in disagreements if 0.5**d <= alpha / k) <= k:
            return k
    return max(1, len(disagreements))


@dataclass
class _Group:
    """One class (its test rows) or channel (the rows that came through it), and both models' F1 on it."""

    kind: str
    name: str
    rows: list[int]
    champion: float
    challenger: float

    @property
    def drop(self) -> float:
        return self.champion - self.challenger


def _groups(truth: Sequence[str], channels: Sequence[str], predictions: dict[str, Sequence[str]]) -> list[_Group]:
    """Every class and channel. Each row is in one class group, so a misrouted message counts once: against the
    class it truly belongs to (the class a wrong answer lands in is another class's loss of its own rows)."""
    classes = sorted(set(truth))
    f1 = {model: _per_class_f1(truth, predicted, classes) for model, predicted in predictions.items()}
    groups = [
        _Group(
            "class",
            label,
            [i for i, t in enumerate(truth) if t == label],
            f1["champion"][label],
            f1["challenger"][label],
        )
        for label in classes
    ]
    members: dict[str, list[int]] = {}
    for i, channel in enumerate(channels):
        members.setdefault(str(channel), []).append(i)
    for channel, rows in sorted(members.items()):
        sub_truth = [truth[i] for i in rows]
        score = {m: _macro_f1(sub_truth, [p[i] for i in rows]) for m, p in predictions.items()}
        groups.append(_Group("channel", channel, rows, score["champion"], score["challenger"]))
    return groups


def _adjusted(
    tests: list[tuple[float, int]], sizes: list[int], rules: EvaluateSettings
) -> tuple[list[float | None], list[bool], dict[str, Any]]:
    """Per group: the adjusted p-value (None: no statistics), whether it is checked, and what the method needed."""
    alpha, p_values = 1 - rules.confidence, [p for p, _ in tests]
    if rules.group_test == "tarone":
        k = tarone_k([d for _, d in tests], alpha)
        testable = [0.5**d <= alpha / k for _, d in tests]
        adjusted = [min(1.0, k * p) if ok else None for p, ok in zip(p_values, testable, strict=True)]
        need = min_credible_rows(k, alpha)
        return adjusted, testable, {"method": "tarone", "groups": len(tests), "testable": k, "min_disagreements": need}
    if rules.group_test == "holm":
        need = min_credible_rows(len(tests), alpha)
        return (
            list(holm(p_values)),
            [n >= need for n in sizes],
            {"method": "holm", "groups": len(tests), "min_rows": need},
        )
    checked = [n >= rules.min_support for n in sizes]
    return [None] * len(tests), checked, {"method": "threshold", "groups": len(tests), "min_rows": rules.min_support}


def _group_verdicts(
    groups: list[_Group], truth: Sequence[str], predictions: dict[str, Sequence[str]], rules: EvaluateSettings
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Each group's figures and verdict: it fails when it is checked, drops by more than the margin, and the drop is
    credible (adjusted p below 1 - confidence; the threshold method asks no statistics)."""
    tests = [
        drop_test(*([seq[i] for i in g.rows] for seq in (truth, predictions["champion"], predictions["challenger"])))
        for g in groups
    ]
    adjusted, checked, method = _adjusted(tests, [len(g.rows) for g in groups], rules)
    rows = []
    for group, (p, disagree), p_adj, ok in zip(groups, tests, adjusted, checked, strict=True):
        credible = p_adj is None or p_adj < 1 - rules.confidence
        rows.append(
            {
                group.kind: group.name,
                "support": len(group.rows),
                "champion": round(group.champion, 4),
                "challenger": round(group.challenger, 4),
                "change": round(-group.drop, 4),
                "disagreements": disagree,
                "p_value": round(p, 6),
                "p_adjusted": None if p_adj is None else round(p_adj, 6),
                "checked": ok,
                "passed": not (ok and group.drop > rules.max_class_drop + 1e-12 and credible),
            }
        )
    return rows, method


METHOD_WORDS = {
    "tarone": "Tarone's correction for discrete tests over all classes and channels",
    "holm": "Holm's correction over all classes and channels",
}


def _group_rule(kind: str, rows: list[dict[str, Any]], rules: EvaluateSettings) -> Rule:
    failing = [f"{row[kind]} {row['champion']:.3f} -> {row['challenger']:.3f}" for row in rows if not row["passed"]]
    checked = sum(row["checked"] for row in rows)
    margin = f"{rules.max_class_drop:.3f}"
    if rules.group_test in METHOD_WORDS:
        detail = (
            f"no {kind} lost more than {margin} F1 with a drop credible at {rules.confidence:.0%} after "
            f"{METHOD_WORDS[rules.group_test]} ({checked} checked, {len(rows) - checked} too small to tell)"
        )
        if failing:
            detail = f"{kind} F1 dropped by more than {margin}, credibly: " + ", ".join(failing)
    else:
        detail = f"no {kind} with >= {rules.min_support} test rows loses more than {margin} F1 ({checked} checked)"
        if failing:
            detail = f"{kind} F1 dropped by more than {margin}: " + ", ".join(failing)
    return Rule(f"{kind}_non_regression", not failing, detail, {"checked": checked, "failing": failing})


def _confusion_changes(
    truth: Sequence[str], challenger: Sequence[str], champion: Sequence[str], top: int = 10
) -> list[dict[str, Any]]:
    """The (true, predicted) error cells whose counts changed most between champion and challenger."""
    before = Counter((t, p) for t, p in zip(truth, champion, strict=True) if t != p)
    after = Counter((t, p) for t, p in zip(truth, challenger, strict=True) if t != p)
    cells = sorted(set(before) | set(after), key=lambda cell: (-abs(after[cell] - before[cell]), cell))
    return [
        {"true": t, "predicted": p, "champion": before[(t, p)], "challenger": after[(t, p)]}
        for t, p in cells[:top]
        if after[(t, p)] != before[(t, p)]
    ]


def decide(
    truth: Sequence[str],
    channels: Sequence[str],
    taxonomy: Sequence[str],
    challenger: Scored,
    champion: Scored | None,
    rules: EvaluateSettings,
    seed: int = 0,
    coverage: float | None = None,
) -> GateReport:
    """Apply every gate rule; the challenger is promoted only when all of them pass.

    ``coverage`` is the challenger's in-scope coverage on the test rows (its unknown decision), held to
    ``rules.min_in_scope_coverage``. First run (no champion): the label set and the floors (coverage included)
    only. With a champion: its label set must match the taxonomy, then the paired test, the improvement margin, the
    significance rule (when required) and the per-class and per-channel non-regression rules.
    """
    scores = {"accuracy": _accuracy(truth, challenger.predicted), "macro_f1": _macro_f1(truth, challenger.predicted)}
    found = [
        label_set_rule(challenger, taxonomy),
        *_floor_rules(scores, rules),
        coverage_rule(coverage, rules.min_in_scope_coverage),
    ]
    report = GateReport(False, found, len(truth), {k: round(v, 6) for k, v in scores.items()}, None)
    if champion is None:
        found.append(Rule("champion", True, "no champion yet: the challenger only has to meet the minimums"))
    else:
        label_rule = label_set_rule(champion, taxonomy)
        found.append(label_rule)
        if label_rule.passed:
            _compare(report, truth, channels, challenger, champion, rules, seed)
    report.promote = all(rule.passed for rule in found)
    return report


def _compare(
    report: GateReport,
    truth: Sequence[str],
    channels: Sequence[str],
    challenger: Scored,
    champion: Scored,
    rules: EvaluateSettings,
    seed: int,
) -> None:
    predictions = {"challenger": challenger.predicted, "champion": champion.predicted}
    report.champion = {
        "accuracy": round(_accuracy(truth, champion.predicted), 6),
        "macro_f1": round(_macro_f1(truth, champion.predicted), 6),
    }
    report.paired = paired_bootstrap(
        truth,
        challenger.predicted,
        champion.predicted,
        resamples=rules.bootstrap_resamples,
        confidence=rules.confidence,
        seed=seed,
    )
    report.paired["mcnemar"] = mcnemar(truth, challenger.predicted, champion.predicted)
    report.rules.extend(_paired_rules(report.paired, report.paired["mcnemar"], rules))

    groups = _groups(truth, channels, predictions)
    verdicts, report.group_test = _group_verdicts(groups, truth, predictions, rules)
    report.per_class = [row for row in verdicts if "class" in row]
    report.per_channel = [row for row in verdicts if "channel" in row]
    report.rules.extend([_group_rule(kind, getattr(report, f"per_{kind}"), rules) for kind in ("class", "channel")])
    report.confusion_changes = _confusion_changes(truth, challenger.predicted, champion.predicted)


def load_gate(paths: ProjectPaths) -> dict[str, Any]:
    """The gate decision the evaluate stage wrote (``ProjectPaths.gate``; empty when evaluate never ran)."""
    return read_json(paths.gate, default={}) or {}
