"""Drift reports (Evidently)."""
