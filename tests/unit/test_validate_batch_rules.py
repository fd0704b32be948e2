"""validate: batch-level rules (volume band, label minimum), extra and provenance columns, language, Data Docs."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import DataQualityError
from feedbackflow.stages import validate
from feedbackflow.stages.ingest import PROVENANCE_COLUMNS
from tests.servers import s3_client, s3_endpoint  # noqa: F401 (fixture)
from tests.unit.test_validate import HEADER, TAXONOMY, deliver, outputs, row, settings

CANARY = "Zelda Quarantinova zq-4821@example.org"


@pytest.fixture
def paths(tmp_path) -> ProjectPaths:
    project = ProjectPaths(tmp_path / "project")
    project.root.mkdir()
    (project.root / "taxonomy.json").write_text(json.dumps(TAXONOMY), encoding="utf-8")
    return project


def _delivery(paths: ProjectPaths, n: int, start: int) -> None:
    deliver(paths, {f"d{start}.csv": [HEADER, *(row(f"id{start + i}") for i in range(n))]})


def test_volume_band_fails_the_newest_delivery_and_keeps_its_rows(paths: ProjectPaths) -> None:
    for k in range(3):
        _delivery(paths, 10, 100 * k)
    validate.run(settings(), paths)  # three deliveries of 10 rows: the band is [2, 50]
    _delivery(paths, 1, 900)

    with pytest.raises(DataQualityError) as error:
        validate.run(settings(), paths)

    message = str(error.value)
    assert "d900.csv" in message and "'batch_volume'" in message and "volume_band" in message
    assert "1 rows in delivery 4, outside [2, 50]" in message and "validate.volume_accepted" in message
    validated, quarantine, report = outputs(paths)
    assert len(validated) == 31 and quarantine.empty  # valid rows are not quarantined
    assert report["volume"]["checked"] and report["volume"]["history"] == [10, 10, 10]
    assert len(list(paths.raw.glob("*.csv"))) == 4  # raw kept


def test_anomalous_delivery_keeps_failing_after_newer_ones_until_accepted(paths: ProjectPaths) -> None:
    for k in range(3):
        _delivery(paths, 10, 100 * k)
    _delivery(paths, 1, 900)  # anomalous: outside [2, 50]
    _delivery(paths, 10, 1000)  # a normal delivery arrives the next night

    with pytest.raises(DataQualityError) as error:
        validate.run(settings(), paths)
    message = str(error.value)
    assert "d900.csv" in message and "delivery 4" in message and "d1000.csv" not in message
    report = outputs(paths)[2]
    assert [anomaly["sequence"] for anomaly in report["volume"]["anomalies"]] == [4]
    assert report["volume"]["history"] == [10, 10, 10]  # the anomaly is not part of the newest delivery's median

    summary = validate.run(settings(volume_accepted=[4]), paths)  # reviewed: the operator accepts delivery 4
    assert summary["rows_accepted"] == 41
    assert outputs(paths)[2]["volume"]["anomalies"] == []


def test_volume_band_is_skipped_until_enough_history(paths: ProjectPaths) -> None:
    _delivery(paths, 10, 0)
    _delivery(paths, 500, 100)
    summary = validate.run(settings(), paths)
    assert summary["rows_accepted"] == 510
    assert outputs(paths)[2]["volume"]["checked"] is False


def test_label_minimum_names_the_labels_short_of_it(paths: ProjectPaths) -> None:
    rows = [row(f"a{i}", label="card_arrival") for i in range(3)] + [row("b0", label="lost_or_stolen_card")]
    deliver(paths, {"labels.csv": [HEADER, *rows, row("u", label="")]})

    with pytest.raises(DataQualityError) as error:
        validate.run(settings(min_rows_per_label=2), paths)

    message = str(error.value)
    assert "'label_minimum'" in message
    assert "refund_not_showing_up (0), lost_or_stolen_card (1)" in message and "card_arrival" not in message
    report = outputs(paths)[2]
    assert report["label_counts"]["counts"] == {"card_arrival": 3, "lost_or_stolen_card": 1, "refund_not_showing_up": 0}
    validate.run(settings(min_rows_per_label=0), paths)  # 0 switches it off


def test_extra_columns_are_reported_and_provenance_columns_are_not(paths: ProjectPaths) -> None:
    frame = pd.DataFrame([dict(zip(HEADER, row("p1"), strict=True))])
    for column in PROVENANCE_COLUMNS:
        frame[column] = "x"
    frame["customer_tier"] = "gold"
    parquet = paths.root / "with_extras.parquet"
    frame.to_parquet(parquet)
    deliver(paths, {"with_extras.parquet": parquet.read_bytes(), "plain.csv": [HEADER, row("p2")]})

    validate.run(settings(), paths)

    batches = {b["source_file"]: b for b in outputs(paths)[2]["batches"]}
    assert batches["with_extras.parquet"]["extra_columns"] == ["customer_tier"]
    assert batches["plain.csv"]["extra_columns"] == []
    assert batches["with_extras.parquet"]["rows_accepted"] == 1


def test_language_is_checked_when_present(paths: ProjectPaths) -> None:
    lines = [
        dict(zip(HEADER, row("l1"), strict=True)) | {"language": "en"},
        dict(zip(HEADER, row("l2"), strict=True)) | {"language": "tlh"},
        dict(zip(HEADER, row("l3"), strict=True)) | {"language": None},
    ]
    deliver(paths, {"lang.jsonl": "".join(json.dumps(line) + "\n" for line in lines)})
    validate.run(settings(max_quarantine_share=1.0), paths)
    validated, quarantine, report = outputs(paths)
    assert validated["id"].tolist() == ["l1", "l3"]
    assert quarantine[["id", "language", "rules"]].values.tolist() == [["l2", "tlh", "language_allowed"]]
    assert report["quarantined_by_rule"]["language_allowed"] == 1


def test_data_docs_are_built_and_carry_no_row_values(paths: ProjectPaths) -> None:
    # The canary breaks a rule in every text-bearing column, so any rendered sample of unexpected values shows it.
    bad = [
        row("c1", label=CANARY),
        row("c2", channel=CANARY),
        row("c3", created_at=CANARY),
        row("c4", text=CANARY * 20),
        row(CANARY),
        row(CANARY),
    ]
    deliver(paths, {"canary.csv": [HEADER, row("ok"), *bad]})

    validate.run(settings(max_text_chars=100, max_quarantine_share=1.0), paths)

    docs = paths.stage_reports("validate") / "data_docs"
    index = docs / "index.html"
    assert index.is_file()
    pages = [p for p in docs.rglob("*.html")]
    assert len(pages) >= 3  # index, the suite page and this run's validation result page
    assert any("validations" in p.parts for p in pages)
    quarantine = outputs(paths)[1]
    assert (quarantine == CANARY).any().any(), "the canary must be in the (restricted) quarantine"
    for path in docs.rglob("*"):
        if path.is_file():
            content = path.read_bytes().decode("utf-8", errors="ignore")
            assert "Quarantinova" not in content and "zq-4821" not in content, path
    report_text = (paths.stage_reports("validate") / "validate.json").read_text()
    assert "Quarantinova" not in report_text


def test_data_docs_are_uploaded_to_s3_when_configured(paths: ProjectPaths, s3_endpoint, monkeypatch) -> None:  # noqa: F811
    client = s3_client(s3_endpoint)
    client.create_bucket(Bucket="governance")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    deliver(paths, {"a.csv": [HEADER, row("a")]})

    validate.run(settings(data_docs_s3="s3://governance/data-docs/feedbackflow"), paths)

    keys = {item["Key"] for item in client.list_objects_v2(Bucket="governance")["Contents"]}
    assert "data-docs/feedbackflow/index.html" in keys
    head = client.head_object(Bucket="governance", Key="data-docs/feedbackflow/index.html")
    assert head["ContentType"] == "text/html"


def test_gx_on_flagged_rows_plus_a_sample_agrees_and_masks_still_catch_every_row() -> None:
    from feedbackflow.quality import suite

    n = 5000
    frame = pd.DataFrame(
        {
            "id": [f"i{i % 4900}" for i in range(n)],  # 100 repeated ids
            "text": ["fine text" if i % 37 else "" for i in range(n)],
            "label": ["card_arrival" if i % 41 else "bogus" for i in range(n)],
            "channel": ["app"] * n,
            "created_at": ["2024-05-01T10:00:00Z"] * n,
        },
        dtype=object,
    )
    spec = suite.RuleSpec.from_settings(settings().validate_, TAXONOMY)
    full = suite.QualityValidator(spec).validate_rows(frame)
    sampled = suite.QualityValidator(spec, gx_passing_rows=500).validate_rows(frame)

    assert all(outcome.agrees for outcome in sampled.outcomes)
    assert sampled.gx_rows < 1000 < full.gx_rows == n
    assert all(sampled.masks[rule].equals(full.masks[rule]) for rule in suite.ROW_RULES)
    by_rule = {o.rule: o.unexpected_count for o in sampled.outcomes}
    assert by_rule == {o.rule: o.unexpected_count for o in full.outcomes}  # every flagged row was re-checked


PLANTED_AWS_SECRET = "AWS-PLANTED-0f3b7d91c2e4"


def test_a_data_docs_upload_to_an_unreachable_endpoint_is_retried_then_fails_clearly(
    paths: ProjectPaths, monkeypatch, caplog
) -> None:
    from feedbackflow.errors import SourceUnavailableError
    from tests.helpers import params_settings
    from tests.servers import free_port

    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL", down)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", PLANTED_AWS_SECRET)
    deliver(paths, {"a.csv": [HEADER, row("a")]})
    fast = {"attempts": 2, "initial_delay_seconds": 0.1, "max_delay_seconds": 0.1, "timeout_seconds": 1}
    configured = params_settings(
        validate={"taxonomy": "taxonomy.json", "data_docs_s3": "s3://governance/docs", "min_rows_per_label": 0},
        ingest={"retry": fast},
    )

    with pytest.raises(SourceUnavailableError) as failed:  # before: botocore's EndpointConnectionError, a traceback
        validate.run(configured, paths)

    message = str(failed.value)
    assert message.startswith("validate: uploading Data Docs to s3://governance/docs/")
    assert f"at {down} failed 2 time(s)" in message
    assert "EndpointConnectionError" in message
    assert PLANTED_AWS_SECRET not in message + caplog.text


def test_a_data_docs_upload_to_a_missing_bucket_fails_at_once(paths: ProjectPaths, s3_endpoint, monkeypatch):  # noqa: F811
    from feedbackflow.errors import ConfigError

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    deliver(paths, {"a.csv": [HEADER, row("a")]})

    with pytest.raises(ConfigError, match=r"cannot upload Data Docs to s3://no-such-bucket/docs .*code NoSuchBucket"):
        validate.run(settings(data_docs_s3="s3://no-such-bucket/docs"), paths)
