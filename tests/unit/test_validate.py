"""validate stage: real Great Expectations runs over small raw histories built with the real ingest stage."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import DataQualityError
from feedbackflow.quality import suite
from feedbackflow.stages.ingest import ingest_folder, read_manifest
from feedbackflow.stages.validate import run
from feedbackflow.storage.manifest import write_manifest
from tests.helpers import params_settings

TAXONOMY = ["card_arrival", "lost_or_stolen_card", "refund_not_showing_up"]
HEADER = ["id", "text", "label", "channel", "created_at"]
GOOD_TS = "2024-05-01T10:00:00Z"


# --------------------------------------------------------------------------------------------------------------
# Helpers: a project with a taxonomy, and deliveries that go through the real ingest stage.


@pytest.fixture
def paths(tmp_path: Path) -> ProjectPaths:
    project = ProjectPaths(tmp_path / "project")
    (project.root / "taxonomy.json").parent.mkdir(parents=True)
    (project.root / "taxonomy.json").write_text(json.dumps(TAXONOMY), encoding="utf-8")
    return project


def settings(**validate):
    return params_settings(validate={"taxonomy": "taxonomy.json", "min_rows_per_label": 0, **validate})


def deliver(paths: ProjectPaths, files: dict[str, object], source: str | None = None) -> list[dict]:
    """Write files to a fresh landing folder and ingest them as one new sequence; return the new manifest entries.

    A list value is CSV rows (header included), a DataFrame or an Arrow table is written as Parquet (an Arrow table
    without pandas metadata, in row groups of 2), a str or bytes value is written as is. ``source`` marks the entries
    as rows of an updating source (as the PostgreSQL source ingests them: versions of records).
    """
    before = len(read_manifest(paths.raw_manifest))
    landing = paths.root / "landing" / f"delivery{before}"
    landing.mkdir(parents=True)
    for name, content in files.items():
        target = landing / name
        if isinstance(content, list):
            with target.open("w", newline="", encoding="utf-8") as handle:
                csv.writer(handle).writerows(content)
        elif isinstance(content, pd.DataFrame):
            content.to_parquet(target)
        elif isinstance(content, pa.Table):  # no pandas metadata: an integer column with a null reads as float
            pq.write_table(content, target, row_group_size=2)
        elif isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(str(content), encoding="utf-8")
    ingest_folder(landing, ["*.csv", "*.jsonl", "*.parquet"], paths.raw, paths.raw_manifest)
    entries = read_manifest(paths.raw_manifest)
    if source is not None:
        entries = [*entries[:before], *({**entry, "source": source} for entry in entries[before:])]
        write_manifest(paths.raw_manifest, entries)
    return entries[before:]


def row(
    id_: str,
    text: str = "my card has not arrived",
    label: str = "card_arrival",
    channel: str = "app",
    created_at: str = GOOD_TS,
) -> list[str]:
    return [id_, text, label, channel, created_at]


def outputs(paths: ProjectPaths) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    validated = pd.read_parquet(paths.validated / "feedback.parquet")
    quarantine = pd.read_parquet(paths.quarantine / "quarantine.parquet")
    report = json.loads((paths.stage_reports("validate") / "validate.json").read_text(encoding="utf-8"))
    return validated, quarantine, report


def rules_by_row(quarantine: pd.DataFrame, source_file: str) -> dict[int, str]:
    part = quarantine[quarantine["source_file"] == source_file]
    return dict(zip(part["row_number"].tolist(), part["rules"].tolist(), strict=True))


# --------------------------------------------------------------------------------------------------------------
# Row rules.


def test_each_rule_quarantines_exactly_the_rows_that_break_it(paths: ProjectPaths) -> None:
    rows = [
        HEADER,
        row("r1"),  # 1 ok
        row(""),  # 2 empty id
        row("   "),  # 3 whitespace-only id
        row("r4", text=""),  # 4 empty text
        row("r5", text="   \t"),  # 5 blank text: text_not_empty only, not text_length
        row("r6", text="x" * 41),  # 6 too long (max 40)
        row("r7", text="ab"),  # 7 too short (min 3)
        row("r8", label="not_a_label"),  # 8 label outside the taxonomy
        row("r9", label=""),  # 9 unlabelled: allowed
        row("r10", channel="fax"),  # 10 unknown channel
        row("r11", channel=""),  # 11 empty channel
        row("r12", created_at="yesterday"),  # 12 unparseable timestamp
        row("r13", created_at="2024-02-30T00:00:00"),  # 13 impossible date
        row("r14", created_at=""),  # 14 missing timestamp
        row("r15", channel="fax", created_at="soon", label="nope"),  # 15 three rules at once
        row("r16", created_at="2024-05-01 09:30:00+02:00"),  # 16 ok: offset, space separator
        row("r17", text="x" * 40),  # 17 ok: exactly max
        row("r1"),  # 18 repeats r1 from row 1
        row("r19", created_at="2099-01-01T00:00:00Z"),  # 19 in the future
    ]
    (entry,) = deliver(paths, {"export.csv": rows})

    result = run(settings(min_text_chars=3, max_text_chars=40, max_quarantine_share=1.0), paths)

    validated, quarantine, report = outputs(paths)
    assert rules_by_row(quarantine, "export.csv") == {
        2: "id_not_empty",
        3: "id_not_empty",
        4: "text_not_empty",
        5: "text_not_empty",
        6: "text_length",
        7: "text_length",
        8: "label_in_taxonomy",
        10: "channel_allowed",
        11: "channel_allowed",
        12: "created_at_parseable",
        13: "created_at_parseable",
        14: "created_at_parseable",
        15: "label_in_taxonomy;channel_allowed;created_at_parseable",
        18: "id_unique",
        19: "created_at_not_future",
    }
    assert validated["id"].tolist() == ["r1", "r9", "r16", "r17"]
    assert validated.loc[validated["id"] == "r9", "label"].isna().all()  # unlabelled traffic kept, label null
    assert validated["batch_id"].unique().tolist() == [entry["batch_id"]]
    assert validated["sequence"].tolist() == [1, 1, 1, 1]
    assert validated["created_at"].tolist()[2] == "2024-05-01 09:30:00+02:00"  # original string kept

    # Quarantine keeps the original values as strings, untouched.
    row5 = quarantine[quarantine["row_number"] == 5].iloc[0]
    assert row5["text"] == "   \t" and row5["id"] == "r5" and row5["batch_id"] == entry["batch_id"]

    assert result["rows_read"] == report["rows_read"] == 19
    assert result["rows_accepted"] + result["rows_quarantined"] == result["rows_read"]
    assert len(validated) + len(quarantine) == 19
    expected_counts = {
        "id_not_empty": 2,
        "id_unique": 1,
        "text_not_empty": 2,
        "text_length": 2,
        "label_in_taxonomy": 2,
        "channel_allowed": 3,
        "created_at_parseable": 4,
        "created_at_not_future": 1,
        "language_allowed": 0,
        "value_types": 0,
        "text_control_chars": 0,
        "text_mixed_script": 0,
        "required_columns": 0,
        "file_readable": 0,
        "superseded": 0,
        "erased_subject": 0,
    }
    assert report["quarantined_by_rule"] == expected_counts == result["quarantined_by_rule"]


def test_report_counts_agree_with_great_expectations(paths: ProjectPaths) -> None:
    deliver(
        paths,
        {"a.csv": [HEADER, row("a"), row(""), row("b", channel="fax"), row("a"), row("a"), row("c", label="zzz")]},
    )
    run(settings(max_quarantine_share=1.0), paths)
    _, _, report = outputs(paths)

    gx = {outcome["rule"]: outcome for outcome in report["expectations"]}
    assert set(gx) == set(suite.ROW_RULES)
    for rule, outcome in gx.items():
        assert outcome["agrees"], rule
        assert outcome["expectation_type"].startswith("expect_")
        if rule != suite.ID_UNIQUE:
            assert outcome["unexpected_count"] == report["quarantined_by_rule"][rule], rule
            assert outcome["success"] == (outcome["unexpected_count"] == 0)
    # GX counts every row of a repeated id (the kept first one too); only the two later ones are quarantined.
    assert gx[suite.ID_UNIQUE]["unexpected_count"] == 3
    assert report["quarantined_by_rule"][suite.ID_UNIQUE] == 2


def test_masks_catch_every_row_gx_flags_beyond_its_sample(paths: ProjectPaths) -> None:
    """Compare the masks row by row with GX's complete unexpected index lists on a frame with many failures."""
    rng = np.random.default_rng(7)
    n = 3000
    frame = pd.DataFrame(
        {
            "id": rng.choice([f"id{i}" for i in range(60)] + ["", " "], n).astype(object),
            "text": rng.choice(["fine text", "", "  ", "x" * 30, "ok", "nul\x00byte", "p\u0430y"], n).astype(object),
            "label": rng.choice([*TAXONOMY, "", "bogus"], n).astype(object),
            "channel": rng.choice(["app", "web", "fax", ""], n).astype(object),
            "created_at": rng.choice([GOOD_TS, "2024-01-01", "nope", "", "2024-13-01", "2099-01-01"], n).astype(object),
            "language": rng.choice(["en", "", None, "xx", "fr"], n).astype(object),
        }
    )
    frame.loc[::97, "channel"] = None  # true nulls, as JSON Lines or Parquet can hold
    frame[suite.TYPE_ERROR] = rng.random(n) < 0.05  # as _tag flags values of a wrong type
    params = settings(min_text_chars=2, max_text_chars=20, languages=["en", "fr"]).validate_
    spec = suite.RuleSpec.from_settings(params, TAXONOMY)
    validator = suite.QualityValidator(spec)

    rows = validator.validate_rows(frame)

    counts = {outcome.rule: outcome.unexpected_count for outcome in rows.outcomes}
    assert all(outcome.agrees for outcome in rows.outcomes)
    assert min(counts[rule] for rule in suite.ROW_RULES) > 20  # more than GX's default sample of 20
    complete = (
        validator._batch_definition.get_batch(
            batch_parameters={"dataframe": suite.gx_view(frame, rows.masks, rows.prepared)}
        )
        .validate(validator.row_suite, result_format={"result_format": "COMPLETE"})
        .results
    )
    candidates = ~suite.any_rule({rule: m for rule, m in rows.masks.items() if rule != suite.ID_UNIQUE})
    for result in complete:
        rule = result.expectation_config.meta["rule"]
        flagged = set(result.result["unexpected_index_list"])
        if rule == suite.ID_UNIQUE:
            repeated = candidates & frame["id"].where(candidates).duplicated(keep=False) & frame["id"].notna()
            assert flagged == set(frame.index[repeated])
            # Every flagged row but the first of each id is quarantined for id_unique.
            first = frame.index[repeated & ~frame["id"].where(repeated).duplicated(keep="first")]
            assert flagged - set(first) == set(frame.index[rows.masks[rule] & candidates])
        else:
            assert flagged == set(frame.index[rows.masks[rule]]), rule


