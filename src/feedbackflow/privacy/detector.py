"""The learned name and location detector: a token classifier read as character spans of a text.

The model is the ``detector`` stage's output (``models/detector``, trained on human-labelled tweets and posts by
:mod:`feedbackflow.privacy.detector_training`): a BERT-style encoder with one BIO tag per sub-word over
:data:`LABELS`. :class:`NameDetector` runs it over raw texts and returns :class:`Span` s; the Presidio recognizer
(:mod:`feedbackflow.privacy.recognizers.detector`) and the training stage's dev and test scores both read spans
through :func:`decode`, so what is chosen on dev is what runs.

A sub-word is part of a name when the model gives it at most ``1 - threshold`` of being outside one (``O``);
consecutive such sub-words of one type are one span, a new one starting where a word begins with a ``B-`` tag
more likely than ``I-``. A span always covers whole words ("Okonkwo" is never cut to "Okon").
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feedbackflow.errors import ConfigError

#: The detector's tags: BIO over the two kinds of name it finds.
ENTITIES = ("PERSON", "LOCATION")
LABELS = ("O", "B-PERSON", "I-PERSON", "B-LOCATION", "I-LOCATION")
#: The file beside the weights with the threshold chosen on dev, the labels and the training figures.
META_FILE = "detector.json"
#: Sub-words read at a time: a longer text is read in overlapping windows of this many.
WINDOW_STRIDE = 16


@dataclass(frozen=True)
class Span:
    """One name found: its type, character offsets in the text and the model's mean probability for it."""

    entity: str
    start: int
    end: int
    score: float


