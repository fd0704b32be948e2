"""Language hold-back: how often English rows are held back wrongly, and how many non-English rows are caught.

Run from the repository root::

    python -m benchmarks.bench_language [--rows 10003] [--json-out PATH]

The anonymise stage holds back a row when py3langid gives the covered languages (``anonymise.languages``, English)
less than ``anonymise.language_hold_below`` of the probability and the row has at least
``anonymise.language_min_letters`` letters (:mod:`feedbackflow.privacy.language`). This bench scores a grid of both
knobs, so the values in ``params.yaml`` are chosen by measurement:

* **tuning sets**: BANKING77 train (English customer messages) and HWU64 train (terse English voice commands: "email
  tom", "shuffle music"), where a hold-back is a false one, and the example sentences spaCy ships for 66 other
  languages (``spacy.lang.<code>.examples``, MIT licence), where a hold-back is a catch, whole and cut to their first
  four and three words (short rows are where identifiers err);
* **held-out sets**, scored once with the chosen values: BANKING77 test and HWU64 test (English), and sentences
  Faker writes from the word lists of its non-English locales (``faker.providers.lorem``, MIT licence: real words of
  the language in random order, about 8 words).

Also timed: texts per second on one core for the identification alone (the anonymiser itself does a few hundred).
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THRESHOLDS = (0.003, 0.005, 0.01, 0.02, 0.05, 0.1)
MIN_LETTERS = (0, 3, 8)


def spacy_examples() -> list[tuple[str, str]]:
    """(language, sentence) for every non-English language spaCy ships example sentences for."""
    import spacy.lang

    found = []
    for module in pkgutil.iter_modules(spacy.lang.__path__):
        if module.name in ("en", "xx"):
            continue
        try:
            examples = importlib.import_module(f"spacy.lang.{module.name}.examples")
        except ImportError:
            continue
        found += [(module.name, sentence) for sentence in getattr(examples, "sentences", [])]
    return found


def faker_sentences(per_locale: int = 20) -> list[tuple[str, str]]:
    """(locale, sentence) from the word lists of Faker's non-English lorem locales (fixed seed)."""
    import faker.providers.lorem as lorem
    from faker import Faker

    found = []
    for module in pkgutil.iter_modules(lorem.__path__):
        if module.name.startswith("en_") or module.name == "la":
            continue
        fake = Faker(module.name)
        fake.seed_instance(7)
        found += [(module.name, fake.sentence(nb_words=8)) for _ in range(per_locale)]
    return found


def english(name: str, split: str, rows: int) -> list[str]:
    import pandas as pd

    return pd.read_csv(ROOT / "data" / name / f"{split}.csv")["text"].astype(str).tolist()[:rows]


def held_share(texts: list[str], hold_below: float, min_letters: int) -> float:
    """Share of ``texts`` the stage's own filter holds back with these values."""
    from feedbackflow.privacy.language import load_language_filter

    languages = load_language_filter(["en"], hold_below, min_letters)
    held = sum(language is not None for language in languages.uncovered(texts))
    return held / len(texts) if texts else 0.0


def _score(sets: dict[str, list[str]]) -> list[dict]:
    """The held share of each set for every grid point, from one pass of py3langid over each text."""
    from feedbackflow.privacy.language import NO_LANGUAGE, load_language_filter

    identifier = load_language_filter(["en"], 0.5, 0).identifier
    read = {
        name: [
            (sum(p for code, p in identifier.rank(text) if code in ("en", NO_LANGUAGE)), sum(c.isalpha() for c in text))
            for text in texts
        ]
        for name, texts in sets.items()
    }
    grid = []
    for hold_below in THRESHOLDS:
        for min_letters in MIN_LETTERS:
            row: dict = {"hold_below": hold_below, "min_letters": min_letters}
            for name, pairs in read.items():
                held = sum(covered < hold_below and letters >= min_letters for covered, letters in pairs)
                row[name] = round(held / len(pairs), 5)
            grid.append(row)
    return grid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_003, help="English rows per data set (BANKING77 train: 10,003)")
    parser.add_argument("--json-out", type=Path, help="write the results here")
    args = parser.parse_args(argv)

    from feedbackflow.privacy.language import language_model, load_language_filter
    from feedbackflow.settings import load_settings

    config = load_settings(ROOT / "params.yaml").anonymise
    examples = spacy_examples()
    tuning = {
        "banking77 train (false hold-back)": english("banking77", "train", args.rows),
        "hwu64 train (false hold-back)": english("hwu64", "train", args.rows),
        "spaCy examples (catch)": [text for _, text in examples],
        "spaCy examples, 4 words (catch)": [" ".join(text.split()[:4]) for _, text in examples],
        "spaCy examples, 3 words (catch)": [" ".join(text.split()[:3]) for _, text in examples],
    }
    held_out = {
        "banking77 test (false hold-back)": english("banking77", "test", args.rows),
        "hwu64 test (false hold-back)": english("hwu64", "test", args.rows),
        "faker non-English (catch)": [text for _, text in faker_sentences()],
    }
    languages = load_language_filter(["en"], config.language_hold_below, config.language_min_letters)
    timed = tuning["banking77 train (false hold-back)"]
    started = time.process_time()
    languages.uncovered(timed)
    per_second = len(timed) / max(time.process_time() - started, 1e-9)
    chosen = {"hold_below": config.language_hold_below, "min_letters": config.language_min_letters}
    results = {
        "language_model": language_model(),
        "sizes": {name: len(texts) for name, texts in {**tuning, **held_out}.items()},
        "spacy_languages": len({code for code, _ in examples}),
        "tuning_grid": _score(tuning),
        "chosen": chosen,
        "chosen_on_tuning_sets": {
            name: round(held_share(texts, chosen["hold_below"], chosen["min_letters"]), 5)
            for name, texts in tuning.items()
        },
        "held_out": {
            name: round(held_share(texts, chosen["hold_below"], chosen["min_letters"]), 5)
            for name, texts in held_out.items()
        },
        "texts_per_cpu_second": round(per_second),
    }
    print(json.dumps(results, indent=2))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
