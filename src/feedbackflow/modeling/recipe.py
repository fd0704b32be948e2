"""The training recipe's pieces beyond the Trainer's defaults: the loss and the optimiser's parameter groups.

* ``classification_loss``: cross-entropy with optional class weights and label smoothing, summed and divided by the
  items of the whole (accumulated) batch, as the Trainer expects from a loss function;
* ``rdrop_loss``: R-Drop (Liang et al., 2021), the mean of two dropout passes' losses plus ``alpha`` times the
  symmetric KL divergence between their predictions;
* ``Distillation``: knowledge distillation (Hinton et al., 2015): the hard-label loss mixed with the KL divergence
  from a teacher's temperature-softened predictions, and ``ensemble_logits``, the teacher (several models averaged);
* ``WeightAverage``: an exponential moving average of the weights (EMA), which is what is evaluated, checkpointed
  and saved while training goes on with the raw weights;
* ``layerwise_parameter_groups``: layer-wise learning-rate decay: the head keeps the learning rate, each encoder
  layer below gets the one above's times ``decay``, the embeddings the lowest.

Nothing here is specific to a data set or a label set; ``params.yaml``'s ``train`` section switches each piece.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: ``encoder.layer.3.`` (BERT, MiniLM), ``layers.3.`` (most others): the encoder layer a parameter belongs to
LAYER = re.compile(r"\.layers?\.(\d+)\.")


@dataclass(frozen=True)
class Distillation:
    """A batch's teacher logits and how much they weigh: ``alpha`` x T² x KL(teacher_T || student_T) plus
    ``1 - alpha`` x the hard-label loss, both softened at temperature ``temperature`` (T² keeps the soft term's
    gradient scale independent of T)."""

    teacher_logits: Any
    alpha: float
    temperature: float


def classification_loss(
    logits: Any,
    targets: Any,
    weights: Any = None,
    label_smoothing: float = 0.0,
    num_items: Any = None,
    distillation: Distillation | None = None,
) -> Any:
    """Cross-entropy summed over the rows whose target is not -100, divided by ``num_items`` (default: those rows);
    with ``distillation``, mixed with the KL divergence from the teacher's softened predictions on the same rows."""
    import torch.nn.functional as F

    count = num_items if num_items is not None else (targets != -100).sum().clamp(min=1)
    hard = (
        F.cross_entropy(
            logits.float(),
            targets,
            weight=None if weights is None else weights.to(logits.device),
            label_smoothing=label_smoothing,
            ignore_index=-100,
            reduction="sum",
        )
        / count
    )
    if distillation is None or not distillation.alpha:
        return hard
    kept = targets != -100
    temperature = distillation.temperature
    student = F.log_softmax(logits.float()[kept] / temperature, dim=-1)
    teacher = F.log_softmax(distillation.teacher_logits.to(logits.device).float()[kept] / temperature, dim=-1)
    soft = F.kl_div(student, teacher, log_target=True, reduction="sum") * temperature**2 / count
    return (1 - distillation.alpha) * hard + distillation.alpha * soft


def ensemble_logits(model_dirs: list[Path], texts: list[str], labels: list[str], device: str = "cpu") -> Any:
    """The mean logits of the classifiers in ``model_dirs`` on ``texts``, columns in the order of ``labels``.

    Averaging logits is the normalised geometric mean of the members' probabilities. Every member must predict
    every label of the taxonomy.

    Raises:
        ConfigError: a member does not know one of ``labels``.
    """
    import numpy as np

    from feedbackflow.errors import ConfigError
    from feedbackflow.modeling.predict import predict_logits

    total = np.zeros((len(texts), len(labels)), dtype=np.float64)
    for model_dir in model_dirs:
        logits, id2label = predict_logits(model_dir, texts, device=device)
        column = {label: index for index, label in id2label.items()}
        missing = sorted(set(labels) - set(column))
        if missing:
            raise ConfigError(f"teacher model {model_dir} does not predict the labels {missing[:5]}")
        total += logits[:, [column[label] for label in labels]]
    return (total / len(model_dirs)).astype(np.float32)


