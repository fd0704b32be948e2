"""Compare training recipes on BANKING77's validation split, several at once, and pick one on validation only.

Each recipe is a set of ``train`` overrides run by ``banking77_accuracy.py`` (same seeds, same held-out validation
split, optional out-of-scope rows). Recipes run as parallel processes (``--parallel``): on one GPU a 22M-parameter
model leaves most of the chip idle, so several trainings share it. The table is sorted by mean validation accuracy;
the chosen recipe is the best on validation, and the test figures are printed beside it, never used to choose.

With ``--process-per-seed`` every seed of every recipe is its own process (``--parallel`` then counts processes), so
a GPU with many CPU cores runs all of them at once; the seeds' reports are merged into one per recipe.

Usage: ``python -m benchmarks.recipe_grid --recipes FILE.yaml [--seeds 3] [--parallel 4] [--process-per-seed]
[--json-out FILE] [-- ARGS]`` where FILE.yaml maps a recipe's name to its overrides and ARGS go to every
``banking77_accuracy.py`` run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import yaml

from benchmarks.banking77_accuracy import spread

ROOT = Path(__file__).resolve().parents[1]

SHOWN = ("validation_accuracy", "validation_macro_f1", "test_accuracy", "test_macro_f1", "oos_recall", "ece_after")


def merge(name: str, overrides: dict[str, Any], parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One recipe's report from its single-seed reports: all their runs, the summary over them, the longest wall."""
    failed = [part for part in parts if "error" in part]
    if failed:
        return {**failed[0], "name": name}
    runs = [run for part in parts for run in part["runs"]]
    figures = parts[0]["summary"].keys()
    return {
        **parts[0],
        "name": name,
        "overrides": overrides,
        "runs": runs,
        "seeds": [run["seed"] for run in runs],
        "summary": {key: spread([run.get(key) for run in runs]) for key in figures},
        "wall_seconds": max(part["wall_seconds"] for part in parts),
    }


def _importable_env() -> dict[str, str]:
    """The environment with the repository root on ``PYTHONPATH``: ``python -m benchmarks...`` from any folder."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}


def run_recipe(
    name: str,
    overrides: dict[str, Any],
    seeds: int,
    extra: list[str],
    folder: Path,
    first_seed: int | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """One recipe's ``banking77_accuracy.py`` run; its JSON report (or the error's tail, also after ``timeout``
    seconds) and wall time."""
    out = folder / f"{name}.json"
    command = [sys.executable, "-m", "benchmarks.banking77_accuracy", "--seeds", str(seeds), "--json-out", str(out)]
    if first_seed is not None:
        command += ["--first-seed", str(first_seed)]
    for key, value in overrides.items():
        command += ["--set", f"{key}={json.dumps(value)}"]
    started = time.perf_counter()
    log = folder / f"{name}.log"
    with log.open("w") as sink:  # streamed, so the per-seed lines of a run cut short are kept
        try:
            code = subprocess.run(
                command + extra, stdout=sink, stderr=subprocess.STDOUT, timeout=timeout, env=_importable_env()
            ).returncode
        except subprocess.TimeoutExpired:
            code = -1
    seconds = round(time.perf_counter() - started, 1)
    if code != 0:
        return {"name": name, "overrides": overrides, "error": log.read_text()[-2000:], "wall_seconds": seconds}
    report = json.loads(out.read_text())
    return {"name": name, "overrides": overrides, "wall_seconds": seconds, **report}


def table(results: list[dict[str, Any]]) -> str:
    """Markdown table, best mean validation accuracy first: mean ± sample std of each figure."""
    ok = sorted(
        (r for r in results if "summary" in r),
        key=lambda r: r["summary"]["validation_accuracy"]["mean"] or 0,
        reverse=True,
    )
    lines = ["| recipe | " + " | ".join(SHOWN) + " | epochs run | wall s |", "|---" * (len(SHOWN) + 3) + "|"]
    for result in ok:
        cells = []
        for key in SHOWN:
            figure = result["summary"][key]
            cells.append("-" if figure["mean"] is None else f"{figure['mean']:.4f} ± {figure['std']:.4f}")
        epochs = [run["train"]["epochs_run"] for run in result["runs"]]
        lines.append(f"| {result['name']} | " + " | ".join(cells) + f" | {epochs} | {result['wall_seconds']} |")
    lines += [f"| {r['name']} | failed: {r['error'][-300:]!r} |" for r in results if "error" in r]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", type=Path, required=True)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--process-per-seed", action="store_true", help="one process per recipe and seed")
    parser.add_argument("--folder", type=Path, default=Path("reports/bench/recipes"))
    parser.add_argument("--json-out", type=Path, default=None)
    args, extra = parser.parse_known_args(argv)
    extra = [item for item in extra if item != "--"]
    recipes: dict[str, dict[str, Any]] = yaml.safe_load(args.recipes.read_text())
    args.folder.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []

    def finished(result: dict[str, Any]) -> None:
        results.append(result)
        print(f"{result['name']}: done in {result['wall_seconds']} s", "(failed)" if "error" in result else "")
        if args.json_out:  # rewritten after every recipe, so a run cut short keeps what finished
            args.json_out.write_text(json.dumps({"recipes": results, "table": table(results)}, indent=2) + "\n")

    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        if args.process_per_seed:
            base_seed = int(yaml.safe_load((ROOT / "params.yaml").read_text()).get("base", {}).get("seed", 42))
            seeds = range(base_seed, base_seed + args.seeds)
            parts = {
                name: [
                    pool.submit(run_recipe, f"{name}-{seed}", overrides or {}, 1, extra, args.folder, seed)
                    for seed in seeds
                ]
                for name, overrides in recipes.items()
            }
            for name, futures in parts.items():
                finished(merge(name, recipes[name] or {}, [future.result() for future in futures]))
        else:
            futures = [
                pool.submit(run_recipe, name, overrides or {}, args.seeds, extra, args.folder)
                for name, overrides in recipes.items()
            ]
            for future in as_completed(futures):
                finished(future.result())
    chosen = max((r for r in results if "summary" in r), key=lambda r: r["summary"]["validation_accuracy"]["mean"] or 0)
    print(table(results))
    print(f"chosen on validation: {chosen['name']} {chosen['overrides']}")
    return {"recipes": results, "chosen": chosen["name"]}


if __name__ == "__main__":
    main()
