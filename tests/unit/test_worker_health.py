"""The worker's readiness rules, without a worker."""

from __future__ import annotations

from agentroster.worker.health import OK, WorkerReadiness, _reaper_check


def test_reaper_check_wants_a_recent_cycle() -> None:
    assert _reaper_check(None, 5.0, now=100.0) == "not started"
    assert _reaper_check(99.0, 5.0, now=100.0) == OK
    assert _reaper_check(90.0, 5.0, now=100.0) == "no sweep for 10.0s"


def test_ready_only_when_every_check_is_ok() -> None:
    assert WorkerReadiness(OK, OK, OK).ready
    assert not WorkerReadiness("not consuming commands", OK, OK).ready
    assert not WorkerReadiness(OK, "unreachable (ConnectionError)", OK).ready
    assert not WorkerReadiness(OK, OK, "not started").ready
