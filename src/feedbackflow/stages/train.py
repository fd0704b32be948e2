"""train: fine-tune the base model on the train split; the challenger lands in ``models/challenger``.

Checkpoints go to ``.work/train/checkpoints/<fingerprint>/`` (outside DVC's outputs), where the fingerprint hashes
the split files, the taxonomy, the ``train`` params, the seed and the base model. A task killed mid-training and
retried with the same inputs resumes from the last checkpoint; changed inputs start afresh. With
``train.shared_checkpoints`` each checkpoint is also copied to the default DVC remote (the storage every worker
shares, see :mod:`feedbackflow.storage.checkpoints`), so a retry on another worker resumes too. The checkpoints are
removed once the stage has written its outputs.

With ``train.launcher`` set to ``torchrun`` or ``accelerate`` and ``train.num_gpus`` above one, the stage starts
itself again under that launcher, one process per GPU (DDP through the Trainer); rank 0 writes the artifacts.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import ConfigError, FeedbackflowError
from feedbackflow.io import read_json, write_json
from feedbackflow.modeling.card import anonymisation_summary, confusion_matrix_png, file_md5, model_card
from feedbackflow.modeling.model import resolve_base_model
from feedbackflow.modeling.predict import model_digest
from feedbackflow.modeling.training import TrainResult, fine_tune, is_main_process
from feedbackflow.modeling.warm_start import StartPoint, start_point
from feedbackflow.modeling.window import select_window
from feedbackflow.settings import Settings, TrainSettings
from feedbackflow.storage.checkpoints import CheckpointMirror
from feedbackflow.storage.registry import read_pointer
from feedbackflow.taxonomy import load_taxonomy

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ["epoch", "train_loss", "validation_loss", "validation_accuracy", "validation_macro_f1"]


def launch_command(settings: TrainSettings, python: str = sys.executable) -> list[str] | None:
    """The command that reruns this stage with one process per GPU, or None to train in this process.

    ``torchrun`` and ``accelerate launch`` both start ``num_gpus`` copies of ``feedbackflow train`` on this machine;
    the Trainer inside each one joins the process group (DDP), so nothing else changes.
    """
    if settings.launcher == "python" or settings.num_gpus == 1:
        return None
    if settings.launcher == "torchrun":
        launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={settings.num_gpus}"]
    else:
        launcher = ["-m", "accelerate.commands.launch", "--multi_gpu", f"--num_processes={settings.num_gpus}"]
    return [python, *launcher, "-m", "feedbackflow", "train"]


def fingerprint(files: dict[str, str], settings: TrainSettings, seed: int, base_model: str) -> str:
    """A short hash of everything that determines a training run; it names the checkpoint folder.

    Args:
        files: input file name -> content hash (split files, taxonomy).
        settings: the ``train`` params.
        seed: ``base.seed``.
        base_model: the resolved base model (a folder's ``config.json`` is hashed too, so a replaced model counts).
    """
    model_config = Path(base_model) / "config.json"
    payload = {
        "files": files,
        "train": settings.model_dump(),
        "seed": seed,
        "base_model": base_model,
        "base_model_config": file_md5(model_config) if model_config.is_file() else None,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def teacher_folder(name: str, root: Path) -> Path:
    """A ``train.teacher`` entry as a folder holding a fine-tuned classifier (absolute, or relative to the project).

    Raises:
        ConfigError: there is no ``config.json`` and ``model.safetensors`` in that folder.
    """
    folder = Path(name) if Path(name).is_absolute() else root / name
    if not ((folder / "config.json").is_file() and (folder / "model.safetensors").is_file()):
        raise ConfigError(f"train.teacher: {name} is not a folder with a fine-tuned classifier (config.json, weights)")
    return folder.resolve()


def run(settings: Settings, paths: ProjectPaths) -> dict:
    """Train on ``data/split/train.parquet``, score each epoch on the validation split, save the challenger.

    Writes ``models/challenger`` (weights, tokenizer, label map, metrics, ``calibration.json`` with the temperature
    and the ``unknown`` threshold, model card ``README.md``) and
    ``reports/train/`` (``metrics.json``, ``history.csv``, ``confusion_matrix.png``).

    Raises:
        ConfigError: the base model cannot be found, or more GPUs are asked for than are visible.
    """
    command = launch_command(settings.train)
    if command is not None and "LOCAL_RANK" not in os.environ:
        return _launch(command, settings.train.num_gpus, paths)

    base_model = resolve_base_model(settings.train.base_model, paths.root)  # fail before reading any data
    teachers = [teacher_folder(name, paths.root) for name in settings.train.teacher]
    train_settings = settings.train.model_copy(update={"teacher": [str(folder) for folder in teachers]})
    labels = load_taxonomy(paths.root / settings.validate_.taxonomy)
    train, validation, data_version = _read_splits(paths)
    train, start, training_set = _training_set(settings, paths, train, base_model, labels)
    inputs = {**data_version, settings.validate_.taxonomy: file_md5(paths.root / settings.validate_.taxonomy)}
    inputs.update({f"teacher:{folder}": model_digest(folder) for folder in teachers})  # a retrained teacher counts
    inputs.update({"champion": start.report["champion_sha256"]} if start.report["warm_start"] else {})
    key = fingerprint(inputs, train_settings, settings.base.seed, start.model)
    checkpoints = paths.train_checkpoints
    mirror = _prepare_checkpoints(settings, paths, checkpoints, key)
    result = fine_tune(
        base_model=start.model,
        labels=labels,
        train=(train["text"].tolist(), train["label"].tolist()),
        validation=(validation["text"].tolist(), validation["label"].tolist()),
        settings=train_settings,
        seed=settings.base.seed,
        output_dir=paths.challenger,
        checkpoint_dir=checkpoints / key,
        on_checkpoint=mirror.upload if mirror is not None else None,
        oos=settings.oos,
    )
    result.metrics["training_set"] = training_set
    if teachers:  # which teachers, by weights digest: the params name only their folders
        result.metrics["teachers"] = {
            name: model_digest(folder) for name, folder in zip(settings.train.teacher, teachers, strict=True)
        }
    if not is_main_process():
        return result.metrics

    _write_reports(settings, paths, labels, data_version, result)
    shutil.rmtree(checkpoints / key, ignore_errors=True)
    if mirror is not None:
        mirror.clear()
    return result.metrics


def _training_set(
    settings: Settings, paths: ProjectPaths, train: pd.DataFrame, base_model: str, labels: list[str]
) -> tuple[pd.DataFrame, StartPoint, dict]:
    """The rows ``train.window`` selects, the weights to start from and what both decided (the train report)."""
    window = settings.train.window
    selection = select_window(train, window, settings.base.seed)
    if window.warm_start:
        start = start_point(base_model, paths.champion, read_pointer(paths), labels)
    else:
        start = StartPoint(base_model, {"warm_start": False, "reason": "train.window.warm_start is off"})
    log.info(
        "training set: %d of %d rows (%d in the window, %d for the label minimum, %d replayed); start: %s",
        selection.report["rows_selected"],
        selection.report["rows_available"],
        selection.report["rows_in_window"],
        selection.report["rows_added_for_label_minimum"],
        selection.report["replay_rows"],
        start.report.get("champion_version") or "base model",
    )
    return selection.rows, start, {**selection.report, **start.report}


def _read_splits(paths: ProjectPaths) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """The train and validation splits and their files' MD5s (the model card's data version)."""
    train_file, validation_file = paths.split / "train.parquet", paths.split / "validation.parquet"
    train = pd.read_parquet(train_file)
    validation = pd.read_parquet(validation_file)
    data_version = {path.relative_to(paths.root).as_posix(): file_md5(path) for path in (train_file, validation_file)}
    return train, validation, data_version


def _prepare_checkpoints(
    settings: Settings, paths: ProjectPaths, checkpoints: Path, key: str
) -> CheckpointMirror | None:
    """Clear other inputs' checkpoints and the old challenger; bring back shared checkpoints of these inputs."""
    mirror = None
    if settings.train.shared_checkpoints:
        mirror = CheckpointMirror.of_project(paths.root, key, checkpoints / key)
    if is_main_process():
        _remove_stale(checkpoints, keep=key)
        shutil.rmtree(paths.challenger, ignore_errors=True)
        if mirror is not None:
            mirror.restore()  # a killed attempt on another worker left them in shared storage
    return mirror


