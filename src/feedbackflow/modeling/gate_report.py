"""The gate report as Markdown (approval body, registry, CLI) and HTML (Airflow plugin), from one data structure.

Labels, channels, counts and scores only: a gate report never carries message text. The HTML page is rendered from
a Jinja template with autoescaping, so a label such as ``<b>`` shows as text.
"""

from __future__ import annotations

from typing import Any

HTML_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Gate report: {{ title }}</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1.5em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}.pass{color:#176117}.fail{color:#a3141b}</style>
</head><body>
<h1>Gate report: {{ title }}</h1>
<p>Decision: <strong class="{{ 'pass' if report.promote else 'fail' }}">{{ decision }}</strong>
 &middot; run {{ meta.run_id }} &middot; {{ report.test_rows }} test rows</p>
<table><tr><th>model</th><th>version</th><th>weights sha256</th></tr>
{% for row in models %}<tr><td>{{ row.name }}</td><td>{{ row.version }}</td><td><code>{{ row.sha }}</code></td></tr>
{% endfor %}</table>
<h2>Rules</h2>
<table><tr><th>rule</th><th>what it asks</th><th>result</th><th>figures</th></tr>
{% for rule in report.rules %}<tr><td>{{ rule.name }}</td><td>{{ meaning(rule.name) }}</td>
<td class="{{ 'pass' if rule.passed else 'fail' }}">{{ 'pass' if rule.passed else 'FAIL' }}</td>
<td>{{ rule.detail }}</td></tr>
{% endfor %}</table>
<h2>Comparison</h2>
<table><tr><th>metric</th><th>champion</th><th>challenger</th><th>change</th></tr>
{% for row in comparison %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</table>
{% if oos_rows %}<h2>Out of scope and calibration (label "{{ oos_label }}")</h2>
<table><tr><th>metric</th><th>champion</th><th>challenger</th></tr>
{% for row in oos_rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</table>
<h3>Coverage-accuracy (selective prediction, challenger)</h3>
<table><tr><th>coverage</th><th>accuracy</th></tr>
{% for row in coverage %}<tr><td>{{ row.coverage }}</td><td>{{ row.accuracy }}</td></tr>
{% endfor %}</table>{% endif %}
{% for section, key, rows in groups %}{% if rows %}<h2>{{ section }}</h2>
<p>{{ group_note }}</p>
<table><tr><th>{{ key }}</th><th>test rows</th><th>champion F1</th><th>challenger F1</th><th>change</th>
<th>p (adjusted)</th><th>checked</th></tr>
{% for row in rows %}<tr><td>{{ row[key] }}</td><td>{{ row.support }}</td><td>{{ row.champion }}</td>
<td>{{ row.challenger }}</td><td class="{{ 'pass' if row.passed else 'fail' }}">{{ '%+.4f' % row.change }}</td>
<td>{{ p_cell(row) }}</td><td>{{ 'yes' if row.checked else 'no (too small)' }}</td></tr>
{% endfor %}</table>{% endif %}{% endfor %}
{% if report.confusion_changes %}<h2>Confusion difference (largest changes in error cells)</h2>
<table><tr><th>true</th><th>predicted</th><th>champion</th><th>challenger</th><th>change</th></tr>
{% for cell in report.confusion_changes %}<tr><td>{{ cell.true }}</td><td>{{ cell.predicted }}</td>
<td>{{ cell.champion }}</td><td>{{ cell.challenger }}</td><td>{{ '%+d' % (cell.challenger - cell.champion) }}</td></tr>
{% endfor %}</table>{% endif %}
</body></html>
"""


def _context(report: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    champion = report.get("champion")
    challenger = report["challenger"]
    comparison = []
    for metric in ("accuracy", "macro_f1"):
        before = champion[metric] if champion else None
        change = f"{challenger[metric] - before:+.4f}" if before is not None else ""
        comparison.append([metric, _fmt(before), _fmt(challenger[metric]), change])
    paired = report.get("paired")
    if paired:
        level = f"{paired['confidence']:.0%}"
        comparison.append(
            [
                f"macro-F1 difference, {level} paired bootstrap CI ({paired['resamples']} resamples)",
                "",
                "",
                f"{paired['macro_f1_difference']:+.4f} [{paired['ci_low']:+.4f}, {paired['ci_high']:+.4f}]",
            ]
        )
        test = paired["mcnemar"]
        comparison.append(
            [
                "McNemar exact test (rows only one model gets right)",
                str(test["only_champion_right"]),
                str(test["only_challenger_right"]),
                f"p = {test['p_value']:.4f}",
            ]
        )
    decision = "PROMOTE" if report["promote"] else "KEEP CHAMPION"
    if report["promote"] and meta.get("require_approval"):
        decision = "PASSED (awaiting approval)"
    return {
        "report": report,
        "meta": meta,
        "decision": decision,
        "title": f"challenger vs {('champion ' + str(meta.get('champion_version'))) if champion else 'no champion'}",
        "models": [
            {"name": "challenger", "version": "-", "sha": meta.get("challenger_sha256", "")},
            {
                "name": "champion",
                "version": meta.get("champion_version") or "-",
                "sha": meta.get("champion_sha256") or "-",
            },
        ],
        "comparison": comparison,
        "groups": [
            ("Per-class F1", "class", report.get("per_class") or []),
            ("Per-channel macro-F1", "channel", report.get("per_channel") or []),
        ],
        "group_note": _group_note(report, meta),
        "meaning": lambda name: RULE_MEANINGS.get(name, ""),
        "p_cell": _p_cell,
        **_oos_context(report.get("out_of_scope")),
    }


RULE_MEANINGS = {
    "challenger_labels": "The new model knows exactly the intents of the taxonomy, so it can be scored at all.",
    "champion_labels": "The current model knows the same intents, so the two can be compared row by row.",
    "min_accuracy": "The new model answers at least this share of the test messages right.",
    "min_macro_f1": "The new model is good enough on average over intents, small intents counting as much as big ones.",
    "min_in_scope_coverage": "The new model gives an intent (not unknown) to at least this share of in-scope "
    "messages, so the unknown ones it sends to review stay within what reviewers can label.",
    "champion": "There is no current model yet, so the new one only has to meet the minimums.",
    "not_significantly_worse": "On the same test messages, the new model is not clearly worse than the current one.",
    "min_improvement": "The new model's average score over intents is at least the required margin above the current.",
    "significant_gain": "The gain is larger than chance: the whole confidence interval of the difference is above 0.",
    "class_non_regression": "No intent got worse by more than the margin in a way too large to be chance.",
    "channel_non_regression": "No channel (app, e-mail, ...) got worse by more than the margin beyond chance.",
}


def _group_note(report: dict[str, Any], meta: dict[str, Any]) -> str:
    """One sentence on which groups were checked and why the others were only reported."""
    test = report.get("group_test") or {}
    if test.get("method") == "tarone":
        return (
            f"Checked: groups where the two models disagree on at least {test['min_disagreements']} test rows. Of "
            f"{test['groups']} classes and channels, {test['testable']} had enough disagreements to ever show a "
            f"credible drop, and the test is corrected for those {test['testable']} (Tarone); the others are too "
            f"small to tell this night, even if the new model got every disputed row wrong."
        )
    if test.get("method") == "holm":
        return (
            f"Checked: groups with at least {test['min_rows']} test rows. With {test['groups']} classes and channels "
            f"tested together (Holm's correction), fewer rows could not show a credible drop even if the new model "
            f"got every one of them wrong; fewer than {test['min_rows']} test rows is too small to tell."
        )
    return f"Checked: groups with at least {meta.get('min_support')} test rows (threshold rule, no statistics)."


def _p_cell(row: dict[str, Any]) -> str:
    return "-" if row.get("p_adjusted") is None else f"{row['p_adjusted']:.3g}"


OOS_ROWS = (
    ("in_scope_accuracy", "in-scope accuracy (every message given an intent)"),
    ("in_scope_precision", "in-scope precision (accepted predictions right)"),
    ("in_scope_coverage", "in-scope coverage (in-scope messages not unknown)"),
    ("oos_recall", "out-of-scope recall (OOS messages made unknown)"),
    ("oos_precision", "out-of-scope precision (unknown messages truly OOS)"),
    ("unknown_share", "unknown share of the test rows"),
    ("ece_before", "expected calibration error, T = 1"),
    ("ece_after", "expected calibration error, temperature-scaled"),
    ("temperature", "temperature"),
    ("method", "out-of-scope score"),
    ("threshold", "unknown threshold"),
    ("oos_rows", "out-of-scope test rows"),
)


def _oos_context(section: dict[str, Any] | None) -> dict[str, Any]:
    """Rows of the out-of-scope table (champion, challenger) and the challenger's coverage-accuracy curve."""
    if not section:
        return {"oos_rows": [], "coverage": [], "oos_label": ""}
    challenger, champion = section.get("challenger") or {}, section.get("champion") or {}
    rows = [[title, _any(champion.get(key)), _any(challenger.get(key))] for key, title in OOS_ROWS]
    newest = challenger.get("newest_batch") or {}
    title = f"unknown share of the newest batch (sequence {newest.get('sequence')}, {newest.get('rows_scored')} rows)"
    rows.append([title, "-", _any(newest.get("unknown_share"))])
    load = f"expected review load per night (its unknown rows; labelling.budget {newest.get('review_budget')})"
    rows.append([load, "-", _any(newest.get("review_load"))])
    return {"oos_rows": rows, "coverage": challenger.get("coverage_accuracy") or [], "oos_label": section.get("label")}


def _any(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def render_markdown(report: dict[str, Any], meta: dict[str, Any]) -> str:
    """The gate report as Markdown: decision, rules with figures, comparison, per-class/channel, confusion changes."""
    ctx = _context(report, meta)
    lines = [
        f"# Gate report: {ctx['title']}",
        "",
        f"**Decision: {ctx['decision']}** · run `{meta.get('run_id')}` · {report['test_rows']} test rows",
        "",
    ]
    lines += _table(
        ["model", "version", "weights sha256"], [[m["name"], m["version"], m["sha"]] for m in ctx["models"]]
    )
    lines += ["## Rules", ""]
    lines += _table(
        ["rule", "what it asks", "result", "figures"],
        [
            [
                rule["name"],
                RULE_MEANINGS.get(rule["name"], ""),
                "pass" if rule["passed"] else "**FAIL**",
                rule["detail"],
            ]
            for rule in report["rules"]
        ],
    )
    lines += ["## Comparison", "", *_table(["metric", "champion", "challenger", "change"], ctx["comparison"])]
    if ctx["oos_rows"]:
        lines += [f"## Out of scope and calibration (label `{ctx['oos_label']}`)", ""]
        lines += _table(["metric", "champion", "challenger"], ctx["oos_rows"])
        lines += ["### Coverage-accuracy (selective prediction, challenger)", ""]
        lines += _table(["coverage", "accuracy"], [[row["coverage"], row["accuracy"]] for row in ctx["coverage"]])
    for section, key, rows in ctx["groups"]:
        if not rows:
            continue
        lines += [f"## {section}", "", ctx["group_note"], ""]
        lines += _table(
            [key, "test rows", "champion", "challenger", "change", "p (adjusted)", "checked"],
            [
                [
                    row[key],
                    row["support"],
                    f"{row['champion']:.4f}",
                    f"{row['challenger']:.4f}",
                    f"{row['change']:+.4f}" + ("" if row["passed"] else " **FAIL**"),
                    _p_cell(row),
                    "yes" if row["checked"] else "no (too small)",
                ]
                for row in rows
            ],
        )
    if report.get("confusion_changes"):
        lines += ["## Confusion difference (largest changes in error cells)", ""]
        lines += _table(
            ["true", "predicted", "champion", "challenger", "change"],
            [
                [c["true"], c["predicted"], c["champion"], c["challenger"], f"{c['challenger'] - c['champion']:+d}"]
                for c in report["confusion_changes"]
            ],
        )
    return "\n".join(lines)


def render_html(report: dict[str, Any], meta: dict[str, Any]) -> str:
    """The gate report as a standalone HTML page (Jinja template, autoescaped)."""
    from jinja2 import Environment

    environment = Environment(autoescape=True, keep_trailing_newline=True)
    return environment.from_string(HTML_TEMPLATE).render(**_context(report, meta))
