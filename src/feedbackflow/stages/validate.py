"""validate: check every raw batch against the data-quality rules; split rows into validated and quarantined.

The stage's outputs are a pure function of ``data/raw`` and the ``validate`` params: the same inputs give
byte-identical Parquet files. Each raw batch is parsed once and kept as a part of ``data/validate_parts``
(:mod:`feedbackflow.quality.batch_parts`), which later runs read instead of the raw file while the part's identity
matches; every rule still runs over every batch, so the parts never change an output. It reads the history chunk by
chunk (``validate.chunk_rows`` rows at a time, twice: :mod:`feedbackflow.quality.history`), so its memory is one
chunk plus one entry per distinct id plus the rows GX re-checks, not the history; the chunk size never changes the
outputs.

* ``data/validated/feedback.parquet``: accepted rows of all batches, in batch sequence then file row order, with
  their text normalised (:mod:`feedbackflow.quality.text`: NFKC, invisible format characters removed).
* ``data/quarantine/quarantine.parquet``: every failing row with its original values and every rule it broke.
* ``data/validate_parts/``: one part per readable raw batch and an ``_index.json`` (restricted, like the raw data).
* ``reports/validate/validate.json``: counts per rule and batch plus the GX expectation results, and how many batches
  came from their parts (``incremental``); no text values.
* ``reports/validate/data_docs/index.html``: the Great Expectations Data Docs of this run (counts and percentages
  only, never row values), also uploaded to ``validate.data_docs_s3`` when that is set.

This module only wires: readers live in :mod:`feedbackflow.quality.readers`, the row rules and the GX suite in
:mod:`feedbackflow.quality.suite`, the batch rules (which batches stop the pipeline, and for how long) in
:mod:`feedbackflow.quality.batches`, the writers in :mod:`feedbackflow.quality.outputs`, the two passes over the
history in :mod:`feedbackflow.quality.history`. The only time-dependent rule is ``created_at_not_future`` (relative
to the validation time).

A batch that broke a batch rule (unreadable, a required column missing, too many rows quarantined, an anomalous
volume) keeps failing the stage on every later run until it is re-delivered fixed under the same name or an operator
accepts it in params.yaml, so its rows never reach training unreviewed. Outputs are written before the error is
raised, so the quarantine can be inspected (the runner then keeps them aside, so the next run starts clean).
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path
from typing import Any

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import DataQualityError
from feedbackflow.governance.erasure_match import erased_matcher
from feedbackflow.io import run_id, write_json
from feedbackflow.quality.batch_parts import BatchParts, validate_identity
from feedbackflow.quality.batches import (
    BatchResult,
    blocking_errors,
    check_label_minimum,
    check_volume,
    label_errors,
    volume_errors,
)
from feedbackflow.quality.history import ErasedRows, History, Validated, part_columns
from feedbackflow.quality.outputs import VALIDATED_SCHEMA, ParquetSink, publish_docs, quarantine_schema
from feedbackflow.quality.rules import QUARANTINE_RULES, RuleSpec
from feedbackflow.quality.validator import QualityValidator
from feedbackflow.settings import Settings, ValidateSettings
from feedbackflow.storage.manifest import read_manifest
from feedbackflow.taxonomy import load_taxonomy

logger = logging.getLogger(__name__)

VALIDATED_FILE = "feedback.parquet"
QUARANTINE_FILE = "quarantine.parquet"
REPORT_FILE = "validate.json"


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
    results, done = _validate_history(settings, paths, spec, entries)

    # Paths in messages and the report are relative to the project root: the report is a DVC output shared by workers.
    raw_dir = paths.raw.relative_to(paths.root)
    validated_path, quarantine_path = paths.validated / VALIDATED_FILE, paths.quarantine / QUARANTINE_FILE
    newest = max(entry["sequence"] for entry in entries)
    volume = check_volume(
        results,
        newest,
        params.volume_window,
        params.volume_min_history,
        params.volume_band,
        params.volume_accepted,
    )
    labels = check_label_minimum(done.label_counts, tuple(taxonomy), params.min_rows_per_label)
    errors = [
        *blocking_errors(results, params.max_quarantine_share, raw_dir, _relative(paths, quarantine_path)),
        *volume_errors(results, volume, raw_dir, params.volume_band, params.volume_window),
        *label_errors(labels, _relative(paths, validated_path)),
    ]
    summary = _summary(results, done.accepted, done.quarantined, validated_path, quarantine_path)
    summary["incremental"] = done.incremental
    report = {
        **{key: summary[key] for key in ("rows_read", "rows_accepted", "rows_quarantined", "quarantined_by_rule")},
        "run_id": run_id(),
        "success": not errors,
        "errors": errors,
        "newest_sequence": newest,
        "incremental": done.incremental,  # batches whose part was reused: the only figure a full recompute lacks
        **_rules_and_outcomes(paths, spec, params, results, done, volume, labels),
    }
    report_dir = paths.stage_reports("validate")
    write_json(report_dir / REPORT_FILE, report)
    summary["report"] = str(report_dir / REPORT_FILE)
    _log(results, summary, raw_dir, params.max_quarantine_share)
    if errors:
        raise DataQualityError("\n".join(errors))
    return summary


def _validate_history(
    settings: Settings, paths: ProjectPaths, spec: RuleSpec, entries: list[dict]
) -> tuple[list[BatchResult], Validated]:
    """Check every batch of the history, write the validated and quarantined rows, publish the Data Docs.

    Returns:
        One :class:`BatchResult` per manifest entry, and what :meth:`History.validate` counted.
    """
    params = settings.validate_
    building = paths.data_docs.with_name(f".{paths.data_docs.name}.partial")
    shutil.rmtree(building, ignore_errors=True)
    validator = QualityValidator(
        spec, docs_dir=building, run_name=safe_run_name(run_id()), gx_passing_rows=params.gx_passing_rows
    )
    accepted_ids = set(params.batches_accepted)
    results = [
        BatchResult(entry=entry, position=position, accepted=entry["batch_id"] in accepted_ids)
        for position, entry in enumerate(entries)
    ]
    erased = _erased_rows(paths, settings, spec)
    identity = validate_identity(params, list(spec.taxonomy), paths.root / settings.erasure.subjects_file)
    parts = BatchParts(paths.validate_parts, identity, part_columns(spec))
    history = History(results, paths.raw, paths.raw_manifest, spec, validator, params.chunk_rows, erased, parts)
    history.mark_superseded(params.max_quarantine_share)
    with (
        ParquetSink(VALIDATED_SCHEMA, paths.validated / VALIDATED_FILE) as validated,
        ParquetSink(quarantine_schema(spec.carried_columns), paths.quarantine / QUARANTINE_FILE) as quarantine,
    ):
        done = history.validate(validated, quarantine, params.gx_passing_rows)
    parts.publish()
    done.incremental = {"batches_reused": parts.reused, "batches_read": len(entries) - parts.reused}
    done.incremental["parts_missing"] = parts.missing
    publish_docs(building, paths.data_docs, params.data_docs_s3, validator.last_result, retry=settings.ingest.retry)
    return results, done


def _erased_rows(paths: ProjectPaths, settings: Settings, spec: RuleSpec) -> ErasedRows | None:
    """What picks the rows of subjects erased on request (their keyed hashes), or None when none was erased.

    Raises:
        ConfigError: subjects were erased but the erasure key is missing or another one.
    """
    matcher = erased_matcher(paths.root / settings.erasure.subjects_file)
    if matcher is None:
        return None
    columns = [column for column in spec.carried_columns if column != "id"]
    return lambda tagged: matcher.frame_mask(tagged[[c for c in columns if c in tagged.columns]])


def _rules_and_outcomes(
    paths: ProjectPaths,
    spec: RuleSpec,
    params: ValidateSettings,
    results: list[BatchResult],
    done: Validated,
    volume: dict[str, Any],
    labels: dict[str, Any],
) -> dict[str, Any]:
    """The report's rules, per-batch results, volume and label checks, GX outcomes and output paths."""
    return {
        "max_quarantine_share": params.max_quarantine_share,
        "rules": _rules_report(spec, params),
        "batches": [result.as_report(params.max_quarantine_share) for result in results],
        "volume": volume,
        "label_counts": labels,
        "data_docs": _relative(paths, paths.data_docs / "index.html"),
        "expectations": [outcome.as_dict() for outcome in done.rows.outcomes],
        "expectations_rows_checked": done.rows.gx_rows,
        "outputs": {
            "validated": _relative(paths, paths.validated / VALIDATED_FILE),
            "quarantine": _relative(paths, paths.quarantine / QUARANTINE_FILE),
        },
    }


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
