"""Batch inference with a saved classifier folder."""

from __future__ import annotations

from pathlib import Path

from feedbackflow.io import file_digest


def model_digest(model_dir: Path) -> str:
    """SHA-256 of the weights file: identifies a model version independently of where it is stored."""
    return file_digest(model_dir / "model.safetensors")


def predict_labels(model_dir: Path, texts: list[str], batch_size: int = 128, device: str = "cpu") -> list[str]:
    """Return the predicted label name of each text, in input order.

    Texts are sorted by length before batching so each batch pads to similar lengths, then put back in order.
    They are truncated where training truncated them: the train stage saves ``train.max_length`` as the tokenizer's
    ``model_max_length`` (older models fall back to the tokenizer's limit, at most 512).
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).to(device).eval()
    id2label = model.config.id2label
    max_length = min(getattr(tokenizer, "model_max_length", 512) or 512, 512)
    order = sorted(range(len(texts)), key=lambda index: len(texts[index]))
    predicted: list[str] = [""] * len(texts)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = tokenizer(
                [texts[index] for index in chunk],
                truncation=True,
                max_length=max_length,
                padding=True,
                return_tensors="pt",
            ).to(device)
            ids = model(**batch).logits.argmax(dim=-1).tolist()
            for index, label_id in zip(chunk, ids, strict=True):
                predicted[index] = id2label[label_id]
    return predicted


def model_labels(model_dir: Path) -> list[str]:
    """The label names a saved classifier predicts (``label_map.json``, else the config's ``id2label``)."""
    import json

    label_map = model_dir / "label_map.json"
    if label_map.is_file():
        return sorted(json.loads(label_map.read_text(encoding="utf-8")))
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    return sorted(str(label) for label in config.get("id2label", {}).values())
