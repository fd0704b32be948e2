"""The raw history validated chunk by chunk, so the validate stage's memory does not grow with the rows.

Every row rule but ``id_unique`` looks at its own row only; ``id_unique`` (and through it the quarantine share that
decides whether a re-delivered batch was superseded) needs the whole history, but only its ids. So the history is
read twice, one chunk of ``validate.chunk_rows`` rows at a time:

1. **Pass 1** reads every batch: header rules, row counts, and for each row that passes every rule but ``id_unique``
   (an id candidate) its id and position. From these, :class:`~feedbackflow.quality.ids.IdClaims` (one entry per
   distinct id) decides ``id_unique`` for any row, and the superseded batches are marked. A batch read from its raw
   file leaves a part (:mod:`feedbackflow.quality.batch_parts`: its tagged rows and each row's candidate flag); a
   batch whose part from an earlier run is reusable is not read from raw at all, and when none of its rows was dated
   in the future its candidates and counts come from the part without running a rule.
2. **Pass 2** reads the batches again (from their parts), decides every rule, and streams accepted rows into the
   validated Parquet file and failing, superseded and rejected rows into the quarantine
   (:class:`~feedbackflow.quality.outputs.ParquetSink`), counting per batch, rule and label. A part keeps the field
   rules each row broke when it was written; where they hold tonight (no row was dated in the future then) pass 2
   adds ``id_unique`` and moves the rows in Arrow (:mod:`feedbackflow.quality.settled`), else it computes every rule
   again in pandas. The rows GX re-checks are
   kept as they pass: every flagged row, every row sharing an id among candidates, and the seeded sample of
   ``validate.gx_passing_rows`` other rows that :func:`~feedbackflow.quality.expectations.gx_positions` draws on the
   whole history (the same rows: the sample's ranks are drawn before pass 2 from the number of such rows).

The outputs are those of validating the whole history as one frame (``tests/unit/test_validate_chunks.py`` compares
them byte for byte with chunks of 7 rows). Memory: one chunk of rows (and its derived columns), plus the id claims
(each distinct candidate id's text and four int64 per id), plus the GX rows (flagged rows + ``gx_passing_rows``; every
row when ``gx_passing_rows`` is null), plus one 50,000-row group buffered per output file. A CSV that only pandas can
parse (a NUL byte, a ragged row) is read whole before it is cut into chunks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from feedbackflow.errors import ConfigError
from feedbackflow.quality import settled
from feedbackflow.quality.batch_parts import BatchParts, PartWriter, read_part
from feedbackflow.quality.batches import BatchResult, later_redeliveries
from feedbackflow.quality.expectations import gx_view
from feedbackflow.quality.ids import IdClaims
from feedbackflow.quality.masks import (
    Prepared,
    any_rule,
    as_text,
    blank,
    field_masks,
    pack_masks,
    replaced_versions,
    rules_column,
    type_errors,
    unpack_masks,
)
from feedbackflow.quality.outputs import ParquetSink
from feedbackflow.quality.readers import RawBatch, RestartBatchError, UnreadableBatchError
from feedbackflow.quality.rules import (
    CREATED_AT_NOT_FUTURE,
    ERASED_SUBJECT,
    FILE_READABLE,
    ID_NOT_EMPTY,
    ID_UNIQUE,
    REQUIRED_COLUMNS,
    REVIEW_SOURCES,
    ROW_RULES,
    SUPERSEDED,
    TYPE_ERROR,
    UPDATE_SOURCE_COLUMN,
    UPDATE_SOURCES,
    RuleSpec,
)
from feedbackflow.quality.text import normalise_text
from feedbackflow.quality.validator import ExpectationOutcome, QualityValidator
from feedbackflow.storage.manifest import PROVENANCE_COLUMNS

# Bookkeeping columns carried next to the data columns while validating; never written out.
POSITION = "_batch_position"
ROW = "_row_in_batch"
#: Picks the rows of a tagged chunk carrying an erased subject's identifier (rule ``erased_subject``).
ErasedRows = Callable[[pd.DataFrame], np.ndarray]
_SHARED = "shared ids"


#: A part's column saying whether the row passed every rule but ``id_unique`` (an id candidate) when it was written.
CANDIDATE = "_id_candidate"
#: A part's column with the rules of :func:`~feedbackflow.quality.masks.field_masks` the row broke when it was written
#: (:func:`~feedbackflow.quality.masks.pack_masks`): pass 2 reads them instead of computing them again.
FIELD_RULES_BROKEN = "_field_rules"


def part_columns(spec: RuleSpec) -> list[str]:
    """The columns a batch's part keeps (:mod:`.batch_parts`): the rest of a tagged chunk is its manifest entry's."""
    return [*spec.carried_columns, TYPE_ERROR, "row_number", ROW, CANDIDATE, FIELD_RULES_BROKEN]


@dataclass
class _Candidates:
    """Pass 1's id candidates, in validation order: the only per-row state kept between the passes."""

    ids: list[pa.Array] = field(default_factory=list)
    positions: list[np.ndarray] = field(default_factory=list)
    batches: list[np.ndarray] = field(default_factory=list)

    def extend(self, other: _Candidates) -> None:
        self.ids += other.ids
        self.positions += other.positions
        self.batches += other.batches

    def arrays(self, keep: set[int] | None = None) -> tuple[pa.Array, np.ndarray, np.ndarray]:
        """Ids, positions and batch positions, only of the batches in ``keep`` (all when None)."""
        ids = pa.concat_arrays(self.ids) if self.ids else pa.array([], pa.large_string())
        positions = np.concatenate(self.positions) if self.positions else np.zeros(0, np.int64)
        batches = np.concatenate(self.batches) if self.batches else np.zeros(0, np.int64)
        if keep is not None:
            chosen = np.isin(batches, list(keep))
            ids, positions, batches = ids.filter(pa.array(chosen)), positions[chosen], batches[chosen]
        return ids, positions, batches


