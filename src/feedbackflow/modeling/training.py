"""Fine-tune a sequence classifier with Hugging Face's Trainer, resumably.

The Trainer already provides the optimiser (fused AdamW), the warmup and decay schedule, mixed precision, gradient
accumulation, ``torch.compile``, DDP under ``torchrun``/``accelerate launch``, checkpointing and early stopping, so it
is configured rather than rewritten. What this module adds:

* dynamic padding with length-grouped batches whose order depends only on (seed, epoch), so a run resumed from a
  mid-epoch checkpoint sees exactly the batches an uninterrupted run would have seen;
* checkpoints every ``train.checkpoint_steps`` optimiser steps and at every epoch end, in a folder named by the
  inputs' fingerprint: a retried task resumes from the last complete one;
* the loss and optimiser of ``modeling.recipe`` (class weights, label smoothing, R-Drop, distillation from a
  teacher's logits, layer-wise learning-rate decay), per-epoch history and readable progress lines for Airflow logs.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from feedbackflow.modeling.metrics import classification_metrics
from feedbackflow.modeling.model import pick_device, pick_precision
from feedbackflow.modeling.oos import CALIBRATION_FILE, fit_calibration
from feedbackflow.modeling.recipe import WeightAverage, classification_loss, ensemble_logits
from feedbackflow.settings import OutOfScopeSettings, TrainSettings

log = logging.getLogger(__name__)

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


@dataclass
class TrainResult:
    """What one fine-tuning run produced."""

    metrics: dict[str, Any]
    history: list[dict[str, float]]
    validation_truth: list[int] = field(default_factory=list)
    validation_predicted: list[int] = field(default_factory=list)
    calibration: dict[str, Any] = field(default_factory=dict)


def is_main_process() -> bool:
    """False in the extra processes of a multi-GPU (DDP) run: only rank 0 writes artifacts."""
    return int(os.environ.get("RANK", "0")) == 0


def last_checkpoint(folder: Path) -> Path | None:
    """The newest complete Trainer checkpoint in ``folder`` (``checkpoint-<step>``), or None.

    ``trainer_state.json`` is the last file the Trainer writes into a checkpoint, so a folder without it is a save
    that was killed half-way and is skipped.
    """
    if not folder.is_dir():
        return None
    complete = [
        (int(match.group(1)), path)
        for path in folder.iterdir()
        if (match := CHECKPOINT.match(path.name)) and (path / "trainer_state.json").is_file()
    ]
    return max(complete)[1] if complete else None


def class_weights(label_ids: list[int], num_labels: int) -> list[float]:
    """Inverse-frequency ("balanced") weights: ``n / (k * count)`` for each of the k labels present, 1.0 if absent."""
    counts = np.bincount(np.asarray(label_ids, dtype=np.int64), minlength=num_labels)
    present = int((counts > 0).sum())
    return [len(label_ids) / (present * count) if count else 1.0 for count in counts.tolist()]


def non_padding_fraction(lengths: list[int], batches: list[list[int]], multiple: int | None = None) -> float:
    """Share of the tokens in padded batches that are real tokens (1.0: no padding at all)."""
    real = padded = 0
    for batch in batches:
        longest = max(lengths[index] for index in batch)
        if multiple:
            longest = math.ceil(longest / multiple) * multiple
        real += sum(lengths[index] for index in batch)
        padded += longest * len(batch)
    return real / padded if padded else 1.0


def fine_tune(
    base_model: str,
    labels: list[str],
    train: tuple[list[str], list[str]],
    validation: tuple[list[str], list[str]],
    settings: TrainSettings,
    seed: int,
    output_dir: Path,
    checkpoint_dir: Path,
    on_checkpoint: Callable[[Path], None] | None = None,
    *,
    oos: OutOfScopeSettings,
    teacher_logits: Any = None,
) -> TrainResult:
    """Fine-tune ``base_model`` on ``train`` (texts, labels) and save it to ``output_dir``.

    When ``checkpoint_dir`` already holds a complete checkpoint (a previous attempt with the same inputs was killed),
    training resumes from it; the result equals an uninterrupted run's within floating-point noise.

    Args:
        base_model: a folder or hub name loadable by ``from_pretrained``.
        labels: the label taxonomy; its order fixes the class ids, so models stay comparable across nights.
        train: training texts and their labels.
        validation: validation texts and labels, scored after every epoch (early stopping, best model).
        settings: the ``train`` section of ``params.yaml``.
        seed: the run's random seed (weights of the new head, batch order, dropout).
        output_dir: receives ``model.safetensors``, the tokenizer (its ``model_max_length`` is ``train.max_length``,
            so inference truncates as training did), ``label_map.json`` and ``train_metrics.json``.
        checkpoint_dir: where checkpoints go; name it after the inputs so that changed inputs start afresh.
        on_checkpoint: called with each complete checkpoint's folder (e.g. to copy it to shared storage).
        oos: the ``oos`` section: rows labelled ``oos.label`` (train and validation) are not taught as an intent
            unless the taxonomy lists that label; they are the negatives of the ``unknown`` threshold, which is
            fitted with the temperature on the validation split after training and saved as ``calibration.json``.
        teacher_logits: soft targets for distillation, one row per ``train`` row in the order of ``labels``; None:
            the mean logits of ``train.teacher``'s folders when that is set (no distillation when it is empty).

    Returns:
        Metrics, the per-epoch history (train and validation loss, validation accuracy and macro-F1) and the best
        model's validation predictions (for the confusion matrix).
    """
    import torch
    from transformers import set_seed

    if settings.num_threads:
        torch.set_num_threads(settings.num_threads)
    device = pick_device(settings.device)
    precision = pick_precision(device)
    set_seed(seed)
    label2id = {label: index for index, label in enumerate(labels)}
    tokenizer, model = _load_base_model(base_model, labels, label2id)
    teacher_logits = _teacher_logits(teacher_logits, settings, train[0], labels, device)
    data = _prepare(tokenizer, settings.max_length, label2id, train, validation, oos.label, teacher_logits)
    trainer = _build_trainer(model, tokenizer, data, settings, seed, (device, precision), checkpoint_dir, on_checkpoint)
    resumed_step, seconds = _run(trainer, checkpoint_dir)
    history = _history(trainer.state.log_history)
    scores, predicted, calibration = _evaluate(trainer, data, oos, len(labels))
    run = _Run(device, precision, seed, resumed_step, seconds, history, trainer.state.log_history)
    metrics = _metrics(settings, data, run, scores, calibration)
    if trainer.is_world_process_zero():
        _save(trainer, tokenizer, output_dir, settings.max_length, label2id, metrics, calibration.to_dict())
    log.info("trained on %d rows in %.1fs: %s", len(data.train_set), seconds, metrics)
    return TrainResult(metrics, history, list(data.validation_set.labels), predicted, calibration.to_dict())


@dataclass
class _Prepared:
    """The encoded splits of one run and what was held out of them."""

    tokenizer: Any
    max_length: int
    label2id: dict[str, int]
    train_set: Any
    validation_set: Any
    negatives: list[str]
    distilled: bool

    @property
    def lengths(self) -> list[int]:
        """The token count of every training row."""
        return [len(ids) for ids in self.train_set.encodings["input_ids"]]

    def encode(self, texts: list[str], names: list[str] | None = None) -> Any:
        """Tokenize; ``names`` None marks out-of-scope rows (label -100: the loss ignores them)."""
        return _encode(self.tokenizer, self.max_length, self.label2id, texts, names)


@dataclass
class _Run:
    """Facts of the training run itself, for the metrics."""

    device: str
    precision: str | None
    seed: int
    resumed_step: int | None
    seconds: float
    history: list[dict[str, float]]
    log_history: list[dict[str, float]]


def _load_base_model(base_model: str, labels: list[str], label2id: dict[str, int]) -> tuple[Any, Any]:
    """The tokenizer and a classifier with a new head of ``len(labels)`` classes, in fp32."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model)
    model = AutoModelForSequenceClassification.from_pretrained(
        base_model,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id=label2id,
        ignore_mismatched_sizes=True,
        # master weights in fp32 whatever the checkpoint's dtype (transformers 5 loads dtype="auto" by default);
        # mixed precision comes from autocast, an fp16/bf16 checkpoint trained as is overflows
        dtype=torch.float32,
    )
    return tokenizer, model


