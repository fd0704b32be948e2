"""What each pipeline task read and wrote, as datasets a lineage backend can join, and the counts only we know.

``dvc.yaml`` is the one home of the graph: a stage task's inputs are its stage's data dependencies (code under
``src/`` is not data) and its outputs the stage's outs, metrics and plots. Every dataset is named by its DVC path,
in the namespace of the DVC remote that stores it (``.dvc/config``, the stage's ``remote:`` option; user and
password never shown) and versioned by the hash ``dvc.lock`` records for it. The ingest stage's first input is its
source: the landing folder, the S3 prefix or the PostgreSQL table. Tasks that are no ``dvc.yaml`` stage (gate,
approve, promote, summarise, record, decide, and the review loop's label_pull and label_push) read the stage outputs
listed in :data:`TASK_DATA`; promote writes the champion, label_pull the review deliveries that ingest reads.

The facets carry counts, shares and booleans from the stage reports, never a text value: rows accepted and
quarantined by rule, personal-data entities replaced by type and the leak gate, the gate decision with its
confidence interval, the drift share. This module knows nothing of Airflow or OpenLineage
(:mod:`feedbackflow.orchestration.lineage` turns it into OpenLineage objects).
"""

from __future__ import annotations

import configparser
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from feedbackflow.config import ProjectPaths
from feedbackflow.io import read_json
from feedbackflow.settings import SOURCE_OVERRIDE_ENV, IngestSettings, load_settings, with_source_override
from feedbackflow.sources.postgres import POSTGRES_DSN_ENV, endpoint
from feedbackflow.storage.manifest import read_manifest

_REL = ProjectPaths.relative()
_GATE = _REL.gate.as_posix()
_CHALLENGER = _REL.challenger.as_posix()
_MONITOR_SUMMARY = (_REL.stage_reports("monitor") / "summary.json").as_posix()
_CHAMPION = _REL.champion.as_posix()

#: Tasks that run no dvc.yaml stage: (what they read, what they write), as paths of dvc.yaml outputs, the champion,
#: or (``${...}`` as in dvc.yaml) the folder of review deliveries beside the landing folder.
TASK_DATA: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "label_pull": ((), ("${ingest.landing_dir}/review",)),  # reviewers' labels, read by tonight's ingest
    "gate": ((_GATE,), ()),
    "approve": ((_GATE,), ()),
    "promote": ((_CHALLENGER, _GATE), (_CHAMPION,)),
    "label_push": ((_REL.anonymised.as_posix(), _CHAMPION), ()),  # the champion picks the batch from the newest rows
    "summarise": ((_GATE, _MONITOR_SUMMARY, (_REL.stage_reports("validate") / "validate.json").as_posix()), ()),
    "record": ((_MONITOR_SUMMARY,), ()),
    "decide": ((_MONITOR_SUMMARY,), ()),
}


@dataclass(frozen=True)
class DatasetRef:
    """One dataset version: ``namespace`` (where it is stored), ``name`` (its DVC path or source name), ``version``."""

    namespace: str
    name: str
    version: str | None
    kind: str = "data"  # source, data, model or report


@dataclass(frozen=True)
class TaskLineage:
    """What one task read and wrote, and its facets (facet name -> counts)."""

    inputs: tuple[DatasetRef, ...] = ()
    outputs: tuple[DatasetRef, ...] = ()
    facets: dict[str, dict[str, Any]] = field(default_factory=dict)


def task_lineage(paths: ProjectPaths, task_id: str, finished: bool = False) -> TaskLineage:
    """The lineage of ``task_id`` from ``dvc.yaml`` and the current ``dvc.lock``; with ``finished`` its facets too.

    A task that is neither a ``dvc.yaml`` stage nor in :data:`TASK_DATA` has no lineage (empty). Each file is parsed
    once, with libyaml: the provider calls this twice per task, inside the task's own time.
    """
    stages = (_load_yaml(paths.dvc_yaml) or {}).get("stages", {})
    lock = (_load_yaml(paths.root / "dvc.lock") or {}).get("stages", {})
    catalog = _Catalog(paths, stages, lock)
    if task_id in stages:
        spec, entry = stages[task_id], lock.get(task_id) or {}
        params = _load_yaml(paths.params) or {}
        deps = [_resolve(dep, params) for dep in _paths(spec, "deps") if not dep.startswith("src/")]
        inputs = [catalog.dataset(dep, _hash_in(entry.get("deps"), dep)) for dep in deps]
        if task_id == "ingest":  # the source first; the landing folder is the folder source itself
            landing = _resolve("${ingest.landing_dir}", params)
            inputs = [source_dataset(paths, lock), *(ref for ref in inputs if ref.name != landing)]
        outs = [out for kind in ("outs", "metrics", "plots") for out in _paths(spec, kind)]
        outputs = [catalog.dataset(out, _hash_in(entry.get("outs"), out)) for out in outs]
    elif task_id in TASK_DATA:
        reads, writes = TASK_DATA[task_id]
        params = _load_yaml(paths.params) or {}
        inputs = [catalog.champion() if path == _CHAMPION else catalog.dataset(path) for path in reads]
        outputs = [
            catalog.champion() if path == _CHAMPION else catalog.dataset(_resolve(path, params)) for path in writes
        ]
    else:
        return TaskLineage()
    facets = task_facets(paths, task_id) if finished else {}
    return TaskLineage(tuple(inputs), tuple(outputs), facets)


