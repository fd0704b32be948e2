"""Warm start: continue fine-tuning from the champion's weights instead of the base model, when that is sound.

The champion is a sound start when the shared registry names one, its files are on this worker (the weights' hash
is the registry's) and it predicts exactly the taxonomy's labels in the same order. Otherwise training starts from
``train.base_model`` and a log line says why.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feedbackflow.errors import ConfigError
from feedbackflow.modeling.predict import model_digest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StartPoint:
    """The weights training starts from, and the facts for the train report."""

    model: str
    report: dict[str, Any]


def champion_labels(folder: Path) -> list[str] | None:
    """The champion's labels in class-id order (``label_map.json``), or None when it has no label map."""
    label_map = folder / "label_map.json"
    if not label_map.is_file():
        return None
    ids: dict[str, int] = json.loads(label_map.read_text(encoding="utf-8"))
    return sorted(ids, key=ids.__getitem__)


def start_point(base_model: str, champion: Path, pointer: dict[str, Any], labels: list[str]) -> StartPoint:
    """The champion's folder when it can be warm-started from, else ``base_model``.

    Args:
        base_model: the resolved ``train.base_model``.
        champion: the champion's folder (``models/champion``).
        pointer: the local champion pointer (``registry/champion.json``: version and weights hash, or version null).
        labels: the taxonomy, in class-id order.

    Raises:
        ConfigError: the registry names a champion but this worker holds other weights (a stale pull).
    """
    version = pointer.get("version")
    if version is None:
        return _fallback(base_model, "no champion in the registry yet")
    if not (champion / "model.safetensors").is_file():
        raise ConfigError(f"{champion} does not hold champion {version}: run `feedbackflow registry pull` first")
    digest = model_digest(champion)
    if digest != pointer.get("model_sha256"):
        raise ConfigError(
            f"{champion} holds weights {digest[:12]}... but champion {version} has "
            f"{str(pointer.get('model_sha256'))[:12]}...: run `feedbackflow registry pull` to fetch it"
        )
    if champion_labels(champion) != labels:
        return _fallback(base_model, f"champion {version} predicts another label set than the taxonomy")
    log.info("warm start: fine-tuning champion %s (weights sha256 %s...)", version, digest[:12])
    return StartPoint(str(champion), {"warm_start": True, "champion_version": version, "champion_sha256": digest})


def _fallback(base_model: str, reason: str) -> StartPoint:
    log.warning("warm start asked for, but %s: training from the base model %s", reason, base_model)
    return StartPoint(base_model, {"warm_start": False, "reason": reason})
