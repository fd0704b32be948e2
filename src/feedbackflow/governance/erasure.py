"""Forget one customer: their rows in every dataset and data version, every stored copy, the models, a certificate.

:func:`forget` runs one erasure request end to end:

1. the subject's identifiers become normalised forms and keyed hashes (:mod:`.erasure_match`); the hashes go on the
   erased-subjects list that validate applies, so a re-delivery is quarantined under ``erased_subject``;
2. their rows are removed, by identifier and then by id, from raw, validated, quarantine, held back, anonymised and
   split (:mod:`.erasure_data`); each rewritten raw batch records an erasure event (counts and hashes);
3. ``dvc commit`` records the new versions in ``dvc.lock`` and ``dvc push`` sends them to the remotes, so the newest
   data is usable at once;
4. every object in the cache and in every remote is read, and each one holding the subject's rows (any version: a
   Parquet file by id or identifier, any other file by identifier, a directory listing naming such a file) is deleted,
   every object version too on a versioned S3 bucket (:mod:`.erasure_store`);
5. the registry marks the model versions trained on those data versions and applies ``erasure.policy``
   (:mod:`.erasure_models`);
6. every remaining object and every workspace file (data, reports, Data Docs, Evidently workspace, checkpoints,
   models) is scanned again: the certificate records what was found, which must be zero.

The certificate and the log hold request ids, dates, counts and object hashes, never an identifier. A failure after
step 2 (a remote down) writes the certificate as ``incomplete`` and raises :class:`ErasureIncompleteError`; running
the same request again resumes it (the row ids found are kept in ``.work/erasure/``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import FeedbackflowError
from feedbackflow.governance.erasure_certificate import (
    append_log,
    certificate_path,
    read_certificate,
    write_certificate,
)
from feedbackflow.governance.erasure_data import (
    ID_COLUMN,
    datasets,
    labels_short,
    matching_ids,
    read_rows,
    record_raw_events,
    remove_rows,
    row_mask,
    save_state,
)
from feedbackflow.governance.erasure_match import Matcher, add_erased, load_key, normalise_phone, subject_forms
from feedbackflow.governance.erasure_store import ObjectStore, dir_entries, open_stores, read_table
from feedbackflow.settings import Settings
from feedbackflow.storage.dvc import Dvc, pipeline

log = logging.getLogger(__name__)

#: Larger objects are not read as text (model weights); Parquet files are always read.
MAX_TEXT_BYTES = 256 * 1024 * 1024


class ErasureIncompleteError(FeedbackflowError):
    """An erasure stopped part-way (a remote unreachable); running the same request again resumes it."""

    exit_code = 75


@dataclass(frozen=True)
class ErasureRequest:
    """One request: its id, the subject's identifiers by kind, who asked and who approved."""

    request_id: str
    identifiers: Mapping[str, list[str]] = field(repr=False)
    requested_by: str
    approved_by: str | None = None


@dataclass
class Scan:
    """What a scan of the object stores found: objects holding the subject, per store."""

    holding: dict[str, set[str]] = field(default_factory=dict)
    scanned: int = 0  # objects read (each content hash once)
    listed: int = 0  # objects present, over every store
    verdicts: dict[str, bool] = field(default_factory=dict)  # content hash -> holds the subject

    @property
    def objects(self) -> set[str]:
        return set().union(*self.holding.values()) if self.holding else set()


def subject_matcher(settings: Settings, request: ErasureRequest, environ: Mapping[str, str] | None) -> Matcher:
    """The request's matcher (the phone numbers read for ``erasure.phone_region``)."""
    region = settings.erasure.phone_region
    identifiers = {kind: list(values) for kind, values in request.identifiers.items()}
    if identifiers.get("phone"):
        identifiers["phone"] = [normalise_phone(phone, region) for phone in identifiers["phone"]]
    return Matcher.for_subject(load_key(environ), subject_forms(identifiers))


