"""The grace period ends: ``forget --sweep`` retires the marked versions, deletes their weights, and never leaves the
champion pointing at deleted weights. A real DVC project (no Git) with its cache and a local remote."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from feedbackflow.config import ProjectPaths
from feedbackflow.governance.erasure_models import mark_models
from feedbackflow.governance.erasure_sweep import sweep
from feedbackflow.storage.registry import Registry

AT = "2026-12-06T03:00:00+00:00"
SHARED = b"tokenizer shared by every version"


def _put(folder: Path, data: bytes, suffix: str = "") -> str:
    md5 = hashlib.md5(data).hexdigest() + suffix
    path = folder / "files" / "md5" / md5[:2] / md5[2:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return md5


def _model(stores: list[Path], weights: bytes) -> str:
    """A model folder as DVC stores it (weights, the shared tokenizer, the .dir listing) in every store."""
    for folder in stores:
        entries = [{"relpath": "model.safetensors", "md5": _put(folder, weights)}]
        entries.append({"relpath": "tokenizer.json", "md5": _put(folder, SHARED)})
        md5 = _put(folder, json.dumps(entries).encode(), ".dir")
    return md5


def _present(folder: Path) -> set[str]:
    return {path.parent.name + path.name for path in (folder / "files" / "md5").glob("*/*")}


@pytest.fixture
def project(tmp_path):
    from dvc.repo import Repo

    root = tmp_path / "project"
    root.mkdir()
    Repo.init(str(root), no_scm=True).close()
    remote = tmp_path / "remote"
    config = f"[core]\n    no_scm = True\n    remote = general\n['remote \"general\"']\n    url = {remote}\n"
    (root / ".dvc" / "config").write_text(config, encoding="utf-8")
    stores = [root / ".dvc" / "cache", remote]
    models = {version: _model(stores, f"weights of {version}".encode()) for version in ("v1", "v2", "v3")}
    registry = Registry.open(root)
    versions = [
        {"version": v, "status": s, "model_md5": models[v], "data_versions": {"data/split": f"{v}-split.dir"}}
        for v, s in (("v1", "archived"), ("v2", "archived"), ("v3", "champion"))
    ]
    registry.update(lambda state: {**state, "champion": "v3", "versions": versions})
    mark_models(registry, {"v2-split.dir", "v3-split.dir"}, "REQ-1", AT, "retrain_next_run", 14)
    return root, stores, models


def test_the_sweep_retires_after_the_grace_period_and_moves_the_champion_first(project):
    root, stores, models = project
    before = {folder: _present(folder) for folder in stores}

    early = sweep(ProjectPaths(root), now="2026-12-19T03:00:00+00:00")  # 13 days: still in the grace period

    assert early["retired"] == [] and early["champion"] == "v3"
    assert {folder: _present(folder) for folder in stores} == before, "nothing is deleted before retire_after"

    done = sweep(ProjectPaths(root), now="2026-12-20T03:00:01+00:00")

    state = Registry.open(root).head()
    assert done["retired"] == ["v2", "v3"]
    assert state["champion"] == "v1" == done["champion"], "the champion moved to the unaffected earlier version"
    assert {e["version"]: e["status"] for e in state["versions"]} == {
        "v1": "champion",
        "v2": "retired",
        "v3": "retired",
    }
    assert state["versions"][2]["erasures"][0]["retired_at"] == "2026-12-20T03:00:01+00:00"
    assert [event["action"] for event in state["events"][-2:]] == ["rollback", "retire"]
    for folder in stores:
        left = _present(folder)
        assert models["v2"] not in left and models["v3"] not in left
        assert hashlib.md5(b"weights of v3").hexdigest() not in left
        # the champion's weights, and the tokenizer it shares with the retired versions, are all still there
        assert {models["v1"], hashlib.md5(b"weights of v1").hexdigest(), hashlib.md5(SHARED).hexdigest()} <= left
        assert len(done["weights_deleted"]["general" if folder.name == "remote" else "cache"]["objects"]) == 4

    again = sweep(ProjectPaths(root), now="2026-12-21T03:00:00+00:00")
    assert again["retired"] == [] and not any(store["objects"] for store in again["weights_deleted"].values())


def test_forget_sweep_is_a_command_and_takes_no_request(project, monkeypatch):
    from typer.testing import CliRunner

    from feedbackflow.cli import app
    from tests.helpers import write_params

    root, _, _ = project
    write_params(root)
    monkeypatch.setenv("FEEDBACKFLOW_PROJECT_DIR", str(root))

    done = CliRunner().invoke(app, ["forget", "--sweep"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout[done.stdout.index("{") :])["champion"] == "v3"  # today is inside REQ-1's grace period

    both = CliRunner().invoke(app, ["forget", "--sweep", "--request-id", "REQ-2"])
    neither = CliRunner().invoke(app, ["forget"])
    assert (both.exit_code, neither.exit_code) == (64, 64)
    assert "--sweep takes no --request-id" in both.output and "--request-id is required" in neither.output
