import json
import os
import threading
import time

import pytest

from feedbackflow.config import ProjectPaths
from feedbackflow.stages import ingest
from feedbackflow.storage.manifest import read_manifest
from tests.helpers import params_settings


@pytest.fixture
def project(tmp_path):
    (tmp_path / "data" / "landing").mkdir(parents=True)
    return ProjectPaths(tmp_path)


def _drop(project, name, content):
    path = project.root / "data" / "landing" / name
    path.write_text(content, encoding="utf-8")
    _age(path, 60)  # a delivery that settled a while ago: taken without the settle wait
    return path


def test_new_files_are_copied_immutably_with_provenance(project, monkeypatch):
    monkeypatch.setenv("FEEDBACKFLOW_RUN_ID", "scheduled__2026-01-01")
    _drop(project, "a.csv", "id,text\n1,hello\n")
    summary = ingest.run(params_settings(), project)
    assert summary["new_files"] == ["a.csv"]
    (entry,) = read_manifest(project.raw_manifest)
    raw = project.raw / entry["raw_file"]
    assert raw.read_text() == "id,text\n1,hello\n"
    assert not os.access(raw, os.W_OK) or os.geteuid() == 0  # read-only (root ignores modes)
    assert raw.stat().st_mode & 0o222 == 0
    assert entry["run_id"] == "scheduled__2026-01-01"
    assert entry["source"] == "folder" and entry["key"] == "a.csv" and entry["size"] == 16


def test_rerun_with_nothing_new_changes_nothing(project):
    _drop(project, "a.csv", "id,text\n1,hello\n")
    ingest.run(params_settings(), project)
    before = {path.name: path.stat().st_mtime_ns for path in project.raw.iterdir()}
    summary = ingest.run(params_settings(), project)
    assert summary["new_batches"] == []
    assert {path.name: path.stat().st_mtime_ns for path in project.raw.iterdir()} == before


def test_redelivered_identical_file_is_recognised(project):
    _drop(project, "a.csv", "id,text\n1,hello\n")
    first = ingest.run(params_settings(), project)
    _drop(project, "a-resent.csv", "id,text\n1,hello\n")
    second = ingest.run(params_settings(), project)
    assert second["new_batches"] == []
    assert {"key": "a-resent.csv", "duplicate_of": first["new_batches"][0]} in second["skipped"]


def test_each_run_gets_a_new_sequence_and_partial_files_are_ignored(project):
    _drop(project, "a.csv", "id,text\n1,a\n")
    ingest.run(params_settings(), project)
    _drop(project, "b.jsonl", '{"id": "2", "text": "b"}\n')
    _drop(project, ".c.csv.partial", "id,text\n3,c\n")
    ingest.run(params_settings(), project)
    entries = read_manifest(project.raw_manifest)
    assert [(e["key"], e["sequence"]) for e in entries] == [("a.csv", 1), ("b.jsonl", 2)]


def test_missing_landing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="landing folder"):
        ingest.run(params_settings(), ProjectPaths(tmp_path))


# --------------------------------------------------------------------------------------------------------------
# Landing folder: only complete regular files are taken.


def _landing_settings(**ingest_params):
    return params_settings(ingest=ingest_params)


def _age(path, seconds):
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))


def test_a_file_still_being_written_waits_until_its_size_and_mtime_hold(project):
    landing = project.root / "data" / "landing"
    growing = landing / "night.csv"
    growing.write_text("id,text\n1,first row\n", encoding="utf-8")
    stop = threading.Event()

    def writer():  # a sender that keeps appending rows while ingest looks at the folder
        row = 2
        while not stop.is_set():
            with growing.open("a", encoding="utf-8") as handle:
                handle.write(f"{row},row {row}\n")
            row += 1
            time.sleep(0.05)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        summary = ingest.run(_landing_settings(settle_seconds=0.5), project)
    finally:
        stop.set()
        thread.join()
    assert summary["new_batches"] == [] and read_manifest(project.raw_manifest) == []
    assert summary["waiting"] == [
        {"key": "night.csv", "reason": "still being written (size or mtime changed within 0.5 s)"}
    ]

    later = ingest.run(_landing_settings(settle_seconds=0.5), project)  # the sender has finished
    (entry,) = read_manifest(project.raw_manifest)
    assert later["new_files"] == ["night.csv"] and later["waiting"] == []
    assert (project.raw / entry["raw_file"]).read_bytes() == growing.read_bytes()  # the whole file, not a prefix


def test_a_file_that_settled_long_ago_is_taken_without_waiting(project):
    _drop(project, "a.csv", "id,text\n1,hello\n")
    started = time.monotonic()
    summary = ingest.run(_landing_settings(settle_seconds=30), project)
    assert summary["new_files"] == ["a.csv"] and time.monotonic() - started < 10


def test_marker_mode_takes_a_file_only_once_its_done_marker_exists(project):
    _drop(project, "a.csv", "id,text\n1,hello\n")
    settings = _landing_settings(complete_when="marker")
    first = ingest.run(settings, project)
    assert first["new_files"] == [] and first["waiting"] == [{"key": "a.csv", "reason": "no a.csv.done marker yet"}]
    _drop(project, "a.csv.done", "")
    assert ingest.run(settings, project)["new_files"] == ["a.csv"]


def test_symlinks_and_special_files_are_refused_with_a_reason(project, tmp_path):
    landing = project.root / "data" / "landing"
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("id,text\n9,not delivered here\n", encoding="utf-8")
    (landing / "linked.csv").symlink_to(outside)
    os.mkfifo(landing / "pipe.csv")  # opening it would block ingest forever
    (landing / "folder.csv").mkdir()
    _drop(project, "real.csv", "id,text\n1,hello\n")

    summary = ingest.run(params_settings(), project)

    assert summary["new_files"] == ["real.csv"]
    reasons = {item["key"]: item["reason"] for item in summary["refused"]}
    assert set(reasons) == {"linked.csv", "pipe.csv", "folder.csv"}
    assert reasons["linked.csv"].startswith("a symbolic link, not a regular file: refused")
    assert reasons["pipe.csv"].startswith("a FIFO (named pipe), not a regular file: refused")
    assert reasons["folder.csv"].startswith("a directory, not a regular file")
    report = json.loads((project.stage_reports("ingest") / "ingest.json").read_text())
    assert report["refused"] == summary["refused"]
    assert [entry["key"] for entry in read_manifest(project.raw_manifest)] == ["real.csv"]
