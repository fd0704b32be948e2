"""The training recipe's pieces: the loss (class weights, label smoothing, R-Drop), layer-wise learning-rate decay,
and one tiny run with all of them switched on."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from feedbackflow.modeling.recipe import (
    Distillation,
    classification_loss,
    layer_depth,
    layerwise_parameter_groups,
    rdrop_loss,
)
from tests.helpers import TINY_TRAIN, build_tiny_bert, fine_tune_tiny, section


def _logits(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(6, 4, generator=generator), torch.tensor([0, 1, 2, 3, -100, 1])


def test_plain_loss_is_the_mean_cross_entropy_of_the_labelled_rows():
    logits, targets = _logits()
    expected = F.cross_entropy(logits[targets != -100], targets[targets != -100])
    assert torch.allclose(classification_loss(logits, targets), expected)
    # divided by the items of the whole accumulated batch when the Trainer gives them
    assert torch.allclose(classification_loss(logits, targets, num_items=10), expected * 5 / 10)


def test_label_smoothing_and_class_weights_change_the_loss_as_torch_defines_them():
    logits, targets = _logits()
    kept = targets != -100
    smoothed = classification_loss(logits, targets, label_smoothing=0.1)
    assert torch.allclose(smoothed, F.cross_entropy(logits[kept], targets[kept], label_smoothing=0.1))
    weights = torch.tensor([1.0, 2.0, 1.0, 0.5])
    weighted = classification_loss(logits, targets, weights=weights)
    summed = F.cross_entropy(logits[kept], targets[kept], weight=weights, reduction="sum")
    assert torch.allclose(weighted, summed / kept.sum())


def test_rdrop_is_the_plain_loss_when_both_passes_agree_and_grows_with_their_disagreement():
    logits, targets = _logits()
    assert torch.allclose(rdrop_loss(logits, logits, targets, alpha=4.0), classification_loss(logits, targets))
    other, _ = _logits(seed=1)
    mean_ce = (classification_loss(logits, targets) + classification_loss(other, targets)) / 2
    weak, strong = (rdrop_loss(logits, other, targets, alpha=alpha) for alpha in (0.0, 1.0))
    assert torch.allclose(weak, mean_ce)
    assert strong > weak  # the KL term is positive when the passes disagree


def test_layer_depths_of_bert_parameter_names():
    assert layer_depth("bert.embeddings.word_embeddings.weight", 6) == 0
    assert layer_depth("bert.encoder.layer.0.attention.self.query.weight", 6) == 1
    assert layer_depth("bert.encoder.layer.5.output.dense.bias", 6) == 6
    assert layer_depth("classifier.weight", 6) == layer_depth("bert.pooler.dense.weight", 6) == 7
    assert layer_depth("model.layers.11.mlp.up_proj.weight", 12) == 12


def test_layerwise_groups_decay_the_rate_downwards_and_cover_every_parameter(tmp_path):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(build_tiny_bert(tmp_path / "bert"))
    decayed = {name for name, _ in model.named_parameters() if not name.endswith("bias") and "LayerNorm" not in name}
    groups = layerwise_parameter_groups(model, 1e-3, 0.5, 0.01, decayed)
    grouped = [id(parameter) for group in groups for parameter in group["params"]]
    assert sorted(grouped) == sorted(id(parameter) for parameter in model.parameters())  # each exactly once
    rate = {id(parameter): group["lr"] for group in groups for parameter in group["params"]}
    named = dict(model.named_parameters())
    # 2 layers: head 1e-3, layer 1 5e-4, layer 0 2.5e-4, embeddings 1.25e-4
    assert rate[id(named["classifier.weight"])] == pytest.approx(1e-3)
    assert rate[id(named["bert.encoder.layer.1.output.dense.weight"])] == pytest.approx(5e-4)
    assert rate[id(named["bert.encoder.layer.0.output.dense.weight"])] == pytest.approx(2.5e-4)
    assert rate[id(named["bert.embeddings.word_embeddings.weight"])] == pytest.approx(1.25e-4)
    no_decay = {id(parameter) for group in groups if group["weight_decay"] == 0.0 for parameter in group["params"]}
    assert id(named["bert.encoder.layer.0.output.LayerNorm.weight"]) in no_decay
    assert id(named["classifier.weight"]) not in no_decay


def test_a_tiny_run_with_smoothing_rdrop_and_layerwise_decay_learns(tmp_path):
    settings = section(
        "train",
        base_model=str(build_tiny_bert(tmp_path / "tiny-bert")),
        **{**TINY_TRAIN, "learning_rate": 0.006},
        label_smoothing=0.1,
        rdrop_alpha=1.0,
        layerwise_lr_decay=0.8,
    )
    result = fine_tune_tiny(tmp_path, settings)
    assert result.metrics["validation_accuracy"] >= 0.75
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_distillation_mixes_the_hard_loss_with_the_softened_kl_from_the_teacher():
    logits, targets = _logits()
    teacher, _ = _logits(seed=2)
    kept = targets != -100
    hard = classification_loss(logits, targets)
    # alpha 0 is the hard loss; a teacher that agrees with the student adds nothing at alpha 1
    assert torch.allclose(classification_loss(logits, targets, distillation=Distillation(teacher, 0.0, 2.0)), hard)
    agreeing = classification_loss(logits, targets, distillation=Distillation(logits.clone(), 1.0, 2.0))
    assert torch.allclose(agreeing, torch.tensor(0.0), atol=1e-6)
    mixed = classification_loss(logits, targets, distillation=Distillation(teacher, 0.3, 2.0))
    student_t = F.log_softmax(logits[kept] / 2.0, dim=-1)
    teacher_t = F.log_softmax(teacher[kept] / 2.0, dim=-1)
    soft = (teacher_t.exp() * (teacher_t - student_t)).sum() * 4.0 / kept.sum()  # T² x KL(teacher || student)
    assert torch.allclose(mixed, 0.7 * hard + 0.3 * soft)
    # R-Drop passes the teacher to both passes
    both = rdrop_loss(logits, logits, targets, alpha=1.0, distillation=Distillation(teacher, 0.3, 2.0))
    assert torch.allclose(both, mixed)


def test_a_student_distilled_from_a_teacher_follows_the_teacher_not_the_labels(tmp_path):
    """A teacher taught with two intents swapped; the student sees the true labels but only the teacher's soft
    targets weigh (alpha 1), so it predicts what the teacher predicts: the soft targets reach the loss."""
    import numpy as np

    from feedbackflow.modeling.predict import predict_labels
    from feedbackflow.modeling.training import fine_tune
    from tests.helpers import TEMPLATES, tiny_corpus

    base = str(build_tiny_bert(tmp_path / "tiny-bert"))
    labels = sorted(TEMPLATES)
    swap = {"billing": "delivery", "delivery": "billing"}
    corpus = tiny_corpus(12)
    train = [row for index, row in enumerate(corpus) if index % 4]
    validation = [row for index, row in enumerate(corpus) if not index % 4]
    texts = [row["text"] for row in train]
    tiny = {**TINY_TRAIN, "epochs": 15, "learning_rate": 0.006}

    def run(folder: str, train_relabel: dict[str, str], settings):
        # validation always as the teacher sees it: the kept (best) epoch is the one that agrees most with it
        return fine_tune(
            base,
            labels,
            (texts, [train_relabel.get(row["label"], row["label"]) for row in train]),
            ([row["text"] for row in validation], [swap.get(row["label"], row["label"]) for row in validation]),
            settings,
            seed=1,
            output_dir=tmp_path / folder,
            checkpoint_dir=tmp_path / f"{folder}-checkpoints",
            oos=section("oos"),
        )

    def agreement(said: list[str], truth: list[str]) -> float:
        return float(np.mean([a == b for a, b in zip(said, truth, strict=True)]))

    run("teacher", swap, section("train", base_model=base, **tiny))
    teacher_says = predict_labels(tmp_path / "teacher", texts)
    assert agreement(teacher_says, [swap.get(row["label"], row["label"]) for row in train]) >= 0.9
    student = section(
        "train",
        base_model=base,
        **tiny,
        teacher=[str(tmp_path / "teacher")],
        distill_alpha=1.0,
        distill_temperature=1.0,
    )
    result = run("student", {}, student)  # taught the true labels, at weight 0
    assert result.metrics["distilled"] is True
    student_says = predict_labels(tmp_path / "student", texts)
    assert agreement(student_says, teacher_says) >= 0.9
    assert agreement(student_says, [row["label"] for row in train]) <= 0.6  # wrong on the swapped half


def test_ensemble_logits_average_the_members_in_the_taxonomy_order_and_refuse_a_missing_label(tmp_path):
    import numpy as np

    from feedbackflow.errors import ConfigError
    from feedbackflow.modeling.predict import predict_logits
    from feedbackflow.modeling.recipe import ensemble_logits
    from tests.helpers import TEMPLATES

    settings = section("train", base_model=str(build_tiny_bert(tmp_path / "tiny-bert")), **{**TINY_TRAIN, "epochs": 1})
    fine_tune_tiny(tmp_path, settings)
    texts = ["where is my package", "I cannot log in"]
    logits, id2label = predict_logits(tmp_path / "model", texts)
    reversed_labels = sorted(TEMPLATES, reverse=True)
    averaged = ensemble_logits([tmp_path / "model", tmp_path / "model"], texts, reversed_labels)
    expected = logits[:, [{v: k for k, v in id2label.items()}[label] for label in reversed_labels]]
    assert np.allclose(averaged, expected, atol=1e-5)
    with pytest.raises(ConfigError, match="does not predict the labels"):
        ensemble_logits([tmp_path / "model"], texts, [*reversed_labels, "refund"])


def test_weight_average_is_the_bias_corrected_ema_and_swaps_the_raw_weights_back():
    from feedbackflow.modeling.recipe import WeightAverage

    model = torch.nn.Linear(3, 2)
    average = WeightAverage(decay=0.9)
    start = [parameter.detach().clone() for parameter in model.parameters()]
    average.update(model, step=1)
    with average.applied(model):  # after one step the average is that step's weights, not 10 % of them
        for parameter, first in zip(model.parameters(), start, strict=True):
            assert torch.allclose(parameter, first)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(1.0)
    average.update(model, step=2)
    raw = [parameter.detach().clone() for parameter in model.parameters()]
    # (0.9 x 0.1 x w1 + 0.1 x (w1 + 1)) / (1 - 0.81) = w1 + 0.1 / 0.19
    with average.applied(model):
        for parameter, first in zip(model.parameters(), start, strict=True):
            assert torch.allclose(parameter, first + 0.1 / 0.19)
    for parameter, weights in zip(model.parameters(), raw, strict=True):
        assert torch.equal(parameter, weights)
    # continuing from a checkpoint that holds the average gives the same average as the uninterrupted one
    resumed = WeightAverage(decay=0.9)
    copy = torch.nn.Linear(3, 2)
    with average.applied(model), torch.no_grad():
        for target, source in zip(copy.parameters(), model.parameters(), strict=True):
            target.copy_(source)
    resumed.reset(copy, step=2)
    for both in (average, resumed):
        both.update(model, step=3)
    for mine, theirs in zip(average.averaged(), resumed.averaged(), strict=True):
        assert torch.allclose(mine, theirs, atol=1e-6)


def test_weight_averaged_run_saves_the_average_and_resumes_exactly_from_a_mid_training_checkpoint(tmp_path):
    """The saved model is the average (not the last raw weights), and a run resumed from a checkpoint inside the
    second epoch ends with the same weights as the uninterrupted run: the raw weights travel with the checkpoint."""
    import json
    import shutil

    from safetensors.torch import load_file

    from feedbackflow.modeling.training import fine_tune
    from tests.helpers import tiny_corpus

    base = str(build_tiny_bert(tmp_path / "tiny-bert"))
    tiny = {**TINY_TRAIN, "learning_rate": 0.006}
    settings = section("train", base_model=base, **tiny, ema_decay=0.9, checkpoint_steps=4)
    corpus = tiny_corpus(24)
    train = [row for index, row in enumerate(corpus) if index % 4]
    validation = [row for index, row in enumerate(corpus) if not index % 4]
    kept = tmp_path / "every-checkpoint"

    def straight_metrics() -> dict:
        return json.loads((tmp_path / "straight" / "train_metrics.json").read_text())

    def run(name: str, checkpoints: Path) -> dict:
        fine_tune(
            base,
            sorted({row["label"] for row in corpus}),
            ([row["text"] for row in train], [row["label"] for row in train]),
            ([row["text"] for row in validation], [row["label"] for row in validation]),
            settings,
            seed=1,
            output_dir=tmp_path / name,
            checkpoint_dir=checkpoints,
            on_checkpoint=lambda folder: shutil.copytree(folder, kept / folder.name, dirs_exist_ok=True),
            oos=section("oos"),
        )
        return load_file(tmp_path / name / "model.safetensors")

    straight = run("straight", tmp_path / "straight-checkpoints")
    # the best epoch comes after the resumed step, else both runs would end on the same early checkpoint
    assert straight_metrics()["best_epoch"] >= 3
    shutil.rmtree(tmp_path / "straight-checkpoints")
    steps = sorted(int(folder.name.split("-")[1]) for folder in kept.iterdir())
    mid = next(step for step in steps if 9 < step < 18)  # 72 rows in batches of 8: 9 steps per epoch
    raw = load_file(kept / f"checkpoint-{mid}" / "raw_weights.safetensors")
    checkpoint_model = load_file(kept / f"checkpoint-{mid}" / "model.safetensors")
    assert any(not torch.equal(raw[name], checkpoint_model[name]) for name in checkpoint_model)
    resumed_dir = tmp_path / "resumed-checkpoints"
    shutil.copytree(kept / f"checkpoint-{mid}", resumed_dir / f"checkpoint-{mid}")
    resumed = run("resumed", resumed_dir)
    for name, tensor in straight.items():
        assert (tensor - resumed[name]).abs().max().item() <= 1e-5, name
