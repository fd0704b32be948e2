"""Supply-chain check: pip-audit over the pinned constraints, with a reviewed allow-list (``make audit``, CI).

pip-audit looks every pin of ``requirements/constraints-3.11.txt`` up in a vulnerability service (PyPI's JSON API by
default, ``--service osv`` for OSV). A finding fails the check unless ``requirements/audit-allowlist.toml`` accepts
its advisory id with a reason.

pip-audit reports "No known vulnerabilities found" and exits 0 even when the service could not answer for a single
pin (each is then skipped as "not found"). This check counts the pins actually audited instead:

* none audited: the service is unreachable (e.g. a network that reaches the package index but not its JSON API).
  The check says so plainly and passes, so CI keeps running where no service can be reached, unless
  ``FEEDBACKFLOW_AUDIT_REQUIRED=1`` makes it fail;
* some skipped: they are named, and the check judges the rest;
* an allow-list entry that no longer matches a finding is reported as stale, so the list shrinks as pins move on.

Exit codes: 0 passed (or could not audit, not required), 1 unaccepted findings (or could not audit, required),
2 the allow-list or pip-audit's output is invalid.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIRED_ENV = "FEEDBACKFLOW_AUDIT_REQUIRED"


class AuditConfigError(ValueError):
    """The allow-list or pip-audit's JSON report cannot be used."""


@dataclass
class Verdict:
    """What one pip-audit report means for CI."""

    audited: int
    skipped: list[str]
    findings: list[str] = field(default_factory=list)  # unaccepted: "package version: id (fix versions)"
    accepted: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # allow-list ids no pin has any more

    def exit_code(self, required: bool) -> int:
        if self.findings:
            return 1
        return 1 if required and not self.audited else 0

    def lines(self, required: bool) -> list[str]:
        total = self.audited + len(self.skipped)
        out = [f"pip-audit: {self.audited} of {total} pinned packages audited"]
        if not self.audited:
            out.append(
                "pip-audit: NOT AUDITED: no vulnerability service answered for any pin (offline, or the index's JSON "
                f"API is not reachable from here). {'Failing' if required else 'Passing'} because "
                f"{REQUIRED_ENV}={'1' if required else 'unset'}; run `make audit` where PyPI or OSV is reachable."
            )
        elif self.skipped:
            shown = ", ".join(self.skipped[:10]) + (
                f" and {len(self.skipped) - 10} more" if len(self.skipped) > 10 else ""
            )
            out.append(f"pip-audit: {len(self.skipped)} pins could not be audited: {shown}")
        out += [f"pip-audit: accepted (see allow-list): {item}" for item in self.accepted]
        out += [f"pip-audit: stale allow-list entry (no pin has it any more, remove it): {item}" for item in self.stale]
        out += [f"pip-audit: VULNERABLE: {item}" for item in self.findings]
        if self.findings:
            out.append(
                "pip-audit: upgrade the pins (requirements/requirements.in, then `make constraints`), or, once "
                "reviewed, accept each advisory in requirements/audit-allowlist.toml with the reason."
            )
        return out


def load_allowlist(path: Path) -> dict[str, dict[str, str]]:
    """Accepted advisories by id; every entry needs ``id``, ``package`` and a non-empty ``reason``.

    Raises:
        AuditConfigError: the file is not valid TOML or an entry lacks a field.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise AuditConfigError(f"{path}: {error}") from None
    accepted: dict[str, dict[str, str]] = {}
    for number, entry in enumerate(data.get("accepted", []), start=1):
        missing = [key for key in ("id", "package", "reason") if not str(entry.get(key, "")).strip()]
        if missing:
            raise AuditConfigError(f"{path}: accepted entry {number} lacks {', '.join(missing)}")
        accepted[str(entry["id"])] = {key: str(value) for key, value in entry.items()}
    return accepted


def evaluate(report: dict, allowlist: dict[str, dict[str, str]]) -> Verdict:
    """Judge pip-audit's JSON report (``--format json``) against the allow-list."""
    try:
        dependencies = report["dependencies"]
    except (KeyError, TypeError):
        raise AuditConfigError("pip-audit's JSON report has no 'dependencies'") from None
    verdict = Verdict(audited=0, skipped=[])
    seen: set[str] = set()
    for dependency in dependencies:
        if "skip_reason" in dependency:
            verdict.skipped.append(dependency["name"])
            continue
        verdict.audited += 1
        for vulnerability in dependency.get("vulns", []):
            ids = {vulnerability["id"], *vulnerability.get("aliases", [])}
            fixes = ", ".join(vulnerability.get("fix_versions", [])) or "no fix yet"
            text = f"{dependency['name']} {dependency['version']}: {vulnerability['id']} (fixed in: {fixes})"
            matched = sorted(ids & set(allowlist))
            seen.update(matched)
            if matched:
                verdict.accepted.append(f"{text}: {allowlist[matched[0]]['reason']}")
            else:
                verdict.findings.append(text)
    if verdict.audited:
        verdict.stale = sorted(set(allowlist) - seen)
    return verdict


def run_pip_audit(pip_audit: str, constraints: Path, service: str) -> dict:
    """Run pip-audit over pinned requirements (no resolution, no pip) and return its JSON report."""
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / "audit.json"
        command = [
            pip_audit,
            "--requirement",
            str(constraints),
            "--no-deps",
            "--disable-pip",
            "--vulnerability-service",
            service,
            "--format",
            "json",
            "--output",
            str(output),
            "--progress-spinner",
            "off",
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if not output.is_file():
            # pip-audit could not even start a lookup (e.g. a connection error to the service): nothing audited.
            print(
                f"pip-audit: exited {done.returncode} without a report: {done.stderr.strip()[-500:]}", file=sys.stderr
            )
            names = [line.split("==")[0] for line in constraints.read_text().splitlines() if "==" in line]
            return {"dependencies": [{"name": name, "skip_reason": "no report"} for name in names]}
        return json.loads(output.read_text(encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--constraints", type=Path, default=ROOT / "requirements" / "constraints-3.11.txt")
    parser.add_argument("--allowlist", type=Path, default=ROOT / "requirements" / "audit-allowlist.toml")
    parser.add_argument("--pip-audit", default=str(Path(sys.executable).parent / "pip-audit"))
    parser.add_argument("--service", choices=["pypi", "osv"], default="pypi")
    parser.add_argument("--report", type=Path, help="judge this pip-audit JSON report instead of running pip-audit")
    args = parser.parse_args(argv)
    required = os.environ.get(REQUIRED_ENV, "") == "1"
    try:
        allowlist = load_allowlist(args.allowlist)
        if args.report:
            report = json.loads(args.report.read_text(encoding="utf-8"))
        else:
            report = run_pip_audit(args.pip_audit, args.constraints, args.service)
        verdict = evaluate(report, allowlist)
    except (AuditConfigError, json.JSONDecodeError) as error:
        print(f"pip-audit: {error}", file=sys.stderr)
        return 2
    for line in verdict.lines(required):
        print(line)
    return verdict.exit_code(required)


if __name__ == "__main__":
    sys.exit(main())
