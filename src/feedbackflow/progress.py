"""Progress lines for long stages: done of total, rate and the time left, every so many seconds.

Airflow task logs (and ``make demo``'s console, which shows their INFO lines) cannot render tqdm's bars; a line
every ``every_seconds`` says how far a stage is and about how long it has left, from the rate so far.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


def eta(seconds: float) -> str:
    """``seconds`` as a person reads a wait: "40 s", "3 min", "1 h 05 min"."""
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


class Progress:
    """Counts ``done`` of ``total`` units and logs ``"<what>: done of total <unit> (share), about T left"``.

    A line goes out at most every ``every_seconds`` and always for the last unit; ``clock`` is injectable for tests.
    """

    def __init__(
        self,
        log: logging.Logger,
        what: str,
        total: int,
        unit: str = "rows",
        every_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log, self.what, self.total, self.unit = log, what, total, unit
        self.every, self.clock = every_seconds, clock
        self.started = self.last = clock()
        self.done = 0

    def advance(self, units: int) -> None:
        """Add ``units`` done; log a line when ``every_seconds`` passed since the last one, or when all are done."""
        self.done += units
        now = self.clock()
        if now - self.last < self.every and self.done < self.total:
            return
        self.last = now
        self.log.info("%s", self.line(now))

    def line(self, now: float) -> str:
        """The progress line at ``now``."""
        share = self.done / self.total if self.total else 1.0
        elapsed = now - self.started
        text = f"{self.what}: {self.done:,} of {self.total:,} {self.unit} ({share:.0%})"
        if self.done >= self.total:
            return f"{text}, done in {eta(elapsed)}"
        if self.done and elapsed > 0:
            return f"{text}, about {eta(elapsed * (self.total - self.done) / self.done)} left"
        return text