def _teacher_logits(
    given: Any, settings: TrainSettings, texts: list[str], labels: list[str], device: str
) -> np.ndarray | None:
    """The distillation targets: ``given``, else the mean logits of ``train.teacher``'s folders, else None."""
    teachers = [Path(folder) for folder in settings.teacher]
    if given is None and teachers:
        log.info("distillation: computing the logits of %d teacher model(s) on %d rows", len(teachers), len(texts))
        given = ensemble_logits(teachers, texts, labels, device=device)
    if given is None:
        return None
    logits = np.asarray(given, dtype=np.float32)
    if logits.shape != (len(texts), len(labels)):
        raise ValueError(f"teacher logits have shape {logits.shape}, want {(len(texts), len(labels))}")
    return logits


def _encode(
    tokenizer: Any, max_length: int, label2id: dict[str, int], texts: list[str], names: list[str] | None = None
) -> Any:
    """Tokenize ``texts``; ``names`` None marks out-of-scope rows (label -100: the loss ignores them)."""
    from feedbackflow.modeling.trainer import EncodedTexts

    encodings = tokenizer(texts, truncation=True, max_length=max_length)
    return EncodedTexts(dict(encodings), [label2id[name] for name in names] if names else [-100] * len(texts))


def _prepare(
    tokenizer: Any,
    max_length: int,
    label2id: dict[str, int],
    train: tuple[list[str], list[str]],
    validation: tuple[list[str], list[str]],
    oos_label: str,
    teacher_logits: np.ndarray | None,
) -> _Prepared:
    """Hold the out-of-scope rows out, encode both splits and attach the teacher's logits of the rows kept."""
    in_scope, negatives = _separate(train, validation, label2id, oos_label)
    train_set = _encode(tokenizer, max_length, label2id, *in_scope[0])
    validation_set = _encode(tokenizer, max_length, label2id, *in_scope[1])
    if teacher_logits is not None:
        kept = np.array([not _is_negative(name, label2id, oos_label) for name in train[1]], dtype=bool)
        train_set.teacher_logits = teacher_logits[kept]
    return _Prepared(tokenizer, max_length, label2id, train_set, validation_set, negatives, teacher_logits is not None)


