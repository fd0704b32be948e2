"""A worker pulls only the outputs it lacks: a report file already in the workspace as ``dvc.lock`` records it
starts no DVC process, and the hash compared is the one DVC itself writes."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import yaml

from feedbackflow.storage.dvc import Dvc


def _out(path: str, content: bytes) -> dict:
    return {"path": path, "hash": "md5", "md5": hashlib.md5(content).hexdigest(), "size": len(content)}


def test_only_outputs_missing_or_changed_are_pulled(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "same.json").write_bytes(b'{"rows": 3}\n')
    (reports / "changed.json").write_bytes(b'{"rows": 4}\n')
    (reports / "resized.json").write_bytes(b'{"rows": 30}\n')
    (tmp_path / "data").mkdir()
    lock = {
        "schema": "2.0",
        "stages": {
            "s": {
                "outs": [
                    _out("reports/same.json", b'{"rows": 3}\n'),
                    _out("reports/changed.json", b'{"rows": 5}\n'),  # same size, other bytes
                    _out("reports/resized.json", b'{"rows": 3}\n'),
                    _out("reports/missing.json", b"{}"),
                    {"path": "data", "hash": "md5", "md5": "0" * 32 + ".dir", "size": 1, "nfiles": 1},
                ]
            }
        },
    }
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock), encoding="utf-8")
    targets = ["reports/same.json", "reports/changed.json", "reports/resized.json", "reports/missing.json", "data"]
    assert Dvc(tmp_path).to_pull([*targets, "reports/not-an-output.json"]) == targets[1:]


def test_the_hash_compared_is_the_one_dvc_records(tmp_path: Path) -> None:
    """DVC 3 hashes a text file's raw bytes (DVC 2 turned CRLF into LF first): a file with Windows line ends that DVC
    committed counts as in the workspace, and its pull is skipped."""
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*dvc, "init", "-q"], cwd=tmp_path, check=True)
    command = f"{sys.executable} -c \"open('report.json','wb').write(bytes([123, 125, 13, 10]))\""
    subprocess.run([*dvc, "stage", "add", "-q", "-n", "s", "-o", "report.json", command], cwd=tmp_path, check=True)
    subprocess.run([*dvc, "repro", "-q"], cwd=tmp_path, check=True)
    assert Dvc(tmp_path).to_pull(["report.json"]) == []
    (tmp_path / "report.json").write_bytes(b"{}\n")
    assert Dvc(tmp_path).to_pull(["report.json"]) == ["report.json"]