# --------------------------------------------------------------------------------------------------------------
# Uniqueness across the validated history.


def test_duplicate_ids_across_batches_keep_the_first_occurrence(paths: ProjectPaths) -> None:
    (first,) = deliver(paths, {"monday.csv": [HEADER, row("a"), row("b"), row("x", text="")]})
    (second,) = deliver(
        paths,
        {"tuesday.csv": [HEADER, row("b"), row("c"), row("c"), row("x", text="a fixed re-delivery"), row("d")]},
    )

    run(settings(max_quarantine_share=0.5), paths)

    validated, quarantine, _ = outputs(paths)
    assert validated[["id", "batch_id", "sequence"]].values.tolist() == [
        ["a", first["batch_id"], 1],
        ["b", first["batch_id"], 1],
        ["c", second["batch_id"], 2],
        ["x", second["batch_id"], 2],  # its first occurrence broke a rule, so it never claimed the id
        ["d", second["batch_id"], 2],
    ]
    assert rules_by_row(quarantine, "tuesday.csv") == {1: "id_unique", 3: "id_unique"}
    assert rules_by_row(quarantine, "monday.csv") == {3: "text_not_empty"}
    assert validated["id"].is_unique


def test_outputs_are_a_pure_function_of_raw_data_and_raw_files_stay_untouched(paths: ProjectPaths) -> None:
    deliver(paths, {"a.csv": [HEADER, row("a"), row("b", channel="fax")], "b.csv": [HEADER, row("c")]})
    deliver(paths, {"c.csv": [HEADER, row("a"), row("d")]})
    raw_hashes = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths.raw.iterdir()}

    run(settings(max_quarantine_share=0.5), paths)
    first = [
        (paths.validated / "feedback.parquet").read_bytes(),
        (paths.quarantine / "quarantine.parquet").read_bytes(),
    ]
    run(settings(max_quarantine_share=0.5), paths)
    second = [
        (paths.validated / "feedback.parquet").read_bytes(),
        (paths.quarantine / "quarantine.parquet").read_bytes(),
    ]

    assert first == second
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths.raw.iterdir()} == raw_hashes
    validated, _, _ = outputs(paths)
    assert validated["id"].tolist() == ["a", "c", "d"]  # sequence, then manifest (file name) order, then row order
    assert list(validated.columns) == ["id", "text", "label", "channel", "created_at", "batch_id", "sequence"]


