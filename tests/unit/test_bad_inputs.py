"""The bad-input corpus: every malformed delivery gets a clear error or a quarantine, and no row is lost.

Text files live in ``tests/data/bad_inputs/``; binary and large ones (BOM, Latin-1, NUL bytes, a 10 MB text, a
Parquet file with another schema) are generated here, at test time. Each case goes through the real ingest and
validate stages and checks: the outcome (the error names the file and the rule, or the quarantine names the rule),
the raw file is kept byte for byte, and accepted + quarantined = read.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import DataQualityError
from feedbackflow.stages import validate
from feedbackflow.stages.ingest import ingest_folder, read_manifest
from tests.helpers import params_settings

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bad_inputs"
TAXONOMY = ["card_arrival", "lost_or_stolen_card", "refund_not_showing_up"]
HEADER = "id,text,label,channel,created_at\n"
GOOD = "g1,my card has not arrived,card_arrival,app,2024-05-01T10:00:00Z\n"


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def generated(name: str) -> bytes:
    """The corpus files that are binary or large, built on demand."""
    if name == "bom.csv":
        return ("\ufeff" + HEADER + GOOD).encode("utf-8")
    if name == "latin1.csv":
        return (HEADER + "g1,ma carte n'est pas arrivée,card_arrival,app,2024-05-01T10:00:00Z\n").encode("latin-1")
    if name == "nul_bytes.csv":
        return (HEADER + GOOD + "n2,my card\x00 is stuck,card_arrival,app,2024-05-01T10:00:00Z\n").encode()
    if name == "huge_text.csv":
        return (HEADER + GOOD + f"h2,{'card ' * 2_000_000},card_arrival,app,2024-05-01T10:00:00Z\n").encode()
    if name == "other_schema.parquet":
        return _parquet(
            pd.DataFrame(
                {
                    "ticket_id": [1, 2],
                    "message": ["my card has not arrived", "I lost my card"],
                    "category": ["card_arrival", "lost_or_stolen_card"],
                    "channel": ["app", "web"],
                    "created_at": pd.to_datetime(["2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"]),
                }
            )
        )
    return (CORPUS / name).read_bytes()


@dataclass(frozen=True)
class Case:
    """One corpus file and what must happen to it."""

    name: str
    error_rule: str | None = None  # the batch-level rule named in the error, or None when the run succeeds
    error_text: str = ""  # more of the message that tells the operator what is wrong
    quarantined: dict[str, int] = field(default_factory=dict)  # rule -> rows quarantined for it
    accepted: int = 0
    extra_columns: tuple[str, ...] = ()


CASES = [
    Case("truncated.csv", accepted=1,
         quarantined={"label_in_taxonomy": 1, "channel_allowed": 1, "created_at_parseable": 1}),
    Case("truncated_in_quote.csv", error_rule="file_readable", error_text="EOF inside string"),
    Case("wrong_delimiter.csv", error_rule="required_columns", error_text="is the file comma-separated?",
         quarantined={"required_columns": 2}),
    Case("bom.csv", accepted=1),
    Case("latin1.csv", error_rule="file_readable", error_text="'utf-8' codec can't decode byte 0xe9"),
    Case("nul_bytes.csv", quarantined={"text_control_chars": 1}, accepted=1),
    Case("huge_text.csv", quarantined={"text_length": 1}, accepted=1),
    Case("missing_column.csv", error_rule="required_columns", error_text="missing required column(s) channel",
         quarantined={"required_columns": 2}),
    Case("extra_columns.csv", accepted=2, extra_columns=("customer_tier", "agent")),
    Case("wrong_types.jsonl", quarantined={"value_types": 4, "created_at_parseable": 1, "label_in_taxonomy": 1},
         accepted=1),
    Case("empty.csv", error_rule="file_readable", error_text="empty file (no header, no rows)"),
    Case("header_only.csv"),
    Case("invalid_line.jsonl", error_rule="file_readable", error_text="line 2 is not valid JSON"),
    Case("other_schema.parquet", error_rule="required_columns", error_text="missing required column(s) id, text, label",
         quarantined={"required_columns": 2}),
]  # fmt: skip


@pytest.fixture
def project(tmp_path: Path) -> ProjectPaths:
    paths = ProjectPaths(tmp_path / "project")
    paths.root.mkdir()
    (paths.root / "taxonomy.json").write_text(json.dumps(TAXONOMY), encoding="utf-8")
    return paths


def _deliver(paths: ProjectPaths, name: str, content: bytes) -> dict:
    landing = paths.root / "landing"
    landing.mkdir(exist_ok=True)
    (landing / name).write_bytes(content)
    summary = ingest_folder(landing, ["*.csv", "*.jsonl", "*.parquet"], paths.raw, paths.raw_manifest)
    return summary


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_gets_a_clear_outcome_and_loses_no_row(project: ProjectPaths, case: Case) -> None:
    content = generated(case.name)
    _deliver(project, case.name, content)
    # The quarantine share threshold is tested elsewhere: here every row-level outcome must surface as quarantine.
    settings = params_settings(
        validate={"taxonomy": "taxonomy.json", "max_quarantine_share": 1.0, "min_rows_per_label": 0}
    )

    if case.error_rule:
        with pytest.raises(DataQualityError) as error:
            validate.run(settings, project)
        message = str(error.value)
        assert case.name in message and f"broke rule '{case.error_rule}'" in message and case.error_text in message
        assert "re-deliver" in message  # says what to do
    else:
        validate.run(settings, project)

    (entry,) = read_manifest(project.raw_manifest)
    raw = project.raw / entry["raw_file"]
    assert hashlib.sha256(raw.read_bytes()).digest() == hashlib.sha256(content).digest(), "raw file changed"
    report = json.loads((project.stage_reports("validate") / "validate.json").read_text(encoding="utf-8"))
    (batch,) = report["batches"]
    validated = pd.read_parquet(project.validated / "feedback.parquet")
    quarantine = pd.read_parquet(project.quarantine / "quarantine.parquet")
    assert len(validated) + len(quarantine) == report["rows_read"] == batch["rows_read"]
    assert len(validated) == case.accepted
    assert {rule: n for rule, n in report["quarantined_by_rule"].items() if n} == case.quarantined
    assert tuple(batch["extra_columns"]) == case.extra_columns
    if case.error_rule:
        assert batch["batch_rule_failed"] == case.error_rule


def test_a_redelivered_identical_batch_is_not_ingested_twice(project: ProjectPaths) -> None:
    content = (HEADER + GOOD).encode()
    first = _deliver(project, "monday.csv", content)
    second = _deliver(project, "monday-again.csv", content)
    assert second["new_batches"] == []
    assert {"key": "monday-again.csv", "duplicate_of": first["new_batches"][0]} in second["skipped"]
    summary = validate.run(params_settings(validate={"taxonomy": "taxonomy.json", "min_rows_per_label": 0}), project)
    assert summary["rows_read"] == summary["rows_accepted"] == 1
