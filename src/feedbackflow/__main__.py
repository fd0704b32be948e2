"""``python -m feedbackflow``: the CLI."""

from feedbackflow.cli import app

app()
