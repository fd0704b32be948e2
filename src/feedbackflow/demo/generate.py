"""Turn a labelled text corpus (BANKING77 by default) into nightly feedback batches.

Each batch is a CSV with ``id, text, label, channel, created_at``. A share of messages carries generated personal
data (names, emails, phone numbers, card numbers, IBANs); every planted value is returned as a *canary* so tests can
scan artifacts for it. A little dirt is added on purpose (duplicate ids, empty text, unknown label, overlong text) so
the validate stage has something to quarantine. From ``drift_from_night`` on, the intent mix shifts towards a few
labels so the monitor stage has drift to find. A small share of messages is out of scope (weather, music, sport,
cooking, travel: nothing a bank's taxonomy covers), labelled ``oos`` as a reviewer would mark them; from
``drift_from_night`` on that share doubles, so the monitor's unknown share has something to rise on. Everything is
deterministic for a given seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from faker import Faker

CHANNELS = ("app", "chat", "email", "phone", "web")

# (entity, template, how many values): names go in after a cue, in running text, in lists, in lower case and next to
# digits, so the leak scan does not only test the easy shape.
_PII_TEMPLATES = (
    ("PERSON", "My name is {0}. {text}", 1),
    ("PERSON", "{text} Regards, {0}", 1),
    ("PERSON", "{text} I already explained all this to {0} last week.", 1),
    ("PERSON", "{text} The joint account is with {0}, {1} and {2}.", 3),
    ("PERSON_LOWER", "{text} please let {0} know, she handles our account", 1),
    ("PERSON", "{text} {0} 3rd floor told me to write in.", 1),
    ("EMAIL_ADDRESS", "{text} You can reach me at {0}.", 1),
    ("PHONE_NUMBER", "{text} Please call me back on {0}.", 1),
    ("CREDIT_CARD", "{text} My card number is {0}.", 1),
    ("IBAN_CODE", "{text} The transfer went to IBAN {0}.", 1),
)


# Out-of-scope requests: openings x topics give a few hundred distinct messages unrelated to banking.
_OOS_OPENINGS = ("", "hi, ", "quick question: ", "sorry to bother you, ", "hey there ", "can you tell me ")
_OOS_TOPICS = (
    "what the weather will be like this weekend",
    "how long to boil an egg for a runny yolk",
    "who won the football match last night",
    "play some relaxing jazz in the kitchen",
    "set an alarm for half past six tomorrow",
    "what is the tallest mountain in europe",
    "recommend a good science fiction novel",
    "how do I get red wine out of a carpet",
    "what time does the museum open on sundays",
    "translate good morning into italian",
    "is it going to rain during the marathon",
    "how many cups of flour go into a sourdough loaf",
    "which train goes to the airport fastest",
    "what is a good name for a golden retriever puppy",
    "turn off the lights in the living room",
    "tell me a joke about penguins",
    "how far away is the moon",
    "when does the new season of the baking show start",
    "my tomato plants have yellow leaves, what do I do",
    "book a table for four at an italian restaurant",
)


def out_of_scope_text(rng: random.Random) -> str:
    """One message no banking intent covers (drawn from ``rng``)."""
    text = rng.choice(_OOS_OPENINGS) + rng.choice(_OOS_TOPICS)
    return text[0].upper() + text[1:] + rng.choice(("?", "", "."))


@dataclass
class Batch:
    """One night's feedback file."""

    name: str
    frame: pd.DataFrame


@dataclass
class DemoData:
    """Generated batches and every personal value planted in them."""

    batches: list[Batch]
    canaries: dict[str, list[str]] = field(default_factory=dict)


def _pii_value(fake: Faker, entity: str) -> str:
    if entity == "PERSON":
        return f"{fake.first_name()} {fake.last_name()}"
    if entity == "PERSON_LOWER":
        return f"{fake.first_name()} {fake.last_name()}".lower()
    if entity == "EMAIL_ADDRESS":
        return fake.free_email()
    if entity == "PHONE_NUMBER":
        return f"+44 7{fake.numerify('### ######')}"
    if entity == "CREDIT_CARD":
        return fake.credit_card_number(card_type="visa16")
    return fake.iban()


def _plant(fake: Faker, rng: random.Random, text: str, canaries: dict[str, list[str]]) -> str:
    """``text`` with one template of planted values around it; each value is added to ``canaries``."""
    entity, template, count = rng.choice(_PII_TEMPLATES)
    values = [_pii_value(fake, entity) for _ in range(count)]
    canaries.setdefault("PERSON" if entity == "PERSON_LOWER" else entity, []).extend(values)
    return template.format(*values, text=text)


