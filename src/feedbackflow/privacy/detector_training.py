"""Train the learned name and location detector on human-labelled corpora; choose by dev, report on test.

Each corpus is a folder of ``train.jsonl``, ``dev.jsonl`` and ``test.jsonl`` (one sentence a line:
``{"tokens": [...], "tags": [...]}`` with IOB2 tags) and a ``SOURCE.md`` naming its origin and licence. Only
PERSON and LOCATION tags are kept (other types are read as ``O``: an organisation or a product name is not
personal data). The encoder is fine-tuned on every corpus's train split; after each epoch the dev splits are
scored at every threshold in ``detector.thresholds``, and the epoch and threshold with the best dev F2 (recall
weighs four times precision: a missed name is a leak) are kept. The test splits are scored once, for the model
card, and never choose anything.

Dev and test scores read spans the way the anonymiser does (:func:`feedbackflow.privacy.detector.decode` over the
sentence's tokens joined by spaces): coverage is the share of gold PERSON and LOCATION mentions that a span
overlaps; precision the share of spans that overlap a gold PERSON or LOCATION mention.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feedbackflow.errors import DataQualityError
from feedbackflow.privacy.detector import ENTITIES, LABELS, META_FILE, NameDetector, Span, decode, int8
from feedbackflow.progress import Progress
from feedbackflow.settings import DetectorSettings

logger = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
_IOB = frozenset({"O"} | {f"{prefix}-{entity}" for prefix in "BI" for entity in ENTITIES})


@dataclass(frozen=True)
class Sentence:
    """One labelled sentence: its tokens and their IOB2 tags over :data:`ENTITIES` (other types read as ``O``)."""

    tokens: list[str]
    tags: list[str]

    @property
    def text(self) -> str:
        return " ".join(self.tokens)

    def mentions(self) -> list[tuple[str, int, int]]:
        """The gold mentions as (entity, start, end) character offsets in :attr:`text`."""
        found: list[tuple[str, int, int]] = []
        position = 0
        for token, tag in zip(self.tokens, self.tags, strict=True):
            start, end = position, position + len(token)
            if tag.startswith("B-") or (tag.startswith("I-") and (not found or found[-1][2] != start - 1)):
                found.append((tag[2:], start, end))
            elif tag.startswith("I-"):
                found[-1] = (found[-1][0], found[-1][1], end)
            position = end + 1
        return found


def read_split(corpus: Path, split: str) -> list[Sentence]:
    """The sentences of ``corpus/<split>.jsonl``, tags mapped to :data:`LABELS` (empty sentences left out).

    Raises:
        DataQualityError: the file is missing, or a line is not JSON with as many ``tags`` as ``tokens``; the
            message names the file and the line.
    """
    path = corpus / f"{split}.jsonl"
    if not path.is_file():
        raise DataQualityError(f"{path}: missing; a detector corpus needs train.jsonl, dev.jsonl and test.jsonl")
    sentences = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            row = json.loads(line)
            tokens, tags = list(row["tokens"]), list(row["tags"])
        except (ValueError, KeyError, TypeError) as error:
            raise DataQualityError(f"{path}, line {number}: not a JSON object with tokens and tags ({error})") from None
        if len(tokens) != len(tags):
            raise DataQualityError(f"{path}, line {number}: {len(tokens)} tokens but {len(tags)} tags; needs one each")
        if tokens:  # a tweet left empty by the corpus's clean-up has nothing to learn from
            sentences.append(Sentence(tokens, [tag if tag in _IOB else "O" for tag in tags]))
    return sentences


def encode(sentences: Sequence[Sentence], tokenizer: Any, max_length: int) -> list[dict[str, list[int]]]:
    """Tokenize each sentence's words; every sub-word of a word carries its tag (the first ``B-``, the rest ``I-``)."""
    label_ids = {label: n for n, label in enumerate(LABELS)}
    encoded = tokenizer([s.tokens for s in sentences], is_split_into_words=True, truncation=True, max_length=max_length)
    features = []
    for n, sentence in enumerate(sentences):
        labels, previous = [], None
        for word in encoded.word_ids(n):
            if word is None:
                labels.append(-100)
                continue
            tag = sentence.tags[word]
            if word == previous and tag.startswith("B-"):
                tag = "I-" + tag[2:]
            labels.append(label_ids[tag])
            previous = word
        features.append({"input_ids": encoded["input_ids"][n], "labels": labels})
    return features


def mention_scores(found: Sequence[Sequence[Span]], sentences: Sequence[Sentence]) -> dict[str, float]:
    """Coverage (gold mentions a span overlaps), precision (spans overlapping a gold mention) and F2, with counts."""
    gold = covered = spans = right = 0
    for names, sentence in zip(found, sentences, strict=True):
        mentions = sentence.mentions()
        gold += len(mentions)
        covered += sum(any(s.start < end and start < s.end for s in names) for _, start, end in mentions)
        spans += len(names)
        right += sum(any(s.start < end and start < s.end for _, start, end in mentions) for s in names)
    recall, precision = covered / gold if gold else 0.0, right / spans if spans else 0.0
    f2 = 5 * precision * recall / (4 * precision + recall) if precision + recall else 0.0
    return {"coverage": round(recall, 4), "precision": round(precision, 4), "f2": round(f2, 4), "mentions": gold}


