"""Saving a night as a DVC experiment never records a stage that did not run as up to date (real Git and DVC)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from feedbackflow.orchestration.summary import _save_experiment
from feedbackflow.storage.dvc import Dvc


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=root, check=True, capture_output=True
    )


def _project(root: Path) -> Dvc:
    """Two stages, `first` -> `second`, both run once and committed."""
    root.mkdir()
    _git(root, "init", "-q")
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=root, check=True)
    (root / "input.txt").write_text("night 1\n")
    stages = {
        "first": {"cmd": "cp input.txt middle.txt", "deps": ["input.txt"], "outs": ["middle.txt"]},
        "second": {"cmd": "cp middle.txt output.txt", "deps": ["middle.txt"], "outs": ["output.txt"]},
    }
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    dvc = Dvc(root)
    dvc("repro")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "night 1")
    return dvc


def test_a_stage_that_did_not_run_stays_out_of_date_after_the_experiment_is_saved(tmp_path: Path) -> None:
    dvc = _project(tmp_path / "project")
    (dvc.root / "input.txt").write_text("night 2\n")
    dvc("repro", "--single-item", "first")  # tonight stopped after `first` (a dry run, a failed night)
    lock = (dvc.root / "dvc.lock").read_text()

    assert _save_experiment(dvc, "night-2", ran=["first"]) == "night-2"  # commits what ran tonight only
    assert (dvc.root / "dvc.lock").read_text() == lock
    assert _save_experiment(dvc, "night-2b") == "night-2b"  # nothing named: every stage committed, the lock put back

    assert (dvc.root / "dvc.lock").read_text() == lock
    assert "second" in dvc("status", "--json"), "`second` must still be out of date: its input changed"
    listed = subprocess.run(
        [sys.executable, "-m", "dvc", "exp", "list", "--name-only"], cwd=dvc.root, capture_output=True, text=True
    )
    assert "night-2" in listed.stdout