@dataclass
class RowsChecked:
    """What the GX cross-check found: one outcome per row rule, over ``gx_rows`` rows."""

    outcomes: list[ExpectationOutcome]
    gx_rows: int


@dataclass
class Validated:
    """Result of :func:`validate_history`: the counts the report needs (the rows are in the files)."""

    rows: RowsChecked
    accepted: int
    quarantined: int
    label_counts: dict[str, int]
    incremental: dict[str, int] = field(default_factory=dict)  # batches reused from their parts, read from raw


class History:
    """Every raw batch of the manifest, read chunk by chunk (see the module docstring)."""

    def __init__(
        self,
        results: list[BatchResult],
        raw_dir: Path,
        manifest: Path,
        spec: RuleSpec,
        validator: QualityValidator,
        chunk_rows: int,
        erased: ErasedRows | None = None,
        parts: BatchParts | None = None,
    ) -> None:
        """Pass 1: read every batch, apply the header rules and collect the id candidates.

        ``erased`` picks rows of erased subjects: they are quarantined under ``erased_subject`` before any other rule
        and never claim an id.

        Raises:
            ConfigError: a raw file listed in the manifest is missing.
        """
        self.results = results
        self.spec = spec
        self.validator = validator
        self.columns = spec.carried_columns
        self._readers: dict[int, RawBatch] = {}
        self._offsets: dict[int, int] = {}  # position in validation order of each readable batch's first row
        self._flagged: dict[int, int] = {}  # rows of each readable batch that broke a rule other than id_unique
        self._erased_rows = erased
        self._erased: dict[int, int] = {}  # rows of each readable batch carrying an erased subject's identifier
        self._candidates = _Candidates()
        self._parts = parts
        self._stored: dict[int, Path] = {}  # batch position -> the part holding its tagged rows (read, not raw)
        self._stale: set[int] = set()  # reused parts whose stored field rules may differ tonight (future rows)
        self.chunk_rows = chunk_rows
        for result in results:
            if parts is not None and self._reuse_part(result, parts):
                continue
            raw_file = raw_dir / result.entry["raw_file"]
            if not raw_file.is_file():
                raise ConfigError(
                    f"{raw_file}: listed in {manifest.name} for {result.entry['key']} but missing; "
                    "restore data/raw (e.g. `dvc pull`) before validating"
                )
            self._readers[result.position] = RawBatch(raw_file, chunk_rows)
            self._read_raw(result)

    def _read_raw(self, result: BatchResult) -> None:
        """Pass 1 over a raw file; a readable batch with rows leaves its part (read in pass 2 instead of the file)."""
        writer = self._parts.writer(result.entry) if self._parts is not None else None
        while True:
            try:
                self._first_pass(result, self._raw_tagged(result), writer)
                break
            except RestartBatchError:
                if writer is not None:
                    writer.abandon()
                continue
            except UnreadableBatchError as error:
                result.rows_read, result.failed_rule = 0, FILE_READABLE
                result.problem = f"cannot be parsed: {error}"
                break
        if writer is None or self._parts is None:
            return
        if result.failed_rule is None and result.rows_read:
            position = result.position
            header = {"extra_columns": result.extra_columns, "future_rows": writer.future_rows}
            header |= {"flagged": self._flagged[position], "erased": self._erased[position]}
            self._parts.add(position, writer.close(header))
            self._stored[position] = writer.path
        else:
            writer.abandon()

    def _reuse_part(self, result: BatchResult, parts: BatchParts) -> bool:
        """Pass 1 over the batch's part from an earlier run, when one is reusable (see :mod:`.batch_parts`)."""
        found = parts.reusable(result.position, result.entry)
        if found is None:
            return False
        path, entry = found
        self._stored[result.position] = path
        result.extra_columns = list(entry["extra_columns"])
        if entry["future_rows"]:  # a row dated in the future may pass tonight: every row rule again
            self._stale.add(result.position)
            self._first_pass(result, self._tagged(result))
        else:  # no rule of pass 1 depends on the time: its candidates and counts are the part's
            self._candidates_of_part(result, path, entry)
        return True

    def _candidates_of_part(self, result: BatchResult, path: Path, entry: dict) -> None:
        """Pass 1 of a reused part written with no row dated in the future: its ids and flags, no rule run."""
        import pyarrow.parquet as pq

        offset = sum(self.results[p].rows_read for p in self._offsets)
        table = pq.read_table(path, columns=["id", CANDIDATE, ROW])
        chosen = table[CANDIDATE].to_numpy(zero_copy_only=False)
        ids = table["id"].filter(table[CANDIDATE]).combine_chunks()
        self._candidates.ids.append(ids.cast(pa.large_string()))
        self._candidates.positions.append(offset + table[ROW].to_numpy(zero_copy_only=False)[chosen])
        self._candidates.batches.append(np.full(len(ids), result.position, dtype=np.int64))
        result.rows_read, result.failed_rule, result.problem = table.num_rows, None, None
        self._offsets[result.position] = offset
        self._flagged[result.position] = entry["flagged"]
        self._erased[result.position] = entry["erased"]

    @property
    def rows(self) -> int:
        """Rows of the readable batches (the history the row rules see, superseded batches included)."""
        return sum(result.rows_read for result in self.results if result.position in self._offsets)

    def _first_pass(
        self, result: BatchResult, chunks: Iterator[pd.DataFrame], writer: PartWriter | None = None
    ) -> None:
        """Count the batch's rows and collect its id candidates from its tagged chunks (written to ``writer``)."""
        result.rows_read, result.failed_rule, result.problem = 0, None, None
        candidates, flagged, erased = _Candidates(), 0, 0
        offset = sum(self.results[p].rows_read for p in self._offsets)
        rows = 0
        for tagged in chunks:
            masks = field_masks(tagged, self.spec, Prepared.of(tagged, self.spec.now))
            candidate = ~any_rule(masks).to_numpy()
            flagged += int((~candidate).sum())
            gone = self.erased_mask(tagged)
            erased += int((gone & candidate).sum())
            candidate &= ~gone
            if writer is not None:
                stored = {CANDIDATE: candidate, FIELD_RULES_BROKEN: pack_masks(masks)}
                writer.write(tagged.assign(**stored), int(masks[CREATED_AT_NOT_FUTURE].sum()))
            ids = tagged["id"][candidate]
            candidates.ids.append(pa.array(ids.to_numpy(dtype=object), type=pa.large_string()))
            candidates.positions.append(offset + rows + np.flatnonzero(candidate))
            candidates.batches.append(np.full(len(ids), result.position, dtype=np.int64))
            rows += len(tagged)
        if result.failed_rule is not None:  # a header rule rejected the batch (rows_read is set)
            return
        result.rows_read = rows
        if not rows:
            result.problem = "header only (no rows)"
        self._offsets[result.position] = offset
        self._flagged[result.position] = flagged
        self._erased[result.position] = erased
        self._candidates.extend(candidates)

    def _raw_tagged(self, result: BatchResult) -> Iterator[pd.DataFrame]:
        """The raw file's tagged chunks; stops early when a header rule breaks."""
        rows = 0
        chunks = self._readers[result.position].chunks()
        for number, (frame, row_numbers) in enumerate(chunks):
            if number == 0 and not self._header_ok(result, frame, chunks):
                return
            tagged = self.tag(frame, result, row_numbers, rows)
            rows += len(frame)
            yield tagged

    def _header_ok(self, result: BatchResult, frame: pd.DataFrame, chunks: Iterator) -> bool:
        """Apply the header rules to the first chunk; a broken one rejects the batch (counting its rows)."""
        if len(frame.columns) == 0:
            # No header and no rows: nothing can be lost, but an export that writes nothing at all is broken.
            result.rows_read = len(frame) + sum(len(rest) for rest, _ in chunks)
            result.failed_rule, result.problem = FILE_READABLE, "empty file (no header, no rows)"
            return False
        _, missing = self.validator.check_columns(frame)
        if missing:
            result.failed_rule = REQUIRED_COLUMNS
            # Found column names are not listed: a file without a header row would put data values there.
            result.problem = f"missing required column(s) {', '.join(missing)}"
            if len(frame.columns) == 1:
                result.problem += " (the header has a single column: is the file comma-separated?)"
            rows = len(frame) + sum(len(rest) for rest, _ in chunks)
            result.rows_read = result.rows_quarantined = rows
            result.by_rule = {REQUIRED_COLUMNS: rows}
            return False
        # Names are listed only once the header is known to be real (every required column found).
        known = {*self.columns, *PROVENANCE_COLUMNS}
        result.extra_columns = [str(column) for column in frame.columns if column not in known]
        return True

    def erased_mask(self, tagged: pd.DataFrame) -> np.ndarray:
        """True for rows carrying an erased subject's identifier (none when nothing was erased)."""
        if self._erased_rows is None or not len(tagged):
            return np.zeros(len(tagged), dtype=bool)
        return np.asarray(self._erased_rows(tagged), dtype=bool)

    def tag(self, frame: pd.DataFrame, result: BatchResult, row_numbers: np.ndarray, first_row: int) -> pd.DataFrame:
        """Keep the carried columns as text (missing ones as null, ``text`` normalised) and add provenance columns."""
        entry = result.entry
        data = {
            column: as_text(frame[column])
            if column in frame.columns
            else pd.Series(None, index=frame.index, dtype=object)
            for column in self.columns
        }
        data["text"] = normalise_text(data["text"])
        tagged = pd.DataFrame(data, index=frame.index).reset_index(drop=True)
        errors = [type_errors(frame[column], column) for column in self.columns if column in frame.columns]
        tagged[TYPE_ERROR] = np.logical_or.reduce(errors) if errors else np.zeros(len(tagged), dtype=bool)
        tagged["batch_id"] = entry["batch_id"]
        tagged["sequence"] = np.int64(entry["sequence"])
        tagged["source"] = entry.get("source", "folder")
        tagged["source_file"] = entry["key"]
        tagged["row_number"] = np.asarray(row_numbers, dtype=np.int64)
        tagged[POSITION] = result.position
        tagged[ROW] = first_row + np.arange(len(tagged), dtype=np.int64)
        return tagged

    def _retag(self, stored: pd.DataFrame, result: BatchResult) -> pd.DataFrame:
        """A tagged chunk rebuilt from a part: the same columns, order and types as :meth:`tag` gives."""
        entry = result.entry
        tagged = stored[[*self.columns, TYPE_ERROR]].copy()
        tagged["batch_id"] = entry["batch_id"]
        tagged["sequence"] = np.int64(entry["sequence"])
        tagged["source"] = entry.get("source", "folder")
        tagged["source_file"] = entry["key"]
        tagged["row_number"] = stored["row_number"].to_numpy(dtype=np.int64)
        tagged[POSITION] = result.position
        tagged[ROW] = stored[ROW].to_numpy(dtype=np.int64)
        if result.position not in self._stale:  # the rules it broke, as computed tonight or on a past night
            tagged[FIELD_RULES_BROKEN] = stored[FIELD_RULES_BROKEN].to_numpy(dtype=np.int64)
        return tagged

    def mark_superseded(self, max_share: float) -> None:
        """Mark each batch that broke a batch rule and was re-delivered later under the same name as superseded.

        Whether a readable batch broke the quarantine share needs ``id_unique`` over the whole history (superseded
        batches included); it is computed from pass 1's candidates only when some readable batch has a later
        re-delivery at all.
        """
        later = later_redeliveries(self.results)
        for result in self.results:
            if result.position in later and result.failed_rule is not None:
                result.superseded_by = later[result.position]
        due = [r for r in self.results if r.position in later and r.failed_rule is None and r.position in self._offsets]
        if not due or not self.rows:
            return
        ids, positions, batches = self._candidates.arrays()
        versioned, reviewed = self._versioned(batches), self._reviewed(batches)
        claims = IdClaims(ids, positions, versioned, reviewed)
        repeated = claims.repeated(ids, positions, np.ones(len(positions), bool), versioned, reviewed)
        # a replaced version of an updated record (only id_unique, from an updating source) is no bad row, nor is a
        # row whose label a reviewer replaced
        bad = pd.Series(repeated & ~versioned & ~claims.reviewed_later(ids, positions)).groupby(batches).sum()
        for result in due:
            if not result.rows_read:
                continue
            share = (self._flagged[result.position] + int(bad.get(result.position, 0))) / result.rows_read
            if share > max_share:
                result.superseded_by = later[result.position]

    def _versioned(self, batches: np.ndarray) -> np.ndarray:
        updating = [r.position for r in self.results if r.entry.get("source", "folder") in UPDATE_SOURCES]
        return np.isin(batches, updating)

    def _reviewed(self, batches: np.ndarray) -> np.ndarray:
        reviews = [r.position for r in self.results if r.entry.get("source", "folder") in REVIEW_SOURCES]
        return np.isin(batches, reviews)

    def validate(self, validated: ParquetSink, quarantine: ParquetSink, gx_passing_rows: int | None) -> Validated:
        """Pass 2: every rule on every row of the batches not superseded; write the rows; cross-check with GX."""
        checked = {p for p in self._offsets if self.results[p].superseded_by is None}
        ids, positions, batches = self._candidates.arrays(checked)
        claims = IdClaims(ids, positions, self._versioned(batches), self._reviewed(batches))
        self._candidates = _Candidates()  # the claims hold what is needed from here on
        checked_rows = sum(self.results[p].rows_read for p in checked)
        involved = sum(self._flagged[p] + self._erased[p] for p in checked)
        involved += int(claims.shared(ids, np.ones(len(ids), bool)).sum())
        sample = _GxSample(checked_rows, checked_rows - involved, gx_passing_rows, self.spec.now)
        labels: Counter[str] = Counter()
        accepted = 0
        for result in self.results:
            if result.failed_rule == FILE_READABLE:
                continue
            if result.failed_rule == REQUIRED_COLUMNS:
                for frame in self._tagged(result):
                    quarantine.write(frame.assign(rules=REQUIRED_COLUMNS))
            elif result.superseded_by is not None:
                # the re-delivery carries these rows: quarantined without being checked
                for frame in self._tagged(result):
                    quarantine.write(frame.assign(rules=SUPERSEDED))
                result.rows_quarantined = result.rows_read
                result.by_rule = {SUPERSEDED: result.rows_read}
            else:
                accepted += self._check_batch(result, _Pass2(claims, sample, validated, quarantine, labels))
        if sample.views:
            outcomes = self.validator.confirm(pd.concat(sample.views, ignore_index=True), sample.expected())
            rows = RowsChecked(outcomes=outcomes, gx_rows=sample.rows)
        else:  # nothing to re-check: GX still runs (on no rows) so the report and the Data Docs have every rule
            nothing = self.validator.validate_rows(self._empty())
            rows = RowsChecked(outcomes=nothing.outcomes, gx_rows=nothing.gx_rows)
        return Validated(rows=rows, accepted=accepted, quarantined=quarantine.rows, label_counts=dict(labels))

    def _empty(self) -> pd.DataFrame:
        """The history with no rows, typed as a tagged chunk."""
        empty = {column: pd.Series(dtype=object) for column in (*self.columns, "batch_id", "source", "source_file")}
        empty.update({name: pd.Series(dtype=np.int64) for name in ("sequence", "row_number", POSITION, ROW)})
        return pd.DataFrame(empty)

    def _tagged(self, result: BatchResult) -> Iterator[pd.DataFrame]:
        stored = self._stored.get(result.position)
        if stored is not None:
            for frame in read_part(stored, self.chunk_rows):
                if len(frame):
                    yield self._retag(frame, result)
            return
        rows = 0
        for frame, row_numbers in self._readers[result.position].chunks():
            if len(frame):
                yield self.tag(frame, result, row_numbers, rows)
            rows += len(frame)

    def _field_rules(self, tagged: pd.DataFrame) -> tuple[Prepared | None, dict[str, pd.Series]]:
        """The chunk's prepared values (None when read from its part) and :func:`field_masks`.

        A part keeps the rules each row broke when it was written; they hold tonight unless a row was dated in the
        future then (such a part is marked stale). Computing them is most of the work of a row.
        """
        if FIELD_RULES_BROKEN in tagged.columns:
            return None, unpack_masks(tagged.pop(FIELD_RULES_BROKEN).to_numpy(), tagged.index)
        prepared = Prepared.of(tagged, self.spec.now)
        return prepared, field_masks(tagged, self.spec, prepared)

    def _check_batch(self, result: BatchResult, run: _Pass2) -> int:
        """Validate one batch chunk by chunk; returns its accepted rows."""
        if result.position in self._stored and result.position not in self._stale and self._erased_rows is None:
            return self._check_settled(result, run)
        return self._check_frames(result, run)

    def _check_frames(self, result: BatchResult, run: _Pass2) -> int:
        """:meth:`_check_batch` in pandas: any batch (erased subjects, a raw file, stale field rules)."""
        claims, sample, quarantine = run.claims, run.sample, run.quarantine
        per_rule = dict.fromkeys(ROW_RULES, 0)
        quarantined = replaced = accepted = 0
        offset = self._offsets[result.position]
        erased = 0
        for chunk in self._tagged(result):
            gone = self.erased_mask(chunk)
            if gone.any():
                quarantine.write(chunk.loc[gone].assign(rules=ERASED_SUBJECT))
                erased += int(gone.sum())
            tagged = chunk.loc[~gone].reset_index(drop=True)
            prepared, masks = self._field_rules(tagged)
            candidate = ~any_rule(masks).to_numpy()
            positions = offset + tagged[ROW].to_numpy()
            versioned = tagged[UPDATE_SOURCE_COLUMN].isin(UPDATE_SOURCES).to_numpy()
            reviewed = tagged[UPDATE_SOURCE_COLUMN].isin(REVIEW_SOURCES).to_numpy()
            found = claims.lookup(tagged["id"])
            repeated = claims.repeated(tagged["id"], positions, candidate, versioned, reviewed, index=found)
            masks[ID_UNIQUE] = pd.Series(repeated, index=tagged.index) & ~masks[ID_NOT_EMPTY]
            masks = {rule: masks[rule].astype(bool) for rule in ROW_RULES}
            failing = any_rule(masks)
            bad = tagged.loc[failing].assign(rules="")
            if len(bad):
                bad["rules"] = rules_column({rule: mask[failing] for rule, mask in masks.items()}).to_numpy()
            quarantine.write(bad)
            good = tagged.loc[~failing]
            label_blank = blank(good["label"]) if prepared is None else prepared.blank["label"][~failing]
            good = good.assign(label=good["label"].where(~label_blank, None))
            run.validated.write(good)
            run.labels.update(good["label"].dropna())
            for rule, mask in masks.items():
                per_rule[rule] += int(mask.sum())
            quarantined += int(failing.sum())
            replaced += int(replaced_versions(tagged, masks, claims.reviewed_later(tagged["id"], positions)).sum())
            accepted += len(good)
            shared = claims.shared(tagged["id"], candidate, index=found)
            sample.take(tagged, masks, prepared, failing.to_numpy(), shared)
        _record(result, per_rule, quarantined, replaced, erased)
        return accepted

    def _check_settled(self, result: BatchResult, run: _Pass2) -> int:
        """:meth:`_check_batch` of a batch whose part's field rules hold tonight, in Arrow (:mod:`.settled`)."""
        import pyarrow.parquet as pq

        claims, sample = run.claims, run.sample
        per_rule = dict.fromkeys(ROW_RULES, 0)
        quarantined = replaced = accepted = 0
        offset, source = self._offsets[result.position], result.entry.get("source", "folder")
        part = pq.ParquetFile(self._stored[result.position])
        for table in map(pa.Table.from_batches, ([b] for b in part.iter_batches(batch_size=max(1, self.chunk_rows)))):
            bits, ids = table[FIELD_RULES_BROKEN].to_numpy(), table["id"].combine_chunks()
            positions, rows = offset + table[ROW].to_numpy(), table.num_rows
            versioned, reviewed = np.full(rows, source in UPDATE_SOURCES), np.full(rows, source in REVIEW_SOURCES)
            found = claims.lookup(ids)
            repeated = claims.repeated(ids, positions, bits == 0, versioned, reviewed, index=found)
            unique = settled.id_unique(bits, repeated)
            failing = (bits != 0) | unique
            for rule, count in settled.rule_counts(bits, unique).items():
                per_rule[rule] += count
            replaced += int((unique & (bits == 0) & (claims.reviewed_later(ids, positions) | versioned)).sum())
            bad = self._settled_rows(table, failing, bits, unique, result)
            if len(bad[0]):
                run.quarantine.write(bad[0].assign(rules=rules_column(bad[1]).to_numpy()))
            good, counts = settled.accepted_rows(table, ~failing, result.entry)
            run.validated.write_table(good)
            run.labels.update(counts)
            quarantined, accepted = quarantined + int(failing.sum()), accepted + good.num_rows
            shared = claims.shared(ids, bits == 0, index=found)
            chosen = sample.choose(failing, shared)
            if chosen.any():
                picked, masks = self._settled_rows(table, chosen, bits, unique, result)
                sample.keep(picked, masks, None, np.ones(len(picked), bool), shared[chosen])
        _record(result, per_rule, quarantined, replaced)
        return accepted

    def _settled_rows(
        self, table: pa.Table, chosen: np.ndarray, bits: np.ndarray, unique: np.ndarray, result: BatchResult
    ) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
        """The ``chosen`` rows of a settled part's table as a tagged frame, and their row rules' masks."""
        frame = self._retag(table.filter(pa.array(chosen)).to_pandas(), result).drop(columns=FIELD_RULES_BROKEN)
        return frame, settled.row_masks(bits[chosen], unique[chosen], frame.index)


