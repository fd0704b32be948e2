"""Path constants of a feedbackflow project.

Only constants and pure path helpers live here; nothing is created at import time.
The project root is ``FEEDBACKFLOW_PROJECT_DIR`` when set, else the nearest folder at or above the current working
directory that holds both ``params.yaml`` and ``dvc.yaml`` (so commands work from any subfolder), else the current
working directory. Every other module asks :class:`ProjectPaths` for a path instead of joining folder names itself.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

PARAMS_FILE = "params.yaml"
DVC_FILE = "dvc.yaml"


def experiment_name(run_id: str) -> str:
    """A Git-ref-safe experiment name derived from the orchestrator's run id (also the name of the run's records)."""
    return "run-" + re.sub(r"[^A-Za-z0-9._-]+", "-", run_id).strip("-.")[:80]


def find_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` holding both ``params.yaml`` and ``dvc.yaml``, else ``start``."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / PARAMS_FILE).is_file() and (folder / DVC_FILE).is_file():
            return folder
    return start


@dataclass(frozen=True)
class ProjectPaths:
    """Every path the stages read or write, relative to one project root."""

    root: Path

    @classmethod
    def discover(cls, root: str | os.PathLike[str] | None = None) -> ProjectPaths:
        """Return the paths of the project at ``root`` (default: ``FEEDBACKFLOW_PROJECT_DIR``, else the project
        folder found from the current working directory upwards, see :func:`find_root`)."""
        base = root or os.environ.get("FEEDBACKFLOW_PROJECT_DIR")
        return cls(Path(base).resolve()) if base else cls(find_root(Path.cwd()))

    @classmethod
    def relative(cls) -> ProjectPaths:
        """The paths relative to the project root, as ``dvc.yaml``, ``dvc.lock`` and Git name them."""
        return cls(Path())

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
    def pseudonym_key_id(self) -> Path:
        """The id (not the key) of the pseudonym key in use: a DVC dependency of anonymise."""
        return self.data / "pseudonym_key_id"

    @property
    def validated(self) -> Path:
        """Rows that passed validation (restricted: not yet anonymised)."""
        return self.data / "validated"

    @property
    def validate_parts(self) -> Path:
        """validate's reusable work: each raw batch read and normalised once, one part per batch (restricted)."""
        return self.data / "validate_parts"

    @property
    def quarantine(self) -> Path:
        """Rows that failed validation, with every rule they broke (restricted)."""
        return self.data / "quarantine"

    @property
    def anonymised(self) -> Path:
        return self.data / "anonymised"

    @property
    def anonymise_shards(self) -> Path:
        """Parts anonymise shards made on other workers, one folder per shard, taken by the stage (restricted)."""
        return self.data / "anonymise_shards"

    def anonymise_shard(self, shard: int, shards: int) -> Path:
        """The folder of shard ``shard`` (from 0) of ``shards``."""
        return self.anonymise_shards / f"{shard + 1}-of-{shards}"

    @property
    def held_back(self) -> Path:
        """Rows the leak gate's second scan still flagged, as validated, with the entity types found (restricted)."""
        return self.data / "held_back"

    @property
    def split(self) -> Path:
        return self.data / "split"

    @property
    def labelling(self) -> Path:
        """The review loop's state: queue, labels, disputes (anonymised text only; outside DVC and Git)."""
        return self.data / "labelling"

    @property
    def review_queue(self) -> Path:
        """Rows sent for review, one JSON line each (id, task id, reason, margin, anonymised text)."""
        return self.labelling / "queue.jsonl"

    @property
    def review_labels(self) -> Path:
        """Reviewers' labels taken back, one JSON line each (id, label, annotator, time, task id)."""
        return self.labelling / "labels.jsonl"

    @property
    def review_disputes(self) -> Path:
        """Ids two reviewers labelled differently, with both values, held until they agree."""
        return self.labelling / "disputed.jsonl"

    @property
    def review_import(self) -> Path:
        """Label Studio import JSON of each batch, when no server is configured."""
        return self.labelling / "import"

    @property
    def review_export(self) -> Path:
        """Where Label Studio export JSON is dropped to be read back, when no server is configured."""
        return self.labelling / "export"

    def review_deliveries(self, landing_dir: str) -> Path:
        """Reviewed labels as deliveries: ingested with source ``review`` from beside the landing folder's files."""
        return self.root / landing_dir / "review"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def challenger(self) -> Path:
        return self.models / "challenger"

    @property
    def detector(self) -> Path:
        """The learned name and location detector (the ``detector`` stage's output; the anonymiser reads it)."""
        return self.models / "detector"

    @property
    def champion(self) -> Path:
        return self.models / "champion"

    @property
    def champion_data(self) -> Path:
        """The champion's training data (its run's ``data/split``) as a DVC record, fetched into the cache only."""
        return self.models / "champion_data"

    @property
    def registry(self) -> Path:
        """Champion pointer and the append-only promotion history."""
        return self.root / "registry"

    @property
    def train_start(self) -> Path:
        """What ``train`` starts from (the base model, or the champion's version and hash): a train dependency."""
        return self.registry / "train_start.json"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    def stage_reports(self, stage: str) -> Path:
        return self.reports / stage

    @property
    def anonymise_card(self) -> Path:
        """The model card's lines on the anonymisation, written by ``anonymise`` without run ids or timings (a
        ``train`` dependency: anonymising again to the same rows leaves it unchanged)."""
        return self.stage_reports("anonymise") / "card.json"

    @property
    def gate(self) -> Path:
        """The promotion gate's decision, written by the evaluate stage."""
        return self.stage_reports("evaluate") / "gate.json"

    def gate_report(self, suffix: str = ".md") -> Path:
        """The gate report for people (``.md`` or ``.html``), written by the evaluate stage."""
        return self.stage_reports("evaluate") / f"gate{suffix}"

    @property
    def run_summary(self) -> Path:
        """The latest run's summary."""
        return self.reports / "run_summary.json"

    @property
    def run_records(self) -> Path:
        """One summary per run, ``<experiment>.json`` (the run's DVC hashes, counts and decisions)."""
        return self.reports / "runs"

    def run_record(self, run_id: str) -> Path:
        """The summary of the run ``run_id`` (named by its experiment, :func:`experiment_name`)."""
        return self.run_records / f"{experiment_name(run_id)}.json"

    @property
    def data_docs(self) -> Path:
        """The validate stage's Great Expectations Data Docs of its latest run (a DVC output)."""
        return self.stage_reports("validate") / "data_docs"

    @property
    def data_docs_history(self) -> Path:
        """The Data Docs site with every run's validation (rebuilt by the ``record`` task)."""
        return self.reports / "data_docs"

    @property
    def governance(self) -> Path:
        """Governance records kept across runs: the Evidently workspace, the GX history, per-run records, decisions."""
        return self.root / "governance"

    @property
    def governance_records(self) -> Path:
        """One governance record per run, ``<experiment>.json`` (drift outcome, snapshot ids, counts)."""
        return self.governance / "runs"

    def governance_record(self, run_id: str) -> Path:
        """The governance record of the run ``run_id`` (named by its experiment, :func:`experiment_name`)."""
        return self.governance_records / f"{experiment_name(run_id)}.json"

    @property
    def retrain_decisions(self) -> Path:
        """The drift -> retrain decision log (one JSON line per decision)."""
        return self.governance / "retrain_decisions.jsonl"

    @property
    def work(self) -> Path:
        """Local scratch space: outside DVC and Git, never shared between workers."""
        return self.root / ".work"

    @property
    def failed_runs(self) -> Path:
        """What failed stage runs wrote, kept aside per stage and run (local, outside DVC and Git; restricted)."""
        return self.work / "failed"

    def rollback(self, stage: str) -> Path:
        """The snapshot of ``stage``'s persistent outputs, restored when the stage fails."""
        return self.work / "rollback" / stage

    @property
    def anonymise_work(self) -> Path:
        """The anonymise stage's partial outputs while it runs (restricted)."""
        return self.work / "anonymise"

    @property
    def train_checkpoints(self) -> Path:
        """The Trainer's checkpoints, one folder per training fingerprint."""
        return self.work / "train" / "checkpoints"

    @property
    def monitor_cache(self) -> Path:
        """The monitor stage's cached embeddings of the reference side (vectors and labels, no text)."""
        return self.work / "monitor"

    @property
    def erasure_work(self) -> Path:
        """Pending erasure requests' state (row ids found, never identifiers), so an interrupted one resumes."""
        return self.work / "erasure"

    @property
    def run_lock(self) -> Path:
        """The lock file that lets one demo run at a time use the workspace."""
        return self.work / "run.lock"
