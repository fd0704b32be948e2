"""Progress lines of long stages: done of total, the time left from the rate so far, and not a line per chunk."""

from __future__ import annotations

import logging

import pytest

from feedbackflow.progress import Progress, eta


def test_lines_say_done_of_total_and_the_time_left_at_most_every_interval(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    progress = Progress(logging.getLogger("t"), "anonymise", 9_000, every_seconds=10, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="t"):
        for seconds in (4, 12, 14, 30):  # 2,000 rows a chunk
            now[0] = seconds
            progress.advance(2_000)
        now[0] = 36
        progress.advance(1_000)
    assert [record.getMessage() for record in caplog.records] == [
        "anonymise: 4,000 of 9,000 rows (44%), about 15 s left",  # 12 s for 4,000 rows: 15 s for the 5,000 left
        "anonymise: 8,000 of 9,000 rows (89%), about 4 s left",  # at 30 s; 14 s was too soon after the last line
        "anonymise: 9,000 of 9,000 rows (100%), done in 36 s",  # the last unit always says so
    ]


def test_waits_read_as_a_person_reads_them() -> None:
    assert [eta(s) for s in (40, 89.4, 180, 3599, 3900)] == ["40 s", "89 s", "3 min", "60 min", "1 h 05 min"]
