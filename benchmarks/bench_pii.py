"""Benchmark PII detection: the pipeline's engine against Presidio's plain default, on the labelled evaluation set.

Run from the repository root (``make bench-pii`` does)::

    python benchmarks/bench_pii.py [--data data/pii_eval/pii_eval.jsonl] [--repeats 3] [--limit N]
                                   [--json-out reports/bench/pii.json] [--regenerate]

Both detectors see the same texts in the same process, one thread each (``OMP_NUM_THREADS=1`` and friends are set
before NumPy loads), so throughputs are texts per second per core:

* ``feedbackflow``: ``feedbackflow.privacy.analyzer`` as the anonymise stage builds it from ``params.yaml`` (added
  recognizers, filters, only the configured entities, spaCy ``nlp.pipe`` in batches of ``anonymise.batch_size``, the
  dependency parser disabled), with ``LOCATION`` added to the entities because the set labels it.
* ``presidio_default``: ``AnalyzerEngine().analyze(text, language="en")`` one text at a time, all predefined
  recognizers, Presidio's default threshold (0). Presidio's default wants ``en_core_web_lg``, which cannot be installed
  here, so it is built with the same installed spaCy model through ``NlpEngineProvider`` (Presidio's own spaCy
  configuration otherwise). Its e-mail check is pointed at tldextract's bundled suffix list so neither side touches
  the network. Its scores are reported twice: all findings, and findings at or above our ``score_threshold``.

Per-entity precision, recall and F2 follow the span-overlap rule of :mod:`feedbackflow.privacy.evalset`. Each
throughput is the median of ``--repeats`` timed passes over all texts, after one warm-up pass of 50 texts; passes
alternate between the two detectors so that noise on a shared machine hits both alike. Throughput is counted per
CPU second of this (single-threaded) process, which is texts per second per core and stays meaningful when other
processes share the cores; wall-clock figures are printed beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT / "data" / "pii_eval" / "pii_eval.jsonl"
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="labelled JSONL set (default: %(default)s)")
    parser.add_argument("--params", type=Path, default=REPO_ROOT / "params.yaml")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per detector (median reported)")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N messages (0: all)")
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--regenerate", action="store_true", help="rewrite --data from the seeded generator first")
    parser.add_argument("--size", type=int, default=1500, help="messages to generate with --regenerate")
    return parser.parse_args(argv)


def _ours(params: Path) -> tuple[Any, Any]:
    from feedbackflow.privacy import analyzer
    from feedbackflow.settings import load_settings

    settings = load_settings(params).anonymise
    entities = [*settings.entities, *(["LOCATION"] if "LOCATION" not in settings.entities else [])]
    # Detection only: operators decide how findings are replaced, so the bench runs without a pseudonym key.
    config = settings.model_copy(update={"entities": entities, "operator": "placeholder", "operators": {}})
    engine = analyzer.build_engine(config)

    def detect(texts: list[str]) -> list[list[tuple[int, int, str]]]:
        with analyzer.presidio_logs_without_text():
            found = analyzer.analyze_texts(texts, engine)
        return [[(r.start, r.end, r.entity_type) for r in results] for results in found]

    return engine, detect


def _default(model: str) -> tuple[Any, Any]:
    import tldextract.tldextract
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    from feedbackflow.privacy.analyzer import offline_tld_extractor

    tldextract.tldextract.TLD_EXTRACTOR = offline_tld_extractor()
    provider = NlpEngineProvider(
        nlp_configuration={"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]}
    )
    engine = AnalyzerEngine(nlp_engine=provider.create_engine())

    def detect(texts: list[str]) -> list[list[tuple[int, int, str, float]]]:
        return [[(r.start, r.end, r.entity_type, r.score) for r in engine.analyze(t, language="en")] for t in texts]

    return engine, detect


def _timed(detect: Any, texts: list[str]) -> tuple[float, float, Any]:
    started, cpu_started = time.perf_counter(), time.process_time()
    found = detect(texts)
    return time.perf_counter() - started, time.process_time() - cpu_started, found


def _table(title: str, scores: dict[str, Any]) -> str:
    lines = [title, f"  {'entity':<18} {'gold':>5} {'pred':>5} {'precision':>9} {'recall':>7} {'F2':>6}"]
    for entity, item in scores.items():
        p, r, f2 = item.precision, item.recall, item.f2
        lines.append(
            f"  {entity:<18} {item.gold:>5} {item.predicted:>5} {_fmt(p):>9} {_fmt(r):>7} {_fmt(f2):>6}"
            + ("" if entity != "overall" else "  (micro)")
        )
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    for name in _THREAD_VARIABLES:  # before NumPy/spaCy load: one core per detector
        os.environ.setdefault(name, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from feedbackflow.privacy import evalset
    from feedbackflow.privacy.analyzer import resolve_spacy_model
    from feedbackflow.settings import load_settings

    if args.regenerate:
        evalset.write_jsonl(evalset.generate(args.size), args.data)
        print(f"wrote {args.size} messages to {args.data}")
    messages = evalset.read_jsonl(args.data)
    if args.limit:
        messages = messages[: args.limit]
    texts = [message.text for message in messages]
    settings = load_settings(args.params).anonymise
    model = resolve_spacy_model(settings.spacy_model)

    ours_engine, ours = _ours(args.params)
    _, default = _default(model)
    ours(texts[:50])
    default(texts[:50])
    seconds: dict[str, list[float]] = {"feedbackflow": [], "presidio_default": []}
    cpu_seconds: dict[str, list[float]] = {"feedbackflow": [], "presidio_default": []}
    found: dict[str, Any] = {}
    for repeat in range(args.repeats):
        order = [("feedbackflow", ours), ("presidio_default", default)]
        for name, detect in order if repeat % 2 == 0 else reversed(order):
            elapsed, cpu, found[name] = _timed(detect, texts)
            seconds[name].append(elapsed)
            cpu_seconds[name].append(cpu)

    entities = evalset.ENTITIES
    ours_scores = evalset.score(messages, found["feedbackflow"], entities)
    default_all = [[(s, e, t) for s, e, t, _ in spans] for spans in found["presidio_default"]]
    default_thr = [
        [(s, e, t) for s, e, t, score in spans if score >= settings.score_threshold]
        for spans in found["presidio_default"]
    ]
    default_scores = evalset.score(messages, default_all, entities)
    default_thr_scores = evalset.score(messages, default_thr, entities)
    rate = {name: len(texts) / statistics.median(values) for name, values in cpu_seconds.items()}
    wall_rate = {name: len(texts) / statistics.median(values) for name, values in seconds.items()}
    ratio = rate["feedbackflow"] / rate["presidio_default"]

    print(
        f"PII evaluation set: {args.data.relative_to(REPO_ROOT) if args.data.is_relative_to(REPO_ROOT) else args.data}"
    )
    print(f"  {len(messages)} messages, {sum(len(m.spans) for m in messages)} labelled values; spaCy model {model}")
    print("  (Presidio's default would load en_core_web_lg; not installable here, so both use the model above)")
    print()
    print(_table(f"feedbackflow engine (threshold {settings.score_threshold}, batched nlp.pipe):", ours_scores))
    print()
    print(_table("Presidio default AnalyzerEngine, all findings (its default threshold 0):", default_scores))
    print()
    print(_table(f"Presidio default AnalyzerEngine, findings >= {settings.score_threshold}:", default_thr_scores))
    print()
    print(f"throughput, 1 thread, median of {args.repeats} passes over {len(texts)} texts (per CPU second; wall):")
    for name, label in (
        ("feedbackflow", f"feedbackflow (batch {ours_engine.batch_size})"),
        ("presidio_default", "Presidio default, one by one"),
    ):
        print(f"  {label:<28} : {rate[name]:8.1f} texts/s per core ({wall_rate[name]:.1f} texts/s wall)")
    wall_ratio = wall_rate["feedbackflow"] / wall_rate["presidio_default"]
    print(f"  ratio                        : {ratio:8.2f}x (wall: {wall_ratio:.2f}x)")

    if args.json_out:
        payload = {
            "data": str(args.data),
            "messages": len(messages),
            "spacy_model": model,
            "score_threshold": settings.score_threshold,
            "batch_size": ours_engine.batch_size,
            "repeats": args.repeats,
            "machine": {"platform": platform.platform(), "python": sys.version.split()[0], "cpus": os.cpu_count()},
            "feedbackflow": {k: v.as_dict() for k, v in ours_scores.items()},
            "presidio_default": {k: v.as_dict() for k, v in default_scores.items()},
            "presidio_default_thresholded": {k: v.as_dict() for k, v in default_thr_scores.items()},
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "texts_per_cpu_second": rate,
            "texts_per_wall_second": wall_rate,
            "ratio": ratio,
        }
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
