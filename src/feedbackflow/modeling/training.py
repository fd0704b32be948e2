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
from feedbackflow.modeling.recipe import (
    Distillation,
    WeightAverage,
    classification_loss,
    ensemble_logits,
    layerwise_parameter_groups,
    rdrop_loss,
)
from feedbackflow.settings import OutOfScopeSettings, TrainSettings

log = logging.getLogger(__name__)

CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
#: the batch key of the teacher's logits (never passed to the model)
TEACHER_KEY = "teacher_logits"
#: with weight averaging, a checkpoint's model holds the average and this file the raw weights training resumes from
RAW_WEIGHTS = "raw_weights.safetensors"


class EncodedTexts:
    """A map-style dataset of tokenized texts and label ids (what ``Trainer`` consumes)."""

    def __init__(self, encodings: dict[str, list[list[int]]], labels: list[int], teacher_logits: Any = None) -> None:
        self.encodings = encodings
        self.labels = labels
        self.teacher_logits = teacher_logits  # (rows, labels) soft targets for distillation, or None

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item: dict[str, Any] = {key: values[index] for key, values in self.encodings.items()}
        item["labels"] = self.labels[index]
        if self.teacher_logits is not None:
            item[TEACHER_KEY] = self.teacher_logits[index].tolist()
        return item


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
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        EarlyStoppingCallback,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        set_seed,
    )
    from transformers.trainer_pt_utils import LengthGroupedSampler

    class EpochSeededLengthSampler(LengthGroupedSampler):  # type: ignore[misc]
        """Length-grouped order drawn from ``seed + epoch``: the same batches whether or not the run was resumed."""

        def __init__(self, batch_size: int, lengths: list[int], seed: int) -> None:
            super().__init__(batch_size, lengths=lengths)
            self.seed = seed
            self.set_epoch(0)

        def set_epoch(self, epoch: int) -> None:
            self.generator = torch.Generator().manual_seed(self.seed + epoch)

    class ResumableTrainer(Trainer):  # type: ignore[misc]
        """The Trainer with an epoch-seeded length-grouped sampler (the Trainer calls its ``set_epoch``), R-Drop,
        distillation, weight averaging and layer-wise learning-rate decay when the settings ask for them."""

        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            return EpochSeededLengthSampler(
                self.args.train_batch_size * self.args.gradient_accumulation_steps,
                lengths,
                self.args.data_seed if self.args.data_seed is not None else self.args.seed,
            )

        def compute_loss(
            self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
        ) -> Any:
            teacher = inputs.pop(TEACHER_KEY, None)
            rdrop = bool(settings.rdrop_alpha and model.training)
            if not (rdrop or (teacher is not None and model.training)):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            distillation = None
            if teacher is not None:
                distillation = Distillation(teacher, settings.distill_alpha, settings.distill_temperature)
            features = {key: value for key, value in inputs.items() if key != "labels"}
            if rdrop:  # both dropout passes in one forward of the doubled batch
                features = {key: torch.cat([value, value]) for key, value in features.items()}
            outputs = model(**features)
            if rdrop:
                first, second = outputs.logits.chunk(2)
                loss = rdrop_loss(
                    first,
                    second,
                    inputs["labels"],
                    settings.rdrop_alpha,
                    loss_weights,
                    settings.label_smoothing,
                    num_items_in_batch,
                    distillation,
                )
                outputs.logits = first
            else:
                loss = classification_loss(
                    outputs.logits,
                    inputs["labels"],
                    loss_weights,
                    settings.label_smoothing,
                    num_items_in_batch,
                    distillation,
                )
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes  # as the Trainer's own compute_loss does under DDP
            return (loss, outputs) if return_outputs else loss

        def evaluate(self, *args: Any, **kwargs: Any) -> Any:
            if average is None:
                return super().evaluate(*args, **kwargs)
            with average.applied(self.model):
                return super().evaluate(*args, **kwargs)

        def _save_checkpoint(self, model: Any, trial: Any) -> None:
            if average is None:
                return super()._save_checkpoint(model, trial)
            from safetensors.torch import save_file

            own: Any = self.model
            if self.args.should_save:  # rank 0; raw weights first, so trainer_state.json still marks a complete save
                folder = checkpoint_dir / f"checkpoint-{self.state.global_step}"
                folder.mkdir(parents=True, exist_ok=True)
                raw = {name: value.detach().cpu().contiguous() for name, value in own.named_parameters()}
                save_file(raw, str(folder / RAW_WEIGHTS))
            with average.applied(self.model):  # the checkpoint's model (and so the best model) is the average
                super()._save_checkpoint(model, trial)

        def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
            super()._load_from_checkpoint(resume_from_checkpoint, model)
            raw_file = Path(resume_from_checkpoint) / RAW_WEIGHTS
            if average is None or not raw_file.is_file():
                return
            from safetensors.torch import load_file

            own: Any = self.model
            average.reset(own, int(Path(resume_from_checkpoint).name.split("-")[1]))  # checkpoint-<step>
            raw = load_file(str(raw_file))
            with torch.no_grad():
                for name, value in own.named_parameters():
                    value.copy_(raw[name])

        def create_optimizer(self, *args: Any, **kwargs: Any) -> Any:
            if settings.layerwise_lr_decay >= 1 or self.optimizer is not None:
                return super().create_optimizer(*args, **kwargs)
            model: Any = self.model
            optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(self.args, model)
            groups = layerwise_parameter_groups(
                model,
                self.args.learning_rate,
                settings.layerwise_lr_decay,
                self.args.weight_decay,
                set(self.get_decay_parameter_names(model)),
            )
            self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
            return self.optimizer

    class Checkpoints(TrainerCallback):  # type: ignore[misc]
        """Mid-epoch checkpoints every ``checkpoint_steps`` (the Trainer saves at epoch ends for the best model)."""

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            epoch_end = abs((state.epoch or 0) - round(state.epoch or 0)) < 1e-6  # saved at the epoch end anyway
            if state.global_step % settings.checkpoint_steps == 0 and not epoch_end:
                control.should_save = True

        def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            # loss is logged at every checkpoint and epoch end, so a resumed run logs the same per-epoch losses
            control.should_log = True

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            log.info("checkpoint saved at step %d/%d", state.global_step, state.max_steps)
            if on_checkpoint is not None and is_main_process():
                on_checkpoint(checkpoint_dir / f"checkpoint-{state.global_step}")

    class Averaging(TrainerCallback):  # type: ignore[misc]
        """Folds the weights into the average after every optimiser step."""

        def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            if average is not None and model is not None:
                average.update(model, state.global_step)

    class ProgressLog(TrainerCallback):  # type: ignore[misc]
        """Readable progress lines for logs (Airflow task logs) where tqdm's bars are unreadable."""

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            every = max(1, state.max_steps // 20)
            if state.global_step % every == 0 or state.global_step == state.max_steps:
                log.info("train step %d/%d (epoch %.2f)", state.global_step, state.max_steps, state.epoch or 0)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            shown = {key: round(value, 4) for key, value in (logs or {}).items() if isinstance(value, float)}
            log.info("epoch %.2f: %s", state.epoch or 0, shown)

    if settings.num_threads:
        torch.set_num_threads(settings.num_threads)
    device = pick_device(settings.device)
    precision = pick_precision(device)
    set_seed(seed)
    label2id = {label: index for index, label in enumerate(labels)}
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

    def encode(texts: list[str], names: list[str] | None = None) -> EncodedTexts:
        """Tokenize; ``names`` None marks out-of-scope rows (label -100: the loss ignores them)."""
        encodings = tokenizer(texts, truncation=True, max_length=settings.max_length)
        return EncodedTexts(dict(encodings), [label2id[name] for name in names] if names else [-100] * len(texts))

    teachers = [Path(folder) for folder in settings.teacher]
    if teacher_logits is None and teachers:
        log.info("distillation: computing the logits of %d teacher model(s) on %d rows", len(teachers), len(train[0]))
        teacher_logits = ensemble_logits(teachers, train[0], labels, device=device)
    in_scope, negatives = _separate(train, validation, label2id, oos.label)
    train_set, validation_set = encode(*in_scope[0]), encode(*in_scope[1])
    if teacher_logits is not None:
        teacher_logits = np.asarray(teacher_logits, dtype=np.float32)
        if teacher_logits.shape != (len(train[0]), len(labels)):
            raise ValueError(f"teacher logits have shape {teacher_logits.shape}, want {(len(train[0]), len(labels))}")
        kept = np.array([not _is_negative(name, label2id, oos.label) for name in train[1]], dtype=bool)
        train_set.teacher_logits = teacher_logits[kept]
    lengths = [len(ids) for ids in train_set.encodings["input_ids"]]
    # on GPUs every new batch shape costs an attention-plan build: rounding lengths to 8 cuts the shapes ~4x
    pad_multiple = 8 if device == "cuda" else None
    args = TrainingArguments(
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

    def compute_metrics(prediction: Any) -> dict[str, float]:
        predicted = np.argmax(prediction.predictions, axis=-1)
        scores = classification_metrics(list(prediction.label_ids), list(predicted), list(range(len(labels))))
        return {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}

    loss_weights = None
    if settings.class_weights == "balanced":
        loss_weights = torch.tensor(class_weights(train_set.labels, len(labels)), dtype=torch.float32)

    def compute_loss_func(outputs: Any, targets: Any, num_items_in_batch: Any = None) -> Any:
        return classification_loss(
            outputs["logits"], targets, loss_weights, settings.label_smoothing, num_items_in_batch
        )

    average = WeightAverage(settings.ema_decay) if settings.ema_decay else None
    callbacks: list[Any] = [ProgressLog(), Averaging()]
    if settings.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=settings.early_stopping_patience))
    callbacks.append(Checkpoints())
    trainer = ResumableTrainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=validation_set,
        data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_multiple),
        compute_metrics=compute_metrics,
        compute_loss_func=compute_loss_func,
        callbacks=callbacks,
    )

    resume = last_checkpoint(checkpoint_dir)
    resumed_step = int(resume.name.split("-")[1]) if resume is not None else None
    if resume is not None:
        log.info("resuming from checkpoint step %s (%s)", resumed_step, resume)
    else:
        log.info("no checkpoint in %s: training from the start", checkpoint_dir)
    started = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    seconds = time.perf_counter() - started
    history = _history(trainer.state.log_history)
    final = trainer.predict(cast(Any, validation_set), metric_key_prefix="eval")
    predicted = np.argmax(final.predictions, axis=-1).tolist()
    scores = final.metrics or {}
    negative_logits: Any = np.zeros((0, len(labels)), dtype=np.float32)
    if negatives:
        trainer.compute_metrics = None  # no intent to score: only their logits are needed
        negative_logits = trainer.predict(cast(Any, encode(negatives)), metric_key_prefix="oos").predictions
    calibration = fit_calibration(
        np.concatenate([np.asarray(final.predictions), np.asarray(negative_logits)]),
        [*validation_set.labels, *[-1] * len(negatives)],
        method=oos.method,
        target_precision=oos.target_precision,
        oos_label=oos.label,
        oos_class_id=label2id.get(oos.label),
        bins=oos.calibration_bins,
    )

    sampler = EpochSeededLengthSampler(settings.batch_size * settings.gradient_accumulation_steps, lengths, seed)
    order = list(sampler)
    batches = [order[start : start + settings.batch_size] for start in range(0, len(order), settings.batch_size)]
    epochs_run = len(history)
    best_metric = f"validation_{settings.early_stopping_metric}"
    best = max(history, key=lambda row: row.get(best_metric, -1.0)) if history else {}
    samples = len(train_set) * epochs_run
    metrics = {
        "device": device,
        "precision": precision,
        "train_rows": len(train_set),
        "validation_rows": len(validation_set),
        "epochs": settings.epochs,
        "epochs_run": epochs_run,
        "best_epoch": best.get("epoch"),
        "stopped_early": epochs_run < math.ceil(settings.epochs),
        "resumed_from_step": resumed_step,
        "train_loss": _train_loss(trainer.state.log_history),
        "validation_accuracy": round(float(scores["eval_accuracy"]), 6),
        "validation_macro_f1": round(float(scores["eval_macro_f1"]), 6),
        "oos_rows_held_out": len(negatives),
        "distilled": teacher_logits is not None,
        "weight_average_decay": settings.ema_decay or None,
        "temperature": calibration.temperature,
        "oos_method": calibration.method,
        "oos_threshold": calibration.to_dict()["threshold"],
        **{f"validation_{key}": calibration.validation[key] for key in ("ece_before", "ece_after")},
        **{
            f"validation_{key}": calibration.validation["methods"][calibration.method][key]
            for key in ("in_scope_coverage", "oos_recall")
        },
        "validation_precision_at_threshold": calibration.validation["methods"][calibration.method]["precision"],
        "non_padding_token_fraction": round(non_padding_fraction(lengths, batches, pad_multiple), 4),
        "train_seconds": round(seconds, 2),
        "samples_per_second": round(samples / seconds, 2) if seconds > 0 else None,
        "tokens_per_second": round(sum(lengths) * epochs_run / seconds, 1) if seconds > 0 else None,
    }
    if trainer.is_world_process_zero():
        output_dir.mkdir(parents=True, exist_ok=True)
        trainer.save_model(str(output_dir))
        # the Trainer also pickles its arguments there: not needed to load the model, and no pickles in artifacts
        (output_dir / "training_args.bin").unlink(missing_ok=True)
        # inference must truncate where training did; the tokenizer carries that limit with the model
        tokenizer.model_max_length = settings.max_length
        tokenizer.save_pretrained(str(output_dir))
        (output_dir / "label_map.json").write_text(json.dumps(label2id, indent=2) + "\n", encoding="utf-8")
        (output_dir / "train_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        (output_dir / CALIBRATION_FILE).write_text(json.dumps(calibration.to_dict(), indent=2) + "\n", encoding="utf-8")
    log.info("trained on %d rows in %.1fs: %s", len(train_set), seconds, metrics)
    return TrainResult(metrics, history, list(validation_set.labels), predicted, calibration.to_dict())


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
