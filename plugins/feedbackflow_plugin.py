"""Airflow UI plugin: the governance entry point (drift, data quality, privacy and promotions per run).

A small FastAPI app is mounted on the Airflow API server under ``/feedbackflow``; two external views link it into
the UI: a top-level "Governance" menu entry (the index) and a "Governance" tab on every DAG run's page (the per-run
view, the plugin interface's ``dag_run`` destination). Pages are rendered from ``plugins/templates`` by Jinja with
autoescaping.

* ``/feedbackflow/``                          index: latest run, governance records, key reports, every report file
* ``/feedbackflow/runs/<dag_id>/<run_id>``    one run: the Airflow run, ``dvc.lock`` hashes, validation (and its
  Data Docs), anonymiser config hash and audit counts, model version and gate decision, drift tests and snapshot
* ``/feedbackflow/lineage/<version>``          one model's lineage as a graph: source batches, data hashes, run,
  model, gate and who decided (:mod:`feedbackflow.governance.chain`)
* ``/feedbackflow/files/<path>``              one report file, confined to the project's ``reports`` folder
* ``/feedbackflow/api/reports``               the listing as JSON

Access: a logged-in Airflow user (session cookie or ``Authorization: Bearer``) whom the auth manager grants ``GET``
on the ``Governance`` custom view (see :mod:`feedbackflow.monitoring.access`); anyone else gets 401 or 403.
``FEEDBACKFLOW_REPORTS_PUBLIC=true`` switches the check off (local demos only). The pages show counts, hashes and
decisions only, never message text; HTML reports are served with ``Content-Security-Policy: sandbox`` so their
scripts run in an opaque origin, away from the Airflow session.

Importing this module is cheap (no FastAPI, no project code): the app is built on its first request, because
every Airflow component (scheduler, workers, ...) imports the plugins folder, while only the API server serves it.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.plugins_manager import AirflowPlugin

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, MutableMapping

    from fastapi import FastAPI

    from feedbackflow.config import ProjectPaths

    Scope = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
    Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

URL_PREFIX = "/feedbackflow"
UI_ROUTE = "governance"
RUN_UI_ROUTE = "governance-run"
GOVERNANCE_RESOURCE = "Governance"  # the auth manager's custom-view resource (see feedbackflow.monitoring.access)
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

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
# Served (the Data Docs pages load them from their vendored ``static/`` folder) but not listed as reports.
ASSET_SUFFIXES: dict[str, str] = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".woff2": "font/woff2",
    ".otf": "font/otf",
    ".ico": "image/x-icon",
    ".gif": "image/gif",
}
MAX_LISTED_FILES = 1000
MAX_LISTED_RUNS = 50
MAX_SUMMARY_BYTES = 2_000_000


def project_paths() -> ProjectPaths:
    """The project's paths (:class:`feedbackflow.config.ProjectPaths`), discovered again on every call."""
    from feedbackflow.config import ProjectPaths

    return ProjectPaths.discover()


def reports_dir() -> Path:
    """The reports folder of the project."""
    return project_paths().reports


def key_reports(paths: ProjectPaths) -> dict[str, str]:
    """The reports a user looks for first (relative to the reports folder) and their titles."""
    titles = {
        paths.stage_reports("monitor") / "drift.html": "Drift report (Evidently)",
        paths.run_summary: "Latest run summary",
        paths.stage_reports("evaluate") / "gate.json": "Promotion gate (challenger vs champion)",
        paths.data_docs / "index.html": "Data quality of the latest run (Great Expectations Data Docs)",
        paths.data_docs_history / "index.html": "Data quality of every run (Data Docs history)",
    }
    return {path.relative_to(paths.reports).as_posix(): title for path, title in titles.items()}


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
    if candidate.suffix.lower() not in SERVED_SUFFIXES and candidate.suffix.lower() not in ASSET_SUFFIXES:
        return None
    return candidate


def is_asset(relative: str) -> bool:
    """A library file of a report site (under a ``static/`` folder, of an asset type): no data in it."""
    parts = Path(relative).parts
    return "static" in parts[:-1] and Path(relative).suffix.lower() in ASSET_SUFFIXES


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


