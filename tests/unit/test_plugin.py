"""The governance plugin (plugins/feedbackflow_plugin.py): pages through FastAPI's TestClient, access through the
real Airflow API server app and auth manager."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_FILE = ROOT / "plugins" / "feedbackflow_plugin.py"


@pytest.fixture(scope="module")
def plugin() -> ModuleType:
    spec = importlib.util.spec_from_file_location("feedbackflow_plugin_under_test", PLUGIN_FILE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with a few reports, plus a secret file next to (outside) reports/."""
    reports = tmp_path / "project" / "reports"
    (reports / "monitor").mkdir(parents=True)
    (reports / "evaluate").mkdir()
    (reports / "runs").mkdir()
    (reports / "monitor" / "drift.html").write_text("<html><body><h1>Data drift</h1></body></html>")
    (reports / "evaluate" / "gate.json").write_text(json.dumps({"promote": True, "reasons": []}))
    summary = {
        "run_id": "scheduled__2026-11-01<b>",
        "finished_at": "2026-11-01T03:00:00+00:00",
        "evaluate": {"gate": {"promote": False, "reasons": ["macro_f1 below champion"]}},
        "monitor": {"dataset_drift": False, "drift_failed": True, "drift_share": 0.5, "drifted_columns": ["label"]},
        "experiment": "run-scheduled-2026-11-01",
    }
    (reports / "run_summary.json").write_text(json.dumps(summary))
    (reports / "runs" / "run-scheduled-2026-11-01.json").write_text(json.dumps(summary))
    (reports / "notes.bin").write_bytes(b"\x00\x01")  # type not served
    (reports / ".hidden.json").write_text("{}")
    (tmp_path / "project" / "secret.json").write_text(json.dumps({"password": "hunter2"}))
    monkeypatch.setenv("FEEDBACKFLOW_PROJECT_DIR", str(tmp_path / "project"))
    return tmp_path / "project"


@pytest.fixture
def client(plugin: ModuleType, project: Path):
    from fastapi.testclient import TestClient

    return TestClient(plugin.create_app(require_auth=False))


def test_plugin_module_is_light_and_declares_the_ui_entries(plugin: ModuleType) -> None:
    cls = plugin.FeedbackflowPlugin
    assert cls.name == "feedbackflow"
    (app,) = cls.fastapi_apps
    assert app["url_prefix"] == "/feedbackflow"
    assert app["app"] is plugin.reports_app
    menu, per_run = cls.external_views
    assert menu["name"] == "Governance" and menu["destination"] == "nav"
    assert menu["href"] == "feedbackflow/"  # relative: resolved against the UI's <base href>
    assert per_run["destination"] == "dag_run"
    assert per_run["href"] == "feedbackflow/runs/{DAG_ID}/{RUN_ID}"  # the UI fills in the run
    for view in cls.external_views:
        assert view["url_route"] and not view["url_route"].startswith("/")


