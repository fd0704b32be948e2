"""Benchmark name detection on text people wrote: human-labelled tweets and posts (BTC, WNUT-17).

Run from the repository root (``make bench-pii-real`` does; the detector must be trained: ``dvc repro detector``)::

    python -m benchmarks.bench_pii_real [--split test] [--repeat 3] [--limit N] [--no-default] [--no-detector]
                                        [--json-out docs/benchmarks/results/pii_real.json]

Three detectors read the same texts (each sentence's tokens joined by spaces), one thread each, in one process:

* ``presidio_default``: Presidio's ``AnalyzerEngine`` with all predefined recognizers on the same spaCy model
  (:func:`benchmarks.bench_pii._default`), every finding counted;
* ``feedbackflow_rules``: our anonymiser as ``params.yaml`` builds it with ``anonymise.detector`` off (today's);
* ``feedbackflow_detector``: the same with the learned detector (``models/detector``) on, as the detector stage
  saved it (int8 when ``detector.int8`` was on).

Scores per corpus: *coverage* of PERSON (and of PERSON plus LOCATION) is the share of gold mentions that any finding
overlaps (any type: a replaced name is gone whatever it was called); *precision* of PERSON is the share of PERSON
findings that overlap a gold PERSON mention, and of names the share of PERSON and LOCATION findings that overlap a
gold PERSON or LOCATION mention. Throughput is texts per CPU second of this process (texts per second per core):
the detectors take turns over the corpora ``--repeat`` times and each one's median is reported, so load from other
work on the machine falls on all of them alike.

``--split dev`` is for choosing (the threshold, ``detector.int8``); ``--split test`` reports: run it once per change
and never read its misses.
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
CORPORA = (REPO_ROOT / "data" / "ner-btc", REPO_ROOT / "data" / "ner-wnut17")
NAMES = ("PERSON", "LOCATION")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--corpora", type=Path, nargs="+", default=list(CORPORA))
    parser.add_argument("--split", choices=("dev", "test"), default="test")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes per detector; the median is reported")
    parser.add_argument("--no-detector", action="store_true", help="only the baselines")
    parser.add_argument("--params", type=Path, default=REPO_ROOT / "params.yaml")
    parser.add_argument("--detector", type=Path, default=REPO_ROOT / "models" / "detector")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N sentences of each corpus")
    parser.add_argument("--no-default", action="store_true", help="skip the baselines (dev choices)")
    parser.add_argument("--json-out", type=Path, default=None)
    return parser.parse_args(argv)


def _ours(params: Path, detector: Path, on: bool) -> Any:
    from feedbackflow.privacy import engine as privacy
    from feedbackflow.settings import load_settings

    settings = load_settings(params).anonymise
    config = settings.model_copy(update={"operator": "placeholder", "operators": {}, "detector": on})
    engine = privacy.build_engine(config, detector)

    def detect(texts: list[str]) -> list[list[tuple[int, int, str]]]:
        with privacy.presidio_logs_without_text():
            found = privacy.analyze_texts(texts, engine)
        return [[(r.start, r.end, r.entity_type) for r in results] for results in found]

    return detect


def _overlaps(span: tuple[int, int], others: list[tuple[int, int]]) -> bool:
    return any(start < span[1] and span[0] < end for start, end in others)


def score(found: list[list[tuple]], golds: list[list[tuple[str, int, int]]]) -> dict[str, Any]:
    """Coverage of PERSON and of PERSON+LOCATION mentions, precision of PERSON and of name findings."""
    counts = dict.fromkeys(
        ("person", "person_hit", "names", "names_hit", "p_found", "p_right", "n_found", "n_right"), 0
    )
    for findings, gold in zip(found, golds, strict=True):
        spans = [(f[0], f[1]) for f in findings]
        people = [(s, e) for kind, s, e in gold if kind == "PERSON"]
        names = [(s, e) for kind, s, e in gold if kind in NAMES]
        counts["person"] += len(people)
        counts["person_hit"] += sum(_overlaps(p, spans) for p in people)
        counts["names"] += len(names)
        counts["names_hit"] += sum(_overlaps(n, spans) for n in names)
        for f in findings:
            if f[2] == "PERSON":
                counts["p_found"] += 1
                counts["p_right"] += _overlaps((f[0], f[1]), people)
            if f[2] in NAMES:
                counts["n_found"] += 1
                counts["n_right"] += _overlaps((f[0], f[1]), names)

    def share(part: str, whole: str) -> float | None:
        return round(counts[part] / counts[whole], 3) if counts[whole] else None

    return {
        "person_coverage": share("person_hit", "person"),
        "name_coverage": share("names_hit", "names"),
        "person_precision": share("p_right", "p_found"),
        "name_precision": share("n_right", "n_found"),
        "person_mentions": counts["person"],
        "name_mentions": counts["names"],
    }


def _load(corpus: Path, split: str, limit: int) -> tuple[list[str], list[list[tuple[str, int, int]]]]:
    from feedbackflow.privacy.detector_training import read_split

    sentences = read_split(corpus, split)[: limit or None]
    return [s.text for s in sentences], [s.mentions() for s in sentences]


def _pass(detect: Any, sets: dict[str, tuple[list[str], list]]) -> tuple[float, dict[str, Any]]:
    """One timed pass of ``detect`` over every corpus: texts per CPU second and each corpus's scores."""
    cpu, texts, per_corpus = 0.0, 0, {}
    for corpus, (sentences, golds) in sets.items():
        started = time.process_time()
        found = detect(sentences)
        cpu += time.process_time() - started
        texts += len(sentences)
        per_corpus[corpus] = score(found, golds)
    return texts / cpu if cpu else 0.0, per_corpus