def score_splits(
    detector: NameDetector, corpora: dict[str, list[Sentence]], thresholds: Sequence[float]
) -> dict[float, dict[str, dict[str, float]]]:
    """Each threshold's scores on each corpus and on all together (``all``)."""
    scores: dict[float, dict[str, dict[str, float]]] = {threshold: {} for threshold in thresholds}
    found: dict[float, list[list[Span]]] = {threshold: [] for threshold in thresholds}
    every: list[Sentence] = []
    for name, sentences in corpora.items():
        texts = [sentence.text for sentence in sentences]
        probabilities = detector.probabilities(texts)
        for threshold in thresholds:
            spans = [decode(text, o, p, threshold) for text, (o, p) in zip(texts, probabilities, strict=True)]
            scores[threshold][name] = mention_scores(spans, sentences)
            found[threshold] += spans
        every += sentences
    for threshold in thresholds:
        scores[threshold]["all"] = mention_scores(found[threshold], every)
    return scores


@dataclass
class DetectorResult:
    """The chosen model and how it was chosen: epoch, threshold, dev scores per epoch and threshold, test scores."""

    model: Any
    tokenizer: Any
    epoch: int
    threshold: float
    dev: dict[str, dict[str, float]]
    history: list[dict[str, Any]]
    test: dict[str, dict[str, float]] | None = None
    seconds: float = 0.0


def _batches(features: list[dict[str, list[int]]], size: int, rng: random.Random, pad_id: int) -> list[dict]:
    import torch

    order = list(range(len(features)))
    rng.shuffle(order)
    batches = []
    for begin in range(0, len(order), size):
        chunk = [features[n] for n in order[begin : begin + size]]
        width = max(len(f["input_ids"]) for f in chunk)
        ids = [f["input_ids"] + [pad_id] * (width - len(f["input_ids"])) for f in chunk]
        labels = [f["labels"] + [-100] * (width - len(f["labels"])) for f in chunk]
        mask = [[1] * len(f["input_ids"]) + [0] * (width - len(f["input_ids"])) for f in chunk]
        batches.append(
            {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask), "labels": torch.tensor(labels)}
        )
    return batches


def _train_epoch(model: Any, batches: list[dict], optimiser: Any, scheduler: Any, device: str, epoch: int) -> float:
    model.train()
    total = 0.0
    progress = Progress(logger, f"detector epoch {epoch}", len(batches), unit="batches", every_seconds=30)
    for batch in batches:
        loss = model(**{key: value.to(device) for key, value in batch.items()}).loss
        loss.backward()
        optimiser.step()
        scheduler.step()
        optimiser.zero_grad()
        total += loss.item()
        progress.advance(1)
    return total / max(len(batches), 1)


def runtime(model: Any, in_int8: bool) -> Any:
    """``model`` as the anonymiser runs it: on the CPU, in int8 when ``detector.int8`` is on."""
    return int8(copy.deepcopy(model).to("cpu")) if in_int8 else model


def choose_threshold(
    model: Any, tokenizer: Any, dev: dict[str, list[Sentence]], config: DetectorSettings
) -> tuple[float, dict[float, dict[str, dict[str, float]]]]:
    """The threshold with the best F2 over all ``dev`` corpora together (the higher one on a tie), and every
    threshold's scores."""
    detector = NameDetector(tokenizer, model, 0.5, config.max_length)
    scores = score_splits(detector, dev, config.thresholds)
    return max(config.thresholds, key=lambda t: (scores[t]["all"]["f2"], -t)), scores


def fine_tune(
    base_model: str,
    corpora: dict[str, dict[str, list[Sentence]]],
    config: DetectorSettings,
    seed: int,
    device: str = "cpu",
) -> DetectorResult:
    """Fine-tune ``base_model`` on every corpus's train split; keep the epoch and threshold with the best dev F2.

    ``corpora`` maps a corpus name to its splits (``train`` and ``dev``; ``test`` is scored once at the end).
    """
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer, get_linear_schedule_with_warmup

    started = time.perf_counter()
    torch.manual_seed(seed)
    rng = random.Random(seed)
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    model = AutoModelForTokenClassification.from_pretrained(
        base_model,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={label: n for n, label in enumerate(LABELS)},
        ignore_mismatched_sizes=True,
    ).to(device)
    train = [s for splits in corpora.values() for s in splits["train"]]
    features = encode(train, tokenizer, config.max_length)
    steps = config.epochs * math.ceil(len(features) / config.batch_size)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=0.01)
    scheduler = get_linear_schedule_with_warmup(optimiser, int(config.warmup_ratio * steps), steps)
    dev = {name: splits["dev"] for name, splits in corpora.items()}
    best: tuple[float, int, float, dict, dict] | None = None
    history = []
    for epoch in range(1, config.epochs + 1):
        batches = _batches(features, config.batch_size, rng, tokenizer.pad_token_id)
        loss = _train_epoch(model, batches, optimiser, scheduler, device, epoch)
        threshold, scores = choose_threshold(runtime(model.eval(), config.int8), tokenizer, dev, config)
        history.append({"epoch": epoch, "train_loss": round(loss, 4), "threshold": threshold, "dev": scores[threshold]})
        logger.info(
            "detector epoch %d: loss %.4f, dev %s at threshold %s", epoch, loss, scores[threshold]["all"], threshold
        )
        if best is None or scores[threshold]["all"]["f2"] > best[0]:
            state = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
            best = (scores[threshold]["all"]["f2"], epoch, threshold, scores[threshold], state)
    assert best is not None
    model.load_state_dict(best[4])
    model = model.to("cpu").eval()
    return DetectorResult(
        copy.deepcopy(model), tokenizer, best[1], best[2], best[3], history, seconds=time.perf_counter() - started
    )