def read_meta(model_dir: Path) -> dict[str, Any]:
    """The detector's ``detector.json`` (``enabled`` false when the stage ran with ``anonymise.detector`` off).

    Raises:
        ConfigError: the folder holds no detector (the ``detector`` stage has not run or was not pulled).
    """
    path = model_dir / META_FILE
    if not path.is_file():
        raise ConfigError(
            f"{path}: no learned detector; run `dvc repro detector` (or `dvc pull models/detector`), or set "
            "anonymise.detector to false"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def detector_identity(model_dir: Path) -> str:
    """The first 16 hex digits of the SHA-256 of the detector's files (weights, tokenizer, threshold): a new
    detector changes the anonymiser's config hash, so everything is anonymised again."""
    digest = hashlib.sha256()
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file() and p.name != "README.md"):
        digest.update(path.relative_to(model_dir).as_posix().encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def decode(text: str, offsets: Sequence[tuple[int, int]], probs: Any, threshold: float) -> list[Span]:
    """The spans of ``text`` that the sub-word probabilities ``probs`` (rows over :data:`LABELS`) say are names.

    ``offsets`` are each sub-word's character offsets (``(0, 0)`` for special tokens).
    """
    spans: list[Span] = []
    current: list[Any] = []  # [entity, start, end, score sum, count]
    for (start, end), row in zip(offsets, probs, strict=True):
        if end <= start:
            continue
        person, location = float(row[1] + row[2]), float(row[3] + row[4])
        if person >= location:
            entity, p, begins = "PERSON", person, row[1] > row[2]
        else:
            entity, p, begins = "LOCATION", location, row[3] > row[4]
        if p < threshold:
            current = _close(text, current, spans)
            continue
        if current and current[0] == entity and (start == current[2] or not begins):
            current[2] = end
            current[3] += p
            current[4] += 1
        else:
            current = _close(text, current, spans)
            current = [entity, start, end, p, 1]
    _close(text, current, spans)
    return spans


def _close(text: str, current: list[Any], spans: list[Span]) -> list[Any]:
    if current:
        start, end = current[1], current[2]
        while start > 0 and text[start - 1].isalnum():
            start -= 1
        while end < len(text) and text[end].isalnum():
            end += 1
        if spans and spans[-1].end > start:  # grown into the previous span's word: one span
            last = spans.pop()
            spans.append(Span(last.entity, last.start, end, max(last.score, current[3] / current[4])))
        else:
            spans.append(Span(current[0], start, end, round(current[3] / current[4], 4)))
    return []


def int8(model: Any) -> Any:
    """A copy of ``model`` whose linear layers run in int8 (torch dynamic quantisation; CPU only).

    Activations are scaled per batch, so a text's probabilities may move in the third decimal with its batch mates.
    """
    import torch
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # torch announces the API's move to torchao; the call still does the same
        warnings.simplefilter("ignore")
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


class NameDetector:
    """The detector ready for inference: a tokenizer, a token classifier over :data:`LABELS` and its threshold."""

    def __init__(self, tokenizer: Any, model: Any, threshold: float, max_length: int, batch_size: int = 32) -> None:
        import torch

        self.tokenizer, self.model = tokenizer, model
        self.threshold, self.max_length, self.batch_size = threshold, max_length, batch_size
        self._torch = torch

    @classmethod
    def load(cls, model_dir: Path, threshold: float | None = None) -> NameDetector:
        """Load ``models/detector`` on the CPU (``threshold`` None: the one chosen on dev), in int8 when the stage
        chose it in int8 (``detector.int8``).

        Raises:
            ConfigError: no detector in ``model_dir``, or one trained with ``anonymise.detector`` off.
        """
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        meta = read_meta(model_dir)
        if not meta.get("enabled", True):
            raise ConfigError(
                f"{model_dir}: the detector stage ran with anonymise.detector off; turn it on and re-run "
                "`dvc repro detector`"
            )
        model = AutoModelForTokenClassification.from_pretrained(model_dir).eval()
        if meta.get("int8", False):
            model = int8(model)
        chosen = float(meta["threshold"] if threshold is None else threshold)
        return cls(AutoTokenizer.from_pretrained(model_dir), model, chosen, int(meta["max_length"]))

    def probabilities(self, texts: Sequence[str]) -> list[tuple[list[tuple[int, int]], Any]]:
        """Each text's sub-word offsets and label probabilities (windows of ``max_length`` merged, first wins).

        Texts are read in batches of similar length (little padding), and each result is returned in ``texts``'
        order.
        """
        order = sorted(range(len(texts)), key=lambda n: len(texts[n]))
        results: list[Any] = [None] * len(texts)
        for begin in range(0, len(order), self.batch_size):
            chosen = order[begin : begin + self.batch_size]
            for n, result in zip(chosen, self._batch([texts[n] for n in chosen]), strict=True):
                results[n] = result
        return results

    def _batch(self, batch: list[str]) -> list[tuple[list[tuple[int, int]], Any]]:
        encoded = self.tokenizer(
            batch,
            truncation=True,
            max_length=self.max_length,
            stride=WINDOW_STRIDE,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding=True,
            return_tensors="pt",
        )
        owners = encoded.pop("overflow_to_sample_mapping").tolist()
        offsets = encoded.pop("offset_mapping").tolist()
        with self._torch.inference_mode():
            probs = self._torch.softmax(self.model(**encoded).logits, dim=-1).numpy()
        merged: dict[int, dict[tuple[int, int], Any]] = {n: {} for n in range(len(batch))}
        for window, owner in enumerate(owners):
            for offset, row in zip(offsets[window], probs[window], strict=True):
                if offset[1] > offset[0]:
                    merged[owner].setdefault(tuple(offset), row)
        pairs = [sorted(merged[n].items()) for n in range(len(batch))]
        return [([p[0] for p in found], [p[1] for p in found]) for found in pairs]

    def spans(self, texts: Sequence[str], threshold: float | None = None) -> list[list[Span]]:
        """The names found in each text, in order."""
        cut = self.threshold if threshold is None else threshold
        return [
            decode(text, offsets, probs, cut)
            for text, (offsets, probs) in zip(texts, self.probabilities(texts), strict=True)
        ]