def _pad_multiple(device: str) -> int | None:
    """On GPUs every new batch shape costs an attention-plan build: rounding lengths to 8 cuts the shapes ~4x."""
    return 8 if device == "cuda" else None


def _training_arguments(
    settings: TrainSettings, seed: int, device: str, precision: str | None, checkpoint_dir: Path
) -> Any:
    """The Trainer's arguments for ``settings``: epoch evaluation and saves, best model at the end, resumable."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(checkpoint_dir),
        num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.eval_batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        learning_rate=settings.learning_rate,
        weight_decay=settings.weight_decay,
        warmup_steps=settings.warmup_ratio,
        lr_scheduler_type=settings.lr_scheduler,
        optim="adamw_torch_fused",
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,  # the best epoch's checkpoint is kept on top of the newest
        load_best_model_at_end=True,
        metric_for_best_model=settings.early_stopping_metric,
        greater_is_better=True,
        restore_callback_states_from_checkpoint=True,  # early stopping's patience counter survives a resume
        logging_strategy="steps",
        logging_steps=settings.checkpoint_steps,
        report_to="none",
        seed=seed,
        data_seed=seed,
        full_determinism=settings.full_determinism,
        use_cpu=device == "cpu",
        bf16=precision == "bf16",
        fp16=precision == "fp16",  # the Trainer adds the gradient scaler fp16 needs
        tf32=True if precision == "bf16" else None,
        torch_compile=settings.torch_compile,
        dataloader_num_workers=0,
        remove_unused_columns=False,  # keeps the teacher's logits in the batch (compute_loss takes them out)
        disable_tqdm=not sys.stderr.isatty(),
    )


def _compute_metrics(label_count: int, prediction: Any) -> dict[str, float]:
    """Validation accuracy and macro-F1 of the Trainer's predictions."""
    predicted = np.argmax(prediction.predictions, axis=-1)
    scores = classification_metrics(list(prediction.label_ids), list(predicted), list(range(label_count)))
    return {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}