# --------------------------------------------------------------------------------------------------------------
# Stopping the pipeline.


def test_quarantine_share_above_threshold_raises_after_writing_outputs(paths: ProjectPaths) -> None:
    (entry,) = deliver(
        paths,
        {"bad_export.csv": [HEADER, row("a"), row("b", channel="fax"), row("c", channel="fax"), row("d", text="")]},
    )

    with pytest.raises(DataQualityError) as raised:
        run(settings(max_quarantine_share=0.2), paths)

    message = str(raised.value)
    assert "bad_export.csv" in message and entry["raw_file"] in message
    assert "3 of 4 rows" in message and "75.0%" in message
    assert "'channel_allowed'" in message  # the most frequent rule
    assert "max_quarantine_share" in message and "re-deliver" in message
    validated, quarantine, report = outputs(paths)  # written before raising
    assert sorted(quarantine["id"]) == ["b", "c", "d"]
    assert validated["id"].tolist() == ["a"]
    assert report["success"] is False and report["errors"] == [message]
    assert report["batches"][0]["over_threshold"] is True


def test_a_batch_over_the_threshold_keeps_failing_after_a_newer_good_batch(paths: ProjectPaths) -> None:
    (old,) = deliver(paths, {"old.csv": [HEADER, row("a", channel="fax"), row("b", channel="fax"), row("e")]})
    deliver(paths, {"new.csv": [HEADER, row("c"), row("d")]})  # an unrelated good delivery the next night

    with pytest.raises(DataQualityError) as raised:
        run(settings(max_quarantine_share=0.2), paths)

    message = str(raised.value)
    assert "old.csv" in message and "new.csv" not in message and "max_quarantine_share" in message
    assert "keeps failing" in message and old["batch_id"] in message and "validate.batches_accepted" in message
    _, _, report = outputs(paths)
    assert [batch["blocking"] for batch in report["batches"]] == [True, False]

    # Reviewed: the operator accepts the batch, and its one good row goes on with the rest.
    result = run(settings(max_quarantine_share=0.2, batches_accepted=[old["batch_id"]]), paths)
    assert result["rows_quarantined"] == 2 and result["rows_accepted"] == 3


