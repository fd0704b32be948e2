"""A small model registry: the champion pointer and an append-only promotion history.

``registry/champion.json`` names the current champion (version, weights digest, metrics); ``registry/history.jsonl``
keeps every promotion. The champion's files live in ``models/champion``, tracked by ``models/champion.dvc`` and
pushed to the DVC remote, so any worker can restore the exact champion by hash. The champion is kept outside the
``dvc.yaml`` graph on purpose: evaluate reads it and promote writes it, which as stages would form a cycle.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from typing import Any

from feedbackflow.config import ProjectPaths
from feedbackflow.io import read_json, write_json


class Registry:
    """Reads and updates the champion pointer and promotion history of one project."""

    def __init__(self, paths: ProjectPaths) -> None:
        self.paths = paths
        self.pointer = paths.registry / "champion.json"
        self.log = paths.registry / "history.jsonl"

    def champion(self) -> dict[str, Any] | None:
        """The current champion record, or ``None`` before the first promotion."""
        return read_json(self.pointer)

    def history(self) -> list[dict[str, Any]]:
        """Every promotion, oldest first."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines() if line.strip()]

    def promote(self, gate: dict[str, Any], run_id: str) -> dict[str, Any]:
        """Make the challenger the champion: copy its files, then record the new version.

        The copy goes to a side folder first and replaces ``models/champion`` in one rename, so a crash never leaves
        a half-copied champion.
        """
        staging = self.paths.models / ".champion.partial"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(self.paths.challenger, staging)
        shutil.rmtree(self.paths.champion, ignore_errors=True)
        staging.rename(self.paths.champion)
        previous = self.champion()
        challenger = gate["challenger"]
        record = {
            "version": f"v{len(self.history()) + 1}",
            "model_sha256": challenger["model_sha256"],
            "metrics": {"accuracy": challenger["accuracy"], "macro_f1": challenger["macro_f1"]},
            "reasons": gate.get("reasons", []),
            "previous_version": previous["version"] if previous else None,
            "promoted_at": datetime.now(UTC).isoformat(),
            "run_id": run_id,
        }
        self.paths.registry.mkdir(parents=True, exist_ok=True)
        with self.log.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
        write_json(self.pointer, record)
        return record
