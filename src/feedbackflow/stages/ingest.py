"""ingest: copy new feedback files from the landing folder into the immutable raw store.

A manifest (``data/raw/_manifest.jsonl``) records every ingested file with its content hash, size and provenance.
A file is new when its content hash has not been ingested before, so re-running over the same landing folder ingests
nothing twice and a re-delivered identical file is recognised under any name. Each raw batch is written aside and
renamed into place, so a crash never leaves a partial batch visible.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

from feedbackflow.config import ProjectPaths
from feedbackflow.io import atomic_path, run_id, write_json
from feedbackflow.settings import Settings


def read_manifest(manifest: Path) -> list[dict]:
    """Return the manifest entries, oldest first (empty when nothing was ingested yet)."""
    if not manifest.exists():
        return []
    return [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def discover(landing_dir: Path, patterns: list[str]) -> list[Path]:
    """List candidate files in the landing folder, sorted by name, skipping hidden and partial files."""
    if not landing_dir.is_dir():
        raise FileNotFoundError(f"landing folder {landing_dir} does not exist; create it or set ingest.landing_dir")
    found = {path for pattern in patterns for path in landing_dir.glob(pattern) if path.is_file()}
    return sorted(path for path in found if not path.name.startswith("."))


def ingest_folder(landing_dir: Path, patterns: list[str], raw_dir: Path, manifest: Path) -> dict:
    """Copy every not-yet-ingested file from ``landing_dir`` into ``raw_dir`` and record it in ``manifest``."""
    entries = read_manifest(manifest)
    known = {entry["sha256"]: entry for entry in entries}
    sequence = max((entry["sequence"] for entry in entries), default=0) + 1
    now = datetime.now(UTC)
    new, skipped = [], []
    for path in discover(landing_dir, patterns):
        digest = _sha256(path)
        if digest in known:
            skipped.append({"key": path.name, "duplicate_of": known[digest]["batch_id"]})
            continue
        batch_id = f"{now:%Y%m%dT%H%M%S}-{digest[:12]}"
        raw_file = raw_dir / f"{batch_id}{''.join(path.suffixes)}"
        with atomic_path(raw_file) as partial:
            shutil.copyfile(path, partial)
        raw_file.chmod(0o444)
        entry = {
            "batch_id": batch_id,
            "sequence": sequence,
            "source": "folder",
            "key": path.name,
            "size": path.stat().st_size,
            "sha256": digest,
            "raw_file": raw_file.name,
            "ingested_at": now.isoformat(),
            "run_id": run_id(),
        }
        known[digest] = entry
        new.append(entry)
    if new:
        manifest.parent.mkdir(parents=True, exist_ok=True)
        with manifest.open("a", encoding="utf-8") as handle:
            for entry in new:
                handle.write(json.dumps(entry, sort_keys=True) + "\n")
    return {"new_batches": [e["batch_id"] for e in new], "new_files": [e["key"] for e in new], "skipped": skipped}


def run(settings: Settings, paths: ProjectPaths) -> dict:
    """Ingest new files from the configured landing folder and write ``reports/ingest/ingest.json``."""
    landing = paths.root / settings.ingest.landing_dir
    paths.raw.mkdir(parents=True, exist_ok=True)
    summary = ingest_folder(landing, settings.ingest.patterns, paths.raw, paths.raw_manifest)
    summary["batches_total"] = len(read_manifest(paths.raw_manifest))
    write_json(paths.stage_reports("ingest") / "ingest.json", summary)
    return summary
