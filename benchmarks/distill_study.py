"""Distillation on BANKING77: teachers trained once, students of the nightly recipe distilled from them, and the recipe
as shipped beside them in the same run; compared on the validation split only, the test split printed beside.

Phase 1, all at once (one GPU holds many 22M-parameter trainings):

* ``--teachers N`` teachers of the shipped recipe on every training row (seeds 100, 101, ...), kept as folders;
* N fold teachers, each trained outside one of N stratified folds of the training rows: each one's logits on its own
  fold are out-of-fold soft targets (no teacher saw the row it labels);
* the shipped recipe with the students' seeds (the baseline of this run).

Phase 2, all at once: a student per seed and variant. A variant is ``SOURCE:ALPHA:TEMPERATURE``: source ``ensemble``
distils from the N teacher folders through ``train.teacher`` (what the ``train`` stage does with that setting),
``oof`` from the out-of-fold logits. The teacher ensemble's own validation and test accuracy are reported too: the
ceiling a student of the same size can approach.

Usage: ``python -m benchmarks.distill_study [--teachers 5] [--seeds 3] [--variants ensemble:0.5:2 ...]
[--folder DIR] [--deadline SECONDS] [--json-out FILE] [-- ARGS for every banking77_accuracy.py run]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.banking77_accuracy import spread
from benchmarks.recipe_grid import run_recipe

ROOT = Path(__file__).resolve().parents[1]

SHOWN = ("validation_accuracy", "test_accuracy", "test_macro_f1", "oos_recall", "ece_after")


def run_all(jobs: dict[str, list[str]], folder: Path, timeout: float) -> dict[str, dict[str, Any]]:
    """Run each job (``banking77_accuracy.py`` arguments) as its own process, all at once; each job's JSON report, or
    its log's tail when it failed or ran out of ``timeout`` seconds."""
    with ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:
        futures = {
            name: pool.submit(run_recipe, name, {}, 1, argv, folder, None, timeout) for name, argv in jobs.items()
        }
        return {name: future.result() for name, future in futures.items()}


