"""Load benchmark: generated deliveries through ingest -> validate -> anonymise -> split on a fixed number of cores.

Run from the repository root (``make bench-load`` does)::

    python -m benchmarks.bench_load [--rows 1000000] [--cores 2] [--anonymise-rows N]
                                    [--pii-share 0.05] [--dirty-share 0.02] [--stages ingest validate ...]
                                    [--json-out PATH]

For each ``--rows`` size a CSV delivery with the demo's columns is generated (the words and rule-breaking rows of
``bench_validate.py``; ``--pii-share`` of the texts carry an e-mail address for anonymise to replace) and dropped into
a fresh project's landing folder. Each stage then runs once, the real stage function with the project's
``params.yaml`` (validate without the share threshold and label minimum, anonymise with placeholders and
``anonymise.n_process`` = ``--cores`` worker processes), in its own child process pinned to ``--cores`` CPU cores with
BLAS/Arrow thread pools of that size. One table at the end holds every size.

Anonymise (spaCy NER and the leak gate's second scan on every row) runs at a few hundred rows per CPU second, so a
million rows take the better part of an hour on 2 cores. It runs on every accepted row unless ``--anonymise-rows N``
is given: then above N accepted rows it runs on the first N of them (a sample; its row is marked), the time for all
accepted rows is extrapolated from the measured rate, model loading counted once, and split reads the validated rows
in place of the anonymised ones (it reads ids and labels only, so its cost is the same).

Figures per stage: wall seconds, rows/s, CPU seconds (the child and its worker processes; rows per CPU second is the
rate per core, for anonymise after loading the models) and the child's peak RSS (``VmHWM``: interpreter, libraries
and data; worker processes, if any, come on top: ``worker_peak_rss_mib``), and the row accounting every stage
must balance:

* ingest: rows in the raw store = rows delivered;
* validate: rows read = rows accepted + rows quarantined;
* anonymise: rows in = rows out + rows held back by the leak gate's second scan; rows in = rows accepted (or the
  sample);
* split: train + validation + test + unlabelled = rows anonymised out (rows accepted after a sample).

Nothing is asserted on time or memory; an imbalance in the accounting makes the run exit non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.bench_validate import TAXONOMY, generate, labels, peak_rss

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
    # one anonymising worker process per core, each with its own models
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
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    result = module.run(settings, paths)
    seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu_start
    peak, workers = peak_rss(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # before the counting
    counts: dict[str, Any]
    if stage == "ingest":
        import pyarrow.csv as pacsv

        from feedbackflow.storage.manifest import read_manifest

        raw = [paths.raw / entry["raw_file"] for entry in read_manifest(paths.raw_manifest)]
        counts = {"batches": len(raw), "rows_in_raw": sum(_csv_rows(path, pacsv) for path in raw)}
    elif stage == "validate":
        counts = {key: result[key] for key in ("rows_read", "rows_accepted", "rows_quarantined")}
    elif stage == "anonymise":
        import pyarrow.parquet as pq

        rows_in = pq.ParquetFile(paths.validated / "feedback.parquet").metadata.num_rows
        counts = {"rows_in": rows_in, "rows_out": result["rows_out"], "rows_held_back": result["rows_held_back"],
                  "rows_changed": result["rows_changed"]}  # fmt: skip
        timing = json.loads((paths.stage_reports("anonymise") / "anonymise.json").read_text())["timing"]
        keys = ("load_seconds", "analyse_seconds", "leak_gate_seconds", "analyse_cpu_seconds", "leak_gate_cpu_seconds")
        counts.update({key: timing[key] for key in keys})
    else:
        counts = {**result["rows"], "unlabelled": result["unlabelled_rows"]}
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_rss_bytes": peak, "worker_peak_rss_bytes": workers,
            "counts": counts}  # fmt: skip


def _csv_rows(path: Path, pacsv: Any) -> int:
    """Rows of a raw CSV batch, read block by block."""
    return sum(batch.num_rows for batch in pacsv.open_csv(path))


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children (spaCy's worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _spawn(stage: str, project: Path, cores: int) -> dict[str, Any]:
    threads = str(cores)
    pools = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "ARROW_NUM_THREADS")
    env = {
        **os.environ,
        **dict.fromkeys(pools, threads),
        "PYTHONPATH": os.pathsep.join((str(ROOT), str(ROOT / "src"))) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    command = [
        sys.executable,
        "-m",
        "benchmarks.bench_load",
        "--child",
        stage,
        "--project",
        str(project),
        "--cores",
        str(cores),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False, cwd=project)
    if done.returncode != 0:
        raise RuntimeError(f"{stage} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def balance(rows: int, results: dict[str, dict[str, Any]]) -> list[str]:
    """The accounting checks that failed (empty when every stage that ran balances)."""
    checks: dict[str, bool] = {}
    if "ingest" in results:
        checks["ingest: rows in raw == rows delivered"] = results["ingest"]["counts"]["rows_in_raw"] == rows
    if "validate" in results:
        validate = results["validate"]["counts"]
        checks["validate: rows read == rows delivered"] = validate["rows_read"] == rows
        checks["validate: read == accepted + quarantined"] = (
            validate["rows_read"] == validate["rows_accepted"] + validate["rows_quarantined"]
        )
        if "anonymise" in results:
            anonymise = results["anonymise"]["counts"]
            checks["anonymise: rows in == rows out + rows held back"] = (
                anonymise["rows_in"] == anonymise["rows_out"] + anonymise["rows_held_back"]
            )
            checks["anonymise: rows in == rows accepted (or the sample)"] = (
                results["anonymise"].get("sampled", False) or anonymise["rows_in"] == validate["rows_accepted"]
            )
        if "split" in results:
            anonymised = results.get("anonymise", {})
            expected = (
                anonymised["counts"]["rows_out"]
                if anonymised and not anonymised.get("sampled")
                else validate["rows_accepted"]
            )
            checks["split: train + validation + test + unlabelled == rows anonymised"] = (
                sum(results["split"]["counts"].values()) == expected
            )
    return [name for name, ok in checks.items() if not ok]


def _sample_project(project: Path, rows: int) -> Path:
    """A project beside ``project`` whose validated file holds the first ``rows`` validated rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sample = project / "anonymise-sample"
    target = sample / "data" / "validated" / "feedback.parquet"
    target.parent.mkdir(parents=True)
    source = pq.ParquetFile(project / "data" / "validated" / "feedback.parquet")
    pq.write_table(pa.Table.from_batches([next(source.iter_batches(batch_size=rows))]), target)
    return sample


