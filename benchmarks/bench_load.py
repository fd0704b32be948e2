"""Load benchmark: one generated delivery through ingest -> validate -> anonymise -> split on a fixed number of cores.

Run from the repository root (``make bench-load`` does)::

    python benchmarks/bench_load.py [--rows 1000000] [--cores 2] [--pii-share 0.05] [--dirty-share 0.02]
                                    [--json-out PATH]

A CSV delivery with the demo's columns is generated (the words and rule-breaking rows of ``bench_validate.py``;
``--pii-share`` of the texts carry an e-mail address for anonymise to replace) and dropped into a fresh
project's landing folder. Each stage then runs once, the real stage function with the project's ``params.yaml``
(validate without the share threshold and label minimum, anonymise with placeholders and ``n_process`` = cores),
in its own child process pinned to ``--cores`` CPU cores with BLAS/Arrow thread pools of that size.

Figures per stage: wall seconds, rows/s and the child's peak RSS (``VmHWM``: interpreter, libraries and data), and
the row accounting every stage must balance:

* ingest: rows in the raw store = rows delivered;
* validate: rows read = rows accepted + rows quarantined;
* anonymise: rows out = rows accepted by validate (no row dropped or added);
* split: rows anonymised = train + validation + test + unlabelled.

Nothing is asserted on time or memory; an imbalance in the accounting makes the run exit non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_validate import TAXONOMY, generate, labels, peak_rss  # the sibling benchmark

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("ingest", "validate", "anonymise", "split")
FIRST_NAMES = ["Alice", "Bilal", "Chen", "Dorota", "Emeka", "Fatima", "Gareth", "Hana"]


def plant_pii(path: Path, share: float, seed: int = 1) -> int:
    """Append an e-mail address to ``share`` of the texts; returns how many rows carry one.

    E-mail addresses only: the load figures must not depend on the leak gate's verdict on harder entities (names),
    which ``make bench-pii`` measures.
    """
    import numpy as np
    import pandas as pd

    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(frame), int(len(frame) * share), replace=False)
    for n, index in enumerate(rows):
        name = FIRST_NAMES[n % len(FIRST_NAMES)].lower()
        frame.at[index, "text"] += f" Write to me at {name}.{n}@example.com"
    frame.to_csv(path, index=False)
    return len(rows)


def _settings(project: Path, cores: int) -> Any:
    from feedbackflow.settings import load_settings, parse_settings

    params = load_settings(ROOT / "params.yaml").model_dump(by_alias=True)
    taxonomy = str(TAXONOMY) if TAXONOMY.is_file() else str(project / "taxonomy.json")
    params["ingest"].update(source="folder", landing_dir="data/landing", settle_seconds=0)
    params["validate"].update(taxonomy=taxonomy, max_quarantine_share=1.0, min_rows_per_label=0)
    params["anonymise"].update(operator="placeholder", operators={}, canary_file=None, n_process=cores)
    return parse_settings(params)


def child(stage: str, project: Path, cores: int) -> dict[str, Any]:
    """Run one stage in this (child) process, pinned to ``cores`` cores; returns its figures and counts."""
    import importlib

    available = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, set(available[:cores]))
    from feedbackflow.config import ProjectPaths

    paths = ProjectPaths(project)
    module = importlib.import_module(f"feedbackflow.stages.{stage}")
    settings = _settings(project, cores)
    start = time.perf_counter()
    result = module.run(settings, paths)
    seconds = time.perf_counter() - start
    counts: dict[str, Any]
    if stage == "ingest":
        import pyarrow.csv as pacsv

        from feedbackflow.storage.manifest import read_manifest

        raw = [paths.raw / entry["raw_file"] for entry in read_manifest(paths.raw_manifest)]
        counts = {"batches": len(raw), "rows_in_raw": sum(pacsv.read_csv(path).num_rows for path in raw)}
    elif stage == "validate":
        counts = {key: result[key] for key in ("rows_read", "rows_accepted", "rows_quarantined")}
    elif stage == "anonymise":
        counts = {"rows_out": result["rows"], "rows_changed": result["rows_changed"]}
    else:
        counts = {**result["rows"], "unlabelled": result["unlabelled_rows"]}
    return {"seconds": seconds, "peak_rss_bytes": peak_rss(), "counts": counts}


def _spawn(stage: str, project: Path, cores: int) -> dict[str, Any]:
    threads = str(cores)
    pools = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "ARROW_NUM_THREADS")
    env = {
        **os.environ,
        **dict.fromkeys(pools, threads),
        "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    command = [sys.executable, __file__, "--child", stage, "--project", str(project), "--cores", str(cores)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False, cwd=project)
    if done.returncode != 0:
        raise RuntimeError(f"{stage} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def balance(rows: int, results: dict[str, dict[str, Any]]) -> list[str]:
    """The accounting checks that failed (empty when every stage balances)."""
    ingest, validate = results["ingest"]["counts"], results["validate"]["counts"]
    anonymise, split = results["anonymise"]["counts"], results["split"]["counts"]
    checks = {
        "ingest: rows in raw == rows delivered": ingest["rows_in_raw"] == rows,
        "validate: rows read == rows delivered": validate["rows_read"] == rows,
        "validate: read == accepted + quarantined": validate["rows_read"]
        == validate["rows_accepted"] + validate["rows_quarantined"],
        "anonymise: rows out == rows accepted": anonymise["rows_out"] == validate["rows_accepted"],
        "split: train + validation + test + unlabelled == rows anonymised": sum(split.values())
        == anonymise["rows_out"],
    }
    return [name for name, ok in checks.items() if not ok]


def run_benchmark(rows: int, cores: int, pii_share: float, dirty_share: float, log: Any = print) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        project = Path(tmp)
        landing = project / "data" / "landing"
        landing.mkdir(parents=True)
        batch = landing / "delivery.csv"
        start = time.perf_counter()
        generate(batch, rows, dirty_share)
        with_pii = plant_pii(batch, pii_share)
        size = batch.stat().st_size
        took = time.perf_counter() - start
        log(f"generated {rows:,} rows ({size / 1e6:.0f} MB CSV, {with_pii:,} with PII) in {took:.1f} s")
        if not TAXONOMY.is_file():
            (project / "taxonomy.json").write_text(json.dumps(labels()), encoding="utf-8")
        results = {}
        for stage in STAGES:
            results[stage] = _spawn(stage, project, cores)
            figures = results[stage]
            log(f"  {stage:9s} {figures['seconds']:8.2f} s  {rows / figures['seconds']:>10,.0f} rows/s  "
                f"peak RSS {figures['peak_rss_bytes'] / 2**20:7.0f} MiB  {figures['counts']}")  # fmt: skip
    failed = balance(rows, results)
    return {
        "rows": rows,
        "cores": cores,
        "pii_share": pii_share,
        "dirty_share": dirty_share,
        "csv_bytes": size,
        "stages": {
            stage: {
                "seconds": round(r["seconds"], 3),
                "rows_per_second": round(rows / r["seconds"]),
                "peak_rss_mib": round(r["peak_rss_bytes"] / 2**20),
                "counts": r["counts"],
            }
            for stage, r in results.items()
        },
        "total_seconds": round(sum(r["seconds"] for r in results.values()), 3),
        "accounting_failures": failed,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench_load.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the generated delivery")
    parser.add_argument("--cores", type=int, default=2, help="CPU cores each stage is pinned to")
    parser.add_argument("--pii-share", type=float, default=0.05, help="share of texts carrying an e-mail address")
    parser.add_argument("--dirty-share", type=float, default=0.02, help="share of rows breaking a validate rule")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--child", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--project", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.project, args.cores)))
        return 0
    figures = run_benchmark(args.rows, args.cores, args.pii_share, args.dirty_share)
    print(f"\n{args.rows:,} rows on {args.cores} core(s): {figures['total_seconds']:.1f} s in all")
    for stage, f in figures["stages"].items():
        rate = f"{f['rows_per_second']:>10,} rows/s"
        print(f"  {stage:9s} {f['seconds']:8.2f} s  {rate}  peak RSS {f['peak_rss_mib']:,} MiB")
    print("  rows balance at every stage" if not figures["accounting_failures"] else "  IMBALANCE:")
    for failure in figures["accounting_failures"]:
        print(f"    {failure}")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 1 if figures["accounting_failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
