"""ingest: copy new feedback from the configured source into the immutable raw store.

Three sources, chosen by ``ingest.source`` in ``params.yaml`` (credentials never live there), each in its own module
of :mod:`feedbackflow.sources`:

* ``folder``: complete regular files in ``ingest.landing_dir`` (CSV, JSON Lines, Parquet), copied byte for byte;
  files still being written wait for the next run, links and special files are refused (:mod:`~.sources.folder`);
* ``s3``: objects under ``ingest.s3.bucket``/``prefix`` through boto3 (:mod:`~.sources.s3`); credentials from the
  standard ``AWS_*`` environment (an Airflow AWS connection is turned into those variables by
  :mod:`feedbackflow.orchestration.tasks`);
* ``postgres``: rows of ``ingest.postgres.table`` (or ``query``) after a watermark, with a look-back for late
  commits (:mod:`~.sources.postgres`); the DSN comes from ``FEEDBACKFLOW_POSTGRES_DSN`` (or libpq's ``PG*``).

Reviewers' labels (``feedbackflow label pull``, :mod:`feedbackflow.labelling`) land in ``<landing_dir>/review/``
and are ingested on every run, whatever the source, as batches of source ``review``.

The manifest (``data/raw/_manifest.jsonl``, :mod:`feedbackflow.storage.manifest`) records every batch with its
content hash and provenance; re-running over the same interval ingests nothing twice. S3 and PostgreSQL outages are
retried inside the stage (``ingest.retry``) and then fail naming the endpoint, never a credential.
"""

from __future__ import annotations

import logging
import os

from feedbackflow.config import ProjectPaths
from feedbackflow.io import write_json
from feedbackflow.settings import SOURCE_OVERRIDE_ENV, Settings, with_source_override
from feedbackflow.sources.folder import ingest_folder
from feedbackflow.sources.postgres import POSTGRES_DSN_ENV, ingest_postgres
from feedbackflow.sources.s3 import ingest_s3
from feedbackflow.storage.manifest import PROVENANCE_COLUMNS, read_manifest

# Re-exported: the DAG layer and older callers import these names from the stage.
__all__ = ["POSTGRES_DSN_ENV", "PROVENANCE_COLUMNS", "ingest_folder", "read_manifest", "run"]

logger = logging.getLogger(__name__)


def run(settings: Settings, paths: ProjectPaths) -> dict:
    """Ingest new batches from the configured source (or a run's override) and write ``reports/ingest/ingest.json``."""
    params = with_source_override(settings.ingest, os.environ.get(SOURCE_OVERRIDE_ENV))
    paths.raw.mkdir(parents=True, exist_ok=True)
    if params.source == "s3":
        summary = ingest_s3(params.s3, params.patterns, paths.raw, paths.raw_manifest, retry=params.retry)
    elif params.source == "postgres":
        summary = ingest_postgres(params.postgres, paths.raw, paths.raw_manifest, retry=params.retry)
    else:
        summary = ingest_folder(
            paths.root / params.landing_dir,
            params.patterns,
            paths.raw,
            paths.raw_manifest,
            complete_when=params.complete_when,
            settle_seconds=params.settle_seconds,
        )
    review = paths.review_deliveries(params.landing_dir)
    if review.is_dir():  # reviewers' labels (feedbackflow label pull), whatever the main source
        summary["review"] = ingest_folder(review, ["*.jsonl"], paths.raw, paths.raw_manifest, source_name="review")
    if params.source != "folder":
        # dvc.yaml lists the landing folder as a dependency (the folder source's input); DVC needs it to exist.
        (paths.root / params.landing_dir).mkdir(parents=True, exist_ok=True)
    summary["batches_total"] = len(read_manifest(paths.raw_manifest))
    write_json(paths.stage_reports("ingest") / "ingest.json", summary)
    logger.info(
        "ingest (%s): %d new batch(es), %d duplicate(s) skipped",
        params.source,
        len(summary["new_batches"]),
        len(summary["skipped"]),
    )
    return summary
