"""Anonymise on one worker against the same night in shards on two: rows per second, and the outputs identical.

Run from the repository root (``make bench-shards`` does)::

    python -m benchmarks.bench_shards [--batches 4] [--rows 500] [--repeat 3] [--json-out PATH]

A night of ``--batches`` generated batches (the demo generator on BANKING77 text: planted personal data included) of
``--rows`` rows each is anonymised two ways on fresh workspaces (:func:`benchmarks.bench_nightly.project`; the
repository's trained detector when there is one):

* **one worker**: ``feedbackflow anonymise``, one process;
* **two shards**: ``feedbackflow anonymise-shard --shard 1 --of 2`` and ``--shard 2 --of 2`` at the same time, one
  process each (two workers; on this 2-core machine, one core each), then ``feedbackflow anonymise`` taking their
  parts (what the DAG's mapped ``anonymise_shard`` tasks and the ``anonymise`` task do, without the DVC transfers).

Every process runs with one thread (``OMP_NUM_THREADS=1``), so a process is a worker of one core. The two ways must
publish the same rows, values, order, held-back rows and counts, or the bench fails. Rows per second of wall time
(the night's rows over the wall seconds from start to published output); the median of ``--repeat`` pairs, taken in
turns so that load from other work falls on both.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_nightly import nights_of_feedback, project, same_outputs, stage_env
from feedbackflow.io import write_json

ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def _workspace(root: Path, batches: list[Any], canaries: dict[str, list[str]]) -> Path:
    import pandas as pd

    project(root, canaries)
    (root / "data" / "validated").mkdir(parents=True)
    pd.concat(batches, ignore_index=True).to_parquet(root / "data" / "validated" / "feedback.parquet", index=False)
    return root


def _start(root: Path, *args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "feedbackflow", *args]
    env = {**stage_env(root), **ONE_THREAD}
    return subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait(*processes: subprocess.Popen) -> None:
    for process in processes:
        _, err = process.communicate()
        if process.returncode:
            tail = err.decode(errors="replace")[-3000:]
            raise SystemExit(f"{process.args[3:]} failed ({process.returncode}):\n{tail}")


def one_worker(root: Path) -> float:
    started = time.perf_counter()
    _wait(_start(root, "anonymise"))
    return time.perf_counter() - started


def two_shards(root: Path) -> tuple[float, float]:
    """Wall seconds of the whole night and of the shards alone."""
    started = time.perf_counter()
    _wait(*(_start(root, "anonymise-shard", "--shard", str(n), "--of", "2") for n in (1, 2)))
    shards = time.perf_counter() - started
    _wait(_start(root, "anonymise"))
    report = json.loads((root / "reports" / "anonymise" / "anonymise.json").read_text(encoding="utf-8"))
    if report["incremental"]["batches_from_shards"] != report["incremental"]["batches"]:
        raise SystemExit(f"the stage took {report['incremental']} from the shards, not every batch")
    return time.perf_counter() - started, shards


def run(batches: int, rows: int, repeat: int, seed: int) -> dict[str, Any]:
    frames, canaries = nights_of_feedback(batches, rows, seed)
    total = sum(len(frame) for frame in frames)
    one, two, shards_only = [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-shards-") as workdir:
        for attempt in range(repeat):
            single = _workspace(Path(workdir) / f"one-{attempt}", frames, canaries)
            sharded = _workspace(Path(workdir) / f"two-{attempt}", frames, canaries)
            one.append(one_worker(single))
            seconds, shards = two_shards(sharded)
            two.append(seconds)
            shards_only.append(shards)
            if not same_outputs(single, sharded):
                raise SystemExit(f"pass {attempt + 1}: the sharded night's output differs from one worker's")
            print(f"pass {attempt + 1}: one worker {one[-1]:.1f} s, two shards {seconds:.1f} s (shards {shards:.1f} s)")
            shutil.rmtree(single)
            shutil.rmtree(sharded)
    one_s, two_s = statistics.median(one), statistics.median(two)
    return {
        "rows": total,
        "batches": batches,
        "one_worker_seconds": one,
        "two_shards_seconds": two,
        "shards_only_seconds": shards_only,
        "one_worker_rows_per_second": round(total / one_s, 1),
        "two_shards_rows_per_second": round(total / two_s, 1),
        "speedup": round(one_s / two_s, 3),
        "outputs_identical": True,
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=4, help="batches in the night (a shard takes whole batches)")
    parser.add_argument("--rows", type=int, default=500, help="rows per batch")
    parser.add_argument("--repeat", type=int, default=3, help="pairs of runs; medians reported")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json-out", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    figures = run(args.batches, args.rows, args.repeat, args.seed)
    print(
        f"{figures['rows']:,d} rows in {figures['batches']} batches: one worker "
        f"{figures['one_worker_rows_per_second']} rows/s, two shards {figures['two_shards_rows_per_second']} rows/s "
        f"({figures['speedup']}x), outputs identical"
    )
    if args.json_out:
        write_json(args.json_out, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
