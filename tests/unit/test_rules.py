"""Lease arithmetic, status and the transition table of `agentroster.registry.rules`."""

from __future__ import annotations

from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentroster.contracts import EventKind, Reason
from agentroster.registry.rules import (
    StatusOrNone,
    TtlBounds,
    is_available,
    lease_deadline_ms,
    status_without_instances,
    transition,
)

STATUSES: tuple[StatusOrNone, ...] = (None, "offline", "idle", "live")
EndedBy = Literal["deregistered", "expired"]

# --- TtlBounds ---------------------------------------------------------------------------------


def test_default_bounds_are_5s_to_24h() -> None:
    """The registry's default bounds are 5 s to 24 h (design section 2)."""
    bounds = TtlBounds()
    assert (bounds.min_s, bounds.max_s) == (5.0, 86400.0)


def test_clamp_below_min_raises_to_min() -> None:
    """A ttl below the minimum is raised to the minimum."""
    assert TtlBounds().clamp_ms(0.1) == 5000
    assert TtlBounds(min_s=0.5, max_s=10).clamp_ms(0.01) == 500


def test_clamp_above_max_lowers_to_max() -> None:
    """A ttl above the maximum is lowered to the maximum."""
    assert TtlBounds().clamp_ms(10 * 86400) == 86_400_000
    assert TtlBounds(min_s=1, max_s=10).clamp_ms(11) == 10_000


def test_clamp_inside_bounds_keeps_value() -> None:
    """A ttl inside the bounds is kept, converted to milliseconds."""
    assert TtlBounds().clamp_ms(30) == 30_000
    assert TtlBounds().clamp_ms(5) == 5000
    assert TtlBounds().clamp_ms(86400) == 86_400_000


def test_clamp_rounds_to_whole_milliseconds() -> None:
    """The clamped ttl is rounded to the nearest whole millisecond, as an int."""
    bounds = TtlBounds(min_s=0.001, max_s=100)
    assert bounds.clamp_ms(7.0004) == 7000
    assert bounds.clamp_ms(7.0006) == 7001
    assert bounds.clamp_ms(0.0123456) == 12
    assert isinstance(bounds.clamp_ms(7.0006), int)


@given(
    ttl=st.floats(min_value=0, max_value=1e9, allow_nan=False),
    low=st.floats(min_value=0.001, max_value=1000, allow_nan=False),
    span=st.floats(min_value=0, max_value=1e6, allow_nan=False),
)
def test_clamp_always_within_bounds(ttl: float, low: float, span: float) -> None:
    """Whatever ttl is sent, the clamped value lies within the bounds (up to rounding)."""
    bounds = TtlBounds(min_s=low, max_s=low + span)
    clamped = bounds.clamp_ms(ttl)
    assert round(bounds.min_s * 1000) <= clamped <= round(bounds.max_s * 1000)


# --- lease, availability, status ---------------------------------------------------------------


def test_lease_deadline_is_now_plus_ttl() -> None:
    """A renewal at now holds the lease until now + ttl."""
    assert lease_deadline_ms(1_700_000_000_000, 15_000) == 1_700_000_015_000
    assert lease_deadline_ms(0, 0) == 0


@pytest.mark.parametrize(
    ("status", "available"),
    [("live", True), ("idle", True), ("offline", False), (None, False)],
)
def test_is_available(status: StatusOrNone, available: bool) -> None:
    """Available means live or idle; offline and unknown agents are not."""
    assert is_available(status) is available


def test_status_without_instances_idle_when_scaling_to_zero() -> None:
    """An agent with an idle_ttl becomes idle when its last lease ends."""
    assert status_without_instances(1) == "idle"
    assert status_without_instances(60_000) == "idle"


def test_status_without_instances_offline_without_idle_ttl() -> None:
    """An agent without an idle_ttl goes offline when its last lease ends."""
    assert status_without_instances(0) == "offline"


# --- transition table --------------------------------------------------------------------------


@pytest.mark.parametrize("before", [None, "offline"])
def test_transition_to_live_from_unavailable_joins(before: StatusOrNone) -> None:
    """none/offline -> live is agent.joined, reason registered."""
    assert transition(before, "live") == ("joined", "registered")
    assert transition(before, "live", card_changed=True) == ("joined", "registered")


def test_transition_idle_to_live_is_woke() -> None:
    """idle -> live is agent.updated, reason woke."""
    assert transition("idle", "live") == ("updated", "woke")


def test_transition_live_to_live_with_card_change() -> None:
    """live -> live with a changed card is agent.updated, reason card-changed."""
    assert transition("live", "live", card_changed=True) == ("updated", "card-changed")


def test_transition_live_to_live_without_card_change_is_silent() -> None:
    """live -> live with the same card produces no event."""
    assert transition("live", "live") is None
    assert transition("live", "live", card_changed=False) is None