def generate(
    corpus: pd.DataFrame,
    *,
    nights: int = 3,
    rows_per_night: int = 1000,
    seed: int = 42,
    pii_share: float = 0.1,
    dirt_share: float = 0.01,
    drift_from_night: int = 3,
    start: datetime | None = None,
    oos_share: float = 0.02,
    oos_label: str = "oos",
) -> DemoData:
    """Build ``nights`` batches from ``corpus`` (columns ``text`` and ``label``).

    About ``oos_share`` of the messages (twice as many from ``drift_from_night`` on) are replaced by out-of-scope
    requests labelled ``oos_label`` (``oos.label`` in ``params.yaml``); 0 plants none.

    Rows are drawn without replacement, so a message appears in at most one batch. Raises ``ValueError`` when the
    corpus is too small for the request.
    """
    if {"text", "label"} - set(corpus.columns):
        raise ValueError("corpus needs the columns 'text' and 'label'")
    if nights * rows_per_night > len(corpus):
        raise ValueError(f"corpus has {len(corpus)} rows; {nights} nights x {rows_per_night} rows do not fit")
    rng = random.Random(seed)
    oos_rng = random.Random(f"{seed}-out-of-scope")  # its own stream: the other draws stay as they were
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    start = start or datetime(2026, 1, 1, tzinfo=UTC)
    labels = sorted(corpus["label"].unique())
    drift_labels = set(rng.sample(labels, k=max(1, len(labels) // 10)))
    remaining = list(range(len(corpus)))
    rng.shuffle(remaining)
    canaries: dict[str, list[str]] = {}
    batches = []
    for night in range(1, nights + 1):
        if night >= drift_from_night:
            weights = [5.0 if corpus.at[i, "label"] in drift_labels else 1.0 for i in remaining]
            chosen = _weighted_sample(rng, remaining, weights, rows_per_night)
        else:
            chosen = remaining[:rows_per_night]
        taken = set(chosen)
        remaining = [i for i in remaining if i not in taken]
        day = start + timedelta(days=night - 1)
        rows = []
        share = oos_share * (2 if night >= drift_from_night else 1)
        for n, index in enumerate(chosen):
            text, label = str(corpus.at[index, "text"]).strip(), corpus.at[index, "label"]
            if oos_rng.random() < share:
                text, label = out_of_scope_text(oos_rng), oos_label
            if rng.random() < pii_share:
                text = _plant(fake, rng, text, canaries)
            rows.append(
                {
                    "id": f"n{night:03d}-{n:06d}",
                    "text": text,
                    "label": label,
                    "channel": rng.choice(CHANNELS),
                    "created_at": (day + timedelta(seconds=rng.randrange(86_400))).isoformat(),
                }
            )
        _add_dirt(rows, rng, dirt_share)
        batches.append(Batch(f"feedback-{day:%Y-%m-%d}.csv", pd.DataFrame(rows)))
    return DemoData(batches, canaries)


def _weighted_sample(rng: random.Random, population: list[int], weights: list[float], k: int) -> list[int]:
    # Efraimidis-Spirakis weighted sampling without replacement.
    keys = [(rng.random() ** (1.0 / weight), item) for item, weight in zip(population, weights, strict=True)]
    keys.sort()
    return [item for _, item in keys[-k:]]


def _add_dirt(rows: list[dict], rng: random.Random, share: float) -> None:
    count = max(1, round(len(rows) * share)) if share > 0 else 0
    for k in range(count):
        victim = rng.randrange(len(rows))
        kind = k % 4
        if kind == 0:
            rows.append({**rows[victim], "text": rows[victim]["text"] + " (sent twice)"})
        elif kind == 1:
            rows[victim] = {**rows[victim], "text": ""}
        elif kind == 2:
            rows[victim] = {**rows[victim], "label": "no_such_intent"}
        else:
            rows[victim] = {**rows[victim], "text": " ".join([rows[victim]["text"]] * 60)}


def load_corpus(path: Path, text_column: str = "text", label_column: str = "category") -> pd.DataFrame:
    """Read a labelled CSV and name its columns ``text`` and ``label``."""
    frame = pd.read_csv(path)
    missing = {text_column, label_column} - set(frame.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
    return frame.rename(columns={text_column: "text", label_column: "label"})[["text", "label"]]


def write_batches(data: DemoData, landing_dir: Path) -> list[Path]:
    """Write each batch into the landing folder (atomically: write aside, then rename).

    A landing file is never replaced by different content: an existing file of the same night may have been
    ingested already, and new rows under its name would pass as a re-delivery. A file with the same bytes is left
    as it is (re-running the same command changes nothing).

    Returns:
        The batch files, written now or already there with the same content.

    Raises:
        FileExistsError: a landing file of one of the nights exists with other content; nothing was written.
    """
    landing_dir.mkdir(parents=True, exist_ok=True)
    rendered = [(landing_dir / batch.name, batch.frame.to_csv(index=False).encode("utf-8")) for batch in data.batches]
    clashes = [target for target, content in rendered if target.exists() and target.read_bytes() != content]
    if clashes:
        names = ", ".join(str(target) for target in clashes)
        raise FileExistsError(
            f"{names}: already in the landing folder with other rows (it may have been ingested); nothing was "
            "written. Generate later nights with --first-night, or move the file away first"
        )
    written = []
    for target, content in rendered:
        if not target.exists():
            partial = target.with_name(f".{target.name}.partial")
            partial.write_bytes(content)
            partial.replace(target)
        written.append(target)
    return written


def merge_canaries(path: Path, canaries: dict[str, list[str]]) -> dict[str, list[str]]:
    """Add ``canaries`` to the planted values listed in ``path`` (never dropping one) and write the file atomically.

    The leak gate checks every value listed there, so values planted by an earlier call must stay listed.

    Returns:
        The merged list, entity -> values (earlier values first, no repeats).

    Raises:
        ValueError: ``path`` exists but is not a JSON object of lists (it is not replaced).
    """
    import json

    merged: dict[str, list[str]] = {}
    if path.exists():
        try:
            existing = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path}: not valid JSON ({type(error).__name__}); fix or remove it first") from None
        if not isinstance(existing, dict) or not all(isinstance(v, list) for v in existing.values()):
            raise ValueError(f"{path}: expected an object of entity -> list of values; fix or remove it first")
        merged = {entity: list(values) for entity, values in existing.items()}
    for entity, values in canaries.items():
        merged[entity] = list(dict.fromkeys([*merged.get(entity, []), *values]))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)
    return merged
