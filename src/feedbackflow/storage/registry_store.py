"""Where the shared registry's snapshots live, and the create-only-if-absent write that makes updates safe.

A folder (the local DVC remote) or an S3 prefix beside the DVC cache of the project's default remote; see
:mod:`feedbackflow.storage.registry` for what is stored.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from feedbackflow.errors import ConfigError


class Store(Protocol):
    """Where the snapshots live: a folder (local DVC remote) or an S3 prefix."""

    location: str

    def names(self) -> list[str]: ...

    def read(self, name: str) -> bytes: ...

    def create(self, name: str, data: bytes) -> bool:
        """Write ``name`` only if it does not exist yet; False when it already exists."""
        ...

    def delete(self, name: str) -> None:
        """Remove ``name`` (nothing happens when it is absent)."""
        ...


class FolderStore:
    """Snapshots in a folder; create-if-absent is a hard link of a finished temporary file (atomic, exclusive)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)

    def names(self) -> list[str]:
        return sorted(path.name for path in self.root.glob("*") if path.is_file()) if self.root.is_dir() else []

    def read(self, name: str) -> bytes:
        return (self.root / name).read_bytes()

    def create(self, name: str, data: bytes) -> bool:
        self.root.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=self.root)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.link(temporary, self.root / name)
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(temporary)

    def delete(self, name: str) -> None:
        (self.root / name).unlink(missing_ok=True)


class S3Store:
    """Snapshots under an S3 prefix; create-if-absent is a conditional ``PutObject`` (``If-None-Match: *``)."""

    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        self.bucket, self.prefix, self.client = bucket, prefix.strip("/"), client
        self.location = f"s3://{bucket}/{self.prefix}"

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def names(self) -> list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        found = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + "/"):
            found += [item["Key"].rsplit("/", 1)[-1] for item in page.get("Contents", [])]
        return sorted(found)

    def read(self, name: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"].read())

    def create(self, name: str, data: bytes) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(name), Body=data, IfNoneMatch="*")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise
        return True

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(name))


def open_store(root: Path, kind: str = "") -> Store:
    """The registry store of the project's default DVC remote (``kind`` '' for snapshots, 'reports' for reports).

    Raises:
        ConfigError: the project has no default DVC remote.
    """
    return remote_store(root, "registry" + (f"/{kind}" if kind else ""), "the registry")


def remote_store(root: Path, suffix: str, what: str) -> Store:
    """A store under ``suffix`` beside the DVC cache of the project's default remote, which every worker shares.

    Raises:
        ConfigError: the project has no default DVC remote, or it is neither a folder nor S3 (``what`` lives there).
    """
    from dvc.config import Config

    config = Config(dvc_dir=str(root / ".dvc"))
    name = config["core"].get("remote")
    if not name or name not in config["remote"]:
        raise ConfigError(f"{root / '.dvc' / 'config'}: no default DVC remote; {what} lives in that remote")
    remote = config["remote"][name]
    url = str(remote["url"]).rstrip("/")
    if url.startswith("s3://"):
        import boto3

        bucket, _, prefix = url[len("s3://") :].partition("/")
        client = boto3.client(
            "s3",
            endpoint_url=remote.get("endpointurl") or os.environ.get("AWS_ENDPOINT_URL"),
            region_name=remote.get("region"),
            aws_access_key_id=remote.get("access_key_id"),
            aws_secret_access_key=remote.get("secret_access_key"),
        )
        return S3Store(bucket, f"{prefix}/{suffix}".strip("/"), client)
    if "://" in url:
        raise ConfigError(f"DVC remote {name!r} ({url}): {what} supports folder and s3:// remotes")
    return FolderStore(Path(url) / suffix)