def test_a_failed_batch_redelivered_fixed_under_its_name_is_superseded(paths: ProjectPaths) -> None:
    (old,) = deliver(paths, {"export.csv": [HEADER, row("a", channel="fax"), row("b", channel="fax"), row("e")]})
    (fixed,) = deliver(paths, {"export.csv": [HEADER, row("a"), row("b"), row("e")]})

    result = run(settings(max_quarantine_share=0.2), paths)

    # The re-delivery carries every row once; the superseded batch's rows are kept in quarantine, not trained on.
    validated, quarantine, report = outputs(paths)
    assert validated[["id", "batch_id"]].values.tolist() == [[i, fixed["batch_id"]] for i in ("a", "b", "e")]
    assert quarantine[["id", "rules"]].values.tolist() == [[i, "superseded"] for i in ("a", "b", "e")]
    assert result["rows_read"] == result["rows_accepted"] + result["rows_quarantined"] == 6
    assert report["batches"][0]["superseded_by"] == fixed["batch_id"] and report["success"] is True
    assert old["batch_id"] in {entry["batch_id"] for entry in read_manifest(paths.raw_manifest)}  # raw kept


def test_a_good_batch_is_never_superseded_by_a_later_file_of_the_same_name(paths: ProjectPaths) -> None:
    deliver(paths, {"latest.csv": [HEADER, row("a"), row("b")]})  # a source that reuses one name every night
    deliver(paths, {"latest.csv": [HEADER, row("c")]})

    result = run(settings(), paths)

    assert result["rows_accepted"] == 3 and result["quarantined_by_rule"]["superseded"] == 0


