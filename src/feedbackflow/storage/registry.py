"""The model registry, shared by every worker: immutable snapshots in the DVC remote, updated by compare-and-swap.

The registry lives beside the DVC cache in the project's default DVC remote (``<remote url>/registry/``), so every
worker that can pull data sees the same champion. Each change writes the *whole* registry as the next numbered
snapshot, ``state-00000008.json``, with a create-only-if-absent write (``O_EXCL`` link on a folder remote,
``If-None-Match: *`` on S3): when two runs race for generation 8, exactly one wins and the other re-reads and
re-checks its precondition (e.g. "the champion is still the one I compared against"). Nothing is ever overwritten,
so every earlier state stays readable; gate reports are stored by content hash under ``registry/reports/``.

A worker keeps two small local copies, both refreshed from the remote by :func:`sync_champion`:
``registry/champion.json`` (the champion's identity: a ``dvc.yaml`` dependency of evaluate, so a new or rolled-back
champion re-runs evaluate) and ``registry/registry.json`` (the snapshot, saved with each run's DVC experiment).
``models/champion.dvc`` points at the champion's files by DVC hash; ``dvc pull`` restores them anywhere.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import DataQualityError, FeedbackflowError, NotFoundError
from feedbackflow.io import read_json, write_json
from feedbackflow.storage.registry_store import Store, open_store

SNAPSHOT = re.compile(r"^state-(\d{8})\.json$")
STATUSES = ("champion", "archived", "rejected")
EMPTY: dict[str, Any] = {"format": 1, "generation": 0, "champion": None, "versions": [], "events": []}


class RegistryCorruptError(DataQualityError):
    """A registry snapshot cannot be read; retrying cannot fix it (exit 65, the task fails without retries)."""


class RegistryConflictError(FeedbackflowError):
    """The registry changed under an update (another run promoted first), or a requested change is not allowed."""

    exit_code = 75  # EX_TEMPFAIL: re-evaluate against the new champion


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Registry:
    """The shared registry: read the newest snapshot, change it with compare-and-swap."""

    def __init__(self, store: Store, reports: Store | None = None) -> None:
        self.store = store
        self.reports = reports

    @classmethod
    def open(cls, root: Path) -> Registry:
        return cls(open_store(root), open_store(root, "reports"))

    def generations(self) -> list[int]:
        return sorted(int(match.group(1)) for name in self.store.names() if (match := SNAPSHOT.match(name)))

    def snapshot(self, generation: int) -> dict[str, Any]:
        """The registry as it was at ``generation`` (0: empty).

        Raises:
            RegistryCorruptError: the snapshot is not a readable registry; the message says how to restore it.
        """
        if generation == 0:
            return copy.deepcopy(EMPTY)
        name = f"state-{generation:08d}.json"
        try:
            state = json.loads(self.store.read(name))
            if not isinstance(state, dict) or state.get("generation") != generation:
                raise ValueError(
                    f"its generation field is {state.get('generation') if isinstance(state, dict) else state!r}"
                )
            if state["champion"] is not None and not any(v["version"] == state["champion"] for v in state["versions"]):
                raise ValueError(f"champion {state['champion']} is not among its versions")
        except (ValueError, KeyError, TypeError) as error:
            earlier = generation - 1
            raise RegistryCorruptError(
                f"registry snapshot {self.store.location}/{name} is corrupt ({error}). Every earlier snapshot is "
                f"kept in the DVC remote: restore the last intact one as the new head with "
                f"`feedbackflow registry restore {earlier}` (it writes generation {generation + 1}; nothing is "
                f"deleted), or remove the corrupt object from the remote if it was never valid"
            ) from None
        return state

    def head(self) -> dict[str, Any]:
        """The newest snapshot (the empty registry before the first decision)."""
        generations = self.generations()
        return self.snapshot(generations[-1] if generations else 0)

    def champion(self) -> dict[str, Any] | None:
        return champion_of(self.head())

    def update(self, change: Callable[[dict[str, Any]], dict[str, Any]], attempts: int = 5) -> dict[str, Any]:
        """Apply ``change`` to the newest snapshot and write it as the next generation, compare-and-swap.

        When another writer took that generation first, re-read and re-apply ``change`` (which re-checks its own
        preconditions and may raise :class:`RegistryConflictError`).
        """
        for _ in range(attempts):
            current = self.head()
            state = change(copy.deepcopy(current))
            if state == current:
                return current  # nothing to change (e.g. a retry after the pointer already moved)
            state["generation"] = current["generation"] + 1
            data = json.dumps(state, indent=2, sort_keys=True).encode()
            if self.store.create(f"state-{state['generation']:08d}.json", data):
                return state
        raise RegistryConflictError(f"{self.store.location}: {attempts} concurrent updates in a row; try again")

    def put_report(self, text: str, suffix: str) -> str:
        """Store a gate report by content hash; returns its location (idempotent)."""
        assert self.reports is not None
        name = hashlib.sha256(text.encode()).hexdigest() + suffix
        self.reports.create(name, text.encode())
        return f"{self.reports.location}/{name}"

    def read_report(self, location: str) -> str:
        assert self.reports is not None
        return self.reports.read(location.rsplit("/", 1)[-1]).decode()


def champion_of(state: dict[str, Any]) -> dict[str, Any] | None:
    return find_version(state, state["champion"]) if state.get("champion") else None


def find_version(state: dict[str, Any], version: str) -> dict[str, Any]:
    for entry in state["versions"]:
        if entry["version"] == version:
            return dict(entry)
    known = ", ".join(entry["version"] for entry in state["versions"]) or "none"
    raise NotFoundError(f"no version {version!r} in the registry (known: {known})")


def _entry_for(state: dict[str, Any], candidate: dict[str, Any]) -> dict[str, Any]:
    """The version entry of ``candidate``'s model (by weights hash), created as the next ``vN`` when new."""
    for entry in state["versions"]:
        if entry["model_sha256"] == candidate["model_sha256"]:
            entry.update({k: v for k, v in candidate.items() if k not in ("version", "status")})
            return entry
    entry = {**candidate, "version": f"v{len(state['versions']) + 1}", "status": "rejected"}
    state["versions"].append(entry)
    return entry


