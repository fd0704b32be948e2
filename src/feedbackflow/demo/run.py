"""Run the ``nightly_retrain`` DAG once through Airflow (``airflow dags test``) and print the run summary.

Used by ``make demo``; expects the Airflow environment variables the Makefile exports. The console shows the stages'
progress, not Airflow's tracebacks; a failed run ends with the failed stage's own message (file, rule, what to do),
read from the ``failure.json`` the runner keeps in ``.work/failed/<stage>/<run>/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from feedbackflow.config import ProjectPaths


@contextlib.contextmanager
def workspace_lock(root: Path) -> Iterator[None]:
    """Hold the workspace's run lock (``.work/run.lock``): one ``airflow dags test`` run at a time per workspace.

    ``airflow dags test`` ignores ``max_active_runs``, so two demo runs in one workspace would otherwise interleave
    their stages on the same ``dvc.lock`` and outputs. A second run waits, saying so; the operating system releases
    the lock when the holder exits, even when it is killed.
    """
    import fcntl

    path = ProjectPaths(root).run_lock
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            print(f"another run holds this workspace ({holder}); waiting for it to finish", file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_dag(dag_id: str = "nightly_retrain", log_file: Path | None = None) -> int:
    """Run one DAG run in-process through Airflow; its task logs go to ``log_file`` (and stdout)."""
    with workspace_lock(ProjectPaths.discover().root):
        return _run_dag(dag_id, log_file)


def _run_dag(dag_id: str, log_file: Path | None) -> int:
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
            text = console_line(line)
            if text is not None:
                print(text, flush=True)
        return process.wait()


#: A stage's own log line as the task log carries it: ``<stamp> [info] <date> <time>,<ms> LEVEL feedbackflow.x: msg``
_STAGE_LINE = re.compile(r"\d{4}-\d\d-\d\d (\d\d:\d\d:\d\d),\d+ (INFO|WARNING|ERROR) feedbackflow\.[\w.]+: (.*)$")
#: Airflow's structured-log trailer on every line (``[logger] loc=file.py:113 key=value ...``)
_TRAILER = re.compile(r"\s+\[[\w.]+\]\s+loc=\S+.*$")
#: ``dags test`` says which task it starts
_TASK_START = re.compile(r"^(\S+)T(\d\d:\d\d:\d\d)\S* \[info\s*\] \[DAG TEST\] starting task_id=(\w+)")


def console_line(line: str) -> str | None:
    """What the console shows of one ``dags test`` output line, or None: the task starting, DVC running a stage and
    the stages' own log lines (counts, progress with the time left), never tracebacks or DVC's echo of the output.
    """
    if "Task failed with exception" in line or line.startswith((" ", "Traceback", "\t")):
        return None
    body = _TRAILER.sub("", line.rstrip())
    if start := _TASK_START.match(body):
        return f"{start.group(2)} task {start.group(3)}"
    if stage := _STAGE_LINE.search(body):
        clock, level, message = stage.groups()
        return f"{clock}   {message}" if level == "INFO" else f"{clock}   {level}: {message}"
    if "Running stage" in body:
        return f"{body[body.index('Running stage') :]}"
    return None


def failure_records(paths: ProjectPaths, since: float) -> list[dict]:
    """The ``failure.json`` records failed stages wrote since ``since`` (a ``time.time()``), oldest first."""
    found = [path for path in paths.failed_runs.glob("*/*/failure.json") if path.stat().st_mtime >= since]
    return [json.loads(path.read_text(encoding="utf-8")) for path in sorted(found, key=lambda p: p.stat().st_mtime)]


def failure_text(records: list[dict], code: int, log_file: str) -> str:
    """What the console shows last after a failed run: where the log is, then each failed stage's own message."""
    lines = [f"\nThe DAG run failed (exit {code}); full log: {log_file}"]
    for record in records:
        lines.append(f"\nStage {record['stage']} failed (exit {record['exit_code']}):\n{record['message']}")
    if not records:
        lines.append("No stage reported a reason (an Airflow or infrastructure error): see the log above.")
    return "\n".join(lines)