def test_batch_missing_a_required_column_raises_and_quarantines_its_rows(paths: ProjectPaths) -> None:
    deliver(paths, {"good.csv": [HEADER, row("a")]})
    (entry,) = deliver(paths, {"no_channel.csv": [["id", "text", "label", "created_at"], ["b", "hi", "", GOOD_TS]]})

    with pytest.raises(DataQualityError) as raised:
        run(settings(), paths)

    message = str(raised.value)
    assert "no_channel.csv" in message and entry["raw_file"] in message
    assert "'required_columns'" in message and "channel" in message and "re-deliver" in message
    validated, quarantine, report = outputs(paths)
    assert validated["id"].tolist() == ["a"]
    assert quarantine[["id", "channel", "rules"]].values.tolist() == [["b", None, "required_columns"]]
    assert report["rows_read"] == report["rows_accepted"] + report["rows_quarantined"] == 2


def test_required_columns_from_settings_are_checked_too(paths: ProjectPaths) -> None:
    deliver(paths, {"a.csv": [HEADER, row("a")]})
    with pytest.raises(DataQualityError, match="missing required column\\(s\\) customer_tier"):
        run(settings(required_columns=[*HEADER, "customer_tier"]), paths)


def test_an_older_broken_batch_keeps_failing_until_redelivered_or_accepted(paths: ProjectPaths) -> None:
    (broken,) = deliver(paths, {"broken.csv": [["id", "text"], ["a", "hi"]]})
    deliver(paths, {"other.csv": [HEADER, row("b")]})  # a newer, unrelated delivery does not hide it

    with pytest.raises(DataQualityError, match=r"broken\.csv.*'required_columns'.*keeps failing"):
        run(settings(), paths)

    result = run(settings(batches_accepted=[broken["batch_id"]]), paths)  # reviewed and accepted
    assert result["rows_accepted"] == 1 and result["quarantined_by_rule"]["required_columns"] == 1

    deliver(paths, {"broken.csv": [HEADER, row("a")]})  # or: re-delivered fixed under the same name
    result = run(settings(), paths)
    assert result["rows_accepted"] == 2 and result["quarantined_by_rule"]["required_columns"] == 1
    _, _, report = outputs(paths)
    assert report["batches"][0]["batch_rule_failed"] == "required_columns" and report["success"] is True
    assert report["batches"][0]["superseded_by"] == report["batches"][2]["batch_id"]


def test_an_older_unreadable_batch_keeps_failing_after_a_newer_good_one(paths: ProjectPaths) -> None:
    deliver(paths, {"feed.jsonl": '{"id": "a", "text": "hi"}\n{not json\n'})
    deliver(paths, {"good.csv": [HEADER, row("b")]})

    with pytest.raises(DataQualityError, match=r"feed\.jsonl.*'file_readable'.*keeps failing"):
        run(settings(), paths)


def test_unparseable_file_raises_naming_the_file_and_rule(paths: ProjectPaths) -> None:
    (entry,) = deliver(paths, {"feed.jsonl": '{"id": "a", "text": "hi"}\n{not json\n'})

    with pytest.raises(DataQualityError) as raised:
        run(settings(), paths)

    message = str(raised.value)
    assert "feed.jsonl" in message and entry["raw_file"] in message
    assert "'file_readable'" in message and "line 2" in message and "re-deliver" in message
    _, _, report = outputs(paths)
    assert report["rows_read"] == 0 and report["batches"][0]["batch_rule_failed"] == "file_readable"


