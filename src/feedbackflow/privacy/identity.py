"""What an anonymised row depends on, as one hash: a part made under another identity is redone, never reused.

The identity is everything that can change a result: the ``anonymise`` params (less the knobs that only change speed
or the night's verdict, :data:`PERFORMANCE_KNOBS`), the pseudonym key's id (never the key), this package's source
code (recognizers, engine, replacement, leak gate), the spaCy model and its version, the Presidio version, the
language model and the planted values (canaries). A key rotation, a recognizer fix or a new canary list changes it,
so every row is anonymised again.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from feedbackflow.privacy.language import language_model
from feedbackflow.privacy.spacy_model import _MODEL_PACKAGE_SUFFIXES
from feedbackflow.settings import AnonymiseSettings

#: Settings that change how fast the rows go (``n_process``, ``batch_size``), whether the night as a whole passes
#: (``max_held_share``) or where parts are cut (``part_rows``: a cut part has other rows, hence its own identity),
#: never what one row becomes: changing them reuses every part whose rows are unchanged.
PERFORMANCE_KNOBS = frozenset({"n_process", "batch_size", "max_held_share", "part_rows"})

PACKAGE = Path(__file__).resolve().parent


def _digest(payload: Any) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@cache
def code_hash(package: Path = PACKAGE) -> str:
    """SHA-256 over the privacy package's source files (names and bytes, in name order; caches left out)."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def spacy_model_version(name: str) -> str:
    """``<package>==<version>`` of the installed spaCy model (or its folder's ``meta.json``), without loading spaCy."""
    for package in (name, *(name + suffix for suffix in _MODEL_PACKAGE_SUFFIXES)):
        version = _version(package)
        if version:
            return f"{package}=={version}"
    meta = Path(name) / "meta.json"
    if meta.is_file():
        found = json.loads(meta.read_text(encoding="utf-8"))
        return f"{found.get('lang')}_{found.get('name')}=={found.get('version')}"
    return f"{name}==unknown"


def anonymiser_identity(
    config: AnonymiseSettings, key_id: str | None, canaries: dict[str, list[str]], detector: str | None = None
) -> dict:
    """The components of the identity (hashes, versions and the key id: no key, no planted value); ``detector`` is
    the learned detector's identity when ``anonymise.detector`` is on, so a new detector re-anonymises everything."""
    params = {key: value for key, value in config.model_dump(mode="json").items() if key not in PERFORMANCE_KNOBS}
    return {
        "params_sha256": _digest(params),
        "key_id": key_id,
        "privacy_code_sha256": code_hash(),
        "spacy_model": spacy_model_version(config.spacy_model),
        "presidio": f"analyzer=={_version('presidio-analyzer')} anonymizer=={_version('presidio-anonymizer')}",
        "language_model": language_model(),
        "canaries_sha256": _digest(canaries),
        "detector": detector if config.detector else None,
    }


def identity_hash(identity: dict, *more: str) -> str:
    """One hex digest of ``identity`` and ``more`` (e.g. an input batch's content hash)."""
    return _digest([identity, *more])