def _event(state: dict[str, Any], action: str, version: str, by: str, reason: str, **extra: Any) -> None:
    state["events"].append({"at": _now(), "action": action, "version": version, "by": by, "reason": reason, **extra})


def promote(registry: Registry, candidate: dict[str, Any], expected_champion: str | None, by: str) -> dict:
    """Make ``candidate`` the champion if the champion is still ``expected_champion`` (what evaluate compared with).

    Returns the new champion entry.

    Raises:
        RegistryConflictError: the champion changed since evaluate; the next run re-evaluates against it.
    """

    def change(state: dict[str, Any]) -> dict[str, Any]:
        current = champion_of(state)
        if current and current["model_sha256"] == candidate["model_sha256"]:
            return state  # a retry after the pointer moved: nothing left to do
        if state["champion"] != expected_champion:
            raise RegistryConflictError(
                f"the champion changed since evaluate ({expected_champion or 'none'} -> {state['champion']}): "
                "not promoting a challenger that was compared with another model; the next run re-evaluates"
            )
        for entry in state["versions"]:
            if entry["version"] == state["champion"]:
                entry["status"] = "archived"
        entry = _entry_for(state, candidate)
        entry.update({"status": "champion", "approved_by": by, "promoted_at": _now()})
        state["champion"] = entry["version"]
        _event(
            state,
            "promote",
            entry["version"],
            by,
            "; ".join(candidate.get("gate", {}).get("reasons", [])),
            run_id=candidate.get("run_id"),
            previous=expected_champion,
        )
        return state

    state = registry.update(change)
    return find_version(state, state["champion"])


def reject(registry: Registry, candidate: dict[str, Any], by: str, reason: str) -> dict[str, Any]:
    """Record a challenger the gate or a human refused (kept with its report); never demotes the champion."""

    def change(state: dict[str, Any]) -> dict[str, Any]:
        current = champion_of(state)
        if current and current["model_sha256"] == candidate["model_sha256"]:
            return state
        entry = _entry_for(state, candidate)
        entry.update({"status": "rejected", "rejected_by": by, "rejected_at": _now(), "rejection": reason})
        _event(state, "reject", entry["version"], by, reason, run_id=candidate.get("run_id"))
        return state

    state = registry.update(change)
    return next(e for e in state["versions"] if e["model_sha256"] == candidate["model_sha256"])


def rollback(registry: Registry, version: str, reason: str, by: str) -> dict[str, Any]:
    """Make an earlier champion (status ``archived``) the champion again in one write, recording why."""
    if not reason.strip():
        raise RegistryConflictError("a rollback needs a reason (--reason)")

    def change(state: dict[str, Any]) -> dict[str, Any]:
        target = find_version(state, version)
        if target["status"] != "archived":
            raise RegistryConflictError(
                f"{version} is {target['status']}: only an earlier champion (archived) can be rolled back to"
            )
        previous = state["champion"]
        for entry in state["versions"]:
            if entry["version"] == previous:
                entry["status"] = "archived"
            if entry["version"] == version:
                entry["status"] = "champion"
        state["champion"] = version
        _event(state, "rollback", version, by, reason, previous=previous)
        return state

    return find_version(registry.update(change), version)


