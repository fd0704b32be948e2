"""Replace what the analyzer found: per entity, a typed placeholder (``<PERSON>``) or a keyed pseudonym.

Which operator an entity gets comes from params (``anonymise.operator`` / ``anonymise.operators``); pseudonyms are
``<PERSON_3f9a1c0b>`` tokens from :mod:`feedbackflow.privacy.pseudonym`.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from feedbackflow.errors import ConfigError
from feedbackflow.privacy.engine import PrivacyEngine, analyze_texts, placeholder, presidio_logs_without_text
from feedbackflow.privacy.pseudonym import PseudonymKey, pseudonym

if TYPE_CHECKING:
    from presidio_analyzer import RecognizerResult
    from presidio_anonymizer.entities import OperatorConfig


def operator_configs(engine: PrivacyEngine) -> dict[str, OperatorConfig]:
    """Presidio operator configurations for every configured entity: placeholder or keyed pseudonym.

    Raises:
        ConfigError: an entity is to be pseudonymised but the engine holds no key.
    """
    from presidio_anonymizer.entities import OperatorConfig

    configs = {}
    for entity in engine.entities:
        if engine.operator_for(entity) == "pseudonym":
            if engine.key is None:
                raise ConfigError(f"{entity} is to be pseudonymised but no key was loaded")
            key, hex_chars = engine.key, engine.hex_chars
            configs[entity] = OperatorConfig(
                "custom", {"lambda": functools.partial(_token, key, entity, hex_chars=hex_chars)}
            )
        else:
            configs[entity] = OperatorConfig("replace", {"new_value": placeholder(entity)})
    return configs


def _token(key: PseudonymKey, entity: str, value: str, hex_chars: int) -> str:
    return pseudonym(key, entity, value, hex_chars)


def replace_entities(
    text: str,
    results: list[RecognizerResult],
    engine: PrivacyEngine,
    operators: dict[str, OperatorConfig] | None = None,
) -> tuple[str, list[str]]:
    """Replace every finding in ``text`` by its placeholder or pseudonym; return the new text and each swap's type.

    Overlapping findings are resolved by Presidio's anonymizer (contained or same-type overlaps are merged), so the
    returned entity types count what was actually replaced.
    """
    from presidio_anonymizer.entities import RecognizerResult as Finding

    if not results:
        return text, []
    findings = [Finding(result.entity_type, result.start, result.end, result.score) for result in results]
    operators = operators if operators is not None else operator_configs(engine)
    outcome = engine.anonymizer.anonymize(text=text, analyzer_results=findings, operators=operators)
    return outcome.text, [item.entity_type for item in outcome.items]


def anonymise_texts(texts: Sequence[str | None], engine: PrivacyEngine) -> tuple[list[str | None], Counter[str]]:
    """Replace personal data in each text by typed placeholders or keyed pseudonyms (per entity, from settings).

    Args:
        texts: The texts, in order. ``None`` and empty strings are passed through untouched.
        engine: A loaded engine from :func:`feedbackflow.privacy.engine.build_engine`.

    Returns:
        The anonymised texts in the input order, and how many values of each entity type were replaced.
    """
    present = {i: text for i, text in enumerate(texts) if isinstance(text, str) and text}
    output = list(texts)
    counts: Counter[str] = Counter()
    operators = operator_configs(engine)
    with presidio_logs_without_text():
        findings = analyze_texts(list(present.values()), engine)
        for (i, text), results in zip(present.items(), findings, strict=True):
            output[i], replaced = replace_entities(text, results, engine, operators)
            counts.update(replaced)
    return output, counts