def _plain_loss(
    loss_weights: Any, label_smoothing: float, outputs: Any, targets: Any, num_items_in_batch: Any = None
) -> Any:
    """The weighted, smoothed cross-entropy the Trainer uses where ``compute_loss`` adds nothing."""
    return classification_loss(outputs["logits"], targets, loss_weights, label_smoothing, num_items_in_batch)


def _build_trainer(
    model: Any,
    tokenizer: Any,
    data: _Prepared,
    settings: TrainSettings,
    seed: int,
    hardware: tuple[str, str | None],
    checkpoint_dir: Path,
    on_checkpoint: Callable[[Path], None] | None,
) -> Any:
    """A :class:`~feedbackflow.modeling.trainer.ResumableTrainer` with the recipe's loss, averaging and callbacks."""
    import torch
    from transformers import DataCollatorWithPadding, EarlyStoppingCallback

    from feedbackflow.modeling.trainer import Averaging, Checkpoints, ProgressLog, ResumableTrainer

    device, precision = hardware
    loss_weights = None
    if settings.class_weights == "balanced":
        loss_weights = torch.tensor(class_weights(data.train_set.labels, len(data.label2id)), dtype=torch.float32)
    average = WeightAverage(settings.ema_decay) if settings.ema_decay else None
    callbacks: list[Any] = [ProgressLog(), Averaging(average)]
    if settings.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=settings.early_stopping_patience))
    callbacks.append(
        Checkpoints(settings.checkpoint_steps, checkpoint_dir, on_checkpoint if is_main_process() else None)
    )
    return ResumableTrainer(
        recipe=settings,
        lengths=data.lengths,
        loss_weights=loss_weights,
        average=average,
        checkpoint_dir=checkpoint_dir,
        model=model,
        args=_training_arguments(settings, seed, device, precision, checkpoint_dir),
        train_dataset=data.train_set,
        eval_dataset=data.validation_set,
        data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=_pad_multiple(device)),
        compute_metrics=functools.partial(_compute_metrics, len(data.label2id)),
        compute_loss_func=functools.partial(_plain_loss, loss_weights, settings.label_smoothing),
        callbacks=callbacks,
    )


def _run(trainer: Any, checkpoint_dir: Path) -> tuple[int | None, float]:
    """Train, resuming from the newest complete checkpoint; returns the step resumed from and the seconds taken."""
    resume = last_checkpoint(checkpoint_dir)
    resumed_step = int(resume.name.split("-")[1]) if resume is not None else None
    if resume is not None:
        log.info("resuming from checkpoint step %s (%s)", resumed_step, resume)
    else:
        log.info("no checkpoint in %s: training from the start", checkpoint_dir)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    return resumed_step, time.perf_counter() - started