def _write_reports(
    settings: Settings, paths: ProjectPaths, labels: list[str], data_version: dict[str, str], result: TrainResult
) -> None:
    """``reports/train/`` (metrics, history, confusion matrix) and the challenger's model card."""
    reports = paths.stage_reports("train")
    write_json(reports / "metrics.json", result.metrics)
    with (reports / "history.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=HISTORY_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(result.history)
    confusion_matrix_png(
        result.validation_truth,
        result.validation_predicted,
        labels,
        reports / "confusion_matrix.png",
        title=f"Validation confusion matrix (row-normalised, {len(result.validation_truth)} messages)",
    )
    anonymisation = (read_json(paths.anonymise_card, {}) or {}).get("anonymisation")
    card = model_card(
        base_model=settings.train.base_model,
        labels=labels,
        data_version=data_version,
        params=settings.train.model_dump(),
        seed=settings.base.seed,
        metrics=result.metrics,
        history=result.history,
        calibration=result.calibration,
        anonymisation=anonymisation or anonymisation_summary(None, None),  # no card.json: says not anonymised
    )
    (paths.challenger / "README.md").write_text(card, encoding="utf-8")


def _remove_stale(checkpoints: Path, keep: str) -> None:
    """Drop checkpoint folders of other inputs: they can never be resumed by this run."""
    if checkpoints.is_dir():
        for folder in checkpoints.iterdir():
            if folder.name != keep:
                log.info("removing checkpoints of other inputs: %s", folder)
                shutil.rmtree(folder, ignore_errors=True)


def _launch(command: list[str], num_gpus: int, paths: ProjectPaths) -> dict:
    """Run the stage under a multi-process launcher and return what rank 0 wrote."""
    import torch

    visible = torch.cuda.device_count()
    if visible < num_gpus:
        raise ConfigError(f"train.num_gpus is {num_gpus} but this worker sees {visible} CUDA GPU(s)")
    log.info("launching %d training processes: %s", num_gpus, " ".join(command))
    done = subprocess.run(command, cwd=paths.root, check=False)
    if done.returncode != 0:
        raise FeedbackflowError(f"multi-GPU training ({' '.join(command)}) failed with exit code {done.returncode}")
    return read_json(paths.stage_reports("train") / "metrics.json", default={}) or {}
