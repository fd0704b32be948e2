"""Look for IBAN misses on fresh dev text: the locked set's IBAN recall fell (1.000 -> 0.979) once the detector was on.

The locked set's misses are never read, so the cause is looked for on dev data only: messages drawn afresh from the
three dev generators (:mod:`tools.pii.devformats`, :mod:`tools.pii.devshapes`, :mod:`tools.pii.evalset`) under new
seeds (not the committed dev sets), and the dev generator's IBANs placed next to the words a learned name and place
detector reads (a person, a town, brackets, quotes, line breaks). Prints every IBAN the anonymiser's analyzer
(detector on, as ``params.yaml`` configures it) does not report as an ``IBAN_CODE`` overlapping it.

    python -m benchmarks.probe_iban_dev
"""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from benchmarks.bench_pii import _ours
from tools.pii import devformats, devshapes, evalset

ROOT = Path(__file__).resolve().parents[1]
SEEDS = {devformats: (9101, 9102, 9103), devshapes: (9201, 9202), evalset: (9301, 9302)}
PLACES = ("Amsterdam", "München", "Paris", "Warszawa", "Madrid", "London", "Berlin", "Lisboa", "Dublin", "Wien")
PEOPLE = ("Hans Müller", "Anna Nowak", "Marie Dupont", "João Silva", "Sean Murphy", "Katarzyna Wójcik")
FRAMES = (
    "{P}, {I}",
    "{P} {I}",
    "Account holder: {P}\nIBAN: {I}",
    "{I} ({P})",
    "{I} {C}",
    "{C} {I}",
    "Bank in {C}: {I}",
    "pay {P} at {I} please",
    "IBAN {I}, {C}",
    "refund to {I} - {P}, {C}",
    "{P}\n{I}\n{C}",
    "my IBAN {I} at ING {C}",
    "Empfänger: {P}, IBAN {I}, {C}",
    "to {P} ({C}) IBAN:{I}",
    "{I}.",
    "({I})",
    '"{I}"',
)


def cases() -> list[tuple[str, str, int, int]]:
    """(where, text, start, end) of every IBAN: as generated, then each generated IBAN in one of the frames."""
    rng = random.Random(7)
    found = []
    for module, seeds in SEEDS.items():
        for seed in seeds:
            for message in module.generate(n=1500, seed=seed):
                spans = [(s, e) for s, e, label in message.spans if label == "IBAN_CODE"]
                found += [(module.__name__, message.text, s, e) for s, e in spans]
    framed = []
    for n, (_, text, start, end) in enumerate(found):
        frame = FRAMES[n % len(FRAMES)].replace("{P}", rng.choice(PEOPLE)).replace("{C}", rng.choice(PLACES))
        at = frame.index("{I}")
        framed.append((frame, frame.replace("{I}", text[start:end]), at, at + end - start))
    return found + framed


def main() -> int:
    _, detect = _ours(ROOT / "params.yaml")
    probes = cases()
    missed: Counter[str] = Counter()
    for (where, text, start, end), found in zip(probes, detect([text for _, text, _, _ in probes]), strict=True):
        if not any(label == "IBAN_CODE" and s < end and start < e for s, e, label in found):
            missed[where] += 1
            print(f"missed in {where!r}: {text[max(0, start - 40) : end + 20]!r}")
    print(f"{len(probes)} IBANs, {sum(missed.values())} missed: {dict(missed)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