def _load_yaml(path: Path) -> Any:
    """A YAML file parsed by libyaml when PyYAML has it (20x faster on a large ``dvc.lock``); None when absent."""
    if not path.is_file():
        return None
    return yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _paths(spec: dict[str, Any], kind: str) -> list[str]:
    """The paths of one list of a ``dvc.yaml`` stage (``deps``, ``outs``, ``metrics``, ``plots``), as written."""
    return [next(iter(item)) if isinstance(item, dict) else str(item) for item in spec.get(kind) or []]


class _Catalog:
    """Names and versions datasets: remote namespaces from ``.dvc/config``, hashes from ``dvc.lock``."""

    def __init__(self, paths: ProjectPaths, stages: dict[str, Any], lock: dict[str, Any]) -> None:
        self.paths = paths
        self.remotes = dvc_remotes(paths.root)
        self.out_remotes = _out_remotes(stages)
        self.hashes = {out["path"]: _hash(out) for entry in lock.values() for out in entry.get("outs", [])}

    def dataset(self, path: str, version: str | None = None) -> DatasetRef:
        """``path`` in the namespace of the remote that stores it (its enclosing output's), at ``version``."""
        owner = next((out for out in self.out_remotes if path == out or path.startswith(f"{out}/")), None)
        if owner is None:  # no stage writes it (the taxonomy, the champion pointer): a file of the project itself
            return DatasetRef(self.paths.root.resolve().as_uri(), path, version, _kind(path))
        remote = self.out_remotes[owner] or self.remotes.get("", "")
        namespace = self.remotes.get(remote, f"dvc://{remote or 'local'}")
        return DatasetRef(namespace, path, version or self.hashes.get(path), _kind(path))

    def champion(self) -> DatasetRef:
        """The champion model as ``models/champion.dvc`` records it (``dvc add``), in the default remote."""
        dvc_file = self.paths.champion.with_suffix(".dvc")
        outs = (_load_yaml(dvc_file) or {}).get("outs", [])
        version = _hash(outs[0]) if outs else None
        name = self.paths.champion.relative_to(self.paths.root).as_posix()
        return DatasetRef(self.remotes.get(self.remotes.get("", ""), "dvc://local"), name, version, "model")


def _hash(entry: dict[str, Any]) -> str | None:
    value = entry.get("md5") or entry.get("etag") or entry.get("checksum")
    return str(value) if value else None


def _hash_in(entries: list[dict[str, Any]] | None, path: str) -> str | None:
    return next((_hash(entry) for entry in entries or [] if entry.get("path") == path), None)


def _kind(path: str) -> str:
    if Path(path).is_relative_to(_REL.models):
        return "model"
    return "report" if Path(path).is_relative_to(_REL.reports) else "data"


def _params(paths: ProjectPaths) -> dict[str, Any]:
    return yaml.safe_load(paths.params.read_text(encoding="utf-8")) or {}


def _resolve(dep: str, params: dict[str, Any]) -> str:
    """``${section.key}`` in a ``dvc.yaml`` path replaced by its value in ``params.yaml``, as DVC does."""

    def value(match: re.Match[str]) -> str:
        node: Any = params
        for part in match.group(1).split("."):
            node = node[part]
        return str(node)

    return re.sub(r"\$\{\s*([\w.]+)\s*\}", value, dep)


def _out_remotes(stages: dict[str, Any]) -> dict[str, str]:
    """Every ``dvc.yaml`` output path -> the remote its ``remote:`` option names ("" for the default remote)."""
    found: dict[str, str] = {}
    for stage in stages.values():
        for kind in ("outs", "metrics", "plots"):
            for item in stage.get(kind) or []:
                if isinstance(item, dict):
                    found.update({path: str((options or {}).get("remote") or "") for path, options in item.items()})
                else:
                    found[str(item)] = ""
    return found


def dvc_remotes(root: Path) -> dict[str, str]:
    """DVC remote name -> URL without user or password (``.dvc/config``, then ``config.local``); "" -> default name.

    A folder remote's relative path is resolved from ``.dvc/`` as DVC does, and shown as a ``file://`` URL.
    """
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read([root / ".dvc" / "config", root / ".dvc" / "config.local"], encoding="utf-8")
    remotes: dict[str, str] = {"": parser.get("core", "remote", fallback="")}
    for section in parser.sections():
        match = re.fullmatch(r"'?remote \"(.+)\"'?", section)
        if match and parser.has_option(section, "url"):
            remotes[match.group(1)] = _public_url(parser.get(section, "url"), root / ".dvc")
    return remotes


