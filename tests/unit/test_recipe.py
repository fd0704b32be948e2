"""The training recipe's pieces: the loss (class weights, label smoothing, R-Drop), layer-wise learning-rate decay,
and one tiny run with all of them switched on."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from feedbackflow.modeling.recipe import classification_loss, layer_depth, layerwise_parameter_groups, rdrop_loss
from feedbackflow.settings import TrainSettings
from tests.helpers import TINY_TRAIN, build_tiny_bert, fine_tune_tiny


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
    settings = TrainSettings(
        base_model=str(build_tiny_bert(tmp_path / "tiny-bert")),
        **{**TINY_TRAIN, "learning_rate": 0.006},
        label_smoothing=0.1,
        rdrop_alpha=1.0,
        layerwise_lr_decay=0.8,
    )
    result = fine_tune_tiny(tmp_path, settings)
    assert result.metrics["validation_accuracy"] >= 0.75
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
