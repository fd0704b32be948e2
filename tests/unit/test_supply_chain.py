"""Supply chain: the pip-audit check CI runs (.ci/audit.py) and its allow-list; the images' users are in test_docker."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ci_audit", ROOT / ".ci" / "audit.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def _report(*dependencies: dict) -> dict:
    return {"dependencies": list(dependencies), "fixes": []}


VULNERABLE = {
    "name": "jinja2",
    "version": "3.1.2",
    "vulns": [{"id": "GHSA-h5c8-rqwp-cp95", "aliases": ["CVE-2024-22195"], "fix_versions": ["3.1.3"]}],
}
CLEAN = {"name": "pandas", "version": "2.3.3", "vulns": []}


def test_an_unaccepted_finding_fails_and_says_what_to_do(audit: ModuleType) -> None:
    verdict = audit.evaluate(_report(VULNERABLE, CLEAN), {})

    assert verdict.exit_code(required=False) == 1
    text = "\n".join(verdict.lines(required=False))
    assert "VULNERABLE: jinja2 3.1.2: GHSA-h5c8-rqwp-cp95 (fixed in: 3.1.3)" in text
    assert "audit-allowlist.toml" in text and "2 of 2 pinned packages audited" in text


def test_an_allow_listed_finding_passes_with_its_reason_and_stale_entries_are_named(audit, tmp_path) -> None:
    allowlist = tmp_path / "allow.toml"
    allowlist.write_text(
        '[[accepted]]\nid = "CVE-2024-22195"\npackage = "jinja2"\nreason = "xmlattr filter unused"\n\n'
        '[[accepted]]\nid = "GHSA-0000-0000-0000"\npackage = "old"\nreason = "gone"\n',
        encoding="utf-8",
    )

    verdict = audit.evaluate(_report(VULNERABLE, CLEAN), audit.load_allowlist(allowlist))

    assert verdict.exit_code(required=True) == 0
    assert verdict.accepted == ["jinja2 3.1.2: GHSA-h5c8-rqwp-cp95 (fixed in: 3.1.3): xmlattr filter unused"]
    assert verdict.stale == ["GHSA-0000-0000-0000"]


def test_an_allow_list_entry_needs_a_reason(audit, tmp_path) -> None:
    allowlist = tmp_path / "allow.toml"
    allowlist.write_text('[[accepted]]\nid = "GHSA-h5c8-rqwp-cp95"\npackage = "jinja2"\nreason = " "\n')
    with pytest.raises(audit.AuditConfigError, match="entry 1 lacks reason"):
        audit.load_allowlist(allowlist)
    assert audit.main(["--allowlist", str(allowlist), "--report", str(allowlist)]) == 2


def test_no_answer_from_the_service_is_reported_not_passed_off_as_clean(audit, tmp_path, monkeypatch, capsys) -> None:
    # What pip-audit writes when PyPI's JSON API answers 404 for every pin: it still says "No known vulnerabilities".
    skipped = [{"name": name, "skip_reason": "Dependency not found on PyPI and could not be audited"} for name in "ab"]
    report = tmp_path / "report.json"
    report.write_text(json.dumps(_report(*skipped)), encoding="utf-8")
    allowlist = ROOT / "requirements" / "audit-allowlist.toml"

    monkeypatch.delenv(audit.REQUIRED_ENV, raising=False)
    assert audit.main(["--allowlist", str(allowlist), "--report", str(report)]) == 0
    assert "NOT AUDITED" in capsys.readouterr().out
    monkeypatch.setenv(audit.REQUIRED_ENV, "1")
    assert audit.main(["--allowlist", str(allowlist), "--report", str(report)]) == 1

    partly = audit.evaluate(_report(skipped[0], CLEAN), {})
    assert partly.exit_code(required=True) == 0 and "1 pins could not be audited: a" in "\n".join(partly.lines(True))


def test_ci_runs_the_audit_with_the_pinned_tool_and_the_tests() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make audit" in ci and "make test" in ci
    pins = (ROOT / "requirements" / "audit-3.11.txt").read_text(encoding="utf-8").splitlines()
    requirements = [line for line in pins if line.strip() and not line.startswith("#")]
    assert all("==" in line for line in requirements) and "pip-audit==2.10.1" in requirements
