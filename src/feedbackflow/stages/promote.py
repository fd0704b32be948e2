"""promote: when the gate passed, the challenger becomes the champion and the registry records it.

Not a ``dvc.yaml`` stage (see :mod:`feedbackflow.storage.registry`); the champion folder is versioned with
``dvc add`` and pushed so it can be restored by hash anywhere.
"""

from __future__ import annotations

from feedbackflow.config import ProjectPaths
from feedbackflow.io import run_id as current_run_id
from feedbackflow.settings import Settings
from feedbackflow.stages.evaluate import load_gate
from feedbackflow.storage.dvc import Dvc
from feedbackflow.storage.registry import Registry


def should_promote(paths: ProjectPaths) -> tuple[bool, str]:
    """Read the gate file and the registry: promote only a passing challenger that is not already champion."""
    gate = load_gate(paths)
    if not gate:
        return False, "no gate decision yet: run evaluate first"
    if not gate.get("promote"):
        return False, "gate refused: " + "; ".join(gate.get("reasons", []))
    champion = Registry(paths).champion()
    if champion and champion.get("model_sha256") == gate["challenger"]["model_sha256"]:
        return False, f"challenger is already the champion ({champion['version']})"
    return True, "gate passed: " + "; ".join(gate.get("reasons", []))


def run(settings: Settings, paths: ProjectPaths, version_with_dvc: bool = True, run_id: str | None = None) -> dict:
    """Promote the challenger if :func:`should_promote` allows it; return what happened.

    ``run_id`` defaults to the environment's (``FEEDBACKFLOW_RUN_ID``, or ``manual`` on the CLI).
    """
    allowed, reason = should_promote(paths)
    if not allowed:
        return {"promoted": False, "reason": reason, "champion": Registry(paths).champion()}
    record = Registry(paths).promote(load_gate(paths), run_id or current_run_id())
    if version_with_dvc:
        dvc = Dvc(paths.root)
        dvc("add", str(paths.champion.relative_to(paths.root)))
        dvc("push", str(paths.champion.relative_to(paths.root)) + ".dvc")
    return {"promoted": True, "reason": reason, "champion": record}