def rdrop_loss(
    first: Any,
    second: Any,
    targets: Any,
    alpha: float,
    weights: Any = None,
    label_smoothing: float = 0.0,
    num_items: Any = None,
    distillation: Distillation | None = None,
) -> Any:
    """R-Drop: mean loss of two dropout passes (logits ``first`` and ``second``) plus ``alpha`` x their symmetric KL."""
    import torch.nn.functional as F

    count = num_items if num_items is not None else (targets != -100).sum().clamp(min=1)
    kept = targets != -100
    both = sum(
        classification_loss(logits, targets, weights, label_smoothing, count, distillation)
        for logits in (first, second)
    )
    p, q = (F.log_softmax(logits.float()[kept], dim=-1) for logits in (first, second))
    symmetric_kl = F.kl_div(p, q, log_target=True, reduction="sum") + F.kl_div(q, p, log_target=True, reduction="sum")
    return both / 2 + alpha * symmetric_kl / 2 / count


def layer_depth(name: str, layers: int) -> int:
    """0 for embeddings, ``i + 1`` for encoder layer ``i``, ``layers + 1`` for everything above (pooler, head)."""
    if match := LAYER.search(name):
        return int(match.group(1)) + 1
    if "embeddings" in name:
        return 0
    return layers + 1


def layerwise_parameter_groups(
    model: Any, learning_rate: float, decay: float, weight_decay: float, decayed_names: set[str]
) -> list[dict[str, Any]]:
    """Optimiser parameter groups with layer-wise learning-rate decay (``decay`` 1.0: one rate for all).

    Parameters named in ``decayed_names`` get ``weight_decay`` (the Trainer leaves biases and norms out), the others 0.
    """
    layers = int(getattr(model.config, "num_hidden_layers", 0))
    groups: dict[tuple[int, bool], list[Any]] = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            groups.setdefault((layer_depth(name, layers), name in decayed_names), []).append(parameter)
    return [
        {
            "params": parameters,
            "lr": learning_rate * decay ** (layers + 1 - depth),
            "weight_decay": weight_decay if decayed else 0.0,
        }
        for (depth, decayed), parameters in sorted(groups.items())
    ]


class WeightAverage:
    """Exponential moving average of a model's trainable weights, bias-corrected as Adam's moments are.

    After optimiser step ``t``: ``m = d x m + (1 - d) x w`` from ``m = 0``, and the average is ``m / (1 - d^t)``:
    the steps' weights weighted by ``d^(t - i)``, whatever the run's length, so ``decay`` means what it says from
    the first step (``d`` = 0.998: about the last 500 steps count). ``applied`` swaps the average in (for
    evaluation and saving) and the raw weights back.
    """

    def __init__(self, decay: float) -> None:
        self.decay = decay
        self.moment: list[Any] | None = None
        self.step = 0

    def _parameters(self, model: Any) -> list[Any]:
        return [parameter for parameter in model.parameters() if parameter.requires_grad]

    def reset(self, model: Any, step: int) -> None:
        """Continue from a checkpoint: the model holds the average after optimiser step ``step``."""
        scale = 1.0 - self.decay**step
        self.moment = [parameter.detach().float() * scale for parameter in self._parameters(model)]
        self.step = step

    def update(self, model: Any, step: int) -> None:
        """Fold the weights after optimiser step ``step`` (1-based) into the average."""
        import torch

        with torch.no_grad():
            raw = [parameter.detach().float() for parameter in self._parameters(model)]
            if self.moment is None:
                self.moment = [torch.zeros_like(weights) for weights in raw]
            torch._foreach_lerp_(self.moment, raw, 1.0 - self.decay)
        self.step = step

    def averaged(self) -> list[Any]:
        """The bias-corrected average, one tensor per trainable parameter."""
        assert self.moment is not None
        scale = 1.0 - self.decay**self.step
        return [moment / scale for moment in self.moment]

    @contextmanager
    def applied(self, model: Any) -> Iterator[None]:
        """The model holds the average inside the block and its raw weights again after it."""
        import torch

        if self.moment is None or not self.step:
            yield
            return
        parameters = self._parameters(model)
        raw = [parameter.detach().clone() for parameter in parameters]
        with torch.no_grad():
            for parameter, average in zip(parameters, self.averaged(), strict=True):
                parameter.copy_(average)
        try:
            yield
        finally:
            with torch.no_grad():
                for parameter, weights in zip(parameters, raw, strict=True):
                    parameter.copy_(weights)
