"""Artifacts a reviewer reads: the model card (``README.md`` in the model folder) and the confusion-matrix figure.

Both are built from metrics, hashes, settings and counts only; no text from the data set ever reaches them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from feedbackflow.io import file_digest


def file_md5(path: Path) -> str:
    """MD5 of a file's bytes: the hash DVC records for a file output in ``dvc.lock``."""
    return file_digest(path, "md5")


def anonymisation_summary(anonymise_report: dict[str, Any] | None, audit: dict[str, Any] | None) -> list[str]:
    """Markdown bullet lines describing the anonymisation applied to the training data (counts and operators only).

    Args:
        anonymise_report: ``reports/anonymise/anonymise.json`` (entity counts, settings), if present.
        audit: ``reports/anonymise/audit.json`` (counts per entity and operator, key id), if present.
    """
    if not anonymise_report and not audit:
        return ["- No anonymisation report was found next to the training data; treat it as not anonymised."]
    lines = []
    if anonymise_report:
        settings = anonymise_report.get("settings", {})
        entities = anonymise_report.get("entities", {})
        lines.append(
            f"- Presidio replaced personal data with typed placeholders (`<PERSON>`, `<EMAIL_ADDRESS>`, ...) before "
            f"the split: {anonymise_report.get('rows_changed', '?')} of {anonymise_report.get('rows', '?')} rows "
            "changed."
        )
        if entities:
            lines.append("- Entities replaced: " + ", ".join(f"{name} {count}" for name, count in entities.items()))
        if settings:
            lines.append(
                f"- Recognised entity types: {', '.join(settings.get('entities', []))}; score threshold "
                f"{settings.get('score_threshold')}; spaCy model `{settings.get('spacy_model')}`."
            )
    if audit:
        if not anonymise_report and isinstance(audit.get("entities"), dict):
            lines.append("- Entities replaced: " + ", ".join(f"{k} {v}" for k, v in audit["entities"].items()))
        operators = audit.get("operators")
        if isinstance(operators, dict) and operators:
            lines.append("- Operator per entity: " + ", ".join(f"{name} -> {op}" for name, op in operators.items()))
        if audit.get("key_id"):
            lines.append(f"- Pseudonymisation key id: `{audit['key_id']}` (the key itself never leaves the key store).")
        if audit.get("config_hash"):
            lines.append(f"- Anonymisation config hash: `{audit['config_hash']}`.")
        gate = audit.get("leak_gate")
        if isinstance(gate, dict):
            shown = {key: value for key, value in gate.items() if isinstance(value, bool | int | float | str)}
            if shown:
                lines.append("- Leak gate: " + ", ".join(f"{key} {value}" for key, value in shown.items()))
        languages = audit.get("rows_held_back_by_language")
        if isinstance(languages, dict) and languages:
            counts = ", ".join(f"{code} {count}" for code, count in sorted(languages.items()))
            lines.append(f"- Rows held back in languages the detectors do not read: {counts}.")
    return lines


def model_card(
    *,
    base_model: str,
    labels: Sequence[str],
    data_version: dict[str, str],
    params: dict[str, Any],
    seed: int,
    metrics: dict[str, Any],
    history: list[dict[str, Any]],
    anonymisation: list[str],
    calibration: dict[str, Any] | None = None,
) -> str:
    """Render the model card (Markdown with a YAML header, the Hugging Face model-card layout).

    Args:
        base_model: the ``train.base_model`` setting the model was fine-tuned from.
        labels: the label taxonomy, in class-id order.
        data_version: file name -> MD5 of the training and validation split files.
        params: the ``train`` section of ``params.yaml``.
        seed: ``base.seed``.
        metrics: the training metrics (``train_metrics.json``).
        history: the per-epoch rows of ``reports/train/history.csv``.
        anonymisation: lines from :func:`anonymisation_summary`.
        calibration: the model's ``calibration.json`` (temperature, ``unknown`` threshold, validation figures).
    """
    return "\n".join(
        [
            *_front_matter(base_model, len(labels)),
            *_data_and_parameters(data_version, metrics, params, seed),
            *_metrics_table(metrics),
            *_epoch_table(history),
            *calibration_section(calibration),
            *_use_and_limits(params.get("max_length")),
            *_anonymisation_section(anonymisation),
        ]
    )


