"""The erasure_request DAG's forget task never reports done while a copy is left: a report still naming the subject
(a workspace file the erasure scans but does not rewrite) makes the certificate incomplete and the task fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from feedbackflow.governance.erasure import ErasureIncompleteError
from feedbackflow.orchestration.erasure_tasks import erase
from tests.helpers import write_params

ROOT = Path(__file__).resolve().parents[2]


def test_a_copy_left_fails_the_task_and_the_certificate_says_incomplete(tmp_path, monkeypatch):
    from dvc.repo import Repo

    remote = f"['remote \"general\"']\n    url = {tmp_path / 'remote'}\n"
    root = tmp_path / "project"
    root.mkdir()
    Repo.init(str(root), no_scm=True).close()
    (root / ".dvc" / "config").write_text(f"[core]\n    no_scm = True\n    remote = general\n{remote}")
    write_params(root)
    (root / "dvc.yaml").write_text((ROOT / "dvc.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    (root / "reports").mkdir()
    (root / "reports" / "notes.md").write_text("escalated by jane.roe@example.com\n", encoding="utf-8")
    monkeypatch.setenv("FEEDBACKFLOW_PROJECT_DIR", str(root))
    monkeypatch.setenv("FEEDBACKFLOW_ERASURE_KEY", "erasure-test-key-6b1d0c8e2f")
    params = {"request_id": "REQ-L", "requested_by": "dpo", "email": ["Jane.Roe@example.com"]}

    with pytest.raises(ErasureIncompleteError, match=r"REQ-L: the verification found 1 copies left"):
        erase(params)

    certificate = (root / "governance" / "erasure" / "REQ-L.json").read_text(encoding="utf-8")
    assert '"state": "incomplete"' in certificate and "jane.roe" not in certificate.casefold()
