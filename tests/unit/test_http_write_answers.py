"""Seq numbering, Retry-After and the mapping of worker outcomes for HTTP writes; who may
speak for a key (`speaker`)."""

from __future__ import annotations

import pytest

from agentroster.api.gateway import Outcome
from agentroster.api.write_answers import (
    MAX_SEQ,
    SeqClock,
    heartbeat_in_s,
    rejected_error,
    retry_after,
)
from agentroster.contracts.gateway import PRINCIPAL_HEADER
from agentroster.registry.prepare import Limits, Rejected, speaker


def test_seqs_follow_the_clock_in_microseconds() -> None:
    now = [1_700_000_000_123_456_789]
    clock = SeqClock(lambda: now[0])
    assert clock.next() == 1_700_000_000_123_456
    now[0] += 5_000
    assert clock.next() == 1_700_000_000_123_461


def test_seqs_increase_even_when_the_clock_stands_still_or_steps_back() -> None:
    now = [2_000_000_000]
    clock = SeqClock(lambda: now[0])
    first = clock.next()
    assert clock.next() == first + 1  # the same microsecond
    now[0] -= 10_000_000  # NTP stepped the clock back
    assert clock.next() == first + 2


def test_seqs_never_pass_what_the_scripts_compare_exactly() -> None:
    clock = SeqClock(lambda: (MAX_SEQ + 10) * 1000)
    assert clock.next() == MAX_SEQ


def test_heartbeat_in_is_the_interval_or_a_third_of_the_ttl() -> None:
    assert heartbeat_in_s(30) == 10
    assert heartbeat_in_s(30, 4) == 4
    assert heartbeat_in_s(3, 10) == 3  # never later than the lease


@pytest.mark.parametrize(("seconds", "header"), [(0.2, "1"), (1.0, "1"), (9.99, "9"), (10, "10")])
def test_retry_after_is_whole_seconds_at_least_one(seconds: float, header: str) -> None:
    assert retry_after(seconds) == header


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        ("forbidden", 403),
        ("identity-required", 403),
        ("quota-exceeded", 409),
        ("message-too-large", 413),
        ("invalid-card", 422),
        ("card-too-large", 422),
        ("invalid-schema", 422),
        (None, 422),
    ],
)
def test_a_rejection_maps_to_its_status_with_the_reason_as_code(
    reason: str | None, status: int
) -> None:
    error = rejected_error(Outcome("rejected", reason, None), {"agent_id": "a"})
    assert error.status == status
    assert error.code == (reason or "rejected")
    assert error.details == {"agent_id": "a", "reason": reason or "rejected"}
    assert error.message


GATEWAYS = Limits(gateway_users=frozenset({"registry"}))


def test_without_the_header_a_command_speaks_for_its_broker_user() -> None:
    assert speaker("weather", None, GATEWAYS) == "weather"
    assert speaker(None, None, GATEWAYS) is None
    assert speaker("registry", None, GATEWAYS) == "registry"


def test_a_gateway_user_speaks_for_the_key_named_in_the_header() -> None:
    assert speaker("registry", "team-a", GATEWAYS) == "key:team-a"
    assert speaker("registry", "", GATEWAYS) == ""  # no key: no identity


@pytest.mark.parametrize("user", ["weather", None, "", "key:registry", "Registry"])
def test_anyone_else_setting_the_header_is_forbidden(user: str | None) -> None:
    with pytest.raises(Rejected) as refused:
        speaker(user, "team-a", GATEWAYS)
    assert refused.value.reason == "forbidden"
    assert PRINCIPAL_HEADER in refused.value.detail


@pytest.mark.parametrize("principal", [b"team-a", 7, ["a"], "x" * 129])
def test_a_header_that_is_no_principal_name_is_invalid(principal: object) -> None:
    with pytest.raises(Rejected) as refused:
        speaker("registry", principal, GATEWAYS)
    assert refused.value.reason == "invalid-schema"
