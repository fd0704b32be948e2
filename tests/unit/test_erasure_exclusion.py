"""An erasure and a nightly run never overlap: the two guards' tests, on the task states Airflow reports."""

from __future__ import annotations

from feedbackflow.orchestration.exclusion import erasing_runs, erasure_may_start, night_may_start
from feedbackflow.orchestration.pools import lock_pool_command
from tests.helpers import section


def test_an_erasure_waits_for_a_running_night():
    assert erasure_may_start(0) is True
    assert erasure_may_start(1) is False


def test_a_night_waits_only_for_an_erasure_past_its_guard_and_not_finished():
    states = {
        "approving": {"wait_for_night": None, "forget": None},  # waiting for a person: nothing deleted yet
        "waiting": {"wait_for_night": "up_for_reschedule", "forget": None},  # waits for this night: no deadlock
        "erased": {"wait_for_night": "success", "forget": "success"},
        "incomplete": {"wait_for_night": "failed", "forget": "upstream_failed"},
        "failed": {"wait_for_night": "success", "forget": "failed"},  # resumable; the rows are already gone
    }
    assert erasing_runs(states) == []
    assert night_may_start(states, lambda run_id: "running") is True

    for forget in (None, "scheduled", "queued", "running"):  # the guard passed: forget is about to delete, or does
        erasing = {**states, "now": {"wait_for_night": "success", "forget": forget}}
        assert erasing_runs(erasing) == ["now"]
        assert night_may_start(erasing, lambda run_id: "running") is False
        # a run someone marked failed by hand before forget started holds no night forever
        assert night_may_start(erasing, lambda run_id: "failed") is True


def test_the_guards_pool_has_one_slot():
    command = lock_pool_command(section("erasure", lock_pool="erasure_lock"), airflow="airflow")
    assert command[:5] == ["airflow", "pools", "set", "erasure_lock", "1"]
