"""The training set's policy (``train.window``) and the warm start from the champion, on a tiny BERT."""

import json
import logging
import shutil

import pandas as pd
import pytest

from feedbackflow.errors import ConfigError
from feedbackflow.modeling.predict import model_digest
from feedbackflow.modeling.warm_start import start_point
from feedbackflow.modeling.window import select_window
from feedbackflow.settings import TrainWindowSettings
from tests.helpers import TEMPLATES, build_tiny_bert, tiny_corpus, tiny_training_project

LABELS = sorted(TEMPLATES)


def window(**changes) -> TrainWindowSettings:
    values = {"max_rows": None, "max_days": None, "min_rows_per_label": 0, "replay_share": 0.0, "warm_start": False}
    return TrainWindowSettings(**{**values, **changes})


def history(days: int = 10, per_day: int = 8) -> pd.DataFrame:
    """``per_day`` rows a day over ``days`` days, shuffled; label ``praise`` only on the first day."""
    rows = []
    for day in range(days):
        for n in range(per_day):
            label = "praise" if day == 0 else ["billing", "delivery", "login"][n % 3]
            rows.append({"id": f"d{day}-{n}", "label": label, "created_at": f"2026-11-{day + 1:02d}T0{n}:00:00Z"})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0).reset_index(drop=True)


def test_without_limits_every_row_is_kept_in_its_order():
    frame = history()
    selection = select_window(frame, window(min_rows_per_label=50, replay_share=0.5), seed=1)
    assert selection.rows.equals(frame)
    assert selection.report["rows_selected"] == len(frame) and selection.report["replay_rows"] == 0


def test_the_window_is_the_newest_rows_and_the_newest_days():
    frame = history()
    by_rows = select_window(frame, window(max_rows=12), seed=1)
    newest = frame.sort_values(["created_at", "id"], ascending=[False, True]).head(12)
    assert set(by_rows.rows["id"]) == set(newest["id"]) and by_rows.report["rows_in_window"] == 12
    assert list(by_rows.rows.index) == sorted(by_rows.rows.index)  # the split's order, not the window's
    by_days = select_window(frame, window(max_days=2.5), seed=1)  # newest row: day 10, 07:00
    assert set(by_days.rows["created_at"].str[:10]) == {"2026-11-08", "2026-11-09", "2026-11-10"}
    both = select_window(frame, window(max_rows=5, max_days=2.5), seed=1)
    assert both.report["rows_in_window"] == 5


def test_a_label_missing_from_the_window_keeps_its_newest_rows_up_to_the_minimum():
    frame = history()
    selection = select_window(frame, window(max_rows=24, min_rows_per_label=5), seed=1)  # 6+ a label
    praise = selection.rows[selection.rows["label"] == "praise"]
    assert sorted(praise["id"]) == [f"d0-{n}" for n in range(3, 8)]  # the 5 newest of day 1
    assert selection.report["labels_topped_up"] == {"praise": 5}
    assert selection.report["rows_added_for_label_minimum"] == 5
    assert selection.report["fewest_rows_of_a_label"] == 5


def test_the_replay_sample_is_older_rows_sized_by_its_share_and_fixed_by_the_seed():
    frame = history()
    policy = window(max_rows=20, replay_share=0.5)
    first, again, other = (select_window(frame, policy, seed) for seed in (1, 1, 2))
    assert first.rows.equals(again.rows)
    assert set(first.rows["id"]) != set(other.rows["id"])
    assert first.report["replay_rows"] == 10 and len(first.rows) == 30
    in_window = set(select_window(frame, window(max_rows=20), seed=1).rows["id"])
    replayed = set(first.rows["id"]) - in_window
    assert len(replayed) == 10 and replayed.isdisjoint(in_window)


