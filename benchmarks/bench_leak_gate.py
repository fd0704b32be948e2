"""Leak gate second scan: rows per CPU second before and after its speed-ups, and proof the findings are the same.

Run from the repository root::

    python -m benchmarks.bench_leak_gate [--pii-texts 3000] [--banking-texts 2000] [--json-out PATH]

The second scan (:func:`feedbackflow.privacy.leak_gate.build_second_opinion`: Presidio's unmodified predefined
recognizers and its own spaCy pass) is built once with the project's ``params.yaml`` and run two ways over the same
texts, in one process pinned to one core:

* **before**: as the gate ran it until now: Presidio's ``BatchAnalyzerEngine`` with its default ``batch_size=1``
  (spaCy runs its models once per text) and every recognizer on every text;
* **after**: spaCy batches of ``anonymise.batch_size`` texts, and the recognizers that provably need a digit
  (:func:`~feedbackflow.privacy.leak_gate.needs_a_digit`) skipped on texts without one.

Texts: the PII evaluation sets (``data/pii_eval``: many findings, so a strict check of sameness) and BANKING77's test
messages (real customer feedback, few digits and little personal data: the common case). Every finding (entity,
start, end, score) must be the same in both runs, text by text, or the run exits non-zero. Rows per CPU second is the
process's CPU time; nothing is asserted on time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def texts(pii: int, banking: int) -> dict[str, list[str]]:
    """The two text sets (the first ``pii`` PII evaluation texts, the first ``banking`` BANKING77 test messages)."""
    import pandas as pd

    evaluation = [
        json.loads(line)["text"]
        for name in ("pii_eval.jsonl", "pii_eval_shapes.jsonl")
        for line in (ROOT / "data" / "pii_eval" / name).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    messages = pd.read_csv(ROOT / "data" / "banking77" / "test.csv")["text"].tolist()
    return {"data/pii_eval": evaluation[:pii], "banking77 test": messages[:banking]}


def _findings(second: Any, batch: list[str]) -> tuple[list[list[tuple]], float]:
    started = time.process_time()
    found = second.analyze(batch)
    cpu = time.process_time() - started
    return [sorted((r.entity_type, r.start, r.end, round(r.score, 9)) for r in results) for results in found], cpu


def run_benchmark(pii: int, banking: int, log: Any = print) -> dict[str, Any]:
    """Both ways over both sets; the figures per set and whether every finding is the same."""
    from feedbackflow.privacy.leak_gate import build_second_opinion
    from feedbackflow.settings import load_settings

    settings = load_settings(ROOT / "params.yaml").anonymise
    second = build_second_opinion(settings)
    gated = {id(r): r.analyze for r in second.analyzer.registry.recognizers if hasattr(r.analyze, "__wrapped__")}

    def before() -> None:
        second.batch_size = 1
        for recognizer in second.analyzer.registry.recognizers:
            if id(recognizer) in gated:
                recognizer.analyze = gated[id(recognizer)].__wrapped__

    def after() -> None:
        second.batch_size = settings.batch_size
        for recognizer in second.analyzer.registry.recognizers:
            if id(recognizer) in gated:
                recognizer.analyze = gated[id(recognizer)]

    second.analyze(["warm up the models, Jane Doe, 020 7946 0000"] * 8)
    figures: dict[str, Any] = {"batch_size": settings.batch_size, "spacy_model": settings.spacy_model, "sets": {}}
    for name, batch in texts(pii, banking).items():
        before()
        old, old_cpu = _findings(second, batch)
        after()
        new, new_cpu = _findings(second, batch)
        differ = sum(a != b for a, b in zip(old, new, strict=True))
        figures["sets"][name] = {
            "texts": len(batch),
            "with_a_digit": sum(any(c.isdecimal() for c in text) for text in batch),
            "findings": sum(map(len, old)),
            "texts_with_different_findings": differ,
            "before_cpu_seconds": round(old_cpu, 2),
            "after_cpu_seconds": round(new_cpu, 2),
            "before_rows_per_cpu_second": round(len(batch) / old_cpu, 1),
            "after_rows_per_cpu_second": round(len(batch) / new_cpu, 1),
        }
        log(f"{name}: {figures['sets'][name]}")
    return figures


def table(figures: dict[str, Any]) -> str:
    lines = [
        "| texts | n | with a digit | findings | before: rows per CPU s | after: rows per CPU s | same findings |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, f in figures["sets"].items():
        same = "yes" if not f["texts_with_different_findings"] else f"NO ({f['texts_with_different_findings']})"
        lines.append(
            f"| {name} | {f['texts']:,} | {f['with_a_digit']:,} | {f['findings']:,} | "
            f"{f['before_rows_per_cpu_second']:,.0f} | {f['after_rows_per_cpu_second']:,.0f} | {same} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_leak_gate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pii-texts", type=int, default=3000)
    parser.add_argument("--banking-texts", type=int, default=2000)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    figures = run_benchmark(args.pii_texts, args.banking_texts)
    print("\n" + table(figures))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 1 if any(f["texts_with_different_findings"] for f in figures["sets"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
