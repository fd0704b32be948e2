"""Nightly cost of ingest, validate, anonymise and split: incremental against a full recompute, night by night.

``--stages validate,anonymise`` (the default) picks the stages. **ingest** runs with validate's nights: night k lands
its CSV in the landing folder, which keeps every earlier night's file as a folder source does, and ``feedbackflow
ingest`` runs as its own process with the raw store kept (incremental: the manifest skips the known files) and then
into an empty store (full); the raw files must be the same bytes. **split** runs with anonymise's nights, on the
incremental workspace after anonymise: it has no parts of its own (it reads every anonymised row's id and label, cheap),
so it is timed one way and reported as night k over night 1. **validate**: night k delivers one raw CSV batch of
``--rows`` generated rows (the demo generator, called as often as the rows need: BANKING77 has 10,003 messages, so
beyond that the same texts come back under new ids, with their dirt and planted values drawn again); ``feedbackflow
validate`` runs as its own process on the workspace that kept ``data/validate_parts`` (incremental), then with the
parts moved aside (a full recompute, reading every raw batch); the validated and quarantine files and the report (less
run id and reuse counts) must be the same bytes or the bench fails. **anonymise**: as below.

``--nights`` simulated nights of generated feedback (the demo generator on BANKING77 text: planted personal data,
drift and dirt included), ``--rows`` rows each; night k's validated file holds batches 1..k, as validate writes it.
Each night ``feedbackflow anonymise`` runs as its own process (as DVC runs it, model loading included) twice: on a
workspace that kept the previous night's parts (incremental) and on an empty one (a full recompute: what every night
cost before parts). The two outputs must be equal (rows, values, order, counts) or the bench fails. After the last
night, a night with no new data runs on the incremental workspace.

Prints per night the rows in total and new, the wall and CPU seconds (user + system of the stage's process, which
other jobs on a shared machine do not inflate) of both runs and their ratios; then the medians, the first and last
night, and the no-op night's share of a full night and of a night with new data. ``--json-out`` writes the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "data" / "banking77" / "train.csv"
DETECTOR = ROOT / "models" / "detector"  # trained by `dvc repro detector`; anonymise runs without it when absent


def nights_of_feedback(nights: int, rows: int, seed: int) -> tuple[list[Any], dict[str, list[str]]]:
    """The generated batches, as validated rows (with ``batch_id`` and ``sequence``), and the planted values."""
    from feedbackflow.demo.generate import generate, load_corpus

    data = generate(load_corpus(CORPUS), nights=nights, rows_per_night=rows, seed=seed)
    batches = []
    for sequence, batch in enumerate(data.batches, start=1):
        frame = batch.frame.astype(object).where(batch.frame.notna(), None)
        frame = frame.assign(batch_id=f"{sequence:04d}-{batch.name}", sequence=sequence)
        batches.append(frame[["id", "text", "label", "channel", "created_at", "batch_id", "sequence"]])
    return batches, data.canaries


def project(root: Path, canaries: dict[str, list[str]]) -> Path:
    """An empty feedbackflow project: the repository's params.yaml and dvc.yaml, the planted values, and the
    repository's trained detector (``models/detector``); without one, anonymise runs with ``anonymise.detector`` off."""
    import yaml

    (root / "data").mkdir(parents=True)
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(ROOT / name, root / name)
    (root / "data" / "demo_canaries.json").write_text(json.dumps(canaries), encoding="utf-8")
    if (DETECTOR / "detector.json").is_file():
        (root / "models").mkdir()
        (root / "models" / "detector").symlink_to(DETECTOR)
    else:
        params = yaml.safe_load((root / "params.yaml").read_text(encoding="utf-8"))
        params["anonymise"]["detector"] = False
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return root


