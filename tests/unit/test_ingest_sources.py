"""ingest from S3 (moto's HTTP server) and PostgreSQL (the local server): incremental, idempotent, with provenance."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import ConfigError, SourceUnavailableError
from feedbackflow.orchestration.connections import postgres_environment
from feedbackflow.settings import SettingsError
from feedbackflow.sources import postgres as pg_source
from feedbackflow.sources import s3 as s3_source
from feedbackflow.stages import ingest
from feedbackflow.storage import manifest as manifest_store
from feedbackflow.storage.manifest import read_manifest
from tests.helpers import params_settings
from tests.servers import postgres_dsn, s3_client, s3_endpoint  # noqa: F401 (fixtures)

CSV = b"id,text,label,channel,created_at\n1,my card is lost,lost_or_stolen_card,app,2024-05-01T10:00:00Z\n"


@pytest.fixture
def paths(tmp_path) -> ProjectPaths:
    return ProjectPaths(tmp_path)


# --------------------------------------------------------------------------------------------------------------
# S3


@pytest.fixture
def bucket(s3_endpoint):  # noqa: F811
    client = s3_client(s3_endpoint)
    name = f"feedback-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=name)
    return client, name, s3_endpoint


def _s3_settings(name, endpoint, prefix="exports/"):
    s3 = {"bucket": name, "prefix": prefix, "endpoint_url": endpoint}
    return params_settings(ingest={"source": "s3", "s3": s3})


def test_s3_objects_are_ingested_once_with_etag_and_provenance(paths, bucket, monkeypatch):
    client, name, endpoint = bucket
    monkeypatch.setenv("FEEDBACKFLOW_RUN_ID", "scheduled__2026-02-01")
    client.put_object(Bucket=name, Key="exports/2026-02-01.csv", Body=CSV)
    client.put_object(Bucket=name, Key="exports/notes.txt", Body=b"not feedback")
    client.put_object(Bucket=name, Key="other/2026-02-01.csv", Body=CSV + b"2,x,y,app,z\n")
    settings = _s3_settings(name, endpoint)

    first = ingest.run(settings, paths)

    (entry,) = read_manifest(paths.raw_manifest)
    assert first["new_files"] == ["exports/2026-02-01.csv"]
    assert (paths.raw / entry["raw_file"]).read_bytes() == CSV  # byte for byte
    head = client.head_object(Bucket=name, Key="exports/2026-02-01.csv")
    assert entry["etag"] == head["ETag"].strip('"') and entry["size"] == len(CSV)
    assert entry["source"] == "s3" and entry["bucket"] == name and entry["run_id"] == "scheduled__2026-02-01"
    assert datetime.fromisoformat(entry["ingested_at"]) <= datetime.now(UTC)
    assert json.loads((paths.stage_reports("ingest") / "ingest.json").read_text())["source"] == "s3"

    raw_before = sorted(p.name for p in paths.raw.iterdir())
    again = ingest.run(settings, paths)
    assert again["new_batches"] == [] and again["skipped"] == []  # known key+ETag+size: not even downloaded
    assert sorted(p.name for p in paths.raw.iterdir()) == raw_before


def test_s3_redelivered_object_under_a_new_key_is_recognised_and_a_changed_one_is_new(paths, bucket):
    client, name, endpoint = bucket
    settings = _s3_settings(name, endpoint)
    client.put_object(Bucket=name, Key="exports/a.csv", Body=CSV)
    first = ingest.run(settings, paths)
    client.put_object(Bucket=name, Key="exports/a-resent.csv", Body=CSV)
    client.put_object(Bucket=name, Key="exports/a.csv", Body=CSV + b"2,card stuck,card_arrival,web,2024-05-02\n")

    second = ingest.run(settings, paths)

    assert second["skipped"] == [{"key": "exports/a-resent.csv", "duplicate_of": first["new_batches"][0]}]
    assert second["new_files"] == ["exports/a.csv"]
    assert [e["sequence"] for e in read_manifest(paths.raw_manifest)] == [1, 2]


def test_s3_unreachable_bucket_is_a_config_error_naming_it(paths, bucket):
    _, _, endpoint = bucket
    with pytest.raises(ConfigError, match=r"s3://no-such-bucket/exports/.*FEEDBACKFLOW_AWS_CONN_ID"):
        ingest.run(_s3_settings("no-such-bucket", endpoint), paths)


def test_a_crash_before_the_manifest_write_leaves_no_visible_batch(paths, bucket, monkeypatch):
    client, name, endpoint = bucket
    client.put_object(Bucket=name, Key="exports/a.csv", Body=CSV)
    settings = _s3_settings(name, endpoint)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(manifest_store, "write_manifest", crash)
    with pytest.raises(KeyboardInterrupt):
        ingest.run(settings, paths)
    assert read_manifest(paths.raw_manifest) == []
    monkeypatch.undo()
    summary = ingest.run(settings, paths)  # the rerun cleans the orphan and ingests the object once
    (entry,) = read_manifest(paths.raw_manifest)
    assert summary["new_batches"] == [entry["batch_id"]]
    assert sorted(p.name for p in paths.raw.iterdir()) == sorted([entry["raw_file"], "_manifest.jsonl"])


def test_s3_source_needs_a_bucket():
    with pytest.raises(SettingsError, match=r"ingest\.s3\.bucket"):
        params_settings(ingest={"source": "s3"})


# --------------------------------------------------------------------------------------------------------------
# PostgreSQL


@pytest.fixture
def feedback_table(postgres_dsn):  # noqa: F811
    import psycopg

    table = f"feedback_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(
            f"CREATE TABLE public.{table} (id bigint PRIMARY KEY, text text, label text, channel text, "
            "created_at timestamptz, updated_at timestamptz NOT NULL)"
        )
    return postgres_dsn, f"public.{table}"


def _insert(dsn, table, rows):
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as connection, connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} (id, text, label, channel, created_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s)",
            rows,
        )


def _rows(ids, updated_at):
    stamp = datetime(2026, 3, 1, tzinfo=UTC)
    return [(i, f"message {i}", "card_arrival", "app", stamp, updated_at) for i in ids]


FAST_RETRY = {"attempts": 3, "initial_delay_seconds": 0.05, "max_delay_seconds": 0.1, "timeout_seconds": 2}


def _pg_settings(table, batch_rows=1000, **postgres):
    return params_settings(
        ingest={
            "source": "postgres",
            "postgres": {"table": table, "batch_rows": batch_rows, **postgres},
            "retry": FAST_RETRY,
        }
    )


def test_postgres_is_incremental_on_the_watermark(paths, feedback_table, monkeypatch):
    dsn, table = feedback_table
    monkeypatch.setenv(ingest.POSTGRES_DSN_ENV, dsn)
    monkeypatch.setenv("FEEDBACKFLOW_RUN_ID", "scheduled__2026-03-02")
    noon = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    # ids 1..5 share one updated_at: the id tie-break must not lose or repeat any of them across batches
    _insert(dsn, table, _rows(range(1, 6), noon))

    first = ingest.run(_pg_settings(table, batch_rows=2), paths)

    entries = read_manifest(paths.raw_manifest)
    assert first["rows_ingested"] == 5 and len(entries) == 3 and {e["sequence"] for e in entries} == {1}
    assert entries[-1]["watermark_to"] == [noon.isoformat(), 5]
    frame = pd.concat(pd.read_parquet(paths.raw / e["raw_file"]) for e in entries)
    assert frame["id"].tolist() == [1, 2, 3, 4, 5]
    assert set(ingest.PROVENANCE_COLUMNS) <= set(frame.columns)
    assert set(frame["_ingest_run_id"]) == {"scheduled__2026-03-02"} and set(frame["_ingest_key"]) == {table}

    assert ingest.run(_pg_settings(table), paths)["new_batches"] == []  # same interval: nothing twice

    _insert(dsn, table, _rows([6], noon) + _rows([0], noon + timedelta(seconds=1)))
    third = ingest.run(_pg_settings(table), paths)
    (entry,) = read_manifest(paths.raw_manifest)[3:]
    assert third["rows_ingested"] == 2 and entry["sequence"] == 2
    assert pd.read_parquet(paths.raw / entry["raw_file"])["id"].tolist() == [6, 0]


def test_postgres_query_source_and_parameters_are_bound_not_formatted(paths, feedback_table, monkeypatch):
    dsn, table = feedback_table
    monkeypatch.setenv(ingest.POSTGRES_DSN_ENV, dsn)
    _insert(dsn, table, _rows([1, 2], datetime(2026, 3, 1, tzinfo=UTC)))
    settings = params_settings(
        ingest={"source": "postgres", "postgres": {"query": f"SELECT * FROM {table} WHERE channel = 'app'"}}
    )
    assert ingest.run(settings, paths)["rows_ingested"] == 2
    statement = pg_source.postgres_statement(settings.ingest.postgres, ["2026-03-01T00:00:00+00:00", 2])
    import psycopg

    with psycopg.connect(dsn) as connection:
        text = statement.as_string(connection)
    assert text.endswith('WHERE ("updated_at", "id") > (%s, %s) ORDER BY "updated_at", "id"')
    assert "2026-03-01" not in text


def test_postgres_missing_watermark_column_is_a_clear_error(paths, feedback_table, monkeypatch):
    dsn, table = feedback_table
    monkeypatch.setenv(ingest.POSTGRES_DSN_ENV, dsn)
    settings = params_settings(
        ingest={"source": "postgres", "postgres": {"table": table, "watermark_columns": ["modified", "id"]}}
    )
    with pytest.raises(ConfigError, match="watermark_columns"):
        ingest.run(settings, paths)
    assert read_manifest(paths.raw_manifest) == []


def test_postgres_dsn_from_an_airflow_connection_stays_out_of_the_message(paths, monkeypatch):
    class Connection:
        host, port, login, password, schema = "127.0.0.1", 1, "feedback", "s3cr3t-pw", "app"

    connection = Connection()
    connection.extra_dejson = {"sslmode": "disable"}
    env = postgres_environment(connection)
    assert "password=s3cr3t-pw" in env[ingest.POSTGRES_DSN_ENV] and "dbname=app" in env[ingest.POSTGRES_DSN_ENV]
    monkeypatch.setenv(ingest.POSTGRES_DSN_ENV, env[ingest.POSTGRES_DSN_ENV])
    # connection refused is a network fault: retried, then a failure naming the server, not the DSN
    with pytest.raises(SourceUnavailableError, match=r"postgresql://127\.0\.0\.1:1/app .*3 time") as error:
        ingest.run(_pg_settings("public.feedback"), paths)
    assert "s3cr3t-pw" not in str(error.value)


def test_postgres_crash_after_a_batch_resumes_from_the_recorded_watermark(paths, feedback_table, monkeypatch):
    dsn, table = feedback_table
    monkeypatch.setenv(ingest.POSTGRES_DSN_ENV, dsn)
    _insert(dsn, table, _rows(range(1, 6), datetime(2026, 3, 1, tzinfo=UTC)))
    write = manifest_store.write_manifest
    calls = []

    def crash_on_second(manifest, entries):
        calls.append(len(entries))
        if len(calls) == 2:
            raise KeyboardInterrupt("killed mid-ingest")
        write(manifest, entries)

    monkeypatch.setattr(manifest_store, "write_manifest", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        ingest.run(_pg_settings(table, batch_rows=2), paths)
    (first,) = read_manifest(paths.raw_manifest)  # the second batch never became visible
    assert first["watermark_to"][1] == 2
    monkeypatch.setattr(manifest_store, "write_manifest", write)

    ingest.run(_pg_settings(table, batch_rows=2), paths)

    entries = read_manifest(paths.raw_manifest)
    frame = pd.concat(pd.read_parquet(paths.raw / e["raw_file"]) for e in entries)
    assert frame["id"].tolist() == [1, 2, 3, 4, 5]  # nothing lost, nothing twice
    assert sorted(p.name for p in paths.raw.iterdir()) == sorted([*(e["raw_file"] for e in entries), "_manifest.jsonl"])


def test_postgres_types_arrow_cannot_hold_are_kept_as_text(paths, postgres_dsn, monkeypatch):  # noqa: F811
    import psycopg

    table = f"typed_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(
            f"CREATE TABLE {table} (id uuid, text text, meta jsonb, updated_at timestamptz NOT NULL DEFAULT now())"
        )
        connection.execute(
            f"INSERT INTO {table} (id, text, meta) VALUES "
            "('6f1c1c8e-2f4e-4b9a-9d7e-0c5b1b7f3a10', 'hello', '{\"a\": 1}'), "
            "('0b9f7c3e-8a47-4f0e-9a39-3c1f2d9e8b21', 'again', '[1, \"x\"]')"
        )
    monkeypatch.setenv(ingest.POSTGRES_DSN_ENV, postgres_dsn)
    ingest.run(_pg_settings(table), paths)
    (entry,) = read_manifest(paths.raw_manifest)
    frame = pd.read_parquet(paths.raw / entry["raw_file"])
    assert frame["id"].tolist() == ["0b9f7c3e-8a47-4f0e-9a39-3c1f2d9e8b21", "6f1c1c8e-2f4e-4b9a-9d7e-0c5b1b7f3a10"]
    assert frame["meta"].tolist() == ['[1, "x"]', '{"a": 1}']
    assert entry["watermark_to"][1] == "6f1c1c8e-2f4e-4b9a-9d7e-0c5b1b7f3a10"
    assert ingest.run(_pg_settings(table), paths)["new_batches"] == []  # the text watermark binds to a uuid


# --------------------------------------------------------------------------------------------------------------
# Issue 13: duplicates not fetched again, late commits, updates, connection faults.


def _count_gets(client):
    gets = []
    client.meta.events.register("before-parameter-build.s3.GetObject", lambda params, **kw: gets.append(params["Key"]))
    return gets


def test_s3_skipped_duplicate_is_not_downloaded_again_on_later_runs(paths, bucket):
    client, name, endpoint = bucket
    settings = _s3_settings(name, endpoint)
    client.put_object(Bucket=name, Key="exports/a.csv", Body=CSV)
    client.put_object(Bucket=name, Key="exports/a-resent.csv", Body=CSV)
    observed = s3_client(endpoint)
    gets = _count_gets(observed)

    first = s3_source.ingest_s3(
        settings.ingest.s3, ["*.csv"], paths.raw, paths.raw_manifest, settings.ingest.retry, client=observed
    )
    assert sorted(gets) == ["exports/a-resent.csv", "exports/a.csv"] and len(first["skipped"]) == 1
    (entry,) = read_manifest(paths.raw_manifest)
    assert entry["aliases"][0]["key"] == first["skipped"][0]["key"]

    gets.clear()
    again = s3_source.ingest_s3(
        settings.ingest.s3, ["*.csv"], paths.raw, paths.raw_manifest, settings.ingest.retry, client=observed
    )
    assert gets == [] and again["new_batches"] == [] and again["skipped"] == []  # ETag and size matched: no GET


def test_s3_errors_are_told_apart(bucket):
    from botocore.exceptions import ClientError, EndpointConnectionError

    assert s3_source.is_transient(EndpointConnectionError(endpoint_url="http://127.0.0.1:1"))
    unavailable = ClientError({"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "Get")
    assert s3_source.is_transient(unavailable)
    for code, status in (("NoSuchBucket", 404), ("AccessDenied", 403), ("InvalidAccessKeyId", 403)):
        assert not s3_source.is_transient(
            ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "List")
        )


def _late_table(dsn):
    import psycopg

    table = f"late_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(
            f"CREATE TABLE public.{table} (id bigint PRIMARY KEY, text text, label text, channel text, "
            "created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now())"
        )
    return f"public.{table}"


def _ids_ingested(paths):
    entries = read_manifest(paths.raw_manifest)
    return sorted(i for e in entries for i in pd.read_parquet(paths.raw / e["raw_file"])["id"].tolist())


@pytest.mark.parametrize("lookback", [3600, 0])
def test_postgres_late_commit_is_ingested_once_within_the_lookback(paths, postgres_dsn, monkeypatch, lookback):  # noqa: F811
    import psycopg

    table = _late_table(postgres_dsn)
    monkeypatch.setenv(ingest.POSTGRES_DSN_ENV, postgres_dsn)
    settings = _pg_settings(table, lookback_seconds=lookback)
    insert = f"INSERT INTO {table} (id, text, label, channel) VALUES (%s, %s, 'card_arrival', 'app')"
    # A real late commit: this transaction takes its updated_at (now() = its start) first, and commits last.
    with psycopg.connect(postgres_dsn) as slow:
        slow.execute(insert, (1, "written by a long transaction"))
        time.sleep(0.05)
        with psycopg.connect(postgres_dsn, autocommit=True) as quick:
            quick.execute(insert, (2, "committed at once"))
        assert ingest.run(settings, paths)["rows_ingested"] == 1  # sees id 2 only; the watermark passes id 1's time
        slow.commit()

    second = ingest.run(settings, paths)
    third = ingest.run(settings, paths)

    if lookback:
        assert _ids_ingested(paths) == [1, 2]  # the late row arrived, and nothing twice
        assert second["rows_ingested"] == 1 and second["rows_already_ingested"] == 1
        assert third["new_batches"] == []
    else:  # without a look-back the strict watermark loses the late commit for good (the old behaviour)
        assert _ids_ingested(paths) == [2]


def test_postgres_updates_are_ingested_and_the_latest_version_wins_in_validate(tmp_path, postgres_dsn, monkeypatch):  # noqa: F811
    import psycopg

    from feedbackflow.stages import validate

    table = _late_table(postgres_dsn)
    (tmp_path / "labels.json").write_text(json.dumps(["card_arrival", "lost_or_stolen_card"]), encoding="utf-8")
    paths = ProjectPaths(tmp_path)
    monkeypatch.setenv(ingest.POSTGRES_DSN_ENV, postgres_dsn)
    settings = params_settings(
        ingest={"source": "postgres", "postgres": {"table": table}, "retry": FAST_RETRY},
        validate={"taxonomy": "labels.json", "min_rows_per_label": 0, "max_quarantine_share": 0.2},
    )
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        for i in range(1, 11):
            connection.execute(
                f"INSERT INTO {table} (id, text, label, channel) VALUES (%s, %s, 'card_arrival', 'app')",
                (i, f"message {i}"),
            )
    ingest.run(settings, paths)
    validate.run(settings, paths)
    # A night of mostly updates: 6 of the 10 rows corrected (text and label), one of them twice.
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        for i in range(1, 7):
            connection.execute(
                f"UPDATE {table} SET text = %s, label = 'lost_or_stolen_card', updated_at = now() WHERE id = %s",
                (f"corrected {i}", i),
            )
    second = ingest.run(settings, paths)
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        connection.execute(f"UPDATE {table} SET text = 'corrected 1 again', updated_at = now() WHERE id = 1")
    third = ingest.run(settings, paths)
    assert second["rows_ingested"] == 6 and third["rows_ingested"] == 1

    summary = validate.run(settings, paths)  # no quarantine-share failure: updates are not bad rows

    accepted = pd.read_parquet(paths.validated / "feedback.parquet").set_index("id")
    assert sorted(accepted.index, key=int) == [str(i) for i in range(1, 11)]  # one row per id
    assert accepted.loc["1", "text"] == "corrected 1 again" and accepted.loc["6", "label"] == "lost_or_stolen_card"
    assert accepted.loc["7", "text"] == "message 7"
    replaced = pd.read_parquet(paths.quarantine / "quarantine.parquet")
    assert sorted(replaced["text"]) == sorted([*(f"message {i}" for i in range(1, 7)), "corrected 1"])
    assert set(replaced["rules"]) == {"id_unique"}  # kept in the restricted store, with the reason
    assert summary["rows_read"] == summary["rows_accepted"] + summary["rows_quarantined"] == 17


def test_postgres_connection_terminated_mid_ingest_loses_and_doubles_nothing(paths, postgres_dsn, monkeypatch):  # noqa: F811
    import psycopg

    from feedbackflow.storage.manifest import RawBatches

    table = _late_table(postgres_dsn)
    with psycopg.connect(postgres_dsn, autocommit=True) as connection, connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} (id, text, label, channel) VALUES (%s, %s, 'card_arrival', 'app')",
            [(i, f"message {i}") for i in range(1, 501)],
        )
    application = f"ff_ingest_{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv(ingest.POSTGRES_DSN_ENV, f"{postgres_dsn} application_name={application}")
    admit, terminated = RawBatches.admit, []

    def admit_then_kill(self, *args, **kwargs):
        entry = admit(self, *args, **kwargs)
        if len(self.new) == 2 and not terminated:  # mid-stream: kill our own test database's ingest backend
            with psycopg.connect(postgres_dsn, autocommit=True) as admin:
                terminated.extend(
                    admin.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                        (application,),
                    ).fetchall()
                )
        return entry

    monkeypatch.setattr(RawBatches, "admit", admit_then_kill)
    summary = ingest.run(_pg_settings(table, batch_rows=100), paths)

    assert terminated == [(True,)]
    assert _ids_ingested(paths) == list(range(1, 501))  # nothing lost, nothing doubled
    assert summary["rows_ingested"] == 500
    assert sorted(p.name for p in paths.raw.iterdir()) == sorted(
        [*(e["raw_file"] for e in read_manifest(paths.raw_manifest)), "_manifest.jsonl"]
    )


def test_postgres_malformed_dsn_never_reaches_the_message(paths, caplog, monkeypatch):
    monkeypatch.setenv(ingest.POSTGRES_DSN_ENV, "host=127.0.0.1 dbname=app user=feedback password=Zq9 PLANTEDpw")
    with pytest.raises(ConfigError) as error:
        ingest.run(_pg_settings("public.feedback"), paths)
    text = str(error.value) + caplog.text
    assert "PLANTEDpw" not in text and "Zq9" not in text
    assert "ProgrammingError" in text or "OperationalError" in text  # the class is kept: it says what broke