def _front_matter(base_model: str, label_count: int) -> list[str]:
    """The YAML header and the card's opening paragraph."""
    return [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-classification",
        f"base_model: {base_model}",
        "tags: [feedbackflow, text-classification]",
        "---",
        "",
        "# feedbackflow challenger: customer-feedback intent classifier",
        "",
        f"Fine-tuned from `{base_model}` by the feedbackflow `train` stage to sort customer feedback into "
        f"{label_count} intents. Class ids follow the taxonomy file (`label_map.json`).",
        "",
    ]


def _training_set(chosen: dict[str, Any] | None) -> list[str]:
    """What ``train.window`` kept and where training started (nothing for a model trained before the window)."""
    if not chosen:
        return []
    start = (
        f"warm-started from champion {chosen['champion_version']} (weights sha256 `{chosen['champion_sha256'][:12]}`)"
        if chosen.get("warm_start")
        else "started from the base model"
    )
    kept = (
        f"{chosen['rows_selected']} of {chosen['rows_available']} training rows: {chosen['rows_in_window']} in the "
        f"window, {chosen['rows_added_for_label_minimum']} for the per-label minimum, {chosen['replay_rows']} replayed"
        if chosen.get("bounded")
        else f"all {chosen['rows_available']} training rows (no window)"
    )
    return [f"Training set (`train.window`): {kept}; {start}.", ""]


def _data_and_parameters(
    data_version: dict[str, str], metrics: dict[str, Any], params: dict[str, Any], seed: int
) -> list[str]:
    """The split files' hashes and row counts, and the training parameters."""
    return [
        "## Data version",
        "",
        "| split file | MD5 (as in dvc.lock) |",
        "|---|---|",
        *[f"| `{name}` | `{digest}` |" for name, digest in data_version.items()],
        "",
        f"Rows: {metrics.get('train_rows')} for training, {metrics.get('validation_rows')} for validation.",
        "",
        *_training_set(metrics.get("training_set")),
        "## Training parameters",
        "",
        "| param | value |",
        "|---|---|",
        f"| base.seed | {seed} |",
        *[f"| train.{key} | {value} |" for key, value in params.items()],
        "",
    ]


_SHOWN_METRICS = (
    "validation_accuracy",
    "validation_macro_f1",
    "train_loss",
    "best_epoch",
    "epochs_run",
    "stopped_early",
    "device",
    "precision",
    "non_padding_token_fraction",
    "train_seconds",
)


def _metrics_table(metrics: dict[str, Any]) -> list[str]:
    """The validation metrics of the best epoch and how the run went."""
    return [
        "## Metrics (validation split, best epoch)",
        "",
        "| metric | value |",
        "|---|---|",
        *[f"| {key} | {metrics[key]} |" for key in _SHOWN_METRICS if key in metrics],
    ]


def _epoch_table(history: list[dict[str, Any]]) -> list[str]:
    """One row per epoch, and where the test-split scores and the confusion matrix are."""
    return [
        "",
        "Per epoch (`reports/train/history.csv`, plotted by `dvc plots show`):",
        "",
        "| epoch | train loss | validation loss | validation accuracy | validation macro-F1 |",
        "|---|---|---|---|---|",
        *[
            f"| {row.get('epoch')} | {row.get('train_loss', '')} | {row.get('validation_loss', '')} | "
            f"{row.get('validation_accuracy', '')} | {row.get('validation_macro_f1', '')} |"
            for row in history
        ],
        "",
        "Test-split scores against the current champion are in `reports/evaluate/` (the promotion gate); the "
        "validation confusion matrix is `reports/train/confusion_matrix.png`.",
        "",
    ]


def _use_and_limits(max_length: Any) -> list[str]:
    """What the model is for and where it stops being reliable."""
    return [
        "## Intended use",
        "",
        "Routing and counting customer feedback by intent inside the feedbackflow pipeline, with a person able to "
        "review and correct the label. Messages in English, short (training truncates at "
        f"{max_length} tokens, and so does inference).",
        "",
        "## Limits",
        "",
        "- The model knows only the intents of the taxonomy; a message about anything else is caught only when its "
        "score falls below the `unknown` threshold (see the out-of-scope recall above), otherwise it gets an intent.",
        "- Trained on anonymised text: placeholders such as `<PERSON>` stand where names were; feed it anonymised "
        "text as well.",
        "- Scores are measured on held-out messages from the same sources; drift in topics or wording lowers them "
        "(see the monitor stage's drift report).",
        "- Not for decisions about individuals (credit, complaints handling outcomes) without human review.",
        "",
    ]