def forget(
    paths: ProjectPaths, settings: Settings, request: ErasureRequest, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Run one erasure request end to end (see the module docstring); returns the certificate.

    Raises:
        ConfigError: no erasure key, or a list made with another key.
        ValueError: no usable identifier.
        ErasureIncompleteError: a step after the workspace rewrite failed; the certificate says ``incomplete``.
    """
    matcher = subject_matcher(settings, request, environ)
    at = datetime.now(UTC).isoformat(timespec="seconds")
    records = paths.root / settings.erasure.records_dir
    state_file = paths.erasure_work / certificate_path(Path(), request.request_id).name
    state = json.loads(state_file.read_text(encoding="utf-8")) if state_file.is_file() else {"ids": []}
    ids = matching_ids(paths, matcher) | set(state["ids"])
    save_state(state_file, {"ids": sorted(ids)})
    removed = remove_rows(paths, matcher, ids)
    record_raw_events(paths, removed, request.request_id, at)
    add_erased(paths.root / settings.erasure.subjects_file, matcher, request.request_id, at)
    certificate = _certificate(request, matcher, at, removed.rows, len(removed.files))
    _resume(certificate, read_certificate(records, request.request_id))
    # erasing still happens when a label falls below the minimum: the certificate says what training will lack
    short = labels_short(paths, removed, settings.validate_.min_rows_per_label)
    certificate["labels_below_minimum"] = short or certificate.get("labels_below_minimum") or {}
    try:
        _finish(paths, settings, request, matcher, ids, certificate)
    except Exception as error:
        certificate.update(state="incomplete", error=f"{type(error).__name__}: {error}"[:500])
        write_certificate(records, certificate)
        waiting = {store: len(objects) for store, objects in certificate["objects_left"].items()}
        raise ErasureIncompleteError(
            f"erasure {request.request_id} is incomplete ({type(error).__name__}); steps left: "
            f"{', '.join(certificate['left'])}; objects left to delete: {waiting or 'none found yet'}. "
            f"Run the same request again to resume: {error}"
        ) from error
    write_certificate(records, certificate)
    deleted = sorted(set().union(*(set(s["objects"]) for s in certificate["objects_deleted"].values())))
    append_log(records, {"request_id": request.request_id, "at": at, "objects": deleted})
    state_file.unlink(missing_ok=True)
    return certificate


def _certificate(
    request: ErasureRequest, matcher: Matcher, at: str, rows: dict[str, int], files: int
) -> dict[str, Any]:
    return {
        "format": 1,
        "request_id": request.request_id,
        "requested_by": request.requested_by,
        "approved_by": request.approved_by,
        "received_at": at,
        "completed_at": None,
        "state": "running",
        "key_id": matcher.key.key_id,
        "identifier_hashes": len(matcher.hashes),
        "identifier_kinds": sorted({kind for kind, values in request.identifiers.items() if values}),
        "matched": any(rows.values()),
        "rows_removed": rows,
        "files_rewritten": files,
        "objects_deleted": {},
        "models": {"versions": [], "action": None, "champion": None},
        "verification": {},
        "left": list(STEPS),
        "objects_left": {},
        "error": None,
    }


def _resume(certificate: dict[str, Any], previous: dict[str, Any] | None) -> None:
    """Carry an incomplete earlier attempt's counts and date over: its rows are gone from the workspace already."""
    if not previous or previous.get("state") != "incomplete":
        return
    certificate["received_at"] = previous["received_at"]
    certificate["files_rewritten"] += previous.get("files_rewritten", 0)
    for name, rows in (previous.get("rows_removed") or {}).items():
        certificate["rows_removed"][name] = certificate["rows_removed"].get(name, 0) + rows
    certificate["matched"] = any(certificate["rows_removed"].values())
    certificate["objects_deleted"] = previous.get("objects_deleted") or {}
    certificate["models"]["versions"] = list((previous.get("models") or {}).get("versions") or [])
    certificate["labels_below_minimum"] = previous.get("labels_below_minimum") or {}
    certificate["resumed"] = True


#: what ``_finish`` does after the workspace rewrite, in order; an incomplete certificate lists the steps left
STEPS = ("commit", "push", "scan", "models", "delete", "verify")


def _finish(
    paths: ProjectPaths,
    settings: Settings,
    request: ErasureRequest,
    matcher: Matcher,
    ids: set[str],
    certificate: dict[str, Any],
) -> None:
    """Commit and push the new versions, delete every object holding the subject, mark models, verify.

    ``certificate["left"]`` names the steps not done yet and ``certificate["objects_left"]`` the object hashes still
    to delete per store, so a failure part-way leaves a certificate that says what is left.
    """
    from feedbackflow.governance.erasure_models import mark_models
    from feedbackflow.storage.registry import Registry

    left = certificate["left"] = list(STEPS)
    dvc = Dvc(paths.root)
    stages = _dataset_stages(paths, dvc)
    if stages:
        dvc("commit", "--force", *stages)
        left.remove("commit")
        dvc("push", *stages)
    del left[: left.index("scan")]
    stores = open_stores(paths.root)
    found = scan_stores(stores, matcher, ids, keep=_current_objects(dvc))
    left.remove("scan")
    erasure = settings.erasure
    erased = found.objects | _objects(certificate["objects_deleted"])  # a resumed request deleted some already
    models = mark_models(
        Registry.open(paths.root),
        erased,
        request.request_id,
        certificate["received_at"],
        erasure.policy,
        erasure.grace_days,
    )
    add_weights(stores, found, models.pop("retire_weights"), models.pop("keep_weights"))
    certificate["models"] = _merge_models(certificate["models"], models)
    left.remove("models")
    delete_objects(stores, found, certificate)
    left.remove("delete")
    certificate["verification"] = verify(paths, stores, matcher, ids, settings, found.verdicts)
    left.remove("verify")
    certificate["state"] = "done" if certificate["verification"]["found"] == 0 else "incomplete"
    certificate["completed_at"] = datetime.now(UTC).isoformat(timespec="seconds")


def _objects(deleted: dict[str, dict[str, Any]]) -> set[str]:
    return set().union(*(set(store["objects"]) for store in deleted.values())) if deleted else set()


def _merge_models(previous: dict[str, Any], models: dict[str, Any]) -> dict[str, Any]:
    """This attempt's model outcome, with the versions an earlier attempt of the request marked."""
    versions = list(previous.get("versions") or [])
    return {**models, "versions": versions + [v for v in models["versions"] if v not in versions]}


def _listing(stores: list[ObjectStore], md5: str) -> set[str]:
    """The files of a directory object, from the first store that has it (empty when none has)."""
    for store in stores:
        try:
            return set(dir_entries(store.read(md5)).values())
        except (OSError, KeyError, ValueError):
            continue
        except Exception as error:  # botocore's NoSuchKey is not an OSError
            if "NoSuchKey" not in type(error).__name__ and "NoSuchKey" not in str(error):
                raise
    return set()


def add_weights(stores: list[ObjectStore], scan: Scan, retire: list[str], keep: list[str]) -> None:
    """Add retired model folders (and their files no kept version shares, e.g. a tokenizer) to the deletions."""
    if not retire:
        return
    shared = set().union(set(keep), *(_listing(stores, md5) for md5 in keep))
    doomed = set().union(set(retire), *(_listing(stores, md5) for md5 in retire)) - shared
    for store in stores:
        present = set(store.hashes())
        scan.holding.setdefault(store.name, set()).update(doomed & present)


def _dataset_stages(paths: ProjectPaths, dvc: Dvc) -> list[str]:
    """The stages (of ``dvc.lock``) that write a dataset an erasure rewrites, in pipeline order."""
    folders = {folder.relative_to(paths.root).as_posix() for folder in datasets(paths).values()}
    locked = dvc.lock().get("stages", {})
    return [
        name
        for name, spec in pipeline(paths.dvc_yaml).items()
        if name in locked and any(out in folders for out in spec.outs)
    ]


def _current_objects(dvc: Dvc) -> set[str]:
    """The object hashes ``dvc.lock`` names now: never deleted (they were just written without the subject)."""
    lock = dvc.lock().get("stages", {})
    return {str(out["md5"]) for stage in lock.values() for out in stage.get("outs", []) if out.get("md5")}


def object_holds(data: bytes, matcher: Matcher, ids: set[str]) -> bool:
    """Whether one stored object holds the subject: Parquet rows by id or identifier, any other file as text."""
    table = read_table(data)
    if table is not None:
        return bool(len(table)) and bool(row_mask(table, matcher, ids).any())
    if len(data) > MAX_TEXT_BYTES:
        return False
    return matcher.text_holds(data.decode("utf-8", errors="replace"))


def scan_stores(
    stores: list[ObjectStore],
    matcher: Matcher,
    ids: set[str],
    keep: set[str] = frozenset(),  # type: ignore[assignment]
    known: dict[str, bool] | None = None,
) -> Scan:
    """Read every object of every store once; directory listings count when they name an object found.

    ``known``: verdicts of an earlier scan of the same subject. An object's name is the hash of its content, so an
    object read once needs no second reading: the verification re-lists every store and reads only new objects.
    """
    verdicts: dict[str, bool] = dict(known or {})
    listings: dict[str, set[str]] = {}
    scan = Scan(verdicts=verdicts)
    for store in stores:
        scan.holding[store.name] = set()
        for md5 in store.hashes():
            scan.listed += 1
            if md5.endswith(".dir"):
                if md5 not in listings:
                    listings[md5] = set(dir_entries(store.read(md5)).values())
                continue
            if md5 not in verdicts:
                verdicts[md5] = object_holds(store.read(md5), matcher, ids)
                scan.scanned += 1
            if verdicts[md5]:
                scan.holding[store.name].add(md5)
    found = {md5 for md5, holds in verdicts.items() if holds}
    for store in stores:
        for md5 in store.hashes():
            if md5.endswith(".dir") and listings.get(md5, set()) & found:
                scan.holding[store.name].add(md5)
    held = {md5 for md5 in found | set(listings) if md5 in keep}
    if held & scan.objects:
        raise FeedbackflowError(f"objects dvc.lock names still hold the subject: {sorted(held & scan.objects)}")
    return scan


def delete_objects(stores: list[ObjectStore], scan: Scan, certificate: dict[str, Any]) -> None:
    """Delete every found object from its store, recording each in ``certificate["objects_deleted"]`` (hashes and
    object versions, per store) as it goes and the ones not deleted yet in ``certificate["objects_left"]``."""
    deleted = certificate.setdefault("objects_deleted", {})
    left = certificate["objects_left"] = {
        store.name: sorted(scan.holding.get(store.name, set())) for store in stores if scan.holding.get(store.name)
    }
    for store in stores:
        record = deleted.setdefault(store.name, {"objects": [], "versions": 0})
        for md5 in sorted(scan.holding.get(store.name, set())):
            record["versions"] += store.delete(md5)
            if md5 not in record["objects"]:
                record["objects"].append(md5)
            left[store.name].remove(md5)
        left.pop(store.name, None)
        log.info(
            "erasure: %d objects (%d versions) deleted from %s", len(record["objects"]), record["versions"], store.name
        )


def verify(
    paths: ProjectPaths,
    stores: list[ObjectStore],
    matcher: Matcher,
    ids: set[str],
    settings: Settings,
    known: dict[str, bool] | None = None,
) -> dict[str, Any]:
    """Check every remaining object and scan every workspace file for the subject; ``found`` must be zero.

    ``known``: the verdicts of the scan before the deletions (objects are named by content: see :func:`scan_stores`).
    """
    remaining = scan_stores(stores, matcher, ids, known=known)
    landing = (paths.root / settings.ingest.landing_dir).resolve()
    files = found = sources = 0
    # the cache and local remotes are read as object stores; these are the workspace's own files
    for folder in (paths.data, paths.reports, paths.governance, paths.models, paths.registry, paths.work):
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.name.endswith(".tmp"):
                continue
            holds = _file_holds(path, matcher, ids)
            if path.resolve().is_relative_to(landing):
                sources += holds
                continue
            files += 1
            found += holds
            if holds:
                log.error("erasure: %s still holds the subject", path.relative_to(paths.root))
    return {
        "objects_checked": remaining.listed,
        "objects_scanned": remaining.scanned,
        "files_scanned": files,
        "found": found + len(remaining.objects),
        "objects_found": len(remaining.objects),
        "files_found": found,
        "sources_holding_subject": sources,
    }


def _file_holds(path: Path, matcher: Matcher, ids: set[str]) -> bool:
    if path.suffix in (".csv", ".jsonl") and path.stat().st_size < MAX_TEXT_BYTES:
        try:
            frame = read_rows(path)
        except ValueError:
            frame = None
        if frame is not None and ID_COLUMN in frame.columns and len(frame):
            return bool(row_mask(frame, matcher, ids).any())
    if path.stat().st_size > MAX_TEXT_BYTES and path.suffix != ".parquet":
        return False
    return object_holds(path.read_bytes(), matcher, ids)
