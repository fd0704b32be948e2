"""validate: check every raw batch against the data-quality rules; split rows into validated and quarantined.

The stage re-reads the full raw history on every run, so its outputs are a pure function of ``data/raw`` and the
``validate`` params: no state is carried between runs and the same inputs give byte-identical Parquet files.

* ``data/validated/feedback.parquet``: accepted rows of all batches, in batch sequence then file row order.
* ``data/quarantine/quarantine.parquet``: every failing row with its original values and every rule it broke.
* ``reports/validate/validate.json``: counts per rule and batch plus the GX expectation results; no text values.
* ``reports/validate/data_docs/index.html``: the Great Expectations Data Docs of this run (counts and percentages
  only, never row values), also uploaded to ``validate.data_docs_s3`` when that is set.

Rules and the GX suite live in :mod:`feedbackflow.quality.suite`. The only time-dependent rule is
``created_at_not_future`` (relative to the validation time).

Batch-level rules, checked after the row rules:

* ``file_readable`` / ``required_columns``: the whole batch is rejected (its rows are quarantined when they could be
  read); columns that are neither required, optional (``language``) nor ingest provenance are reported as extras.
* ``batch_volume``: the rows of every delivery must lie within ``validate.volume_band`` x the median rows of the
  ``validate.volume_window`` deliveries before it (checked once ``validate.volume_min_history`` exist). The rows
  are not quarantined: they are valid, the delivery as a whole is suspicious. An anomalous delivery keeps failing
  the stage, newer deliveries or not, until its sequence is listed in ``validate.volume_accepted`` (reviewed) or the
  band is widened: its rows never reach training unreviewed.
* ``label_minimum``: before training, every taxonomy label needs ``validate.min_rows_per_label`` accepted labelled
  rows in the accumulated validated data; the message names the labels short of it.

Only batches of the newest ingest run (the highest manifest ``sequence``) can stop the pipeline through an unreadable
file, a missing column or a quarantined share above ``validate.max_quarantine_share`` (``label_minimum`` and
``batch_volume`` concern the whole history). Raw batches are immutable,
so a bad older batch would otherwise fail every later run; once a corrected file has been re-delivered (a newer
sequence) the old batch's rows simply stay in quarantine and its problem is listed in the report. Outputs are
written before the error is raised, so the quarantine can be inspected.
"""

from __future__ import annotations

import json
import logging
import shutil
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import ConfigError, DataQualityError
from feedbackflow.io import atomic_path, run_id, write_json
from feedbackflow.quality.suite import (
    BATCH_VOLUME,
    FILE_READABLE,
    LABEL_MINIMUM,
    QUARANTINE_RULES,
    REQUIRED_COLUMNS,
    ROW_RULES,
    TYPE_ERROR,
    QualityValidator,
    RuleSpec,
    as_text,
    rules_column,
    type_errors,
)
from feedbackflow.settings import Settings
from feedbackflow.storage.manifest import PROVENANCE_COLUMNS, read_manifest
from feedbackflow.taxonomy import load_taxonomy

logger = logging.getLogger(__name__)

VALIDATED_FILE = "feedback.parquet"
QUARANTINE_FILE = "quarantine.parquet"
REPORT_FILE = "validate.json"
DATA_DOCS_DIR = "data_docs"

VALIDATED_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.string()),
        ("label", pa.string()),
        ("channel", pa.string()),
        ("created_at", pa.string()),
        ("batch_id", pa.string()),
        ("sequence", pa.int64()),
    ]
)
QUARANTINE_META_COLUMNS = ("batch_id", "source_file", "row_number", "rules")
READERS = {".csv": "CSV", ".jsonl": "JSON Lines", ".ndjson": "JSON Lines", ".parquet": "Parquet"}

# Bookkeeping columns carried next to the data columns while validating; never written out.
_POSITION = "_batch_position"
_ROW = "_row_in_batch"


class UnreadableBatchError(ValueError):
    """A raw file could not be parsed into rows (the message holds no data values)."""