def anonymise(root: Path, batches: list[Any]) -> dict[str, Any]:
    """Write the validated file of ``batches`` and run ``feedbackflow anonymise`` in its own process; wall seconds."""
    import pandas as pd

    validated = root / "data" / "validated"
    validated.mkdir(parents=True, exist_ok=True)
    pd.concat(batches, ignore_index=True).to_parquet(validated / "feedback.parquet", index=False)
    seconds, cpu = run_stage(root, "anonymise")
    report = json.loads((root / "reports" / "anonymise" / "anonymise.json").read_text(encoding="utf-8"))
    return {"seconds": seconds, "cpu_seconds": cpu, "rows": report["rows"], **report["incremental"]}


def _children_cpu() -> float:
    """User + system CPU seconds of this process's finished children: robust to other jobs on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def same_outputs(one: Path, other: Path) -> bool:
    """Both workspaces publish the same rows in the same order, the same held-back rows and the same counts."""
    from feedbackflow.storage import partitions

    def seen(root: Path) -> list[Any]:
        report = json.loads((root / "reports" / "anonymise" / "anonymise.json").read_text(encoding="utf-8"))
        counts = {k: v for k, v in report.items() if k not in ("run_id", "timing", "incremental")}
        frames = [partitions.read_frame(root / "data" / name) for name in ("anonymised", "held_back")]
        return [counts, *(frame.to_dict("list") for frame in frames)]

    return seen(one) == seen(other)


def run_nights(workdir: Path, nights: int, rows: int, seed: int) -> dict[str, Any]:
    """Every night incremental and full; then the no-op night. Raises when the outputs of a night differ."""
    batches, canaries = nights_of_feedback(nights, rows, seed)
    kept = project(workdir / "incremental", canaries)
    table, splits = [], []
    for night in range(1, nights + 1):
        incremental = anonymise(kept, batches[:night])
        seconds, cpu = run_stage(kept, "split")  # no parts of its own: it reads every anonymised row each night
        splits.append({"night": night, "rows": incremental["rows"], "seconds": seconds, "cpu_seconds": cpu})
        print(f"split     night {night:3d}  rows {incremental['rows']:9,d}  {seconds:7.1f} s (CPU {cpu:7.1f} s)")
        full_root = project(workdir / f"full-{night}", canaries)
        full = anonymise(full_root, batches[:night])
        if not same_outputs(kept, full_root):
            raise SystemExit(f"night {night}: the incremental output differs from a full recompute")
        shutil.rmtree(full_root)
        row = {"night": night, "rows": full["rows"], "rows_new": incremental["rows_anonymised"]}
        for name, figures in (("incremental", incremental), ("full", full)):
            row |= {f"{name}_seconds": figures["seconds"], f"{name}_cpu_seconds": figures["cpu_seconds"]}
        row["ratio"] = round(incremental["seconds"] / full["seconds"], 3)
        row["cpu_ratio"] = round(incremental["cpu_seconds"] / full["cpu_seconds"], 3)
        table.append(row)
        _print("anonymise", row)
    idle = anonymise(kept, batches)
    return {"nights": table, "no_op": idle, "rows_per_night": rows, "seed": seed, "split": {"nights": splits}}


#: the night the projection looks at: a year of nightly deliveries
YEAR_NIGHTS = 365


def projection(figures: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Night 365's CPU seconds per stage at the bench's rows a night, on a straight line through the timed nights.

    What grows with the history is ``(last - first) / (rows_last - rows_first)`` CPU seconds per row held (first and
    last timed nights deliver the same number of new rows); night 365 costs the last night plus that slope times the
    rows the history gains by then. Incremental stages only (split, which has no parts, likewise from its one timing).
    """
    found: dict[str, dict[str, float]] = {}
    for stage, stage_figures in figures.items():
        table = stage_figures.get("nights") if isinstance(stage_figures, dict) else None
        if not table or len(table) < 2:
            continue
        key = "cpu_seconds" if stage == "split" else "incremental_cpu_seconds"
        first, last = table[0], table[-1]
        per_row = max((last[key] - first[key]) / max(last["rows"] - first["rows"], 1), 0.0)
        rows_a_night = (last["rows"] - first["rows"]) / max(last["night"] - first["night"], 1)
        year_rows = last["rows"] + rows_a_night * (YEAR_NIGHTS - last["night"])
        found[stage] = {
            "rows_a_night": round(rows_a_night),
            "night_1": first[key],
            f"night_{YEAR_NIGHTS}": round(last[key] + per_row * (year_rows - last["rows"]), 1),
        }
    return found


