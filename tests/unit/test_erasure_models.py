"""Models trained on erased rows: marked in the registry; retire_now never leaves the champion on deleted weights."""

from __future__ import annotations

import pytest

from feedbackflow.governance.erasure_models import mark_models
from feedbackflow.storage.registry import Registry
from feedbackflow.storage.registry_store import FolderStore

AT = "2026-12-06T03:00:00+00:00"


@pytest.fixture
def registry(tmp_path) -> Registry:
    registry = Registry(FolderStore(tmp_path / "registry"))
    versions = [
        {"version": "v1", "status": "archived", "model_md5": "m1.dir", "data_versions": {"data/split": "s1.dir"}},
        {"version": "v2", "status": "archived", "model_md5": "m2.dir", "data_versions": {"data/split": "s2.dir"}},
        {"version": "v3", "status": "champion", "model_md5": "m3.dir", "data_versions": {"data/split": "s3.dir"}},
    ]
    registry.update(lambda state: {**state, "champion": "v3", "versions": versions})
    return registry


def test_retrain_next_run_marks_the_versions_and_keeps_the_champion_until_the_grace_period(registry):
    outcome = mark_models(registry, {"s2.dir", "s3.dir"}, "REQ-1", AT, "retrain_next_run", 14)

    state = registry.head()
    assert outcome["versions"] == ["v2", "v3"] and state["champion"] == "v3" and not outcome["retire_weights"]
    marks = {entry["version"]: entry.get("erasures") for entry in state["versions"]}
    assert marks["v1"] is None
    assert marks["v3"] == [
        {"request_id": "REQ-1", "at": AT, "action": "retrain_next_run", "retire_after": "2026-12-20T03:00:00+00:00"}
    ]
    assert state["events"][-1]["action"] == "erasure"


def test_retire_now_moves_the_champion_to_the_newest_unaffected_version(registry):
    outcome = mark_models(registry, {"s2.dir", "s3.dir"}, "REQ-1", AT, "retire_now", 14)

    state = registry.head()
    assert state["champion"] == "v1" == outcome["champion"]
    assert sorted(outcome["retire_weights"]) == ["m2.dir", "m3.dir"] and outcome["keep_weights"] == ["m1.dir"]
    assert {e["version"]: e["status"] for e in state["versions"]} == {
        "v1": "champion",
        "v2": "retired",
        "v3": "retired",
    }


def test_retire_now_with_every_version_affected_leaves_no_champion(registry):
    mark_models(registry, {"s1.dir", "s2.dir", "s3.dir"}, "REQ-1", AT, "retire_now", 0)

    assert registry.head()["champion"] is None and registry.champion() is None


def test_a_request_twice_marks_once(registry):
    mark_models(registry, {"s3.dir"}, "REQ-1", AT, "retrain_next_run", 1)
    mark_models(registry, {"s3.dir"}, "REQ-1", AT, "retrain_next_run", 1)

    assert len(registry.head()["versions"][2]["erasures"]) == 1


def test_the_certificate_page_escapes_what_a_requester_typed(tmp_path):
    from feedbackflow.governance.erasure_certificate import read_certificate, write_certificate

    certificate = {
        "request_id": "<script>alert(1)</script>",
        "requested_by": "a&b",
        "approved_by": None,
        "completed_at": AT,
        "state": "done",
        "key_id": "k",
        "identifier_hashes": 2,
        "rows_removed": {"raw": 1},
        "labels_below_minimum": {},
        "objects_deleted": {"cache": {"objects": ["ab"], "versions": 1}},
        "models": {"action": "retrain_next_run", "versions": [], "champion": "v1"},
        "verification": {"objects_checked": 3, "files_scanned": 4, "found": 0, "sources_holding_subject": 0},
        "error": None,
    }
    write_certificate(tmp_path, certificate)

    page = next(tmp_path.glob("*.html")).read_text(encoding="utf-8")
    assert "<script>" not in page and "&lt;script&gt;" in page and "a&amp;b" in page
    assert read_certificate(tmp_path, certificate["request_id"])["request_id"] == certificate["request_id"]
