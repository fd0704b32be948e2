"""Removing a subject's rows from the workspace's datasets: raw batches, validate's batch parts, validated, quarantine,
held back, anonymised, split.

Rows are found twice: by the subject's identifiers in any text column (raw, validated, quarantine and held-back rows
still hold them), then *by id* everywhere, so the anonymised and split rows, whose text holds pseudonyms or
placeholders only, go too. Raw batches are append-only except for this: a rewritten batch keeps its manifest entry
(its ``sha256`` stays the delivered content's, so the same delivery is still recognised) and gains an erasure event
with the request id, the rows removed and the file's hashes before and after; no personal data.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from feedbackflow.config import ProjectPaths
from feedbackflow.governance.erasure_match import Matcher
from feedbackflow.io import file_digest
from feedbackflow.storage import partitions
from feedbackflow.storage.manifest import read_manifest, write_manifest

ID_COLUMN = "id"


def datasets(paths: ProjectPaths) -> dict[str, Path]:
    """The datasets an erasure rewrites, by name, in pipeline order."""
    return {
        "raw": paths.raw,
        "validate_parts": paths.validate_parts,
        "validated": paths.validated,
        "quarantine": paths.quarantine,
        "held_back": paths.held_back,
        "anonymised": paths.anonymised,
        "split": paths.split,
    }


def read_rows(path: Path) -> pd.DataFrame:
    """A CSV, JSON Lines or Parquet file with every value as read (CSV cells as text)."""
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".jsonl":
        return pd.read_json(path, lines=True, dtype=False)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def write_rows(frame: pd.DataFrame, path: Path) -> None:
    """Replace ``path`` with ``frame`` in the same format, atomically; a read-only file (a raw batch) stays so."""
    mode = path.stat().st_mode & 0o777
    temporary = path.with_name(f".{path.name}.erasure.tmp")
    if path.suffix == ".parquet":
        frame.to_parquet(temporary, index=False)
    elif path.suffix == ".jsonl":
        frame.to_json(temporary, orient="records", lines=True, force_ascii=False)
    else:
        frame.to_csv(temporary, index=False)
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def dataset_files(name: str, folder: Path) -> list[Path]:
    """The data files of one dataset (a raw batch's format is its suffix; the others are Parquet)."""
    if not folder.is_dir():
        return []
    patterns = ("*.csv", "*.jsonl", "*.parquet") if name == "raw" else ("*.parquet",)
    return sorted(path for pattern in patterns for path in folder.rglob(pattern))


def matching_ids(paths: ProjectPaths, matcher: Matcher) -> set[str]:
    """Ids of every row whose text columns hold one of the subject's identifiers, in any dataset."""
    ids: set[str] = set()
    for name, folder in datasets(paths).items():
        for path in dataset_files(name, folder):
            frame = read_rows(path)
            if ID_COLUMN in frame.columns and len(frame):
                ids |= set(frame.loc[matcher.frame_mask(frame, skip=(ID_COLUMN,)), ID_COLUMN].astype(str))
    return ids


def row_mask(frame: pd.DataFrame, matcher: Matcher, ids: set[str]) -> np.ndarray:
    """True for the subject's rows: by id, or by an identifier in a text column."""
    mask = matcher.frame_mask(frame, skip=(ID_COLUMN,))
    if ID_COLUMN in frame.columns and ids:
        mask |= frame[ID_COLUMN].astype(str).isin(ids).to_numpy()
    return mask


@dataclass
class Removed:
    """Rows removed per dataset and the files rewritten (relative paths, hashes before and after)."""

    rows: dict[str, int] = field(default_factory=dict)
    files: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, int] = field(default_factory=dict)  # accepted (validated) rows removed, per label


def remove_rows(paths: ProjectPaths, matcher: Matcher, ids: set[str]) -> Removed:
    """Rewrite every dataset file without the subject's rows; count them per dataset."""
    removed = Removed()
    for name, folder in datasets(paths).items():
        removed.rows[name] = 0
        for path in dataset_files(name, folder):
            frame = read_rows(path)
            if not len(frame):
                continue
            mask = row_mask(frame, matcher, ids)
            count = int(mask.sum())
            if not count:
                continue
            before = file_digest(path)
            if name == "validated" and "label" in frame.columns:
                for label, rows in frame.loc[mask, "label"].dropna().astype(str).value_counts().items():
                    removed.labels[str(label)] = removed.labels.get(str(label), 0) + int(rows)
            write_rows(frame.loc[~mask].reset_index(drop=True), path)
            partitions.refresh_part(path)  # a part of a partitioned output (anonymised, held back): its index follows
            removed.rows[name] += count
            relative = path.relative_to(paths.root).as_posix()
            removed.files.append(
                {"dataset": name, "path": relative, "rows": count, "sha256_before": before, "sha256": file_digest(path)}
            )
    return removed


def record_raw_events(paths: ProjectPaths, removed: Removed, request_id: str, at: str) -> None:
    """Add an erasure event to the manifest entry of each rewritten raw batch (counts and hashes only)."""
    rewritten = {Path(item["path"]).name: item for item in removed.files if item["dataset"] == "raw"}
    if not rewritten:
        return
    entries = read_manifest(paths.raw_manifest)
    for entry in entries:
        item = rewritten.get(entry["raw_file"])
        if item is not None:
            event = {"request_id": request_id, "at": at, "rows_removed": item["rows"]}
            event |= {"sha256_before": item["sha256_before"], "sha256_after": item["sha256"]}
            entry.setdefault("erasures", []).append(event)
    mode = paths.raw_manifest.stat().st_mode & 0o777
    paths.raw_manifest.chmod(0o644)
    write_manifest(paths.raw_manifest, entries)
    paths.raw_manifest.chmod(mode)


def save_state(path: Path, state: dict[str, Any]) -> None:
    """The pending request's state (row ids, not identifiers), so an interrupted erasure resumes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, sort_keys=True), encoding="utf-8")


def labels_short(paths: ProjectPaths, removed: Removed, minimum: int) -> dict[str, int]:
    """Labels the erasure took rows from that now have fewer accepted rows than ``minimum``: label -> rows left."""
    if not removed.labels or minimum <= 0:
        return {}
    counts: dict[str, int] = dict.fromkeys(removed.labels, 0)
    for path in dataset_files("validated", paths.validated):
        frame = read_rows(path)
        if "label" in frame.columns:
            for label, rows in frame["label"].dropna().astype(str).value_counts().items():
                if label in counts:
                    counts[str(label)] += int(rows)
    return {label: rows for label, rows in sorted(counts.items()) if rows < minimum}
