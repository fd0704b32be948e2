"""The label taxonomy: a JSON list of label names (or ``{"labels": [...]}``), named by ``validate.taxonomy``."""

from __future__ import annotations

import json
from pathlib import Path

from feedbackflow.errors import ConfigError


def load_taxonomy(path: Path) -> list[str]:
    """Return the label names in file order; the order fixes the model's class ids.

    Raises:
        ConfigError: the file is missing, not JSON, empty or holds duplicates.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"taxonomy file {path} not found; set validate.taxonomy in params.yaml") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"taxonomy file {path} is not valid JSON: {error}") from None
    labels = data.get("labels") if isinstance(data, dict) else data
    if not isinstance(labels, list) or not labels or not all(isinstance(label, str) and label for label in labels):
        raise ConfigError(f"taxonomy file {path} must be a non-empty JSON list of label names")
    if len(set(labels)) != len(labels):
        raise ConfigError(f"taxonomy file {path} lists a label twice")
    return labels
