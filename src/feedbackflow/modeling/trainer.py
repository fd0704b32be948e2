"""The Trainer customisation behind :func:`feedbackflow.modeling.training.fine_tune`: sampler, loss, averaging, logs.

Public ``Trainer`` hooks carry most of it: ``compute_loss`` (R-Drop and distillation), ``evaluate`` (scored with the
weight average applied), ``create_optimizer`` (layer-wise learning-rate decay) and callbacks (mid-epoch checkpoints,
weight averaging, progress lines). Three private methods are overridden because transformers has no public hook for
what they do; each says why where it is defined.

This module imports torch and transformers at its top: :mod:`feedbackflow.modeling.training` imports it inside
``fine_tune`` only, so the CLI and the DAG parser never pay for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_pt_utils import LengthGroupedSampler

from feedbackflow.modeling.recipe import (
    Distillation,
    WeightAverage,
    classification_loss,
    layerwise_parameter_groups,
    rdrop_loss,
)
from feedbackflow.progress import eta
from feedbackflow.settings import TrainSettings

log = logging.getLogger(__name__)

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
    distillation, weight averaging and layer-wise learning-rate decay when the settings ask for them.

    Args:
        recipe: the ``train`` settings (R-Drop, distillation, label smoothing, layer-wise decay).
        lengths: the token count of every training row, for the length-grouped sampler.
        loss_weights: per-class loss weights, or None.
        average: the running weight average, or None without averaging.
        checkpoint_dir: the Trainer's output folder, where the raw weights go next to each checkpoint.
        **kwargs: passed to ``Trainer``.
    """

    def __init__(
        self,
        *,
        recipe: TrainSettings,
        lengths: list[int],
        loss_weights: Any,
        average: WeightAverage | None,
        checkpoint_dir: Path,
        **kwargs: Any,
    ) -> None:
        self.recipe = recipe
        self.lengths = lengths
        self.loss_weights = loss_weights
        self.average = average
        self.checkpoint_dir = checkpoint_dir
        super().__init__(**kwargs)

    # Private hook: the Trainer builds its train DataLoader around this sampler; the only public alternative,
    # get_train_dataloader, would mean copying the Trainer's DataLoader setup (workers, DDP wrapping, seeding).
    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        return EpochSeededLengthSampler(
            self.args.train_batch_size * self.args.gradient_accumulation_steps,
            self.lengths,
            self.args.data_seed if self.args.data_seed is not None else self.args.seed,
        )

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        teacher = inputs.pop(TEACHER_KEY, None)
        rdrop = bool(self.recipe.rdrop_alpha and model.training)
        if not (rdrop or (teacher is not None and model.training)):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        distillation = None
        if teacher is not None:
            distillation = Distillation(teacher, self.recipe.distill_alpha, self.recipe.distill_temperature)
        features = {key: value for key, value in inputs.items() if key != "labels"}
        if rdrop:  # both dropout passes in one forward of the doubled batch
            features = {key: torch.cat([value, value]) for key, value in features.items()}
        outputs = model(**features)
        loss = self._recipe_loss(outputs, inputs["labels"], rdrop, num_items_in_batch, distillation)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # as the Trainer's own compute_loss does under DDP
        return (loss, outputs) if return_outputs else loss

    def _recipe_loss(
        self, outputs: Any, labels: Any, rdrop: bool, num_items_in_batch: Any, distillation: Distillation | None
    ) -> Any:
        """The R-Drop loss of a doubled batch (``outputs.logits`` keeps its first half), else the plain one."""
        recipe = self.recipe
        if not rdrop:
            return classification_loss(
                outputs.logits, labels, self.loss_weights, recipe.label_smoothing, num_items_in_batch, distillation
            )
        first, second = outputs.logits.chunk(2)
        loss = rdrop_loss(
            first,
            second,
            labels,
            recipe.rdrop_alpha,
            self.loss_weights,
            recipe.label_smoothing,
            num_items_in_batch,
            distillation,
        )
        outputs.logits = first
        return loss

    def evaluate(self, *args: Any, **kwargs: Any) -> Any:
        if self.average is None:
            return super().evaluate(*args, **kwargs)
        with self.average.applied(self.model):
            return super().evaluate(*args, **kwargs)

    # Private hook: the checkpoint's model must be the weight average (so the best model kept is the average) while
    # the raw weights are saved next to it; a callback's on_save runs after the save and cannot wrap it.
    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        if self.average is None:
            return super()._save_checkpoint(model, trial)
        from safetensors.torch import save_file

        own: Any = self.model
        if self.args.should_save:  # rank 0; raw weights first, so trainer_state.json still marks a complete save
            folder = self.checkpoint_dir / f"checkpoint-{self.state.global_step}"
            folder.mkdir(parents=True, exist_ok=True)
            raw = {name: value.detach().cpu().contiguous() for name, value in own.named_parameters()}
            save_file(raw, str(folder / RAW_WEIGHTS))
        with self.average.applied(self.model):  # the checkpoint's model (and so the best model) is the average
            super()._save_checkpoint(model, trial)

    # Private hook: resuming must put the raw weights back over the averaged ones the checkpoint's model holds, right
    # after the Trainer loads it and before the first step; no public hook runs at that point with the path.
    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        raw_file = Path(resume_from_checkpoint) / RAW_WEIGHTS
        if self.average is None or not raw_file.is_file():
            return
        from safetensors.torch import load_file

        own: Any = self.model
        self.average.reset(own, int(Path(resume_from_checkpoint).name.split("-")[1]))  # checkpoint-<step>
        raw = load_file(str(raw_file))
        with torch.no_grad():
            for name, value in own.named_parameters():
                value.copy_(raw[name])

    def create_optimizer(self, *args: Any, **kwargs: Any) -> Any:
        if self.recipe.layerwise_lr_decay >= 1 or self.optimizer is not None:
            return super().create_optimizer(*args, **kwargs)
        model: Any = self.model
        optimizer_cls, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(self.args, model)
        groups = layerwise_parameter_groups(
            model,
            self.args.learning_rate,
            self.recipe.layerwise_lr_decay,
            self.args.weight_decay,
            set(self.get_decay_parameter_names(model)),
        )
        self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return self.optimizer


