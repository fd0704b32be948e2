"""The governance dashboards: Evidently workspace snapshots per run, the governance record, and no personal data
in anything the governance team opens (workspace files, rendered plugin pages)."""

from __future__ import annotations

import importlib.util
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from feedbackflow.monitoring import governance, workspace
from feedbackflow.settings import parse_settings
from feedbackflow.stages import monitor
from tests.unit.test_monitor import SHIFTED, feedback, write_project

ROOT = Path(__file__).resolve().parents[2]
PLANTED = ["jane.doe@example.com", "Jane Doe", "+44 20 7946 0958", "GB82WEST12345698765432"]
ENTITIES = ["PERSON", "EMAIL_ADDRESS"]


def plant(frame):
    """Personal data the anonymiser (hypothetically) missed: it must still reach no governance artifact."""
    frame = frame.copy()
    for i, value in enumerate(PLANTED):
        frame.loc[frame.index[i], "text"] = f"please call {value} about my card"
    return frame


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    """A project after a drift check of a batch carrying planted PII, recorded as three runs."""
    tmp_path = tmp_path_factory.mktemp("dash")
    old = feedback(400, seed=51, batch="20260101T020000-aaaaaaaaaaaa", sequence=1)
    new = plant(feedback(300, seed=52, weights=SHIFTED, batch="20260102T020000-bbbbbbbbbbbb", sequence=2))
    paths = write_project(tmp_path, old, [old, new])
    settings = parse_settings({"monitor": {"max_reference_rows": 300}})
    monitor.run(settings, paths)
    start = datetime(2026, 1, 2, 6, 0)
    refs = []
    for night in range(3):
        run_id = f"scheduled__2026-01-0{night + 2}"
        ref = workspace.record_run(paths, "governance/evidently", run_id, ENTITIES, timestamp=start + timedelta(night))
        governance.write_record(paths, run_id, "drift_monitor", ref)
        refs.append(ref)
    return paths, refs, new


def test_one_project_per_model_with_a_snapshot_per_run(nights):
    paths, refs, _ = nights
    ws = workspace.open_workspace("governance/evidently", paths.root)
    projects = [p for p in ws.list_projects() if p.name == workspace.PROJECT_PREFIX + workspace.DEFAULT_MODEL]
    assert len(projects) == 1 and {ref["project_id"] for ref in refs} == {str(projects[0].id)}
    snapshots = ws.list_runs(projects[0].id)
    assert len(snapshots) == 3
    titles = [panel.title for panel in projects[0].dashboard.model().panels]
    for title in ("Quarantine rate by rule", "PII entities removed by type", "Champion version"):
        assert title in titles
    stored = ws.get_run(projects[0].id, refs[-1]["snapshot_id"])
    assert stored is not None
    text = json.dumps(stored.dict(), default=str)
    for kind in ("DriftedColumnsCount", "EmbeddingsDrift", "ValueDrift", "MeanValue", "Accuracy", "UniqueValueCount"):
        assert f"metric_v2:{kind}" in text, kind


def test_governance_values_carry_counts_gate_and_version():
    monitor_summary = {
        "status": "checked",
        "drift_failed": True,
        "governance": {
            "quarantine_share": 0.1,
            "quarantine_share_by_rule": {"text_length": 0.1},
            "pii_entities_removed": 4,
            "pii_by_entity": {"PERSON": 4},
        },
    }
    run = {"evaluate": {"gate": {"promote": False}}, "champion": {"version": "v3"}}
    values = workspace.governance_values(monitor_summary, run, ["text_length", "label_known"], ["PERSON", "URL"])
    assert values["champion_version"] == 3.0 and values["gate_promoted"] == 0.0 and values["drift_failed"] == 1.0
    assert values[workspace.quarantine_column("text_length")] == 0.1
    assert values[workspace.quarantine_column("label_known")] == 0.0
    assert values[workspace.pii_column("PERSON")] == 4.0
    skipped = workspace.governance_values(monitor_summary, {"evaluate": {"gate": {"promote": None}}}, [], [])
    assert skipped["gate_promoted"] is None  # evaluate skipped: no point on the gate chart


def test_governance_record_joins_drift_and_counts(nights):
    paths, refs, _ = nights
    record = json.loads(governance.record_file(paths, "scheduled__2026-01-04").read_text(encoding="utf-8"))
    assert record["snapshot"]["snapshot_id"] == refs[-1]["snapshot_id"]
    assert record["drift"]["status"] == "checked"
    assert record["governance"]["anonymiser_config_hash"] == "abc123"


def test_no_planted_pii_or_message_text_in_workspace_or_pages(nights, monkeypatch):
    paths, _, new = nights
    from fastapi.testclient import TestClient

    spec = importlib.util.spec_from_file_location("plugin_pii_scan", ROOT / "plugins" / "feedbackflow_plugin.py")
    assert spec and spec.loader
    plugin = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plugin)
    monkeypatch.setenv("FEEDBACKFLOW_PROJECT_DIR", str(paths.root))
    client = TestClient(plugin.create_app(require_auth=False))
    pages = [client.get("/").text, client.get("/runs/drift_monitor/scheduled__2026-01-04").text]
    pages += [client.get(f"/files/monitor/{name}").text for name in ("drift.html", "summary.json", "metrics.json")]
    assert "Drift check FAILED" in pages[1] or "Drift check passed" in pages[1]
    files = [
        path for folder in ("governance", "reports") for path in (paths.root / folder).rglob("*") if path.is_file()
    ]
    assert any("snapshots" in str(path) for path in files)
    texts = [path.read_text(encoding="utf-8", errors="ignore") for path in files] + pages
    messages = [message for message in new["text"] if len(message) > 20]
    for text in texts:
        for value in PLANTED:
            assert value not in text
        assert not any(message in text for message in messages)
