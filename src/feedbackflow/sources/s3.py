"""The S3 source: objects under ``ingest.s3.bucket``/``prefix`` through boto3 (AWS, MinIO or any S3-compatible
endpoint), copied byte for byte; credentials come from the standard ``AWS_*`` environment.

An object whose key, ETag and size the manifest knows (as a batch, or as an alias of one: a duplicate delivered
under another key) is skipped without a GET. Any other matching object is streamed aside and hashed, so a
re-delivered identical object under a new key is recognised, and recorded as an alias so it is not fetched again.

Network faults (endpoint down, connection cut, 5xx answers) are retried with bounded backoff inside the stage
(``ingest.retry``), then fail with :class:`~feedbackflow.errors.SourceUnavailableError` naming the endpoint; a
missing bucket or refused credentials are a :class:`~feedbackflow.errors.ConfigError` at once. Messages carry the
error's class and code, never the client's text.
"""

from __future__ import annotations

import fnmatch
import functools
from pathlib import Path, PurePosixPath
from typing import Any

from feedbackflow.credentials import describe_error
from feedbackflow.errors import ConfigError, FeedbackflowError
from feedbackflow.settings import RetrySettings, S3SourceSettings
from feedbackflow.sources.retry import retrying
from feedbackflow.storage.manifest import RawBatches

#: S3 error codes that a retry can fix (the service is busy or failing, not the request).
TRANSIENT_CODES = frozenset(
    {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "Throttling", "ThrottlingException"}
)
CHUNK_BYTES = 1 << 20


def s3_client(settings: S3SourceSettings, retry: RetrySettings) -> Any:
    """A boto3 S3 client; credentials, region and (when not in params) the endpoint come from the environment.

    botocore's own retries are cut to one extra try: the stage's bounded backoff (``ingest.retry``) does the waiting.
    """
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"total_max_attempts": 2, "mode": "standard"},
        connect_timeout=retry.timeout_seconds,
        read_timeout=max(retry.timeout_seconds, 60),
    )
    return boto3.client("s3", endpoint_url=settings.endpoint_url or None, config=config)


def is_transient(error: BaseException) -> bool:
    """True for network faults and server-side failures; False for configuration errors (bucket, credentials)."""
    from botocore.exceptions import ClientError, HTTPClientError, ResponseStreamingError
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from urllib3.exceptions import HTTPError as Urllib3Error

    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return code in TRANSIENT_CODES or status >= 500
    return isinstance(error, BotoConnectionError | HTTPClientError | ResponseStreamingError | Urllib3Error | OSError)


def _download(client: Any, bucket: str, key: str, target: Path) -> tuple[str, int]:
    """Stream one object into ``target`` (overwritten on a retry); returns its ETag and size."""
    response = client.get_object(Bucket=bucket, Key=key)
    with target.open("wb") as handle:
        for chunk in response["Body"].iter_chunks(CHUNK_BYTES):
            handle.write(chunk)
    return str(response["ETag"]).strip('"'), int(response["ContentLength"])


def _known_objects(batches: RawBatches) -> set[tuple[str, str | None, int]]:
    known = set()
    for entry in batches.entries:
        if entry["source"] == "s3":
            known.add((entry["key"], entry.get("etag"), entry["size"]))
            known |= {(alias["key"], alias.get("etag"), alias["size"]) for alias in entry.get("aliases", [])}
    return known


def ingest_s3(
    settings: S3SourceSettings,
    patterns: list[str],
    raw_dir: Path,
    manifest: Path,
    retry: RetrySettings,
    client: Any = None,
) -> dict:
    """Download every not-yet-ingested object under the configured prefix into ``raw_dir``.

    Raises:
        ConfigError: the bucket cannot be listed for a reason a retry cannot fix (missing bucket, credentials).
        SourceUnavailableError: the endpoint stayed unreachable through ``ingest.retry``.
    """
    from botocore.exceptions import ClientError

    client = client or s3_client(settings, retry)
    endpoint = settings.endpoint_url or str(client.meta.endpoint_url)
    batches = RawBatches(raw_dir, manifest, "s3")
    known = _known_objects(batches)
    where = f"s3://{settings.bucket}/{settings.prefix}"

    def listing() -> list[dict]:
        paginator = client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=settings.bucket, Prefix=settings.prefix)
        return [item for page in pages for item in page.get("Contents", [])]

    try:
        objects = retrying(listing, policy=retry, transient=is_transient, what=f"listing {where}", endpoint=endpoint)
    except FeedbackflowError:
        raise
    except Exception as error:  # not transient (retrying turned those into SourceUnavailableError)
        raise ConfigError(
            f"ingest: cannot list {where} at {endpoint}: {describe_error(error)}. Check ingest.s3 in params.yaml and "
            "the AWS credentials (AWS_* environment variables or the Airflow connection named by "
            "FEEDBACKFLOW_AWS_CONN_ID)"
        ) from None
    for item in sorted(objects, key=lambda obj: obj["Key"]):
        key, etag, size = item["Key"], item["ETag"].strip('"'), item["Size"]
        name = PurePosixPath(key).name
        if key.endswith("/") or name.startswith(".") or not any(fnmatch.fnmatch(name, p) for p in patterns):
            continue
        if (key, etag, size) in known:
            continue  # this very object was ingested (or found a duplicate) by an earlier run: no GET
        with batches.partial() as partial:
            try:
                etag, size = retrying(
                    functools.partial(_download, client, settings.bucket, key, partial),
                    policy=retry,
                    transient=is_transient,
                    what=f"downloading s3://{settings.bucket}/{key}",
                    endpoint=endpoint,
                )
            except ClientError as error:  # not transient: e.g. AccessDenied on the object
                raise ConfigError(
                    f"ingest: cannot download s3://{settings.bucket}/{key} at {endpoint}: {describe_error(error)}. "
                    "Check the AWS credentials' read permission on the prefix"
                ) from None
            batches.admit(
                partial,
                key,
                "".join(PurePosixPath(name).suffixes),
                etag=etag,
                bucket=settings.bucket,
                alias={"key": key, "etag": etag, "size": size},
            )
        known.add((key, etag, size))
    return batches.summary()
