"""Fine-tune a sequence classifier with Hugging Face's Trainer.

Dynamic padding (padding each batch to its longest text) and length-grouped batches keep the work proportional to
real tokens; the Trainer already provides the optimiser (fused AdamW where torch supports it), the warmup and decay
schedule, evaluation per epoch and mixed precision on GPUs, so it is used rather than rewritten.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from feedbackflow.modeling.metrics import classification_metrics
from feedbackflow.modeling.model import pick_device
from feedbackflow.settings import TrainSettings

log = logging.getLogger(__name__)


class EncodedTexts:
    """A map-style dataset of tokenized texts and label ids (what ``Trainer`` consumes)."""

    def __init__(self, encodings: dict[str, list[list[int]]], labels: list[int]) -> None:
        self.encodings = encodings
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item: dict[str, Any] = {key: values[index] for key, values in self.encodings.items()}
        item["labels"] = self.labels[index]
        return item


@dataclass
class TrainResult:
    """What one fine-tuning run produced."""

    metrics: dict[str, Any]
    history: list[dict[str, float]]


def fine_tune(
    base_model: str,
    labels: list[str],
    train: tuple[list[str], list[str]],
    validation: tuple[list[str], list[str]],
    settings: TrainSettings,
    seed: int,
    output_dir: Path,
    work_dir: Path,
) -> TrainResult:
    """Fine-tune ``base_model`` on ``train`` (texts, labels) and save it to ``output_dir``.

    Args:
        base_model: a folder or hub name loadable by ``from_pretrained``.
        labels: the label taxonomy; its order fixes the class ids, so models stay comparable across nights.
        train: training texts and their labels.
        validation: validation texts and labels, scored after every epoch.
        settings: the ``train`` section of ``params.yaml``.
        seed: the run's random seed.
        output_dir: receives ``model.safetensors``, the tokenizer, ``label_map.json`` and ``train_metrics.json``.
        work_dir: scratch space for the Trainer (checkpoints, logs); not part of the outputs.

    Returns:
        Training metrics and the per-epoch history (train loss, validation accuracy and macro-F1).
    """
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        set_seed,
    )

    class ProgressLog(TrainerCallback):  # type: ignore[misc]
        """Readable progress lines for logs (Airflow task logs) where tqdm's bars are unreadable."""

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            every = max(1, state.max_steps // 20)
            if state.global_step % every == 0 or state.global_step == state.max_steps:
                log.info("train step %d/%d (epoch %.2f)", state.global_step, state.max_steps, state.epoch or 0)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            shown = {key: round(value, 4) for key, value in (logs or {}).items() if isinstance(value, float)}
            log.info("epoch %.2f: %s", state.epoch or 0, shown)

    set_seed(seed)
    if settings.num_threads:
        torch.set_num_threads(settings.num_threads)
    device = pick_device(settings.device)
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

    def encode(texts: list[str], names: list[str]) -> EncodedTexts:
        encodings = tokenizer(texts, truncation=True, max_length=settings.max_length)
        return EncodedTexts(dict(encodings), [label2id[name] for name in names])

    train_set, validation_set = encode(*train), encode(*validation)
    real_tokens = sum(len(ids) for ids in train_set.encodings["input_ids"])
    use_bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    args = TrainingArguments(
        output_dir=str(work_dir),
        num_train_epochs=settings.epochs,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.eval_batch_size,
        learning_rate=settings.learning_rate,
        weight_decay=settings.weight_decay,
        warmup_steps=settings.warmup_ratio,
        lr_scheduler_type=settings.lr_scheduler,
        train_sampling_strategy="group_by_length",
        eval_strategy="epoch",
        save_strategy="no",
        logging_strategy="epoch",
        report_to="none",
        seed=seed,
        data_seed=seed,
        use_cpu=device == "cpu",
        bf16=use_bf16,
        fp16=device == "cuda" and not use_bf16,
        tf32=True if use_bf16 else None,
        dataloader_num_workers=0,
        disable_tqdm=not sys.stderr.isatty(),
    )

    def compute_metrics(prediction: Any) -> dict[str, float]:
        predicted = np.argmax(prediction.predictions, axis=-1)
        scores = classification_metrics(list(prediction.label_ids), list(predicted), list(range(len(labels))))
        return {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}

    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=validation_set,
        # on GPUs every new batch shape costs an attention-plan build: rounding lengths to 8 cuts the shapes ~4x
        data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if device == "cuda" else None),
        compute_metrics=compute_metrics,
        callbacks=[ProgressLog()],
    )
    started = time.perf_counter()
    outcome = trainer.train()
    seconds = time.perf_counter() - started
    final = trainer.evaluate()
    history = _history(trainer.state.log_history)

    output_dir.mkdir(parents=True, exist_ok=True)
    trainer.save_model(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))
    (output_dir / "label_map.json").write_text(json.dumps(label2id, indent=2) + "\n", encoding="utf-8")
    samples = len(train_set) * settings.epochs
    metrics = {
        "device": device,
        "train_rows": len(train_set),
        "validation_rows": len(validation_set),
        "epochs": settings.epochs,
        "train_loss": round(float(outcome.training_loss), 6),
        "validation_accuracy": round(float(final["eval_accuracy"]), 6),
        "validation_macro_f1": round(float(final["eval_macro_f1"]), 6),
        "train_seconds": round(seconds, 2),
        "samples_per_second": round(samples / seconds, 2),
        "tokens_per_second": round(real_tokens * settings.epochs / seconds, 1),
    }
    (output_dir / "train_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    log.info("trained on %d rows in %.1fs: %s", len(train_set), seconds, metrics)
    return TrainResult(metrics, history)


def _history(log_history: list[dict[str, float]]) -> list[dict[str, float]]:
    """One row per epoch: the epoch's mean train loss and the validation scores."""
    rows: dict[int, dict[str, float]] = {}
    for entry in log_history:
        epoch = round(entry.get("epoch", 0))
        row = rows.setdefault(epoch, {"epoch": epoch})
        if "loss" in entry:
            row["train_loss"] = round(float(entry["loss"]), 6)
        if "eval_macro_f1" in entry:
            row["validation_macro_f1"] = round(float(entry["eval_macro_f1"]), 6)
            row["validation_accuracy"] = round(float(entry["eval_accuracy"]), 6)
    return [row for _, row in sorted(rows.items()) if len(row) > 1]
