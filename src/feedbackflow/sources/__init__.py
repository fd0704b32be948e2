"""Readers of the ingest stage's sources: the landing folder, an S3 prefix and a PostgreSQL table or query.

Each reader admits new batches into the raw store through :class:`feedbackflow.storage.manifest.RawBatches` and
returns the run's summary; :mod:`feedbackflow.sources.retry` gives the network sources bounded retries.
"""
