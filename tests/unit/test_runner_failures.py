"""The runner after a failed stage: real DVC, a one-stage project whose command writes its outputs and then fails.

Without the runner's clean-up the next run fails at ``dvc pull --allow-missing <stage>`` with "Can't remove the
following unsaved files without confirmation" and nothing recovers without a person cleaning the workspace.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from feedbackflow.config import ProjectPaths
from feedbackflow.orchestration.runner import (
    log_task_failure,
    persistent_snapshot,
    run_stage,
    stage_message,
    stage_outputs,
)
from feedbackflow.storage.dvc import DvcError

# A stage like ours: appends each new row to its persistent store (written aside, then renamed, like the raw store),
# writes its report and data, then fails with the CLI's "error in <stage>: ..." and exit 65.
STAGE = textwrap.dedent(
    """
    import json, pathlib, sys
    rows = pathlib.Path("input.txt").read_text().split()
    for row in rows:
        if row == "boom":
            print("error in make: the source went away after appending. Rerun once it is back.", file=sys.stderr)
            sys.exit(69)
        if not pathlib.Path(f"store/{row}.txt").exists():
            pathlib.Path(f"store/.{row}.partial").write_text(row)
            pathlib.Path(f"store/.{row}.partial").replace(f"store/{row}.txt")
    pathlib.Path("out").mkdir(exist_ok=True)
    pathlib.Path("out/rows.txt").write_text("\\n".join(rows))
    pathlib.Path("report.json").write_text(json.dumps({"rows": len(rows), "bad": rows.count("bad")}))
    if "bad" in rows:
        print("error in make: input.txt row 2 broke rule 'no_bad'. Fix the export and re-deliver it.", file=sys.stderr)
        print("It keeps failing until then.", file=sys.stderr)
        sys.exit(65)
    """
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    (root / "make.py").write_text(STAGE, encoding="utf-8")
    (root / "input.txt").write_text("a b", encoding="utf-8")
    dvc_yaml = {
        "stages": {
            "make": {
                "cmd": f"{sys.executable} make.py",
                "deps": ["make.py", "input.txt"],
                "outs": ["out", {"store": {"persist": True}}],
                "metrics": [{"report.json": {"cache": True}}],
            }
        }
    }
    (root / "dvc.yaml").write_text(yaml.safe_dump(dvc_yaml), encoding="utf-8")
    (root / "store").mkdir()
    (root / "store" / "kept.txt").write_text("append-only", encoding="utf-8")
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "--no-scm", "-q"], cwd=root, check=True)
    subprocess.run([*dvc, "remote", "add", "-d", "local", str(tmp_path / "remote")], cwd=root, check=True)
    return root


def test_stage_outputs_are_read_from_dvc_yaml(project: Path) -> None:
    assert stage_outputs(project, "make") == [("out", False), ("store", True), ("report.json", False)]
    root = Path(__file__).resolve().parents[2]
    assert ("data/raw", True) in stage_outputs(root, "ingest")
    assert ("reports/validate/data_docs", False) in stage_outputs(root, "validate")
    assert ("reports/train/metrics.json", False) in stage_outputs(root, "train")


def test_a_failed_stage_does_not_wedge_the_next_run(project: Path) -> None:
    run_stage("make", root=str(project), run_id="night-1")  # a good night: dvc.lock now has the stage

    (project / "input.txt").write_text("a bad c", encoding="utf-8")  # a bad delivery
    with pytest.raises(DvcError) as raised:
        run_stage("make", root=str(project), run_id="night-2")
    error = raised.value
    assert error.exit_code == 65
    message = str(error)
    assert message.startswith("input.txt row 2 broke rule 'no_bad'. Fix the export and re-deliver it.")
    assert "It keeps failing until then." in message and ".work/failed/make/" in message
    assert "dvc repro" not in message and "ERROR: failed to reproduce" not in message  # the stage's words only

    # What the failed run wrote is kept aside with its reason, not lost; the persistent output is left alone.
    (kept,) = ProjectPaths(project).failed_runs.joinpath("make").iterdir()
    assert kept.name.endswith("night-2")
    assert (kept / "out" / "rows.txt").read_text() == "a\nbad\nc"
    assert json.loads((kept / "report.json").read_text()) == {"rows": 3, "bad": 1}
    record = json.loads((kept / "failure.json").read_text())
    assert record["exit_code"] == 65 and record["stage"] == "make" and record["message"] in message
    assert sorted(record["kept"]) == ["out", "report.json", "store/bad.txt", "store/c.txt"]  # appends rolled back
    assert _store(project) == ["a.txt", "b.txt", "kept.txt"]
    assert (project / "store" / "kept.txt").read_text() == "append-only"

    (project / "input.txt").write_text("a c d", encoding="utf-8")  # the fixed delivery
    result = run_stage("make", root=str(project), run_id="night-3")  # no manual step in between

    assert result["ran"] is True
    assert (project / "out" / "rows.txt").read_text() == "a\nc\nd"


def test_outputs_left_by_a_killed_run_are_moved_aside_before_the_pull(project: Path) -> None:
    run_stage("make", root=str(project), run_id="night-1")
    # A worker killed mid-stage leaves outputs that are in no cache: DVC refuses to overwrite them.
    (project / "report.json").write_text('{"rows": 99}', encoding="utf-8")
    (project / "out" / "rows.txt").write_text("half-written", encoding="utf-8")

    result = run_stage("make", root=str(project), run_id="night-1-retry")

    assert result["ran"] is False  # nothing changed: the last good outputs are back, no rerun needed
    assert json.loads((project / "report.json").read_text()) == {"rows": 2, "bad": 0}
    (kept,) = ProjectPaths(project).failed_runs.joinpath("make").iterdir()
    assert (kept / "report.json").read_text() == '{"rows": 99}'


def _store(project: Path) -> list[str]:
    return sorted(path.name for path in (project / "store").iterdir())


def test_a_stage_that_fails_after_appending_to_its_persistent_store_is_rolled_back(project: Path) -> None:
    run_stage("make", root=str(project), run_id="night-1")
    assert _store(project) == ["a.txt", "b.txt", "kept.txt"]

    (project / "input.txt").write_text("a b c d boom e", encoding="utf-8")  # the source fails after two new rows
    with pytest.raises(DvcError) as raised:
        run_stage("make", root=str(project), run_id="night-2")

    assert raised.value.exit_code == 69
    assert _store(project) == ["a.txt", "b.txt", "kept.txt"]  # no half delivery left for the retry to build on
    (kept,) = ProjectPaths(project).failed_runs.joinpath("make").iterdir()
    assert sorted(path.name for path in (kept / "store").iterdir()) == ["c.txt", "d.txt"]  # kept aside, not lost
    assert sorted(json.loads((kept / "failure.json").read_text())["kept"]) == ["store/c.txt", "store/d.txt"]
    assert not (project / ".work" / "rollback").joinpath("make").exists()

    (project / "input.txt").write_text("a b c d e", encoding="utf-8")  # the source is back
    result = run_stage("make", root=str(project), run_id="night-2-retry")  # no manual step

    assert result["ran"] is True
    assert _store(project) == ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt", "kept.txt"]


def test_a_first_run_that_fails_after_appending_leaves_the_store_as_it_found_it(project: Path) -> None:
    (project / "input.txt").write_text("a boom", encoding="utf-8")  # no dvc.lock entry yet: nothing to pull

    with pytest.raises(DvcError):
        run_stage("make", root=str(project), run_id="night-1")

    assert _store(project) == ["kept.txt"] and (project / "store" / "kept.txt").read_text() == "append-only"


def test_appends_of_a_killed_run_are_rolled_back_before_the_next_pull(project: Path) -> None:
    run_stage("make", root=str(project), run_id="night-1")
    (project / "input.txt").write_text("a b c", encoding="utf-8")
    # A worker killed mid-stage: the snapshot was taken, the stage appended c.txt, nothing cleaned up after it.
    persistent_snapshot(ProjectPaths(project), "make").take()
    (project / "store" / "c.txt").write_text("c", encoding="utf-8")

    result = run_stage("make", root=str(project), run_id="night-2")  # without the rollback: "unsaved files"

    assert result["ran"] is True
    assert _store(project) == ["a.txt", "b.txt", "c.txt", "kept.txt"]  # c.txt written again by this run
    (kept,) = ProjectPaths(project).failed_runs.joinpath("make").iterdir()
    assert (kept / "store" / "c.txt").read_text() == "c"


def test_stage_message_is_cut_from_dvc_output() -> None:
    output = "\n".join(
        [
            "Running stage 'validate':",
            "> feedbackflow validate",
            "2026-11-30 10:00:00 INFO feedbackflow: 12 rows read",
            "error in validate: broken.csv (raw file data/raw/x.csv) broke rule 'required_columns': missing label.",
            "Fix the export and re-deliver it.",
            "ERROR: failed to reproduce 'validate': failed to run: feedbackflow validate, exited with 65",
        ]
    )
    assert stage_message("validate", output) == (
        "broken.csv (raw file data/raw/x.csv) broke rule 'required_columns': missing label.\n"
        "Fix the export and re-deliver it."
    )
    assert stage_message("validate", "Traceback (most recent call last):\nKeyError: 'x'") is None


def test_failure_callback_ends_the_task_log_with_the_reason(caplog: pytest.LogCaptureFixture) -> None:
    class Task:
        task_id = "validate"

    log_task_failure({"task_instance": Task(), "exception": RuntimeError("broken.csv broke rule 'required_columns'")})

    assert caplog.records[-1].getMessage() == "validate failed: broken.csv broke rule 'required_columns'"
    assert caplog.records[-1].exc_info is None  # no traceback


def test_only_the_newest_failed_runs_are_kept(project: Path) -> None:
    from feedbackflow.orchestration.runner import KEEP_FAILED, set_aside_outputs

    paths = ProjectPaths(project)
    for night in range(KEEP_FAILED + 2):
        (project / "report.json").write_text(f'{{"night": {night}}}', encoding="utf-8")
        set_aside_outputs(paths, "make", f"2026113{night}T000000Z-night")

    kept = sorted(path.name for path in (paths.failed_runs / "make").iterdir())
    assert len(kept) == KEEP_FAILED and kept[-1] == f"2026113{KEEP_FAILED + 1}T000000Z-night"
    assert (paths.failed_runs / "make" / kept[-1] / "report.json").read_text() == f'{{"night": {KEEP_FAILED + 1}}}'