def _drift_check(monitor: Any) -> str | None:
    """The drift check's verdict (any gating test failed: dataset, embedding or prediction drift), not one test."""
    failed = monitor.get("drift_failed") if isinstance(monitor, dict) else None
    return None if failed is None else ("failed" if failed else "passed")


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
        "drift_check": _drift_check(monitor),
        "drift_share": monitor.get("drift_share") if isinstance(monitor, dict) else None,
        "drifted_columns": ", ".join(monitor.get("drifted_columns") or []) if isinstance(monitor, dict) else None,
        "experiment": summary.get("experiment"),
    }


def catalogue(paths: ProjectPaths) -> dict[str, Any]:
    """What the index shows: the latest run, the key reports, past runs and every report file."""
    root = paths.reports
    files = list_reports(root)
    present = {item["path"] for item in files}
    summary_file = paths.run_summary.relative_to(root).as_posix()
    runs_dir = paths.run_records.relative_to(root).as_posix()
    latest = _read_json(paths.run_summary) if summary_file in present else None
    runs = []
    for item in files:
        if item["path"].startswith(f"{runs_dir}/") and item["path"].endswith(".json"):
            summary = _read_json(root / item["path"])
            if summary is not None:
                runs.append(_run_row(item["path"], summary))
            if len(runs) >= MAX_LISTED_RUNS:
                break
    return {
        "reports_dir_exists": root.is_dir(),
        "latest_run": _run_row(summary_file, latest) if latest else None,
        "key_reports": [
            {"path": path, "title": title, "available": path in present} for path, title in key_reports(paths).items()
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


@functools.cache
def _templates() -> Any:
    """The Jinja environment of ``plugins/templates`` with HTML autoescaping on."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = _fmt
    return env


def render(template: str, **context: Any) -> str:
    """Render ``plugins/templates/<template>``; every value is HTML-escaped by Jinja."""
    return str(_templates().get_template(template).render(**context))


def render_index(
    data: dict[str, Any],
    records: list[dict[str, Any]] | None = None,
    decisions: list[dict[str, Any]] | None = None,
    erasures: list[dict[str, Any]] | None = None,
    review: list[dict[str, Any]] | None = None,
) -> str:
    """The governance index: latest run, governance records, retrain decisions, erasure requests, the review loop
    per night, key reports, runs, report files."""
    return render(
        "governance_index.html",
        data=data,
        records=records or [],
        decisions=decisions or [],
        erasures=erasures or [],
        review=review or [],
    )


def erasure_requests(paths: ProjectPaths) -> list[dict[str, Any]]:
    """The erasure requests and their state (certificates in ``erasure.records_dir``); none without params.yaml."""
    from feedbackflow.governance.erasure_certificate import list_requests
    from feedbackflow.settings import SettingsError, load_settings

    try:
        records = paths.root / load_settings(paths.params).erasure.records_dir
    except (OSError, SettingsError):
        return []
    return list_requests(records)


def airflow_run(dag_id: str, run_id: str) -> dict[str, Any] | None:
    """State and dates of the Airflow run from the metadata database (None when it is unknown)."""
    try:
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
            if run is None:
                return None
            return {
                "state": str(run.state),
                "run_type": str(run.run_type),
                "logical_date": str(run.logical_date) if run.logical_date else None,
                "start_date": str(run.start_date) if run.start_date else None,
                "end_date": str(run.end_date) if run.end_date else None,
            }
    except Exception:  # the view still shows the pipeline's records without the metadata database
        return None


def governance_dependency() -> Any:
    """A FastAPI dependency: the user must be logged in and hold the ``Governance`` custom-view permission."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi import Depends, HTTPException

    # No annotation on ``user``: this module uses postponed annotations, which FastAPI could not resolve here.
    def require_governance(user=Depends(get_user)) -> None:  # noqa: B008 (FastAPI's dependency idiom)
        allowed = get_auth_manager().is_authorized_custom_view(
            method="GET", resource_name=GOVERNANCE_RESOURCE, user=user
        )
        if not allowed:
            raise HTTPException(status_code=403, detail="the governance views need the Governance permission")

    return require_governance


def create_app(require_auth: bool | None = None) -> FastAPI:
    """Build the governance app. ``require_auth`` defaults to :func:`auth_required`."""
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

    dependencies = []
    if auth_required() if require_auth is None else require_auth:
        dependencies.append(Depends(governance_dependency()))

    app = FastAPI(
        title="feedbackflow governance",
        description="Read-only governance views of the feedbackflow pipeline: runs, drift, privacy and promotions.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    no_store = {"Cache-Control": "no-store"}

    @app.get("/files/{site:path}/static/{asset:path}")
    def static_asset(site: str, asset: str) -> FileResponse:
        """Library files of a report site (CSS, JS, fonts, icons under a ``static/`` folder), served without a login:
        they hold no data, and a report page runs sandboxed (an opaque origin), so its loads carry no session."""
        relative = f"{site}/static/{asset}"
        path = resolve_report(reports_dir(), relative)
        if path is None or not is_asset(relative):
            raise HTTPException(status_code=404, detail="asset not found")
        return FileResponse(
            path, media_type=ASSET_SUFFIXES[path.suffix.lower()], headers={"X-Content-Type-Options": "nosniff"}
        )

    @app.get("/", response_class=HTMLResponse, dependencies=dependencies)
    def index() -> HTMLResponse:
        from feedbackflow.monitoring.governance import recent_decisions, recent_records, review_loop

        paths = project_paths()
        page = render_index(
            catalogue(paths),
            recent_records(paths),
            recent_decisions(paths),
            erasure_requests(paths),
            review_loop(paths),
        )
        return HTMLResponse(page, headers=no_store)

    @app.get("/runs/{dag_id}/{run_id}", response_class=HTMLResponse, dependencies=dependencies)
    def run_page(dag_id: str, run_id: str) -> HTMLResponse:
        from feedbackflow.monitoring.governance import run_view

        view = run_view(project_paths(), dag_id, run_id, airflow_run(dag_id, run_id))
        return HTMLResponse(render("governance_run.html", run=view), headers=no_store)

    @app.get("/lineage/{version}", response_class=HTMLResponse, dependencies=dependencies)
    def lineage_page(version: str) -> HTMLResponse:
        from feedbackflow.errors import FeedbackflowError
        from feedbackflow.governance.chain import chain_graph, model_chain
        from feedbackflow.storage.registry import Registry

        paths = project_paths()
        try:
            chain = model_chain(paths, Registry.open(paths.root).head(), version)
        except FeedbackflowError as error:
            raise HTTPException(status_code=404, detail=str(error)) from None
        page = render("governance_lineage.html", chain=chain, graph=chain_graph(chain))
        return HTMLResponse(page, headers=no_store)

    @app.get("/api/reports", dependencies=dependencies)
    def api_reports() -> JSONResponse:
        return JSONResponse(catalogue(project_paths()), headers=no_store)

    @app.get("/files/{relative:path}", dependencies=dependencies)
    def report_file(relative: str) -> FileResponse:
        path = resolve_report(reports_dir(), relative)
        if path is None or (path.suffix.lower() in ASSET_SUFFIXES and not is_asset(relative)):
            raise HTTPException(status_code=404, detail="report not found")
        headers = {**no_store, "X-Content-Type-Options": "nosniff"}
        if path.suffix.lower() in {".html", ".svg"}:
            # Reports may embed data-derived text: run their scripts in an opaque origin, not Airflow's.
            headers["Content-Security-Policy"] = "sandbox allow-scripts allow-popups allow-downloads"
        media_type = {**SERVED_SUFFIXES, **ASSET_SUFFIXES}[path.suffix.lower()]
        return FileResponse(path, media_type=media_type, headers=headers)

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
    """The governance entry point: a "Governance" menu entry and a per-run view on every DAG run page."""

    name = "feedbackflow"
    fastapi_apps = [  # noqa: RUF012 (AirflowPlugin's documented class-attribute interface)
        {"app": reports_app, "url_prefix": URL_PREFIX, "name": "feedbackflow governance"},
    ]
    external_views = [  # noqa: RUF012
        {
            "name": "Governance",
            # Relative (no leading slash): resolved against the UI's <base href>, so it works under a base_url.
            "href": f"{URL_PREFIX.lstrip('/')}/",
            # With a url_route the view is rendered inside the Airflow UI (iframe) at /plugin/<url_route>.
            "url_route": UI_ROUTE,
            "destination": "nav",
            "nav_top_level": True,
        },
        {
            "name": "Governance",
            # The UI fills in {DAG_ID} and {RUN_ID} on each DAG run's page (a "Governance" tab).
            "href": f"{URL_PREFIX.lstrip('/')}/runs/{{DAG_ID}}/{{RUN_ID}}",
            "url_route": RUN_UI_ROUTE,
            "destination": "dag_run",
        },
    ]
