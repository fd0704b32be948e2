"""The governance dashboards: Evidently workspace snapshots per run, the governance record, and no personal data
in anything the governance team opens (workspace files, rendered plugin pages)."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from feedbackflow.monitoring import governance, workspace
from feedbackflow.stages import monitor
from tests.helpers import params_settings, section, write_params
from tests.servers import s3_endpoint  # noqa: F401 (fixture)
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
    settings = params_settings(
        monitor={"max_reference_rows": 300, "drift_share": 0.5, "embedding_auc": 0.55, "min_accuracy": 0.0}
    )
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


def _dag_run(run_id: str, logical_date: datetime | None, run_after: datetime):
    """Airflow's own DagRun model, as the task context carries it (an Asset-triggered run has no logical date)."""
    from airflow.sdk.api.datamodels._generated import DagRun

    return DagRun(
        dag_id="nightly_retrain",
        run_id=run_id,
        logical_date=logical_date,
        data_interval_start=logical_date,
        data_interval_end=logical_date,
        run_after=run_after,
        start_date=run_after,
        end_date=None,
        run_type="scheduled" if logical_date else "asset_triggered",
        state="running",
        consumed_asset_events=[],
        partition_key=None,
    )


def test_record_task_puts_one_snapshot_per_run_at_its_logical_date(tmp_path, monkeypatch):
    """The ``record`` task: each run is one point on the dashboard at the night it describes, not at the moment it
    was recorded, and recording a run again (a retry, a rerun) replaces its point instead of adding a second one."""
    from feedbackflow.orchestration import monitor_tasks as tasks

    old = feedback(60, seed=61, batch="20260101T020000-aaaaaaaaaaaa", sequence=1)
    paths = write_project(tmp_path, old, [old], champion=False)
    write_params(paths.root)
    monitor.run(params_settings(), paths)
    monkeypatch.setenv("FEEDBACKFLOW_PROJECT_DIR", str(paths.root))
    nights = {
        "scheduled__2026-03-01T02:00:00+00:00": datetime(2026, 3, 1, 2, 0, tzinfo=UTC),
        "scheduled__2026-03-02T02:00:00+00:00": datetime(2026, 3, 2, 2, 0, tzinfo=UTC),
    }
    recorded_late = datetime(2026, 3, 9, 11, 30, tzinfo=UTC)  # e.g. a backfill a week later
    refs = {}
    for run_id, night in [*nights.items(), next(iter(nights.items()))]:  # the first night twice
        context = {"dag_run": _dag_run(run_id, night, recorded_late)}
        refs.setdefault(run_id, []).append(tasks.record(run_id, "nightly_retrain", context))
    asset_run = "asset_triggered__2026-03-02T06:10:00+00:00"
    due = datetime(2026, 3, 2, 6, 10, tzinfo=UTC)
    refs[asset_run] = [tasks.record(asset_run, "drift_monitor", {"dag_run": _dag_run(asset_run, None, due)})]

    ws = workspace.open_workspace("governance/evidently", paths.root)
    (project,) = ws.list_projects()
    stored = {str(sid): ws.get_run(project.id, sid) for sid in ws.list_runs(project.id)}
    assert len(stored) == 3  # three runs, three points: the re-recorded night replaced its own snapshot
    by_run = {snapshot.metadata["run_id"]: snapshot for snapshot in stored.values()}
    for run_id, night in [*nights.items(), (asset_run, due)]:
        assert by_run[run_id].timestamp == night.replace(tzinfo=None), run_id  # naive UTC, as Evidently's own
        assert str(refs[run_id][-1]["snapshot_id"]) in stored
    first = refs[next(iter(nights))]
    assert first[1]["replaced"] == first[0]["snapshot_id"] and first[0]["snapshot_id"] not in stored
    record = json.loads(paths.governance_record(next(iter(nights))).read_text(encoding="utf-8"))
    assert record["snapshot"]["snapshot_id"] == first[1]["snapshot_id"]