def _public_url(url: str, base: Path) -> str:
    parts = urlsplit(url)
    if not parts.scheme or len(parts.scheme) == 1:  # a folder (a Windows drive letter is no scheme)
        return (base / url).resolve().as_uri()
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def source_dataset(paths: ProjectPaths, lock: dict[str, Any]) -> DatasetRef:
    """Ingest's source: the landing folder (versioned by ``dvc.lock``), the S3 prefix or the PostgreSQL table.

    DVC cannot hash S3 or PostgreSQL, so those are versioned by the content hash of the newest batch the raw
    manifest took from them (None before the first).
    """
    ingest = with_source_override(load_settings(paths.params).ingest, os.environ.get(SOURCE_OVERRIDE_ENV))
    namespace, name = source_name(paths, ingest)
    if ingest.source == "folder":
        return DatasetRef(namespace, name, _hash_in((lock.get("ingest") or {}).get("deps"), name), "source")
    batches = [entry for entry in read_manifest(paths.raw_manifest) if entry.get("source") == ingest.source]
    return DatasetRef(namespace, name, batches[-1]["sha256"] if batches else None, "source")


def source_name(paths: ProjectPaths, ingest: IngestSettings) -> tuple[str, str]:
    """(namespace, name) of an ingest source, in OpenLineage's naming: ``s3://bucket`` + prefix, ``postgres://``."""
    if ingest.source == "s3":
        return f"s3://{ingest.s3.bucket}", ingest.s3.prefix or "/"
    if ingest.source == "postgres":
        server = urlsplit(endpoint(os.environ.get(POSTGRES_DSN_ENV, "")))
        database = server.path.strip("/")
        table = ingest.postgres.table or "query"
        return f"postgres://{server.hostname or 'localhost'}:{server.port or 5432}", f"{database}.{table}".lstrip(".")
    return paths.root.resolve().as_uri(), ingest.landing_dir


def task_facets(paths: ProjectPaths, task_id: str) -> dict[str, dict[str, Any]]:
    """The counts ``task_id``'s reports hold, by facet name (empty for a task without any)."""
    reader = FACET_READERS.get(task_id)
    return {name: counts_only(value) for name, value in (reader(paths) if reader else {}).items() if value}


def _quality(paths: ProjectPaths) -> dict[str, Any]:
    report = read_json(paths.stage_reports("validate") / "validate.json", {}) or {}
    keys = ("rows_read", "rows_accepted", "rows_quarantined", "quarantined_by_rule")
    return {"feedbackflow_quality": {key: report.get(key) for key in keys if key in report}}


def _privacy(paths: ProjectPaths) -> dict[str, Any]:
    report = read_json(paths.stage_reports("anonymise") / "anonymise.json", {}) or {}
    keys = ("rows", "rows_out", "rows_held_back", "rows_changed")
    counts = {key: report.get(key) for key in keys if key in report}
    return {"feedbackflow_privacy": {**counts, "entities_replaced": report.get("entities"), **_leak(report)}}


def _leak(report: dict[str, Any]) -> dict[str, Any]:
    gate = report.get("leak_gate") or {}
    return {"leak_gate": gate} if gate else {}


def _gate(paths: ProjectPaths) -> dict[str, Any]:
    gate = read_json(paths.gate, {}) or {}
    if not gate:
        return {}
    paired = gate.get("paired") or {}
    keys = ("macro_f1_difference", "ci_low", "ci_high", "confidence")
    challenger = gate.get("challenger") or {}
    return {
        "feedbackflow_gate": {
            "promote": gate.get("promote"),
            **{key: paired.get(key) for key in keys if key in paired},
            "challenger_macro_f1": challenger.get("macro_f1"),
            "champion_macro_f1": (gate.get("champion") or {}).get("macro_f1"),
        }
    }


def _drift(paths: ProjectPaths) -> dict[str, Any]:
    summary = read_json(paths.root / _MONITOR_SUMMARY, {}) or {}
    keys = ("drift_share", "dataset_drift", "drift_failed")
    counts = {key: summary.get(key) for key in keys if key in summary}
    return {"feedbackflow_drift": {"checked": summary.get("status") == "checked", **counts}} if summary else {}


FACET_READERS = {"validate": _quality, "anonymise": _privacy, "evaluate": _gate, "gate": _gate, "monitor": _drift}


def counts_only(value: Any) -> Any:
    """``value`` with every text value dropped: numbers, booleans and None stay, in dicts (by key) and lists.

    Keys are the pipeline's own names (rule ids, entity types); a value that is text never reaches a lineage event.
    """
    if isinstance(value, dict):
        kept = {str(key): counts_only(item) for key, item in value.items() if not isinstance(item, str)}
        return {key: item for key, item in kept.items() if item != {} and item != []}
    if isinstance(value, list | tuple):
        return [counts_only(item) for item in value if not isinstance(item, str)]
    return value if isinstance(value, bool | int | float) or value is None else None
