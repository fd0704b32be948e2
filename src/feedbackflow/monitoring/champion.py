"""The champion's data identity: which model serves, and which training data (by DVC hash) it learned from.

Drift is measured against what the *champion* learned from, not against whatever ``data/split`` holds today. The
registry keeps the champion pointer (``registry/champion.json``); the run that trained it recorded the DVC hashes of
its outputs (``reports/runs/<experiment>.json``, ``data_versions``). :func:`champion_reference` is the single place
that reads those records, so a new registry layout only changes this function.

The training data itself is read back from the DVC cache by hash (or from the workspace when its hash matches), so
the reference is exactly the champion's training split even after later runs rewrote ``data/split``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from feedbackflow.config import ProjectPaths
from feedbackflow.io import file_digest, read_json

TRAIN_FILE = "train.parquet"
SPLIT_OUT = ProjectPaths.relative().split.as_posix()


class ReferenceUnavailableError(FileNotFoundError):
    """The champion's training data cannot be found by its hash (not in the workspace, not in the DVC cache)."""


@dataclass(frozen=True)
class ChampionReference:
    """What drift compares against: the champion model and the DVC hash of its training data."""

    version: str
    model_sha256: str
    model_dir: Path
    data_md5: str
    """DVC hash of the training data: a ``.dir`` hash of ``data/split`` or the md5 of ``train.parquet`` itself."""
    run_id: str | None = None

    @property
    def cache_key(self) -> str:
        """Identifies the reference side (model and data) for caches of precomputed sketches."""
        return f"{self.model_sha256[:16]}-{self.data_md5.removesuffix('.dir')[:16]}"


def champion_reference(paths: ProjectPaths) -> ChampionReference | None:
    """The serving champion and the hash of its training data, or None before the first promotion.

    Reads ``registry/champion.json`` (``version``, ``model_sha256``, ``run_id`` and, when the registry records it,
    ``train_data_md5``) and, failing a recorded data hash, the run record of the run that promoted it
    (``reports/runs/run-<run id>.json``: ``data_versions["data/split"]``).

    Raises:
        ReferenceUnavailableError: a champion exists but no record names its training data.
    """
    record: dict[str, Any] | None = read_json(paths.registry / "champion.json")
    if not record or record.get("version") is None:  # the registry's pointer says "no champion yet"
        return None
    data_md5 = record.get("train_data_md5")
    run_id = record.get("run_id")
    if not data_md5 and run_id:
        run = read_json(paths.run_record(run_id), {}) or {}
        data_md5 = (run.get("data_versions") or {}).get(SPLIT_OUT)
    if not data_md5:
        raise ReferenceUnavailableError(
            f"champion {record.get('version')} (run {run_id}) has no recorded training-data hash: neither "
            f"registry/champion.json nor reports/runs/ names it; retrain and promote to record one"
        )
    return ChampionReference(
        version=str(record.get("version")),
        model_sha256=str(record.get("model_sha256", "")),
        model_dir=paths.champion,
        data_md5=str(data_md5),
        run_id=run_id,
    )


def _cache_file(root: Path, md5: str) -> Path:
    return root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


def training_file(paths: ProjectPaths, reference: ChampionReference) -> Path:
    """The file holding the champion's training rows: the workspace copy when its hash matches, else DVC's cache.

    Raises:
        ReferenceUnavailableError: the data is in neither place (``dvc pull`` the champion's run first).
    """
    md5 = reference.data_md5
    if md5.endswith(".dir"):
        manifest = _cache_file(paths.root, md5)
        try:
            entries = json.loads(manifest.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ReferenceUnavailableError(
                f"champion {reference.version}: {SPLIT_OUT} ({md5}) is not in the DVC cache; "
                f"run `dvc pull` for its run ({reference.run_id}) or `dvc fetch` the experiment"
            ) from None
        md5 = next((entry["md5"] for entry in entries if entry.get("relpath") == TRAIN_FILE), "")
        if not md5:
            raise ReferenceUnavailableError(f"champion {reference.version}: {SPLIT_OUT} ({md5}) has no {TRAIN_FILE}")
    workspace = paths.split / TRAIN_FILE
    if workspace.is_file() and file_digest(workspace, "md5") == md5:
        return workspace
    cached = _cache_file(paths.root, md5)
    if cached.is_file():
        return cached
    raise ReferenceUnavailableError(
        f"champion {reference.version}: {SPLIT_OUT}/{TRAIN_FILE} ({md5}) is neither in the workspace nor in the DVC "
        f"cache; run `dvc pull` for its run ({reference.run_id})"
    )


def reference_rows(paths: ProjectPaths, reference: ChampionReference, exclude_batches: set[str]) -> pd.DataFrame:
    """The champion's training rows, without those of ``exclude_batches`` (the batch being checked)."""
    frame = pd.read_parquet(training_file(paths, reference))
    if "batch_id" in frame and exclude_batches:
        frame = frame[~frame["batch_id"].astype(str).isin(exclude_batches)]
    return frame.reset_index(drop=True)
