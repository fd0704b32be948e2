"""Model versions trained on an erased subject's rows: marked in the registry, then retrained or retired.

A version is affected when a data version it records (``data_versions``: the DVC hashes of raw, validated,
anonymised and split it was trained from) is one the erasure deleted. What follows is ``erasure.policy``:

* ``retrain_next_run``: the rows are gone from the newest split, so ``dvc.lock`` no longer matches it and the next
  nightly run retrains (the gate still applies); the affected versions are marked with ``retire_after``, the date
  after which :func:`retire_due` (``feedbackflow forget --sweep``) retires them.
* ``retire_now``: the affected versions are retired at once.

Retiring a version sets its status to ``retired`` and its marks' ``retired_at``; a champion among them is first
replaced by the newest earlier champion that is neither affected nor retired (or none), in the same registry write,
so the champion never points at weights about to be deleted. The weights are deleted afterwards, from the cache and
every remote, like the data.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from feedbackflow.storage.registry import Registry


def affected_versions(state: dict[str, Any], erased: set[str]) -> list[str]:
    """Versions whose recorded data versions include an erased object."""
    return [
        entry["version"]
        for entry in state["versions"]
        if erased & {str(md5) for md5 in (entry.get("data_versions") or {}).values() if md5}
    ]


def mark_models(
    registry: Registry, erased: set[str], request_id: str, at: str, policy: str, grace_days: float
) -> dict[str, Any]:
    """Record the erasure on every affected version; with ``retire_now`` move the champion off them.

    Returns:
        ``versions`` (affected), ``action``, ``champion`` (after), ``retire_weights`` (model hashes to delete now).
    """
    retire_after = (datetime.fromisoformat(at) + timedelta(days=grace_days)).isoformat(timespec="seconds")
    outcome: dict[str, Any] = {"versions": [], "action": policy, "retire_weights": [], "keep_weights": []}

    def change(state: dict[str, Any]) -> dict[str, Any]:
        affected = affected_versions(state, erased)
        outcome["versions"] = affected
        if not affected:
            return state
        for entry in state["versions"]:
            if entry["version"] in affected:
                mark = {"request_id": request_id, "at": at, "action": policy}
                mark |= {"retired_at": at} if policy == "retire_now" else {"retire_after": retire_after}
                if mark["request_id"] not in {m["request_id"] for m in entry.get("erasures", [])}:
                    entry.setdefault("erasures", []).append(mark)
        outcome["keep_weights"] = [e["model_md5"] for e in state["versions"] if e["version"] not in affected]
        if policy == "retire_now":
            outcome["retire_weights"] = [e["model_md5"] for e in state["versions"] if e["version"] in affected]
            _retire(state, set(affected), request_id, at)
        state["events"].append(
            {"at": at, "action": "erasure", "version": ",".join(affected), "by": "erasure", "reason": request_id}
        )
        return state

    state = registry.update(change)
    outcome["champion"] = state.get("champion")
    return outcome


def due_versions(state: dict[str, Any], now: str) -> list[str]:
    """Versions not retired yet with an erasure mark whose ``retire_after`` has passed at ``now``."""
    moment = datetime.fromisoformat(now)
    return [
        entry["version"]
        for entry in state["versions"]
        if entry["status"] != "retired"
        and any(
            "retire_after" in mark and datetime.fromisoformat(mark["retire_after"]) <= moment
            for mark in entry.get("erasures", [])
        )
    ]


def retire_due(registry: Registry, now: str) -> dict[str, Any]:
    """Retire every version past its grace period in one registry write (the champion moves off them first).

    Returns:
        ``versions`` (retired now), ``champion`` (after), ``retire_weights`` (model hashes of every retired version,
        those retired earlier too, so a sweep cut short deletes the rest next time) and ``keep_weights``.
    """
    outcome: dict[str, Any] = {"versions": [], "retire_weights": [], "keep_weights": []}

    def change(state: dict[str, Any]) -> dict[str, Any]:
        due = due_versions(state, now)
        outcome["versions"] = due
        if due:
            requests = sorted(
                {m["request_id"] for e in state["versions"] if e["version"] in due for m in e.get("erasures", [])}
            )
            _retire(state, set(due), ", ".join(requests), now)
            state["events"].append(
                {"at": now, "action": "retire", "version": ",".join(due), "by": "erasure", "reason": "grace period"}
            )
        retired = [e for e in state["versions"] if e["status"] == "retired"]
        outcome["retire_weights"] = [e["model_md5"] for e in retired]
        outcome["keep_weights"] = [e["model_md5"] for e in state["versions"] if e["status"] != "retired"]
        return state

    state = registry.update(change)
    outcome["champion"] = state.get("champion")
    return outcome


def _retire(state: dict[str, Any], versions: set[str], request_id: str, at: str) -> None:
    """Move the champion off ``versions``, then mark them ``retired`` (their weights are deleted next)."""
    _move_champion(state, versions, request_id, at)
    for entry in state["versions"]:
        if entry["version"] in versions:
            entry["status"] = "retired"
            for mark in entry.get("erasures", []):
                mark.setdefault("retired_at", at)


def _move_champion(state: dict[str, Any], affected: set[str], request_id: str, at: str) -> None:
    """Replace an affected champion by the newest earlier champion neither affected nor retired, or by none."""
    if state["champion"] not in affected:
        return
    earlier = [e for e in state["versions"] if e["status"] == "archived" and e["version"] not in affected]
    previous = state["champion"]
    for entry in state["versions"]:
        if entry["version"] == previous:
            entry["status"] = "archived"
    state["champion"] = earlier[-1]["version"] if earlier else None
    if earlier:
        earlier[-1]["status"] = "champion"
    reason = f"erasure {request_id}: the champion was trained on erased rows"
    state["events"].append(
        {"at": at, "action": "rollback", "version": state["champion"], "by": "erasure", "reason": reason}
    )