def restore(registry: Registry, generation: int, by: str) -> dict[str, Any]:
    """Write the intact snapshot ``generation`` again as the newest generation (after a corrupt head)."""
    old = registry.snapshot(generation)
    generations = registry.generations()
    head = generations[-1] if generations else 0

    def change(_: dict[str, Any]) -> dict[str, Any]:
        state = copy.deepcopy(old)
        _event(state, "restore", state["champion"] or "-", by, f"restored generation {generation}")
        return state

    for _ in range(5):
        state = change({})
        state["generation"] = head + 1
        if registry.store.create(f"state-{head + 1:08d}.json", json.dumps(state, indent=2, sort_keys=True).encode()):
            return state
        head += 1
    raise RegistryConflictError("could not restore: the registry keeps changing")


# ---- the worker's local copies ------------------------------------------------------------------------------------


def pointer(entry: dict[str, Any] | None) -> dict[str, Any]:
    """The champion's identity as written to ``registry/champion.json`` (the evaluate stage's dependency)."""
    if not entry:
        return {"version": None}
    identity = {key: entry[key] for key in ("version", "model_sha256", "model_md5")}
    # what drift monitoring compares new feedback with: the champion's split (train part), by DVC hash
    return {
        **identity,
        "run_id": entry.get("run_id"),
        "train_data_md5": (entry.get("data_versions") or {}).get(ProjectPaths.relative().split.as_posix()),
    }


def pointer_file(paths: ProjectPaths) -> Path:
    return paths.registry / "champion.json"


def read_pointer(paths: ProjectPaths) -> dict[str, Any]:
    """The local champion pointer.

    Raises:
        RegistryCorruptError: the file is not valid JSON (restore: ``feedbackflow registry pull``).
    """
    path = pointer_file(paths)
    try:
        return read_json(path, {"version": None}) or {"version": None}
    except ValueError as error:
        raise RegistryCorruptError(
            f"{path} is corrupt ({error}); it is a copy of the champion in the shared registry: restore it from "
            f"the DVC remote with `feedbackflow registry pull`"
        ) from None


def champion_dvc_file(paths: ProjectPaths) -> Path:
    return paths.champion.with_suffix(".dvc")


def write_champion_dvc(paths: ProjectPaths, model_md5: str) -> bool:
    """Point ``models/champion.dvc`` at the champion's DVC directory hash; True when the file changed."""
    path = champion_dvc_file(paths)
    current = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    if current and current.get("outs", [{}])[0].get("md5") == model_md5:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    outs = {"outs": [{"md5": model_md5, "hash": "md5", "path": paths.champion.name}]}
    path.write_text(yaml.safe_dump(outs, sort_keys=False), encoding="utf-8")
    return True


def fetch_champion_data(paths: ProjectPaths, dvc: Any) -> bool:
    """Fetch the champion's training data into this worker's DVC cache by the hash the registry records for it.

    monitor reads its drift reference from the cache by that hash; a worker that never ran the champion's ``split``
    (another worker did, or an earlier machine) has none. ``models/champion_data.dvc`` names the data and ``dvc
    fetch`` brings it from the remote without checking it out. False when the champion records no training data.
    """
    md5 = read_pointer(paths).get("train_data_md5")
    if not md5:
        return False
    record = paths.champion_data.with_suffix(".dvc")
    record.parent.mkdir(parents=True, exist_ok=True)
    outs = {"outs": [{"md5": md5, "hash": "md5", "path": paths.champion_data.name}]}
    record.write_text(yaml.safe_dump(outs, sort_keys=False), encoding="utf-8")
    dvc("fetch", str(record.relative_to(paths.root)))
    return True


def write_local_copies(paths: ProjectPaths, state: dict[str, Any]) -> None:
    """Refresh ``registry/registry.json`` and (only when it changed) ``registry/champion.json``."""
    write_json(paths.registry / "registry.json", state)
    wanted = pointer(champion_of(state))
    try:
        current = read_json(pointer_file(paths))
    except ValueError:
        current = None
    if current != wanted:
        write_json(pointer_file(paths), wanted)


def sync_champion(paths: ProjectPaths, dvc: Any) -> dict[str, Any] | None:
    """Bring this worker in line with the shared registry: local copies, ``models/champion.dvc`` and the files.

    Run before evaluate (the Airflow task does; by hand: ``feedbackflow registry pull``); a fresh worker then has
    the same champion as every other, pulled by hash from the DVC remote.
    """
    import shutil

    state = Registry.open(paths.root).head()
    write_local_copies(paths, state)
    entry = champion_of(state)
    if entry is None:
        champion_dvc_file(paths).unlink(missing_ok=True)
        shutil.rmtree(paths.champion, ignore_errors=True)
        return None
    write_champion_dvc(paths, entry["model_md5"])
    ignore = paths.models / ".gitignore"
    lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.is_file() else []
    if f"/{paths.champion.name}" not in lines:
        ignore.write_text("\n".join([*lines, f"/{paths.champion.name}"]) + "\n", encoding="utf-8")
    dvc("pull", "--force", str(champion_dvc_file(paths).relative_to(paths.root)))
    return entry
