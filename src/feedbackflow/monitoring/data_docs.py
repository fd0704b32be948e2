"""Data Docs that keep every run's validation: a file-mode Great Expectations context kept across runs.

The validate stage builds the Data Docs of *its* run in ``reports/validate/data_docs/`` (a DVC output, replaced on
each run) and keeps the checkpoint's validation result there (``validation_result.json``, counts only). The
``record`` task adds that result to a file-mode GX context under ``governance/gx/`` (its validation-results store
keeps every run) and rebuilds the history site ``reports/data_docs/`` from all of them, so the index lists every
run's validation, newest first, and each run's page stays reachable. The site's pages load local copies of their
CSS and JS (:func:`feedbackflow.quality.offline.make_offline`).

A result is stored under its own run name and time (GX's ``ValidationResultIdentifier``), so a night whose validate
stage was skipped (unchanged inputs) stores nothing new.
"""

from __future__ import annotations

import json
import os
from typing import Any

from feedbackflow.config import ProjectPaths

CONTEXT_DIR = "gx"
"""Under ``governance/``: GX's file-mode project (``great_expectations.yml``, the validation-results store)."""
SITE_NAME = "feedbackflow_history"
"""The history site (``ProjectPaths.data_docs_history``, under ``reports/``, which the governance plugin serves)."""


def _context(paths: ProjectPaths) -> Any:
    import great_expectations as gx

    root = paths.governance
    root.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=str(root))
    base = os.path.relpath(paths.data_docs_history, context.root_directory)  # relative: the project folder can move
    site = {
        "class_name": "SiteBuilder",
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": base},
    }
    if (context.variables.data_docs_sites or {}).get(SITE_NAME) != site:
        context.variables.data_docs_sites = {SITE_NAME: site}
        context.variables.save()
        context = gx.get_context(mode="file", project_root_dir=str(root))
    return context


def add_validation(paths: ProjectPaths) -> str | None:
    """Store the latest validate run's result in the history and rebuild the site.

    Returns:
        That run's page relative to ``reports/`` (e.g. ``data_docs/validations/...html``), or None when the validate
        stage kept no result (it has not run, or it ran before results were kept).

    Raises:
        RuntimeError: a page of the rebuilt site would still load something from the internet.
    """
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResultSchema
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    from feedbackflow.quality.offline import make_offline
    from feedbackflow.quality.outputs import VALIDATION_RESULT_FILE

    source = paths.data_docs / VALIDATION_RESULT_FILE
    if not source.is_file():
        return None
    result = ExpectationSuiteValidationResultSchema().load(json.loads(source.read_text(encoding="utf-8")))
    run = result.meta.get("run_id")
    run = run if isinstance(run, RunIdentifier) else RunIdentifier(**dict(run or {}))
    batch = result.meta.get("active_batch_definition") or {}
    batch_id = "-".join(
        str(batch[k]) for k in ("datasource_name", "data_asset_name") if isinstance(batch, dict) and k in batch
    )
    key = ValidationResultIdentifier(ExpectationSuiteIdentifier(name=result.suite_name), run, batch_id or None)
    context = _context(paths)
    context.validation_results_store.set(key, result)
    context.build_data_docs(site_names=[SITE_NAME])
    left = make_offline(paths.data_docs_history)
    if left:
        raise RuntimeError(f"Data Docs history still loads from the internet: {left[:3]}")
    return page_of(paths, key)


def page_of(paths: ProjectPaths, key: Any) -> str | None:
    """The history site's page of one validation result, relative to ``reports/``."""
    run_name, run_time = key.run_id.to_tuple()
    folder = paths.data_docs_history / "validations" / key.expectation_suite_identifier.name / run_name / run_time
    pages = sorted(folder.glob("*.html")) if folder.is_dir() else []
    return pages[0].relative_to(paths.reports).as_posix() if pages else None


def index_page(paths: ProjectPaths) -> str | None:
    """The history site's index relative to ``reports/``, when it was built."""
    index = paths.data_docs_history / "index.html"
    return index.relative_to(paths.reports).as_posix() if index.is_file() else None
