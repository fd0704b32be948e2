"""Fine-tune the base model on BANKING77 and report official test-set quality over seeds, with out-of-scope figures.

This is the quality figure quoted in the README. It uses the same training code as the ``train`` stage
(``feedbackflow.modeling.training.fine_tune``, temperature and ``unknown`` threshold included) and the
hyper-parameters of ``params.yaml``'s ``train`` and ``oos`` sections, overridable on the command line. A stratified
10% of the training set is held out as the validation split (early stopping, temperature, threshold), as BANKING77
has no official one; the official test split is only scored, never tuned on.

With ``--seeds N`` the model is trained N times (seeds ``base.seed`` .. ``base.seed + N - 1``, same held-out split)
and the mean, sample standard deviation, min and max of in-scope accuracy and macro-F1 are printed. With
``--oos-share X``, X times as many out-of-scope messages as each split has rows are added from HWU64 (home-assistant
requests, not banking; its finance intents excluded): HWU64's train file gives the negatives of the training side
(never taught as an intent, they set the threshold with the validation split), its test file those of the test side,
where out-of-scope recall at the in-scope precision chosen on validation (``oos.target_precision``) is reported.

Validation figures are printed beside the test figures: recipes are compared and chosen on validation only.

Distillation (``benchmarks/distill_study.py`` drives these): ``--save-models DIR`` keeps each seed's model as a
teacher; ``--folds K --fold I`` trains on the training rows outside stratified fold I of K and writes the model's
logits on fold I (``--oof-out FILE.npz``: out-of-fold soft targets, never from a model that saw the row);
``--teacher-logits FILE.npz`` distils from such logits (every training row's, joined by row id), and
``--set teacher=[DIR, ...]`` from teacher models, as the ``train`` stage does.

Usage: ``python -m benchmarks.banking77_accuracy [--seeds N] [--first-seed N] [--oos-share X] [--train-share S]
[--model PATH_OR_NAME] [--epochs N] [--learning-rate LR] [--set KEY=VALUE ...] [--save-models DIR]
[--folds K --fold I --oof-out FILE.npz] [--teacher-logits FILE.npz] [--json-out FILE]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIGURES = (
    "validation_accuracy",
    "validation_macro_f1",
    "test_accuracy",
    "test_macro_f1",
    "oos_recall",
    "oos_precision",
    "in_scope_precision",
    "in_scope_coverage",
    "ece_before",
    "ece_after",
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "banking77")
    parser.add_argument("--oos-data", type=Path, default=ROOT / "data" / "hwu64", help="out-of-scope source")
    parser.add_argument(
        "--oos-exclude",
        default="qa_currency,qa_stock",
        help="comma-separated labels of the out-of-scope source left out (they touch on money)",
    )
    parser.add_argument("--oos-share", type=float, default=0.0, help="out-of-scope rows per in-scope row, each split")
    parser.add_argument("--seeds", type=int, default=1, help="trainings with seeds base.seed, base.seed + 1, ...")
    parser.add_argument("--first-seed", type=int, default=None, help="first seed (default: params.yaml base.seed)")
    parser.add_argument("--save-models", type=Path, default=None, help="keep each seed's model in DIR/seed-N")
    parser.add_argument("--folds", type=int, default=0, help="with --fold: train outside one of K stratified folds")
    parser.add_argument("--fold", type=int, default=0, help="the fold (0-based) left out of training")
    parser.add_argument("--oof-out", type=Path, default=None, help="with --folds: the left-out fold's logits (.npz)")
    parser.add_argument(
        "--teacher-logits", type=Path, nargs="+", default=None, help="distil from out-of-fold logits (.npz files)"
    )
    parser.add_argument(
        "--train-share", type=float, default=1.0, help="stratified share of the training rows used (cheap probes)"
    )
    parser.add_argument("--model", default=None, help="base model (default: params.yaml train.base_model)")
    parser.add_argument("--epochs", type=float, default=None)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a train setting (YAML value), e.g. --set label_smoothing=0.1; repeatable",
    )
    parser.add_argument("--json-out", type=Path, default=None)
    return parser


def spread(values: list[float | None]) -> dict[str, float | None]:
    """Mean, sample standard deviation (0 for one value), min and max of the non-missing values."""
    kept = [value for value in values if value is not None]
    if not kept:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    return {
        "mean": round(statistics.fmean(kept), 4),
        "std": round(statistics.stdev(kept), 4) if len(kept) > 1 else 0.0,
        "min": round(min(kept), 4),
        "max": round(max(kept), 4),
        "n": len(kept),
    }


def soft_targets(files: list[Path], rows: Any, labels: list[str]) -> Any:
    """Teacher logits for the training rows ``rows`` (the data frame's index), joined from ``.npz`` files of
    ``--oof-out``; each row must be in exactly one file, and the files' label order must be ``labels``."""
    import numpy as np

    by_row: dict[int, Any] = {}
    for file in files:
        part = np.load(file)
        if [str(label) for label in part["labels"]] != labels:
            raise ValueError(f"{file}: its label order differs from the taxonomy's")
        for row, logits in zip(part["index"].tolist(), part["logits"], strict=True):
            if row in by_row:
                raise ValueError(f"{file}: training row {row} is in two files")
            by_row[row] = logits
    missing = [row for row in rows if row not in by_row]
    if missing:
        raise ValueError(f"no teacher logits for {len(missing)} training rows, e.g. {missing[:3]}")
    return np.stack([by_row[row] for row in rows]).astype(np.float32)


def out_of_scope(source: Path, exclude: set[str], share: float, sizes: dict[str, int], seed: int) -> dict[str, Any]:
    """Out-of-scope texts per split: ``fit`` and ``validation`` from the source's train file, ``test`` from its test
    file, ``share`` times each split's in-scope rows, drawn without replacement (seeded)."""
    import pandas as pd

    if share <= 0:
        return {name: [] for name in sizes}
    pools = {name: pd.read_csv(source / f"{name}.csv") for name in ("train", "test")}
    pools = {
        name: frame[~frame["category"].isin(exclude)].sample(frac=1.0, random_state=seed)
        for name, frame in pools.items()
    }
    wanted = {name: round(share * count) for name, count in sizes.items()}
    if wanted["fit"] + wanted["validation"] > len(pools["train"]) or wanted["test"] > len(pools["test"]):
        raise ValueError(f"--oos-share {share} asks for {wanted} out-of-scope rows; {source} has too few")
    texts = pools["train"]["text"].tolist()
    return {
        "fit": texts[: wanted["fit"]],
        "validation": texts[wanted["fit"] : wanted["fit"] + wanted["validation"]],
        "test": pools["test"]["text"].tolist()[: wanted["test"]],
    }


def main(argv: list[str] | None = None) -> dict:
    args = _parser().parse_args(argv)

    import numpy as np
    import pandas as pd
    import yaml
    from sklearn.model_selection import train_test_split

    from feedbackflow.modeling.metrics import classification_metrics
    from feedbackflow.modeling.model import pick_device, resolve_base_model
    from feedbackflow.modeling.oos import selective_metrics
    from feedbackflow.modeling.predict import load_calibration, predict_logits
    from feedbackflow.modeling.training import fine_tune
    from feedbackflow.settings import OutOfScopeSettings, TrainSettings

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    train_params = params["train"]
    overrides = {"epochs": args.epochs, "learning_rate": args.learning_rate, "batch_size": args.batch_size}
    train_params.update({key: value for key, value in overrides.items() if value is not None})
    for assignment in args.set:
        key, _, value = assignment.partition("=")
        train_params[key.strip()] = yaml.safe_load(value)
    if args.model:
        train_params["base_model"] = args.model
    settings = TrainSettings(**train_params)
    oos = OutOfScopeSettings(**params["oos"])
    base_seed = int(params["base"]["seed"])
    labels = json.loads((args.data / "categories.json").read_text())
    train = pd.read_csv(args.data / "train.csv")
    test = pd.read_csv(args.data / "test.csv")
    fit, held_out = train_test_split(train, test_size=0.1, stratify=train["category"], random_state=base_seed)
    if args.train_share < 1.0:
        fit, _ = train_test_split(fit, train_size=args.train_share, stratify=fit["category"], random_state=base_seed)
    fold_rows = fit.iloc[:0]
    if args.folds:
        from sklearn.model_selection import StratifiedKFold

        folds = StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=base_seed)
        kept, left_out = list(folds.split(fit, fit["category"]))[args.fold]
        fit, fold_rows = fit.iloc[kept], fit.iloc[left_out]
    teacher_logits = None
    if args.teacher_logits:
        teacher_logits = soft_targets(args.teacher_logits, fit.index, labels)
    sizes = {"fit": len(fit), "validation": len(held_out), "test": len(test)}
    negatives = out_of_scope(args.oos_data, set(args.oos_exclude.split(",")), args.oos_share, sizes, base_seed)
    test_texts = test["text"].tolist() + negatives["test"]
    test_truth = test["category"].tolist() + [oos.label] * len(negatives["test"])
    device = pick_device(settings.device)

    if teacher_logits is not None:  # out-of-scope rows are never taught: their rows are dropped by fine_tune
        teacher_logits = np.concatenate([teacher_logits, np.zeros((len(negatives["fit"]), len(labels)), np.float32)])
    runs = []
    started = time.perf_counter()
    first_seed = base_seed if args.first_seed is None else args.first_seed
    for seed in range(first_seed, first_seed + args.seeds):
        with tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch) / "model"
            run_started = time.perf_counter()
            result = fine_tune(
                resolve_base_model(settings.base_model, ROOT),
                labels,
                (
                    fit["text"].tolist() + negatives["fit"],
                    fit["category"].tolist() + [oos.label] * len(negatives["fit"]),
                ),
                (
                    held_out["text"].tolist() + negatives["validation"],
                    held_out["category"].tolist() + [oos.label] * len(negatives["validation"]),
                ),
                settings,
                seed=seed,
                output_dir=out,
                checkpoint_dir=Path(scratch) / "checkpoints",
                oos=oos,
                teacher_logits=teacher_logits,
            )
            logits, id2label = predict_logits(out, test_texts, device=device)
            calibration = load_calibration(out)
            if args.oof_out and len(fold_rows):
                fold_logits, _ = predict_logits(out, fold_rows["text"].tolist(), device=device)
                args.oof_out.parent.mkdir(parents=True, exist_ok=True)
                np.savez(args.oof_out, index=fold_rows.index.to_numpy(), logits=fold_logits, labels=np.array(labels))
            if args.save_models:
                shutil.copytree(out, args.save_models / f"seed-{seed}", dirs_exist_ok=True)
        predicted = [id2label[int(index)] for index in logits[: len(test)].argmax(axis=1)]
        scores = classification_metrics(test["category"].tolist(), predicted, labels)
        selective = selective_metrics(test_truth, logits, id2label, calibration, labels, oos.calibration_bins)
        run = {
            "seed": seed,
            "test_accuracy": round(scores["accuracy"], 4),
            "test_macro_f1": round(scores["macro_f1"], 4),
            **{key: result.metrics[key] for key in ("validation_accuracy", "validation_macro_f1")},
            **{key: selective[key] for key in FIGURES[4:]},
            "oos_method": calibration.method,
            "temperature": calibration.temperature,
            "threshold": calibration.to_dict()["threshold"],
            "validation": {key: value for key, value in calibration.validation.items() if key != "chosen_because"},
            "wall_seconds": round(time.perf_counter() - run_started, 1),
            "train": result.metrics,
            "history": result.history,
            "coverage_accuracy": selective["coverage_accuracy"],
        }
        runs.append(run)
        print(json.dumps({key: run[key] for key in ("seed", *FIGURES, "oos_method", "wall_seconds")}), flush=True)

    report = {
        "seeds": [run["seed"] for run in runs],
        "test_rows": len(test),
        "oos_test_rows": len(negatives["test"]),
        "oos_train_rows": len(negatives["fit"]) + len(negatives["validation"]),
        "train_rows": len(fit),
        "validation_rows": len(held_out),
        "target_precision": oos.target_precision,
        "summary": {key: spread([run[key] for run in runs]) for key in FIGURES},
        "wall_seconds": round(time.perf_counter() - started, 1),
        "runs": runs,
        "settings": settings.model_dump(),
        "oos_settings": oos.model_dump(),
        "argv": sys.argv[1:] if argv is None else argv,
    }
    shown = {key: value for key, value in report.items() if key not in ("runs", "settings", "oos_settings")}
    print(json.dumps(shown, indent=2))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