def growth(table: list[dict[str, Any]]) -> dict[str, Any]:
    """The last night over the first, in wall and CPU seconds (a stage timed one way only)."""
    first, last = table[0], table[-1]
    return {f"last_over_first_{unit}": round(last[unit] / first[unit], 3) for unit in ("seconds", "cpu_seconds")}


def summary(figures: dict[str, Any]) -> dict[str, Any]:
    """Medians, the first and last night, and the no-op night's share of the last full night."""
    table = figures["nights"]
    first, last = table[0], table[-1]
    found: dict[str, Any] = {}
    for unit in ("seconds", "cpu_seconds"):
        for name in ("incremental", "full"):
            found[f"median_{name}_{unit}"] = statistics.median(row[f"{name}_{unit}"] for row in table)
            found[f"{name}_last_over_first_{unit}"] = round(last[f"{name}_{unit}"] / first[f"{name}_{unit}"], 3)
        found[f"median_ratio_{unit}"] = statistics.median(
            row["ratio" if unit == "seconds" else "cpu_ratio"] for row in table
        )
        found[f"last_night_ratio_{unit}"] = round(last[f"incremental_{unit}"] / last[f"full_{unit}"], 3)
        found[f"no_op_{unit}"] = figures["no_op"][unit]
        found[f"no_op_share_of_full_night_{unit}"] = round(figures["no_op"][unit] / last[f"full_{unit}"], 3)
        found[f"no_op_share_of_new_night_{unit}"] = round(figures["no_op"][unit] / last[f"incremental_{unit}"], 3)
    return found


def raw_nights(nights: int, rows: int, seed: int) -> Any:
    """Yield each night's raw batch (file name, frame of text cells), ``rows`` rows, however many the corpus holds."""
    from datetime import UTC, datetime, timedelta

    from feedbackflow.demo.generate import generate, load_corpus

    corpus = load_corpus(CORPUS)
    for night in range(1, nights + 1):
        day = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=night - 1)
        pieces, left, draw = [], rows, 0
        while left > 0:
            take = min(left, len(corpus))
            data = generate(
                corpus,
                nights=1,
                rows_per_night=take,
                seed=seed * 100_000 + night * 100 + draw,
                start=day,
                drift_from_night=1 if night >= 3 else 3,
            )
            frame = data.batches[0].frame
            pieces.append(frame.assign(id=frame["id"].str.replace("n001-", f"n{night:03d}-{draw}-", n=1, regex=False)))
            left, draw = left - take, draw + 1
        frame = pd_concat(pieces)
        yield f"feedback-{day:%Y-%m-%d}.csv", frame


def pd_concat(frames: list[Any]) -> Any:
    import pandas as pd

    return pd.concat(frames, ignore_index=True).astype(object).fillna("")


def validate_project(root: Path) -> Path:
    """An empty project for validate: the repository's params.yaml and dvc.yaml, and the taxonomy they name."""
    for name in ("params.yaml", "dvc.yaml", "data/banking77/categories.json"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, root / name)
    return root


