"""Sentence embeddings and champion predictions for drift, cached by text hash.

Each text is keyed by the SHA-256 of its UTF-8 bytes. The reference side (the champion's training rows) is the same
night after night, so once embedded or predicted it is read back from the cache instead of being recomputed: only
new texts pay for a forward pass. Caches are per model (the embedding model's folder name, or the champion's
weights digest) under ``.work/monitor/``; they hold vectors and label ids or names, never text.

:func:`encode_with_champion` is the fast path (``monitor.embedding_model: champion``): one forward pass of the
champion gives both the predicted label (its classification head) and the sentence embedding (the mean-pooled last
hidden state of its own encoder, L2-normalised), instead of one pass of the champion plus one of a second encoder.
On two CPU cores the forward passes are what a drift check spends its time on (see ``benchmarks/bench_drift.py``).

torch and transformers are imported inside the functions (nothing heavy at import time).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feedbackflow.io import atomic_path

if TYPE_CHECKING:
    import numpy as np


def text_keys(texts: Sequence[str]) -> list[str]:
    """SHA-256 hex digest of each text (the cache key; the text itself is never stored)."""
    return [hashlib.sha256(text.encode("utf-8")).hexdigest() for text in texts]


class KeyedCache:
    """An append-only ``key -> row`` store in one ``.npz`` file (``keys`` and ``values`` arrays)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> tuple[dict[str, int], np.ndarray | None]:
        import numpy as np

        if not self.path.is_file():
            return {}, None
        with np.load(self.path, allow_pickle=False) as data:
            keys, values = data["keys"], data["values"]
        return {str(key): index for index, key in enumerate(keys)}, values

    def get_or_compute(self, texts: Sequence[str], compute: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """Rows for ``texts`` in order; ``compute`` is called once, on the texts the cache lacks.

        Returns:
            An array with one row per text (or one value per text for 1-D caches).
        """
        import numpy as np

        keys = text_keys(texts)
        index, values = self._load()
        first: dict[str, int] = {}
        for position, key in enumerate(keys):
            if key not in index:
                first.setdefault(key, position)
        missing = list(first.items())
        if missing:
            fresh = compute([texts[i] for _, i in missing])
            start = 0 if values is None else len(values)
            values = fresh if values is None else np.concatenate([values, fresh])
            for offset, (key, _) in enumerate(missing):
                index[key] = start + offset
            all_keys = np.array(sorted(index, key=index.__getitem__))
            with atomic_path(self.path) as partial, partial.open("wb") as handle:
                np.savez(handle, keys=all_keys, values=values)
        assert values is not None
        return values[[index[key] for key in keys]]


def _mean_pool(model_dir: str, texts: list[str], batch_size: int, max_length: int) -> np.ndarray:
    """L2-normalised mean-pooled token embeddings (how all-MiniLM-L6-v2 forms sentence embeddings)."""
    import numpy as np
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = tokenizer(
                [texts[i] for i in chunk], truncation=True, max_length=max_length, padding=True, return_tensors="pt"
            )
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[chunk] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
    return out


def embed(
    texts: Sequence[str], model_dir: str, cache_dir: Path, batch_size: int = 64, max_length: int = 64
) -> np.ndarray:
    """Sentence embeddings of ``texts`` (float32, one row per text), computed once per distinct text."""
    cache = KeyedCache(cache_dir / f"embeddings-{Path(model_dir).name}-{max_length}.npz")
    return cache.get_or_compute(texts, lambda todo: _mean_pool(model_dir, todo, batch_size, max_length))


def predict(texts: Sequence[str], model_dir: Path, model_key: str, cache_dir: Path, batch_size: int = 128) -> list[str]:
    """The champion's decision on each text (an intent or ``unknown``), once per distinct text and model version.

    The cache is keyed by the weights and the calibration file, so a refitted threshold is never read from an old
    cache.
    """
    import numpy as np

    from feedbackflow.modeling.oos import CALIBRATION_FILE
    from feedbackflow.modeling.predict import predict_decisions

    calibration = model_dir / CALIBRATION_FILE
    suffix = hashlib.sha256(calibration.read_bytes()).hexdigest()[:8] if calibration.is_file() else "none"
    cache = KeyedCache(cache_dir / f"predictions-{model_key[:16]}-{suffix}.npz")
    values = cache.get_or_compute(
        texts, lambda todo: np.array(predict_decisions(model_dir, todo, batch_size=batch_size), dtype=str)
    )
    return [str(value) for value in values]


INFERENCE_DTYPES = ("float32", "bfloat16")
"""Precisions of the monitor's champion pass: ``bfloat16`` runs the encoder's matrix products under CPU autocast
(native on CPUs with AVX512-BF16/AMX, about twice as fast there; emulated, and slower, elsewhere)."""


def native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU multiplies bf16 natively (Linux flags ``avx512_bf16`` or ``amx_bf16``); False if unknown."""
    try:
        flags = cpuinfo.read_text(errors="replace")
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def resolve_dtype(setting: str) -> str:
    """``monitor.inference_dtype`` as used: ``auto`` is ``bfloat16`` on CPUs with native bf16, else ``float32``."""
    if setting == "auto":
        return "bfloat16" if native_bf16() else "float32"
    return setting


def forward_pass(model: Any, tokenizer: Any, texts: list[str], batch_size: int, dtype: str = "float32") -> np.ndarray:
    """Per text: the mean-pooled, L2-normalised last hidden state, then the classifier's logits (last columns).

    Texts go through in length order (little padding), truncated at the tokenizer's ``model_max_length`` (capped at
    512). ``dtype`` ``bfloat16``: under CPU autocast; the outputs are float32 either way.
    """
    import numpy as np
    import torch

    if dtype not in INFERENCE_DTYPES:
        raise ValueError(f"inference dtype {dtype!r}: use one of {', '.join(INFERENCE_DTYPES)}")
    max_length = min(getattr(tokenizer, "model_max_length", 512) or 512, 512)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    hidden_size = model.config.hidden_size
    out = np.zeros((len(texts), hidden_size + model.config.num_labels), dtype=np.float32)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16")
    with torch.inference_mode(), autocast:
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            batch = tokenizer(
                [texts[i] for i in chunk], truncation=True, max_length=max_length, padding=True, return_tensors="pt"
            )
            output = model(**batch, output_hidden_states=True)
            hidden = output.hidden_states[-1].float()
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[chunk, :hidden_size] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
            out[chunk, hidden_size:] = output.logits.float().numpy()
    return out


NEAR_TIE = 0.02
"""A bf16 label is re-decided in float32 when its two best logits are closer than this share of the best one's size
(at least 1): bf16 keeps about 3 significant digits, so rounding can only flip such near-ties (measured: without the
re-check bf16 agreed with float32 on 98.9-99.5 % of labels, with it on all; ``benchmarks/bench_drift_encoder.py``)."""


def champion_outputs(model: Any, tokenizer: Any, texts: list[str], batch_size: int, dtype: str) -> np.ndarray:
    """:func:`forward_pass` in ``dtype``; with ``bfloat16``, near-ties (:data:`NEAR_TIE`) are passed again in
    float32, so the labels are float32's while most texts cost a bf16 pass."""
    import numpy as np

    out = forward_pass(model, tokenizer, texts, batch_size, dtype)
    if dtype == "float32" or not len(texts):
        return out
    logits = out[:, model.config.hidden_size :]
    second, best = np.sort(logits, axis=1)[:, -2:].T if logits.shape[1] > 1 else (logits[:, 0], logits[:, 0])
    near = np.flatnonzero(best - second < NEAR_TIE * np.maximum(1.0, np.abs(best)))
    if len(near) and logits.shape[1] > 1:
        out[near] = forward_pass(model, tokenizer, [texts[i] for i in near], batch_size, "float32")
    return out