def test_transition_live_to_idle_is_scaled_to_zero() -> None:
    """live -> idle is agent.updated, reason scaled-to-zero."""
    assert transition("live", "idle") == ("updated", "scaled-to-zero")


@pytest.mark.parametrize("ended_by", ["deregistered", "expired"])
def test_transition_live_to_offline_leaves_with_cause(ended_by: EndedBy) -> None:
    """live -> offline is agent.left, with the reason the lease ended for."""
    assert transition("live", "offline", ended_by=ended_by) == ("left", ended_by)


def test_transition_live_to_offline_defaults_to_expired() -> None:
    """live -> offline without a cause is agent.left, reason expired."""
    assert transition("live", "offline") == ("left", "expired")


@pytest.mark.parametrize("ended_by", ["deregistered", "expired"])
def test_transition_idle_to_offline_always_expired(ended_by: EndedBy) -> None:
    """idle -> offline is agent.left, reason expired, whatever ended the last lease."""
    assert transition("idle", "offline", ended_by=ended_by) == ("left", "expired")


def test_transition_offline_to_offline_is_silent() -> None:
    """offline -> offline produces no event."""
    assert transition("offline", "offline") is None
    assert transition("offline", "offline", card_changed=True) is None


def test_transition_none_to_idle_is_silent() -> None:
    """none -> idle produces no event: idle only ever follows live."""
    assert transition(None, "idle") is None


def test_transition_offline_to_idle_is_silent() -> None:
    """offline -> idle produces no event: idle only ever follows live."""
    assert transition("offline", "idle") is None


def test_transition_idle_to_idle_is_silent() -> None:
    """idle -> idle produces no event, even if the card changed."""
    assert transition("idle", "idle") is None
    assert transition("idle", "idle", card_changed=True) is None


@pytest.mark.parametrize(("before", "after"), [(None, None), (None, "offline"), ("offline", None)])
def test_transition_between_unavailable_states_is_silent(
    before: StatusOrNone, after: StatusOrNone
) -> None:
    """Moving between unknown and offline produces no event."""
    assert transition(before, after) is None


@pytest.mark.parametrize("before", ["live", "idle"])
def test_transition_available_to_gone_leaves(before: StatusOrNone) -> None:
    """An available agent that disappears entirely (deleted) produces agent.left."""
    result = transition(before, None)
    assert result is not None
    assert result[0] == "left"


# --- properties --------------------------------------------------------------------------------

statuses = st.sampled_from(STATUSES)
ended_bys: st.SearchStrategy[EndedBy] = st.sampled_from(("deregistered", "expired"))


def _reachable(before: StatusOrNone, after: StatusOrNone) -> bool:
    """Whether the store can produce this change: an agent only becomes idle from live."""
    return not (after == "idle" and before != "idle" and before != "live")


@given(before=statuses, after=statuses, card_changed=st.booleans(), ended_by=ended_bys)
def test_joined_iff_becomes_available(
    before: StatusOrNone, after: StatusOrNone, card_changed: bool, ended_by: EndedBy
) -> None:
    """On every reachable change, the event is joined iff availability goes false -> true."""
    if not _reachable(before, after):
        return
    result = transition(before, after, card_changed=card_changed, ended_by=ended_by)
    becomes_available = not is_available(before) and is_available(after)
    assert (result is not None and result[0] == "joined") == becomes_available


@given(before=statuses, after=statuses, card_changed=st.booleans(), ended_by=ended_bys)
def test_left_iff_stops_being_available(
    before: StatusOrNone, after: StatusOrNone, card_changed: bool, ended_by: EndedBy
) -> None:
    """The event is left iff availability goes true -> false."""
    result = transition(before, after, card_changed=card_changed, ended_by=ended_by)
    stops_being_available = is_available(before) and not is_available(after)
    assert (result is not None and result[0] == "left") == stops_being_available


@given(before=statuses, after=statuses, card_changed=st.booleans(), ended_by=ended_bys)
def test_updated_only_between_available_states(
    before: StatusOrNone, after: StatusOrNone, card_changed: bool, ended_by: EndedBy
) -> None:
    """agent.updated is only produced when the agent is available before and after."""
    result = transition(before, after, card_changed=card_changed, ended_by=ended_by)
    if result is not None and result[0] == "updated":
        assert is_available(before)
        assert is_available(after)


EXPECTED_REASONS: dict[EventKind, set[Reason]] = {
    "joined": {"registered"},
    "updated": {"woke", "card-changed", "scaled-to-zero"},
    "left": {"deregistered", "expired"},
}


@given(before=statuses, after=statuses, card_changed=st.booleans(), ended_by=ended_bys)
def test_reason_matches_event_kind(
    before: StatusOrNone, after: StatusOrNone, card_changed: bool, ended_by: EndedBy
) -> None:
    """Every event carries a reason that belongs to its kind."""
    result = transition(before, after, card_changed=card_changed, ended_by=ended_by)
    if result is not None:
        kind, reason = result
        assert reason in EXPECTED_REASONS[kind]
