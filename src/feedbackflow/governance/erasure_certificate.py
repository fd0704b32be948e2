"""The erasure certificate (JSON and a small HTML page) and the erasure log, with no identifier in either.

The certificate says what was asked (request id, who asked and approved, when), what was done (rows per dataset,
raw batches rewritten, objects deleted per store by hash, model versions affected and the policy applied) and what a
scan of every remaining object found (zero). The subject appears only as a count of keyed hashes. The log keeps one
line per request with the deleted object hashes, so restoring an old version can name the request that erased it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from feedbackflow.io import read_json, write_json

LOG_FILE = "log.jsonl"

HTML_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Erasure certificate {{ c.request_id }}</title>
<style>body{font-family:sans-serif;max-width:56rem;margin:2rem auto}td,th{padding:.2rem .6rem;text-align:left}
.done{color:#176b2c}.incomplete{color:#a11}</style></head><body>
<h1>Erasure certificate</h1>
<p class="{{ c.state }}">State: <strong>{{ c.state }}</strong></p>
<table>
<tr><th>Request</th><td>{{ c.request_id }}</td></tr>
<tr><th>Requested by</th><td>{{ c.requested_by }}</td></tr>
<tr><th>Approved by</th><td>{{ c.approved_by or "not required" }}</td></tr>
<tr><th>Completed</th><td>{{ c.completed_at or "not completed" }}</td></tr>
<tr><th>Identifiers (keyed hashes, key {{ c.key_id }})</th><td>{{ c.identifier_hashes }}</td></tr>
</table>
<h2>Rows removed</h2>
<table><tr><th>Dataset</th><th>Rows</th></tr>
{% for name, rows in c.rows_removed.items() %}<tr><td>{{ name }}</td><td>{{ rows }}</td></tr>
{% endfor %}</table>
{% if c.labels_below_minimum %}<p>Labels now below validate.min_rows_per_label (the next training lacks rows):
{% for label, rows in c.labels_below_minimum.items() %}{{ label }} ({{ rows }} left){% if not loop.last %}, {% endif %}
{% endfor %}</p>{% endif %}
<h2>Objects deleted</h2>
<table><tr><th>Store</th><th>Objects</th><th>Object versions</th></tr>
{% for name, store in c.objects_deleted.items() %}<tr><td>{{ name }}</td><td>{{ store.objects | length }}</td>
<td>{{ store.versions }}</td></tr>
{% endfor %}</table>
<h2>Models</h2>
<p>Policy: {{ c.models.action }}. Affected versions: {{ c.models.versions | join(", ") or "none" }}.
Champion now: {{ c.models.champion or "none" }}.</p>
<h2>Verification</h2>
<p>Every remaining object in the cache and the remotes and every workspace file was scanned for the identifiers:
{{ c.verification.objects_checked }} objects (each content hash read once) and {{ c.verification.files_scanned }} files,
<strong>{{ c.verification.found }}</strong> found.</p>
{% if c.verification.sources_holding_subject %}<p>Delivered files in the landing folder still holding the subject
(clean the source): {{ c.verification.sources_holding_subject }}.</p>{% endif %}
{% if c.error %}<p class="incomplete">Incomplete: {{ c.error }}</p>{% endif %}
{% if c.left %}<p class="incomplete">Steps left: {{ c.left | join(", ") }}.
{% for name, objects in (c.objects_left or {}).items() %}{{ name }}: {{ objects | length }} objects still to delete.
{% endfor %}Run the same request again to resume.</p>{% endif %}
</body></html>
"""


def render_html(certificate: dict[str, Any]) -> str:
    """The certificate as a standalone page (Jinja, autoescaped)."""
    from jinja2 import Environment

    return Environment(autoescape=True).from_string(HTML_TEMPLATE).render(c=certificate)


def certificate_path(records: Path, request_id: str, suffix: str = ".json") -> Path:
    safe = "".join(char if char.isalnum() or char in "-_." else "_" for char in request_id)
    return records / f"{safe}{suffix}"


def write_certificate(records: Path, certificate: dict[str, Any]) -> Path:
    """Write ``<request>.json`` and ``<request>.html`` under ``records``; returns the JSON path."""
    path = write_json(certificate_path(records, certificate["request_id"]), certificate)
    certificate_path(records, certificate["request_id"], ".html").write_text(render_html(certificate), encoding="utf-8")
    return path


def read_certificate(records: Path, request_id: str) -> dict[str, Any] | None:
    """An earlier certificate of this request (to resume an incomplete one), if any."""
    found = read_json(certificate_path(records, request_id))
    return dict(found) if found else None


def append_log(records: Path, entry: dict[str, Any]) -> None:
    """One line per completed request: id, date and every deleted object hash."""
    records.mkdir(parents=True, exist_ok=True)
    with open(records / LOG_FILE, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")


def read_log(records: Path) -> list[dict[str, Any]]:
    path = records / LOG_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def erased_by(records: Path, md5s: set[str]) -> list[dict[str, Any]]:
    """The requests that deleted any of these object hashes (newest last)."""
    return [entry for entry in read_log(records) if md5s & set(entry.get("objects", []))]


def list_requests(records: Path, limit: int = 50) -> list[dict[str, Any]]:
    """The newest erasure requests' state for the Governance view: ids, dates, counts (no identifier)."""
    if not records.is_dir():
        return []
    rows = []
    newest = sorted(records.glob("*.json"), key=lambda path: path.stat().st_mtime, reverse=True)
    for path in newest[:limit]:
        try:
            certificate = read_json(path)
        except ValueError:
            continue
        if not isinstance(certificate, dict) or "request_id" not in certificate:
            continue
        deleted = certificate.get("objects_deleted") or {}
        rows.append(
            {
                "request_id": certificate["request_id"],
                "state": certificate.get("state"),
                "received_at": certificate.get("received_at"),
                "completed_at": certificate.get("completed_at"),
                "rows_removed": sum((certificate.get("rows_removed") or {}).values()),
                "object_versions_deleted": sum(int(store.get("versions", 0)) for store in deleted.values()),
                "models": ", ".join((certificate.get("models") or {}).get("versions") or []),
                "found": (certificate.get("verification") or {}).get("found"),
            }
        )
    return rows