def test_a_night_in_which_no_stage_ran_keeps_its_record_but_adds_no_point(tmp_path, monkeypatch):
    """A night with nothing new (every stage up to date) would repeat the last point's drift and counts at a new
    date: its governance record says why there is no snapshot, and the dashboard keeps one point per run that did
    something."""
    from feedbackflow.orchestration import monitor_tasks as tasks

    old = feedback(60, seed=62, batch="20260101T020000-aaaaaaaaaaaa", sequence=1)
    paths = write_project(tmp_path, old, [old], champion=False)
    write_params(paths.root)
    monitor.run(params_settings(), paths)
    monkeypatch.setenv("FEEDBACKFLOW_PROJECT_DIR", str(paths.root))
    stages = {"ingest": False, "validate": False, "anonymise": False, "monitor": False}
    for run_id, ran in (("night-1", {**stages, "monitor": True}), ("night-2", stages)):
        paths.run_summary.parent.mkdir(parents=True, exist_ok=True)
        summary = {"run_id": run_id, "status": "succeeded", "stages": ran}
        paths.run_summary.write_text(json.dumps(summary), encoding="utf-8")
        night = datetime(2026, 3, 1, tzinfo=UTC)
        tasks.record(run_id, "nightly_retrain", {"dag_run": _dag_run(run_id, night, night)})

    ws = workspace.open_workspace("governance/evidently", paths.root)
    (project,) = ws.list_projects()
    assert [ws.get_run(project.id, sid).metadata["run_id"] for sid in ws.list_runs(project.id)] == ["night-1"]
    idle = json.loads(paths.governance_record("night-2").read_text(encoding="utf-8"))
    assert idle["snapshot"] == {"skipped": tasks.NOTHING_NEW} and idle["drift"]["status"]  # the record is kept
    assert not tasks.nothing_ran({"run_id": "night-2", "status": "failed", "stages": stages}, "night-2")
    assert not tasks.nothing_ran({"run_id": "night-1", "status": "succeeded", "stages": stages}, "night-2")


def test_run_date_prefers_the_logical_date_then_the_interval_end_then_run_after():
    from feedbackflow.orchestration.monitor_tasks import run_date

    due = datetime(2026, 3, 2, 6, 10, tzinfo=UTC)
    night = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    assert run_date({"dag_run": _dag_run("r", night, due)}) == night
    assert run_date({"dag_run": _dag_run("r", None, due)}) == due
    assert run_date(None) is None and run_date({}) is None


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
    assert values["champion_version"] == 3.0
    assert (values["gate_promoted"], values["gate_refused"]) == (0.0, 1.0)  # one bar per run, in its outcome
    assert (values["drift_failed"], values["drift_passed"]) == (1.0, 0.0)
    assert values[workspace.quarantine_column("text_length")] == 0.1
    assert values[workspace.quarantine_column("label_known")] == 0.0
    assert values[workspace.pii_column("PERSON")] == 4.0
    skipped = workspace.governance_values(monitor_summary, {"evaluate": {"gate": {"promote": None}}}, [], [])
    assert skipped["gate_promoted"] is skipped["gate_refused"] is None  # evaluate skipped: no bar on the gate chart
    unchecked = workspace.governance_values({"status": "skipped"}, {}, [], [])
    assert unchecked["drift_failed"] is unchecked["drift_passed"] is None


def test_dashboard_panels_name_each_series_and_draw_outcomes_as_bars(nights):
    from evidently.ui.workspace import Workspace

    paths, _, _ = nights
    project = Workspace(str(paths.root / "governance" / "evidently")).list_projects()[0]
    panels = {panel.title: panel for panel in project.dashboard.model().panels}
    labels = next(panel for title, panel in panels.items() if title.startswith("Predicted-label distribution"))
    (series,) = labels.values
    assert series.legend == "{{label}}"  # Evidently fills in each intent's name, not one word for all
    assert series.metric_labels == {"column": "prediction", "value_type": "share"}
    outcomes = [panel for title, panel in panels.items() if title.startswith(("Gate outcome", "Drift test"))]
    assert len(outcomes) == 2 and all(panel.plot_params["plot_type"] == "bar" for panel in outcomes)
    assert {value.legend for panel in outcomes for value in panel.values} == {"promoted", "refused", "passed", "failed"}
    # the review loop and the coverage behind it: each series a MeanValue of the governance snapshot's columns
    review = [panel for title, panel in panels.items() if title.startswith(("Review", "In-scope coverage", "Expected"))]
    columns = {value.metric_labels["column"] for panel in review for value in panel.values}
    assert columns == {*workspace.REVIEW_SERIES, *workspace.COVERAGE_SERIES}


def test_text_descriptors_use_one_method_whatever_the_sample_size(nights):
    paths, _, _ = nights
    summary = json.loads((paths.stage_reports("monitor") / "summary.json").read_text(encoding="utf-8"))
    for name in ("text_chars", "text_words", "oov_share", "non_letter_share"):
        assert summary["columns"][name]["method"] == "wasserstein", summary["columns"][name]
        assert summary["columns"][name]["threshold"] == 0.1


def test_governance_record_joins_drift_and_counts(nights):
    paths, refs, _ = nights
    record = json.loads(paths.governance_record("scheduled__2026-01-04").read_text(encoding="utf-8"))
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


