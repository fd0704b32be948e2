"""Airflow UI plugin: browse feedbackflow's reports (drift, run summaries, promotion gate) from the Airflow UI.

A small FastAPI app is mounted on the Airflow API server under ``/feedbackflow`` and an external view adds
"Drift reports" to the UI's *Browse* menu, rendering that app inside the UI. It serves, read-only, the files under
``$FEEDBACKFLOW_PROJECT_DIR/reports`` (the working directory when the variable is unset), looked up at request time
so reports written after the API server started are shown.

* ``/feedbackflow/``               index: latest run, key reports, past runs, every report file
* ``/feedbackflow/files/<path>``   one report file (``.html``, ``.json``, ...), confined to the reports folder
* ``/feedbackflow/api/reports``    the same listing as JSON

Requests need an Airflow login (the UI's session cookie or an ``Authorization: Bearer`` token) unless
``FEEDBACKFLOW_REPORTS_PUBLIC=true``. HTML reports are served with a ``Content-Security-Policy: sandbox`` header so
their scripts run in an opaque origin, away from the Airflow session.

Importing this module is cheap (no FastAPI, no project code): the app is built on its first request, because
every Airflow component (scheduler, workers, ...) imports the plugins folder, while only the API server serves it.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.plugins_manager import AirflowPlugin

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    from fastapi import FastAPI

    Scope = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
    Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

URL_PREFIX = "/feedbackflow"
UI_ROUTE = "feedbackflow-reports"

# The reports a user looks for first, relative to the reports folder.
KEY_REPORTS: dict[str, str] = {
    "monitor/drift.html": "Drift report (Evidently)",
    "run_summary.json": "Latest run summary",
    "evaluate/gate.json": "Promotion gate (challenger vs champion)",
    "validate/data_docs/index.html": "Data quality (Great Expectations Data Docs)",
}
RUNS_DIR = "runs"
# Only these file types are listed and served; anything else in the folder stays private.
SERVED_SUFFIXES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".csv": "text/csv; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}
MAX_LISTED_FILES = 1000
MAX_LISTED_RUNS = 50
MAX_SUMMARY_BYTES = 2_000_000


def reports_dir() -> Path:
    """The reports folder of the project, read from the environment on every call."""
    project = os.environ.get("FEEDBACKFLOW_PROJECT_DIR") or os.getcwd()
    return Path(project) / "reports"


def auth_required() -> bool:
    """Whether the reports need an Airflow login (default) or are public (``FEEDBACKFLOW_REPORTS_PUBLIC=true``)."""
    return os.environ.get("FEEDBACKFLOW_REPORTS_PUBLIC", "").strip().lower() not in {"1", "true", "yes", "on"}


def resolve_report(root: Path, relative: str) -> Path | None:
    """The file ``relative`` names inside ``root``, or None when it is missing, hidden, of an unserved type or
    outside ``root`` (``..``, absolute paths and symlinks leading out are all refused)."""
    if not relative or "\x00" in relative or "\\" in relative:
        return None
    parts = Path(relative).parts
    if Path(relative).is_absolute() or any(part in {"..", "."} or part.startswith(".") for part in parts):
        return None
    try:
        base = root.resolve(strict=True)
        candidate = (base / relative).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not candidate.is_relative_to(base) or not candidate.is_file():
        return None
    if candidate.suffix.lower() not in SERVED_SUFFIXES:
        return None
    return candidate


def list_reports(root: Path) -> list[dict[str, Any]]:
    """Every servable report file under ``root``, newest first (hidden files and folders skipped)."""
    if not root.is_dir():
        return []
    base = root.resolve()
    found: list[dict[str, Any]] = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in filenames:
            path = Path(dirpath) / filename
            if filename.startswith(".") or path.suffix.lower() not in SERVED_SUFFIXES:
                continue
            if resolve_report(base, path.relative_to(base).as_posix()) is None:
                continue
            stat = path.stat()
            found.append({"path": path.relative_to(base).as_posix(), "bytes": stat.st_size, "modified": stat.st_mtime})
            if len(found) >= MAX_LISTED_FILES:
                break
        if len(found) >= MAX_LISTED_FILES:
            break
    found.sort(key=lambda item: (-item["modified"], item["path"]))
    return found


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        if path.stat().st_size > MAX_SUMMARY_BYTES:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _run_row(relative: str, summary: dict[str, Any]) -> dict[str, Any]:
    evaluate = summary.get("evaluate") or {}
    gate = evaluate.get("gate") if isinstance(evaluate, dict) else None
    monitor = summary.get("monitor") or {}
    return {
        "path": relative,
        "run_id": summary.get("run_id"),
        "finished_at": summary.get("finished_at"),
        "promote": gate.get("promote") if isinstance(gate, dict) else None,
        "dataset_drift": monitor.get("dataset_drift") if isinstance(monitor, dict) else None,
        "drift_share": monitor.get("drift_share") if isinstance(monitor, dict) else None,
        "experiment": summary.get("experiment"),
    }


def catalogue(root: Path) -> dict[str, Any]:
    """What the index shows: the latest run, the key reports, past runs and every report file."""
    files = list_reports(root)
    present = {item["path"] for item in files}
    latest = _read_json(root / "run_summary.json") if "run_summary.json" in present else None
    runs = []
    for item in files:
        if item["path"].startswith(f"{RUNS_DIR}/") and item["path"].endswith(".json"):
            summary = _read_json(root / item["path"])
            if summary is not None:
                runs.append(_run_row(item["path"], summary))
            if len(runs) >= MAX_LISTED_RUNS:
                break
    return {
        "reports_dir_exists": root.is_dir(),
        "latest_run": _run_row("run_summary.json", latest) if latest else None,
        "key_reports": [
            {"path": path, "title": title, "available": path in present} for path, title in KEY_REPORTS.items()
        ],
        "runs": runs,
        "files": files,
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def render_index(data: dict[str, Any]) -> str:
    """The index page; every value is HTML-escaped and every link is relative to ``/feedbackflow/``."""
    esc = html.escape

    def link(path: str, label: str | None = None) -> str:
        return f'<a href="files/{esc(path, quote=True)}">{esc(label or path)}</a>'

    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>feedbackflow reports</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}"
        "table{border-collapse:collapse;margin-bottom:1.5rem}td,th{border:1px solid #ddd;padding:.3rem .6rem;"
        "text-align:left}th{background:#f4f4f4}.missing{color:#999}</style></head><body>",
        "<h1>feedbackflow reports</h1>",
    ]
    if not data["reports_dir_exists"]:
        parts.append("<p>No reports yet: the pipeline has not written its <code>reports/</code> folder.</p>")
    latest = data["latest_run"]
    if latest:
        parts.append("<h2>Latest run</h2><table>")
        for key in ("run_id", "finished_at", "promote", "dataset_drift", "drift_share", "experiment"):
            parts.append(f"<tr><th>{esc(key)}</th><td>{esc(_fmt(latest[key]))}</td></tr>")
        parts.append("</table>")
    parts.append("<h2>Key reports</h2><ul>")
    for report in data["key_reports"]:
        if report["available"]:
            parts.append(f"<li>{link(report['path'], report['title'])} <code>{esc(report['path'])}</code></li>")
        else:
            parts.append(f"<li class='missing'>{esc(report['title'])} <code>{esc(report['path'])}</code>: not yet</li>")
    parts.append("</ul>")
    if data["runs"]:
        parts.append(
            "<h2>Runs</h2><table><tr><th>run</th><th>finished</th><th>promoted</th><th>dataset drift</th>"
            "<th>drift share</th></tr>"
        )
        for run in data["runs"]:
            parts.append(
                f"<tr><td>{link(run['path'], _fmt(run['run_id']))}</td><td>{esc(_fmt(run['finished_at']))}</td>"
                f"<td>{esc(_fmt(run['promote']))}</td><td>{esc(_fmt(run['dataset_drift']))}</td>"
                f"<td>{esc(_fmt(run['drift_share']))}</td></tr>"
            )
        parts.append("</table>")
    if data["files"]:
        parts.append("<h2>All report files</h2><table><tr><th>file</th><th>bytes</th></tr>")
        for item in data["files"]:
            parts.append(f"<tr><td>{link(item['path'])}</td><td>{item['bytes']}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)


def create_app(require_auth: bool | None = None) -> FastAPI:
    """Build the reports app. ``require_auth`` defaults to :func:`auth_required`."""
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

    dependencies = []
    if auth_required() if require_auth is None else require_auth:
        from airflow.api_fastapi.core_api.security import requires_authenticated

        dependencies.append(Depends(requires_authenticated()))

    app = FastAPI(
        title="feedbackflow reports",
        description="Read-only view of the feedbackflow pipeline's reports folder.",
        dependencies=dependencies,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(render_index(catalogue(reports_dir())), headers={"Cache-Control": "no-store"})

    @app.get("/api/reports")
    def api_reports() -> JSONResponse:
        return JSONResponse(catalogue(reports_dir()), headers={"Cache-Control": "no-store"})

    @app.get("/files/{relative:path}")
    def report_file(relative: str) -> FileResponse:
        path = resolve_report(reports_dir(), relative)
        if path is None:
            raise HTTPException(status_code=404, detail="report not found")
        headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
        if path.suffix.lower() in {".html", ".svg"}:
            # Reports may embed data-derived text: run their scripts in an opaque origin, not Airflow's.
            headers["Content-Security-Policy"] = "sandbox allow-scripts allow-popups allow-downloads"
        return FileResponse(path, media_type=SERVED_SUFFIXES[path.suffix.lower()], headers=headers)

    return app


class LazyReportsApp:
    """An ASGI app that builds :func:`create_app` on its first request (keeps the plugin import cheap)."""

    def __init__(self) -> None:
        self._app: FastAPI | None = None

    @property
    def app(self) -> FastAPI:
        if self._app is None:
            self._app = create_app()
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


reports_app = LazyReportsApp()


class FeedbackflowPlugin(AirflowPlugin):
    """Serves the reports folder under ``/feedbackflow`` and links it from the UI's Browse menu."""

    name = "feedbackflow"
    fastapi_apps = [  # noqa: RUF012 (AirflowPlugin's documented class-attribute interface)
        {"app": reports_app, "url_prefix": URL_PREFIX, "name": "feedbackflow reports"},
    ]
    external_views = [  # noqa: RUF012
        {
            "name": "Drift reports",
            # Relative (no leading slash): resolved against the UI's <base href>, so it works under a base_url.
            "href": f"{URL_PREFIX.lstrip('/')}/",
            # With a url_route the view is rendered inside the Airflow UI (iframe) at /plugin/<url_route>.
            "url_route": UI_ROUTE,
            "destination": "nav",
            "category": "browse",
        },
    ]
