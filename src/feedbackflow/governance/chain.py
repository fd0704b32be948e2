"""The lineage of one model version: source deliveries -> raw -> validated -> anonymised -> split -> model -> gate.

Joined from what the pipeline already records, so nobody has to read and join them by hand:

* the shared registry's entry of the version (model hashes, the run that trained it, the gate, who decided);
* that run's record, ``reports/runs/<experiment>.json`` (the DVC hash of every output that run saw), falling back to
  the registry entry's data versions when this workspace never summarised that run;
* the raw store's manifest (every delivered batch with its source, key, content hash and ingest run): the batches
  ingested up to the version's creation are the ones its data was built from (the raw store is append-only).

Hashes, counts, names and decisions only; never a row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from feedbackflow.config import ProjectPaths, experiment_name
from feedbackflow.io import read_json
from feedbackflow.storage.manifest import read_manifest
from feedbackflow.storage.registry import find_version

_REL = ProjectPaths.relative()
#: The data a model is built from, in pipeline order (DVC paths).
DATA_STEPS = tuple(path.as_posix() for path in (_REL.raw, _REL.validated, _REL.anonymised, _REL.split))
BATCH_KEYS = ("batch_id", "source", "key", "sha256", "size", "ingested_at", "run_id")


def model_chain(paths: ProjectPaths, state: dict[str, Any], version: str) -> dict[str, Any]:
    """The chain of ``version`` in the registry ``state``: batches, data hashes, run, model, gate and approver.

    Raises:
        NotFoundError: the registry has no such version.
    """
    entry = find_version(state, version)
    run_id = entry.get("run_id")
    record = (read_json(paths.run_record(run_id), {}) or {}) if run_id else {}
    versions = {**(entry.get("data_versions") or {}), **(record.get("data_versions") or {})}
    gate = entry.get("gate") or {}
    return {
        "version": version,
        "status": entry.get("status"),
        "batches": delivered_batches(paths, entry.get("created_at")),
        "data": [{"path": path, "md5": versions.get(path)} for path in DATA_STEPS],
        "run": {
            "run_id": run_id,
            "experiment": record.get("experiment") or (experiment_name(run_id) if run_id else None),
            "stages_ran": record.get("stages") or {},
            "trigger": (record.get("trigger") or {}).get("run_type"),
        },
        "model": {key: entry.get(key) for key in ("model_sha256", "model_md5", "metrics", "params_sha256")},
        "gate": {"promote": gate.get("promote"), "reasons": gate.get("reasons", [])},
        "compared_with": entry.get("compared_with"),
        "decided_by": entry.get("approved_by") or entry.get("rejected_by"),
        "decided_at": entry.get("promoted_at") or entry.get("rejected_at"),
    }


def delivered_batches(paths: ProjectPaths, until: str | None) -> list[dict[str, Any]]:
    """The raw manifest's batches ingested at or before ``until`` (all of them when it is unknown), oldest first."""
    limit = datetime.fromisoformat(until) if until else None
    batches = []
    for entry in read_manifest(paths.raw_manifest):
        ingested = entry.get("ingested_at")
        if limit and ingested and datetime.fromisoformat(ingested) > limit:
            continue
        batches.append({key: entry.get(key) for key in BATCH_KEYS})
    return batches


def format_chain(chain: dict[str, Any]) -> str:
    """The chain as text, source first, for ``feedbackflow lineage``."""
    lines = [f"source deliveries ({len(chain['batches'])} batches)"]
    lines += [
        f"  {b['batch_id']}  {b['source']}:{b['key']}  sha256 {str(b['sha256'])[:16]}  ingested {b['ingested_at']}"
        f"  run {b['run_id']}"
        for b in chain["batches"]
    ]
    lines += [f"-> {step['path']:<16} md5 {step['md5'] or '(not recorded)'}" for step in chain["data"]]
    run, model, gate = chain["run"], chain["model"], chain["gate"]
    lines.append(f"-> run {run['run_id']} ({run['trigger'] or 'unknown trigger'}), experiment {run['experiment']}")
    ran = [name for name, did in run["stages_ran"].items() if did]
    if ran:
        lines.append(f"   stages run: {', '.join(ran)}")
    lines.append(f"-> model {chain['version']} ({chain['status']})  sha256 {model['model_sha256']}")
    lines.append(f"   dvc md5 {model['model_md5']}  metrics {model['metrics']}")
    verdict = {True: "promote", False: "keep champion"}.get(gate["promote"], "no decision")
    lines.append(f"-> gate: {verdict} (compared with {chain['compared_with'] or 'no champion'})")
    lines += [f"   - {reason}" for reason in gate["reasons"]]
    lines.append(f"-> decided by {chain['decided_by'] or 'nobody yet'} at {chain['decided_at'] or '-'}")
    return "\n".join(lines)


def chain_graph(chain: dict[str, Any], column: int = 190, row: int = 56) -> dict[str, Any]:
    """A left-to-right layout of the chain for an SVG: nodes (label, detail, x, y) and edges (x1, y1, x2, y2)."""
    batches = chain["batches"] or [{"batch_id": "no batches", "sha256": ""}]
    columns: list[list[tuple[str, str]]] = [
        [(str(b["batch_id"]), f"sha256 {str(b.get('sha256') or '')[:10]}") for b in batches],
        *([(step["path"], f"md5 {str(step['md5'] or '-')[:10]}")] for step in chain["data"]),
        [(f"model {chain['version']}", f"sha256 {str(chain['model']['model_sha256'] or '')[:10]}")],
        [("gate", {True: "promote", False: "keep champion"}.get(chain["gate"]["promote"], "no decision"))],
        [("decided by", str(chain["decided_by"] or "-"))],
    ]
    height = max(len(nodes) for nodes in columns) * row
    nodes, edges = [], []
    previous: list[tuple[int, int]] = []
    for index, items in enumerate(columns):
        top = (height - len(items) * row) // 2
        here = [(index * column + 10, top + i * row + 10) for i in range(len(items))]
        nodes += [
            {"label": label, "detail": detail, "x": x, "y": y}
            for (label, detail), (x, y) in zip(items, here, strict=True)
        ]
        edges += [{"x1": px + 160, "y1": py + 20, "x2": x, "y2": y + 20} for px, py in previous for x, y in here]
        previous = here
    return {"nodes": nodes, "edges": edges, "width": len(columns) * column + 20, "height": height + 20}