def test_data_docs_keep_every_run_and_render_offline(tmp_path):
    """Three validate runs, each recorded: the history site lists all three, and no page loads from the internet."""
    import pandas as pd

    from feedbackflow.config import ProjectPaths
    from feedbackflow.monitoring import data_docs
    from feedbackflow.quality import suite
    from feedbackflow.quality.offline import external_loads
    from feedbackflow.quality.outputs import VALIDATION_RESULT_FILE, publish_docs
    from tests.unit.test_validate import GOOD_TS, TAXONOMY, settings

    paths = ProjectPaths(tmp_path)
    spec = suite.RuleSpec.from_settings(settings().validate_, TAXONOMY)
    frame = pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "text": ["my card has not arrived", "jane.doe@example.com", "ok then"],
            "label": [TAXONOMY[0], "bogus", TAXONOMY[1]],
            "channel": ["app", "web", "app"],
            "created_at": [GOOD_TS] * 3,
            "language": ["en"] * 3,
        }
    )
    frame[suite.TYPE_ERROR] = False
    pages = []
    for night in ("night-1", "night-2", "night-3"):
        building = paths.stage_reports("validate") / ".data_docs.partial"
        validator = suite.QualityValidator(spec, docs_dir=building, run_name=night)
        validator.validate_rows(frame)
        docs = paths.stage_reports("validate") / "data_docs"
        publish_docs(building, docs, None, validator.last_result, retry=section("ingest.retry"))
        assert (paths.stage_reports("validate") / "data_docs" / VALIDATION_RESULT_FILE).is_file()
        pages.append(data_docs.add_validation(paths))
    assert data_docs.add_validation(paths) == pages[-1]  # recording the same validation again adds nothing
    site = paths.data_docs_history
    index = (site / "index.html").read_text(encoding="utf-8")
    for night, page in zip(("night-1", "night-2", "night-3"), pages, strict=True):
        assert night in index and page and night in page and (paths.reports / page).is_file()
    assert len(list((site / "validations").rglob("*.html"))) == 3
    for page in [*site.rglob("*.html"), *(paths.stage_reports("validate") / "data_docs").rglob("*.html")]:
        html = page.read_text(encoding="utf-8")
        assert external_loads(html) == [], page
        assert "jane.doe@example.com" not in html and "my card has not arrived" not in html  # counts only
    assert (site / "static" / "vendor" / "js" / "bootstrap-table.min.js").is_file()
    assert 'src="static/vendor/js/jquery.min.js"' in index


def test_dvc_plots_template_is_offline_and_current():
    from feedbackflow.quality.offline import dvc_plots_template, external_loads

    committed = (ROOT / ".dvc" / "plots" / "offline.html").read_text(encoding="utf-8")
    assert committed == dvc_plots_template(), "refresh it: python -m feedbackflow.quality.offline"
    assert external_loads(committed) == [] and "{plot_divs}" in committed and "{scripts}" not in committed
    assert "html_template = plots/offline.html" in (ROOT / ".dvc" / "config").read_text(encoding="utf-8")


def test_an_s3_workspace_holds_the_same_snapshots_and_no_personal_data(nights, s3_endpoint, monkeypatch):  # noqa: F811
    """``monitor.workspace: s3://bucket/prefix``: Evidently's storage goes through fsspec to the S3 endpoint
    (moto's server on loopback here, ``AWS_ENDPOINT_URL`` as for MinIO), one snapshot per recorded run."""
    import boto3

    paths, _, new = nights
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="governance")
    for run_id in ("s3run__0", "s3run__1", "s3run__0"):  # the second s3run__0 is a retry: it replaces its point
        ref = workspace.record_run(paths, "s3://governance/evidently", run_id, ENTITIES)
        governance.write_record(paths, run_id, "drift_monitor", ref)
    ws = workspace.open_workspace("s3://governance/evidently", paths.root)
    project = next(p for p in ws.list_projects() if p.name == workspace.PROJECT_PREFIX + workspace.DEFAULT_MODEL)
    assert len(ws.list_runs(project.id)) == 2
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket="governance")["Contents"]]
    assert keys and all(key.startswith("evidently/") for key in keys)
    for key in keys:
        body = s3.get_object(Bucket="governance", Key=key)["Body"].read().decode("utf-8", errors="replace")
        assert not any(value in body for value in PLANTED), key
        assert not any(message in body for message in new["text"]), key


def test_a_dashboard_made_before_the_review_panels_gains_them(tmp_path):
    ws = workspace.open_workspace("evidently", tmp_path)
    name = workspace.PROJECT_PREFIX + workspace.DEFAULT_MODEL
    ws.create_project(name, description="made by an earlier release, before the review loop's panels")
    project = workspace.project_for(ws, workspace.DEFAULT_MODEL, ["text_length"], ["PERSON"])
    titles = [panel.title for panel in project.dashboard.model().panels]
    assert "Review loop per night: rows sent, labels taken back" in titles
    again = workspace.project_for(ws, workspace.DEFAULT_MODEL, ["text_length"], ["PERSON"])
    assert [panel.title for panel in again.dashboard.model().panels] == titles  # added once, not every night
