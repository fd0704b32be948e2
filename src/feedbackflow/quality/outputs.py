"""What the validate stage writes: typed Parquet files and the Great Expectations Data Docs site."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from feedbackflow.credentials import describe_error
from feedbackflow.errors import ConfigError, FeedbackflowError
from feedbackflow.io import atomic_path
from feedbackflow.settings import RetrySettings
from feedbackflow.sources.retry import retrying

logger = logging.getLogger(__name__)

#: Columns of ``data/validated/feedback.parquet``.
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


def quarantine_schema(columns: tuple[str, ...]) -> pa.Schema:
    """Columns of ``data/quarantine/quarantine.parquet``: the carried data columns, provenance and the rules."""
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


#: Rows per Parquet row group: readers that stream (anonymise, split) hold one group at a time, not the whole file.
ROW_GROUP_ROWS = 50_000


def write_parquet(frame: pd.DataFrame, schema: pa.Schema, target: Path) -> None:
    """Write with an explicit schema so an empty or all-null column keeps its type; atomically."""
    arrays = [
        pa.array(frame[name].to_numpy(dtype=object), type=schema.field(name).type, from_pandas=True)
        for name in schema.names
    ]
    table = pa.Table.from_arrays(arrays, schema=schema)
    with atomic_path(target) as partial:
        pq.write_table(table, partial, row_group_size=ROW_GROUP_ROWS)


class ParquetSink:
    """Write a Parquet file chunk by chunk, holding at most one row group: the same file as :func:`write_parquet`.

    Rows are buffered until a full :data:`ROW_GROUP_ROWS` group can be written, so the row groups (and the bytes)
    do not depend on how the rows arrived. Use as a context manager; the file appears atomically on a clean exit and
    not at all after an error.
    """

    def __init__(self, schema: pa.Schema, target: Path) -> None:
        """Prepare the writer; nothing is written before the first row group is full or the sink closes."""
        self.schema = schema
        self.target = target
        self.rows = 0
        self._buffer: list[pa.Table] = []
        self._buffered = 0

    def __enter__(self) -> ParquetSink:
        self._atomic = atomic_path(self.target)
        self._partial = self._atomic.__enter__()
        self._writer = pq.ParquetWriter(self._partial, self.schema)
        return self

    def write(self, frame: pd.DataFrame) -> None:
        """Append ``frame``'s schema columns (object columns of ``str``/``None``, int64 columns)."""
        if frame.empty:
            return
        arrays = [
            pa.array(frame[name].to_numpy(dtype=object), type=self.schema.field(name).type, from_pandas=True)
            for name in self.schema.names
        ]
        self.write_table(pa.Table.from_arrays(arrays, schema=self.schema))

    def write_table(self, table: pa.Table) -> None:
        """Append an Arrow table with the sink's schema."""
        if not table.num_rows:
            return
        self._buffer.append(table)
        self._buffered += table.num_rows
        self.rows += table.num_rows
        while self._buffered >= ROW_GROUP_ROWS:
            self._flush(ROW_GROUP_ROWS)

    def _flush(self, rows: int) -> None:
        table = pa.concat_tables(self._buffer).combine_chunks()
        self._writer.write_table(table.slice(0, rows), row_group_size=ROW_GROUP_ROWS)
        rest = table.slice(rows)
        self._buffer, self._buffered = ([rest] if len(rest) else []), len(rest)

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        if kind is None and (self._buffered or not self.rows):
            self._writer.write_table(
                pa.concat_tables(self._buffer).combine_chunks() if self._buffer else self.schema.empty_table(),
                row_group_size=ROW_GROUP_ROWS,
            )
        self._writer.close()
        self._atomic.__exit__(kind, error, trace)


VALIDATION_RESULT_FILE = "validation_result.json"
"""The run's validation result (GX's JSON, counts only) next to its Data Docs: the history site is rebuilt from it."""


def publish_docs(
    building: Path, docs_dir: Path, s3_url: str | None, result: Any = None, *, retry: RetrySettings
) -> None:
    """Move the freshly built Data Docs into place (replacing the previous run's) and upload them to S3 if set.

    The pages get local copies of the CSS and JS they load (:func:`feedbackflow.quality.offline.make_offline`),
    and ``result`` (the checkpoint's validation result), when given, is kept as :data:`VALIDATION_RESULT_FILE`.
    The upload retries network faults with ``retry`` (the stage passes ``ingest.retry``).
    """
    from feedbackflow.quality.offline import make_offline

    if not (building / "index.html").is_file():
        shutil.rmtree(building, ignore_errors=True)
        return
    make_offline(building)
    if result is not None:
        (building / VALIDATION_RESULT_FILE).write_text(
            json.dumps(result.to_json_dict(), sort_keys=True), encoding="utf-8"
        )
    shutil.rmtree(docs_dir, ignore_errors=True)
    building.replace(docs_dir)
    if s3_url:
        upload_data_docs(docs_dir, s3_url, retry)


def upload_data_docs(docs_dir: Path, s3_url: str, retry: RetrySettings) -> list[str]:
    """Upload a Data Docs folder to ``s3://bucket/prefix`` (credentials and endpoint from the ``AWS_*`` environment).

    Network faults are retried with ``retry`` (the stage passes ``ingest.retry``) like the S3 source's; messages carry
    the error's class and code, never the client's text.

    Returns:
        The uploaded keys.

    Raises:
        SourceUnavailableError: the endpoint stayed unreachable through the tries.
        ConfigError: the upload was refused (no such bucket, credentials): no retry can fix it.
    """
    import functools
    import mimetypes

    from feedbackflow.settings import S3SourceSettings
    from feedbackflow.sources.s3 import is_transient, s3_client

    bucket, _, prefix = s3_url.removeprefix("s3://").partition("/")
    # the URL names bucket and prefix; the endpoint comes from the environment (AWS or AWS_ENDPOINT_URL)
    client = s3_client(S3SourceSettings(bucket=bucket, prefix=prefix, endpoint_url=None), retry)
    endpoint = str(client.meta.endpoint_url)
    keys = []
    for path in sorted(p for p in docs_dir.rglob("*") if p.is_file()):
        key = "/".join(part for part in (prefix.strip("/"), path.relative_to(docs_dir).as_posix()) if part)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        upload = functools.partial(
            client.put_object, Bucket=bucket, Key=key, Body=path.read_bytes(), ContentType=content_type
        )
        try:
            retrying(
                upload,
                policy=retry,
                transient=is_transient,
                what=f"uploading Data Docs to s3://{bucket}/{key}",
                endpoint=endpoint,
                stage="validate",
            )
        except FeedbackflowError:
            raise
        except Exception as error:  # not transient (retrying turned those into SourceUnavailableError)
            raise ConfigError(
                f"validate: cannot upload Data Docs to s3://{bucket}/{prefix} at {endpoint}: {describe_error(error)}. "
                "Check validate.data_docs_s3 in params.yaml and the AWS credentials' write permission on it"
            ) from None
        keys.append(key)
    logger.info("validate: Data Docs uploaded to s3://%s/%s (%d files)", bucket, prefix, len(keys))
    return keys
