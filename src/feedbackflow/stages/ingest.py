"""ingest: copy new feedback from the configured source into the immutable raw store.

Three sources, chosen by ``ingest.source`` in ``params.yaml`` (credentials never live there):

* ``folder``: files in ``ingest.landing_dir`` (CSV, JSON Lines, Parquet), copied byte for byte;
* ``s3``: objects under ``ingest.s3.bucket``/``prefix`` through boto3 (AWS, MinIO or any S3-compatible endpoint),
  copied byte for byte; credentials from the standard ``AWS_*`` environment (an Airflow AWS connection is turned
  into those variables by :mod:`feedbackflow.orchestration`);
* ``postgres``: rows of ``ingest.postgres.table`` (or ``query``) newer than a watermark (``updated_at``, then
  ``id``), written as Parquet batches of ``batch_rows`` rows with provenance columns; the DSN comes from
  ``FEEDBACKFLOW_POSTGRES_DSN`` (or libpq's ``PG*`` variables).

A manifest (``data/raw/_manifest.jsonl``) records every batch with its content hash, size, source key and
provenance (``source``, ``key``, ``ingested_at``, ``run_id``), plus the S3 ETag or the PostgreSQL watermark range.
Re-running over the same interval ingests nothing twice: a folder file or S3 object whose content hash was ingested
before is recognised under any name (an S3 object whose key, ETag and size are in the manifest is not even
downloaded), and PostgreSQL reads only rows after the last recorded watermark. Each batch is written aside, renamed
into place and only then recorded (the manifest itself is replaced atomically), so a crash never leaves a partial
batch visible; a file left in ``data/raw`` by a crash between the rename and the manifest write is not part of any
batch and is removed by the next run.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import ConfigError
from feedbackflow.io import atomic_path, file_digest, run_id, write_json
from feedbackflow.settings import (
    SOURCE_OVERRIDE_ENV,
    PostgresSourceSettings,
    S3SourceSettings,
    Settings,
    with_source_override,
)

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)

#: Provenance columns written into every PostgreSQL batch; validate knows them and never reports them as unknown.
PROVENANCE_COLUMNS = ("_ingest_source", "_ingest_key", "_ingest_at", "_ingest_run_id")
#: Environment variable holding the PostgreSQL DSN (libpq's ``PG*`` variables are used when it is unset).
POSTGRES_DSN_ENV = "FEEDBACKFLOW_POSTGRES_DSN"


def read_manifest(manifest: Path) -> list[dict]:
    """Return the manifest entries, oldest first (empty when nothing was ingested yet)."""
    if not manifest.exists():
        return []
    return [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write_manifest(manifest: Path, entries: list[dict]) -> None:
    with atomic_path(manifest) as partial:
        partial.write_text("".join(json.dumps(entry, sort_keys=True) + "\n" for entry in entries), encoding="utf-8")


@dataclass
class _Batches:
    """Admits new raw batches of one ingest run: hash check, write aside, rename, record."""

    raw_dir: Path
    manifest: Path
    source: str
    entries: list[dict] = field(init=False)
    sequence: int = field(init=False)
    now: datetime = field(init=False)
    new: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    _by_hash: dict[str, dict] = field(init=False)

    def __post_init__(self) -> None:
        self.entries = read_manifest(self.manifest)
        self._by_hash = {}
        for entry in self.entries:
            self._by_hash.setdefault(entry["sha256"], entry)
        self.sequence = max((entry["sequence"] for entry in self.entries), default=0) + 1
        self.now = datetime.now(UTC)
        self.raw_dir.mkdir(parents=True, exist_ok=True)
        self._remove_orphans()

    def _remove_orphans(self) -> None:
        """Drop raw files no manifest entry names: left by a crash after the rename, never part of a batch."""
        listed = {entry["raw_file"] for entry in self.entries} | {self.manifest.name}
        for path in self.raw_dir.iterdir():
            if path.is_file() and path.name not in listed:
                logger.warning("ingest: removing %s, left by an interrupted run (not in the manifest)", path.name)
                path.chmod(0o644)
                path.unlink()

    def known_hash(self, digest: str) -> dict | None:
        """The first manifest entry with this content hash, if any."""
        return self._by_hash.get(digest)

    def skip_if_known(self, digest: str, key: str) -> bool:
        """Record ``key`` as a duplicate and return True when its content was ingested before."""
        duplicate = self.known_hash(digest)
        if duplicate is not None:
            self.skipped.append({"key": key, "duplicate_of": duplicate["batch_id"]})
        return duplicate is not None

    @contextmanager
    def partial(self) -> Iterator[Path]:
        """A temporary file in the raw folder (same file system, so the rename is atomic); removed unless admitted."""
        fd, name = tempfile.mkstemp(prefix=".ingest.", suffix=".partial", dir=self.raw_dir)
        os.close(fd)
        path = Path(name)
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    def admit(self, partial: Path, key: str, suffix: str, **extra: Any) -> dict | None:
        """Rename ``partial`` into place as a new batch and record it, unless its content was ingested before.

        Returns:
            The new manifest entry, or None when the content is a duplicate (recorded in ``skipped``).
        """
        digest = file_digest(partial)
        if self.skip_if_known(digest, key):
            return None
        batch_id = f"{self.now:%Y%m%dT%H%M%S}-{digest[:12]}"
        raw_file = self.raw_dir / f"{batch_id}{suffix}"
        size = partial.stat().st_size
        partial.chmod(0o444)
        partial.replace(raw_file)
        entry = {
            "batch_id": batch_id,
            "sequence": self.sequence,
            "source": self.source,
            "key": key,
            "size": size,
            "sha256": digest,
            "raw_file": raw_file.name,
            "ingested_at": self.now.isoformat(),
            "run_id": run_id(),
            **extra,
        }
        self.entries.append(entry)
        self._by_hash[digest] = entry
        _write_manifest(self.manifest, self.entries)
        self.new.append(entry)
        return entry

    def summary(self) -> dict:
        summary = {
            "source": self.source,
            "new_batches": [entry["batch_id"] for entry in self.new],
            "new_files": [entry["key"] for entry in self.new],
            "skipped": self.skipped,
        }
        if self.source == "postgres":
            summary["rows_ingested"] = sum(entry["rows"] for entry in self.new)
        return summary


# ---------------------------------------------------------------------------------------------------------------
# Folder source.


def discover(landing_dir: Path, patterns: list[str]) -> list[Path]:
    """List candidate files in the landing folder, sorted by name, skipping hidden and partial files."""
    if not landing_dir.is_dir():
        raise FileNotFoundError(f"landing folder {landing_dir} does not exist; create it or set ingest.landing_dir")
    found = {path for pattern in patterns for path in landing_dir.glob(pattern) if path.is_file()}
    return sorted(path for path in found if not path.name.startswith("."))


def ingest_folder(landing_dir: Path, patterns: list[str], raw_dir: Path, manifest: Path) -> dict:
    """Copy every not-yet-ingested file from ``landing_dir`` into ``raw_dir`` and record it in ``manifest``."""
    batches = _Batches(raw_dir, manifest, "folder")
    for path in discover(landing_dir, patterns):
        if batches.skip_if_known(file_digest(path), path.name):
            continue  # hashed in place: a file ingested before is not copied again
        with batches.partial() as partial:
            shutil.copyfile(path, partial)
            batches.admit(partial, path.name, "".join(path.suffixes))
    return batches.summary()


# ---------------------------------------------------------------------------------------------------------------
# S3 source.


def s3_client(settings: S3SourceSettings) -> Any:
    """A boto3 S3 client; credentials, region and (when not in params) the endpoint come from the environment."""
    import boto3

    return boto3.client("s3", endpoint_url=settings.endpoint_url or None)


def ingest_s3(
    settings: S3SourceSettings, patterns: list[str], raw_dir: Path, manifest: Path, client: Any = None
) -> dict:
    """Download every not-yet-ingested object under the configured prefix into ``raw_dir``.

    An object whose key, ETag and size are in the manifest is skipped without a download; any other matching
    object is downloaded aside and hashed, so a re-delivered identical object under a new key is recognised too.

    Raises:
        ConfigError: the bucket cannot be listed (missing bucket, wrong endpoint or credentials).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    client = client or s3_client(settings)
    batches = _Batches(raw_dir, manifest, "s3")
    seen = {(entry["key"], entry.get("etag"), entry["size"]) for entry in batches.entries if entry["source"] == "s3"}
    where = f"s3://{settings.bucket}/{settings.prefix}"
    try:
        objects = [
            item
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket, Prefix=settings.prefix)
            for item in page.get("Contents", [])
        ]
    except (BotoCoreError, ClientError) as error:
        raise ConfigError(
            f"ingest: cannot list {where}: {error}. Check ingest.s3 in params.yaml and the AWS credentials "
            "(AWS_* environment variables or the Airflow connection named by FEEDBACKFLOW_AWS_CONN_ID)"
        ) from None
    for item in sorted(objects, key=lambda obj: obj["Key"]):
        key, etag, size = item["Key"], item["ETag"].strip('"'), item["Size"]
        name = PurePosixPath(key).name
        if key.endswith("/") or name.startswith(".") or not any(fnmatch.fnmatch(name, p) for p in patterns):
            continue
        if (key, etag, size) in seen:
            continue  # this very object was ingested by an earlier run
        with batches.partial() as partial:
            client.download_file(settings.bucket, key, str(partial))
            batches.admit(partial, key, "".join(PurePosixPath(name).suffixes), etag=etag, bucket=settings.bucket)
    return batches.summary()


# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL source.


def _json_value(value: Any) -> Any:
    """A watermark value as JSON; strings go back to PostgreSQL untyped, so the server casts them to the column."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)  # Decimal, UUID, ...: PostgreSQL casts the untyped text back to the column's type


def _cell_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def _arrow_table(columns: list[str], rows: list[tuple], provenance: dict[str, str]) -> pa.Table:
    import pyarrow as pa

    arrays = {}
    for name, values in zip(columns, zip(*rows, strict=True), strict=True):
        try:
            array = pa.array(values, from_pandas=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            array = None  # e.g. inet or jsonb with mixed shapes
        if array is None or isinstance(array.type, pa.BaseExtensionType):  # Arrow's uuid: readers see objects
            # keep the value as text (JSON for containers)
            array = pa.array([_cell_text(value) for value in values], pa.string())
        arrays[name] = array
    for name, value in provenance.items():
        arrays[name] = pa.array([value] * len(rows), pa.string())
    return pa.table(arrays)


def postgres_statement(settings: PostgresSourceSettings, after: list[Any] | None) -> Any:
    """The incremental SELECT, composed with psycopg's SQL objects; watermark values are bound parameters.

    Args:
        settings: ``ingest.postgres``.
        after: The last ingested watermark tuple, or None for a first run.

    Returns:
        A ``psycopg.sql.Composed`` statement with one placeholder per watermark column when ``after`` is given.
    """
    from psycopg import sql

    source: sql.Composable
    if settings.query:
        source = sql.SQL("({})").format(sql.SQL(settings.query))  # type: ignore[arg-type]  # operator-written SQL
    else:
        source = sql.Identifier(*str(settings.table).split("."))
    columns = sql.SQL(", ").join(sql.Identifier(column) for column in settings.watermark_columns)
    statement = sql.SQL("SELECT * FROM {source} AS source").format(source=source)
    if after is not None:
        placeholders = sql.SQL(", ").join(sql.Placeholder() for _ in settings.watermark_columns)
        statement += sql.SQL(" WHERE ({columns}) > ({placeholders})").format(columns=columns, placeholders=placeholders)
    return statement + sql.SQL(" ORDER BY {columns}").format(columns=columns)


def ingest_postgres(settings: PostgresSourceSettings, raw_dir: Path, manifest: Path, dsn: str | None = None) -> dict:
    """Read rows newer than the manifest's watermark and write them as Parquet batches of ``batch_rows`` rows.

    Raises:
        ConfigError: the database cannot be reached or the statement fails (e.g. a missing watermark column).
    """
    import psycopg
    import pyarrow.parquet as pq

    batches = _Batches(raw_dir, manifest, "postgres")
    previous = [entry for entry in batches.entries if entry["source"] == "postgres"]
    after = previous[-1]["watermark_to"] if previous else None
    key = settings.table or "query"
    dsn = dsn if dsn is not None else os.environ.get(POSTGRES_DSN_ENV, "")
    statement = postgres_statement(settings, after)
    try:
        with psycopg.connect(dsn, autocommit=False) as connection:
            connection.read_only = True
            # A named (server-side) cursor streams the rows; memory stays at one batch.
            with connection.cursor(name="feedbackflow_ingest") as cursor:
                cursor.execute(statement, after)
                columns = [column.name for column in cursor.description or []]
                positions = [columns.index(c) for c in settings.watermark_columns]
                provenance = dict(
                    zip(PROVENANCE_COLUMNS, ("postgres", key, batches.now.isoformat(), run_id()), strict=True)
                )
                while rows := cursor.fetchmany(settings.batch_rows):
                    first = [_json_value(rows[0][i]) for i in positions]
                    last = [_json_value(rows[-1][i]) for i in positions]
                    with batches.partial() as partial:
                        pq.write_table(_arrow_table(columns, rows, provenance), partial)
                        batches.admit(
                            partial,
                            key,
                            ".parquet",
                            rows=len(rows),
                            watermark_columns=list(settings.watermark_columns),
                            watermark_from=first,
                            watermark_to=last,
                        )
    except psycopg.Error as error:
        raise ConfigError(
            f"ingest: reading {key} from PostgreSQL failed: {type(error).__name__}: {str(error).strip()[:300]}. "
            "Check ingest.postgres (table or query, watermark_columns) in params.yaml and the connection "
            f"({POSTGRES_DSN_ENV} or the Airflow connection named by FEEDBACKFLOW_POSTGRES_CONN_ID)"
        ) from None
    return batches.summary()


# ---------------------------------------------------------------------------------------------------------------
# The stage.


def run(settings: Settings, paths: ProjectPaths) -> dict:
    """Ingest new batches from the configured source (or a run's override) and write ``reports/ingest/ingest.json``."""
    params = with_source_override(settings.ingest, os.environ.get(SOURCE_OVERRIDE_ENV))
    paths.raw.mkdir(parents=True, exist_ok=True)
    if params.source == "s3":
        summary = ingest_s3(params.s3, params.patterns, paths.raw, paths.raw_manifest)
    elif params.source == "postgres":
        summary = ingest_postgres(params.postgres, paths.raw, paths.raw_manifest)
    else:
        summary = ingest_folder(paths.root / params.landing_dir, params.patterns, paths.raw, paths.raw_manifest)
    if params.source != "folder":
        # dvc.yaml lists the landing folder as a dependency (the folder source's input); DVC needs it to exist.
        (paths.root / params.landing_dir).mkdir(parents=True, exist_ok=True)
    summary["batches_total"] = len(read_manifest(paths.raw_manifest))
    write_json(paths.stage_reports("ingest") / "ingest.json", summary)
    logger.info(
        "ingest (%s): %d new batch(es), %d duplicate(s) skipped",
        params.source,
        len(summary["new_batches"]),
        len(summary["skipped"]),
    )
    return summary