def _evaluate(trainer: Any, data: _Prepared, oos: OutOfScopeSettings, label_count: int) -> tuple[dict, list, Any]:
    """The best model's validation scores and predictions, and its calibration fitted with the held-out negatives."""
    final = trainer.predict(cast(Any, data.validation_set), metric_key_prefix="eval")
    predicted = np.argmax(final.predictions, axis=-1).tolist()
    negative_logits: Any = np.zeros((0, label_count), dtype=np.float32)
    if data.negatives:
        trainer.compute_metrics = None  # no intent to score: only their logits are needed
        negative_logits = trainer.predict(cast(Any, data.encode(data.negatives)), metric_key_prefix="oos").predictions
    calibration = fit_calibration(
        np.concatenate([np.asarray(final.predictions), np.asarray(negative_logits)]),
        [*data.validation_set.labels, *[-1] * len(data.negatives)],
        method=oos.method,
        target_precision=oos.target_precision,
        oos_label=oos.label,
        oos_class_id=data.label2id.get(oos.label),
        bins=oos.calibration_bins,
    )
    return final.metrics or {}, predicted, calibration


def _padding_share(settings: TrainSettings, lengths: list[int], seed: int, pad_multiple: int | None) -> float:
    """The real-token share of the batches the sampler draws for the first epoch."""
    from feedbackflow.modeling.trainer import EpochSeededLengthSampler

    sampler = EpochSeededLengthSampler(settings.batch_size * settings.gradient_accumulation_steps, lengths, seed)
    order = list(sampler)
    batches = [order[start : start + settings.batch_size] for start in range(0, len(order), settings.batch_size)]
    return non_padding_fraction(lengths, batches, pad_multiple)


def _metrics(settings: TrainSettings, data: _Prepared, run: _Run, scores: dict, calibration: Any) -> dict[str, Any]:
    """``train_metrics.json``: what ran, how it scored on validation, its calibration and its speed."""
    lengths, seconds = data.lengths, run.seconds
    epochs_run = len(run.history)
    best_metric = f"validation_{settings.early_stopping_metric}"
    best = max(run.history, key=lambda row: row.get(best_metric, -1.0)) if run.history else {}
    samples = len(data.train_set) * epochs_run
    chosen = calibration.validation["methods"][calibration.method]
    return {
        "device": run.device,
        "precision": run.precision,
        "train_rows": len(data.train_set),
        "validation_rows": len(data.validation_set),
        "epochs": settings.epochs,
        "epochs_run": epochs_run,
        "best_epoch": best.get("epoch"),
        "stopped_early": epochs_run < math.ceil(settings.epochs),
        "resumed_from_step": run.resumed_step,
        "train_loss": _train_loss(run.log_history),
        "validation_accuracy": round(float(scores["eval_accuracy"]), 6),
        "validation_macro_f1": round(float(scores["eval_macro_f1"]), 6),
        "oos_rows_held_out": len(data.negatives),
        "distilled": data.distilled,
        "weight_average_decay": settings.ema_decay or None,
        "temperature": calibration.temperature,
        "oos_method": calibration.method,
        "oos_threshold": calibration.to_dict()["threshold"],
        **{f"validation_{key}": calibration.validation[key] for key in ("ece_before", "ece_after")},
        **{f"validation_{key}": chosen[key] for key in ("in_scope_coverage", "oos_recall")},
        "validation_precision_at_threshold": chosen["precision"],
        "non_padding_token_fraction": round(_padding_share(settings, lengths, run.seed, _pad_multiple(run.device)), 4),
        "train_seconds": round(seconds, 2),
        "samples_per_second": round(samples / seconds, 2) if seconds > 0 else None,
        "tokens_per_second": round(sum(lengths) * epochs_run / seconds, 1) if seconds > 0 else None,
    }


