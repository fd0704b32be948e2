"""Fine-tune the base model on the full BANKING77 training set and report official test-set accuracy.

This is the quality figure quoted in the README. It uses the same training code as the ``train`` stage
(``feedbackflow.modeling.training.fine_tune``) and the hyper-parameters of ``params.yaml``'s ``train`` section,
overridable on the command line. A stratified 10% of the training set is held out for per-epoch validation, as
BANKING77 has no official validation split.

Usage: ``python benchmarks/banking77_accuracy.py [--model PATH_OR_NAME] [--epochs N] [--learning-rate LR]
[--json-out FILE]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "banking77")
    parser.add_argument("--model", default=None, help="base model (default: params.yaml train.base_model)")
    parser.add_argument("--epochs", type=float, default=None)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)

    import pandas as pd
    import yaml
    from sklearn.model_selection import train_test_split

    from feedbackflow.modeling.metrics import classification_metrics
    from feedbackflow.modeling.model import pick_device, resolve_base_model
    from feedbackflow.modeling.predict import predict_labels
    from feedbackflow.modeling.training import fine_tune
    from feedbackflow.settings import TrainSettings

    params = yaml.safe_load((ROOT / "params.yaml").read_text())["train"]
    overrides = {"epochs": args.epochs, "learning_rate": args.learning_rate, "batch_size": args.batch_size}
    params.update({key: value for key, value in overrides.items() if value is not None})
    if args.model:
        params["base_model"] = args.model
    settings = TrainSettings(**params)
    labels = json.loads((args.data / "categories.json").read_text())
    train = pd.read_csv(args.data / "train.csv")
    test = pd.read_csv(args.data / "test.csv")
    fit, held_out = train_test_split(train, test_size=0.1, stratify=train["category"], random_state=42)
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "model"
        started = time.perf_counter()
        result = fine_tune(
            resolve_base_model(settings.base_model, ROOT),
            labels,
            (fit["text"].tolist(), fit["category"].tolist()),
            (held_out["text"].tolist(), held_out["category"].tolist()),
            settings,
            seed=42,
            output_dir=out,
            checkpoint_dir=Path(scratch) / "checkpoints",
        )
        predicted = predict_labels(out, test["text"].tolist(), device=pick_device(settings.device))
    scores = classification_metrics(test["category"].tolist(), predicted, labels)
    report = {
        "test_rows": len(test),
        "test_accuracy": round(scores["accuracy"], 4),
        "test_macro_f1": round(scores["macro_f1"], 4),
        "train_rows": len(fit),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "train": result.metrics,
        "history": result.history,
        "settings": settings.model_dump(),
    }
    print(json.dumps({k: v for k, v in report.items() if k != "settings"}, indent=2))
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
