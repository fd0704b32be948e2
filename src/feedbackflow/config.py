"""Path constants of a feedbackflow project.

Only constants and pure path helpers live here; nothing is created at import time.
The project root is the current working directory unless ``FEEDBACKFLOW_PROJECT_DIR`` names another.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PARAMS_FILE = "params.yaml"


@dataclass(frozen=True)
class ProjectPaths:
    """Every path the stages read or write, relative to one project root."""

    root: Path

    @classmethod
    def discover(cls, root: str | os.PathLike[str] | None = None) -> ProjectPaths:
        """Return the paths of the project at ``root`` (default: env or cwd)."""
        base = root or os.environ.get("FEEDBACKFLOW_PROJECT_DIR") or Path.cwd()
        return cls(Path(base).resolve())

    @property
    def params(self) -> Path:
        return self.root / PARAMS_FILE

    @property
    def dvc_yaml(self) -> Path:
        """The stage graph: the one list of stages, their deps and outs."""
        return self.root / "dvc.yaml"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def raw(self) -> Path:
        """Immutable, append-only raw batches (restricted: may hold personal data)."""
        return self.data / "raw"

    @property
    def raw_manifest(self) -> Path:
        return self.raw / "_manifest.jsonl"

    @property
    def validated(self) -> Path:
        """Rows that passed validation (restricted: not yet anonymised)."""
        return self.data / "validated"

    @property
    def quarantine(self) -> Path:
        """Rows that failed validation, with every rule they broke (restricted)."""
        return self.data / "quarantine"

    @property
    def anonymised(self) -> Path:
        return self.data / "anonymised"

    @property
    def held_back(self) -> Path:
        """Rows the leak gate's second scan still flagged, as validated, with the entity types found (restricted)."""
        return self.data / "held_back"

    @property
    def split(self) -> Path:
        return self.data / "split"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def challenger(self) -> Path:
        return self.models / "challenger"

    @property
    def champion(self) -> Path:
        return self.models / "champion"

    @property
    def registry(self) -> Path:
        """Champion pointer and the append-only promotion history."""
        return self.root / "registry"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    def stage_reports(self, stage: str) -> Path:
        return self.reports / stage

    @property
    def failed_runs(self) -> Path:
        """What failed stage runs wrote, kept aside per stage and run (local, outside DVC and Git; restricted)."""
        return self.root / ".work" / "failed"
