"""validate reuses each raw batch's part: its outputs must equal a full recompute from the raw files, night after night.

Each scenario runs the stage on a workspace that kept its ``data/validate_parts`` and compares the validated Parquet,
the quarantine Parquet (bytes), the report (less its run id and the reuse counts) and the error message with a copy
of the project holding only the raw files and params (a full recompute): after a new night, a re-delivered batch, a
params change, a new erased subject, a corrupted or missing part, and a run killed half-way.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import DataQualityError
from feedbackflow.governance.erasure_match import ErasureKey, Matcher, add_erased, subject_forms
from feedbackflow.stages.validate import run
from feedbackflow.storage import partitions
from tests.unit.test_validate import HEADER, deliver, paths, row, settings  # noqa: F401

KEY = "validate-incremental-key-5e6f7a8b"
Outputs = tuple[bytes, bytes, dict, str]


def _night(paths: ProjectPaths, night: int, name: str | None = None, bad: int = 2) -> None:  # noqa: F811
    """Deliver one night: 20 rows, ``bad`` of them empty, one repeating night 1's first id, one naming Jane Roe."""
    rows = [row(f"n{night}-{n}", text=f"card {n} of night {night} has not arrived") for n in range(20)]
    for n in range(bad):
        rows[n] = row(f"n{night}-{n}", text="")
    if night > 1:
        rows[-1] = row("n1-5")  # id_unique across batches: night 1 keeps it
    rows[-2] = row(f"n{night}-jane", text="Jane Roe asked about her card")
    deliver(paths, {name or f"night-{night}.csv": [HEADER, *rows]})


def _run(paths: ProjectPaths, **params: object) -> tuple[Outputs, dict]:  # noqa: F811
    try:
        run(settings(**params), paths)
        error = ""
    except DataQualityError as failure:
        error = str(failure)
    report = json.loads((paths.stage_reports("validate") / "validate.json").read_text(encoding="utf-8"))
    report.pop("run_id")
    reuse = report.pop("incremental")
    files = (
        (paths.validated / "feedback.parquet").read_bytes(),
        (paths.quarantine / "quarantine.parquet").read_bytes(),
    )
    return (*files, report, error), reuse


def _full(paths: ProjectPaths, **params: object) -> Outputs:  # noqa: F811
    """The same stage on a copy holding the raw files, the taxonomy and the erased list only: every batch from raw."""
    copy = paths.root.with_name("full-recompute")
    shutil.rmtree(copy, ignore_errors=True)
    skip = shutil.ignore_patterns("validate_parts", ".validate_parts.partial", "validated", "quarantine", "reports")
    shutil.copytree(paths.root, copy, ignore=skip)
    outputs, reuse = _run(ProjectPaths(copy), **params)
    assert reuse["batches_reused"] == 0
    return outputs


def _same_as_full(paths: ProjectPaths, **params: object) -> dict:  # noqa: F811
    outputs, reuse = _run(paths, **params)
    full = _full(paths, **params)
    assert outputs[0] == full[0], "validated rows differ from a full recompute"
    assert outputs[1] == full[1], "quarantined rows differ from a full recompute"
    assert outputs[2:] == full[2:]
    return reuse


def test_each_night_reads_only_its_new_batch_and_a_fresh_worker_gets_the_same(paths: ProjectPaths) -> None:  # noqa: F811
    for night in (1, 2, 3):
        _night(paths, night)
        reuse = _same_as_full(paths)
        assert reuse == {"batches_read": 1, "batches_reused": night - 1, "parts_missing": 0}
    quarantine = _run(paths)[0][2]["quarantined_by_rule"]
    assert quarantine["id_unique"] == 2 and quarantine["text_not_empty"] == 6  # rules across and within batches

    # a worker with an empty disk pulls the raw store and the parts (DVC outputs) and reads no raw file again
    worker = ProjectPaths(paths.root.with_name("worker"))
    for folder in ("data/raw", "data/validate_parts"):
        shutil.copytree(paths.root / folder, worker.root / folder)
    shutil.copy(paths.root / "taxonomy.json", worker.root / "taxonomy.json")
    outputs, reuse = _run(worker)
    assert reuse == {"batches_read": 0, "batches_reused": 3, "parts_missing": 0}
    assert outputs == _full(paths)