def deliver(root: Path, name: str, frame: Any) -> dict[str, Any]:
    """Land one raw CSV batch in the landing folder, which keeps every earlier night's file, and run ``feedbackflow
    ingest`` on it (incremental: the raw store and its manifest kept), then into an empty raw store (full: every
    landing file again). The raw files must be the same bytes."""
    from feedbackflow.config import ProjectPaths
    from feedbackflow.settings import load_settings

    paths = ProjectPaths(root)
    landing = root / load_settings(paths.params).ingest.landing_dir
    landing.mkdir(parents=True, exist_ok=True)
    frame.to_csv(landing / name, index=False)
    seconds, cpu = run_stage(root, "ingest")
    kept = _raw_files(paths.raw)
    aside = root / "raw-aside"
    paths.raw.rename(aside)
    full_seconds, full_cpu = run_stage(root, "ingest")
    full = _raw_files(paths.raw)
    shutil.rmtree(paths.raw)
    aside.rename(paths.raw)
    if kept != full:
        raise SystemExit("ingest: the incremental raw store differs from a full recompute")
    row = {"rows": 0, "rows_new": len(frame), "incremental_seconds": seconds, "incremental_cpu_seconds": cpu}
    return row | {"full_seconds": full_seconds, "full_cpu_seconds": full_cpu}


def _raw_files(raw: Path) -> list[str]:
    """SHA-256 of every raw batch file, sorted (names and the manifest record delivery times)."""
    return sorted(
        hashlib.sha256(path.read_bytes()).hexdigest()
        for path in raw.iterdir()
        if path.is_file() and not path.name.startswith(("_", "."))
    )


def stage_env(root: Path) -> dict[str, str]:
    """The environment of a ``feedbackflow`` command run on the project at ``root`` with this checkout's code."""
    return {**os.environ, "FEEDBACKFLOW_PROJECT_DIR": str(root), "PYTHONPATH": str(ROOT / "src")}


def run_stage(root: Path, stage: str) -> tuple[float, float]:
    """Run ``feedbackflow <stage>`` in its own process, as DVC does; wall and CPU seconds."""
    started, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(
        [sys.executable, "-m", "feedbackflow", stage], cwd=root, env=stage_env(root), capture_output=True
    )
    seconds, cpu = time.perf_counter() - started, _children_cpu() - cpu
    if done.returncode:
        raise SystemExit(f"{stage} failed (exit {done.returncode}):\n{done.stderr.decode(errors='replace')[-4000:]}")
    return round(seconds, 2), round(cpu, 2)


def validate_outputs(root: Path) -> tuple[list[str], dict[str, Any]]:
    """SHA-256 of the validated and quarantine files and of the report less its run id, and the reuse counts."""
    report = json.loads((root / "reports" / "validate" / "validate.json").read_text(encoding="utf-8"))
    report.pop("run_id")
    reuse = report.pop("incremental")
    files = [root / "data" / "validated" / "feedback.parquet", root / "data" / "quarantine" / "quarantine.parquet"]
    digests = [hashlib.sha256(path.read_bytes()).hexdigest() for path in files]
    digests.append(hashlib.sha256(json.dumps(report, sort_keys=True).encode()).hexdigest())
    return digests, {**reuse, "rows": report["rows_read"]}


def validate_night(root: Path) -> dict[str, Any]:
    """validate incremental, then as a full recompute (the parts moved aside); raises when the outputs differ."""
    parts, aside = root / "data" / "validate_parts", root / "parts-aside"
    seconds, cpu = run_stage(root, "validate")
    kept, reuse = validate_outputs(root)
    parts.rename(aside)
    full_seconds, full_cpu = run_stage(root, "validate")
    full, _ = validate_outputs(root)
    shutil.rmtree(parts)
    aside.rename(parts)
    if kept != full:
        raise SystemExit("validate: the incremental output differs from a full recompute")
    row = {"rows": reuse["rows"], "rows_new": 0, "batches_reused": reuse["batches_reused"]}
    row |= {"incremental_seconds": seconds, "incremental_cpu_seconds": cpu}
    return row | {"full_seconds": full_seconds, "full_cpu_seconds": full_cpu}


