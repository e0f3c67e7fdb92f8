"""`TtlBounds`: the registry, not the client, bounds every TTL it is sent (design section 2).

The rest of the registry's rules (leases, status, transitions) are the Lua scripts
(`store/lua/`), tested through the worker against real Redis."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agentroster.registry.prepare import TtlBounds


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
