"""The PostgreSQL source: rows of ``ingest.postgres.table`` (or ``query``) read incrementally on a watermark.

Rows are read in watermark order (``watermark_columns``, by default ``updated_at`` then ``id``) through a server-side
cursor and written as Parquet batches of ``batch_rows`` rows with provenance columns. The DSN comes from
``FEEDBACKFLOW_POSTGRES_DSN`` (or libpq's ``PG*`` variables), never from params.

Late commits: a transaction that commits after a run can carry an ``updated_at`` older than the watermark that run
recorded. With ``lookback_seconds`` > 0 each run re-reads from ``lookback_seconds`` before the highest ingested
timestamp and skips the row versions it already has, identified by (``id_column``, first watermark column): so a late
commit is ingested once, and nothing twice.

Updates: an updated row has a new ``updated_at``, so it is a new version and is ingested as one; the raw store keeps
every version (restricted, immutable) and validate lets the latest version of an id win.

Network faults (server down, connection cut or terminated) are retried with bounded backoff (``ingest.retry``);
every retry resumes from what the manifest recorded, so nothing is lost or doubled. A bad DSN, a missing table or
column, or refused credentials fail at once as :class:`~feedbackflow.errors.ConfigError`. Messages carry the error
class and SQLSTATE and name the server as host:port/database, never the DSN or the driver's text.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feedbackflow.credentials import describe_error
from feedbackflow.errors import ConfigError, FeedbackflowError
from feedbackflow.io import run_id
from feedbackflow.settings import PostgresSourceSettings, RetrySettings
from feedbackflow.sources.retry import retrying
from feedbackflow.storage.manifest import PROVENANCE_COLUMNS, RawBatches

if TYPE_CHECKING:
    import pyarrow as pa

#: Environment variable holding the PostgreSQL DSN (libpq's ``PG*`` variables are used when it is unset).
POSTGRES_DSN_ENV = "FEEDBACKFLOW_POSTGRES_DSN"
#: SQLSTATE classes no retry can fix: invalid authorization (28), unknown database (3D).
_CONFIG_SQLSTATE_CLASSES = ("28", "3D")
_CONFIG_HINTS = ("authentication failed", "does not exist", "no password supplied", "password authentication")


def json_value(value: Any) -> Any:
    """A watermark or key value as JSON; timestamps with a zone in UTC, so equal instants compare equal.

    Strings go back to PostgreSQL untyped, so the server casts them to the column's type.
    """
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)  # Decimal, UUID, ...: PostgreSQL casts the untyped text back to the column's type


def _order_key(values: list[Any]) -> tuple:
    """Sort key of a stored watermark tuple (ISO timestamps compared as instants)."""
    key = []
    for value in values:
        parsed = _timestamp(value)
        key.append((0, parsed.timestamp()) if parsed is not None and parsed.tzinfo else (1, value))
    return tuple(key)


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


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


def postgres_statement(settings: PostgresSourceSettings, after: list[Any] | None, since: Any = None) -> Any:
    """The incremental SELECT, composed with psycopg's SQL objects; watermark values are bound parameters.

    Args:
        settings: ``ingest.postgres``.
        after: The last ingested watermark tuple (rows strictly after it), or None.
        since: With a look-back: the lowest first-watermark value to re-read (``>=``); overrides ``after``.

    Returns:
        A ``psycopg.sql.Composed`` statement with one placeholder per bound value.
    """
    from psycopg import sql

    source: sql.Composable
    if settings.query:
        source = sql.SQL("({})").format(sql.SQL(settings.query))  # type: ignore[arg-type]  # operator-written SQL
    else:
        source = sql.Identifier(*str(settings.table).split("."))
    columns = sql.SQL(", ").join(sql.Identifier(column) for column in settings.watermark_columns)
    statement = sql.SQL("SELECT * FROM {source} AS source").format(source=source)
    if since is not None:
        first = sql.Identifier(settings.watermark_columns[0])
        statement += sql.SQL(" WHERE {first} >= {placeholder}").format(first=first, placeholder=sql.Placeholder())
    elif after is not None:
        placeholders = sql.SQL(", ").join(sql.Placeholder() for _ in settings.watermark_columns)
        statement += sql.SQL(" WHERE ({columns}) > ({placeholders})").format(columns=columns, placeholders=placeholders)
    return statement + sql.SQL(" ORDER BY {columns}").format(columns=columns)


def endpoint(dsn: str) -> str:
    """The server a DSN points at, as ``postgresql://host:port/database`` (no user, no password)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        info = conninfo_to_dict(dsn)
    except Exception:  # a malformed DSN: its text may hold the password, so none of it is shown
        return f"the server in {POSTGRES_DSN_ENV}"
    host = info.get("host") or info.get("hostaddr") or os.environ.get("PGHOST") or "local socket"
    port = info.get("port") or os.environ.get("PGPORT") or 5432
    database = info.get("dbname") or os.environ.get("PGDATABASE") or ""
    return f"postgresql://{host}:{port}/{database}"


def is_transient(error: BaseException) -> bool:
    """True for a lost or refused connection or a server shutdown; False for DSN, credential and SQL errors."""
    import psycopg

    if not isinstance(error, psycopg.OperationalError):
        return False
    if (error.sqlstate or "")[:2] in _CONFIG_SQLSTATE_CLASSES:
        return False
    text = str(error).lower()  # read to classify, never passed on
    return not any(hint in text for hint in _CONFIG_HINTS)


