"""Benchmark ingest (folder source) and validate on one generated batch of 1,000,000 rows.

Run from the repository root (``make bench-validate`` does)::

    python -m benchmarks.bench_validate [--rows 1000000] [--repeats 3] [--dirty-share 0.02] [--json-out PATH]

A CSV batch with the demo's columns (``id, text, label, channel, created_at``; BANKING77 label names when the
taxonomy file is present) is generated once, with ``--dirty-share`` of the rows breaking a rule (blank or too long
text, unknown label or channel, unparseable or future timestamp, repeated id). Each repeat then runs, in a fresh
child process pinned to one CPU core with BLAS/Arrow thread pools at 1 thread:

* ``ingest``: :func:`feedbackflow.stages.ingest.ingest_folder` copies and hashes the file into a fresh raw store;
* ``validate``: :func:`feedbackflow.stages.validate.run`, the real stage: parse, row masks, the GX suite via its
  Checkpoint (with the Data Docs build), quarantine and report written.

Figures per step, medians over the repeats: seconds, rows/s and peak RSS of the child (``VmHWM``: the
interpreter, pandas, GX and the data). The validate time includes GX's import (a few seconds), as a task pays it.
Validate runs with the project's ``params.yaml`` validate section (so ``gx_passing_rows`` applies). The target of
the issue (1M rows validated in at most 20 s on one core, at most 2 GB peak) is printed next to the figures, never
asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TAXONOMY = ROOT / "data" / "banking77" / "categories.json"
CHANNELS = ["app", "chat", "email", "phone", "web"]
WORDS = ["my", "card", "payment", "refund", "transfer", "account", "app", "still", "not", "arrived", "why", "please"]
TARGET_SECONDS, TARGET_BYTES = 20.0, 2 * 1024**3
SINGLE_THREAD = {
    name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "ARROW_NUM_THREADS")
}


def labels() -> list[str]:
    if TAXONOMY.is_file():
        return list(json.loads(TAXONOMY.read_text(encoding="utf-8")))
    return [f"label_{i:02d}" for i in range(77)]


def generate(path: Path, rows: int, dirty_share: float, seed: int = 0) -> None:
    """Write a CSV batch of ``rows`` rows, ``dirty_share`` of them breaking one rule each."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    names = labels()
    words = np.array(WORDS)
    lengths = rng.integers(4, 30, rows)
    vocabulary = words[rng.integers(0, len(words), lengths.sum())]
    cuts = np.cumsum(lengths)[:-1]
    text = np.array([" ".join(chunk) for chunk in np.split(vocabulary, cuts)], dtype=object)
    seconds = rng.integers(0, 86_400 * 30, rows)
    created = (pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(seconds, unit="s")).strftime("%Y-%m-%dT%H:%M:%SZ")
    frame = pd.DataFrame(
        {
            "id": np.char.add("r", np.arange(rows).astype(str)).astype(object),
            "text": text,
            "label": np.array(names, dtype=object)[rng.integers(0, len(names), rows)],
            "channel": np.array(CHANNELS, dtype=object)[rng.integers(0, len(CHANNELS), rows)],
            "created_at": np.asarray(created, dtype=object),
        }
    )
    dirty = rng.choice(rows, int(rows * dirty_share), replace=False)
    kinds = ["text", "label", "channel", "created_at", "future", "id", "long"]
    for kind, index in zip(kinds * (len(dirty) // len(kinds) + 1), dirty, strict=False):
        if kind == "text":
            frame.at[index, "text"] = ""
        elif kind == "label":
            frame.at[index, "label"] = "no_such_intent"
        elif kind == "channel":
            frame.at[index, "channel"] = "fax"
        elif kind == "created_at":
            frame.at[index, "created_at"] = "yesterday"
        elif kind == "future":
            frame.at[index, "created_at"] = "2099-01-01T00:00:00Z"
        elif kind == "id":
            frame.at[index, "id"] = frame.at[(index + 1) % rows, "id"]
        else:
            frame.at[index, "text"] = "x" * 600
    frame.to_csv(path, index=False)


def child(step: str, project: Path, landing: Path) -> dict[str, Any]:
    """One timed step in this (child) process."""
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    from feedbackflow.config import ProjectPaths
    from feedbackflow.settings import load_settings, parse_settings
    from feedbackflow.stages import ingest, validate

    paths = ProjectPaths(project)
    # The project's own validate params (e.g. gx_passing_rows), on this taxonomy, without the share threshold.
    params = load_settings(ROOT / "params.yaml").model_dump(by_alias=True)
    taxonomy = str(TAXONOMY) if TAXONOMY.is_file() else "taxonomy.json"
    params["validate"].update(taxonomy=taxonomy, max_quarantine_share=1.0, min_rows_per_label=0)
    settings = parse_settings(params)
    start = time.perf_counter()
    if step == "ingest":
        ingest.ingest_folder(landing, ["*.csv"], paths.raw, paths.raw_manifest)
        rows = None
    else:
        rows = validate.run(settings, paths)["rows_read"]
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_bytes": peak_rss(), "rows": rows}


def peak_rss() -> int:
    """Peak resident set of this process since its exec, in bytes.

    ``VmHWM`` rather than ``ru_maxrss``: Linux carries ``ru_maxrss`` across fork and exec, so a child would report
    the parent's peak (the parent holds the generated frame).
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _spawn(step: str, project: Path, landing: Path) -> dict[str, Any]:
    env = {
        **os.environ,
        **SINGLE_THREAD,
        "PYTHONPATH": os.pathsep.join((str(ROOT), str(ROOT / "src"))) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_validate",
            "--child",
            step,
            "--project",
            str(project),
            "--landing",
            str(landing),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{step} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_benchmark(rows: int, repeats: int, dirty_share: float, log: Any = print) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-validate-") as tmp:
        base = Path(tmp)
        landing = base / "landing"
        landing.mkdir()
        batch = landing / "batch.csv"
        start = time.perf_counter()
        generate(batch, rows, dirty_share)
        log(f"generated {rows:,} rows ({batch.stat().st_size / 1e6:.0f} MB CSV) in {time.perf_counter() - start:.1f} s")
        if not TAXONOMY.is_file():
            (base / "taxonomy.json").write_text(json.dumps(labels()), encoding="utf-8")
        runs: dict[str, list[dict[str, Any]]] = {"ingest": [], "validate": []}
        for repeat in range(repeats):
            project = base / f"project{repeat}"
            project.mkdir()
            if not TAXONOMY.is_file():
                (project / "taxonomy.json").write_text(json.dumps(labels()), encoding="utf-8")
            for step in ("ingest", "validate"):
                result = _spawn(step, project, landing)
                runs[step].append(result)
                log(f"  run {repeat + 1}/{repeats} {step:8s} {result['seconds']:7.2f} s  "
                    f"peak RSS {result['peak_rss_bytes'] / 2**20:7.0f} MiB")  # fmt: skip
    figures: dict[str, Any] = {"rows": rows, "repeats": repeats, "dirty_share": dirty_share, "cores": 1}
    for step, results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        peak = statistics.median(r["peak_rss_bytes"] for r in results)
        figures[step] = {
            "seconds_median": round(seconds, 3),
            "rows_per_second": round(rows / seconds),
            "peak_rss_mib_median": round(peak / 2**20),
            "runs_seconds": [round(r["seconds"], 3) for r in results],
        }
    validate_figures = figures["validate"]
    figures["target"] = {
        "seconds": TARGET_SECONDS,
        "peak_bytes": TARGET_BYTES,
        "seconds_ratio": round(validate_figures["seconds_median"] / TARGET_SECONDS, 3),
        "memory_ratio": round(validate_figures["peak_rss_mib_median"] * 2**20 / TARGET_BYTES, 3),
    }
    return figures


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_validate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dirty-share", type=float, default=0.02)
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--child", choices=["ingest", "validate"], help=argparse.SUPPRESS)
    parser.add_argument("--project", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--landing", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.project, args.landing)))
        return 0
    figures = run_benchmark(args.rows, args.repeats, args.dirty_share)
    print(f"\n{args.rows:,} rows, one core, median of {args.repeats}:")
    for step in ("ingest", "validate"):
        f = figures[step]
        print(f"  {step:8s} {f['seconds_median']:7.2f} s  {f['rows_per_second']:>10,} rows/s  "
              f"peak RSS {f['peak_rss_mib_median']:,} MiB")  # fmt: skip
    target = figures["target"]
    print(
        f"  target: validate <= {TARGET_SECONDS:.0f} s and <= {TARGET_BYTES / 2**30:.0f} GiB peak -> "
        f"{target['seconds_ratio']:.2f} x time budget, {target['memory_ratio']:.2f} x memory budget"
    )
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
