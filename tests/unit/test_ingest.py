import os

import pytest

from feedbackflow.config import ProjectPaths
from feedbackflow.settings import parse_settings
from feedbackflow.stages import ingest


@pytest.fixture
def project(tmp_path):
    (tmp_path / "data" / "landing").mkdir(parents=True)
    return ProjectPaths(tmp_path)


def _drop(project, name, content):
    path = project.root / "data" / "landing" / name
    path.write_text(content, encoding="utf-8")
    return path


def test_new_files_are_copied_immutably_with_provenance(project, monkeypatch):
    monkeypatch.setenv("FEEDBACKFLOW_RUN_ID", "scheduled__2026-01-01")
    _drop(project, "a.csv", "id,text\n1,hello\n")
    summary = ingest.run(parse_settings({}), project)
    assert summary["new_files"] == ["a.csv"]
    (entry,) = ingest.read_manifest(project.raw_manifest)
    raw = project.raw / entry["raw_file"]
    assert raw.read_text() == "id,text\n1,hello\n"
    assert not os.access(raw, os.W_OK) or os.geteuid() == 0  # read-only (root ignores modes)
    assert raw.stat().st_mode & 0o222 == 0
    assert entry["run_id"] == "scheduled__2026-01-01"
    assert entry["source"] == "folder" and entry["key"] == "a.csv" and entry["size"] == 16


def test_rerun_with_nothing_new_changes_nothing(project):
    _drop(project, "a.csv", "id,text\n1,hello\n")
    ingest.run(parse_settings({}), project)
    before = {path.name: path.stat().st_mtime_ns for path in project.raw.iterdir()}
    summary = ingest.run(parse_settings({}), project)
    assert summary["new_batches"] == []
    assert {path.name: path.stat().st_mtime_ns for path in project.raw.iterdir()} == before


def test_redelivered_identical_file_is_recognised(project):
    _drop(project, "a.csv", "id,text\n1,hello\n")
    first = ingest.run(parse_settings({}), project)
    _drop(project, "a-resent.csv", "id,text\n1,hello\n")
    second = ingest.run(parse_settings({}), project)
    assert second["new_batches"] == []
    assert {"key": "a-resent.csv", "duplicate_of": first["new_batches"][0]} in second["skipped"]


def test_each_run_gets_a_new_sequence_and_partial_files_are_ignored(project):
    _drop(project, "a.csv", "id,text\n1,a\n")
    ingest.run(parse_settings({}), project)
    _drop(project, "b.jsonl", '{"id": "2", "text": "b"}\n')
    _drop(project, ".c.csv.partial", "id,text\n3,c\n")
    ingest.run(parse_settings({}), project)
    entries = ingest.read_manifest(project.raw_manifest)
    assert [(e["key"], e["sequence"]) for e in entries] == [("a.csv", 1), ("b.jsonl", 2)]


def test_missing_landing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="landing folder"):
        ingest.run(parse_settings({}), ProjectPaths(tmp_path))
