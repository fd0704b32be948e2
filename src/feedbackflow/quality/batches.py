"""Batch-level rules of the validate stage: what happened to each raw batch, and which batches stop the pipeline.

Rules, checked after the row rules:

* ``file_readable`` / ``required_columns``: the whole batch is rejected (its rows are quarantined when they could be
  read).
* quarantine share: a batch with more than ``validate.max_quarantine_share`` of its rows quarantined.
* ``batch_volume``: the rows of every delivery must lie within ``validate.volume_band`` x the median rows of the
  ``validate.volume_window`` deliveries before it (checked once ``validate.volume_min_history`` exist). The rows
  are not quarantined: they are valid, the delivery as a whole is suspicious.
* ``label_minimum``: every taxonomy label needs ``validate.min_rows_per_label`` accepted labelled rows.

A batch that broke ``file_readable``, ``required_columns`` or the quarantine share keeps failing the stage on every
later run, newer deliveries or not, so its accepted rows never reach training unreviewed. It stops failing when

* it is **superseded**: a file with the same name from the same source was delivered again later (the fixed
  re-delivery). The superseded batch's rows are then quarantined under rule ``superseded`` (the re-delivery carries
  them), so they neither reach training twice nor claim ids the re-delivery needs; or
* an operator lists its batch id in ``validate.batches_accepted`` after reviewing it (its accepted rows then go on).

Anomalous volumes work the same way through ``validate.volume_accepted`` (delivery sequences).
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from feedbackflow.quality.rules import BATCH_VOLUME, FILE_READABLE, LABEL_MINIMUM, REQUIRED_COLUMNS, UPDATE_SOURCES

#: Name of the quarantine-share rule in messages and the report.
QUARANTINE_SHARE = "max_quarantine_share"


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
    superseded_by: str | None = None  # batch id of the later re-delivery of the same file
    accepted: bool = False  # listed in validate.batches_accepted by an operator
    rows_replaced: int = 0  # quarantined only because a later version of the record replaced them (not bad rows)
    rows_erased: int = 0  # quarantined because they carry an erased subject's identifier (not bad rows)

    @property
    def share(self) -> float:
        """Share of the batch's rows quarantined as bad (replaced versions and erased subjects' rows do not count)."""
        bad = self.rows_quarantined - self.rows_replaced - self.rows_erased
        return bad / self.rows_read if self.rows_read else 0.0

    def broken_rule(self, max_share: float) -> str | None:
        """The batch rule this batch broke (``file_readable``, ``required_columns`` or the share), if any."""
        if self.failed_rule is not None:
            return self.failed_rule
        return QUARANTINE_SHARE if self.share > max_share else None

    def blocks(self, max_share: float) -> bool:
        """True when the batch broke a batch rule and was neither superseded nor accepted."""
        return self.broken_rule(max_share) is not None and self.superseded_by is None and not self.accepted

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
            "rows_erased": self.rows_erased,
            "quarantine_share": round(self.share, 6),
            "over_threshold": self.share > max_share,
            "quarantined_by_rule": {rule: count for rule, count in self.by_rule.items() if count},
            "batch_rule_failed": self.failed_rule,
            "problem": self.problem,
            "extra_columns": self.extra_columns,
            "superseded_by": self.superseded_by,
            "accepted": self.accepted,
            "blocking": self.blocks(max_share),
        }


def later_redeliveries(results: list[BatchResult]) -> dict[int, str]:
    """Position of each batch -> batch id of the newest later batch with the same source and file name.

    Batches of an updating source (PostgreSQL) are increments of one table, never re-deliveries of each other.
    """
    newest: dict[tuple[str, str], BatchResult] = {}
    later: dict[int, str] = {}
    for result in sorted(results, key=lambda r: (r.entry["sequence"], r.position), reverse=True):
        if result.entry.get("source", "folder") in UPDATE_SOURCES:
            continue
        key = (result.entry.get("source", "folder"), result.entry["key"])
        if key in newest and newest[key].entry["sequence"] > result.entry["sequence"]:
            later[result.position] = newest[key].entry["batch_id"]
        newest.setdefault(key, result)
    return later


def blocking_errors(results: list[BatchResult], max_share: float, raw_dir: Path, quarantine_file: str) -> list[str]:
    """One message per batch that broke a batch rule and was neither superseded nor accepted (see module doc)."""
    errors = []
    for result in results:
        if not result.blocks(max_share):
            continue
        where = result.describe(raw_dir)
        rule = result.broken_rule(max_share)
        if rule == FILE_READABLE:
            what = (
                f"{where} broke rule '{FILE_READABLE}': {result.problem}. Fix the file (UTF-8 CSV with a header row, "
                "JSON Lines with one object per line, or Parquet)"
            )
        elif rule == REQUIRED_COLUMNS:
            what = (
                f"{where} broke rule '{REQUIRED_COLUMNS}': {result.problem}. All its {result.rows_read} rows are "
                "quarantined. Fix the export so the file has every required column (validate.required_columns in "
                "params.yaml)"
            )
        else:
            counts = Counter({name: count for name, count in result.by_rule.items() if count})
            top, count = counts.most_common(1)[0]
            what = (
                f"{where}: {result.rows_quarantined} of {result.rows_read} rows quarantined ({result.share:.1%}), "
                f"above validate.max_quarantine_share={max_share:.1%}; most frequent rule '{top}' ({count} rows). "
                f"Inspect the rows with batch_id {result.entry['batch_id']} in {quarantine_file}, fix the source "
                "(or raise validate.max_quarantine_share in params.yaml if this share is acceptable)"
            )
        errors.append(
            f"{what} and re-deliver it under the same name ({result.entry['key']}) through the ingest source. "
            f"Until then this batch keeps failing validate and its rows stay out of training, newer deliveries or "
            f"not; if it was reviewed and its accepted rows may be used as they are, add "
            f"'{result.entry['batch_id']}' to validate.batches_accepted in params.yaml."
        )
    return errors


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


def volume_errors(
    results: list[BatchResult], volume: dict[str, Any], raw_dir: Path, band: tuple[float, float], window: int
) -> list[str]:
    """One message per anomalous delivery of :func:`check_volume`."""
    errors = []
    for anomaly in volume["anomalies"]:
        files = ", ".join(r.describe(raw_dir) for r in results if r.entry["sequence"] == anomaly["sequence"])
        errors.append(
            f"{files} broke rule '{BATCH_VOLUME}': {anomaly['rows']} rows in delivery {anomaly['sequence']}, outside "
            f"[{anomaly['low']:.0f}, {anomaly['high']:.0f}] (validate.volume_band {list(band)} x the "
            f"median of up to {window} deliveries before it). The raw files are kept and no row is "
            "quarantined. Check the export for lost or duplicated data; if the volume is genuine, add "
            f"{anomaly['sequence']} to validate.volume_accepted (or widen validate.volume_band) in params.yaml "
            "and rerun."
        )
    return errors


def check_label_minimum(counts: Mapping[str, int], taxonomy: tuple[str, ...], minimum: int) -> dict[str, Any]:
    """Count accepted labelled rows per taxonomy label and list those below ``minimum`` (rule ``label_minimum``).

    Args:
        counts: Accepted labelled rows per label (the validate stage counts them chunk by chunk).
        taxonomy: Every label the model is trained on.
        minimum: Rows each label needs; 0 switches the check off.

    Returns:
        ``minimum``, ``counts`` (label -> rows, every taxonomy label) and ``short`` (label -> rows, fewest first).
    """
    per_label = {label: int(counts.get(label, 0)) for label in taxonomy}
    short = dict(sorted(((k, v) for k, v in per_label.items() if v < minimum), key=lambda item: (item[1], item[0])))
    return {"minimum": minimum, "counts": per_label, "short": short}


def label_errors(labels: dict[str, Any], validated_file: str) -> list[str]:
    """The ``label_minimum`` message for the result of :func:`check_label_minimum` (none when no label is short)."""
    short = labels["short"]
    if not short:
        return []
    shown = ", ".join(f"{label} ({count})" for label, count in list(short.items())[:20])
    more = f" and {len(short) - 20} more" if len(short) > 20 else ""
    return [
        f"rule '{LABEL_MINIMUM}': {len(short)} label(s) have fewer than validate.min_rows_per_label="
        f"{labels['minimum']} accepted labelled rows in {validated_file}: {shown}{more}. Collect and label more "
        "feedback for them (or lower validate.min_rows_per_label) before training."
    ]
