"""The load benchmark's row accounting: every stage must balance, and an imbalance is named."""

from __future__ import annotations

from benchmarks import bench_load


def _bench():
    return bench_load


def _results(held_back: int, split_rows: int) -> dict:
    return {
        "ingest": {"counts": {"rows_in_raw": 1000, "batches": 1}},
        "validate": {"counts": {"rows_read": 1000, "rows_accepted": 980, "rows_quarantined": 20}},
        "anonymise": {"counts": {"rows_in": 980, "rows_out": 980 - held_back, "rows_held_back": held_back}},
        "split": {"counts": {"train": split_rows - 100, "validation": 50, "test": 50, "unlabelled": 0}},
    }


def test_rows_held_back_by_the_leak_gate_balance() -> None:
    bench = _bench()
    assert bench.balance(1000, _results(held_back=3, split_rows=977)) == []


def test_a_lost_row_is_named() -> None:
    bench = _bench()
    # anonymise wrote one row fewer than it read and held back none; split read what anonymise wrote
    results = _results(held_back=0, split_rows=979)
    results["anonymise"]["counts"]["rows_out"] = 979
    assert bench.balance(1000, results) == ["anonymise: rows in == rows out + rows held back"]
    # split lost a row of the anonymised output
    assert bench.balance(1000, _results(held_back=2, split_rows=977)) == [
        "split: train + validation + test + unlabelled == rows anonymised"
    ]
