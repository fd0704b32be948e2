"""validate: check every raw batch against the data-quality rules; split rows into validated and quarantined.

The stage re-reads the full raw history on every run, so its outputs are a pure function of ``data/raw`` and the
``validate`` params: no state is carried between runs and the same inputs give byte-identical Parquet files.

* ``data/validated/feedback.parquet``: accepted rows of all batches, in batch sequence then file row order, with
  their text normalised (:mod:`feedbackflow.quality.text`: NFKC, invisible format characters removed).
* ``data/quarantine/quarantine.parquet``: every failing row with its original values and every rule it broke.
* ``reports/validate/validate.json``: counts per rule and batch plus the GX expectation results; no text values.
* ``reports/validate/data_docs/index.html``: the Great Expectations Data Docs of this run (counts and percentages
  only, never row values), also uploaded to ``validate.data_docs_s3`` when that is set.

This module only wires: readers live in :mod:`feedbackflow.quality.readers`, the row rules and the GX suite in
:mod:`feedbackflow.quality.suite`, the batch rules (which batches stop the pipeline, and for how long) in
:mod:`feedbackflow.quality.batches`, the writers in :mod:`feedbackflow.quality.outputs`. The only time-dependent
rule is ``created_at_not_future`` (relative to the validation time).

A batch that broke a batch rule (unreadable, a required column missing, too many rows quarantined, an anomalous
volume) keeps failing the stage on every later run until it is re-delivered fixed under the same name or an operator
accepts it in params.yaml, so its rows never reach training unreviewed. Outputs are written before the error is
raised, so the quarantine can be inspected (the runner then keeps them aside, so the next run starts clean).
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import ConfigError, DataQualityError
from feedbackflow.io import run_id, write_json
from feedbackflow.quality.batches import (
    BatchResult,
    blocking_errors,
    check_label_minimum,
    check_volume,
    count_superseded,
    label_errors,
    later_redeliveries,
    superseded_rows,
    volume_errors,
)
from feedbackflow.quality.outputs import VALIDATED_SCHEMA, publish_docs, quarantine_schema, write_parquet
from feedbackflow.quality.readers import UnreadableBatchError, read_raw_batch
from feedbackflow.quality.suite import (
    FILE_READABLE,
    QUARANTINE_RULES,
    REQUIRED_COLUMNS,
    ROW_RULES,
    SUPERSEDED,
    TYPE_ERROR,
    QualityValidator,
    RowValidation,
    RuleSpec,
    any_rule,
    as_text,
    compute_rule_masks,
    replaced_versions,
    rules_column,
    type_errors,
)
from feedbackflow.quality.text import normalise_text
from feedbackflow.settings import Settings, ValidateSettings
from feedbackflow.storage.manifest import PROVENANCE_COLUMNS, read_manifest
from feedbackflow.taxonomy import load_taxonomy

logger = logging.getLogger(__name__)

VALIDATED_FILE = "feedback.parquet"
QUARANTINE_FILE = "quarantine.parquet"
REPORT_FILE = "validate.json"
DATA_DOCS_DIR = "data_docs"

# Bookkeeping columns carried next to the data columns while validating; never written out.
_POSITION = "_batch_position"
_ROW = "_row_in_batch"


@dataclass
class _Batches:
    """Every batch's result, and its rows: readable ones to validate, rejected ones (missing columns) as they are."""

    results: list[BatchResult]
    history: pd.DataFrame
    rejected: list[pd.DataFrame]


