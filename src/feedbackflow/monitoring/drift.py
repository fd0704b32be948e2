"""Data drift between the training data (reference) and the newest feedback batch (current), using Evidently.

Compared columns:

* ``label`` and ``channel`` (categorical). Unlabelled rows (empty label) are left out of the label comparison, so the
  label test compares the intent mix of labelled rows; the unlabelled share is reported separately.
* ``text_chars`` and ``text_words``: message length in characters and in words (numerical, derived here).
* ``text``: Evidently's absolute text content drift: a TF-IDF + linear domain classifier is trained to tell reference
  from current messages, and its ROC AUC on held-out rows is the score (drift when above 0.55). It needs only
  scikit-learn (nothing is downloaded) and takes about a second for 5000 vs 1000 rows. The method is pinned because
  Evidently's automatic choice for references of at most 1000 rows bootstraps 1000 random-classifier AUCs per
  evaluation, and the preset evaluates each column three times: about 20-50 s on two cores.

Categorical columns use a two-sample chi-square test of homogeneity registered with Evidently below instead of
Evidently's defaults: with ~77 intents and ~1000 current rows, the default Jensen-Shannon distance (threshold 0.1)
exceeds its threshold on most samples drawn from the *same* distribution, and Evidently's ``chisquare`` treats the
reference counts as exact and is also over-sensitive. The homogeneity test keeps the false-alarm rate at its
threshold (p < 0.05). Numerical columns keep Evidently's automatic choice (normed Wasserstein distance above 1000
reference rows, Kolmogorov-Smirnov below).

Evidently is imported inside the functions so that importing this module stays cheap.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from evidently import Report
    from evidently.core.report import Snapshot

CATEGORICAL_COLUMNS = ("label", "channel")
NUMERICAL_COLUMNS = ("text_chars", "text_words")
TEXT_COLUMN = "text"
COLUMN_KINDS = {
    **{name: "categorical" for name in CATEGORICAL_COLUMNS},
    **{name: "numerical" for name in NUMERICAL_COLUMNS},
    TEXT_COLUMN: "text",
}

CHI2_METHOD = "feedbackflow_chi2_homogeneity"
"""Name under which the categorical test is registered with Evidently."""
CHI2_THRESHOLD = 0.05
TEXT_METHOD = "abs_text_content_drift"
"""Evidently's domain-classifier text drift with a fixed ROC AUC threshold (default 0.55)."""

MIN_TEXT_ROWS = 50
"""Fewest rows per side for the text domain classifier: it trains on one half and scores the other, and a tiny
half may hold a single class, where ROC AUC is undefined."""


@dataclass
class DriftReport:
    """An Evidently snapshot with what went into it."""

    snapshot: Snapshot
    drift_share: float
    columns: list[str]
    skipped_columns: dict[str, str] = field(default_factory=dict)
    reference_rows: int = 0
    current_rows: int = 0


def feature_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Project a feedback frame onto the compared columns, deriving the text lengths.

    Args:
        frame: Rows with at least ``text``, ``label`` and ``channel``.

    Returns:
        A new frame with ``label``, ``channel``, ``text``, ``text_chars`` and ``text_words``; empty labels are None
        so that Evidently drops them from the label comparison instead of counting an empty-string intent.
    """
    text = frame["text"].fillna("").astype(str)
    label = frame["label"].astype(object).where(frame["label"].notna(), None)
    label = label.map(lambda value: None if value is None or str(value) == "" else str(value))
    return pd.DataFrame(
        {
            "label": label.astype(object),
            "channel": frame["channel"].astype(object).where(frame["channel"].notna(), None),
            TEXT_COLUMN: text,
            "text_chars": text.str.len().astype("int64"),
            "text_words": text.str.split().str.len().fillna(0).astype("int64"),
        },
        index=frame.index,
    ).reset_index(drop=True)


def sample_reference(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """Return at most ``max_rows`` rows of ``frame``, drawn deterministically from ``seed``.

    Sampling bounds the run time of the report and the size of the HTML whatever the size of the training set.
    """
    if len(frame) <= max_rows:
        return frame.reset_index(drop=True)
    return frame.sample(n=max_rows, random_state=seed).sort_index().reset_index(drop=True)


def latest_batch(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the rows of the newest ingested batch (those with the highest ``sequence``)."""
    if frame.empty:
        return frame
    return frame[frame["sequence"] == frame["sequence"].max()].reset_index(drop=True)


def _chi2_homogeneity(reference: pd.Series, current: pd.Series, feature_type: Any, threshold: float) -> tuple:
    """Two-sample chi-square test of homogeneity; returns ``(p_value, drifted)``.

    Unlike a goodness-of-fit test against the reference shares, this accounts for the sampling noise of both sides,
    and a category seen on one side only is simply another cell instead of a division by zero.
    """
    from scipy.stats import chi2_contingency

    keys = sorted(set(reference.dropna().unique()) | set(current.dropna().unique()), key=str)
    if len(keys) < 2:
        return 1.0, False
    ref_counts = reference.value_counts()
    cur_counts = current.value_counts()
    table = [[int(ref_counts.get(key, 0)) for key in keys], [int(cur_counts.get(key, 0)) for key in keys]]
    p_value = float(chi2_contingency(table).pvalue)
    return p_value, p_value < threshold


@functools.cache
def register_methods() -> str:
    """Register the categorical drift test with Evidently (once per process) and return its method name."""
    from evidently.legacy.calculations.stattests import StatTest, register_stattest
    from evidently.legacy.core import ColumnType

    stat_test = StatTest(
        name=CHI2_METHOD,
        display_name="chi-square homogeneity p_value",
        allowed_feature_types=[ColumnType.Categorical],
        default_threshold=CHI2_THRESHOLD,
    )
    register_stattest(stat_test, default_impl=_chi2_homogeneity)
    return CHI2_METHOD