def summarise(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± sample std over the single-seed reports of one recipe (failed ones counted, not averaged)."""
    runs = [run for report in reports if "runs" in report for run in report["runs"]]
    summary = {key: spread([run.get(key) for run in runs]) for key in SHOWN}
    return {
        "summary": summary,
        "seeds": [run["seed"] for run in runs],
        "failed": sum("runs" not in report for report in reports),
        "epochs_run": [run["train"]["epochs_run"] for run in runs],
        "train_seconds": [run["train"]["train_seconds"] for run in runs],
    }


def ensemble_scores(teachers: list[Path], data: Path, base_seed: int) -> dict[str, float]:
    """Accuracy of the teachers' mean logits on the validation split and the official test split."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    from feedbackflow.modeling.model import pick_device
    from feedbackflow.modeling.recipe import ensemble_logits

    labels = json.loads((data / "categories.json").read_text())
    train = pd.read_csv(data / "train.csv")
    _, held_out = train_test_split(train, test_size=0.1, stratify=train["category"], random_state=base_seed)
    scores = {}
    for name, frame in (("validation", held_out), ("test", pd.read_csv(data / "test.csv"))):
        logits = ensemble_logits(teachers, frame["text"].tolist(), labels, device=pick_device("auto"))
        predicted = [labels[index] for index in logits.argmax(axis=1)]
        scores[f"{name}_accuracy"] = round(
            sum(p == t for p, t in zip(predicted, frame["category"], strict=True)) / len(frame), 4
        )
    return scores


def table(results: dict[str, dict[str, Any]]) -> str:
    """Markdown, best mean validation accuracy first."""
    lines = ["| recipe | " + " | ".join(SHOWN) + " | epochs run | failed |", "|---" * (len(SHOWN) + 3) + "|"]
    ranked = sorted(
        results.items(), key=lambda item: item[1]["summary"]["validation_accuracy"]["mean"] or 0, reverse=True
    )
    for name, result in ranked:
        cells = [
            "-"
            if result["summary"][key]["mean"] is None
            else f"{result['summary'][key]['mean']:.4f} ± {result['summary'][key]['std']:.4f}"
            for key in SHOWN
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {result['epochs_run']} | {result['failed']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teachers", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--variants", nargs="+", default=["ensemble:0.5:2", "oof:0.5:2", "ensemble:0.9:2"])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "banking77")
    parser.add_argument("--folder", type=Path, default=Path("reports/bench/distill"))
    parser.add_argument("--deadline", type=float, default=3600, help="seconds for the whole study")
    parser.add_argument("--json-out", type=Path, default=None)
    args, extra = parser.parse_known_args(argv)
    extra = [*(item for item in extra if item != "--"), "--data", str(args.data)]
    import yaml

    base_seed = int(yaml.safe_load((ROOT / "params.yaml").read_text()).get("base", {}).get("seed", 42))
    folder = args.folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    report: dict[str, Any] = {"argv": sys.argv[1:] if argv is None else argv, "phases": {}}

    def save() -> None:
        if args.json_out:
            args.json_out.parent.mkdir(parents=True, exist_ok=True)
            args.json_out.write_text(json.dumps(report, indent=2) + "\n")

    teachers = folder / "teachers"
    phase1: dict[str, list[str]] = {}
    for index in range(args.teachers):
        seed = 100 + index
        phase1[f"teacher-{index}"] = [*extra, "--first-seed", str(seed), "--save-models", str(teachers)]
        phase1[f"fold-{index}"] = [*extra, "--first-seed", str(200 + index), "--folds", str(args.teachers)]
        phase1[f"fold-{index}"] += ["--fold", str(index), "--oof-out", str(folder / f"oof-{index}.npz")]
    for seed in range(base_seed, base_seed + args.seeds):
        phase1[f"shipped-{seed}"] = [*extra, "--first-seed", str(seed)]
    done = run_all(phase1, folder, args.deadline - (time.perf_counter() - started))
    report["phases"]["1"] = {"seconds": round(time.perf_counter() - started, 1), "jobs": list(phase1)}
    results = {"shipped": summarise([done[f"shipped-{s}"] for s in range(base_seed, base_seed + args.seeds)])}
    results["teacher (single model, seeds 100..)"] = summarise([done[f"teacher-{i}"] for i in range(args.teachers)])
    report["errors"] = {name: result["error"] for name, result in done.items() if "error" in result}
    teacher_dirs = sorted(teachers.glob("seed-*"))
    if teacher_dirs:
        report["teacher_ensemble"] = {
            "members": len(teacher_dirs),
            **ensemble_scores(teacher_dirs, args.data, base_seed),
        }
    report["results"] = results
    save()

    phase2: dict[str, list[str]] = {}
    for variant in args.variants:
        source, alpha, temperature = variant.split(":")
        settings = ["--set", f"distill_alpha={alpha}", "--set", f"distill_temperature={temperature}"]
        if source == "ensemble":
            settings += ["--set", f"teacher={json.dumps([str(path) for path in teacher_dirs])}"]
        else:
            settings += ["--teacher-logits", *[str(folder / f"oof-{i}.npz") for i in range(args.teachers)]]
        for seed in range(base_seed, base_seed + args.seeds):
            phase2[f"{variant.replace(':', '_')}-{seed}"] = [*extra, *settings, "--first-seed", str(seed)]
    phase_started = time.perf_counter()
    done2 = run_all(phase2, folder, args.deadline - (time.perf_counter() - started))
    report["phases"]["2"] = {"seconds": round(time.perf_counter() - phase_started, 1), "jobs": list(phase2)}
    for variant in args.variants:
        name = variant.replace(":", "_")
        reports = [done2[f"{name}-{seed}"] for seed in range(base_seed, base_seed + args.seeds)]
        results[f"student {variant} (source:alpha:T)"] = summarise(reports)
    report["errors"].update({name: result["error"] for name, result in done2.items() if "error" in result})
    report["table"] = table(results)
    report["seconds"] = round(time.perf_counter() - started, 1)
    save()
    print(report["table"])
    print(json.dumps({key: report.get(key) for key in ("teacher_ensemble", "phases", "seconds")}, indent=2))
    return report


if __name__ == "__main__":
    main()
