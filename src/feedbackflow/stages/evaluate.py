"""evaluate: score the challenger and the current champion on the same test split, then decide the gate.

The gate decision (promote or not, with every reason) goes to ``reports/evaluate/gate.json``; the promote step and
the DAG read it. Thresholds come from the ``evaluate`` section of ``params.yaml``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from feedbackflow.config import ProjectPaths
from feedbackflow.io import read_json, write_json
from feedbackflow.modeling.metrics import classification_metrics
from feedbackflow.modeling.model import pick_device
from feedbackflow.modeling.predict import model_digest, predict_labels
from feedbackflow.settings import EvaluateSettings, Settings
from feedbackflow.storage.registry import Registry


@dataclass
class GateDecision:
    """Whether the challenger may replace the champion, and why."""

    promote: bool
    reasons: list[str] = field(default_factory=list)


def decide(challenger: dict[str, Any], champion: dict[str, Any] | None, rules: EvaluateSettings) -> GateDecision:
    """Apply the promotion rules to the challenger's (and the champion's) test metrics."""
    reasons, passed = [], True
    for metric, floor in (("accuracy", rules.min_accuracy), ("macro_f1", rules.min_macro_f1)):
        ok = challenger[metric] >= floor
        passed &= ok
        reasons.append(f"challenger {metric} {challenger[metric]:.4f} {'>=' if ok else '<'} minimum {floor:.4f}")
    if champion is None:
        reasons.append("no champion yet: the challenger only has to meet the minimums")
    else:
        gain = challenger["macro_f1"] - champion["macro_f1"]
        ok = gain >= rules.min_improvement
        passed &= ok
        reasons.append(
            f"macro_f1 change vs champion {gain:+.4f} {'>=' if ok else '<'} required {rules.min_improvement:+.4f}"
        )
    return GateDecision(bool(passed), reasons)


def run(settings: Settings, paths: ProjectPaths) -> dict:
    """Evaluate challenger (and champion) on ``data/split/test.parquet`` and write metrics and the gate file."""
    test = pd.read_parquet(paths.split / "test.parquet")
    texts, truth = test["text"].tolist(), test["label"].tolist()
    labels = sorted(set(truth))
    device = pick_device(settings.train.device)
    batch_size = settings.train.eval_batch_size

    challenger = classification_metrics(truth, predict_labels(paths.challenger, texts, batch_size, device), labels)
    challenger["model_sha256"] = model_digest(paths.challenger)
    registry = Registry(paths)
    current = registry.champion()
    champion = None
    if current is not None and (paths.champion / "model.safetensors").is_file():
        champion = classification_metrics(truth, predict_labels(paths.champion, texts, batch_size, device), labels)
        champion["model_sha256"] = model_digest(paths.champion)
        champion["version"] = current["version"]
    decision = decide(challenger, champion, settings.evaluate)

    reports = paths.stage_reports("evaluate")
    headline = {
        "test_rows": len(test),
        "challenger": {key: round(challenger[key], 6) for key in ("accuracy", "macro_f1")},
        "champion": {key: round(champion[key], 6) for key in ("accuracy", "macro_f1")} if champion else None,
    }
    write_json(reports / "metrics.json", headline)
    write_json(
        reports / "per_class_f1.json",
        {"challenger": challenger["per_class_f1"], "champion": champion["per_class_f1"] if champion else None},
    )
    gate = {
        **asdict(decision),
        "challenger": {k: v for k, v in challenger.items() if k != "per_class_f1"},
        "champion": {k: v for k, v in champion.items() if k != "per_class_f1"} if champion else None,
        "thresholds": settings.evaluate.model_dump(),
    }
    write_json(reports / "gate.json", gate)
    return {"promote": decision.promote, "reasons": decision.reasons, **headline}


def load_gate(paths: ProjectPaths) -> dict[str, Any]:
    """Read the gate file written by :func:`run` (empty when evaluate never ran)."""
    return read_json(paths.stage_reports("evaluate") / "gate.json", default={}) or {}
