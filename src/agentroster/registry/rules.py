"""Lease arithmetic, status and transitions: the registry's rules, without I/O.

The Redis scripts (`store/lua/*.lua`) apply exactly these rules atomically; this module is
their reference, unit-tested on its own, and used by the in-memory store.

Transitions (design section 4, invariant 2):

    before      after       event            reason
    ----------  ----------  ---------------  -------------------------------
    none/offl.  live        agent.joined     registered
    idle        live        agent.updated    woke
    live        live        agent.updated    card-changed (only if it changed)
    live        idle        agent.updated    scaled-to-zero
    live        offline     agent.left       deregistered | expired
    idle        offline     agent.left       expired
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agentroster.contracts import EventKind, Reason

StatusOrNone = Literal["live", "idle", "offline"] | None


@dataclass(frozen=True, slots=True)
class TtlBounds:
    """The registry owns the limits: every `ttl_s` it is sent is clamped into these."""

    min_s: float = 5.0
    max_s: float = 24 * 3600.0

    def clamp_ms(self, ttl_s: float) -> int:
        """The bounded TTL in whole milliseconds."""
        return round(min(max(ttl_s, self.min_s), self.max_s) * 1000)


def lease_deadline_ms(now_ms: int, ttl_ms: int) -> int:
    """A renewal at `now_ms` holds the lease until `now_ms + ttl_ms` (Redis clock)."""
    return now_ms + ttl_ms


def is_available(status: StatusOrNone) -> bool:
    """`available` = `live` or `idle`: reachable now, directly or through its queue."""
    return status in ("live", "idle")


def status_without_instances(idle_ttl_ms: int) -> Literal["idle", "offline"]:
    """What an agent becomes when its last lease ends: `idle` if it scales to zero."""
    return "idle" if idle_ttl_ms > 0 else "offline"


def transition(
    before: StatusOrNone,
    after: StatusOrNone,
    *,
    card_changed: bool = False,
    ended_by: Literal["deregistered", "expired"] = "expired",
) -> tuple[EventKind, Reason] | None:
    """The event (kind, reason) a change of status produces, or None for no event."""
    was, now = is_available(before), is_available(after)
    if not was and now:
        if after == "live":
            return ("joined", "registered")
        return None  # nothing becomes idle from offline: idle follows live
    if was and not now:
        return ("left", ended_by if before == "live" else "expired")
    if before == "idle" and after == "live":
        return ("updated", "woke")
    if before == "live" and after == "idle":
        return ("updated", "scaled-to-zero")
    if before == after == "live" and card_changed:
        return ("updated", "card-changed")
    return None
