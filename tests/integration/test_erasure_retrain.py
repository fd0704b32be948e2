"""The next run retrains without the rows: after ``forget``, the split and train stages (a tiny BERT on a CPU)
read data without the subject's rows, and the new model's card names the new split files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from feedbackflow.governance.erasure import ErasureRequest, forget
from feedbackflow.modeling.card import file_md5
from feedbackflow.stages import split, train
from tests.helpers import tiny_corpus, tiny_training_project

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _plant_raw(paths, ids: list[str]) -> None:
    """The subject's rows as they were delivered: the e-mail in the text, under the ids anonymise kept."""
    paths.raw.mkdir(parents=True, exist_ok=True)
    rows = [{"id": i, "text": f"this is Jane.Roe@example.com about ticket {i}", "label": "billing"} for i in ids]
    pd.DataFrame(rows).to_csv(paths.raw / "night1.csv", index=False)
    entry = {"batch_id": "b1", "sequence": 1, "source": "folder", "key": "n1.csv", "size": 1, "sha256": "0" * 64}
    (paths.raw / "_manifest.jsonl").write_text(json.dumps({**entry, "raw_file": "night1.csv"}) + "\n")


def _split_ids(paths) -> set[str]:
    return {
        str(i)
        for name in ("train", "validation", "test")
        for i in pd.read_parquet(paths.split / f"{name}.parquet")["id"]
    }


def test_the_next_run_retrains_without_the_erased_rows(tmp_path, monkeypatch):
    root = tmp_path / "project"
    root.mkdir()
    paths, settings = tiny_training_project(root, tiny_corpus(12))
    settings = settings.model_copy(update={"train": settings.train.model_copy(update={"epochs": 2})})
    (root / "dvc.yaml").write_text((ROOT / "dvc.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    config = root / ".dvc" / "config"
    config.write_text(config.read_text().replace("[core]\n", "[core]\n    no_scm = True\n"))
    monkeypatch.setenv("FEEDBACKFLOW_ERASURE_KEY", "erasure-test-key-6b1d0c8e2f")
    split.run(settings, paths)
    subject = sorted(str(i) for i in pd.read_parquet(paths.split / "train.parquet")["id"])[:3]
    _plant_raw(paths, subject)
    before = {name: file_md5(paths.split / f"{name}.parquet") for name in ("train", "validation")}
    rows_before = len(pd.read_parquet(paths.split / "train.parquet"))

    certificate = forget(paths, settings, ErasureRequest("REQ-T", {"email": ["jane.roe@example.com"]}, "dpo"))
    assert certificate["state"] == "done" and certificate["rows_removed"]["anonymised"] == 3

    split.run(settings, paths)  # the next run: anonymised changed, so DVC re-runs split, then train
    metrics = train.run(settings, paths)

    assert not set(subject) & _split_ids(paths), "a re-split brought the erased rows back"
    trained_on = pd.read_parquet(paths.split / "train.parquet")
    assert len(trained_on) == rows_before - 3
    card = (paths.challenger / "README.md").read_text(encoding="utf-8")
    assert file_md5(paths.split / "train.parquet") in card and before["train"] not in card
    assert metrics["epochs_run"] == 2 and (paths.challenger / "model.safetensors").is_file()