def _save(
    trainer: Any,
    tokenizer: Any,
    output_dir: Path,
    max_length: int,
    label2id: dict[str, int],
    metrics: dict[str, Any],
    calibration: dict[str, Any],
) -> None:
    """Write the model, its tokenizer, the label map, the metrics and the calibration to ``output_dir``."""
    output_dir.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(output_dir))
    # the Trainer also pickles its arguments there: not needed to load the model, and no pickles in artifacts
    (output_dir / "training_args.bin").unlink(missing_ok=True)
    # inference must truncate where training did; the tokenizer carries that limit with the model
    tokenizer.model_max_length = max_length
    tokenizer.save_pretrained(str(output_dir))
    (output_dir / "label_map.json").write_text(json.dumps(label2id, indent=2) + "\n", encoding="utf-8")
    (output_dir / "train_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    (output_dir / CALIBRATION_FILE).write_text(json.dumps(calibration, indent=2) + "\n", encoding="utf-8")


def _separate(
    train: tuple[list[str], list[str]],
    validation: tuple[list[str], list[str]],
    label2id: dict[str, int],
    oos_label: str,
) -> tuple[tuple[tuple[list[str], list[str]], tuple[list[str], list[str]]], list[str]]:
    """Split off the out-of-scope rows (``oos_label`` outside the taxonomy) of both splits.

    They never reach the classifier's training, so those of the train split are as unseen as the validation ones:
    all of them are negatives for the ``unknown`` threshold. Other labels stay (an unknown one fails loudly later).
    """
    negatives: list[str] = []
    kept = []
    for texts, names in (train, validation):
        outside = [_is_negative(name, label2id, oos_label) for name in names]
        inside = [(text, name) for text, name, out in zip(texts, names, outside, strict=True) if not out]
        negatives += [text for text, out in zip(texts, outside, strict=True) if out]
        kept.append(([text for text, _ in inside], [name for _, name in inside]))
    return (kept[0], kept[1]), negatives


def _is_negative(name: str, label2id: dict[str, int], oos_label: str) -> bool:
    """An out-of-scope row: labelled ``oos_label`` where the taxonomy has no such intent."""
    return name == oos_label and name not in label2id


def _epoch_of(entry: dict[str, float]) -> int:
    """The 1-based epoch a log entry belongs to (an entry logged at the end of epoch 2 says ``epoch: 2.0``)."""
    return max(1, math.ceil(entry.get("epoch", 0) - 1e-6))


def _loss_segments(log_history: list[dict[str, float]]) -> list[tuple[int, int, float]]:
    """(epoch, optimiser steps, mean loss) of each logged stretch of training."""
    segments, previous = [], 0
    for entry in log_history:
        if "loss" in entry and "step" in entry:
            steps = int(entry["step"]) - previous
            previous = int(entry["step"])
            if steps > 0:
                segments.append((_epoch_of(entry), steps, float(entry["loss"])))
    return segments


def _train_loss(log_history: list[dict[str, float]]) -> float | None:
    """Mean training loss over every step, from the logged stretches (the same whether or not the run resumed)."""
    segments = _loss_segments(log_history)
    steps = sum(count for _, count, _ in segments)
    return round(sum(count * loss for _, count, loss in segments) / steps, 6) if steps else None


def _history(log_history: list[dict[str, float]]) -> list[dict[str, float]]:
    """One row per epoch: the epoch's mean train loss and the validation loss and scores."""
    rows: dict[int, dict[str, float]] = {}
    weighted: dict[int, tuple[int, float]] = {}
    for epoch, steps, loss in _loss_segments(log_history):
        count, total = weighted.get(epoch, (0, 0.0))
        weighted[epoch] = (count + steps, total + steps * loss)
    for epoch, (count, total) in weighted.items():
        rows.setdefault(epoch, {"epoch": epoch})["train_loss"] = round(total / count, 6)
    for entry in log_history:
        if "eval_macro_f1" in entry:
            row = rows.setdefault(_epoch_of(entry), {"epoch": _epoch_of(entry)})
            row["validation_loss"] = round(float(entry.get("eval_loss", float("nan"))), 6)
            row["validation_accuracy"] = round(float(entry["eval_accuracy"]), 6)
            row["validation_macro_f1"] = round(float(entry["eval_macro_f1"]), 6)
    return [row for _, row in sorted(rows.items()) if "validation_macro_f1" in row]
