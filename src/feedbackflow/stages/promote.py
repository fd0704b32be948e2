"""promote: when the gate passed (and, if required, a human approved), the challenger becomes the champion.

Order matters: the model goes to the DVC remote first (``dvc add models/champion`` + ``dvc push``), then the shared
registry's pointer moves (a compare-and-swap write, see :mod:`feedbackflow.storage.registry`). A failure anywhere
leaves the old champion in place, and a retry redoes the push and then moves the pointer, so no worker ever sees a
champion whose files are not in the remote.

Not a ``dvc.yaml`` stage: evaluate reads the champion and promote writes it, which as stages would form a cycle.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from typing import Any

import yaml

from feedbackflow.config import ProjectPaths
from feedbackflow.io import run_id as current_run_id
from feedbackflow.modeling.gate import load_gate
from feedbackflow.settings import Settings
from feedbackflow.storage import registry as reg
from feedbackflow.storage.dvc import Dvc

# the dvc.lock outputs that identify the data a challenger was trained and tested on
DATA_OUTPUTS = tuple(
    path.as_posix()
    for path in (ProjectPaths.relative().anonymised, ProjectPaths.relative().split, ProjectPaths.relative().challenger)
)


def should_promote(paths: ProjectPaths, registry: reg.Registry | None = None) -> tuple[bool, str]:
    """Promote only a passing challenger, compared with the current champion, not already champion or rejected."""
    gate = load_gate(paths)
    if not gate:
        return False, "no gate decision yet: run evaluate first"
    if not gate.get("promote"):
        return False, "gate refused: " + "; ".join(gate.get("reasons", []))
    state = (registry or reg.Registry.open(paths.root)).head()
    champion = reg.champion_of(state)
    sha = gate["challenger"]["model_sha256"]
    if champion and champion["model_sha256"] == sha:
        return False, f"challenger is already the champion ({champion['version']})"
    refused = [
        entry
        for entry in state["versions"]
        if entry["model_sha256"] == sha and entry["status"] == "rejected" and entry.get("rejected_by") != "gate"
    ]
    if refused:  # a human said no; a gate refusal is relative to the champion of its day and may be revisited
        return False, f"challenger was rejected as {refused[0]['version']} ({refused[0].get('rejection')})"
    compared = (gate.get("champion") or {}).get("version")
    if compared != (champion or {}).get("version"):
        return False, (
            f"the gate compared with {compared or 'no champion'} but the champion is now "
            f"{(champion or {}).get('version')}: the next run re-evaluates"
        )
    return True, "gate passed: " + "; ".join(gate.get("reasons", []))


def candidate(paths: ProjectPaths, registry: reg.Registry, run_id: str) -> dict[str, Any]:
    """The registry entry fields of this run's challenger: hashes, data and params versions, metrics, report."""
    gate = load_gate(paths)
    lock = Dvc(paths.root).lock().get("stages", {})
    outs = {out["path"]: out.get("md5") for stage in lock.values() for out in stage.get("outs", [])}
    params = {name: (lock.get(name) or {}).get("params") for name in ("split", "train", "evaluate")}
    report = {}
    if paths.gate_report().is_file():
        report = {
            "markdown": registry.put_report(paths.gate_report().read_text(encoding="utf-8"), ".md"),
            "html": registry.put_report(paths.gate_report(".html").read_text(encoding="utf-8"), ".html"),
        }
    return {
        "model_sha256": gate["challenger"]["model_sha256"],
        "model_md5": outs.get(ProjectPaths.relative().challenger.as_posix()),
        "data_versions": {path: outs.get(path) for path in DATA_OUTPUTS},
        "params_sha256": hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest(),
        "metrics": {key: gate["challenger"][key] for key in ("accuracy", "macro_f1")},
        "gate": {"promote": gate["promote"], "reasons": gate.get("reasons", []), "report": report},
        "compared_with": (gate.get("champion") or {}).get("version"),
        "run_id": run_id,
        "created_at": reg._now(),
    }


def _publish_champion(paths: ProjectPaths) -> str:
    """Copy the challenger to ``models/champion``, ``dvc add`` and push it; return its DVC directory hash."""
    staging = paths.models / ".champion.partial"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(paths.challenger, staging)
    shutil.rmtree(paths.champion, ignore_errors=True)
    staging.rename(paths.champion)
    dvc = Dvc(paths.root)
    target = str(paths.champion.relative_to(paths.root))
    dvc("add", target)
    dvc("push", target + ".dvc")
    outs = yaml.safe_load(reg.champion_dvc_file(paths).read_text(encoding="utf-8"))["outs"]
    return str(outs[0]["md5"])


def run(
    settings: Settings, paths: ProjectPaths, run_id: str | None = None, approved_by: str | None = None
) -> dict[str, Any]:
    """Promote the challenger if :func:`should_promote` allows it; return what happened.

    ``run_id`` defaults to the environment's (``FEEDBACKFLOW_RUN_ID``, or ``manual`` on the CLI); ``approved_by``
    names the human who approved (default: the automatic gate).
    """
    registry = reg.Registry.open(paths.root)
    allowed, reason = should_promote(paths, registry)
    if not allowed:
        return {"promoted": False, "reason": reason, "champion": registry.champion()}
    entry = candidate(paths, registry, run_id or current_run_id())
    entry["model_md5"] = _publish_champion(paths)  # 1. the model is in the remote ...
    by = approved_by or ("gate (automatic)" if not settings.evaluate.require_approval else "unknown approver")
    record = reg.promote(registry, entry, entry["compared_with"], by)  # 2. ... then the pointer moves
    reg.write_local_copies(paths, registry.head())
    return {"promoted": True, "reason": reason, "champion": record}


def record_rejection(paths: ProjectPaths, run_id: str, by: str, reason: str) -> dict[str, Any] | None:
    """Keep a refused challenger in the registry (status ``rejected``) with its gate report; once per model."""
    gate = load_gate(paths)
    if not gate:
        return None
    registry = reg.Registry.open(paths.root)
    state = registry.head()
    sha = gate["challenger"]["model_sha256"]
    if by == "gate" and any(entry["model_sha256"] == sha for entry in state["versions"]):
        return None  # already recorded (an up-to-date evaluate re-reads last night's gate)
    entry = reg.reject(registry, candidate(paths, registry, run_id), by, reason)
    reg.write_local_copies(paths, registry.head())
    return entry