def champion_folder(root, labels):
    """A 'champion': the tiny BERT with a trained-looking head for ``labels`` and its label map."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    base = build_tiny_bert(root / "base")
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=len(labels), ignore_mismatched_sizes=True
    )
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.01)  # weights the base model does not have
    folder = root / "champion"
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(base).save_pretrained(folder)
    (folder / "label_map.json").write_text(json.dumps({label: index for index, label in enumerate(labels)}))
    return str(base), folder


def loaded_parameters(model_dir, labels):
    from feedbackflow.modeling.training import _load_base_model

    _, model = _load_base_model(model_dir, labels, {label: index for index, label in enumerate(labels)})
    return model.state_dict()


def test_warm_start_loads_the_champions_weights_head_included(tmp_path):
    from safetensors.torch import load_file

    base, champion = champion_folder(tmp_path, LABELS)
    start = start_point(base, champion, {"version": "v3", "model_sha256": model_digest(champion)}, LABELS)
    assert start.model == str(champion)
    assert start.report == {"warm_start": True, "champion_version": "v3", "champion_sha256": model_digest(champion)}
    saved, loaded = load_file(champion / "model.safetensors"), loaded_parameters(start.model, LABELS)
    assert set(saved) <= set(loaded)
    assert all(loaded[name].equal(saved[name]) for name in saved)  # the classifier head too: nothing re-initialised


def test_no_champion_or_another_label_set_falls_back_to_the_base_model_saying_why(tmp_path, caplog):
    base, champion = champion_folder(tmp_path, LABELS)
    pointer = {"version": "v3", "model_sha256": model_digest(champion)}
    with caplog.at_level(logging.WARNING, logger="feedbackflow.modeling.warm_start"):
        none_yet = start_point(base, tmp_path / "absent", {"version": None}, LABELS)
        relabelled = start_point(base, champion, pointer, [*LABELS, "refund"])
        reordered = start_point(base, champion, pointer, list(reversed(LABELS)))
    assert none_yet.model == relabelled.model == reordered.model == base
    assert none_yet.report == {"warm_start": False, "reason": "no champion in the registry yet"}
    assert relabelled.report["reason"] == "champion v3 predicts another label set than the taxonomy"
    assert "warm start asked for, but no champion in the registry yet: training from the base model" in caplog.text
    assert "champion v3 predicts another label set" in caplog.text


def test_a_worker_holding_other_weights_than_the_registrys_champion_refuses(tmp_path):
    base, champion = champion_folder(tmp_path, LABELS)
    with pytest.raises(ConfigError, match=r"feedbackflow registry pull"):
        start_point(base, champion, {"version": "v3", "model_sha256": "0" * 64}, LABELS)


def test_the_train_stage_trains_the_window_from_the_champion_and_reports_it(tmp_path):
    from feedbackflow.stages import split, train

    rows = [
        {**row, "created_at": f"2026-11-{1 + index % 20:02d}T10:00:00Z"} for index, row in enumerate(tiny_corpus(30))
    ]
    paths, settings = tiny_training_project(tmp_path, rows)
    _, champion = champion_folder(tmp_path / "made", LABELS)
    shutil.copytree(champion, paths.champion)
    paths.registry.mkdir(parents=True, exist_ok=True)
    pointer = {"version": "v7", "model_sha256": model_digest(paths.champion)}
    (paths.registry / "champion.json").write_text(json.dumps(pointer))
    policy = window(max_rows=40, min_rows_per_label=12, replay_share=0.25, warm_start=True)
    train_settings = settings.train.model_copy(update={"window": policy, "epochs": 1})
    settings = settings.model_copy(update={"train": train_settings})
    split.run(settings, paths)
    metrics = train.run(settings, paths)
    chosen = metrics["training_set"]
    assert chosen["warm_start"] is True and chosen["champion_version"] == "v7"
    assert chosen["rows_available"] == len(pd.read_parquet(paths.split / "train.parquet"))
    assert chosen["rows_in_window"] == 40 and chosen["replay_rows"] == 10
    assert chosen["fewest_rows_of_a_label"] >= 12
    assert metrics["train_rows"] == chosen["rows_selected"] < chosen["rows_available"]
    report = json.loads((paths.stage_reports("train") / "metrics.json").read_text())
    assert report["training_set"] == chosen
    card = (paths.challenger / "README.md").read_text()
    assert f"warm-started from champion v7 (weights sha256 `{pointer['model_sha256'][:12]}`)" in card
    assert f"{chosen['rows_selected']} of {chosen['rows_available']} training rows: 40 in the window" in card
