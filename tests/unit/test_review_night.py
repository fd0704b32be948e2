"""The review loop in the nightly run: its tasks never fail the night, and the night's figures (sent, labelled,
turnaround, agreement, unknown share) reach the run summary and the dashboard series."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from feedbackflow.config import ProjectPaths
from feedbackflow.labelling import store
from feedbackflow.labelling.metrics import night_figures
from feedbackflow.monitoring import workspace
from feedbackflow.orchestration import labelling_tasks
from feedbackflow.orchestration.summary import review_section
from tests.helpers import TEMPLATES, write_params

NIGHT = "2026-12-06"


def _closed_port() -> int:
    """A loopback port nothing listens on: a labelling server that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ProjectPaths:
    import json

    monkeypatch.setenv("FEEDBACKFLOW_PROJECT_DIR", str(tmp_path))
    (tmp_path / "labels.json").write_text(json.dumps(sorted(TEMPLATES)), encoding="utf-8")
    _params(tmp_path)
    return ProjectPaths(tmp_path)


def _params(root: Path, **labelling: object) -> None:
    write_params(root, validate={"taxonomy": "labels.json"}, labelling=labelling)


def _state(paths: ProjectPaths) -> None:
    """Last night sent 4 rows (answered tonight), tonight sends 2; one id is disputed."""
    sent = [
        ("a", "unknown", "unknown", "2026-12-05T03:00:00+00:00"),
        ("b", "uncertain", "billing", "2026-12-05T03:00:00+00:00"),
        ("c", "qc", "login", "2026-12-05T03:00:00+00:00"),
        ("d", "qc", "praise", "2026-12-05T03:00:00+00:00"),
        ("e", "unknown", "unknown", f"{NIGHT}T03:00:00+00:00"),
        ("f", "uncertain", "delivery", f"{NIGHT}T03:00:00+00:00"),
    ]
    store.append_lines(
        paths.review_queue,
        [{"id": i, "reason": r, "predicted": p, "sent_at": t, "text": "anonymised"} for i, r, p, t in sent],
    )
    labels = [
        ("a", "oos", "2026-12-05T09:00:00+00:00", 2),
        ("b", "billing", "2026-12-05T15:00:00+00:00", 1),
        ("c", "login", "2026-12-05T07:00:00+00:00", 2),  # QC: the reviewer agrees with the model
        ("d", "billing", "2026-12-05T05:00:00+00:00", 1),  # QC: the reviewer disagrees
    ]
    store.append_lines(
        paths.review_labels,
        [
            {"id": i, "label": lab, "annotated_at": at, "reviewers": n, "taken_at": f"{NIGHT}T02:00:00+00:00"}
            for i, lab, at, n in labels
        ],
    )
    store.write_lines(paths.review_disputes, [{"id": "x", "values": ["billing", "login"]}])


def test_the_nights_figures_count_tonights_batch_and_the_labels_taken_back_tonight(project: ProjectPaths) -> None:
    _state(project)
    figures = night_figures(project, NIGHT)
    assert (figures["sent"], figures["unknown_sent"], figures["unknown_share"]) == (2, 1, 0.5)
    assert (figures["labelled"], figures["qc_labelled"], figures["qc_model_agreement"]) == (4, 2, 0.5)
    assert figures["turnaround_hours"] == 5.0  # median of 6, 12, 4 and 2 hours
    assert figures["disputed"] == 1 and figures["reviewer_agreement"] == round(2 / 3, 4)  # 2 agreed, 1 disputed
    assert night_figures(project, "2026-12-07")["sent"] == 0


def test_the_summary_and_the_dashboard_carry_the_review_figures(project: ProjectPaths) -> None:
    from datetime import UTC, datetime

    _state(project)
    tasks = {"label_pull": {"mode": "files", "status": "ok", "labelled": 4}, "label_push": None}
    section = review_section(project, tasks, now=datetime(2026, 12, 6, 4, tzinfo=UTC))
    assert section["pull"]["labelled"] == 4 and section["night"]["sent"] == 2
    coverage = {"in_scope_coverage": 0.66, "min_in_scope_coverage": 0.6, "review_load": 240, "review_budget": 200}
    run = {"review": section, "evaluate": {"gate": {"promote": True}, "out_of_scope": coverage}}
    values = workspace.governance_values({"status": "checked"}, run, [], [])
    assert values["review_sent"] == 2.0 and values["review_labelled"] == 4.0
    assert values["review_qc_model_agreement"] == 0.5 and values["review_turnaround_hours"] == 5.0
    assert (values["in_scope_coverage"], values["in_scope_coverage_minimum"]) == (0.66, 0.6)
    assert (values["review_load"], values["review_budget"]) == (240.0, 200.0)
    drift_only = workspace.governance_values({"status": "checked"}, {}, [], [])
    assert drift_only["review_sent"] is None and drift_only["in_scope_coverage"] is None  # no point, not a zero


def test_a_labelling_server_that_is_down_never_fails_the_night(
    project: ProjectPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    _params(project.root, label_studio_url=f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "token-for-a-server-that-is-down")
    result = labelling_tasks.label_pull_task()
    assert (result["mode"], result["status"]) == ("label_studio", "failed")
    assert result["error"].startswith("SourceUnavailableError: Label Studio at http://127.0.0.1:")
    assert "token-for-a-server" not in result["error"]
    assert not project.review_deliveries("data/landing").exists()  # nothing half-delivered


def test_without_a_server_the_loop_uses_files_and_a_zero_budget_turns_it_off(project: ProjectPaths) -> None:
    pulled = labelling_tasks.label_pull_task()
    assert (pulled["mode"], pulled["status"], pulled["labelled"]) == ("files", "ok", 0)  # no export files yet
    _params(project.root, budget=0)
    assert labelling_tasks.label_pull_task() == {"mode": "off", "status": "off"}
    assert labelling_tasks.label_push_task([{}]) == {"mode": "off", "status": "off"}


def test_a_dry_run_sends_no_review_batch(project: ProjectPaths) -> None:
    from airflow.sdk.exceptions import AirflowSkipException

    with pytest.raises(AirflowSkipException, match="dry run"):
        labelling_tasks.label_push_task([{}], {"dry_run": True})
