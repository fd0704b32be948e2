"""The governance dashboards: an Evidently Workspace with one project per model and one snapshot per run.

Each run adds one snapshot (``include_data=False``: metrics only, no rows) to the project of its model, timestamped
with the run's date (the Airflow run's logical date: :func:`~feedbackflow.orchestration.monitor_tasks.run_date`), so the
dashboard has one point per run at the night it describes; recording a run again replaces its snapshot. The snapshot
joins the monitor stage's drift report (``reports/monitor/snapshot.json``) with a small *governance* report computed
from the run's counts: quarantine share per rule, PII entities removed per type, the gate outcome and the champion
version. Those counts enter Evidently as a one-row dataset whose ``MeanValue`` per column is the count itself, so the
stock Evidently UI plots them over time next to drift, with no custom metric class for the UI to import.

The workspace is a local folder by default (``monitor.workspace``); Evidently's file storage goes through fsspec, so
an ``s3://bucket/prefix`` location works with the S3 credentials of the environment.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feedbackflow.config import ProjectPaths
from feedbackflow.io import read_json

if TYPE_CHECKING:
    from evidently.core.report import Snapshot
    from evidently.ui.workspace import Project, Workspace

PROJECT_PREFIX = "feedbackflow: "
DEFAULT_MODEL = "feedback-classifier"
OUTCOME_VALUES = {True: 1.0, False: 0.0}
"""An outcome as two bar series (e.g. ``gate_promoted`` and ``gate_refused``): the one that happened is 1, the other
0, so each run shows one bar in the outcome's colour; a run without the outcome (evaluate skipped) has no bar."""


def workspace_location(location: str, root: Path) -> str:
    """The workspace path: ``s3://...`` as given, a relative folder under the project root."""
    if "://" in location:
        return location
    path = Path(location)
    return str(path if path.is_absolute() else root / path)


def open_workspace(location: str, root: Path) -> Workspace:
    from evidently.ui.workspace import Workspace

    target = workspace_location(location, root)
    if "://" not in target:
        Path(target).mkdir(parents=True, exist_ok=True)
    return Workspace(target)