def usable_columns(reference: pd.DataFrame, current: pd.DataFrame, include_text: bool = True) -> tuple[list, dict]:
    """Choose the columns that can be compared and say why any other is left out.

    Returns:
        The compared column names, and a mapping of skipped column to reason.
    """
    columns, skipped = [], {}
    for name in CATEGORICAL_COLUMNS:
        if reference[name].notna().any() and current[name].notna().any():
            columns.append(name)
        else:
            side = "reference" if not reference[name].notna().any() else "current"
            skipped[name] = f"no non-empty values in the {side} rows"
    columns.extend(NUMERICAL_COLUMNS)
    if not include_text:
        skipped[TEXT_COLUMN] = "text drift disabled"
    elif min(len(reference), len(current)) < MIN_TEXT_ROWS:
        skipped[TEXT_COLUMN] = f"fewer than {MIN_TEXT_ROWS} rows on one side; the domain classifier needs more"
    else:
        columns.append(TEXT_COLUMN)
    return columns, skipped


def build_report(columns: list[str], drift_share: float) -> Report:
    """The Evidently report: the data drift preset over ``columns``, with per-column pass/fail tests.

    Args:
        columns: Compared column names (see :func:`usable_columns`).
        drift_share: Share of drifted columns at or above which the dataset counts as drifted.
    """
    from evidently import Report
    from evidently.presets import DataDriftPreset

    method = register_methods()
    per_column_method = {name: method for name in CATEGORICAL_COLUMNS if name in columns}
    per_column_threshold = {name: CHI2_THRESHOLD for name in per_column_method}
    if TEXT_COLUMN in columns:
        per_column_method[TEXT_COLUMN] = TEXT_METHOD
    preset = DataDriftPreset(
        columns=columns,
        drift_share=drift_share,
        per_column_method=per_column_method,
        per_column_threshold=per_column_threshold or None,
    )
    # Tests give each column an explicit drifted / not drifted status, which the summary reads.
    return Report([preset], include_tests=True)


def compare(
    reference: pd.DataFrame, current: pd.DataFrame, drift_share: float, include_text: bool = True
) -> DriftReport:
    """Run the drift report of ``current`` against ``reference``.

    Args:
        reference: Feedback rows the model was trained on (raw columns; features are derived here).
        current: Feedback rows of the batch to check.
        drift_share: Share of drifted columns that flags dataset drift.
        include_text: Also compare the message texts with Evidently's domain classifier.

    Raises:
        ValueError: ``reference`` or ``current`` has no rows.
    """
    from evidently import DataDefinition, Dataset
    from sklearn.exceptions import ConvergenceWarning

    if reference.empty or current.empty:
        raise ValueError(f"drift needs rows on both sides (reference {len(reference)}, current {len(current)})")
    ref_features, cur_features = feature_frame(reference), feature_frame(current)
    columns, skipped = usable_columns(ref_features, cur_features, include_text)
    definition = DataDefinition(
        categorical_columns=[name for name in columns if COLUMN_KINDS[name] == "categorical"],
        numerical_columns=[name for name in columns if COLUMN_KINDS[name] == "numerical"],
        text_columns=[name for name in columns if COLUMN_KINDS[name] == "text"],
    )
    with warnings.catch_warnings():
        # Evidently's text domain classifier stops after 50 SGD iterations by design; the warning is log noise.
        warnings.simplefilter("ignore", ConvergenceWarning)
        snapshot = build_report(columns, drift_share).run(
            Dataset.from_pandas(cur_features[columns], data_definition=definition),
            Dataset.from_pandas(ref_features[columns], data_definition=definition),
        )
    return DriftReport(
        snapshot=snapshot,
        drift_share=drift_share,
        columns=columns,
        skipped_columns=skipped,
        reference_rows=len(reference),
        current_rows=len(current),
    )


def summarise(report: DriftReport) -> dict:
    """Extract the decision-relevant numbers from the Evidently snapshot (no row values).

    Returns:
        ``dataset_drift``, ``drift_share`` (share of drifted columns), ``drift_share_threshold``,
        ``drifted_columns``, ``columns`` (per column: kind, method, score, threshold, drifted), ``skipped_columns``,
        ``reference_rows`` and ``current_rows``.
    """
    result = report.snapshot.dict()
    status = {}
    for test in result["tests"]:
        params = test.get("metric_config", {}).get("params", {})
        if params.get("type", "").endswith(":ValueDrift"):
            status[params["column"]] = test["status"]
    columns, share = {}, None
    for metric in result["metrics"]:
        config = metric["config"]
        if config["type"].endswith(":DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif config["type"].endswith(":ValueDrift"):
            name = config["column"]
            columns[name] = {
                "kind": COLUMN_KINDS.get(name, "unknown"),
                "method": config.get("method"),
                "score": float(metric["value"]),
                "threshold": config.get("threshold"),
                "drifted": status.get(name) == "FAIL",
            }
    drifted = [name for name in report.columns if columns.get(name, {}).get("drifted")]
    if share is None:
        share = len(drifted) / len(report.columns) if report.columns else 0.0
    return {
        # Same rule as Evidently's dataset drift: at least drift_share of the compared columns drifted.
        "dataset_drift": bool(report.columns) and share >= report.drift_share,
        "drift_share": share,
        "drift_share_threshold": report.drift_share,
        "drifted_columns": drifted,
        "columns": columns,
        "skipped_columns": report.skipped_columns,
        "reference_rows": report.reference_rows,
        "current_rows": report.current_rows,
    }
