"""Pieces every recognizer family shares: the offline suffix list, dates, IP addresses, span helpers.

Nothing here imports Presidio, so the package can be imported by the CLI, DVC and the Airflow DAG parser.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import tldextract


@functools.cache
def offline_tld_extractor() -> tldextract.TLDExtract:
    """Return a tldextract extractor that never goes to the network (bundled public suffix snapshot, no cache dir)."""
    import tldextract

    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


IPV4 = re.compile(r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}")


DATE_LIKE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}|\d+[.,]\d{2}")


def has_digit(value: str) -> bool:
    return any(c.isdigit() for c in value)


def covered(result: Any, others: Sequence[Any]) -> bool:
    return any(other.start <= result.start and result.end <= other.end for other in others)