def _series_name(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", value).strip("_").lower()


def quarantine_column(rule: str) -> str:
    return f"quarantine_share__{_series_name(rule)}"


def pii_column(entity: str) -> str:
    return f"pii__{_series_name(entity)}"


def version_number(version: str | None) -> float | None:
    """``v3`` -> 3.0 (the champion version as a plottable number)."""
    match = re.fullmatch(r"v?(\d+)", str(version or ""))
    return float(match.group(1)) if match else None


def governance_values(monitor: dict[str, Any], run: dict[str, Any], rules: list[str], entities: list[str]) -> dict:
    """One number per governance series (missing: the run has no value, e.g. no gate when evaluate was skipped)."""
    counts = monitor.get("governance") or {}
    by_rule = counts.get("quarantine_share_by_rule") or {}
    by_entity = counts.get("pii_by_entity") or {}
    gate = ((run.get("evaluate") or {}).get("gate") or {}).get("promote")
    champion = (run.get("champion") or {}).get("version") or (monitor.get("champion") or {}).get("version")
    values: dict[str, float | None] = {
        "quarantine_share": float(counts.get("quarantine_share") or 0.0),
        "pii_entities_removed": float(counts.get("pii_entities_removed") or 0),
        "champion_version": version_number(champion),
    }
    checked = monitor.get("status") == "checked"
    failed = bool(monitor.get("drift_failed"))
    values["gate_promoted"] = OUTCOME_VALUES[gate] if isinstance(gate, bool) else None
    values["gate_refused"] = OUTCOME_VALUES[not gate] if isinstance(gate, bool) else None
    values["drift_failed"] = OUTCOME_VALUES[failed] if checked else None
    values["drift_passed"] = OUTCOME_VALUES[not failed] if checked else None
    values.update({quarantine_column(rule): float(by_rule.get(rule, 0.0)) for rule in rules})
    values.update({pii_column(entity): float(by_entity.get(entity, 0)) for entity in entities})
    values.update(review_values(run))
    return values


#: dashboard series of the review loop -> key of the run summary's ``review.night`` figures
REVIEW_SERIES = {
    "review_sent": "sent",
    "review_labelled": "labelled",
    "review_turnaround_hours": "turnaround_hours",
    "review_reviewer_agreement": "reviewer_agreement",
    "review_qc_model_agreement": "qc_model_agreement",
    "review_unknown_share": "unknown_share",
}
#: dashboard series of the challenger's coverage -> key of the run summary's ``evaluate.out_of_scope``
COVERAGE_SERIES = {
    "in_scope_coverage": "in_scope_coverage",
    "in_scope_coverage_minimum": "min_in_scope_coverage",
    "review_load": "review_load",
    "review_budget": "review_budget",
}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def review_values(run: dict[str, Any]) -> dict[str, float | None]:
    """The night's review-loop figures and the challenger's coverage and expected review load (None: not measured,
    e.g. a drift_monitor run, or no label taken back so no turnaround)."""
    night = (run.get("review") or {}).get("night") or {}
    coverage = (run.get("evaluate") or {}).get("out_of_scope") or {}
    return {
        **{column: _number(night.get(key)) for column, key in REVIEW_SERIES.items()},
        **{column: _number(coverage.get(key)) for column, key in COVERAGE_SERIES.items()},
    }


def governance_snapshot(values: dict[str, float | None]) -> Snapshot:
    """An Evidently snapshot of ``MeanValue`` over a one-row frame: each metric is one governance number."""
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import MeanValue

    present = {name: value for name, value in values.items() if value is not None}
    frame = pd.DataFrame([present]).astype(float)
    dataset = Dataset.from_pandas(frame, data_definition=DataDefinition(numerical_columns=list(present)))
    return Report([MeanValue(column=name) for name in present]).run(dataset, None)


def _mean(column: str, legend: str) -> Any:
    from evidently.sdk.models import PanelMetric

    return PanelMetric(legend=legend, metric="MeanValue", metric_labels={"column": column})


def _drift_of(column: str, legend: str) -> Any:
    from evidently.sdk.models import PanelMetric

    return PanelMetric(legend=legend, metric="ValueDrift", metric_labels={"column": column})


def _panels(rules: list[str], entities: list[str]) -> list[Any]:
    """The governance dashboard: the champion and its drift first, then what each pipeline run did."""
    from evidently.sdk.panels import text_panel

    return [
        text_panel(title="feedbackflow governance", description="One point per pipeline or drift_monitor run"),
        *_model_panels(),
        *_pipeline_panels(rules, entities),
        *_review_panels(),
    ]


def _model_panels() -> list[Any]:
    """The champion's version, data and prediction drift, and the descriptors' drift."""
    from evidently.sdk.models import PanelMetric
    from evidently.sdk.panels import bar_plot_panel, counter_panel, line_plot_panel

    from feedbackflow.monitoring.drift import DESCRIPTOR_COLUMNS, DESCRIPTOR_THRESHOLD

    return [
        counter_panel(
            title="Champion version",
            size="half",
            values=[_mean("champion_version", "version")],
            aggregation="last",
        ),
        counter_panel(
            title="Share of drifted columns (last run)",
            size="half",
            values=[PanelMetric(legend="share", metric="DriftedColumnsCount", metric_labels={"value_type": "share"})],
            aggregation="last",
        ),
        line_plot_panel(
            title="Drift share and drifted columns",
            values=[
                PanelMetric(legend="share", metric="DriftedColumnsCount", metric_labels={"value_type": "share"}),
                PanelMetric(legend="columns", metric="DriftedColumnsCount", metric_labels={"value_type": "count"}),
            ],
            size="half",
        ),
        line_plot_panel(
            title="Embedding drift (domain classifier ROC AUC) and prediction drift (p-value)",
            values=[
                PanelMetric(legend="embedding ROC AUC", metric="EmbeddingsDrift"),
                _drift_of("prediction", "prediction p-value"),
                _drift_of("label", "label p-value"),
            ],
            size="half",
        ),
        bar_plot_panel(
            title="Predicted-label distribution (champion, share of the current batch)",
            values=[
                PanelMetric(
                    legend="{{label}}",  # Evidently fills in each series' label: one legend entry per intent
                    metric="UniqueValueCount",
                    metric_labels={"column": "prediction", "value_type": "share"},
                )
            ],
            size="full",
            stacked=True,
        ),
        line_plot_panel(
            title=f"Text descriptors drift (normed Wasserstein distance; drift above {DESCRIPTOR_THRESHOLD})",
            values=[_drift_of(name, name) for name in DESCRIPTOR_COLUMNS],
            size="half",
        ),
    ]


def _pipeline_panels(rules: list[str], entities: list[str]) -> list[Any]:
    """Per run: quarantine by rule, PII removed by type, the gate's and the drift test's outcome, the accuracy."""
    from evidently.sdk.models import PanelMetric
    from evidently.sdk.panels import bar_plot_panel, line_plot_panel

    return [
        bar_plot_panel(
            title="Quarantine rate by rule",
            values=[_mean(quarantine_column(rule), rule) for rule in rules],
            size="half",
            stacked=True,
        ),
        bar_plot_panel(
            title="PII entities removed by type",
            values=[_mean(pii_column(entity), entity) for entity in entities],
            size="half",
            stacked=True,
        ),
        bar_plot_panel(
            title="Gate outcome per run (no bar: evaluate skipped)",
            values=[_mean("gate_promoted", "promoted"), _mean("gate_refused", "refused")],
            size="half",
            stacked=True,
        ),
        bar_plot_panel(
            title="Drift test per run (no bar: no champion to compare with)",
            values=[_mean("drift_passed", "passed"), _mean("drift_failed", "failed")],
            size="half",
            stacked=True,
        ),
        line_plot_panel(
            title="Champion accuracy on newly labelled feedback",
            values=[PanelMetric(legend="accuracy", metric="Accuracy"), PanelMetric(legend="F1", metric="F1Score")],
            size="half",
        ),
    ]


def _review_panels() -> list[Any]:
    """Per night: the challenger's in-scope coverage against the gate's minimum, the review load it would bring
    against the budget, and what the review loop sent, took back and how well reviewers and model agree."""
    from evidently.sdk.panels import bar_plot_panel, line_plot_panel

    return [
        line_plot_panel(
            title="In-scope coverage of the challenger (messages not answered unknown)",
            values=[
                _mean("in_scope_coverage", "coverage"),
                _mean("in_scope_coverage_minimum", "gate minimum (evaluate.min_in_scope_coverage)"),
            ],
            size="half",
        ),
        line_plot_panel(
            title="Expected review load per night (unknown rows of a night like the newest)",
            values=[_mean("review_load", "expected load"), _mean("review_budget", "budget (labelling.budget)")],
            size="half",
        ),
        bar_plot_panel(
            title="Review loop per night: rows sent, labels taken back",
            values=[_mean("review_sent", "sent"), _mean("review_labelled", "labelled")],
            size="half",
        ),
        line_plot_panel(
            title="Review agreement and the unknown share of the batch sent",
            values=[
                _mean("review_reviewer_agreement", "reviewer agreement"),
                _mean("review_qc_model_agreement", "QC agreement with the model"),
                _mean("review_unknown_share", "unknown share"),
            ],
            size="half",
        ),
        line_plot_panel(
            title="Review turnaround (median hours from sending to answer)",
            values=[_mean("review_turnaround_hours", "hours")],
            size="half",
        ),
    ]


def project_for(workspace: Workspace, model: str, rules: list[str], entities: list[str]) -> Project:
    """The project of ``model``, created with its dashboard on first use; panels added to the code since the project
    was created are appended (by title), so an existing dashboard gains them."""
    name = PROJECT_PREFIX + model
    for project in workspace.search_project(name):
        if project.name == name:
            titles = {panel.title for panel in project.dashboard.model().panels}
            for panel in _panels(rules, entities):
                if panel.title not in titles:
                    project.dashboard.add_panel(panel)
            return project
    project = workspace.create_project(name, description=f"Drift, data quality, privacy and promotions of {model}")
    for panel in _panels(rules, entities):
        project.dashboard.add_panel(panel)
    return project


def snapshot_time(timestamp: datetime | None) -> datetime:
    """The snapshot's timestamp: naive UTC (as Evidently's own default), ``now`` when the run has no date."""
    if timestamp is None:
        return datetime.now(UTC).replace(tzinfo=None)
    return timestamp.astimezone(UTC).replace(tzinfo=None) if timestamp.tzinfo else timestamp


def _drop_previous(workspace: Workspace, project: Project, paths: ProjectPaths, run_id: str) -> str | None:
    """Delete the snapshot this run added last time (its governance record names it), so a rerun or a retried task
    leaves one snapshot per run; returns the deleted id. Deleted before the new one is added: a failure in between
    leaves the run without a snapshot until the retry, never with two."""
    previous = (read_json(paths.governance_record(run_id), {}) or {}).get("snapshot") or {}
    snapshot_id = previous.get("snapshot_id")
    if not snapshot_id or previous.get("project_id") != str(project.id):
        return None
    if snapshot_id not in {str(existing) for existing in workspace.list_runs(project.id)}:
        return None
    workspace.delete_run(project.id, snapshot_id)
    return str(snapshot_id)


def record_run(
    paths: ProjectPaths,
    location: str,
    run_id: str,
    entities: list[str],
    model: str = DEFAULT_MODEL,
    timestamp: datetime | None = None,
) -> dict[str, Any]:
    """Add this run's snapshot (drift + governance counts) to the model's project; return its ids.

    Reads ``reports/monitor/summary.json`` and ``snapshot.json`` and, when it belongs to this run,
    ``reports/run_summary.json`` (gate outcome, champion). Nothing but metrics is stored (``include_data=False``).

    Args:
        timestamp: where the run sits on the dashboard's time axis: the Airflow run's logical date (the night it
            describes), not the moment of recording; ``None``: now.

    Idempotent per run: the snapshot recorded earlier for ``run_id`` (named by its governance record) is replaced.
    """
    from evidently.core.report import Snapshot

    from feedbackflow.quality.suite import QUARANTINE_RULES

    rules = list(QUARANTINE_RULES)
    out = paths.stage_reports("monitor")
    monitor = read_json(out / "summary.json", {}) or {}
    run = read_json(paths.run_summary, {}) or {}
    if run.get("run_id") != run_id:
        run = {}
    governance = governance_snapshot(governance_values(monitor, run, rules, entities))
    stored = read_json(out / "snapshot.json", {}) or {}
    snapshot = Snapshot.load_dict(stored) if stored else governance
    if stored:
        from feedbackflow.monitoring.drift import merge_snapshots

        merge_snapshots(snapshot, governance)
    snapshot._timestamp = snapshot_time(timestamp)
    snapshot._tags = [tag for tag in (f"run:{run_id}", (monitor.get("champion") or {}).get("version")) if tag]
    snapshot._metadata = {
        "run_id": run_id,
        "status": str(monitor.get("status")),
        "batches": ",".join(monitor.get("current_batch") or []),
    }
    workspace = open_workspace(location, paths.root)
    project = project_for(workspace, model, rules, entities)
    replaced = _drop_previous(workspace, project, paths, run_id)
    ref = workspace.add_run(project.id, snapshot, include_data=False, name=f"run {run_id}")
    return {
        "project_id": str(project.id),
        "snapshot_id": str(ref.id),
        "timestamp": snapshot._timestamp.isoformat(),
        "replaced": replaced,
        "workspace": workspace_location(location, paths.root),
    }
