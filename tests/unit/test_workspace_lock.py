"""Two demo runs (`airflow dags test`, which ignores max_active_runs) in one workspace run one after the other."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from feedbackflow.demo.run import workspace_lock

HOLDER = """
import sys, time
from pathlib import Path
from feedbackflow.demo.run import workspace_lock
root = Path(sys.argv[1])
with workspace_lock(root):
    (root / "held").write_text("yes")
    time.sleep(2)
    (root / "released").write_text(repr(time.time()))
"""


def test_a_second_run_waits_for_the_first(tmp_path: Path, capsys) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)])
    deadline = time.monotonic() + 60
    while not (tmp_path / "held").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (tmp_path / "held").exists(), "the first run never took the lock"
    with workspace_lock(tmp_path):
        acquired = time.time()
    assert holder.wait(60) == 0
    assert acquired >= float((tmp_path / "released").read_text()), "both runs held the workspace at once"
    assert "another run holds this workspace (pid " in capsys.readouterr().err


def test_the_lock_is_free_again_after_a_killed_holder(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.replace("time.sleep(2)", "time.sleep(60)"), str(tmp_path)])
    deadline = time.monotonic() + 60
    while not (tmp_path / "held").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    holder.kill()
    holder.wait()
    with workspace_lock(tmp_path):  # the operating system released it with the process
        assert (tmp_path / ".work" / "run.lock").is_file()
