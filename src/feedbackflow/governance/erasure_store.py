"""The places DVC keeps old data versions: the local cache and every remote, object by object.

DVC stores each file by content hash under ``files/md5/<2 hex>/<30 hex>`` (directory listings end in ``.dir``) in the
cache and in each remote. An erasure has to read and delete objects there directly: DVC itself never deletes a
version a Git commit may still name (``dvc gc`` keeps them, and on a versioned S3 bucket only adds delete markers,
treeverse/dvc#5269). :class:`FolderObjects` is the cache or a local remote; :class:`S3Objects` an S3 remote, where a
delete removes every version of the object (delete markers included), so nothing survives in a versioned bucket.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

OBJECTS = "files/md5"
_S3_URL = re.compile(r"s3://([^/]+)/?(.*)")


class ObjectStore(Protocol):
    """One store of DVC objects, by hash (``abcdef...`` or ``abcdef....dir``)."""

    name: str

    def hashes(self) -> Iterator[str]: ...

    def read(self, md5: str) -> bytes: ...

    def delete(self, md5: str) -> int:
        """Delete the object (every version of it); the number of objects or versions removed."""
        ...


def _split(md5: str) -> str:
    return f"{md5[:2]}/{md5[2:]}"


@dataclass
class FolderObjects:
    """The DVC cache or a local remote: a folder of ``files/md5`` objects."""

    name: str
    root: Path

    def hashes(self) -> Iterator[str]:
        base = self.root / OBJECTS
        if not base.is_dir():
            return
        for prefix in sorted(base.iterdir()):
            if prefix.is_dir() and len(prefix.name) == 2:
                for path in sorted(prefix.iterdir()):
                    if path.is_file() and not path.name.endswith(".tmp"):
                        yield prefix.name + path.name

    def read(self, md5: str) -> bytes:
        return (self.root / OBJECTS / _split(md5)).read_bytes()

    def delete(self, md5: str) -> int:
        path = self.root / OBJECTS / _split(md5)
        if not path.exists():
            return 0
        path.chmod(0o644)
        path.unlink()
        return 1


@dataclass
class S3Objects:
    """An S3 remote (AWS, MinIO, moto): deletes remove every object version and delete marker."""

    name: str
    client: Any
    bucket: str
    prefix: str

    def _key(self, md5: str) -> str:
        return "/".join(part for part in (self.prefix, OBJECTS, _split(md5)) if part)

    def hashes(self) -> Iterator[str]:
        base = "/".join(part for part in (self.prefix, OBJECTS) if part) + "/"
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base):
            for item in page.get("Contents", []):
                yield "".join(item["Key"][len(base) :].split("/"))

    def read(self, md5: str) -> bytes:
        body: bytes = self.client.get_object(Bucket=self.bucket, Key=self._key(md5))["Body"].read()
        return body

    def versions(self, md5: str) -> list[dict[str, str]]:
        """Every stored version and delete marker of the object (one ``null`` version when unversioned)."""
        key = self._key(md5)
        found = []
        for page in self.client.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=key):
            for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                if item["Key"] == key:
                    found.append({"Key": key, "VersionId": item["VersionId"]})
        return found

    def delete(self, md5: str) -> int:
        versions = self.versions(md5)
        if versions:
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": versions, "Quiet": True})
        return len(versions)


def open_stores(root: Path) -> list[ObjectStore]:
    """The project's cache and every configured DVC remote (``--local`` settings included)."""
    from dvc.repo import Repo

    repo = Repo(str(root))
    try:
        stores: list[ObjectStore] = [FolderObjects("cache", Path(repo.cache.local.path).parents[1])]
        for name, config in repo.config["remote"].items():
            stores.append(_remote(name, config))
    finally:
        repo.close()
    return stores


def _remote(name: str, config: dict[str, Any]) -> ObjectStore:
    url = str(config["url"])
    match = _S3_URL.fullmatch(url)
    if match is None:
        return FolderObjects(name, Path(url))
    import boto3

    client = boto3.client("s3", endpoint_url=config.get("endpointurl"), region_name=config.get("region"))
    return S3Objects(name, client, match.group(1), match.group(2).strip("/"))


def dir_entries(data: bytes) -> dict[str, str]:
    """A ``.dir`` object's listing: relative path -> file hash."""
    return {entry["relpath"]: entry["md5"] for entry in json.loads(data)}


def read_table(data: bytes) -> Any:
    """The object as a DataFrame when it is a Parquet file, else None."""
    if not data.startswith(b"PAR1"):
        return None
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(data)).to_pandas()
