"""The monitor's champion pass (the warm drift check's main cost) under candidate speed-ups, side by side.

Run from the repository root::

    python -m benchmarks.bench_drift_encoder [--rows 5000] [--reps 3] [--json-out PATH]

The champion is ``bench_drift.py``'s (:func:`bench_drift.fitted_champion`: the packaged all-MiniLM-L6-v2 encoder,
truncation 64, a 77-label head fitted to BANKING77), so its labels carry real margins: a random head's near-tied
logits would make any label-agreement figure meaningless. The texts are ``--rows`` messages of ``bench_drift.py``'s
shifted current batch (each made unique), i.e. what a warm drift check embeds and predicts.

Variants, all through :func:`feedbackflow.monitoring.embeddings.champion_outputs` (the stage's code: length-sorted
batches under ``torch.inference_mode``, ``torch.get_num_threads()`` threads; in bf16, near-ties of the two best
logits passed again in float32), interleaved within each repetition, medians of ``--reps``:

* ``float32`` at batch size 64 (the stage before), at 32, and at 64 with one thread;
* ``bfloat16`` (CPU autocast) at batch size 64, without the near-tie re-check (bf16 alone), with it and torch's
  default threads (one per core: the stage now), and with it and one thread
  (on a machine shared with other jobs, OpenMP threads that wait for a descheduled sibling can cost more than the
  second core gives);
* ``int8``: dynamic int8 quantisation of every ``nn.Linear`` (``torch.ao.quantization.quantize_dynamic``), float32
  elsewhere, batch size 64.

Printed per variant: median wall and CPU seconds (user + system, all threads), and against ``float32``/64 on every
text: the share of equal predicted labels (the issue's bar: >= 99 %) and the cosine of the sentence embeddings
(minimum and median). The drift decision on whole reports is checked by ``bench_drift.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

VARIANTS = {  # name: (dtype, batch size, int8 Linear layers, torch threads (0: torch's default), near-tie re-check)
    "float32/64": ("float32", 64, False, 0, True),
    "float32/32": ("float32", 32, False, 0, True),
    "float32/64/1 thread": ("float32", 64, False, 1, True),
    "bfloat16/64": ("bfloat16", 64, False, 0, True),
    "bfloat16/64 no re-check": ("bfloat16", 64, False, 0, False),
    "bfloat16/64/1 thread": ("bfloat16", 64, False, 1, True),
    "int8/64": ("float32", 64, True, 0, True),
}
BASELINE = "float32/64"


def main(argv: list[str] | None = None) -> None:
    import numpy as np
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from benchmarks import bench_drift
    from feedbackflow.monitoring.embeddings import champion_outputs, forward_pass

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5000, help="texts per pass (a warm check's current sample)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--fit-rows", type=int, default=3000, help="messages the champion's head is fitted on")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    champion = bench_drift.fitted_champion(
        Path(tempfile.mkdtemp(prefix="bench-drift-encoder-")) / "champion", args.fit_rows
    )
    tokenizer = AutoTokenizer.from_pretrained(champion)
    model = AutoModelForSequenceClassification.from_pretrained(champion).eval()
    quantised = torch.ao.quantization.quantize_dynamic(
        AutoModelForSequenceClassification.from_pretrained(champion).eval(), {torch.nn.Linear}, dtype=torch.qint8
    )
    texts = bench_drift.batch(bench_drift.corpus(), args.rows, 2, "current", 2, shift=True)["text"].tolist()
    threads = torch.get_num_threads()
    for dtype, _, int8, _, _ in VARIANTS.values():  # warm-up: first calls pay for kernel selection
        forward_pass(quantised if int8 else model, tokenizer, texts[:128], 64, dtype)
    wall: dict[str, list[float]] = {name: [] for name in VARIANTS}
    cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
    outputs: dict[str, Any] = {}
    for _ in range(args.reps):
        for name, (dtype, batch_size, int8, variant_threads, recheck) in VARIANTS.items():
            torch.set_num_threads(variant_threads or threads)
            run = champion_outputs if recheck else forward_pass
            started, cpu_started = time.perf_counter(), time.process_time()
            outputs[name] = run(quantised if int8 else model, tokenizer, texts, batch_size, dtype)
            wall[name].append(round(time.perf_counter() - started, 2))
            cpu[name].append(round(time.process_time() - cpu_started, 2))
            print(f"{name}: {wall[name][-1]} s wall, {cpu[name][-1]} s CPU", flush=True)
    hidden = model.config.hidden_size
    base = outputs[BASELINE]
    torch.set_num_threads(threads)
    result: dict[str, Any] = {"rows": args.rows, "reps": args.reps, "threads": threads, "variants": {}}
    for name, out in outputs.items():
        cosine = (out[:, :hidden] * base[:, :hidden]).sum(axis=1)
        result["variants"][name] = {
            "median_wall_seconds": statistics.median(wall[name]),
            "median_cpu_seconds": statistics.median(cpu[name]),
            "wall_seconds": wall[name],
            "cpu_seconds": cpu[name],
            "label_agreement": round(float((out[:, hidden:].argmax(1) == base[:, hidden:].argmax(1)).mean()), 4),
            "embedding_cosine_min": round(float(cosine.min()), 5),
            "embedding_cosine_median": round(float(np.median(cosine)), 5),
        }
    for name, figures in result["variants"].items():
        print(
            f"{name:22s} wall {figures['median_wall_seconds']:6.1f} s  CPU {figures['median_cpu_seconds']:6.1f} s  "
            f"labels equal {figures['label_agreement']:.2%}  embedding cosine min {figures['embedding_cosine_min']}"
        )
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
