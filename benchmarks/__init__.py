"""Benchmarks of the shipped feedbackflow code; run each as a module from the repository root, for example
``python -m benchmarks.bench_pii --json-out docs/benchmarks/results/pii.json`` (the Makefile's ``bench-*`` targets)."""