def _champion_pass(
    model_dir: Path, texts: list[str], batch_size: int, dtype: str = "float32", threads: int = 0
) -> np.ndarray:
    """:func:`champion_outputs` of the champion in ``model_dir``.

    Truncation is the champion's own (the train stage saves ``train.max_length`` as the tokenizer's
    ``model_max_length``), as in :func:`feedbackflow.modeling.predict.predict_labels`, so the labels are the ones the
    champion serves (``bfloat16``: near-ties re-decided in float32). ``threads``: torch threads for the pass
    (0: torch's default, one per core), restored afterwards.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads or previous)
    try:
        return champion_outputs(model, tokenizer, texts, batch_size, dtype)
    finally:
        torch.set_num_threads(previous)


def encode_with_champion(
    texts: Sequence[str],
    model_dir: Path,
    model_key: str,
    cache_dir: Path,
    batch_size: int = 64,
    dtype: str = "float32",
    threads: int = 0,
) -> tuple[np.ndarray, list[str]]:
    """Sentence embeddings (float32, one row per text) and the champion's decisions from one pass of the champion.

    A decision is an intent or ``unknown`` (below the champion's calibrated threshold, as in
    :func:`feedbackflow.modeling.predict.predict_decisions`). Computed once per distinct text and champion version
    (cached by text hash and the champion's weights digest; the decision is re-made from the cached logits).
    """
    import json

    from feedbackflow.modeling.predict import load_calibration

    # one cache per precision: the reference and current sides of a report always come from the same one
    cache = KeyedCache(cache_dir / f"champion-logits-{model_key[:16]}-{dtype}.npz")
    values = cache.get_or_compute(texts, lambda todo: _champion_pass(model_dir, todo, batch_size, dtype, threads))
    config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    id2label = {int(key): str(label) for key, label in config["id2label"].items()}
    hidden_size = values.shape[1] - len(id2label)
    decisions = load_calibration(Path(model_dir)).decide(values[:, hidden_size:], id2label)
    return values[:, :hidden_size], [str(decision) for decision in decisions]


def vocabulary(model_dir: str) -> frozenset[str]:
    """The whole-word entries of the embedding model's WordPiece vocabulary (for the out-of-vocabulary share)."""
    vocab_file = Path(model_dir) / "vocab.txt"
    words = vocab_file.read_text(encoding="utf-8").split("\n") if vocab_file.is_file() else []
    return frozenset(word for word in words if word and not word.startswith(("##", "[")))