def _ingested_keys(
    batches: RawBatches, previous: Iterable[dict], settings: PostgresSourceSettings, since: datetime
) -> set[tuple[Any, Any]]:
    """(id, first watermark column) of every row version in raw batches that reach into the look-back window."""
    import pyarrow.parquet as pq

    columns = [settings.id_column, settings.watermark_columns[0]]
    keys: set[tuple[Any, Any]] = set()
    for entry in previous:
        high = _timestamp(entry["watermark_to"][0])
        if high is not None and _comparable(high, since) < since:
            continue
        path = batches.raw_dir / entry["raw_file"]
        if not path.is_file():
            raise ConfigError(f"{path}: listed in {batches.manifest.name} but missing; restore data/raw (dvc pull)")
        table = pq.read_table(path, columns=[c for c in columns if c in pq.read_schema(path).names])
        if table.num_columns < 2:
            raise ConfigError(
                f"ingest.postgres.id_column '{settings.id_column}' is not a column of {path.name}: the look-back "
                "needs it to recognise rows it already has; set id_column (or lookback_seconds: 0)"
            )
        ids, stamps = table.column(0).to_pylist(), table.column(1).to_pylist()
        keys.update((json_value(i), json_value(s)) for i, s in zip(ids, stamps, strict=True))
    return keys


def _comparable(value: datetime, like: datetime) -> datetime:
    if value.tzinfo and not like.tzinfo:
        return value.replace(tzinfo=None)
    if like.tzinfo and not value.tzinfo:
        return value.replace(tzinfo=UTC)
    return value


def _read_once(settings: PostgresSourceSettings, batches: RawBatches, dsn: str, timeout: float, stats: dict) -> None:
    """One pass: read from the recorded watermark (minus the look-back) and admit new batches as they fill."""
    import psycopg
    import pyarrow.parquet as pq

    previous = [entry for entry in batches.entries if entry["source"] == "postgres"]
    after = max((entry["watermark_to"] for entry in previous), key=_order_key) if previous else None
    since, seen = None, set()
    if after is not None and settings.lookback_seconds > 0:
        high = _timestamp(after[0])
        if high is None:
            raise ConfigError(
                f"ingest.postgres.lookback_seconds needs watermark_columns[0] ('{settings.watermark_columns[0]}') to "
                "be a timestamp column; set lookback_seconds: 0 for another watermark"
            )
        since = high - timedelta(seconds=settings.lookback_seconds)
        seen = _ingested_keys(batches, previous, settings, since)
    key = settings.table or "query"
    with psycopg.connect(dsn, autocommit=False, connect_timeout=max(1, int(timeout))) as connection:
        connection.read_only = True
        # A named (server-side) cursor streams the rows; memory stays at one batch.
        with connection.cursor(name="feedbackflow_ingest") as cursor:
            cursor.execute(postgres_statement(settings, after, since), [since] if since is not None else after)
            columns = [column.name for column in cursor.description or []]
            missing = [c for c in (*settings.watermark_columns, settings.id_column) if c not in columns]
            if missing:
                raise ConfigError(
                    f"ingest: {key} has no column(s) {', '.join(missing)}; check ingest.postgres.watermark_columns "
                    "and id_column in params.yaml"
                )
            positions = [columns.index(c) for c in settings.watermark_columns]
            id_at, stamp_at = columns.index(settings.id_column), positions[0]
            provenance = dict(
                zip(PROVENANCE_COLUMNS, ("postgres", key, batches.now.isoformat(), run_id()), strict=True)
            )

            def admit(rows: list[tuple]) -> None:
                with batches.partial() as partial:
                    pq.write_table(_arrow_table(columns, rows, provenance), partial)
                    batches.admit(
                        partial,
                        key,
                        ".parquet",
                        rows=len(rows),
                        watermark_columns=list(settings.watermark_columns),
                        watermark_from=[json_value(rows[0][i]) for i in positions],
                        watermark_to=[json_value(rows[-1][i]) for i in positions],
                    )

            pending: list[tuple] = []
            while rows := cursor.fetchmany(settings.batch_rows):
                for row in rows:
                    if seen and (json_value(row[id_at]), json_value(row[stamp_at])) in seen:
                        stats["rows_already_ingested"] += 1
                    else:
                        pending.append(row)
                while len(pending) >= settings.batch_rows:
                    admit(pending[: settings.batch_rows])
                    pending = pending[settings.batch_rows :]
            if pending:
                admit(pending)


def ingest_postgres(
    settings: PostgresSourceSettings,
    raw_dir: Path,
    manifest: Path,
    retry: RetrySettings,
    dsn: str | None = None,
) -> dict:
    """Read rows newer than the manifest's watermark (minus the look-back) and write them as Parquet batches.

    Raises:
        ConfigError: the DSN is malformed, the credentials are refused, or the statement fails (a missing table or
            watermark column): a retry cannot fix these.
        SourceUnavailableError: the server stayed unreachable through ``ingest.retry``.
    """
    import psycopg

    batches = RawBatches(raw_dir, manifest, "postgres")
    key = settings.table or "query"
    dsn = dsn if dsn is not None else os.environ.get(POSTGRES_DSN_ENV, "")
    server = endpoint(dsn)
    stats = {"rows_already_ingested": 0}
    try:
        retrying(
            lambda: _read_once(settings, batches, dsn, retry.timeout_seconds, stats),
            policy=retry,
            transient=is_transient,
            what=f"reading {key}",
            endpoint=server,
        )
    except FeedbackflowError:
        raise
    except psycopg.Error as error:
        raise ConfigError(
            f"ingest: reading {key} from PostgreSQL at {server} failed: {describe_error(error)}. Check "
            "ingest.postgres (table or query, watermark_columns, id_column) in params.yaml and the connection "
            f"({POSTGRES_DSN_ENV} or the Airflow connection named by FEEDBACKFLOW_POSTGRES_CONN_ID)"
        ) from None
    return {**batches.summary(), **stats}