def run(settings: Settings, paths: ProjectPaths) -> dict:
    """Validate the full raw history and write validated rows, quarantined rows and the report.

    Args:
        settings: Project settings; uses ``settings.validate_``.
        paths: Project paths.

    Returns:
        Counts (``rows_read``, ``rows_accepted``, ``rows_quarantined``, ``quarantined_by_rule``, ``batches``) and
        the written paths as strings.

    Raises:
        ConfigError: the taxonomy is missing or invalid, or a raw file listed in the manifest is missing.
        DataQualityError: a batch broke a batch rule and was neither re-delivered nor accepted, a delivery's volume
            is anomalous, or a label is short of rows; the outputs are written first.
    """
    params = settings.validate_
    taxonomy = load_taxonomy(paths.root / params.taxonomy)
    # out-of-scope rows (label oos.label) are valid feedback: the model learns to say unknown from them
    spec = RuleSpec.from_settings(params, [*taxonomy, settings.oos.label])
    entries = _entries(paths, settings.ingest.landing_dir)
    report_dir = paths.stage_reports("validate")
    building = report_dir / f".{DATA_DOCS_DIR}.partial"
    shutil.rmtree(building, ignore_errors=True)
    validator = QualityValidator(
        spec, docs_dir=building, run_name=safe_run_name(run_id()), gx_passing_rows=params.gx_passing_rows
    )

    batches = _read_batches(entries, paths, spec, validator, params)
    rows, accepted, quarantined = _validate_rows(batches, validator)

    validated_path = paths.validated / VALIDATED_FILE
    quarantine_path = paths.quarantine / QUARANTINE_FILE
    write_parquet(accepted, VALIDATED_SCHEMA, validated_path)
    write_parquet(quarantined, quarantine_schema(spec.carried_columns), quarantine_path)
    publish_docs(
        building, report_dir / DATA_DOCS_DIR, params.data_docs_s3, validator.last_result, settings.ingest.retry
    )

    # Paths in messages and the report are relative to the project root: the report is a DVC output shared by workers.
    raw_dir = paths.raw.relative_to(paths.root)
    newest = max(entry["sequence"] for entry in entries)
    volume = check_volume(
        batches.results,
        newest,
        params.volume_window,
        params.volume_min_history,
        params.volume_band,
        params.volume_accepted,
    )
    labels = check_label_minimum(accepted["label"], tuple(taxonomy), params.min_rows_per_label)
    errors = [
        *blocking_errors(batches.results, params.max_quarantine_share, raw_dir, _relative(paths, quarantine_path)),
        *volume_errors(batches.results, volume, raw_dir, params.volume_band, params.volume_window),
        *label_errors(labels, _relative(paths, validated_path)),
    ]
    summary = _summary(batches.results, len(accepted), len(quarantined), validated_path, quarantine_path)
    report = {
        **{key: summary[key] for key in ("rows_read", "rows_accepted", "rows_quarantined", "quarantined_by_rule")},
        "run_id": run_id(),
        "success": not errors,
        "errors": errors,
        "newest_sequence": newest,
        "max_quarantine_share": params.max_quarantine_share,
        "rules": _rules_report(spec, params),
        "batches": [result.as_report(params.max_quarantine_share) for result in batches.results],
        "volume": volume,
        "label_counts": labels,
        "data_docs": _relative(paths, report_dir / DATA_DOCS_DIR / "index.html"),
        "expectations": [outcome.as_dict() for outcome in rows.outcomes],
        "expectations_rows_checked": rows.gx_rows,
        "outputs": {"validated": _relative(paths, validated_path), "quarantine": _relative(paths, quarantine_path)},
    }
    write_json(report_dir / REPORT_FILE, report)
    summary["report"] = str(report_dir / REPORT_FILE)
    _log(batches.results, summary, raw_dir, params.max_quarantine_share)
    if errors:
        raise DataQualityError("\n".join(errors))
    return summary


def _validate_rows(batches: _Batches, validator: QualityValidator) -> tuple[RowValidation, pd.DataFrame, pd.DataFrame]:
    """Run the row rules over every readable, not superseded batch; return the accepted and the quarantined rows.

    Quarantined rows keep their original order (batch, then row) and name every rule they broke; rows of superseded
    batches and of batches missing a column are quarantined without being checked.
    """
    superseded = superseded_rows(batches.results, batches.history, _POSITION)
    checked = batches.history.loc[~superseded]
    rows = validator.validate_rows(checked)
    failing = rows.failing
    checked = checked.assign(rules="")
    if failing.any():
        checked.loc[failing, "rules"] = rules_column({rule: mask[failing] for rule, mask in rows.masks.items()})
    _count_per_batch(batches.results, checked, rows.masks, failing)
    count_superseded(batches.results, superseded, batches.history[_POSITION])

    accepted = checked.loc[~failing]
    accepted = accepted.assign(label=accepted["label"].where(~rows.prepared.blank["label"][~failing], None))
    replaced = batches.history.loc[superseded].assign(rules=SUPERSEDED)
    quarantined = pd.concat([checked.loc[failing], replaced, *batches.rejected], ignore_index=True)
    return rows, accepted, quarantined.sort_values([_POSITION, _ROW], kind="stable")