def _anonymisation_section(anonymisation: list[str]) -> list[str]:
    """The anonymisation applied to the training data, from :func:`anonymisation_summary`."""
    return [
        "## Anonymisation applied to the training data",
        "",
        *anonymisation,
        "",
        "No text from the data set appears in this card or the other artifacts: counts, hashes and metrics only.",
        "",
    ]


def calibration_section(calibration: dict[str, Any] | None) -> list[str]:
    """Markdown lines on calibration (ECE before/after temperature scaling) and the ``unknown`` decision."""
    if not calibration:
        return ["## Calibration", "", "No calibration was fitted: the model never answers `unknown`.", ""]
    validation = calibration.get("validation") or {}
    methods = validation.get("methods") or {}
    lines = [
        "## Calibration and the `unknown` decision (validation split)",
        "",
        f"Temperature scaling: T = {calibration.get('temperature')} fitted on {validation.get('rows')} validation "
        f"rows ({validation.get('oos_rows')} of them out of scope, label `{calibration.get('oos_label')}`).",
        "",
        "| figure | before (T = 1) | after |",
        "|---|---|---|",
        f"| expected calibration error | {validation.get('ece_before')} | {validation.get('ece_after')} |",
        f"| negative log-likelihood | {validation.get('nll_before')} | {validation.get('nll_after')} |",
        "",
        f"A prediction whose `{calibration.get('method')}` score is below {calibration.get('threshold')} becomes "
        f"`unknown` and goes to review; the threshold is the lowest that keeps {calibration.get('target_precision')} "
        "of the accepted validation predictions right (out-of-scope rows accepted count as wrong).",
        "",
        "| score | threshold | precision | in-scope coverage | OOS recall | OOS AUROC | AURC | decision accuracy | "
        "target met |",
        "|---|---|---|---|---|---|---|---|---|",
        *[
            f"| {name} | {row.get('threshold')} | {row.get('precision')} | {row.get('in_scope_coverage')} | "
            f"{row.get('oos_recall')} | {row.get('oos_auroc', '-')} | {row.get('aurc')} | "
            f"{row.get('decision_accuracy')} | {row.get('target_met')} |"
            for name, row in methods.items()
        ],
        "",
        f"Chosen: `{calibration.get('method')}` ({validation.get('chosen_because')}).",
        "",
        "Test-split figures (in-scope accuracy, OOS recall and precision, coverage-accuracy curve, ECE) and the "
        "unknown share of the newest batch are in the gate report.",
        "",
    ]
    return lines


def confusion_matrix_png(
    truth: Sequence[int], predicted: Sequence[int], labels: Sequence[str], target: Path, title: str
) -> Path:
    """Save a row-normalised confusion matrix as a PNG sized so that every label name stays readable.

    Rows are the true labels, columns the predicted ones; each row sums to 1 (recall on the diagonal), so rare and
    common labels are equally visible. Labels that occur in neither ``truth`` nor ``predicted`` are left out.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from sklearn.metrics import confusion_matrix

    used = sorted(set(truth) | set(predicted))
    matrix = confusion_matrix(truth, predicted, labels=used).astype(float)
    totals = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    names = [labels[index] for index in used]
    side = max(5.0, 0.28 * len(names) + 3.0)  # about 0.28 inch per class keeps 77 intents legible at 100 dpi
    font = 10 if len(names) <= 20 else 7
    figure, axes = plt.subplots(figsize=(side, side), dpi=100)
    image = axes.imshow(normalised, cmap="Blues", vmin=0.0, vmax=1.0)
    axes.set_xticks(range(len(names)), names, rotation=90, fontsize=font)
    axes.set_yticks(range(len(names)), names, fontsize=font)
    axes.set_xlabel("predicted label")
    axes.set_ylabel("true label")
    axes.set_title(title)
    if len(names) <= 20:
        for row in range(len(names)):
            for column in range(len(names)):
                if matrix[row, column]:
                    value = normalised[row, column]
                    colour = "white" if value > 0.5 else "black"
                    axes.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=font, color=colour)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the true label's messages")
    figure.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target)
    plt.close(figure)
    return target
