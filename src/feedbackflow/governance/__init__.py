"""Governance: what the pipeline can tell an auditor, lineage first (datasets, versions, the chain to a model)."""