def safe_run_name(name: str) -> str:
    """The run id as GX may use it: GX puts the run name unescaped into Data Docs pages and into file paths."""
    return re.sub(r"[^A-Za-z0-9_.:+-]", "_", name)[:200] or "manual"


def _entries(paths: ProjectPaths, landing_dir: str) -> list[dict]:
    """The manifest's batches in sequence order (stable: one ingest run keeps its landing file name order)."""
    entries = sorted(read_manifest(paths.raw_manifest), key=lambda entry: entry["sequence"])
    if not entries:
        raise DataQualityError(
            f"{paths.raw_manifest}: no raw batches to validate; put feedback files into the landing folder "
            f"({landing_dir}) and run ingest first"
        )
    return entries


def _read_batches(
    entries: list[dict], paths: ProjectPaths, spec: RuleSpec, validator: QualityValidator, params: ValidateSettings
) -> _Batches:
    """Read every raw batch, apply the header rules, and mark failed batches that were re-delivered or accepted."""
    columns = spec.carried_columns
    accepted = set(params.batches_accepted)
    results = [
        BatchResult(entry=entry, position=position, accepted=entry["batch_id"] in accepted)
        for position, entry in enumerate(entries)
    ]
    readable, rejected = [], []
    for result in results:
        raw_file = paths.raw / result.entry["raw_file"]
        if not raw_file.is_file():
            raise ConfigError(
                f"{raw_file}: listed in {paths.raw_manifest.name} for {result.entry['key']} but missing; "
                "restore data/raw (e.g. `dvc pull`) before validating"
            )
        try:
            frame, row_numbers = read_raw_batch(raw_file)
        except UnreadableBatchError as error:
            result.failed_rule, result.problem = FILE_READABLE, f"cannot be parsed: {error}"
            continue
        result.rows_read = len(frame)
        if frame.empty and len(frame.columns) == 0:
            # No header and no rows: nothing can be lost, but an export that writes nothing at all is broken.
            result.failed_rule, result.problem = FILE_READABLE, "empty file (no header, no rows)"
            continue
        if frame.empty:
            result.problem = "header only (no rows)"
        _, missing = validator.check_columns(frame)
        tagged = _tag(frame, result, row_numbers, columns)
        if missing:
            result.failed_rule = REQUIRED_COLUMNS
            # Found column names are not listed: a file without a header row would put data values there.
            result.problem = f"missing required column(s) {', '.join(missing)}"
            if len(frame.columns) == 1:
                result.problem += " (the header has a single column: is the file comma-separated?)"
            result.rows_quarantined, result.by_rule = len(tagged), {REQUIRED_COLUMNS: len(tagged)}
            tagged["rules"] = REQUIRED_COLUMNS
            rejected.append(tagged)
        else:
            # Names are listed only once the header is known to be real (every required column found).
            known = {*columns, *PROVENANCE_COLUMNS}
            result.extra_columns = [str(column) for column in frame.columns if column not in known]
            readable.append(tagged)
    history = _concat(readable, columns)
    _mark_superseded(results, history, spec, params.max_quarantine_share)
    return _Batches(results=results, history=history, rejected=rejected)


def _mark_superseded(results: list[BatchResult], history: pd.DataFrame, spec: RuleSpec, max_share: float) -> None:
    """Mark each batch that broke a batch rule and was re-delivered later under the same name as superseded.

    Whether a readable batch broke the quarantine share needs its row rules; they are computed here (pandas only)
    only when some readable batch has a later re-delivery at all.
    """
    later = later_redeliveries(results)
    for result in results:
        if result.position in later and result.failed_rule is not None:
            result.superseded_by = later[result.position]
    candidates = [result for result in results if result.position in later and result.failed_rule is None]
    if not candidates or history.empty:
        return
    masks = compute_rule_masks(history, spec)
    bad = any_rule(masks) & ~replaced_versions(history, masks)
    shares = bad.groupby(history[_POSITION]).mean()
    for result in candidates:
        if float(shares.get(result.position, 0.0)) > max_share:
            result.superseded_by = later[result.position]


