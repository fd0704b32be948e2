"""evaluate: score the challenger and the shared registry's champion on the same test rows, then decide the gate.

The champion is the one ``registry/champion.json`` names (refreshed from the shared registry in the DVC remote
before this stage runs: the Airflow task does it, by hand ``feedbackflow registry pull``); its files come from
``models/champion``, checked against the registry's weights hash. The gate (:mod:`feedbackflow.modeling.gate`)
writes ``reports/evaluate/gate.json`` and the gate report ``gate.md`` / ``gate.html``. Thresholds, confidence and
resamples come from the ``evaluate`` section of ``params.yaml``.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import ConfigError
from feedbackflow.io import run_id as current_run_id
from feedbackflow.io import write_json
from feedbackflow.modeling.gate import GateReport, Scored, decide
from feedbackflow.modeling.gate_report import render_html, render_markdown
from feedbackflow.modeling.metrics import classification_metrics
from feedbackflow.modeling.model import pick_device
from feedbackflow.modeling.oos import UNKNOWN, selective_metrics
from feedbackflow.modeling.predict import (
    load_calibration,
    model_digest,
    model_labels,
    predict_decisions,
    predict_logits,
)
from feedbackflow.settings import Settings
from feedbackflow.storage import partitions
from feedbackflow.storage.registry import Registry, read_pointer

GATE_FILES = ("gate.json", "gate.md", "gate.html")
# the flat out-of-scope figures that go to the DVC metrics file beside accuracy and macro-F1
OOS_METRICS = (
    "in_scope_accuracy",
    "in_scope_precision",
    "in_scope_coverage",
    "oos_recall",
    "oos_precision",
    "unknown_share",
    "ece_before",
    "ece_after",
    "newest_batch",
)


def _champion(paths: ProjectPaths) -> dict[str, Any] | None:
    """The champion named by the local pointer, checked against the shared registry and the files on disk."""
    local = read_pointer(paths)
    shared = Registry.open(paths.root).champion()
    if (shared or {}).get("version") != local.get("version"):
        raise ConfigError(
            f"registry/champion.json names {local.get('version') or 'no champion'} but the shared registry's "
            f"champion is {(shared or {}).get('version') or 'none'}: run `feedbackflow registry pull` first"
        )
    if shared is None:
        return None
    weights = paths.champion / "model.safetensors"
    if not weights.is_file() or model_digest(paths.champion) != shared["model_sha256"]:
        raise ConfigError(
            f"{paths.champion} does not hold champion {shared['version']} (weights sha256 "
            f"{shared['model_sha256'][:12]}...): run `feedbackflow registry pull` to fetch it from the DVC remote"
        )
    return shared


def run(settings: Settings, paths: ProjectPaths) -> dict:
    """Evaluate challenger (and champion) on ``data/split/test.parquet``; write metrics, gate file and report.

    The gate compares the models' intents on the in-scope test rows (closed-set argmax, comparable with a champion
    trained before calibration existed). Out-of-scope rows (label ``oos.label``) and the ``unknown`` decision are
    measured beside it: in-scope precision and coverage, OOS recall and precision, calibration error, the
    coverage-accuracy curve and the unknown share of the newest batch.
    """
    test = pd.read_parquet(paths.split / "test.parquet")
    texts, truth = test["text"].tolist(), test["label"].astype(str).tolist()
    channels = test["channel"].astype(str).tolist() if "channel" in test else ["all"] * len(test)
    taxonomy = json.loads((paths.root / settings.validate_.taxonomy).read_text(encoding="utf-8"))
    in_scope_labels = [label for label in taxonomy if label != settings.oos.label]
    inside = [label in set(in_scope_labels) for label in truth]
    device = pick_device(settings.train.device)
    batch_size = settings.train.eval_batch_size

    def pick(values: list[str]) -> list[str]:
        return [value for value, keep in zip(values, inside, strict=True) if keep]

    logits, id2label = predict_logits(paths.challenger, texts, batch_size, device)
    challenger = Scored(pick(_argmax(logits, id2label)), model_labels(paths.challenger))
    selective = {
        "challenger": selective_metrics(
            truth, logits, id2label, load_calibration(paths.challenger), in_scope_labels, settings.oos.calibration_bins
        )
    }
    record = _champion(paths)
    champion = None
    if record is not None:
        labels = model_labels(paths.champion)
        same = set(labels) == set(taxonomy)
        predicted: list[str] = []
        if same:
            champion_logits, champion_ids = predict_logits(paths.champion, texts, batch_size, device)
            predicted = pick(_argmax(champion_logits, champion_ids))
            selective["champion"] = selective_metrics(
                truth,
                champion_logits,
                champion_ids,
                load_calibration(paths.champion),
                in_scope_labels,
                settings.oos.calibration_bins,
            )
        champion = Scored(predicted, labels, "champion")
    in_scope_truth = pick(truth)
    report = decide(
        in_scope_truth,
        pick(channels),
        taxonomy,
        challenger,
        champion,
        settings.evaluate,
        seed=settings.base.seed,
        coverage=selective["challenger"]["in_scope_coverage"],
    )
    selective["challenger"]["newest_batch"] = newest_batch_unknown_share(settings, paths, batch_size, device)

    meta = {
        "run_id": current_run_id(),
        "challenger_sha256": model_digest(paths.challenger),
        "champion_version": record["version"] if record else None,
        "champion_sha256": record["model_sha256"] if record else None,
        "min_support": settings.evaluate.min_support,
        "require_approval": settings.evaluate.require_approval,
    }
    _write_reports(paths, settings, report, meta, in_scope_truth, challenger, champion, selective)
    return {
        "promote": report.promote,
        "reasons": report.reasons,
        "test_rows": len(test),
        "unknown_share": selective["challenger"]["unknown_share"],
        "oos_recall": selective["challenger"]["oos_recall"],
    }


def _argmax(logits: Any, id2label: dict[int, str]) -> list[str]:
    return [id2label[int(index)] for index in logits.argmax(axis=1)] if len(logits) else []


def newest_batch_unknown_share(
    settings: Settings, paths: ProjectPaths, batch_size: int, device: str
) -> dict[str, Any] | None:
    """The challenger's ``unknown`` share on the newest ingested batch (sampled like the monitor's current rows).

    Returns None when there is no published anonymised feedback. A file without ingest sequence numbers counts as one
    batch.
    """
    if partitions.read_index(paths.anonymised) is None:
        return None
    from feedbackflow.monitoring.drift import latest_batch, sample_rows

    feedback = partitions.read_frame(paths.anonymised)
    batch = latest_batch(feedback) if "sequence" in feedback else feedback
    sample = sample_rows(batch, settings.monitor.max_current_rows, settings.base.seed)
    decided = predict_decisions(paths.challenger, sample["text"].fillna("").astype(str).tolist(), batch_size, device)
    unknown = sum(label == UNKNOWN for label in decided)
    share = unknown / len(sample) if len(sample) else None
    return {
        "sequence": int(batch["sequence"].max()) if "sequence" in batch and len(batch) else None,
        "rows": len(batch),
        "rows_scored": len(sample),
        "unknown_share": round(share, 6) if share is not None else None,
        # the review queue's inflow if this model served: its unknown rows of a night like the newest one
        "review_load": round(share * len(batch)) if share is not None else None,
        "review_budget": settings.labelling.budget,
    }


def _write_reports(
    paths: ProjectPaths,
    settings: Settings,
    report: GateReport,
    meta: dict[str, Any],
    truth: list[str],
    challenger: Scored,
    champion: Scored | None,
    selective: dict[str, dict[str, Any]],
) -> None:
    reports = paths.stage_reports("evaluate")
    labels = sorted(set(truth))
    scored = {"challenger": classification_metrics(truth, challenger.predicted, labels)}
    if champion is not None and champion.predicted:
        scored["champion"] = classification_metrics(truth, champion.predicted, labels)
    write_json(
        reports / "metrics.json",
        {
            "test_rows": len(truth) + selective["challenger"]["oos_rows"],
            **{
                name: {
                    **{k: round(m[k], 6) for k in ("accuracy", "macro_f1")},
                    **{k: v for k, v in selective[name].items() if k in OOS_METRICS},
                }
                for name, m in scored.items()
            },
        },
    )
    write_json(reports / "per_class_f1.json", {name: m["per_class_f1"] for name, m in scored.items()})
    gate = report.to_dict()
    gate["challenger"].update({"model_sha256": meta["challenger_sha256"], "labels": sorted(challenger.labels)})
    if meta["champion_version"]:
        gate["champion"] = {
            **(gate["champion"] or {}),
            "version": meta["champion_version"],
            "model_sha256": meta["champion_sha256"],
        }
    gate["out_of_scope"] = {"label": settings.oos.label, **selective}
    gate.update({"run_id": meta["run_id"], "thresholds": settings.evaluate.model_dump()})
    write_json(reports / "gate.json", gate)
    (reports / "gate.md").write_text(render_markdown(gate, meta), encoding="utf-8")
    (reports / "gate.html").write_text(render_html(gate, meta), encoding="utf-8")