def main() -> int:
    paths = ProjectPaths.discover()
    started, since = time.perf_counter(), time.time()
    code = run_dag(log_file=paths.root / "airflow_home" / "logs" / "demo-dags-test.log")
    minutes = (time.perf_counter() - started) / 60
    summary_file = paths.run_summary
    records = failure_records(paths, since)
    if code != 0 or records or not summary_file.exists():
        print(failure_text(records, code, "airflow_home/logs/demo-dags-test.log"), file=sys.stderr)
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
        f"{gate.get('canaries_checked')} canaries checked, {gate.get('rows_held_back', 0)} rows held back)"
    )
    print(f"  held back        : {_held_back(anonymise)}")
    print(f"  challenger       : {_scores(evaluation['challenger'])}")
    print(f"  champion (before): {_champion(evaluation, summary.get('champion'))}")
    print(f"  gate             : {_decision(evaluation['gate'])}")
    for reason in evaluation["gate"]["reasons"]:
        print(f"                     - {reason}")
    print(f"  drift check      : {_drift(summary['monitor'])}")
    print(f"  drift report     : {summary['monitor']['report']}")
    print(f"  saved experiment : {summary.get('experiment')}")
    print(f"  summary          : {summary_file.relative_to(paths.root)}")
    return 0


def _held_back(anonymise: dict) -> str:
    """Rows held back by reason; a planted value missed is printed in red on a terminal."""
    gate = anonymise.get("leak_gate") or {}
    parts = [f"{anonymise.get('rows_held_back') or 0} rows"]
    if gate.get("planted_value_missed"):
        missed = f"planted value missed in {gate['planted_value_missed']} ({', '.join(gate.get('canary_hits') or {})})"
        parts.append(f"\033[31m{missed}\033[0m" if sys.stdout.isatty() else missed.upper())
    if gate.get("second_scan_rows"):
        parts.append(f"second scan {gate['second_scan_rows']}")
    parts += [f"language {code} {count}" for code, count in (anonymise.get("rows_held_back_by_language") or {}).items()]
    return ", ".join(parts)


def _decision(gate: dict) -> str:
    """The gate's decision of this run; evaluate skipped means no decision (not last night's)."""
    decision = gate.get("decision") or ("promote" if gate.get("promote") else "keep champion")
    return "skipped (evaluate up to date: no decision this run)" if decision == "skipped" else decision.upper()


def _champion(evaluation: dict, registered: dict | None) -> str:
    """The champion the challenger was compared with; on a night without a comparison, the registry's champion.

    ``registered`` is the registry's champion after the run: on a night whose gate decided without a champion it is
    the model this run promoted, not the one before.
    """
    if evaluation.get("champion"):
        return _scores(evaluation["champion"])
    if evaluation.get("ran") or not registered:  # evaluate ran with no champion to compare with
        return "none (the first model is promoted on the minimums alone)"
    return f"{registered['version']} ({_scores(registered.get('metrics'))}; not re-scored this run)"


def _drift(monitor: dict) -> str:
    """The drift check's verdict (any gating test), with the failed tests and the drifted columns."""
    failed = monitor.get("drift_failed")
    if failed is None:
        return "not run"
    share = monitor.get("drift_share")
    figures = f"drift share {share:.2f}" if isinstance(share, int | float) else "drift share -"
    if not failed:
        return f"passed ({figures})"
    tests = ", ".join(monitor.get("failed_tests") or []) or "-"
    columns = ", ".join(monitor.get("drifted_columns") or []) or "none"
    return f"FAILED (tests: {tests}; {figures}; drifted columns: {columns})"


def _counts(counts: dict[str, int] | None) -> str:
    shown = sorted(((name, n) for name, n in (counts or {}).items() if n), key=lambda item: -item[1])
    return ", ".join(f"{name} {n}" for name, n in shown) or "none"


def _scores(model: dict | None) -> str:
    if not model:
        return "none"
    return ", ".join(f"{key} {model[key]:.3f}" for key in ("accuracy", "macro_f1") if key in model)


if __name__ == "__main__":
    os.environ.setdefault("FEEDBACKFLOW_PROJECT_DIR", str(ProjectPaths.discover().root))
    sys.exit(main())
