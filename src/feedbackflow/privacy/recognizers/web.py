"""E-mail addresses and URLs: Presidio's recognizers with an offline suffix list and a cheap pre-check."""

from __future__ import annotations

import re

from presidio_analyzer.predefined_recognizers import EmailRecognizer, UrlRecognizer

from feedbackflow.privacy.recognizers.common import offline_tld_extractor

_DOMAIN_HINT = re.compile(r"\.[A-Za-z]")


class OfflineEmailRecognizer(EmailRecognizer):
    """Presidio's e-mail recognizer with the offline suffix list; skipped for texts without an ``@``."""

    def validate_result(self, pattern_text: str) -> bool:
        return offline_tld_extractor()(pattern_text).fqdn != ""

    def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):  # type: ignore[no-untyped-def]
        if "@" not in text:
            return []
        return super().analyze(text, entities, nlp_artifacts, regex_flags)


class PrefilteredUrlRecognizer(UrlRecognizer):
    """Presidio's URL recognizer, skipped for texts with no dot followed by a letter (every domain has one)."""

    def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):  # type: ignore[no-untyped-def]
        if not _DOMAIN_HINT.search(text):
            return []
        return super().analyze(text, entities, nlp_artifacts, regex_flags)
