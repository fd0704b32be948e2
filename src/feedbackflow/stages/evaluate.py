"""evaluate: score the challenger and the shared registry's champion on the same test rows, then decide the gate.

The champion is the one ``registry/champion.json`` names (refreshed from the shared registry in the DVC remote
before this stage runs: the Airflow task does it, by hand ``feedbackflow registry pull``); its files come from
``models/champion``, checked against the registry's weights hash. The gate (:mod:`feedbackflow.modeling.gate`)
writes ``reports/evaluate/gate.json`` and the gate report ``gate.md`` / ``gate.html``. Thresholds, confidence and
resamples come from the ``evaluate`` section of ``params.yaml``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import ConfigError
from feedbackflow.io import read_json, write_json
from feedbackflow.io import run_id as current_run_id
from feedbackflow.modeling.gate import GateReport, Scored, decide
from feedbackflow.modeling.gate_report import render_html, render_markdown
from feedbackflow.modeling.metrics import classification_metrics
from feedbackflow.modeling.model import pick_device
from feedbackflow.modeling.predict import model_digest, model_labels, predict_labels
from feedbackflow.settings import Settings
from feedbackflow.storage.registry import Registry, read_pointer

GATE_FILES = ("gate.json", "gate.md", "gate.html")


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
    """Evaluate challenger (and champion) on ``data/split/test.parquet``; write metrics, gate file and report."""
    test = pd.read_parquet(paths.split / "test.parquet")
    texts, truth = test["text"].tolist(), test["label"].astype(str).tolist()
    channels = test["channel"].astype(str).tolist() if "channel" in test else ["all"] * len(test)
    taxonomy = json.loads((paths.root / settings.validate_.taxonomy).read_text(encoding="utf-8"))
    device = pick_device(settings.train.device)
    batch_size = settings.train.eval_batch_size

    challenger = Scored(predict_labels(paths.challenger, texts, batch_size, device), model_labels(paths.challenger))
    record = _champion(paths)
    champion = None
    if record is not None:
        labels = model_labels(paths.champion)
        same = set(labels) == set(taxonomy)
        champion = Scored(predict_labels(paths.champion, texts, batch_size, device) if same else [], labels, "champion")
    report = decide(truth, channels, taxonomy, challenger, champion, settings.evaluate, seed=settings.base.seed)

    meta = {
        "run_id": current_run_id(),
        "challenger_sha256": model_digest(paths.challenger),
        "champion_version": record["version"] if record else None,
        "champion_sha256": record["model_sha256"] if record else None,
        "min_support": settings.evaluate.min_support,
        "require_approval": settings.evaluate.require_approval,
    }
    _write_reports(paths, settings, report, meta, truth, challenger, champion)
    return {"promote": report.promote, "reasons": report.reasons, "test_rows": len(test)}


def _write_reports(
    paths: ProjectPaths,
    settings: Settings,
    report: GateReport,
    meta: dict[str, Any],
    truth: list[str],
    challenger: Scored,
    champion: Scored | None,
) -> None:
    reports = paths.stage_reports("evaluate")
    labels = sorted(set(truth))
    scored = {"challenger": classification_metrics(truth, challenger.predicted, labels)}
    if champion is not None and champion.predicted:
        scored["champion"] = classification_metrics(truth, champion.predicted, labels)
    write_json(
        reports / "metrics.json",
        {
            "test_rows": len(truth),
            **{name: {k: round(m[k], 6) for k in ("accuracy", "macro_f1")} for name, m in scored.items()},
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
    gate.update({"run_id": meta["run_id"], "thresholds": settings.evaluate.model_dump()})
    write_json(reports / "gate.json", gate)
    (reports / "gate.md").write_text(render_markdown(gate, meta), encoding="utf-8")
    (reports / "gate.html").write_text(render_html(gate, meta), encoding="utf-8")


def load_gate(paths: ProjectPaths) -> dict[str, Any]:
    """Read the gate file written by :func:`run` (empty when evaluate never ran)."""
    return read_json(paths.stage_reports("evaluate") / "gate.json", default={}) or {}


def gate_report(paths: ProjectPaths, suffix: str = ".md") -> Path:
    """Where :func:`run` wrote the gate report (Markdown or HTML)."""
    return paths.stage_reports("evaluate") / f"gate{suffix}"