@dataclass
class BatchResult:
    """What happened to one raw batch."""

    entry: dict
    position: int
    rows_read: int = 0
    rows_quarantined: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)
    failed_rule: str | None = None  # a batch-level rule that rejected the whole batch
    problem: str | None = None  # human-readable reason, safe to log (no values)
    extra_columns: list[str] = field(default_factory=list)  # unknown source columns (not validated, not kept)

    @property
    def share(self) -> float:
        return self.rows_quarantined / self.rows_read if self.rows_read else 0.0

    def describe(self, raw_dir: Path) -> str:
        """Name the file the way an operator finds it: original name, raw file and batch id."""
        return (
            f"{self.entry['key']} (raw file {raw_dir / self.entry['raw_file']}, batch {self.entry['batch_id']}, "
            f"sequence {self.entry['sequence']})"
        )

    def as_report(self, max_share: float) -> dict[str, Any]:
        return {
            "batch_id": self.entry["batch_id"],
            "sequence": self.entry["sequence"],
            "source_file": self.entry["key"],
            "raw_file": self.entry["raw_file"],
            "rows_read": self.rows_read,
            "rows_accepted": self.rows_read - self.rows_quarantined,
            "rows_quarantined": self.rows_quarantined,
            "quarantine_share": round(self.share, 6),
            "over_threshold": self.share > max_share,
            "quarantined_by_rule": {rule: count for rule, count in self.by_rule.items() if count},
            "batch_rule_failed": self.failed_rule,
            "problem": self.problem,
            "extra_columns": self.extra_columns,
        }


# ---------------------------------------------------------------------------------------------------------------
# Reading raw batches.


def read_raw_batch(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """Parse one raw batch without coercing any value.

    CSV is read with every column as a string (a BOM is tolerated); JSON Lines values keep their JSON types; Parquet
    keeps its column types. :func:`feedbackflow.quality.suite.as_text` turns them into strings later.

    Args:
        path: A file in ``data/raw`` (opened read-only).

    Returns:
        The rows and each row's 1-based data row number in the file (for JSON Lines: its line number).

    Raises:
        UnreadableBatchError: the file type is unsupported or the content cannot be parsed.
    """
    suffix = path.suffix.lower()
    if suffix not in READERS:
        raise UnreadableBatchError(f"unsupported file type '{suffix}' (expected one of {', '.join(READERS)})")
    try:
        if suffix == ".csv":
            # pandas' C parser cuts a field at a NUL byte; the Python engine keeps it (see text_control_chars).
            engine = "python" if _has_nul(path) else "c"
            fast = _read_csv_arrow(path) if engine == "c" else None
            if fast is not None:
                return fast, np.arange(1, len(fast) + 1)
            try:
                frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig", engine=engine)
            except pd.errors.EmptyDataError:  # a zero-byte file: no header, no rows
                return pd.DataFrame(), np.zeros(0, dtype=np.int64)
            if not isinstance(frame.index, pd.RangeIndex):
                # pandas silently turns the first column into the index when every row has one field too many.
                raise UnreadableBatchError("data rows have more fields than the header")
            return frame, np.arange(1, len(frame) + 1)
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
            return frame.reset_index(drop=True), np.arange(1, len(frame) + 1)
        return _read_jsonl(path)
    except UnreadableBatchError:
        raise
    except (ValueError, OSError, pa.ArrowException, pd.errors.ParserError, UnicodeDecodeError) as error:
        # The messages of these errors name positions, not cell values; cut them short all the same.
        raise UnreadableBatchError(f"{type(error).__name__}: {str(error)[:200]}") from None


def _read_csv_arrow(path: Path) -> pd.DataFrame | None:
    """Read a well-formed CSV with Arrow's parser (several times faster than pandas'); None when pandas must decide.

    Every column is read as text and empty fields stay ``""``, as with pandas' ``dtype=str, keep_default_na=False``.
    Anything unusual (no or duplicate header names, ragged rows, invalid UTF-8, an empty file) returns None, so
    pandas reads the file and gives the established outcome (a quarantine or a ``file_readable`` message).
    """
    import csv

    import pyarrow.csv as pacsv

    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            names = next(csv.reader(handle))
    except (StopIteration, UnicodeDecodeError, csv.Error):
        return None
    if not names or len(set(names)) != len(names) or any(not name for name in names):
        return None
    try:
        table = pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in names}, strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError):
        return None
    if table.column_names != names:
        return None
    return table.to_pandas()


