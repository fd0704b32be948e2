"""The raw manifest: a corrupted one fails once, naming the file and how to restore it, and is never retried."""

from __future__ import annotations

import json

import pytest

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import StateCorruptError
from feedbackflow.orchestration.runner import NO_RETRY_EXIT_CODES
from feedbackflow.stages import ingest, validate
from feedbackflow.storage.manifest import read_manifest
from tests.helpers import params_settings

SETTINGS = params_settings(validate={"taxonomy": "labels.json", "min_rows_per_label": 0})


@pytest.fixture
def project(tmp_path):
    landing = tmp_path / "data" / "landing"
    landing.mkdir(parents=True)
    (landing / "a.csv").write_text("id,text\n1,hello\n", encoding="utf-8")
    (tmp_path / "labels.json").write_text('["card_arrival"]', encoding="utf-8")
    paths = ProjectPaths(tmp_path)
    ingest.run(params_settings(ingest={"settle_seconds": 0}), paths)
    return paths


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda text: text[: len(text) // 2], r"line 1 is not valid JSON"),  # cut short
        (lambda text: text + "garbage\n", r"line 2 is not valid JSON"),
        (lambda text: text + json.dumps({"batch_id": "x"}) + "\n", r"line 2 is not a batch entry"),
        (lambda text: "\udcff", r"not UTF-8 text"),
    ],
)
def test_a_corrupted_manifest_names_the_file_and_the_restore_and_is_not_retried(project, damage, problem):
    text = project.raw_manifest.read_text(encoding="utf-8")
    project.raw_manifest.write_bytes(damage(text).encode("utf-8", "surrogateescape"))
    for stage in (ingest, validate):  # the two readers of the manifest fail the same way
        with pytest.raises(StateCorruptError, match=problem) as error:
            stage.run(SETTINGS, project)
        message = str(error.value)
        assert str(project.raw_manifest) in message
        assert "dvc pull --force data/raw" in message and "dvc.lock" in message
    assert StateCorruptError.exit_code in NO_RETRY_EXIT_CODES  # the Airflow task fails once, without retries


def test_an_intact_manifest_reads_back(project):
    (entry,) = read_manifest(project.raw_manifest)
    assert entry["key"] == "a.csv" and entry["sequence"] == 1
