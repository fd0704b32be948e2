"""Drift of a feedback batch (current) against the champion's training data (reference), with Evidently 0.7.

What is compared, and how Evidently's test conditions decide pass or fail:

* **Text descriptors** (numerical): ``text_chars``, ``text_words``, ``oov_share`` (share of words that are not a
  whole-word entry of the embedding model's WordPiece vocabulary) and ``non_letter_share`` (share of non-space
  characters that are not letters). Evidently's normed Wasserstein distance, drift above
  :data:`DESCRIPTOR_THRESHOLD`, whatever the sample size (Evidently's automatic choice switches to a K-S p-value
  at 1000 rows or fewer, and a dashboard line that is a distance one night and a p-value the next reads wrong).
* **Categorical columns**: ``label`` (label drift; unlabelled rows are left out), ``channel`` and ``prediction``
  (prediction drift: the champion's predicted-label distribution). A two-sample chi-square test of homogeneity,
  registered with Evidently below, fails at ``p < monitor.p_value``: with ~77 intents and ~1000 current rows,
  Evidently's default Jensen-Shannon distance exceeds its threshold on most samples drawn from the *same*
  distribution, and its ``chisquare`` treats the reference counts as exact.
* **Embedding drift**: sentence embeddings of the texts (packaged MiniLM), Evidently's ``EmbeddingsDrift`` with its
  domain-classifier method; the test fails when the classifier's ROC AUC exceeds ``monitor.embedding_auc``.
* **Dataset drift**: Evidently's ``DriftedColumnsCount`` test fails when the share of drifted columns reaches
  ``monitor.drift_share``.
* **Model quality on newly labelled feedback**: accuracy and F1 of the champion on the labelled rows of the batch
  (Evidently's classification metrics), tested against ``monitor.min_accuracy``.

The batch *fails* the drift check when the dataset-drift, embedding-drift or prediction-drift test fails; every
test's status is kept in the summary. The raw texts never enter the Evidently report: only derived numbers,
category names and embeddings do, so snapshots and dashboards hold no message text.

Evidently is imported inside the functions so that importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import functools
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    import numpy as np
    from evidently.core.report import Snapshot

CATEGORICAL_COLUMNS = ("label", "channel", "prediction")
DESCRIPTOR_COLUMNS = ("text_chars", "text_words", "oov_share", "non_letter_share")
EMBEDDING = "text_embedding"
COLUMN_KINDS = {
    **{name: "categorical" for name in CATEGORICAL_COLUMNS},
    **{name: "descriptor" for name in DESCRIPTOR_COLUMNS},
}

DESCRIPTOR_METHOD = "wasserstein"
DESCRIPTOR_THRESHOLD = 0.1
"""Normed Wasserstein distance above which a text descriptor drifts (Evidently's default for large samples)."""

CHI2_METHOD = "feedbackflow_chi2_homogeneity"
"""Name under which the categorical test is registered with Evidently."""
GATING_TESTS = ("dataset_drift", "embedding_drift", "prediction_drift")
"""Tests whose failure fails the batch's drift check."""
MIN_EMBEDDING_ROWS = 50
"""Fewest rows per side for the embedding domain classifier (it trains on one half and scores the other)."""

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


@dataclass(frozen=True)
class Thresholds:
    """The test conditions' thresholds (``monitor`` section of ``params.yaml``)."""

    drift_share: float
    p_value: float
    embedding_auc: float
    min_accuracy: float


@dataclass
class DriftReport:
    """An Evidently snapshot with what went into it."""

    snapshot: Snapshot
    thresholds: Thresholds
    columns: list[str]
    embeddings: bool
    skipped_columns: dict[str, str] = field(default_factory=dict)
    reference_rows: int = 0
    current_rows: int = 0
    labelled_current_rows: int = 0


def descriptors(texts: pd.Series, vocabulary: frozenset[str]) -> pd.DataFrame:
    """Numerical text descriptors: length in characters and words, out-of-vocabulary and non-letter shares."""
    texts = texts.fillna("").astype(str)
    words = texts.str.lower().map(_WORD.findall)
    n_words = words.map(len)
    oov = words.map(lambda ws: sum(w not in vocabulary for w in ws))
    non_space = texts.str.count(r"\S")
    letters = texts.str.count(r"[^\W\d_]")
    return pd.DataFrame(
        {
            "text_chars": texts.str.len().astype("int64"),
            "text_words": texts.str.split().str.len().fillna(0).astype("int64"),
            "oov_share": (oov / n_words.where(n_words > 0)).fillna(0.0).astype(float),
            "non_letter_share": (1 - letters / non_space.where(non_space > 0)).fillna(0.0).astype(float),
        },
        index=texts.index,
    )


def _optional(values: pd.Series) -> pd.Series:
    """Empty or missing values as None, so Evidently leaves them out instead of counting an empty category."""
    values = values.astype(object)
    return values.map(lambda v: None if v is None or (isinstance(v, float) and v != v) or str(v) == "" else str(v))


def feature_frame(
    frame: pd.DataFrame, vocabulary: frozenset[str], predictions: list[str] | None, embeddings: np.ndarray | None
) -> pd.DataFrame:
    """Project feedback rows onto the compared columns (no text column: only what is derived from it).

    Args:
        frame: Rows with at least ``text``, ``label`` and ``channel``.
        vocabulary: Whole words of the embedding model's vocabulary (for ``oov_share``).
        predictions: The champion's predicted label per row, or None without a champion.
        embeddings: One sentence embedding per row, or None to leave embedding drift out.
    """
    frame = frame.reset_index(drop=True)
    columns: dict[str, Any] = {"label": _optional(frame["label"]), "channel": _optional(frame["channel"])}
    if predictions is not None:
        columns["prediction"] = pd.Series(predictions, dtype=object)
    out = pd.concat([pd.DataFrame(columns), descriptors(frame["text"], vocabulary)], axis=1)
    if embeddings is not None:
        vectors = pd.DataFrame(embeddings, columns=embedding_columns(embeddings.shape[1]))
        out = pd.concat([out, vectors], axis=1)
    return out


def embedding_columns(dimensions: int) -> list[str]:
    return [f"emb_{i}" for i in range(dimensions)]


def sample_rows(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    """At most ``max_rows`` rows of ``frame``, drawn deterministically from ``seed`` (bounds time and report size)."""
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
        default_threshold=0.05,
    )
    register_stattest(stat_test, default_impl=_chi2_homogeneity)
    return CHI2_METHOD


def usable_columns(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[list[str], dict[str, str]]:
    """The compared columns, and why any other is left out (a side without values)."""
    columns, skipped = [], {}
    for name in CATEGORICAL_COLUMNS:
        if name not in reference or name not in current:
            skipped[name] = "no champion to predict with" if name == "prediction" else "column missing"
        elif not (reference[name].notna().any() and current[name].notna().any()):
            side = "reference" if not reference[name].notna().any() else "current"
            skipped[name] = f"no non-empty values in the {side} rows"
        else:
            columns.append(name)
    columns.extend(DESCRIPTOR_COLUMNS)
    return columns, skipped


def _definition(columns: list[str], dimensions: int, classification: bool) -> Any:
    from evidently import DataDefinition, MulticlassClassification

    return DataDefinition(
        categorical_columns=[name for name in columns if COLUMN_KINDS[name] == "categorical"],
        numerical_columns=[name for name in columns if COLUMN_KINDS[name] == "descriptor"],
        embeddings={EMBEDDING: embedding_columns(dimensions)} if dimensions else None,
        classification=[MulticlassClassification(target="label", prediction_labels="prediction")]
        if classification
        else None,
    )


def _drift_metrics(columns: list[str], embeddings: bool, thresholds: Thresholds) -> list[Any]:
    from evidently.metrics import EmbeddingsDrift, UniqueValueCount
    from evidently.metrics.embeddings import ModelDriftMethod
    from evidently.presets import DataDriftPreset
    from evidently.tests import lte

    method = register_methods()
    categorical = [name for name in columns if COLUMN_KINDS[name] == "categorical"]
    numerical = [name for name in columns if COLUMN_KINDS[name] == "descriptor"]
    items: list[Any] = [
        DataDriftPreset(
            columns=columns,
            drift_share=thresholds.drift_share,
            per_column_method={name: method for name in categorical} | {name: DESCRIPTOR_METHOD for name in numerical},
            per_column_threshold={name: thresholds.p_value for name in categorical}
            | {name: DESCRIPTOR_THRESHOLD for name in numerical},
        )
    ]
    if "prediction" in columns:
        items.append(UniqueValueCount(column="prediction"))
    if embeddings:
        items.append(
            EmbeddingsDrift(
                embeddings_name=EMBEDDING,
                drift_method=ModelDriftMethod(threshold=thresholds.embedding_auc),
                tests=[lte(thresholds.embedding_auc)],
            )
        )
    return items


def _quality_snapshot(reference: pd.DataFrame, current: pd.DataFrame, thresholds: Thresholds) -> Snapshot | None:
    """Accuracy and F1 of the champion on the labelled rows of both sides, or None when either side has none."""
    from evidently import Dataset, Report
    from evidently.metrics import Accuracy, F1Score
    from evidently.tests import gte

    def labelled(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.loc[frame["label"].notna() & frame["prediction"].notna(), ["label", "prediction"]]

    ref, cur = labelled(reference), labelled(current)
    if ref.empty or cur.empty:
        return None
    definition = _definition([], 0, classification=True)
    report = Report([Accuracy(tests=[gte(thresholds.min_accuracy)]), F1Score()], include_tests=True)
    return report.run(
        Dataset.from_pandas(cur.reset_index(drop=True), data_definition=definition),
        Dataset.from_pandas(ref.reset_index(drop=True), data_definition=definition),
    )


def merge_snapshots(base: Snapshot, other: Snapshot) -> Snapshot:
    """Add ``other``'s metrics, tests and widgets to ``base``: one snapshot per run in the workspace."""
    base._metrics.update(other._metrics)
    base._top_level_metrics.extend(other._top_level_metrics)
    base._widgets.extend(other._widgets)
    base._tests_widgets.extend(other._tests_widgets)
    return base


class _PcaProjection:
    """Drop-in for the t-SNE Evidently uses to draw the embedding-drift contour plot: a 2-D PCA projection."""

    def __init__(self, n_components: int = 2, **_: Any) -> None:
        self.n_components = n_components

    def fit_transform(self, data: Any) -> Any:
        from sklearn.decomposition import PCA

        return PCA(n_components=self.n_components, random_state=0).fit_transform(data)


@contextlib.contextmanager
def _fast_embedding_projection() -> Iterator[None]:
    """Draw the embedding plot from a PCA instead of a t-SNE projection while a report runs.

    The drift *score* (domain-classifier ROC AUC) does not depend on the plot. Evidently projects up to 2 x 2500
    embeddings with t-SNE only to draw it, which takes minutes on two cores (measured: 2.5 min for 2000 + 500 rows)
    against well under a second for PCA.
    """
    from evidently.legacy.metrics.data_drift import embeddings_drift

    original = embeddings_drift.TSNE
    embeddings_drift.TSNE = _PcaProjection  # type: ignore[misc,assignment]
    try:
        yield
    finally:
        embeddings_drift.TSNE = original  # type: ignore[misc]


def compare(reference: pd.DataFrame, current: pd.DataFrame, thresholds: Thresholds) -> DriftReport:
    """Run the drift report of ``current`` against ``reference`` (both from :func:`feature_frame`).

    Raises:
        ValueError: ``reference`` or ``current`` has no rows.
    """
    from evidently import Dataset, Report
    from sklearn.exceptions import ConvergenceWarning

    if reference.empty or current.empty:
        raise ValueError(f"drift needs rows on both sides (reference {len(reference)}, current {len(current)})")
    columns, skipped = usable_columns(reference, current)
    dimensions = sum(1 for name in current.columns if name.startswith("emb_"))
    embeddings = dimensions > 0 and min(len(reference), len(current)) >= MIN_EMBEDDING_ROWS
    if dimensions and not embeddings:
        skipped[EMBEDDING] = f"fewer than {MIN_EMBEDDING_ROWS} rows on one side; the domain classifier needs more"
    elif not dimensions:
        skipped[EMBEDDING] = "embeddings not computed"
    definition = _definition(columns, dimensions if embeddings else 0, classification=False)
    keep = columns + (embedding_columns(dimensions) if embeddings else [])
    with warnings.catch_warnings(), _fast_embedding_projection():
        # Evidently's domain classifiers stop after a fixed number of SGD iterations by design: log noise.
        warnings.simplefilter("ignore", ConvergenceWarning)
        snapshot = Report(_drift_metrics(columns, embeddings, thresholds), include_tests=True).run(
            Dataset.from_pandas(current[keep], data_definition=definition),
            Dataset.from_pandas(reference[keep], data_definition=definition),
        )
    quality = _quality_snapshot(reference, current, thresholds) if "prediction" in columns else None
    if quality is not None:
        merge_snapshots(snapshot, quality)
    return DriftReport(
        snapshot=snapshot,
        thresholds=thresholds,
        columns=columns,
        embeddings=embeddings,
        skipped_columns=skipped,
        reference_rows=len(reference),
        current_rows=len(current),
        labelled_current_rows=int(current["label"].notna().sum()),
    )


def _test_name(config_type: str, params: dict[str, Any]) -> str:
    kind = config_type.rsplit(":", 1)[-1]
    if kind == "DriftedColumnsCount":
        return "dataset_drift"
    if kind == "EmbeddingsDrift":
        return "embedding_drift"
    if kind == "ValueDrift":
        column = params.get("column")
        return "prediction_drift" if column == "prediction" else f"column_drift:{column}"
    return kind.lower()


def summarise(report: DriftReport) -> dict[str, Any]:
    """The decision-relevant numbers of the snapshot (no row values).

    Returns:
        ``drift_failed`` (a gating test failed), ``failed_tests``, ``tests`` (name -> PASS/FAIL/...),
        ``dataset_drift``, ``drift_share``, ``drifted_columns``, ``columns`` (per column: kind, method, score,
        threshold, drifted), ``embedding_drift`` (score, threshold), ``prediction_distribution`` (current and
        reference shares), ``quality`` (accuracy, f1 on labelled current rows), ``skipped_columns``, row counts and
        ``thresholds``.
    """
    result = report.snapshot.dict()
    tests: dict[str, str] = {}
    for test in result["tests"]:
        config = test.get("metric_config", {}).get("params", {})
        status = test["status"]
        tests[_test_name(config.get("type", ""), config)] = str(getattr(status, "value", status))
    columns: dict[str, dict[str, Any]] = {}
    share, embedding, quality = None, None, {}
    for metric in result["metrics"]:
        config = metric["config"]
        kind = config["type"].rsplit(":", 1)[-1]
        if kind == "DriftedColumnsCount":
            share = float(metric["value"]["share"])
        elif kind == "ValueDrift":
            name = config["column"]
            columns[name] = {
                "kind": COLUMN_KINDS.get(name, "unknown"),
                "method": config.get("method"),
                "score": float(metric["value"]),
                "threshold": config.get("threshold"),
                "drifted": tests.get("prediction_drift" if name == "prediction" else f"column_drift:{name}") == "FAIL",
            }
        elif kind == "EmbeddingsDrift":
            embedding = {"score": float(metric["value"]), "threshold": report.thresholds.embedding_auc}
        elif kind in {"Accuracy", "F1Score"} and isinstance(metric["value"], int | float):
            quality[kind.lower()] = float(metric["value"])
    drifted = [name for name in report.columns if columns.get(name, {}).get("drifted")]
    failed = sorted(name for name, status in tests.items() if status == "FAIL")
    return {
        "drift_failed": any(name in failed for name in GATING_TESTS),
        "failed_tests": failed,
        "tests": tests,
        "dataset_drift": tests.get("dataset_drift") == "FAIL",
        "drift_share": share if share is not None else 0.0,
        "drifted_columns": drifted,
        "columns": columns,
        "embedding_drift": embedding,
        "quality": quality or None,
        "skipped_columns": report.skipped_columns,
        "reference_rows": report.reference_rows,
        "current_rows": report.current_rows,
        "labelled_current_rows": report.labelled_current_rows,
        "thresholds": {
            "drift_share": report.thresholds.drift_share,
            "p_value": report.thresholds.p_value,
            "embedding_auc": report.thresholds.embedding_auc,
            "min_accuracy": report.thresholds.min_accuracy,
        },
    }


def label_distribution(values: pd.Series) -> dict[str, float]:
    """Share of each label among the non-empty values (for the predicted-label distribution)."""
    values = values.dropna()
    if values.empty:
        return {}
    return {str(k): round(float(v), 6) for k, v in values.value_counts(normalize=True).sort_index().items()}