def _record(result: BatchResult, per_rule: dict[str, int], quarantined: int, replaced: int, erased: int = 0) -> None:
    """A checked batch's counts, on its result (a batch with no rows keeps none)."""
    if result.rows_read:
        result.rows_quarantined, result.rows_replaced, result.by_rule = quarantined + erased, replaced, per_rule
        result.rows_erased = erased
        result.by_rule[ERASED_SUBJECT] = erased


@dataclass
class _Pass2:
    """What pass 2 shares across batches: the id claims, the GX sample, the two output files and the label counts."""

    claims: IdClaims
    sample: _GxSample
    validated: ParquetSink
    quarantine: ParquetSink
    labels: Counter[str]


class _GxSample:
    """The rows GX re-checks, gathered chunk by chunk: those of :func:`~feedbackflow.quality.expectations.gx_positions`.

    Every involved row (flagged, or sharing an id among candidates) plus the seeded sample of the others, whose ranks
    among the others are drawn up front exactly as ``gx_positions`` draws them over the whole frame.
    """

    def __init__(self, rows: int, others: int, passing_rows: int | None, now: pd.Timestamp) -> None:
        self.every_row = passing_rows is None or others <= passing_rows
        self.ranks = (
            np.zeros(0, np.int64)
            if self.every_row
            else np.sort(np.random.default_rng(rows).choice(others, passing_rows, replace=False))
        )
        self.others_seen = 0
        self.now = now
        self.views: list[pd.DataFrame] = []
        self.counts: Counter[str] = Counter()
        self.rows = 0

    def take(
        self,
        frame: pd.DataFrame,
        masks: dict[str, pd.Series],
        prepared: Prepared | None,
        failing: np.ndarray,
        shared: np.ndarray,
    ) -> None:
        """Keep this chunk's rows GX re-checks (their view) and what GX must count on them.

        Args:
            frame: A tagged chunk.
            masks: Its rule masks.
            prepared: Its prepared values; None: computed here for the chosen rows only (every value is its row's).
            failing: True where a row broke a rule.
            shared: True for id candidates whose id another candidate shares.
        """
        self.keep(frame, masks, prepared, self.choose(failing, shared), shared)

    def choose(self, failing: np.ndarray, shared: np.ndarray) -> np.ndarray:
        """The rows of the next chunk GX re-checks (every involved row and the sample's), given its rows' flags."""
        involved = failing | shared
        if self.every_row:
            return np.ones(len(involved), dtype=bool)
        ranks = self.others_seen + np.cumsum(~involved) - 1
        at = np.minimum(np.searchsorted(self.ranks, ranks), len(self.ranks) - 1)
        self.others_seen += int((~involved).sum())
        return involved | (len(self.ranks) > 0) & (self.ranks[at] == ranks)

    def keep(
        self,
        frame: pd.DataFrame,
        masks: dict[str, pd.Series],
        prepared: Prepared | None,
        chosen: np.ndarray,
        shared: np.ndarray,
    ) -> None:
        """Keep the ``chosen`` rows of a chunk (as :meth:`take`)."""
        if not chosen.any():
            return
        if prepared is None:
            picked = frame.loc[chosen]
            view = gx_view(picked, {rule: mask[chosen] for rule, mask in masks.items()}, Prepared.of(picked, self.now))
        else:
            view = gx_view(frame, masks, prepared).loc[chosen]
        self.views.append(view.reset_index(drop=True))
        for rule, mask in masks.items():
            self.counts[rule] += int(mask.to_numpy()[chosen].sum())
        # GX counts every row of a repeated id, the kept first occurrence included: the candidates sharing an id
        self.counts[_SHARED] += int((chosen & shared).sum())
        self.rows += int(chosen.sum())

    def expected(self) -> dict[str, int]:
        """The ``unexpected_count`` GX must report per rule (see ``expected_unexpected_counts``)."""
        return {**{rule: self.counts[rule] for rule in ROW_RULES}, ID_UNIQUE: self.counts[_SHARED]}