def _tag(frame: pd.DataFrame, result: BatchResult, row_numbers: np.ndarray, columns: tuple[str, ...]) -> pd.DataFrame:
    """Keep the carried columns as text (missing ones as null, ``text`` normalised) and add provenance columns."""
    entry = result.entry
    data = {
        column: as_text(frame[column]) if column in frame.columns else pd.Series(None, index=frame.index, dtype=object)
        for column in columns
    }
    data["text"] = normalise_text(data["text"])
    tagged = pd.DataFrame(data, index=frame.index).reset_index(drop=True)
    errors = [type_errors(frame[column], column) for column in columns if column in frame.columns]
    tagged[TYPE_ERROR] = np.logical_or.reduce(errors) if errors else np.zeros(len(tagged), dtype=bool)
    tagged["batch_id"] = entry["batch_id"]
    tagged["sequence"] = np.int64(entry["sequence"])
    tagged["source"] = entry.get("source", "folder")
    tagged["source_file"] = entry["key"]
    tagged["row_number"] = np.asarray(row_numbers, dtype=np.int64)
    tagged[_POSITION] = result.position
    tagged[_ROW] = np.arange(len(tagged), dtype=np.int64)
    return tagged


def _concat(frames: list[pd.DataFrame], columns: tuple[str, ...]) -> pd.DataFrame:
    if frames:
        return pd.concat(frames, ignore_index=True)
    empty = {column: pd.Series(dtype=object) for column in (*columns, "batch_id", "source", "source_file")}
    empty.update({name: pd.Series(dtype=np.int64) for name in ("sequence", "row_number", _POSITION, _ROW)})
    return pd.DataFrame(empty)


def _count_per_batch(
    results: list[BatchResult], history: pd.DataFrame, masks: dict[str, pd.Series], failing: pd.Series
) -> None:
    """Fill each validated batch's quarantine counts from the row masks (vectorised group-by)."""
    if history.empty:
        return
    position = history[_POSITION]
    rules = pd.DataFrame(masks)
    per_rule = rules.groupby(position).sum()
    quarantined = failing.groupby(position).sum()
    # replaced versions of updated records must not push their batch over the share when the update arrives later
    replaced_per_batch = replaced_versions(history, masks).groupby(position).sum()
    for result in results:
        if result.failed_rule is None and result.position in per_rule.index:
            result.rows_quarantined = int(quarantined[result.position])
            result.rows_replaced = int(replaced_per_batch[result.position])
            result.by_rule = {rule: int(per_rule.at[result.position, rule]) for rule in ROW_RULES}


def _summary(
    results: list[BatchResult], accepted: int, quarantined: int, validated_path: Path, quarantine_path: Path
) -> dict[str, Any]:
    by_rule = {rule: 0 for rule in QUARANTINE_RULES}
    for result in results:
        for rule, count in result.by_rule.items():
            by_rule[rule] += count
    return {
        "rows_read": sum(result.rows_read for result in results),
        "rows_accepted": accepted,
        "rows_quarantined": quarantined,
        "quarantined_by_rule": by_rule,
        "batches": len(results),
        "batches_rejected": sum(result.failed_rule is not None for result in results),
        "validated": str(validated_path),
        "quarantine": str(quarantine_path),
    }


def _rules_report(spec: RuleSpec, params: ValidateSettings) -> dict[str, Any]:
    return {
        "required_columns": list(spec.required_columns),
        "channels": list(spec.channels),
        "taxonomy": params.taxonomy,
        "taxonomy_size": len(spec.taxonomy),
        "min_text_chars": spec.min_text_chars,
        "max_text_chars": spec.max_text_chars,
        "batches_accepted": list(params.batches_accepted),
    }


def _relative(paths: ProjectPaths, path: Path) -> str:
    return path.relative_to(paths.root).as_posix()


def _log(results: list[BatchResult], summary: dict[str, Any], raw_dir: Path, max_share: float) -> None:
    logger.info(
        "validate: %d rows read from %d batches, %d accepted, %d quarantined (%s)",
        summary["rows_read"],
        len(results),
        summary["rows_accepted"],
        summary["rows_quarantined"],
        ", ".join(f"{rule}={n}" for rule, n in summary["quarantined_by_rule"].items() if n) or "no rule broken",
    )
    for result in results:
        if result.superseded_by is not None:
            logger.info("validate: %s: superseded by batch %s", result.describe(raw_dir), result.superseded_by)
        elif result.problem and not result.blocks(max_share):
            note = " (accepted in validate.batches_accepted)" if result.accepted else " (not blocking: no rows)"
            logger.warning("validate: %s: %s%s", result.describe(raw_dir), result.problem, note)