def score_test(result: DetectorResult, corpora: dict[str, dict[str, list[Sentence]]], config: DetectorSettings) -> None:
    """Score the chosen model, as it runs, once on every corpus's test split (for the model card; nothing is chosen
    by it)."""
    model = runtime(result.model, config.int8)
    detector = NameDetector(result.tokenizer, model, result.threshold, config.max_length)
    test = {name: splits["test"] for name, splits in corpora.items() if splits.get("test")}
    result.test = score_splits(detector, test, [result.threshold])[result.threshold]


def save(result: DetectorResult, target: Path, config: DetectorSettings, card: str) -> dict[str, Any]:
    """Write the model (in float32; int8 is made at load), tokenizer, ``detector.json`` and the model card
    (``README.md``) to ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    result.model.save_pretrained(target)
    result.tokenizer.save_pretrained(target)
    meta = {
        "enabled": True,
        "labels": list(LABELS),
        "threshold": result.threshold,
        "max_length": config.max_length,
        "int8": config.int8,
        "epoch": result.epoch,
        "dev": result.dev,
        "test": result.test,
        "history": result.history,
        "seconds": round(result.seconds, 1),
    }
    (target / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    (target / "README.md").write_text(card, encoding="utf-8")
    return meta


def corpus_source(corpus: Path) -> dict[str, str]:
    """A corpus's title and licence line, read from its ``SOURCE.md`` (the card names both)."""
    source = corpus / "SOURCE.md"
    if not source.is_file():
        raise DataQualityError(f"{source}: missing; every detector corpus records its origin and licence there")
    lines = source.read_text(encoding="utf-8").splitlines()
    title = next((line.lstrip("# ").strip() for line in lines if line.startswith("#")), corpus.name)
    start = next((n for n, line in enumerate(lines) if line.startswith("- License:")), None)
    paragraph = " ".join(lines[start : start + 4]) if start is not None else ""
    named = re.search(r"CC[- ]BY(?:[- ]SA)?[- ]\d\.\d", paragraph)
    if not named:
        raise DataQualityError(f"{source}: no '- License:' item naming a CC licence; record it before training on it")
    return {"name": corpus.name, "title": title, "licence": named.group(0).replace("-", " ")}


def _figures(scores: dict[str, dict[str, float]] | None) -> list[str]:
    if not scores:
        return ["| (not scored) | | | |"]
    return [f"| {name} | {s['coverage']:.3f} | {s['precision']:.3f} | {s['mentions']} |" for name, s in scores.items()]


def model_card(result: DetectorResult, sources: Sequence[dict[str, str]], base_model: str) -> str:
    """The detector's model card (Hugging Face format): training data, licences, how it was chosen, dev and test."""
    from huggingface_hub import ModelCard, ModelCardData

    data = ModelCardData(
        license="cc-by-4.0",
        language=["en"],
        library_name="transformers",
        pipeline_tag="token-classification",
        tags=["ner", "pii", "feedbackflow"],
        datasets=[source["name"] for source in sources],
    )
    table = ["| corpus | coverage | precision | gold mentions |", "|---|---|---|---|"]
    lines = [
        "---",
        data.to_yaml(),
        "---",
        "# feedbackflow name and location detector",
        "",
        f"A token classifier (BIO over {', '.join(ENTITIES)}) fine-tuned from `{Path(base_model).name}` on the train "
        "splits of the corpora below; the anonymiser runs it as a Presidio recognizer beside spaCy.",
        "",
        "## Training data",
        *(f"- `{s['name']}`: {s['title']}. Licence: {s['licence']}." for s in sources),
        "",
        "The data's licences ask for attribution and say it was changed: see each corpus's `SOURCE.md`.",
        "",
        "## How it was chosen",
        f"Epoch {result.epoch} and threshold {result.threshold}: the best dev F2 (coverage weighs four times "
        "precision). Coverage: share of gold PERSON and LOCATION mentions a found span overlaps; precision: share of "
        "found spans overlapping one.",
        "",
        "## Dev figures (chose the model)",
        *table,
        *_figures(result.dev),
        "",
        "## Test figures (reported once, chose nothing)",
        *table,
        *_figures(result.test),
        "",
    ]
    return str(ModelCard("\n".join(lines)))
