"""Does int8 change what the learned detector finds? Dev-split scores of the trained detector in float32 and int8.

Run from the repository root after ``dvc repro detector``::

    python -m benchmarks.bench_detector_int8 [--detector models/detector] [--json-out PATH]

The detector stage saves float32 weights; ``detector.int8`` quantises the linear layers at load
(:func:`feedbackflow.privacy.detector.int8`). This scores the same saved weights both ways on every corpus's **dev**
split at each of ``detector.thresholds`` (coverage, precision and F2 over PERSON and LOCATION mentions, as the stage
chooses), so the choice of ``detector.int8`` rests on dev figures, never on the test splits.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--detector", type=Path, default=REPO_ROOT / "models" / "detector")
    parser.add_argument("--params", type=Path, default=REPO_ROOT / "params.yaml")
    parser.add_argument("--json-out", type=Path, default=None)
    return parser.parse_args(argv)


def compare(detector_dir: Path, params: Path) -> dict:
    """Dev scores per variant (float32, int8), threshold and corpus, and the threshold each variant would choose."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from feedbackflow.privacy.detector import NameDetector, int8, read_meta
    from feedbackflow.privacy.detector_training import read_split, score_splits
    from feedbackflow.settings import load_settings

    config = load_settings(params).detector
    meta = read_meta(detector_dir)
    dev = {Path(c).name: read_split(REPO_ROOT / c, "dev") for c in config.corpora}
    tokenizer = AutoTokenizer.from_pretrained(detector_dir)
    model = AutoModelForTokenClassification.from_pretrained(detector_dir).eval()
    report: dict = {"stage_threshold": meta.get("threshold"), "variants": {}}
    for name, variant in (("float32", model), ("int8", int8(model))):
        scores = score_splits(NameDetector(tokenizer, variant, 0.5, int(meta["max_length"])), dev, config.thresholds)
        best = max(config.thresholds, key=lambda t: (scores[t]["all"]["f2"], -t))
        report["variants"][name] = {"chosen": best, "scores": {str(t): s for t, s in scores.items()}}
    return report


def main(argv: list[str] | None = None) -> int:
    from feedbackflow.io import write_json

    args = _parse(argv)
    report = compare(args.detector, args.params)
    print("variant  threshold  corpus      coverage  precision  f2")
    for name, variant in report["variants"].items():
        for threshold, corpora in variant["scores"].items():
            for corpus, s in corpora.items():
                figures = f"{s['coverage']:8.4f} {s['precision']:10.4f} {s['f2']:6.4f}"
                print(f"{name:8} {threshold:>9}  {corpus:11} {figures}")
        print(f"{name}: dev chooses threshold {variant['chosen']}")
    if args.json_out:
        write_json(args.json_out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
