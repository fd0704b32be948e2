"""Kill-and-resume: `feedbackflow train` killed with SIGKILL mid-training, run again on ANOTHER worker (a separate
project folder that shares only the DVC remote), ends where an uninterrupted run ends (same weights, same metrics),
as an Airflow retry of the train task on a replacement GPU worker would."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from feedbackflow.config import ProjectPaths
from feedbackflow.modeling.card import anonymisation_summary
from tests.helpers import TEMPLATES, build_tiny_bert, copy_stage_inputs, tiny_corpus

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FEEDBACKFLOW = str(Path(sys.executable).parent / "feedbackflow")


def _project(base: Path, name: str, tiny_bert: Path) -> Path:
    """A project holding just what the train stage reads: params, taxonomy and the two split files."""
    project = base / name
    (project / "data" / "split").mkdir(parents=True)
    (project / "data" / "labels.json").write_text(json.dumps(sorted(TEMPLATES)), encoding="utf-8")
    frame = pd.DataFrame(tiny_corpus(90))
    frame.insert(0, "id", [f"m{index}" for index in range(len(frame))])
    validation = frame.iloc[::6]
    frame.drop(validation.index).to_parquet(project / "data" / "split" / "train.parquet")
    validation.to_parquet(project / "data" / "split" / "validation.parquet")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["validate"]["taxonomy"] = "data/labels.json"
    params["train"].update(
        {
            "base_model": str(tiny_bert),
            "epochs": 4,
            "batch_size": 8,
            "learning_rate": 0.003,
            "max_length": 24,
            "checkpoint_steps": 10,  # about 38 steps per epoch: several checkpoints inside each epoch
            "num_threads": 1,
        }
    )
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    (project / ".dvc").mkdir()  # the shared storage: every worker's default DVC remote
    remote = f"['remote \"general\"']\n    url = {base / 'shared-remote'}\n"
    (project / ".dvc" / "config").write_text(f"[core]\n    remote = general\n{remote}")
    return project


def _shared_steps(base: Path) -> list[int]:
    """Steps of the checkpoints in the shared storage (copied there after each save)."""
    return sorted(int(path.stem.split("-")[1]) for path in (base / "shared-remote").glob("checkpoints/*/*.tar"))


def _environment(project: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "FEEDBACKFLOW_PROJECT_DIR": str(project),
        "HF_HUB_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
    }


def _train(project: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [FEEDBACKFLOW, "train"], cwd=project, env=_environment(project), capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def _complete_checkpoints(project: Path) -> list[Path]:
    return sorted((project / ".work" / "train" / "checkpoints").glob("*/checkpoint-*/trainer_state.json"))


def _steps(checkpoints: list[Path]) -> list[int]:
    return [int(path.parent.name.split("-")[1]) for path in checkpoints]


STEPS_PER_EPOCH = 38  # 300 training rows in batches of 8


def _weights(project: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(project / "models" / "challenger" / "model.safetensors")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("resume")
    tiny_bert = build_tiny_bert(base / "tiny-bert")
    straight = _project(base, "uninterrupted", tiny_bert)
    _train(straight)

    killed = _project(base, "killed", tiny_bert)
    log_file = base / "killed-attempt-1.log"
    with log_file.open("w") as log:
        process = subprocess.Popen(
            [FEEDBACKFLOW, "train"], cwd=killed, env=_environment(killed), stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 300
        # kill inside the second epoch, so the resumed run must rebuild that epoch's batch order and skip its start
        while (
            max(_shared_steps(base), default=0) <= STEPS_PER_EPOCH
            and process.poll() is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.02)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)  # what an OOM kill or a lost worker does: no clean-up at all
        first_attempt = process.wait()
    checkpoints_at_kill = _shared_steps(base)
    replacement = _project(base, "replacement", tiny_bert)  # another worker: nothing of the killed one's disk
    retry = _train(replacement)
    return straight, replacement, first_attempt, checkpoints_at_kill, retry


def test_the_first_attempt_died_mid_training(runs):
    _, _, first_attempt, checkpoints_at_kill, _ = runs
    assert first_attempt == -signal.SIGKILL
    assert checkpoints_at_kill, "no checkpoint was written before the kill"


def test_the_retry_on_another_worker_resumed_from_the_last_shared_checkpoint(runs):
    _, killed, _, checkpoints_at_kill, retry = runs
    metrics = json.loads((killed / "reports" / "train" / "metrics.json").read_text())
    step = metrics["resumed_from_step"]
    assert step is not None and step > 0
    assert step == max(checkpoints_at_kill)
    assert STEPS_PER_EPOCH < step < 2 * STEPS_PER_EPOCH, "the kill was meant to land inside the second epoch"
    assert f"resuming from checkpoint step {step}" in retry.stderr
    assert not (killed / ".work" / "train" / "checkpoints").exists() or not any(
        (killed / ".work" / "train" / "checkpoints").iterdir()
    ), "checkpoints must be removed after a successful stage"
    assert not _shared_steps(killed.parent), "the shared checkpoints must be removed after a successful stage"


def test_resumed_run_equals_the_uninterrupted_one(runs):
    straight, killed, *_ = runs
    expected, resumed = _weights(straight), _weights(killed)
    assert expected.keys() == resumed.keys()
    for name, tensor in expected.items():
        assert (tensor - resumed[name]).abs().max().item() <= 1e-5, name
    first = json.loads((straight / "reports" / "train" / "metrics.json").read_text())
    second = json.loads((killed / "reports" / "train" / "metrics.json").read_text())
    for key in ("validation_accuracy", "validation_macro_f1", "best_epoch", "epochs_run"):
        assert second[key] == first[key], key
    assert second["train_loss"] == pytest.approx(first["train_loss"], abs=1e-5)
    history = [pd.read_csv(project / "reports" / "train" / "history.csv") for project in (straight, killed)]
    pd.testing.assert_frame_equal(history[0], history[1], atol=1e-5)
    assert first["validation_accuracy"] >= 0.75  # it learned, so equal weights are not equal noise


def test_artifacts_are_readable(runs):
    straight, *_ = runs
    model = straight / "models" / "challenger"
    card = (model / "README.md").read_text()
    for section in ("## Data version", "## Training parameters", "## Intended use", "## Limits", "## Anonymisation"):
        assert section in card
    train_md5 = _md5(straight / "data" / "split" / "train.parquet")
    assert train_md5 in card
    texts = pd.read_parquet(straight / "data" / "split" / "train.parquet")["text"]
    assert not [text for text in texts if text in card], "the model card must not quote the data"
    assert json.loads((model / "tokenizer_config.json").read_text())["model_max_length"] == 24
    assert not (model / "training_args.bin").exists()
    png = (straight / "reports" / "train" / "confusion_matrix.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    history = pd.read_csv(straight / "reports" / "train" / "history.csv")
    assert list(history.columns) == [
        "epoch",
        "train_loss",
        "validation_loss",
        "validation_accuracy",
        "validation_macro_f1",
    ]
    assert history["epoch"].tolist() == list(range(1, len(history) + 1))


def _md5(path: Path) -> str:
    import hashlib

    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def _dvc_project(base: Path, tiny_bert: Path) -> Path:
    """The same inputs inside a Git + DVC project with the real dvc.yaml, so the stage runs as Airflow runs it."""
    project = _project(base, "dvc", tiny_bert)
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(ROOT / name, project / name)
    copy_stage_inputs(project)
    for name in ("config", ".gitignore"):  # the real config: remotes in storage/ beside the project
        shutil.copy(ROOT / ".dvc" / name, project / ".dvc" / name)
    report = {"rows": 360, "rows_changed": 0, "entities": {"PERSON": 0}}
    audit = {"entities": {"PERSON": 0}, "operators": {"PERSON": "placeholder"}, "key_id": None, "config_hash": "0" * 64}
    card = ProjectPaths(project).anonymise_card  # train's dependency: the model card's lines on the anonymisation
    card.parent.mkdir(parents=True)
    card.write_text(json.dumps({"anonymisation": anonymisation_summary(report, audit)}), encoding="utf-8")
    for command in (["git", "init", "-q"], ["git", "add", "-A"]):
        subprocess.run(command, cwd=project, check=True)
    return project


@pytest.fixture(scope="module")
def dvc_retry(runs, tmp_path_factory):
    straight = runs[0]
    tiny_bert = Path(yaml.safe_load((straight / "params.yaml").read_text())["train"]["base_model"])
    project = _dvc_project(tmp_path_factory.mktemp("dvc-resume"), tiny_bert)
    dvc = [str(Path(sys.executable).parent / "dvc"), "repro", "--single-item", "train"]
    env = {**_environment(project), "DVC_NO_ANALYTICS": "1"}
    # its own session, killed as a whole: what Airflow does to a task's process group when it kills the task
    process = subprocess.Popen(
        dvc, cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + 300
    while not _complete_checkpoints(project) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    killed = process.wait()
    retry = subprocess.run(dvc, cwd=project, env=env, capture_output=True, text=True, check=False)
    return straight, project, killed, retry


def test_dvc_repro_retry_resumes_and_matches(dvc_retry):
    straight, project, killed, retry = dvc_retry
    assert killed == -signal.SIGKILL
    assert retry.returncode == 0, retry.stdout[-3000:] + retry.stderr[-3000:]
    output = retry.stdout + retry.stderr
    step = json.loads((project / "reports" / "train" / "metrics.json").read_text())["resumed_from_step"]
    assert step and f"resuming from checkpoint step {step}" in output
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert {out["path"] for out in lock["stages"]["train"]["outs"]} >= {
        "models/challenger",
        "reports/train/confusion_matrix.png",
    }
    expected, resumed = _weights(straight), _weights(project)
    assert max((expected[name] - resumed[name]).abs().max().item() for name in expected) <= 1e-5
