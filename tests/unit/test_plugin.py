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
    assert "text_length: 10" in text and "PERSON: 5" in text
    missing = client.get("/runs/nightly_retrain/never-ran")
    assert missing.status_code == 200 and "kept no record" in missing.text


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
