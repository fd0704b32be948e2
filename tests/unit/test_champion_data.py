"""monitor's drift reference on a worker that never ran the champion's split: fetched by hash before the stage.

With two workers on the default queue, the night that promoted the champion may have run ``split`` on the other
machine; monitor then found the champion's training data in neither its workspace nor its DVC cache and failed (the
Celery test's second run did). The task now fetches it from the remote by the hash the registry records.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from feedbackflow.config import ProjectPaths
from feedbackflow.monitoring.champion import ReferenceUnavailableError, champion_reference, training_file
from feedbackflow.storage import registry as reg
from feedbackflow.storage.dvc import Dvc


def _worker(root: Path, remote: Path) -> ProjectPaths:
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=root, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "remote", "add", "-d", "general", str(remote)], cwd=root, check=True)
    return ProjectPaths(root)


def test_a_worker_that_never_ran_the_champions_split_fetches_its_training_data(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    a, b = _worker(tmp_path / "a", remote), _worker(tmp_path / "b", remote)
    rows = pd.DataFrame({"id": ["r1", "r2"], "text": ["card <PERSON_1a2b> lost", "refund"], "label": ["x", "y"]})
    a.split.mkdir(parents=True)
    rows.to_parquet(a.split / "train.parquet")
    subprocess.run([sys.executable, "-m", "dvc", "add", "-q", "data/split"], cwd=a.root, check=True)
    subprocess.run([sys.executable, "-m", "dvc", "push", "-q"], cwd=a.root, check=True)
    md5 = yaml.safe_load((a.root / "data" / "split.dvc").read_text())["outs"][0]["md5"]

    # worker B has the registry's pointer (as sync_champion writes it) but never ran the champion's split
    b.registry.mkdir(parents=True)
    pointer = {"version": "v1", "model_sha256": "m", "train_data_md5": md5, "run_id": "night-1"}
    (b.registry / "champion.json").write_text(json.dumps(pointer))
    reference = champion_reference(b)
    assert reference is not None
    with pytest.raises(ReferenceUnavailableError, match="not in the DVC cache"):
        training_file(b, reference)

    assert reg.fetch_champion_data(b, Dvc(b.root))
    pd.testing.assert_frame_equal(pd.read_parquet(training_file(b, reference)), rows)
    assert not (b.champion_data).exists(), "fetched into the cache, never checked out"


def test_no_recorded_training_data_fetches_nothing(tmp_path: Path) -> None:
    paths = _worker(tmp_path / "w", tmp_path / "remote")
    paths.registry.mkdir(parents=True)
    (paths.registry / "champion.json").write_text(json.dumps({"version": None}))
    assert not reg.fetch_champion_data(paths, Dvc(paths.root))
    assert not paths.champion_data.with_suffix(".dvc").exists()