def run_size(
    rows: int,
    cores: int,
    pii_share: float,
    dirty_share: float,
    anonymise_rows: int | None,
    log: Any = print,
    stages: Sequence[str] = STAGES,
) -> dict:
    """Generate ``rows`` rows and run the four stages on them; the figures of :func:`run_benchmark` for one size."""
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
        results: dict[str, dict[str, Any]] = {}
        for stage in (name for name in STAGES if name in stages):
            accepted = results["validate"]["counts"]["rows_accepted"] if "validate" in results else 0
            if stage == "anonymise" and anonymise_rows is not None and accepted > anonymise_rows:
                results[stage] = {**_spawn(stage, _sample_project(project, anonymise_rows), cores), "sampled": True}
                # split reads ids and labels only: the validated rows stand in for the anonymised ones
                import pandas as pd

                from feedbackflow.storage import partitions

                validated = pd.read_parquet(project / "data/validated/feedback.parquet")
                partitions.write_frame(project / "data" / "anonymised", validated)
            else:
                results[stage] = _spawn(stage, project, cores)
            figures = results[stage]
            log(f"  {stage:9s} {figures['seconds']:8.2f} s  peak RSS {figures['peak_rss_bytes'] / 2**20:7.0f} MiB  "
                f"{figures['counts']}")  # fmt: skip
    return {"csv_bytes": size, "results": results, "accounting_failures": balance(rows, results)}


def _stage_figures(stage: str, rows: int, result: dict[str, Any], accepted: int) -> dict[str, Any]:
    counts = result["counts"]
    processed = (
        counts["rows_in"]
        if stage == "anonymise"
        else rows
        if stage in ("ingest", "validate")
        else sum(counts.values())  # split: every row it read went to one part
    )
    figures = {
        "seconds": round(result["seconds"], 3),
        "rows": processed,
        "rows_per_second": round(processed / result["seconds"], 1),
        "cpu_seconds": round(result["cpu_seconds"], 3),
        "rows_per_cpu_second": round(processed / result["cpu_seconds"], 1) if result["cpu_seconds"] else None,
        "peak_rss_mib": round(result["peak_rss_bytes"] / 2**20),
        "counts": counts,
    }
    if stage == "anonymise":
        work = result["seconds"] - counts["load_seconds"]  # anonymise + gate, models loaded
        figures["worker_peak_rss_mib"] = round(result["worker_peak_rss_bytes"] / 2**20)
        figures["sampled"] = bool(result.get("sampled"))
        figures["rows_per_second_after_load"] = round(processed / work, 1)
        # rows per CPU second of the work itself (anonymise + leak gate, models loaded), as the stage measured it
        work_cpu = counts["analyse_cpu_seconds"] + counts["leak_gate_cpu_seconds"]
        figures["rows_per_cpu_second"] = round(processed / work_cpu, 1)
        figures["extrapolated_cpu_seconds_all_accepted"] = round(work_cpu * accepted / processed, 1)
        figures["extrapolated_seconds_all_accepted"] = round(counts["load_seconds"] + work * accepted / processed, 1)
    return figures