class Checkpoints(TrainerCallback):  # type: ignore[misc]
    """Mid-epoch checkpoints every ``checkpoint_steps`` (the Trainer saves at epoch ends for the best model).

    ``on_checkpoint`` is called with each saved checkpoint's folder; pass None in the extra processes of a DDP run.
    """

    def __init__(
        self, checkpoint_steps: int, checkpoint_dir: Path, on_checkpoint: Callable[[Path], None] | None
    ) -> None:
        self.checkpoint_steps = checkpoint_steps
        self.checkpoint_dir = checkpoint_dir
        self.on_checkpoint = on_checkpoint

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        epoch_end = abs((state.epoch or 0) - round(state.epoch or 0)) < 1e-6  # saved at the epoch end anyway
        if state.global_step % self.checkpoint_steps == 0 and not epoch_end:
            control.should_save = True

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        # loss is logged at every checkpoint and epoch end, so a resumed run logs the same per-epoch losses
        control.should_log = True

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        log.info("checkpoint saved at step %d/%d", state.global_step, state.max_steps)
        if self.on_checkpoint is not None:
            self.on_checkpoint(self.checkpoint_dir / f"checkpoint-{state.global_step}")


class Averaging(TrainerCallback):  # type: ignore[misc]
    """Folds the weights into the average after every optimiser step."""

    def __init__(self, average: WeightAverage | None) -> None:
        self.average = average

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        if self.average is not None and model is not None:
            self.average.update(model, state.global_step)


class ProgressLog(TrainerCallback):  # type: ignore[misc]
    """Readable progress lines for logs (Airflow task logs) where tqdm's bars are unreadable."""

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.started, self.first_step = time.monotonic(), state.global_step  # a resumed run starts past step 0

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        every = max(1, state.max_steps // 20)
        if state.global_step % every == 0 or state.global_step == state.max_steps:
            done = state.global_step - getattr(self, "first_step", 0)
            elapsed = time.monotonic() - getattr(self, "started", time.monotonic())
            left = elapsed * (state.max_steps - state.global_step) / done if done else 0.0
            log.info(
                "train step %d/%d (epoch %.2f), about %s left",
                *(state.global_step, state.max_steps, state.epoch or 0, eta(left)),
            )

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        shown = {key: round(value, 4) for key, value in (logs or {}).items() if isinstance(value, float)}
        log.info("epoch %.2f: %s", state.epoch or 0, shown)