def test_a_redelivered_batch_and_a_params_change_give_the_full_result(paths: ProjectPaths) -> None:  # noqa: F811
    _night(paths, 1)
    _night(paths, 2, name="late.csv", bad=12)  # 60 % empty texts: blocks until re-delivered
    first, _ = _run(paths)
    assert "late.csv" in first[3]
    _night(paths, 3, name="late.csv")  # the fixed re-delivery supersedes it
    reuse = _same_as_full(paths)
    assert reuse["batches_reused"] == 2
    assert _run(paths)[0][3] == ""

    reuse = _same_as_full(paths, max_text_chars=30)  # a rule's parameter: every batch is read again
    assert reuse == {"batches_read": 3, "batches_reused": 0, "parts_missing": 0}
    assert _same_as_full(paths, max_text_chars=30, chunk_rows=7)["batches_reused"] == 3  # speed knobs reuse


def test_a_new_erased_subject_reads_every_batch_again(paths: ProjectPaths, monkeypatch) -> None:  # noqa: F811
    _night(paths, 1)
    _night(paths, 2)
    _run(paths)
    monkeypatch.setenv("FEEDBACKFLOW_ERASURE_KEY", KEY)
    matcher = Matcher.for_subject(ErasureKey(KEY.encode()), subject_forms({"name": ["Jane Roe"]}))
    add_erased(paths.root / "data" / "erased_subjects.json", matcher, "REQ-1", "2026-12-06T03:00:00+00:00")
    reuse = _same_as_full(paths)
    assert reuse["batches_reused"] == 0
    assert _run(paths)[0][2]["quarantined_by_rule"]["erased_subject"] == 2


def test_a_corrupted_or_missing_part_is_read_from_raw_with_a_warning(paths: ProjectPaths, caplog) -> None:  # noqa: F811
    for night in (1, 2, 3):
        _night(paths, night)
    _run(paths)
    files = partitions.part_files(paths.validate_parts)
    files[0].write_bytes(files[0].read_bytes()[:-40] + b"\0" * 40)
    files[2].unlink()
    with caplog.at_level(logging.WARNING, logger="feedbackflow.quality.batch_parts"):
        reuse = _same_as_full(paths)
    assert reuse == {"batches_read": 2, "batches_reused": 1, "parts_missing": 2}
    assert sum("missing or corrupted" in message for message in caplog.messages) == 2
    assert _run(paths)[1]["batches_reused"] == 3  # the index names intact parts again


def test_a_run_killed_half_way_leaves_a_state_the_next_run_recovers_from(paths: ProjectPaths, monkeypatch) -> None:  # noqa: F811
    _night(paths, 1)
    _run(paths)
    _night(paths, 2)

    def killed(*args: object, **kwargs: object) -> Path:
        raise KeyboardInterrupt  # the new parts are in the folder, the index is not written

    with monkeypatch.context() as patched:
        patched.setattr(partitions, "write_index", killed)
        with pytest.raises(KeyboardInterrupt):
            run(settings(), paths)
    assert len(partitions.part_files(paths.validate_parts)) == 1  # the previous index, naming files that exist
    reuse = _same_as_full(paths)
    assert reuse == {"batches_read": 1, "batches_reused": 1, "parts_missing": 0}


def test_a_row_dated_in_the_future_is_checked_again_once_its_time_has_come(paths: ProjectPaths, monkeypatch) -> None:  # noqa: F811
    from feedbackflow.stages import validate

    original = validate.RuleSpec.from_settings

    def at(now: str) -> None:
        fixed = pd.Timestamp(now)
        monkeypatch.setattr(
            validate.RuleSpec, "from_settings", lambda params, taxonomy: original(params, taxonomy, fixed)
        )

    _night(paths, 1)
    deliver(paths, {"early.csv": [HEADER, row("soon", created_at="2024-06-01T00:00:00Z"), row("past")]})
    at("2024-05-15T00:00:00Z")
    outputs, _ = _run(paths)
    assert outputs[2]["quarantined_by_rule"]["created_at_not_future"] == 1
    deliver(paths, {"again.csv": [HEADER, row("soon"), row("later")]})  # its id: the earlier row now claims it
    at("2024-07-01T00:00:00Z")
    reuse = _same_as_full(paths)
    assert reuse["batches_reused"] == 2
    counts = _run(paths)[0][2]["quarantined_by_rule"]
    assert (counts["created_at_not_future"], counts["id_unique"]) == (0, 1)
