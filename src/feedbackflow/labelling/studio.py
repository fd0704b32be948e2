"""Label Studio: the labelling config, import JSON for a batch, export JSON read back, and a small REST client.

One project per deployment (``labelling.project_title``), created on first use with the taxonomy as single choices
plus the out-of-scope choice. Each task carries the anonymised text and the feedback id; the model's guess is not
shown, so the QC sample measures the model against reviewers who did not see it. Without a server the same import
JSON is written to a file for a person to import, and export JSON files dropped in a folder are read back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from feedbackflow.errors import ConfigError, DataQualityError, SourceUnavailableError

API_KEY_ENV = "LABEL_STUDIO_API_KEY"
FROM_NAME = "label"
TO_NAME = "text"


def label_config(choices: Sequence[str]) -> str:
    """The project's labelling interface: the text and one single choice among ``choices`` (escaped)."""
    options = "\n".join(f"    <Choice value={quoteattr(choice)}/>" for choice in choices)
    return (
        "<View>\n"
        f'  <Text name="{TO_NAME}" value="$text"/>\n'
        f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single" showInline="false">\n'
        f"{options}\n"
        "  </Choices>\n"
        "</View>\n"
    )


def import_tasks(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Label Studio import JSON of a review batch (rows with ``id``, ``text``, ``reason``, ``channel``)."""
    return [
        {
            "data": {
                "text": row["text"],
                "feedback_id": str(row["id"]),
                "reason": row["reason"],
                "channel": row["channel"],
            }
        }
        for row in batch
    ]


@dataclass(frozen=True)
class Annotation:
    """One reviewer's answer on one task."""

    feedback_id: str
    task_id: int
    annotator: str
    choice: str
    annotated_at: str


def _annotator(completed_by: Any) -> str:
    if isinstance(completed_by, dict):
        return str(completed_by.get("email") or completed_by.get("id") or "unknown")
    return str(completed_by)


def _choice(result: list[dict[str, Any]]) -> str | None:
    for item in result:
        if item.get("type") == "choices" and item.get("from_name", FROM_NAME) == FROM_NAME:
            chosen = item.get("value", {}).get("choices") or []
            return str(chosen[0]) if chosen else None
    return None


def parse_export(tasks: Any, source: str) -> list[Annotation]:
    """The annotations of a Label Studio JSON export (cancelled and empty ones skipped).

    Raises:
        DataQualityError: the export is not a list of tasks with ``data.feedback_id`` (names ``source`` and the task).
    """
    if not isinstance(tasks, list):
        raise DataQualityError(f"{source}: not a Label Studio JSON export (expected a list of tasks)")
    annotations = []
    for number, task in enumerate(tasks):
        feedback_id = task.get("data", {}).get("feedback_id") if isinstance(task, dict) else None
        if feedback_id is None:
            raise DataQualityError(
                f"{source}, task {number}: no data.feedback_id; export the project feedbackflow created (JSON)"
            )
        for annotation in task.get("annotations") or []:
            choice = _choice(annotation.get("result") or [])
            if annotation.get("was_cancelled") or choice is None:
                continue
            annotations.append(
                Annotation(
                    feedback_id=str(feedback_id),
                    task_id=int(task.get("id", -1)),
                    annotator=_annotator(annotation.get("completed_by")),
                    choice=choice,
                    annotated_at=str(annotation.get("updated_at") or annotation.get("created_at") or ""),
                )
            )
    return annotations


def read_exports(folder: Path) -> list[Annotation]:
    """Annotations of every ``*.json`` export in ``folder`` (oldest file first, so later exports win)."""
    files = sorted(folder.glob("*.json"), key=lambda path: (path.stat().st_mtime_ns, path.name))
    annotations: list[Annotation] = []
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise DataQualityError(f"{path}: not JSON ({error.msg} at line {error.lineno})") from None
        annotations += parse_export(data, str(path))
    return annotations


class LabelStudio:
    """The few REST calls the loop needs, on a Label Studio server (``labelling.label_studio_url``).

    The token is a personal access token (a JWT: exchanged for an access token) or a legacy token.
    """

    def __init__(self, url: str, token: str | None, timeout: float = 30.0) -> None:
        if not token:
            raise ConfigError(f"labelling.label_studio_url is set but {API_KEY_ENV} is empty: set the server's token")
        import requests

        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        if token.count(".") == 2:  # a personal access token: refreshed into a short-lived access token
            access = self._call("POST", "/api/token/refresh", json={"refresh": token})["access"]
            self.session.headers["Authorization"] = f"Bearer {access}"
        else:
            self.session.headers["Authorization"] = f"Token {token}"

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        import requests

        try:
            response = self.session.request(method, self.url + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as error:
            raise SourceUnavailableError(f"Label Studio at {self.url}: {type(error).__name__}") from None
        if response.status_code >= 400:
            raise ConfigError(f"Label Studio {method} {path}: HTTP {response.status_code} {response.text[:200]}")
        return response.json() if response.content else None

    def project(self, title: str, choices: Sequence[str]) -> int:
        """The id of the project titled ``title``, created with the choices on first use."""
        found = self._call("GET", "/api/projects", params={"title": title, "page_size": 1000})
        projects = found.get("results", []) if isinstance(found, dict) else found
        for project in projects:
            if project.get("title") == title:
                return int(project["id"])
        created = self._call("POST", "/api/projects", json={"title": title, "label_config": label_config(choices)})
        return int(created["id"])

    def import_tasks(self, project: int, tasks: list[dict[str, Any]]) -> int:
        """Create ``tasks`` in the project; returns how many were created."""
        result = self._call("POST", f"/api/projects/{project}/import", json=tasks)
        return int(result.get("task_count", len(tasks))) if isinstance(result, dict) else len(tasks)

    def export(self, project: int) -> list[Annotation]:
        """Every annotation of the project (JSON export)."""
        tasks = self._call("GET", f"/api/projects/{project}/export", params={"exportType": "JSON"})
        return parse_export(tasks, f"{self.url} project {project}")