def _has_nul(path: Path) -> bool:
    with path.open("rb") as handle:
        return any(b"\x00" in chunk for chunk in iter(lambda: handle.read(1 << 22), b""))


def _read_jsonl(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    records, line_numbers = [], []
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise UnreadableBatchError(f"line {number} is not valid JSON ({error.msg})") from None
            if not isinstance(record, dict):
                raise UnreadableBatchError(f"line {number} is not a JSON object")
            records.append(record)
            line_numbers.append(number)
    # dtype=object keeps ints as ints (no float upcast when a value is missing in another row).
    frame = pd.DataFrame(records, dtype=object) if records else pd.DataFrame()
    return frame, np.asarray(line_numbers, dtype=np.int64)


def _tag(frame: pd.DataFrame, result: BatchResult, row_numbers: np.ndarray, columns: tuple[str, ...]) -> pd.DataFrame:
    """Keep the required columns as text (missing ones as null) and add provenance columns."""
    entry = result.entry
    data = {
        column: as_text(frame[column]) if column in frame.columns else pd.Series(None, index=frame.index, dtype=object)
        for column in columns
    }
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


# ---------------------------------------------------------------------------------------------------------------
# Writing outputs.


def _write_parquet(frame: pd.DataFrame, schema: pa.Schema, target: Path) -> None:
    """Write with an explicit schema so an empty or all-null column keeps its type; atomically."""
    arrays = [
        pa.array(frame[name].to_numpy(dtype=object), type=schema.field(name).type, from_pandas=True)
        for name in schema.names
    ]
    table = pa.Table.from_arrays(arrays, schema=schema)
    with atomic_path(target) as partial:
        pq.write_table(table, partial)


def _quarantine_schema(columns: tuple[str, ...]) -> pa.Schema:
    return pa.schema(
        [(column, pa.string()) for column in columns]
        + [
            ("batch_id", pa.string()),
            ("source", pa.string()),
            ("source_file", pa.string()),
            ("row_number", pa.int64()),
            ("rules", pa.string()),
        ]
    )


# ---------------------------------------------------------------------------------------------------------------
# The stage.


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
        DataQualityError: a batch of the newest sequence is unreadable, lacks a required column or has a quarantined
            share above ``validate.max_quarantine_share``; the outputs are written first.
    """
    params = settings.validate_
    spec = RuleSpec.from_settings(params, load_taxonomy(paths.root / params.taxonomy))
    columns = spec.carried_columns
    # Stable sort: batches of one ingest run keep their manifest (landing file name) order.
    entries = sorted(read_manifest(paths.raw_manifest), key=lambda entry: entry["sequence"])
    if not entries:
        raise DataQualityError(
            f"{paths.raw_manifest}: no raw batches to validate; put feedback files into the landing folder "
            f"({settings.ingest.landing_dir}) and run ingest first"
        )
    newest = max(entry["sequence"] for entry in entries)
    report_dir = paths.stage_reports("validate")
    docs_dir = report_dir / DATA_DOCS_DIR
    building = report_dir / f".{DATA_DOCS_DIR}.partial"
    shutil.rmtree(building, ignore_errors=True)
    validator = QualityValidator(spec, docs_dir=building, run_name=run_id(), gx_passing_rows=params.gx_passing_rows)
    results = [BatchResult(entry=entry, position=position) for position, entry in enumerate(entries)]

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
    rows = validator.validate_rows(history)
    failing = rows.failing
    history["rules"] = ""
    if failing.any():
        history.loc[failing, "rules"] = rules_column({rule: mask[failing] for rule, mask in rows.masks.items()})
    _count_per_batch(results, history, rows.masks, failing)

    accepted = history.loc[~failing]
    accepted = accepted.assign(label=accepted["label"].where(~rows.prepared.blank["label"][~failing], None))
    quarantined = pd.concat([history.loc[failing], *rejected], ignore_index=True)
    quarantined = quarantined.sort_values([_POSITION, _ROW], kind="stable")

    validated_path = paths.validated / VALIDATED_FILE
    quarantine_path = paths.quarantine / QUARANTINE_FILE
    report_path = report_dir / REPORT_FILE
    _write_parquet(accepted, VALIDATED_SCHEMA, validated_path)
    _write_parquet(quarantined, _quarantine_schema(columns), quarantine_path)
    _publish_docs(building, docs_dir, params.data_docs_s3)

    # Paths in messages and the report are relative to the project root: the report is a DVC output shared by workers.
    raw_dir = paths.raw.relative_to(paths.root)
    errors = _blocking_errors(results, newest, params.max_quarantine_share, raw_dir)
    volume = check_volume(
        results, newest, params.volume_window, params.volume_min_history, params.volume_band, params.volume_accepted
    )
    for anomaly in volume["anomalies"]:
        files = ", ".join(r.describe(raw_dir) for r in results if r.entry["sequence"] == anomaly["sequence"])
        errors.append(
            f"{files} broke rule '{BATCH_VOLUME}': {anomaly['rows']} rows in delivery {anomaly['sequence']}, outside "
            f"[{anomaly['low']:.0f}, {anomaly['high']:.0f}] (validate.volume_band {list(params.volume_band)} x the "
            f"median of up to {params.volume_window} deliveries before it). The raw files are kept and no row is "
            "quarantined. Check the export for lost or duplicated data; if the volume is genuine, add "
            f"{anomaly['sequence']} to validate.volume_accepted (or widen validate.volume_band) in params.yaml "
            "and rerun."
        )
    labels = check_label_minimum(accepted["label"], spec.taxonomy, params.min_rows_per_label)
    if labels["short"]:
        shown = ", ".join(f"{label} ({count})" for label, count in list(labels["short"].items())[:20])
        more = f" and {len(labels['short']) - 20} more" if len(labels["short"]) > 20 else ""
        errors.append(
            f"rule '{LABEL_MINIMUM}': {len(labels['short'])} label(s) have fewer than validate.min_rows_per_label="
            f"{params.min_rows_per_label} accepted labelled rows in {validated_path.relative_to(paths.root)}: "
            f"{shown}{more}. Collect and label more feedback for them (or lower validate.min_rows_per_label) "
            "before training."
        )
    by_rule = {rule: 0 for rule in QUARANTINE_RULES}
    for result in results:
        for rule, count in result.by_rule.items():
            by_rule[rule] += count
    summary = {
        "rows_read": sum(result.rows_read for result in results),
        "rows_accepted": len(accepted),
        "rows_quarantined": len(quarantined),
        "quarantined_by_rule": by_rule,
        "batches": len(results),
        "batches_rejected": sum(result.failed_rule is not None for result in results),
        "validated": str(validated_path),
        "quarantine": str(quarantine_path),
        "report": str(report_path),
    }
    report = {
        **{key: summary[key] for key in ("rows_read", "rows_accepted", "rows_quarantined", "quarantined_by_rule")},
        "run_id": run_id(),
        "success": not errors,
        "errors": errors,
        "newest_sequence": newest,
        "max_quarantine_share": params.max_quarantine_share,
        "rules": {
            "required_columns": list(spec.required_columns),
            "channels": list(spec.channels),
            "taxonomy": params.taxonomy,
            "taxonomy_size": len(spec.taxonomy),
            "min_text_chars": spec.min_text_chars,
            "max_text_chars": spec.max_text_chars,
        },
        "batches": [result.as_report(params.max_quarantine_share) for result in results],
        "volume": volume,
        "label_counts": labels,
        "data_docs": str((docs_dir / "index.html").relative_to(paths.root)),
        "expectations": [outcome.as_dict() for outcome in rows.outcomes],
        "expectations_rows_checked": rows.gx_rows,
        "outputs": {
            "validated": str(validated_path.relative_to(paths.root)),
            "quarantine": str(quarantine_path.relative_to(paths.root)),
        },
    }
    write_json(report_path, report)

    logger.info(
        "validate: %d rows read from %d batches, %d accepted, %d quarantined (%s)",
        summary["rows_read"],
        len(results),
        summary["rows_accepted"],
        summary["rows_quarantined"],
        ", ".join(f"{rule}={count}" for rule, count in by_rule.items() if count) or "no rule broken",
    )
    for result in results:
        if result.problem:
            blocking = result.entry["sequence"] == newest and result.failed_rule is not None
            note = "" if blocking else " (not blocking: it is not in the newest delivery or has no rows)"
            logger.warning("validate: %s: %s%s", result.describe(raw_dir), result.problem, note)
    if errors:
        raise DataQualityError("\n".join(errors))
    return summary


def check_volume(
    results: list[BatchResult],
    newest: int,
    window: int,
    min_history: int,
    band: tuple[float, float],
    accepted: Iterable[int] = (),
) -> dict[str, Any]:
    """Compare every delivery's rows with the median of the deliveries before it (rule ``batch_volume``).

    A delivery is one ingest run (a manifest ``sequence``); its volume is the rows read from all its batches.
    Deliveries whose every batch was rejected (unreadable, missing columns) are left out of the history, as are
    anomalous deliveries nobody has accepted. Every delivery is checked, not only the newest: an anomalous delivery
    keeps failing the stage after newer ones arrive, until an operator lists its sequence in
    ``validate.volume_accepted`` (or widens the band), so its rows never reach training unreviewed.

    Args:
        results: Every batch, with ``rows_read`` filled in.
        newest: The newest sequence.
        window: Number of previous deliveries the median is taken over.
        min_history: Deliveries needed before the check applies.
        band: ``[low, high]`` factors of the median.
        accepted: Sequences whose volume an operator reviewed and accepted.

    Returns:
        For the newest delivery ``rows``, ``history`` (previous volumes, oldest first), ``median``, ``low``, ``high``
        and ``checked``; ``anomalies`` (each unaccepted anomalous delivery: ``sequence``, ``rows``, ``low``,
        ``high``) and ``failed`` (any anomaly).
    """
    volumes: dict[int, int] = {}
    usable: set[int] = set()
    for result in results:
        sequence = result.entry["sequence"]
        volumes[sequence] = volumes.get(sequence, 0) + result.rows_read
        if result.failed_rule is None:
            usable.add(sequence)
    accepted = set(accepted)
    normal: list[int] = []  # sequences that may serve as history
    anomalies: list[dict[str, Any]] = []
    newest_check: dict[str, Any] = {}
    for sequence in sorted(volumes):
        history = [volumes[s] for s in normal][-window:]
        rows = volumes[sequence]
        checked = len(history) >= min_history
        median = float(statistics.median(history)) if history else 0.0
        low, high = band[0] * median, band[1] * median
        outside = checked and not low <= rows <= high
        if sequence == newest:
            newest_check = {
                "rows": rows,
                "history": history,
                "median": median,
                "low": low,
                "high": high,
                "checked": checked,
            }
        if outside and sequence not in accepted:
            anomalies.append({"sequence": sequence, "rows": rows, "low": low, "high": high})
        elif sequence in usable:
            normal.append(sequence)
    return {**newest_check, "anomalies": anomalies, "failed": bool(anomalies)}


def check_label_minimum(labels: pd.Series, taxonomy: tuple[str, ...], minimum: int) -> dict[str, Any]:
    """Count accepted labelled rows per taxonomy label and list those below ``minimum`` (rule ``label_minimum``).

    Args:
        labels: The ``label`` column of the accepted rows (None for unlabelled traffic).
        taxonomy: Every label the model is trained on.
        minimum: Rows each label needs; 0 switches the check off.

    Returns:
        ``minimum``, ``counts`` (label -> rows, every taxonomy label) and ``short`` (label -> rows, fewest first).
    """
    counts = labels.dropna().value_counts()
    per_label = {label: int(counts.get(label, 0)) for label in taxonomy}
    short = dict(sorted(((k, v) for k, v in per_label.items() if v < minimum), key=lambda item: (item[1], item[0])))
    return {"minimum": minimum, "counts": per_label, "short": short}


def _publish_docs(building: Path, docs_dir: Path, s3_url: str | None) -> None:
    """Move the freshly built Data Docs into place (replacing the previous run's) and upload them to S3 if set."""
    if not (building / "index.html").is_file():
        shutil.rmtree(building, ignore_errors=True)
        return
    shutil.rmtree(docs_dir, ignore_errors=True)
    building.replace(docs_dir)
    if s3_url:
        upload_data_docs(docs_dir, s3_url)


def upload_data_docs(docs_dir: Path, s3_url: str) -> list[str]:
    """Upload a Data Docs folder to ``s3://bucket/prefix`` (credentials and endpoint from the ``AWS_*`` environment).

    Returns:
        The uploaded keys.
    """
    import mimetypes

    import boto3

    bucket, _, prefix = s3_url.removeprefix("s3://").partition("/")
    client = boto3.client("s3")
    keys = []
    for path in sorted(p for p in docs_dir.rglob("*") if p.is_file()):
        key = "/".join(part for part in (prefix.strip("/"), path.relative_to(docs_dir).as_posix()) if part)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        client.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": content_type})
        keys.append(key)
    logger.info("validate: Data Docs uploaded to s3://%s/%s (%d files)", bucket, prefix, len(keys))
    return keys


def _concat(frames: list[pd.DataFrame], columns: tuple[str, ...]) -> pd.DataFrame:
    if frames:
        return pd.concat(frames, ignore_index=True)
    empty = {column: pd.Series(dtype=object) for column in (*columns, "batch_id", "source", "source_file")}
    empty.update({name: pd.Series(dtype=np.int64) for name in ("sequence", "row_number", _POSITION, _ROW)})
    return pd.DataFrame(empty)


def _count_per_batch(
    results: list[BatchResult], history: pd.DataFrame, masks: dict[str, pd.Series], failing: pd.Series
) -> None:
    """Fill each readable batch's quarantine counts from the row masks (vectorised group-by)."""
    if history.empty:
        return
    position = history[_POSITION]
    per_rule = pd.DataFrame(masks).groupby(position).sum()
    quarantined = failing.groupby(position).sum()
    for result in results:
        if result.failed_rule is None and result.position in per_rule.index:
            result.rows_quarantined = int(quarantined[result.position])
            result.by_rule = {rule: int(per_rule.at[result.position, rule]) for rule in ROW_RULES}


def _blocking_errors(results: list[BatchResult], newest: int, max_share: float, raw_dir: Path) -> list[str]:
    """Messages for the batches of the newest sequence that must stop the pipeline."""
    errors = []
    for result in results:
        if result.entry["sequence"] != newest:
            continue
        where = result.describe(raw_dir)
        if result.failed_rule == FILE_READABLE:
            errors.append(
                f"{where} broke rule '{FILE_READABLE}': {result.problem}. Fix the file (UTF-8 CSV with a header row, "
                "JSON Lines with one object per line, or Parquet) and re-deliver it through the ingest source."
            )
        elif result.failed_rule == REQUIRED_COLUMNS:
            errors.append(
                f"{where} broke rule '{REQUIRED_COLUMNS}': {result.problem}. All its {result.rows_read} rows are "
                "quarantined. Fix the export so the file has every required column (validate.required_columns in "
                "params.yaml) and re-deliver it through the ingest source."
            )
        elif result.share > max_share:
            counts = Counter({rule: count for rule, count in result.by_rule.items() if count})
            rule, count = counts.most_common(1)[0]
            errors.append(
                f"{where}: {result.rows_quarantined} of {result.rows_read} rows quarantined ({result.share:.1%}), "
                f"above validate.max_quarantine_share={max_share:.1%}; most frequent rule '{rule}' ({count} rows). "
                f"Inspect the rows with batch_id {result.entry['batch_id']} in data/quarantine/{QUARANTINE_FILE} "
                "and fix the source and re-deliver the file, or raise validate.max_quarantine_share in params.yaml "
                "if this share is acceptable."
            )
    return errors
