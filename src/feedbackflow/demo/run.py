"""Run the ``nightly_retrain`` DAG once through Airflow (``airflow dags test``) and print the run summary.

Used by ``make demo``; expects the Airflow environment variables the Makefile exports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from feedbackflow.config import ProjectPaths


def run_dag(dag_id: str = "nightly_retrain", log_file: Path | None = None) -> int:
    """Run one DAG run in-process through Airflow; its task logs go to ``log_file`` (and stdout)."""
    airflow = str(Path(sys.executable).parent / "airflow")
    command = [airflow, "dags", "test", dag_id]
    if log_file is None:
        return subprocess.run(command, check=False).returncode
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("w", encoding="utf-8") as handle:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert process.stdout is not None
        for line in process.stdout:
            handle.write(line)
            if " INFO - " in line or "Running stage" in line or "ERROR" in line or "Traceback" in line:
                print(line, end="")
        return process.wait()


def main() -> int:
    paths = ProjectPaths.discover()
    started = time.perf_counter()
    code = run_dag(log_file=paths.root / "airflow_home" / "logs" / "demo-dags-test.log")
    minutes = (time.perf_counter() - started) / 60
    summary_file = paths.reports / "run_summary.json"
    if code != 0 or not summary_file.exists():
        print(f"\nThe DAG run failed (exit {code}); full log: airflow_home/logs/demo-dags-test.log", file=sys.stderr)
        return code or 1
    summary = json.loads(summary_file.read_text(encoding="utf-8"))
    validate, evaluation = summary["validate"], summary["evaluate"]
    print(f"\nnightly_retrain finished in {minutes:.1f} min (run {summary['run_id']})")
    print(f"  ingested batches : {', '.join(summary['ingest']['new_batches']) or 'none new'}")
    print(
        f"  rows             : {validate['rows_read']} read, {validate['rows_accepted']} accepted, "
        f"{validate['rows_quarantined']} quarantined ({_counts(validate['quarantined_by_rule'])})"
    )
    anonymise = summary["anonymise"]
    print(f"  PII replaced     : {_counts(anonymise['entities_replaced'])}")
    gate = anonymise.get("leak_gate") or {}
    print(
        f"  leak gate        : {'passed' if gate.get('passed') else 'FAILED'} ({gate.get('rows_scanned')} rows, "
        f"{gate.get('canaries_checked')} canaries checked)"
    )
    print(f"  challenger       : {_scores(evaluation['challenger'])}")
    print(f"  champion (before): {_scores(evaluation['champion'])}")
    print(f"  gate             : {_decision(evaluation['gate'])}")
    for reason in evaluation["gate"]["reasons"]:
        print(f"                     - {reason}")
    print(f"  drift report     : {summary['monitor']['report']} (dataset drift: {summary['monitor']['dataset_drift']})")
    print(f"  saved experiment : {summary.get('experiment')}")
    print(f"  summary          : {summary_file.relative_to(paths.root)}")
    return 0


def _decision(gate: dict) -> str:
    """The gate's decision of this run; evaluate skipped means no decision (not last night's)."""
    decision = gate.get("decision") or ("promote" if gate.get("promote") else "keep champion")
    return "skipped (evaluate up to date: no decision this run)" if decision == "skipped" else decision.upper()


def _counts(counts: dict[str, int] | None) -> str:
    shown = sorted(((name, n) for name, n in (counts or {}).items() if n), key=lambda item: -item[1])
    return ", ".join(f"{name} {n}" for name, n in shown) or "none"


def _scores(model: dict | None) -> str:
    if not model:
        return "none"
    return ", ".join(f"{key} {model[key]:.3f}" for key in ("accuracy", "macro_f1") if key in model)


if __name__ == "__main__":
    os.environ.setdefault("FEEDBACKFLOW_PROJECT_DIR", str(Path.cwd()))
    sys.exit(main())
