"""Data-quality rules (Great Expectations suites) and row-level quarantine."""
