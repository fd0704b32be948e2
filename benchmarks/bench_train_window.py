"""Training window + warm start against full-history training from the base model, on simulated BANKING77 nights.

The first ``--labels`` intents of BANKING77 (all 77: ``--labels 77``) are used. Their train split is cut into a
validation set (stratified, fixed by ``base.seed``) and ``--nights`` nights of
``--rows-per-night`` rows each (shuffled by ``base.seed``; night k's rows are created on day k). Each night two
policies train a model with the ``train`` stage's code (``fine_tune``, ``select_window``, ``start_point``):

* ``full``: from the base model on every row seen so far (the pipeline before ``train.window``);
* ``window``: on the ``train.window`` selection (the newest ``--window-rows`` rows, every label topped up to
  ``--min-rows-per-label``, a ``--replay-share`` sample of the older rows), warm-started from the previous night's
  window model (the champion, as if every night promoted); night 1 has no champion and equals ``full``'s night 1.
* ``window-base`` (with ``--window-from-base``): the same selection from the base model (warm start's share).

Every model is scored on BANKING77's official test split, which nothing is tuned on; the same seeds for both. With
``--seeds N`` the nights run N times (seeds ``base.seed`` .. + N - 1). Training wall time is the Trainer's
(``train_seconds``: loading and scoring excluded). The base model and the rest of the recipe are ``params.yaml``'s
``train`` section, with ``--max-length`` and ``--epochs`` overriding it so the study fits a CPU.

The defaults are sized for a shared 2-core CPU (about 20 minutes with three seeds at once, ``--jobs 3``): 10 intents,
3 nights of 150 rows, 1 epoch, ``max_length`` 32. Every model sees few rows, so the figures compare the policies,
not BANKING77's attainable accuracy (``make bench-accuracy`` measures that).

Usage: ``python -m benchmarks.bench_train_window [--labels 10] [--nights 3] [--rows-per-night 150] [--seeds 3]
[--jobs 3] [--epochs 1] [--max-length 32] [--window-rows 150] [--replay-share 0.2] [--min-rows-per-label 5]
[--validation-rows 50] [--test-rows 0] [--window-from-base] [--json-out FILE]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "banking77")
    parser.add_argument("--nights", type=int, default=3)
    parser.add_argument("--rows-per-night", type=int, default=150)
    parser.add_argument("--validation-rows", type=int, default=50, help="stratified validation rows (5 a label)")
    parser.add_argument(
        "--test-rows", type=int, default=0, help="a stratified sample of the test rows of those labels; 0: all"
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--window-rows", type=int, default=150, help="train.window.max_rows")
    parser.add_argument("--replay-share", type=float, default=0.2, help="train.window.replay_share")
    parser.add_argument("--min-rows-per-label", type=int, default=5, help="train.window.min_rows_per_label")
    parser.add_argument("--window-from-base", action="store_true", help="also train the window from the base model")
    parser.add_argument("--labels", type=int, default=10, help="the first N intents of categories.json only")
    parser.add_argument("--jobs", type=int, default=3, help="seeds trained at once (one torch thread each when > 1)")
    parser.add_argument("--json-out", type=Path)
    return parser


def simulated_nights(
    data: Path, nights: int, rows_per_night: int, validation_rows: int, test_rows: int, seed: int, label_count: int
) -> dict[str, Any]:
    """BANKING77 train split as validation rows and nights of dated rows; the test split (or a stratified sample)
    for the score."""
    import pandas as pd
    from sklearn.model_selection import train_test_split

    labels = json.loads((data / "categories.json").read_text())[:label_count]
    train = pd.read_csv(data / "train.csv").rename(columns={"category": "label"})
    train = train[train["label"].isin(labels)]
    fit, validation = train_test_split(train, test_size=validation_rows, stratify=train["label"], random_state=seed)
    fit = fit.sample(frac=1.0, random_state=seed).head(nights * rows_per_night).reset_index(drop=True)
    fit.insert(0, "id", [f"r{index:06d}" for index in range(len(fit))])
    night = fit.index // rows_per_night
    fit["night"] = night + 1
    fit["created_at"] = pd.Timestamp("2026-01-01", tz="UTC") + pd.to_timedelta(night, unit="D")
    test = pd.read_csv(data / "test.csv").rename(columns={"category": "label"})
    test = test[test["label"].isin(labels)]
    if test_rows:
        test, _ = train_test_split(test, train_size=test_rows, stratify=test["label"], random_state=seed)
    return {
        "rows": fit,
        "validation": validation,
        "test": test,
        "labels": labels,
    }


def _train_and_score(start: str, rows: Any, data: dict, settings: Any, seed: int, out: Path) -> dict[str, Any]:
    """Fine-tune from ``start`` on ``rows``; test accuracy and macro-F1, train seconds."""
    from feedbackflow.modeling.metrics import classification_metrics
    from feedbackflow.modeling.predict import predict_logits
    from feedbackflow.modeling.training import fine_tune
    from feedbackflow.settings import load_settings

    shutil.rmtree(out, ignore_errors=True)
    result = fine_tune(
        start,
        data["labels"],
        (rows["text"].tolist(), rows["label"].tolist()),
        (data["validation"]["text"].tolist(), data["validation"]["label"].tolist()),
        settings,
        seed=seed,
        output_dir=out,
        checkpoint_dir=out.parent / f"{out.name}-checkpoints",
        oos=load_settings(ROOT / "params.yaml").oos,
    )
    shutil.rmtree(out.parent / f"{out.name}-checkpoints", ignore_errors=True)
    logits, id2label = predict_logits(out, data["test"]["text"].tolist(), batch_size=256)
    predicted = [id2label[int(index)] for index in logits.argmax(axis=1)]
    scores = classification_metrics(data["test"]["label"].tolist(), predicted, data["labels"])
    return {
        "train_rows": len(rows),
        "test_accuracy": round(scores["accuracy"], 4),
        "test_macro_f1": round(scores["macro_f1"], 4),
        "train_seconds": result.metrics["train_seconds"],
    }


def run_seed(data: dict, settings: Any, window: Any, seed: int, scratch: Path, from_base: bool) -> list[dict]:
    """One seed's nights: every policy's model each night, scored."""
    from feedbackflow.modeling.model import resolve_base_model
    from feedbackflow.modeling.predict import model_digest
    from feedbackflow.modeling.warm_start import start_point
    from feedbackflow.modeling.window import select_window

    base = resolve_base_model(settings.base_model, ROOT)
    rows, results = data["rows"], []
    champion = scratch / "champion"
    for night in range(1, int(rows["night"].max()) + 1):
        seen = rows[rows["night"] <= night]
        full = _train_and_score(base, seen, data, settings, seed, scratch / "full")
        results.append({"seed": seed, "night": night, "policy": "full", **full})
        if night == 1:  # no champion yet: the window policy trains what full does
            window_score = dict(full)
            shutil.copytree(scratch / "full", champion)
        else:
            selection = select_window(seen, window, seed)
            pointer = {"version": f"night-{night - 1}", "model_sha256": model_digest(champion)}
            start = start_point(base, champion, pointer, data["labels"])
            window_score = _train_and_score(start.model, selection.rows, data, settings, seed, scratch / "window")
            window_score["selection"] = {key: selection.report[key] for key in ("rows_in_window", "replay_rows")}
            if from_base:
                base_score = _train_and_score(base, selection.rows, data, settings, seed, scratch / "window-base")
                results.append({"seed": seed, "night": night, "policy": "window-base", **base_score})
            shutil.rmtree(champion)
            shutil.copytree(scratch / "window", champion)
        results.append({"seed": seed, "night": night, "policy": "window", **window_score})
        print(json.dumps(results[-2]), json.dumps(results[-1]), sep="\n", flush=True)
    return results


def summarise(results: list[dict]) -> list[dict]:
    """Mean and sample sd over seeds of accuracy, macro-F1 and train seconds, per policy and night."""
    table = []
    for key in sorted({(row["policy"], row["night"]) for row in results}, key=lambda k: (k[1], k[0])):
        runs = [row for row in results if (row["policy"], row["night"]) == key]
        entry: dict[str, Any] = {"policy": key[0], "night": key[1], "seeds": len(runs)}
        for figure in ("test_accuracy", "test_macro_f1", "train_seconds", "train_rows"):
            values = [float(row[figure]) for row in runs]
            entry[figure] = round(statistics.fmean(values), 4)
            entry[f"{figure}_sd"] = round(statistics.stdev(values), 4) if len(values) > 1 else 0.0
        table.append(entry)
    return table


def _print_table(table: list[dict]) -> None:
    print(f"{'night':>5} {'policy':<12} {'rows':>6} {'accuracy':>16} {'macro-F1':>16} {'train s':>12}")
    for row in table:
        print(
            f"{row['night']:>5} {row['policy']:<12} {row['train_rows']:>6.0f} "
            f"{row['test_accuracy']:>8.4f} ± {row['test_accuracy_sd']:.4f} "
            f"{row['test_macro_f1']:>8.4f} ± {row['test_macro_f1_sd']:.4f} "
            f"{row['train_seconds']:>6.1f} ± {row['train_seconds_sd']:.1f}"
        )


def main(argv: list[str] | None = None) -> dict:
    args = _parser().parse_args(argv)
    from feedbackflow.settings import TrainWindowSettings, load_settings

    settings = load_settings(ROOT / "params.yaml")
    train = settings.train.model_copy(
        update={"epochs": args.epochs, "max_length": args.max_length, "early_stopping_patience": 0}
    )
    window = TrainWindowSettings(
        max_rows=args.window_rows,
        max_days=None,
        min_rows_per_label=args.min_rows_per_label,
        replay_share=args.replay_share,
        warm_start=True,
    )
    data = simulated_nights(
        args.data,
        args.nights,
        args.rows_per_night,
        args.validation_rows,
        args.test_rows,
        settings.base.seed,
        args.labels,
    )
    if args.jobs > 1:
        train = train.model_copy(update={"num_threads": 1})
    started, results = time.perf_counter(), []
    seeds = range(settings.base.seed, settings.base.seed + args.seeds)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        runs = [pool.submit(_one_seed, data, train, window, seed, args.window_from_base) for seed in seeds]
        for done in runs:
            results += done.result()
            report = _report(args, train.base_model, results, time.perf_counter() - started)  # each seed, kept
    _print_table(report["summary"])
    return report


def _one_seed(data: dict, settings: Any, window: Any, seed: int, from_base: bool) -> list[dict]:
    """``run_seed`` in a scratch folder of its own (a worker process of ``--jobs``)."""
    with tempfile.TemporaryDirectory() as scratch:
        return run_seed(data, settings, window, seed, Path(scratch), from_base)


def _report(args: argparse.Namespace, base_model: str, results: list[dict], seconds: float) -> dict[str, Any]:
    """The results so far, written to ``--json-out`` (after every seed: a run cut short keeps its seeds)."""
    report = {
        "setup": {**{key: str(value) for key, value in vars(args).items()}, "base_model": base_model},
        "summary": summarise(results),
        "runs": results,
        "wall_seconds": round(seconds, 1),
    }
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
