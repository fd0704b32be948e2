"""Benchmark PII detection: the pipeline's engine against Presidio's plain default, on the dev and the locked set.

Run from the repository root (``make bench-pii`` does)::

    python -m benchmarks.bench_pii [--data data/pii_eval/pii_eval.jsonl] [--test-data data/pii_test/pii_test.jsonl]
                                   [--shapes-data data/pii_eval/pii_eval_shapes.jsonl]
                                   [--formats-data data/pii_eval/pii_eval_formats.jsonl]
                                   [--written-data data/pii_eval/pii_eval_written.jsonl] [--no-test]
                                   [--repeats 1] [--limit N] [--regenerate]
                                   [--json-out docs/benchmarks/results/pii.json]

Five sets: the *dev* set in four parts (``data/pii_eval/pii_eval.jsonl``, :mod:`tools.pii.evalset`,
``data/pii_eval/pii_eval_shapes.jsonl``, :mod:`tools.pii.devshapes`, the issue's scope shapes,
``data/pii_eval/pii_eval_formats.jsonl``, :mod:`tools.pii.devformats`, real-world formats of passports,
bank accounts, IBANs, postcodes and streets by another author, and ``data/pii_eval/pii_eval_written.jsonl``,
:mod:`tools.pii.devwritten`, how customers write bank accounts, postcodes, streets and names in free text,
letters and forms, by a fourth author), which recognizers were tuned on, and the *locked test* set
(``data/pii_test``, :mod:`tools.pii.testset`), written once by a separate generator and never tuned on
(read its scores, never its misses; ``--no-test`` skips it, for tuning sessions that must not see even its
scores). On the locked set a prediction counts for a gold label under the entity names of
:data:`tools.pii.testset.ACCEPTS` (e.g. Presidio's ``LOCATION`` for a street address), the same for both
detectors; the shapes, formats and written parts of the dev set use the same labels and names (one scoring
convention, owned by the bench's scorer, not by a generator).

Both detectors see the same texts in the same process, one thread each (``OMP_NUM_THREADS=1`` and friends are set
before NumPy loads), so throughputs are texts per second per core:

* ``feedbackflow``: :func:`feedbackflow.privacy.engine.build_engine` from ``params.yaml`` as the anonymise stage
  builds it (spaCy ``nlp.pipe`` in batches of ``anonymise.batch_size``, only the NER component);
* ``presidio_default``: ``AnalyzerEngine().analyze(text, language="en")`` one text at a time, all predefined
  recognizers, Presidio's default threshold (0). Presidio's default wants ``en_core_web_lg``, which cannot be installed
  here, so it is built with the same installed spaCy model through ``NlpEngineProvider`` (Presidio's own spaCy
  configuration otherwise). Its e-mail check is pointed at tldextract's bundled suffix list so neither side touches
  the network. Its scores are reported twice: all findings, and findings at or above our ``score_threshold``.

The leak gate's second opinion (:func:`feedbackflow.privacy.leak_gate.build_second_opinion`) is timed on the dev
texts too, as a cost relative to the anonymisation pass.

Per-entity precision, recall and F2 follow the span-overlap rule of :mod:`tools.pii.evalset`. Each
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
DEFAULT_SHAPES = REPO_ROOT / "data" / "pii_eval" / "pii_eval_shapes.jsonl"
DEFAULT_FORMATS = REPO_ROOT / "data" / "pii_eval" / "pii_eval_formats.jsonl"
DEFAULT_WRITTEN = REPO_ROOT / "data" / "pii_eval" / "pii_eval_written.jsonl"
DEFAULT_TEST = REPO_ROOT / "data" / "pii_test" / "pii_test.jsonl"
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="labelled JSONL set (default: %(default)s)")
    parser.add_argument("--params", type=Path, default=REPO_ROOT / "params.yaml")
    parser.add_argument(
        "--shapes-data",
        type=Path,
        default=DEFAULT_SHAPES,
        help="dev set of the issue's scope shapes; '' skips it (default: %(default)s)",
    )
    parser.add_argument(
        "--formats-data",
        type=Path,
        default=DEFAULT_FORMATS,
        help="dev set of real-world formats (devformats); '' skips it (default: %(default)s)",
    )
    parser.add_argument(
        "--written-data",
        type=Path,
        default=DEFAULT_WRITTEN,
        help="dev set of how customers write values (devwritten); '' skips it (default: %(default)s)",
    )
    parser.add_argument(
        "--test-data", type=Path, default=DEFAULT_TEST, help="locked test set; '' skips it (default: %(default)s)"
    )
    parser.add_argument(
        "--no-test", action="store_true", help="skip the locked test set whatever --test-data says (dev tuning)"
    )
    parser.add_argument("--repeats", type=int, default=1, help="timed passes per detector and set (median reported)")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N messages (0: all)")
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--regenerate", action="store_true", help="rewrite --data from the seeded generator first")
    parser.add_argument("--size", type=int, default=1500, help="messages to generate with --regenerate")
    return parser.parse_args(argv)


def _ours(params: Path) -> tuple[Any, Any]:
    from feedbackflow.privacy import engine as privacy
    from feedbackflow.settings import load_settings

    settings = load_settings(params).anonymise
    # Detection only: operators decide how findings are replaced, so the bench runs without a pseudonym key.
    config = settings.model_copy(update={"operator": "placeholder", "operators": {}})
    engine = privacy.build_engine(config, REPO_ROOT / "models" / "detector")  # read when anonymise.detector is on

    def detect(texts: list[str]) -> list[list[tuple[int, int, str]]]:
        with privacy.presidio_logs_without_text():
            found = privacy.analyze_texts(texts, engine)
        return [[(r.start, r.end, r.entity_type) for r in results] for results in found]

    return engine, detect


def _default(model: str) -> tuple[Any, Any]:
    import tldextract.tldextract
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    from feedbackflow.privacy.recognizers import offline_tld_extractor

    tldextract.tldextract.TLD_EXTRACTOR = offline_tld_extractor()
    provider = NlpEngineProvider(
        nlp_configuration={"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]}
    )
    engine = AnalyzerEngine(nlp_engine=provider.create_engine())

    def detect(texts: list[str]) -> list[list[tuple[int, int, str, float]]]:
        return [[(r.start, r.end, r.entity_type, r.score) for r in engine.analyze(t, language="en")] for t in texts]

    return engine, detect


def _second_opinion_rate(params: Path, texts: list[str]) -> float:
    from feedbackflow.privacy.leak_gate import build_second_opinion
    from feedbackflow.settings import load_settings

    second = build_second_opinion(load_settings(params).anonymise)
    second.analyze(texts[:50])
    _, cpu, _ = _timed(second.analyze, texts)
    return len(texts) / cpu


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


def _run_set(name: str, path: Path, args: argparse.Namespace, detectors: dict[str, Any], threshold: float) -> dict:
    """Score and time both detectors on one labelled set; print its tables; return the JSON payload part."""
    from tools.pii import devformats, devshapes, devwritten, evalset, testset

    messages = evalset.read_jsonl(path)
    if args.limit:
        messages = messages[: args.limit]
    texts = [message.text for message in messages]
    entities, accepts = {
        "test": (testset.ENTITIES, testset.ACCEPTS),
        "dev_shapes": (devshapes.ENTITIES, testset.ACCEPTS),
        "dev_formats": (devformats.ENTITIES, testset.ACCEPTS),
        "dev_written": (devwritten.ENTITIES, testset.ACCEPTS),
    }.get(name, (evalset.ENTITIES, {}))
    seconds: dict[str, list[float]] = {"feedbackflow": [], "presidio_default": []}
    cpu_seconds: dict[str, list[float]] = {"feedbackflow": [], "presidio_default": []}
    found: dict[str, Any] = {}
    for repeat in range(args.repeats):
        order = list(detectors.items())
        for label, detect in order if repeat % 2 == 0 else reversed(order):
            elapsed, cpu, found[label] = _timed(detect, texts)
            seconds[label].append(elapsed)
            cpu_seconds[label].append(cpu)
    ours = evalset.score(messages, found["feedbackflow"], entities, accepts)
    default_all = [[(s, e, t) for s, e, t, _ in spans] for spans in found["presidio_default"]]
    default_thr = [[(s, e, t) for s, e, t, sc in spans if sc >= threshold] for spans in found["presidio_default"]]
    default_scores = evalset.score(messages, default_all, entities, accepts)
    default_thr_scores = evalset.score(messages, default_thr, entities, accepts)
    rate = {label: len(texts) / statistics.median(values) for label, values in cpu_seconds.items()}
    wall = {label: len(texts) / statistics.median(values) for label, values in seconds.items()}
    title = {
        "test": "LOCKED TEST set",
        "dev_shapes": "DEV set, scope shapes (tuned on)",
        "dev_formats": "DEV set, real-world formats (tuned on)",
        "dev_written": "DEV set, written by customers (tuned on)",
    }.get(name, "DEV set (tuned on)")
    shown = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
    print(f"=== {title}: {shown}: {len(messages)} messages, {sum(len(m.spans) for m in messages)} labelled values")
    if accepts:
        print(
            "  (a prediction counts for a label under these names: "
            + "; ".join(f"{k} <- {'/'.join(v)}" for k, v in accepts.items())
            + ")"
        )
    print(_table(f"feedbackflow engine (threshold {threshold}, batched nlp.pipe):", ours))
    print(_table("Presidio default AnalyzerEngine, all findings (its default threshold 0):", default_scores))
    print(_table(f"Presidio default AnalyzerEngine, findings >= {threshold}:", default_thr_scores))
    ratio = rate["feedbackflow"] / rate["presidio_default"]
    print(f"throughput, 1 thread, median of {args.repeats} pass(es) over {len(texts)} texts (per CPU second; wall):")
    for label in detectors:
        print(f"  {label:<28} : {rate[label]:8.1f} texts/s per core ({wall[label]:.1f} texts/s wall)")
    print(
        f"  ratio                        : {ratio:8.2f}x (wall: {wall['feedbackflow'] / wall['presidio_default']:.2f}x)"
    )
    print()
    return {
        "data": str(path),
        "messages": len(messages),
        "feedbackflow": {k: v.as_dict() for k, v in ours.items()},
        "presidio_default": {k: v.as_dict() for k, v in default_scores.items()},
        "presidio_default_thresholded": {k: v.as_dict() for k, v in default_thr_scores.items()},
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "texts_per_cpu_second": rate,
        "texts_per_wall_second": wall,
        "ratio": ratio,
    }


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    for name in _THREAD_VARIABLES:  # before NumPy/spaCy load: one core per detector
        os.environ.setdefault(name, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from feedbackflow.privacy.engine import resolve_spacy_model
    from feedbackflow.settings import load_settings
    from tools.pii import evalset

    if args.regenerate:
        evalset.write_jsonl(evalset.generate(args.size), args.data)
        print(f"wrote {args.size} messages to {args.data}")
    settings = load_settings(args.params).anonymise
    model = resolve_spacy_model(settings.spacy_model)
    ours_engine, ours = _ours(args.params)
    _, default = _default(model)
    warm = [m.text for m in evalset.read_jsonl(args.data)[:50]]
    ours(warm)
    default(warm)
    detectors = {"feedbackflow": ours, "presidio_default": default}
    print(f"spaCy model {model} for both (Presidio's default would load en_core_web_lg; not installable here)")
    print()
    test = args.test_data if str(args.test_data) not in ("", ".") and not args.no_test else None
    shapes = args.shapes_data if str(args.shapes_data) not in ("", ".") else None
    formats = args.formats_data if str(args.formats_data) not in ("", ".") else None
    written = args.written_data if str(args.written_data) not in ("", ".") else None
    sets = {
        "dev": args.data,
        **({"dev_shapes": shapes} if shapes else {}),
        **({"dev_formats": formats} if formats else {}),
        **({"dev_written": written} if written else {}),
        **({"test": test} if test else {}),
    }
    results = {name: _run_set(name, path, args, detectors, settings.score_threshold) for name, path in sets.items()}
    gate_rate = _second_opinion_rate(args.params, [m.text for m in evalset.read_jsonl(args.data)][: args.limit or None])
    print(
        f"leak gate second opinion (Presidio default recognizers + its own spaCy NER, batched) on the dev texts: "
        f"{gate_rate:.1f} texts/s per core, i.e. the gate costs "
        f"{results['dev']['texts_per_cpu_second']['feedbackflow'] / gate_rate:.2f}x "
        f"the anonymisation pass"
    )
    if args.json_out:
        dev = results["dev"]
        payload = {
            **dev,
            "sets": results,
            "spacy_model": model,
            "score_threshold": settings.score_threshold,
            "batch_size": ours_engine.batch_size,
            "repeats": args.repeats,
            "second_opinion_texts_per_cpu_second": gate_rate,
            "machine": {"platform": platform.platform(), "python": sys.version.split()[0], "cpus": os.cpu_count()},
        }
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
