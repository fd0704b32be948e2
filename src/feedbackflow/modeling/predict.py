"""Batch inference with a saved classifier folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from feedbackflow.io import file_digest
from feedbackflow.modeling.oos import CALIBRATION_FILE, Calibration


def model_digest(model_dir: Path) -> str:
    """SHA-256 of the weights file: identifies a model version independently of where it is stored."""
    return file_digest(model_dir / "model.safetensors")


def predict_logits(
    model_dir: Path, texts: list[str], batch_size: int = 128, device: str = "cpu"
) -> tuple[np.ndarray, dict[int, str]]:
    """Return the logits of each text (one row per text, in input order) and the model's ``id2label``.

    Texts are sorted by length before batching so each batch pads to similar lengths, then put back in order.
    They are truncated where training truncated them: the train stage saves ``train.max_length`` as the tokenizer's
    ``model_max_length`` (older models fall back to the tokenizer's limit, at most 512).
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).to(device).eval()
    id2label = {int(index): str(label) for index, label in model.config.id2label.items()}
    max_length = min(getattr(tokenizer, "model_max_length", 512) or 512, 512)
    order = sorted(range(len(texts)), key=lambda index: len(texts[index]))
    logits = np.zeros((len(texts), len(id2label)), dtype=np.float32)
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
            logits[chunk] = model(**batch).logits.float().cpu().numpy()
    return logits, id2label


def predict_labels(model_dir: Path, texts: list[str], batch_size: int = 128, device: str = "cpu") -> list[str]:
    """Return the predicted label name of each text, in input order (the closed-set argmax, never ``unknown``)."""
    logits, id2label = predict_logits(model_dir, texts, batch_size, device)
    return [id2label[int(index)] for index in logits.argmax(axis=1)] if len(texts) else []


def load_calibration(model_dir: Path) -> Calibration:
    """The model's temperature and ``unknown`` threshold (``calibration.json``); a model without one never abstains."""
    path = model_dir / CALIBRATION_FILE
    if not path.is_file():
        return Calibration()
    return Calibration.from_dict(json.loads(path.read_text(encoding="utf-8")))


def predict_decisions(model_dir: Path, texts: list[str], batch_size: int = 128, device: str = "cpu") -> list[str]:
    """The label of each text after the ``unknown`` decision: below the model's threshold a text is ``unknown``."""
    logits, id2label = predict_logits(model_dir, texts, batch_size, device)
    return load_calibration(model_dir).decide(logits, id2label)


def model_labels(model_dir: Path) -> list[str]:
    """The label names a saved classifier predicts (``label_map.json``, else the config's ``id2label``)."""
    label_map = model_dir / "label_map.json"
    if label_map.is_file():
        return sorted(json.loads(label_map.read_text(encoding="utf-8")))
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    return sorted(str(label) for label in config.get("id2label", {}).values())
