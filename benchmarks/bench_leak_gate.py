"""Leak gate second scan: rows per CPU second before and after its speed-ups, and proof the findings are the same.

Run from the repository root::

    python -m benchmarks.bench_leak_gate [--pii-texts 3000] [--banking-texts 2000] [--json-out PATH]

The second scan (:func:`feedbackflow.privacy.leak_gate.build_second_opinion`: Presidio's unmodified predefined
recognizers and its own spaCy pass) is built once with the project's ``params.yaml`` and run three ways over the same
texts, in one process pinned to one core:

* **before**: as the gate ran it until now: Presidio's ``BatchAnalyzerEngine`` with its default ``batch_size=1``
  (spaCy runs its models once per text) and every recognizer on every text;
* **after**: spaCy batches of ``anonymise.batch_size`` texts, the recognizers that provably need a digit
  (:func:`~feedbackflow.privacy.leak_gate.needs_a_digit`) skipped on texts without one, and Presidio's NLP artifacts
  (lemmas, token offsets) read from each ``Doc`` as arrays (:func:`~feedbackflow.privacy.engine.fast_artifacts`)
  instead of Presidio's two loops over its tokens.

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


#: The ways the scan runs, as (spaCy batches, digit gate, artifacts from arrays): Presidio's as shipped, the two
#: speed-ups of 2026-11-30, and all three.
WAYS = {"before": (False, False, False), "batched_gated": (True, True, False), "after": (True, True, True)}


def _findings(second: Any, batch: list[str]) -> tuple[list[list[tuple]], float]:
    started = time.process_time()
    found = second.analyze(batch)
    cpu = time.process_time() - started
    return [sorted((r.entity_type, r.start, r.end, round(r.score, 9)) for r in results) for results in found], cpu


def run_benchmark(pii: int, banking: int, log: Any = print) -> dict[str, Any]:
    """Every way over both sets; the figures per set and whether every finding is the same."""
    from feedbackflow.privacy.leak_gate import build_second_opinion
    from feedbackflow.settings import load_settings

    settings = load_settings(ROOT / "params.yaml").anonymise
    second = build_second_opinion(settings)
    gated = {id(r): r.analyze for r in second.analyzer.registry.recognizers if hasattr(r.analyze, "__wrapped__")}
    nlp_engine = second.analyzer.nlp_engine
    arrays = nlp_engine.__dict__["_doc_to_nlp_artifact"]  # fast_artifacts' instance attribute over Presidio's method

    def configure(batched: bool, digits: bool, fast: bool) -> None:
        second.batch_size = settings.batch_size if batched else 1
        if fast:
            nlp_engine._doc_to_nlp_artifact = arrays
        else:
            nlp_engine.__dict__.pop("_doc_to_nlp_artifact", None)  # Presidio's own method again
        for recognizer in second.analyzer.registry.recognizers:
            if id(recognizer) in gated:
                recognizer.analyze = gated[id(recognizer)] if digits else gated[id(recognizer)].__wrapped__

    second.analyze(["warm up the models, Jane Doe, 020 7946 0000"] * 8)
    figures: dict[str, Any] = {"batch_size": settings.batch_size, "spacy_model": settings.spacy_model, "sets": {}}
    for name, batch in texts(pii, banking).items():
        found, figure = {}, {"texts": len(batch), "with_a_digit": sum(any(c.isdecimal() for c in t) for t in batch)}
        for way, switches in WAYS.items():
            configure(*switches)
            found[way], cpu = _findings(second, batch)
            figure[f"{way}_cpu_seconds"] = round(cpu, 2)
            figure[f"{way}_rows_per_cpu_second"] = round(len(batch) / cpu, 1)
        figure["findings"] = sum(map(len, found["before"]))
        figure["texts_with_different_findings"] = sum(
            len({repr(found[way][i]) for way in WAYS}) > 1 for i in range(len(batch))
        )
        figures["sets"][name] = figure
        log(f"{name}: {figure}")
    return figures


def table(figures: dict[str, Any]) -> str:
    lines = [
        "| texts | n | with a digit | findings | rows per CPU s: before | batches + digit gate | + arrays "
        "| same findings |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, f in figures["sets"].items():
        same = "yes" if not f["texts_with_different_findings"] else f"NO ({f['texts_with_different_findings']})"
        lines.append(
            f"| {name} | {f['texts']:,} | {f['with_a_digit']:,} | {f['findings']:,} | "
            f"{f['before_rows_per_cpu_second']:,.0f} | {f['batched_gated_rows_per_cpu_second']:,.0f} | "
            f"{f['after_rows_per_cpu_second']:,.0f} | {same} |"
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
