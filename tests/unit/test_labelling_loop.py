"""The review loop without a server: push writes Label Studio import JSON, a reviewer's export is read back, and the
labels reach the validated data through ingest and validate (latest wins, disputes held back, out of scope -> oos)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pandas as pd

from feedbackflow.config import ProjectPaths
from feedbackflow.labelling import loop, store
from feedbackflow.modeling.oos import CALIBRATION_FILE, Calibration, scores
from feedbackflow.modeling.predict import predict_logits
from feedbackflow.stages import ingest, validate
from feedbackflow.storage import partitions
from tests.helpers import TEMPLATES, build_tiny_bert, params_settings

LABELS = sorted(TEMPLATES)
CREATED = "2026-12-01T08:00:00Z"


def _champion(paths: ProjectPaths, texts: list[str]) -> None:
    """A tiny BERT over the taxonomy whose unknown threshold makes half of ``texts`` unknown."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    base = build_tiny_bert(paths.root / "tiny-bert")
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        base,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={n: i for i, n in enumerate(LABELS)},
        ignore_mismatched_sizes=True,
    )
    model.save_pretrained(paths.champion)
    AutoTokenizer.from_pretrained(base).save_pretrained(paths.champion)
    logits, _ = predict_logits(paths.champion, texts)
    threshold = float(np.median(scores(logits, 1.0, "msp")))
    calibration = Calibration(temperature=1.0, method="msp", threshold=threshold)
    (paths.champion / CALIBRATION_FILE).write_text(json.dumps(calibration.to_dict()), encoding="utf-8")


def _deliver(paths: ProjectPaths, name: str, rows: list[list[str]]) -> None:
    landing = paths.root / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    with (landing / name).open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["id", "text", "label", "channel", "created_at"], *rows])


def _night(settings, paths: ProjectPaths) -> pd.DataFrame:
    """ingest and validate as the stages run them; the validated rows stand in for the anonymised ones."""
    ingest.run(settings, paths)
    validate.run(settings, paths)
    validated = pd.read_parquet(paths.validated / "feedback.parquet")
    partitions.write_frame(paths.anonymised, validated)  # anonymise's layout: one part per batch
    return validated


def _review(import_file: Path, export_dir: Path) -> dict[str, str]:
    """A reviewer answers every task: the first 'delivery', the second 'out of scope', the rest 'billing'; a second
    reviewer disagrees on the third. Returns the answer per feedback id."""
    tasks = json.loads(import_file.read_text(encoding="utf-8"))
    export, answers = [], {}
    for number, task in enumerate(tasks):
        choice = ["delivery", "out of scope"][number] if number < 2 else "billing"
        answers[task["data"]["feedback_id"]] = choice
        annotation = {
            "completed_by": 1,
            "updated_at": "2026-12-02T09:00:00+00:00",
            "result": [{"type": "choices", "from_name": "label", "value": {"choices": [choice]}}],
        }
        dissent = {**annotation, "completed_by": 2, "result": [{"type": "choices", "value": {"choices": ["login"]}}]}
        export.append(
            {"id": 100 + number, "data": task["data"], "annotations": [annotation, *([dissent] * (number == 2))]}
        )
    export_dir.mkdir(parents=True, exist_ok=True)
    (export_dir / "project-1-at-2026-12-02.json").write_text(json.dumps(export), encoding="utf-8")
    return answers


def test_a_review_batch_goes_out_as_import_json_and_comes_back_through_validate(tmp_path: Path) -> None:
    paths = ProjectPaths(tmp_path / "project")
    paths.root.mkdir()
    (paths.root / "labels.json").write_text(json.dumps(LABELS), encoding="utf-8")
    settings = params_settings(
        ingest={"landing_dir": "landing", "settle_seconds": 0},
        validate={"taxonomy": "labels.json", "min_rows_per_label": 0, "max_quarantine_share": 0.5},
        labelling={"budget": 6, "unknown_share": 0.5, "qc_share": 0.2},
    )
    phrases = [phrase for label in LABELS for phrase in TEMPLATES[label]]
    _deliver(paths, "night1.csv", [[f"old{n}", phrases[n], LABELS[n % 4], "app", CREATED] for n in range(8)])
    _night(settings, paths)
    unlabelled = [[f"f{n}", f"{phrases[n % 12]} (ticket {n})", "", "web", CREATED] for n in range(12)]
    _deliver(paths, "night2.csv", [*unlabelled, ["kept", "labelled already", "billing", "web", CREATED]])
    _night(settings, paths)
    _champion(paths, [row[1] for row in unlabelled])

    pushed = loop.push(settings, paths)
    assert pushed["sent"] == 6 and pushed["candidates"] == 12  # only the newest delivery's unlabelled rows
    assert pushed["by_reason"] == {"unknown": 3, "uncertain": 2, "qc": 1}
    import_file = paths.root / pushed["destination"]
    assert loop.push(settings, paths)["sent"] == 6  # the next night sends the other rows, never the same again
    queue = store.read_lines(paths.review_queue)
    assert len({row["id"] for row in queue}) == 12 and all(row["id"].startswith("f") for row in queue)
    imports = sorted(paths.review_import.glob("batch-*.json"))
    synced: list[bool] = []
    champion = paths.champion.rename(paths.champion.with_name("champion-away"))  # scoring now would find no model
    idle = loop.push(settings, paths, sync=lambda: synced.append(True))  # every unlabelled row went out before
    assert (idle["sent"], idle["candidates"], synced) == (0, 12, [])  # no champion synced, no model loaded
    assert "destination" not in idle and sorted(paths.review_import.glob("batch-*.json")) == imports
    champion.rename(paths.champion)

    answers = _review(import_file, paths.review_export)
    pulled = loop.pull(settings, paths)
    assert (pulled["labelled"], pulled["disputed"]) == (5, 1)
    assert loop.pull(settings, paths)["labelled"] == 0  # labels are taken once

    validated = _night(settings, paths).set_index("id")["label"]
    disputed = store.read_lines(paths.review_disputes)[0]["id"]
    expected = {key: "oos" if value == "out of scope" else value for key, value in answers.items() if key != disputed}
    assert validated[list(expected)].to_dict() == expected  # the reviewers' labels replaced the unlabelled rows
    assert pd.isna(validated[disputed]) and validated["kept"] == "billing"
    quarantine = pd.read_parquet(paths.quarantine / "quarantine.parquet")
    assert sorted(quarantine.loc[quarantine["rules"] == "id_unique", "id"]) == sorted(expected)  # old rows kept
