"""Bounded retries with exponential backoff for network sources, and the failure they end in.

A source error is either *transient* (the endpoint is down, the connection was cut, the server answered 5xx): it is
retried inside the stage, and once the tries are spent the stage fails with
:class:`~feedbackflow.errors.SourceUnavailableError` naming the endpoint (never a credential); or it is a
configuration error (no such bucket or table, bad credentials) that no retry can fix, raised at once by the caller.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from feedbackflow.credentials import describe_error
from feedbackflow.errors import SourceUnavailableError
from feedbackflow.settings import RetrySettings

logger = logging.getLogger(__name__)

T = TypeVar("T")


def delays(policy: RetrySettings) -> Iterator[float]:
    """The waits between tries: ``initial_delay_seconds`` doubling up to ``max_delay_seconds``."""
    delay = policy.initial_delay_seconds
    for _ in range(policy.attempts - 1):
        yield min(delay, policy.max_delay_seconds)
        delay *= 2


def retrying(
    operation: Callable[[], T],
    *,
    policy: RetrySettings,
    transient: Callable[[BaseException], bool],
    what: str,
    endpoint: str,
    sleep: Callable[[float], None] = time.sleep,
    stage: str = "ingest",
) -> T:
    """Run ``operation``, retrying transient errors with backoff; other errors propagate at once.

    Args:
        operation: The source operation (it must be safe to repeat).
        policy: ``ingest.retry``.
        transient: True for an error worth retrying.
        what: What the operation does, for messages (``list s3://bucket/prefix``).
        endpoint: Where it goes (URL or host:port), for messages.
        sleep: The wait (tests pass a recorder).
        stage: The stage named in messages (validate retries its Data Docs upload too).

    Raises:
        SourceUnavailableError: every try failed with a transient error.
    """
    started = time.monotonic()
    waits = list(delays(policy))
    for attempt in range(policy.attempts):
        try:
            return operation()
        except Exception as error:
            if not transient(error):
                raise
            reason = describe_error(error)
            if attempt == len(waits):
                raise SourceUnavailableError(
                    f"{stage}: {what} at {endpoint} failed {policy.attempts} time(s) over "
                    f"{time.monotonic() - started:.0f} s ({reason}): the endpoint is unreachable or failing. Nothing "
                    "was half-written; rerun once it is back (the orchestrator retries the task). To wait longer "
                    "inside the stage, raise ingest.retry in params.yaml"
                ) from None
            logger.warning(
                "%s: %s at %s failed (%s); try %d of %d in %.1f s",
                stage,
                what,
                endpoint,
                reason,
                attempt + 2,
                policy.attempts,
                waits[attempt],
            )
            sleep(waits[attempt])
    raise AssertionError("unreachable")  # pragma: no cover