def _run(detectors: dict[str, Any], sets: dict[str, tuple[list[str], list]], repeat: int) -> dict[str, Any]:
    for detect in detectors.values():
        detect(next(iter(sets.values()))[0][:20])  # warm-up: lazy loads are not timed
    speeds: dict[str, list[float]] = {name: [] for name in detectors}
    results: dict[str, Any] = {}
    for _ in range(repeat):  # turns, so that load from other work falls on every detector alike
        for name, detect in detectors.items():
            speed, per_corpus = _pass(detect, sets)
            speeds[name].append(round(speed, 1))
            results[name] = {"corpora": per_corpus}
    for name, result in results.items():
        result["texts_per_cpu_second"] = statistics.median(speeds[name])
        result["passes"] = speeds[name]
        print(f"{name}: {json.dumps(result)}", flush=True)
    return results


def _table(results: dict[str, Any]) -> str:
    lines = ["| detector | corpus | person coverage | name coverage | person precision | name precision |"]
    lines.append("|---|---|---|---|---|---|")
    for name, result in results.items():
        for corpus, s in result["corpora"].items():
            lines.append(
                f"| {name} | {corpus} | {s['person_coverage']} | {s['name_coverage']} | {s['person_precision']} "
                f"| {s['name_precision']} |"
            )
    lines.append("")
    lines += [f"- {name}: {r['texts_per_cpu_second']} texts per CPU second" for name, r in results.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = _parse(argv)
    import torch

    from benchmarks.bench_pii import _default
    from feedbackflow.privacy.detector import read_meta
    from feedbackflow.settings import load_settings

    torch.set_num_threads(1)
    sets = {corpus.name: _load(corpus, args.split, args.limit) for corpus in args.corpora}
    detectors: dict[str, Any] = {}
    if not args.no_default:
        model = load_settings(args.params).anonymise.spacy_model
        from feedbackflow.privacy.spacy_model import resolve_spacy_model

        default = _default(resolve_spacy_model(model))[1]
        detectors["presidio_default"] = lambda texts: [[(s, e, t) for s, e, t, _ in f] for f in default(texts)]
        detectors["feedbackflow_rules"] = _ours(args.params, args.detector, False)
    if not args.no_detector:
        detectors["feedbackflow_detector"] = _ours(args.params, args.detector, True)
    results = _run(detectors, sets, max(args.repeat, 1))
    meta = read_meta(args.detector) if not args.no_detector else {}
    report = {
        "split": args.split,
        "limit": args.limit,
        "repeat": args.repeat,
        "detector": {key: meta.get(key) for key in ("threshold", "epoch", "max_length", "int8")},
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "threads": 1},
        "results": results,
    }
    print(_table(results))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