def test_importing_the_plugin_does_not_import_fastapi() -> None:
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('p', {str(PLUGIN_FILE)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "heavy = [name for name in ('fastapi', 'torch', 'pandas', 'feedbackflow') if name in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_index_lists_runs_and_reports(client) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert 'href="files/monitor/drift.html"' in page
    assert 'href="files/run_summary.json"' in page
    assert 'href="files/evaluate/gate.json"' in page
    assert 'href="files/runs/run-scheduled-2026-11-01.json"' in page
    assert "scheduled__2026-11-01&lt;b&gt;" in page and "<b>" not in page  # escaped
    assert "notes.bin" not in page and ".hidden.json" not in page and "secret" not in page


def test_index_shows_the_review_loop_per_night(client, project: Path) -> None:
    from feedbackflow.config import ProjectPaths
    from feedbackflow.labelling import store

    paths = ProjectPaths(project)
    sent = "2026-12-01T02:30:00+00:00"
    queue = [
        {"id": "a", "reason": "unknown", "predicted": "unknown", "sent_at": sent},
        {"id": "b", "reason": "uncertain", "predicted": "billing", "sent_at": sent},
        {"id": "c", "reason": "qc", "predicted": "billing", "sent_at": sent},
        {"id": "d", "reason": "qc", "predicted": "login", "sent_at": sent},
    ]
    at = "2026-12-01T08:30:00+00:00"  # six hours after sending
    labels = [
        {"id": "a", "label": "oos", "annotated_at": at, "reviewers": 1},
        {"id": "c", "label": "billing", "annotated_at": at, "reviewers": 2},
        {"id": "d", "label": "billing", "annotated_at": at, "reviewers": 1},
    ]
    store.append_lines(paths.review_queue, queue)
    store.append_lines(paths.review_labels, labels)
    store.write_lines(paths.review_disputes, [{"id": "b", "values": []}])
    page = client.get("/").text
    assert "<h2>Review loop</h2>" in page
    # sent 4 (1 unknown), labelled 3, disputed 1, turnaround 6 h, QC 2 labelled with half agreeing with the model,
    # reviewer agreement 1 of 2 rows seen by several reviewers, unknown share 0.25
    assert "<td>2026-12-01</td><td>4</td><td>1</td><td>3</td>" in page
    assert '<td class="fail">1</td><td>6.000</td>' in page
    assert "<td>2</td><td>0.500</td><td>0.500</td>\n<td>0.250</td>" in page


def test_api_lists_the_same(client) -> None:
    data = client.get("/api/reports").json()
    assert data["latest_run"]["promote"] is False
    assert data["latest_run"]["dataset_drift"] is False  # Evidently's share test alone ...
    assert data["latest_run"]["drift_check"] == "failed"  # ... is not the verdict
    assert data["latest_run"]["drifted_columns"] == "label"
    assert {report["path"]: report["available"] for report in data["key_reports"]} == {
        "monitor/drift.html": True,
        "run_summary.json": True,
        "evaluate/gate.json": True,
        "validate/data_docs/index.html": False,
        "data_docs/index.html": False,
    }
    assert [run["path"] for run in data["runs"]] == ["runs/run-scheduled-2026-11-01.json"]
    assert {item["path"] for item in data["files"]} == {
        "monitor/drift.html",
        "evaluate/gate.json",
        "run_summary.json",
        "runs/run-scheduled-2026-11-01.json",
    }


def test_reports_are_served(client) -> None:
    response = client.get("/files/monitor/drift.html")
    assert response.status_code == 200
    assert "Data drift" in response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"].startswith("sandbox")
    assert response.headers["x-content-type-options"] == "nosniff"
    gate = client.get("/files/evaluate/gate.json")
    assert gate.status_code == 200
    assert gate.json() == {"promote": True, "reasons": []}


def test_data_docs_are_a_key_report_once_built(client, project: Path) -> None:
    docs = project / "reports" / "validate" / "data_docs"
    docs.mkdir(parents=True)
    (docs / "index.html").write_text("<html><body>Data Docs</body></html>")
    assert 'href="files/validate/data_docs/index.html"' in client.get("/").text
    assert "Data Docs" in client.get("/files/validate/data_docs/index.html").text


def test_reports_are_read_at_request_time(client, project: Path) -> None:
    assert client.get("/files/monitor/later.html").status_code == 404
    (project / "reports" / "monitor" / "later.html").write_text("<p>new</p>")
    assert client.get("/files/monitor/later.html").text == "<p>new</p>"
    assert "monitor/later.html" in client.get("/").text


@pytest.mark.parametrize(
    "path",
    [
        "/files/..%2Fsecret.json",
        "/files/%2E%2E/secret.json",
        "/files/monitor/..%2F..%2Fsecret.json",
        "/files/..%5Csecret.json",
        "/files/%2Fetc%2Fpasswd",
        "/files//etc/passwd",
        "/files/.hidden.json",
        "/files/notes.bin",
        "/files/monitor",
        "/files/missing.json",
    ],
)
def test_traversal_and_unserved_files_are_refused(client, path: str) -> None:
    response = client.get(path)
    assert response.status_code in (400, 404), path
    assert "hunter2" not in response.text


def test_symlink_out_of_reports_is_refused(client, project: Path) -> None:
    link = project / "reports" / "leak.json"
    try:
        link.symlink_to(project / "secret.json")
    except OSError:  # pragma: no cover - platforms without symlinks
        pytest.skip("symlinks not supported")
    assert client.get("/files/leak.json").status_code == 404
    assert "leak.json" not in client.get("/").text


def test_missing_reports_folder(plugin: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    monkeypatch.setenv("FEEDBACKFLOW_PROJECT_DIR", str(tmp_path / "empty"))
    client = TestClient(plugin.create_app(require_auth=False))
    response = client.get("/")
    assert response.status_code == 200
    assert "No reports yet" in response.text
    assert client.get("/files/run_summary.json").status_code == 404


def test_login_is_required_by_default(plugin: ModuleType, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    monkeypatch.delenv("FEEDBACKFLOW_REPORTS_PUBLIC", raising=False)
    assert plugin.auth_required()
    client = TestClient(plugin.create_app())
    assert client.get("/").status_code == 401
    assert client.get("/files/evaluate/gate.json").status_code == 401
    assert client.get("/runs/nightly_retrain/manual").status_code == 401
    # A report site's library files (no data) load without a session: the sandboxed report page sends none.
    static = project / "reports" / "data_docs" / "static" / "vendor" / "css"
    static.mkdir(parents=True)
    (static / "bootstrap.min.css").write_text("body{margin:0}")
    (project / "reports" / "data_docs" / "index.html").write_text("<html>docs</html>")
    (project / "reports" / "data_docs" / "static" / "page.html").write_text("<html>not an asset</html>")
    asset = client.get("/files/data_docs/static/vendor/css/bootstrap.min.css")
    assert asset.status_code == 200 and asset.headers["content-type"].startswith("text/css")
    assert client.get("/files/data_docs/index.html").status_code == 401
    assert client.get("/files/data_docs/static/page.html").status_code == 404  # only asset types skip the login
    assert client.get("/files/data_docs/static/../../secret.json").status_code in {401, 404}
    monkeypatch.setenv("FEEDBACKFLOW_REPORTS_PUBLIC", "true")
    assert not plugin.auth_required()


def test_lazy_app_serves_under_a_mount(plugin: ModuleType, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mounted like Airflow's API server mounts fastapi_apps (app.mount(url_prefix, app))."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    monkeypatch.setenv("FEEDBACKFLOW_REPORTS_PUBLIC", "true")
    root = FastAPI()
    root.mount(plugin.URL_PREFIX, plugin.LazyReportsApp())
    client = TestClient(root)
    assert 'href="files/monitor/drift.html"' in client.get("/feedbackflow/").text
    assert client.get("/feedbackflow/files/evaluate/gate.json").json()["promote"] is True
    assert client.get("/feedbackflow/files/..%2Fsecret.json").status_code == 404


def test_airflow_plugins_manager_discovers_the_plugin(tmp_path: Path) -> None:
    """Airflow's own plugins manager, in a fresh interpreter pointed at plugins/."""
    code = (
        "import json\n"
        "from airflow import plugins_manager\n"
        "info = {p['name']: p for p in plugins_manager.get_plugin_info()}\n"
        "apps, _ = plugins_manager.get_fastapi_plugins()\n"
        "print(json.dumps({'info': info, 'prefixes': [a['url_prefix'] for a in apps],\n"
        "                  'errors': plugins_manager.get_import_errors()}, default=str))\n"
    )
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "false",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert not data["errors"], data["errors"]
    info = data["info"]["feedbackflow"]
    assert "/feedbackflow" in data["prefixes"]
    assert [view["name"] for view in info["external_views"]] == ["Governance", "Governance"]
    assert [view["destination"] for view in info["external_views"]] == ["nav", "dag_run"]
    assert info["source"].endswith("feedbackflow_plugin.py")


def test_per_run_view_joins_the_records_and_escapes(client, project: Path) -> None:
    run = {
        "run_id": "manual__<script>",
        "data_versions": {"data/split": "d41d8cd98f00b204e9800998ecf8427e.dir"},
        "validate": {
            "rows_read": 100,
            "rows_accepted": 90,
            "rows_quarantined": 10,
            "quarantined_by_rule": {"text_length": 10},
        },
        "anonymise": {"key_id": "k-1", "rows": 90, "rows_changed": 12, "entities_replaced": {"PERSON": 5}},
        "evaluate": {"gate": {"promote": None, "reasons": []}},
        "champion": {"version": "v2", "model_sha256": "ab" * 32},
    }
    from feedbackflow.config import experiment_name

    (project / "reports" / "runs" / f"{experiment_name(run['run_id'])}.json").write_text(json.dumps(run))
    page = client.get("/runs/nightly_retrain/manual__<script>")
    assert page.status_code == 200
    text = page.text
    assert "manual__&lt;script&gt;" in text and "<script>" not in text
    assert "d41d8cd98f00b204e9800998ecf8427e.dir" in text and "k-1" in text and "v2" in text
    assert "skipped" in text  # evaluate skipped: the gate says so
    assert 'href="../../lineage/v2"' in text  # the champion's lineage graph, relative to /feedbackflow/runs/<dag>/<run>
    assert "text_length: 10" in text and "PERSON: 5" in text
    missing = client.get("/runs/nightly_retrain/never-ran")
    assert missing.status_code == 200 and "kept no record" in missing.text


def test_per_run_view_shows_the_review_loop_a_failed_server_and_coverage_below_the_minimum(
    client, project: Path
) -> None:
    from feedbackflow.config import experiment_name

    down = "SourceUnavailableError: Label Studio at http://127.0.0.1:8090: ConnectionError"
    run = {
        "run_id": "scheduled__2026-12-06",
        "evaluate": {
            "gate": {"promote": False, "reasons": ["FAIL: challenger in-scope coverage 0.5000 < minimum 0.6000"]},
            "out_of_scope": {
                "in_scope_coverage": 0.5,
                "min_in_scope_coverage": 0.6,
                "review_load": 310,
                "review_budget": 200,
            },
        },
        "review": {
            "pull": {"mode": "label_studio", "status": "failed", "error": down},
            "push": {"mode": "label_studio", "status": "ok", "sent": 200},
            "night": {"sent": 200, "unknown_sent": 120, "labelled": 0, "disputed": 1, "turnaround_hours": None},
        },
    }
    (project / "reports" / "runs" / f"{experiment_name(run['run_id'])}.json").write_text(json.dumps(run))
    text = client.get("/runs/nightly_retrain/scheduled__2026-12-06").text
    assert "<h2>Review loop</h2>" in text
    assert f'class="fail">failed (label_studio): {down} (the night went on without it)' in text
    assert 'class="fail">0.500 (gate minimum 0.600)' in text  # coverage under the gate's minimum, in red
    assert 'class="fail">310 rows (budget 200)' in text  # more unknown rows a night than reviewers can label
    assert "sent 200 (unknown 120), labelled 0, disputed 1" in text


def test_per_run_view_shows_a_planted_value_missed_in_red_and_rows_held_back_by_language(client, project: Path) -> None:
    from feedbackflow.config import experiment_name

    run = {
        "run_id": "scheduled__held",
        "anonymise": {
            "rows": 1000,
            "rows_held_back": 4,
            "rows_held_back_by_language": {"zh": 2, "es": 1},
            "leak_gate": {"passed": True, "planted_value_missed": 1, "canary_hits": {"PERSON": 1}},
        },
    }
    (project / "reports" / "runs" / f"{experiment_name(run['run_id'])}.json").write_text(json.dumps(run))
    text = client.get("/runs/nightly_retrain/scheduled__held").text
    assert '<td class="fail">planted value missed in 1 row(s) (PERSON)' in text
    assert "language es: 1" in text and "language zh: 2" in text and ">4<br>" in text


def test_a_failed_night_is_recorded_and_its_reason_shown(client, project: Path) -> None:
    """The DAG's failure callback writes the failed night's summary from the stage's record; the page shows it."""
    from types import SimpleNamespace

    from feedbackflow.orchestration.tasks import record_failed_night

    failed = project / ".work" / "failed" / "validate" / "20261206T020500Z-scheduled__bad"
    failed.mkdir(parents=True)
    message = "broken.csv row 1: missing required column(s) label (rule 'required_columns')"
    record = {"stage": "validate", "run_id": "scheduled__bad", "exit_code": 65, "message": message, "kept": []}
    (failed / "failure.json").write_text(json.dumps(record))
    context = {
        "run_id": "scheduled__bad",
        "ti": SimpleNamespace(task_id="validate"),
        "dag_run": SimpleNamespace(run_type="scheduled", run_id="scheduled__bad"),
        "params": {"reason": None},
    }
    record_failed_night(context)

    summary = json.loads((project / "reports" / "run_summary.json").read_text())
    assert summary["run_id"] == "scheduled__bad" and summary["status"] == "failed"
    assert summary["failed"] == {
        "tasks": ["validate"],
        "stage": "validate",
        "exit_code": 65,
        "message": message,
        "kept": ".work/failed/validate",
    }
    assert summary["trigger"]["run_type"] == "scheduled"
    text = client.get("/runs/nightly_retrain/scheduled__bad").text
    assert "The run failed" in text and "(exit 65)" in text and "missing required column(s) label" in text


ACCESS_SCRIPT = """
import json
from fastapi.testclient import TestClient
from airflow.api_fastapi.app import create_app, get_auth_manager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
from airflow.models.revoked_token import RevokedToken
from airflow.settings import engine

RevokedToken.__table__.create(engine, checkfirst=True)  # the one metadata table token checks read
app = create_app(apps="core")
manager = get_auth_manager()
result = {"manager": type(manager).__name__}
with TestClient(app) as client:
    for name in ("governance_lead", "analyst"):
        token = manager.generate_jwt(SimpleAuthManagerUser(username=name, role="admin"))
        headers = {"Authorization": "Bearer " + token}
        result[name] = [client.get(path, headers=headers).status_code
                        for path in ("/feedbackflow/", "/feedbackflow/runs/nightly_retrain/manual",
                                     "/feedbackflow/files/evaluate/gate.json")]
    result["anonymous"] = client.get("/feedbackflow/").status_code
print(json.dumps(result))
"""


def test_only_governance_users_get_the_views(tmp_path: Path, project: Path) -> None:
    """Airflow's API server app with the governance auth manager: a listed user is let in, an admin who is not
    a governance user is refused (403), and an anonymous request is refused (401)."""
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "false",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow.db'}",
        "AIRFLOW__CORE__AUTH_MANAGER": "feedbackflow.monitoring.access.GovernanceAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "governance_lead:admin,analyst:admin",
        "AIRFLOW__API_AUTH__JWT_SECRET": "test-secret-not-used-elsewhere",
        "FEEDBACKFLOW_GOVERNANCE_USERS": "governance_lead",
        "FEEDBACKFLOW_PROJECT_DIR": str(project),
    }
    env.pop("FEEDBACKFLOW_REPORTS_PUBLIC", None)
    result = subprocess.run(
        [sys.executable, "-c", ACCESS_SCRIPT], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert data["manager"] == "GovernanceAuthManager"
    assert data["governance_lead"] == [200, 200, 200]
    assert data["analyst"] == [403, 403, 403]
    assert data["anonymous"] == 401


def test_index_lists_erasure_requests_and_their_state(client, project: Path) -> None:
    from tests.helpers import write_params

    write_params(project)
    records = project / "governance" / "erasure"
    records.mkdir(parents=True)
    certificate = {
        "request_id": "DSR-1<i>",
        "state": "incomplete",
        "received_at": "2026-12-06T03:00:00+00:00",
        "completed_at": None,
        "rows_removed": {"raw": 3, "split": 2},
        "objects_deleted": {"cache": {"objects": ["ab"], "versions": 2}, "general": {"objects": [], "versions": 1}},
        "models": {"versions": ["v2"]},
        "verification": {"found": 0},
    }
    (records / "DSR-1_i_.json").write_text(json.dumps(certificate))

    page = client.get("/").text

    assert "Erasure requests" in page and "DSR-1&lt;i&gt;" in page and "<i>" not in page
    assert '<td class="fail">incomplete</td>' in page and "<td>5</td>" in page and "<td>3</td>" in page
