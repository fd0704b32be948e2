"""A thin wrapper around the ``dvc`` command line, run in the project root."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from feedbackflow.errors import FeedbackflowError

log = logging.getLogger(__name__)


class DvcError(FeedbackflowError):
    """A DVC command failed; ``exit_code`` carries the failing stage command's own code when there is one.

    ``output`` is DVC's whole combined output (the stage command's included), for callers that pick out the stage's
    own message.
    """

    def __init__(self, message: str, exit_code: int = 1, output: str = "") -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.output = output


class Dvc:
    """Runs ``dvc`` sub-commands in ``root`` with the project's virtual environment on ``PATH``."""

    def __init__(self, root: Path, env: Mapping[str, str] | None = None) -> None:
        self.root = root
        bin_dir = str(Path(sys.executable).parent)
        self.env = {**os.environ, **(env or {})}
        self.env["PATH"] = os.pathsep.join([bin_dir, self.env.get("PATH", "")])

    def __call__(self, *args: str) -> str:
        """Run ``dvc --wait-for-lock <args>`` and return its combined output.

        Raises:
            DvcError: DVC exited non-zero; the message holds the end of its output.
        """
        command = [sys.executable, "-m", "dvc", "--wait-for-lock", *args]
        log.info("$ dvc %s", " ".join(args))
        # stream the output line by line so long stages (train) show progress in the task log as they run
        process = subprocess.Popen(
            command, cwd=self.root, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            line = line.rstrip()
            lines.append(line)
            if line.strip():
                log.info("%s", line)
        returncode = process.wait()
        output = "\n".join(lines)
        if returncode != 0:
            stage_code = re.search(r"exited with (\d+)", output)
            code = int(stage_code.group(1)) if stage_code else returncode
            tail = "\n".join(output.strip().splitlines()[-15:])
            raise DvcError(f"dvc {' '.join(args)} failed (exit {code}):\n{tail}", exit_code=code, output=output)
        return output

    def lock(self) -> dict[str, Any]:
        """The parsed ``dvc.lock`` (empty when no stage ran yet)."""
        path = self.root / "dvc.lock"
        if not path.exists():
            return {"schema": "2.0", "stages": {}}
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {"schema": "2.0", "stages": {}}

    def merge_lock(self, entries: Mapping[str, Any]) -> None:
        """Write other workers' lock entries (stage name -> entry) into the local ``dvc.lock``.

        This is how a task on a fresh machine learns the exact hashes its upstream stages produced; the data itself
        then comes from the remote by those hashes.
        """
        if not entries:
            return
        lock = self.lock()
        stages = lock.setdefault("stages", {})
        if all(stages.get(name) == entry for name, entry in entries.items()):
            return
        stages.update(entries)
        (self.root / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False), encoding="utf-8")
