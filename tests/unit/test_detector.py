"""The learned name and location detector: decoding, corpora, the detector stage and its place in the anonymiser.

One tiny random BERT is fine-tuned once per session on a few synthetic sentences (seconds on a CPU); the real
detector's figures come from ``make bench-pii-real``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import ConfigError, DataQualityError
from feedbackflow.privacy.detector import LABELS, NameDetector, decode, detector_identity, read_meta
from feedbackflow.privacy.detector_training import Sentence, mention_scores, read_split
from tests.helpers import build_tiny_bert, params_settings

PEOPLE = ["Anna", "Marcus", "Priya", "Tomasz", "Chidi", "Lena", "Omar", "Sofia", "Kenji", "Maya"]
PLACES = ["Leeds", "Lagos", "Krakow", "Osaka", "Lima", "Perth"]


def _row(person: str, place: str, n: int) -> dict:
    tokens = ["thanks", person, "for", "the", "help", "in", place, "today", "ticket", str(n)]
    tags = ["O", "B-PERSON", "O", "O", "O", "O", "B-LOCATION", "O", "O", "O"]
    return {"tokens": tokens, "tags": tags, "orig_tags": tags}


def _corpus(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "SOURCE.md").write_text(
        "# Tiny test corpus\n\n- License: made for this test, CC BY 4.0\n", encoding="utf-8"
    )
    splits = {
        "train": [_row(PEOPLE[n % 7], PLACES[n % 4], n) for n in range(64)],
        "dev": [_row(PEOPLE[7 + n % 3], PLACES[4 + n % 2], n) for n in range(12)],
        "test": [_row(PEOPLE[7 + n % 3], PLACES[4 + n % 2], n) for n in range(12)],
    }
    for split, rows in splits.items():
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[ProjectPaths, object, dict]:
    """A project whose detector stage fine-tuned a tiny BERT on the tiny corpus; (paths, settings, stage result)."""
    from feedbackflow.stages import detector

    root = tmp_path_factory.mktemp("detector")
    _corpus(root / "data" / "tiny")
    tiny = {"epochs": 3, "batch_size": 8, "learning_rate": 0.003, "max_length": 24, "num_threads": 1}
    settings = params_settings(
        anonymise={"detector": True},
        detector={"base_model": str(build_tiny_bert(root / "tiny-bert")), "corpora": ["data/tiny"], **tiny},
    )
    paths = ProjectPaths(root)
    return paths, settings, detector.run(settings, paths)


def test_decode_reads_whole_words_and_splits_names_at_b_tags():
    text = "ask Okonkwo or Ana Li"
    offsets = [(0, 3), (4, 8), (8, 11), (12, 14), (15, 18), (19, 21)]
    o, b_per, i_per = [0.9, 0.05, 0.05, 0, 0], [0.1, 0.8, 0.1, 0, 0], [0.1, 0.1, 0.8, 0, 0]
    probs = np.array([o, b_per, [0.5, 0.2, 0.3, 0, 0], o, b_per, b_per])
    spans = decode(text, offsets, probs, threshold=0.4)
    assert [(s.entity, text[s.start : s.end]) for s in spans] == [
        ("PERSON", "Okonkwo"),
        ("PERSON", "Ana"),
        ("PERSON", "Li"),
    ]
    probs[5] = i_per  # "Li" continues "Ana": one name
    assert [text[s.start : s.end] for s in decode(text, offsets, probs, 0.4)] == ["Okonkwo", "Ana Li"]
    assert decode(text, offsets, probs, 0.95) == []  # the threshold decides


def test_mentions_and_scores_count_gold_names_a_span_overlaps():
    sentence = Sentence(
        ["@", "anna_k", "in", "New", "York", "at", "Acme"],
        ["B-PERSON", "I-PERSON", "O", "B-LOCATION", "I-LOCATION", "O", "O"],
    )
    assert sentence.mentions() == [("PERSON", 0, 8), ("LOCATION", 12, 20)]
    assert sentence.text[12:20] == "New York"
    found = decode(sentence.text, [(2, 8), (25, 29)], np.array([[0, 0.9, 0.1, 0, 0], [0, 0.9, 0.1, 0, 0]]), 0.5)
    scores = mention_scores([found], [sentence])
    assert (scores["coverage"], scores["precision"], scores["mentions"]) == (0.5, 0.5, 2)


def test_corpora_map_other_types_to_o_and_name_the_bad_line(tmp_path):
    folder = _corpus(tmp_path / "c")
    with (folder / "dev.jsonl").open("a") as handle:
        handle.write(json.dumps({"tokens": ["Acme", "Ltd"], "tags": ["B-ORGANIZATION", "I-ORGANIZATION"]}) + "\n")
        handle.write(json.dumps({"tokens": [], "tags": []}) + "\n")
    dev = read_split(folder, "dev")
    assert len(dev) == 13 and dev[-1].tags == ["O", "O"]  # organisations are no personal data; empty tweets skipped
    with (folder / "test.jsonl").open("a") as handle:
        handle.write(json.dumps({"tokens": ["a", "b"], "tags": ["O"]}) + "\n")
    with pytest.raises(DataQualityError, match=r"test\.jsonl, line 13: 2 tokens but 1 tags"):
        read_split(folder, "test")


def test_stage_trains_a_detector_with_a_card_naming_its_data_licence_and_figures(trained):
    paths, _, result = trained
    meta = read_meta(paths.detector)
    _, settings, _ = trained
    assert meta["labels"] == list(LABELS) and meta["threshold"] in settings.detector.thresholds
    assert meta["int8"] is True  # params.yaml: dev chose the threshold with the model as it runs
    assert result["test"]["tiny"]["mentions"] == 24
    card = (paths.detector / "README.md").read_text()
    assert "license: cc-by-4.0" in card and "`tiny`: Tiny test corpus. Licence: CC BY 4.0." in card
    assert "## Dev figures (chose the model)" in card and "## Test figures (reported once, chose nothing)" in card
    assert json.loads((paths.stage_reports("detector") / "metrics.json").read_text())["epoch"] == meta["epoch"]
    # the tiny model learns where names stand: it finds dev names it never saw in training
    assert result["dev"]["tiny"]["coverage"] >= 0.5, result["dev"]


def test_the_anonymiser_runs_the_detector_and_its_hash_is_in_the_config_hash(trained):
    from feedbackflow.privacy import engine as privacy
    from feedbackflow.stages import anonymise

    paths, settings, _ = trained
    engine = privacy.build_engine(settings.anonymise, paths.detector)
    assert "LearnedNameRecognizer" in {r.name for r in engine.analyzer.registry.recognizers}
    text = "thanks Kenji for the help in Lima today ticket 3"
    findings = privacy.analyze_texts([text], engine)[0]
    assert any(f.recognition_metadata.get("recognizer_name") == "LearnedNameRecognizer" for f in findings)

    identity = detector_identity(paths.detector)
    assert anonymise.config_hash(settings.anonymise, identity) != anonymise.config_hash(settings.anonymise, "0" * 16)
    off = params_settings().anonymise  # tests run with the detector off: its hash does not count
    assert anonymise.config_hash(off, identity) == anonymise.config_hash(off, None)
    assert NameDetector.load(paths.detector, threshold=0.9).threshold == 0.9


def test_the_detector_runs_in_int8_and_batches_by_length_without_mixing_texts_up(trained):
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear
    from transformers import AutoModelForTokenClassification

    paths, _, _ = trained
    loaded = NameDetector.load(paths.detector)
    assert isinstance(loaded.model.classifier, Int8Linear)
    texts = [f"thanks {p} for the help in {PLACES[n % 6]} today" + " ticket 7" * (n % 4) for n, p in enumerate(PEOPLE)]
    texts.insert(3, "")
    float32 = AutoModelForTokenClassification.from_pretrained(paths.detector).eval()
    detector = NameDetector(loaded.tokenizer, float32, loaded.threshold, loaded.max_length, batch_size=4)
    assert detector.spans(texts) == [detector.spans([text])[0] for text in texts]
    found = loaded.spans(texts)
    assert [texts[0][s.start : s.end] for s in found[0] if s.entity == "PERSON"] == ["Anna"]


def test_detector_off_writes_only_a_marker_and_on_without_a_model_says_what_to_run(tmp_path):
    from feedbackflow.privacy import engine as privacy
    from feedbackflow.stages import detector

    paths = ProjectPaths(tmp_path)
    assert detector.run(params_settings(), paths) == {"enabled": False}
    assert [p.name for p in paths.detector.iterdir()] == ["detector.json"]
    with pytest.raises(ConfigError, match=r"anonymise\.detector off"):
        NameDetector.load(paths.detector)
    with pytest.raises(ConfigError, match="dvc repro detector"):
        privacy.build_engine(params_settings(anonymise={"detector": True}).anonymise, tmp_path / "nothing")