def run_validate_nights(workdir: Path, nights: int, rows: int, seed: int, timed_from: int = 1) -> dict[str, Any]:
    """validate incremental and full on night 1 and every night from ``timed_from``; then a night with no new data.

    The nights in between are delivered and validated once, untimed, so the first timed night finds the parts of
    the night before it, as it would after running every night.
    """
    root = validate_project(workdir / "validate")
    table, ingested = [], []
    for night, (name, frame) in enumerate(raw_nights(nights, rows, seed), start=1):
        ingest = _ratios({"night": night, **deliver(root, name, frame)}, rows=night * rows)
        ingested.append(ingest)
        _print("ingest", ingest)
        if 1 < night < timed_from:
            if night == timed_from - 1:
                run_stage(root, "validate")
            continue
        row = _ratios({"night": night, **validate_night(root), "rows_new": len(frame)})
        table.append(row)
        _print("validate", row)
    seconds, cpu = run_stage(root, "validate")
    ingest_seconds, ingest_cpu = run_stage(root, "ingest")
    return {
        "nights": table,
        "no_op": {"seconds": seconds, "cpu_seconds": cpu},
        "rows_per_night": rows,
        "seed": seed,
        "ingest": {"nights": ingested, "no_op": {"seconds": ingest_seconds, "cpu_seconds": ingest_cpu}},
    }


def _ratios(row: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The row with its incremental / full ratios of wall and CPU seconds."""
    row = {**row, **extra}
    row["ratio"] = round(row["incremental_seconds"] / row["full_seconds"], 3)
    row["cpu_ratio"] = round(row["incremental_cpu_seconds"] / row["full_cpu_seconds"], 3)
    return row


def _print(stage: str, row: dict[str, Any]) -> None:
    print(
        f"{stage:9s} night {row['night']:3d}  rows {row['rows']:9,d}  new {row['rows_new']:7,d}  incremental "
        f"{row['incremental_seconds']:7.1f} s (CPU {row['incremental_cpu_seconds']:7.1f} s)  full "
        f"{row['full_seconds']:7.1f} s (CPU {row['full_cpu_seconds']:7.1f} s)  ratio {row['ratio']:.2f} "
        f"(CPU {row['cpu_ratio']:.2f})",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=5, help="simulated nights")
    parser.add_argument(
        "--rows", type=int, default=1000, help="rows per night (anonymise: nights x rows <= 10,003, BANKING77)"
    )
    parser.add_argument("--anonymise-rows", type=int, help="rows per night for anonymise (default: --rows)")
    parser.add_argument("--stages", default="validate,anonymise", help="comma-separated: validate, anonymise")
    parser.add_argument(
        "--timed-from",
        type=int,
        default=1,
        help="validate: time night 1 and the nights from this one only (the others are delivered and validated once)",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json-out", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    stages = [stage.strip() for stage in args.stages.split(",") if stage.strip()]
    if set(stages) - {"validate", "anonymise"}:
        parser.error(f"--stages: unknown stage(s) {sorted(set(stages) - {'validate', 'anonymise'})}")
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-nightly-") as workdir:
        if "validate" in stages:
            found = run_validate_nights(Path(workdir), args.nights, args.rows, args.seed, args.timed_from)
            figures["validate"] = found
        if "anonymise" in stages:
            rows = args.anonymise_rows or args.rows
            figures["anonymise"] = run_nights(Path(workdir), args.nights, rows, args.seed)
    for stage in ("validate", "anonymise"):  # ingest runs with validate's nights, split with anonymise's
        for inner in ("ingest", "split"):
            if inner in figures.get(stage, {}):
                figures[inner] = figures[stage].pop(inner)
    for stage, found in figures.items():
        found["summary"] = growth(found["nights"]) if stage == "split" else summary(found)
        print(f"-- {stage}")
        for key, value in found["summary"].items():
            print(f"{key:40s} {value}")
    year = projection(figures)
    figures["year_projection_cpu_seconds"] = year
    print(f"-- night {YEAR_NIGHTS}, CPU seconds on a straight line through the timed nights (see projection)")
    for stage, row in year.items():
        print(
            f"{stage:10s} {row['rows_a_night']:7,d} rows a night: night 1 {row['night_1']:8.1f} s, "
            f"night {YEAR_NIGHTS} {row[f'night_{YEAR_NIGHTS}']:8.1f} s"
        )
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        figures["cpus"] = os.cpu_count()
        args.json_out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