def run_benchmark(
    sizes: Sequence[int],
    cores: int,
    pii_share: float,
    dirty_share: float,
    anonymise_rows: int | None = None,
    log: Any = print,
    stages: Sequence[str] = STAGES,
) -> dict[str, Any]:
    """Run every size; returns the figures per size and stage (JSON-ready) and the accounting failures."""
    figures: dict[str, Any] = {"cores": cores, "pii_share": pii_share, "dirty_share": dirty_share, "sizes": {}}
    failures = []
    for rows in sizes:
        done = run_size(rows, cores, pii_share, dirty_share, anonymise_rows, log, stages)
        accepted = done["results"]["validate"]["counts"]["rows_accepted"]
        figures["sizes"][str(rows)] = {
            "csv_bytes": done["csv_bytes"],
            "rows_accepted": accepted,
            "stages": {
                stage: _stage_figures(stage, rows, result, accepted) for stage, result in done["results"].items()
            },
            "accounting_failures": done["accounting_failures"],
        }
        failures += [f"{rows:,} rows: {failure}" for failure in done["accounting_failures"]]
    figures["accounting_failures"] = failures
    return figures


def table(figures: dict[str, Any]) -> str:
    """The Markdown table of every size and stage (the README's scale section prints this)."""
    lines = [
        "| rows | stage | seconds | rows/s | rows per CPU s | peak RSS | rows |",
        "|---:|---|---:|---:|---:|---:|---|",
    ]
    for rows, size in figures["sizes"].items():
        for stage, f in size["stages"].items():
            seconds = f"{f['seconds']:,.2f}"
            if stage == "anonymise" and f["sampled"]:
                wall, cpu = f["extrapolated_seconds_all_accepted"], f["extrapolated_cpu_seconds_all_accepted"]
                seconds += f" (sample; all {size['rows_accepted']:,}: ~{_duration(wall)}, {_duration(cpu)} of CPU)"
            rss = f"{f['peak_rss_mib']:,} MiB"
            if stage == "anonymise" and f["worker_peak_rss_mib"] > 0:
                rss += f" (+ workers {f['worker_peak_rss_mib']:,} MiB each)"
            lines.append(
                f"| {int(rows):,} | {stage} | {seconds} | {f['rows_per_second']:,.0f} | "
                f"{f['rows_per_cpu_second'] or 0:,.0f} | {rss} | {_accounting(stage, f['counts'])} |"
            )
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:,.1f} h" if seconds >= 3600 else f"{seconds / 60:,.1f} min"


def _accounting(stage: str, counts: dict[str, Any]) -> str:
    if stage == "ingest":
        return f"{counts['rows_in_raw']:,} in raw ({counts['batches']} batch)"
    if stage == "validate":
        read, accepted, quarantined = counts["rows_read"], counts["rows_accepted"], counts["rows_quarantined"]
        return f"{read:,} read = {accepted:,} accepted + {quarantined:,} quarantined"
    if stage == "anonymise":
        held, changed = counts["rows_held_back"], counts["rows_changed"]
        return f"{counts['rows_in']:,} in = {counts['rows_out']:,} out + {held:,} held back ({changed:,} changed)"
    parts = " + ".join(f"{counts[name]:,}" for name in ("train", "validation", "test", "unlabelled"))
    return f"{sum(counts.values()):,} = {parts} (train + validation + test + unlabelled)"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000], help="delivery sizes to run")
    parser.add_argument("--cores", type=int, default=2, help="CPU cores each stage is pinned to")
    parser.add_argument(
        "--anonymise-rows",
        type=int,
        default=None,
        help="above this many accepted rows anonymise runs on a sample of this size (default: every accepted row)",
    )
    parser.add_argument("--pii-share", type=float, default=0.05, help="share of texts carrying an e-mail address")
    parser.add_argument("--dirty-share", type=float, default=0.02, help="share of rows breaking a validate rule")
    parser.add_argument(
        "--stages", nargs="+", choices=STAGES, default=list(STAGES), help="stages to run (in pipeline order)"
    )
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--child", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--project", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.project, args.cores)))
        return 0
    figures = run_benchmark(
        args.rows, args.cores, args.pii_share, args.dirty_share, args.anonymise_rows, stages=args.stages
    )
    print(f"\n{args.cores} core(s) per stage; peak RSS is the stage process's VmHWM\n")
    print(table(figures))
    print("\nrows balance at every stage" if not figures["accounting_failures"] else "\nIMBALANCE:")
    for failure in figures["accounting_failures"]:
        print(f"  {failure}")
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 1 if figures["accounting_failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
