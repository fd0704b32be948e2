"""The real-text bench's scoring: coverage counts a gold name any finding overlaps, precision counts by type."""

from __future__ import annotations

from tests.helpers import load_benchmark


def test_coverage_counts_any_overlapping_finding_and_precision_counts_by_type():
    bench = load_benchmark("bench_pii_real")
    gold = [[("PERSON", 0, 4), ("LOCATION", 10, 15)], [("PERSON", 3, 8)]]
    found = [[(0, 4, "LOCATION"), (20, 25, "PERSON")], [(3, 5, "PERSON")]]
    scores = bench.score(found, gold)
    assert scores["person_coverage"] == 1.0  # "Anna" replaced as a place is still gone
    assert scores["name_coverage"] == 0.667
    assert scores["person_precision"] == 0.5  # one of two PERSON findings is a person
    assert scores["name_precision"] == 0.667
    assert (scores["person_mentions"], scores["name_mentions"]) == (2, 3)