def test_csv_with_extra_field_on_every_row_is_unreadable(paths: ProjectPaths) -> None:
    # pandas would silently use the first column as the index and shift every value by one column.
    deliver(paths, {"shifted.csv": "id,text,label,channel,created_at\na,hi,,app,2024-01-01,extra\n"})
    with pytest.raises(DataQualityError, match=r"shifted\.csv.*file_readable.*more fields than the header"):
        run(settings(), paths)


# --------------------------------------------------------------------------------------------------------------
# Formats, and what the report may contain.


def test_jsonl_and_parquet_batches_are_read_without_coercion(paths: ProjectPaths) -> None:
    jsonl = "\n".join(
        [
            json.dumps({"id": 1, "text": "json row", "label": None, "channel": "web", "created_at": GOOD_TS}),
            "",
            json.dumps({"id": 2, "text": "no timestamp", "label": "card_arrival", "channel": "web"}),
        ]
    )
    landing_parquet = paths.root / "tmp.parquet"
    pd.DataFrame(
        {
            "id": ["p1", "p2"],
            "text": ["parquet row", None],
            "label": ["refund_not_showing_up", "card_arrival"],
            "channel": ["email", "email"],
            "created_at": pd.to_datetime(["2024-03-01T08:00:00Z", "2024-03-02T08:00:00Z"], utc=True),
            "extra": [1, 2],
        }
    ).to_parquet(landing_parquet)
    deliver(paths, {"feed.jsonl": jsonl, "feed.parquet": landing_parquet.read_bytes()})

    result = run(settings(max_quarantine_share=1.0), paths)

    validated, quarantine, _ = outputs(paths)
    assert validated["id"].tolist() == ["1", "p1"]  # manifest order: feed.jsonl, feed.parquet
    assert validated["created_at"].tolist() == [GOOD_TS, "2024-03-01T08:00:00+00:00"]
    assert rules_by_row(quarantine, "feed.jsonl") == {3: "created_at_parseable"}  # JSON Lines: line number
    assert rules_by_row(quarantine, "feed.parquet") == {2: "text_not_empty"}
    assert result["rows_read"] == 4


def test_report_and_return_value_hold_no_text_values(paths: ProjectPaths, caplog: pytest.LogCaptureFixture) -> None:
    secret = "call me on 0612345678 Jane Doe"
    deliver(paths, {"a.csv": [HEADER, row("a", text=secret), row("b", text=secret, channel="fax")]})

    with caplog.at_level("DEBUG", logger="feedbackflow"):
        result = run(settings(max_quarantine_share=1.0), paths)

    report_text = (paths.stage_reports("validate") / "validate.json").read_text(encoding="utf-8")
    for fragment in ("0612345678", "Jane", "fax"):
        assert fragment not in report_text
        assert fragment not in json.dumps(result)
        assert fragment not in caplog.text
    assert "2 rows read" in caplog.text


def test_empty_label_column_values_become_null_but_whitespace_labels_are_blank_too(paths: ProjectPaths) -> None:
    deliver(paths, {"a.csv": [HEADER, row("a", label=""), row("b", label="  "), row("c")]})
    run(settings(), paths)
    validated, _, _ = outputs(paths)
    assert validated["label"].tolist() == [None, None, "card_arrival"]


def test_out_of_scope_rows_pass_but_do_not_count_as_an_intent(paths: ProjectPaths) -> None:
    rows = [HEADER, row("a1"), row("a2", label="oos", text="what is the weather tomorrow"), row("a3", label="ooops")]
    rows += [row(f"b{n}", label=label) for n, label in enumerate(TAXONOMY * 2)]
    deliver(paths, {"batch.csv": rows})
    run(settings(min_rows_per_label=2, max_quarantine_share=0.5), paths)
    validated, quarantine, report = outputs(paths)
    assert "oos" in set(validated["label"])  # oos.label is valid feedback
    assert rules_by_row(quarantine, "batch.csv") == {3: suite.LABEL_IN_TAXONOMY}  # any other label still fails
    assert "oos" not in report["label_counts"]["counts"]  # the label minimum is over the taxonomy only
