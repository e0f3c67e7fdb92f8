"""Expire leases whose deadline passed, every sweep interval, on every replica.

The sweep is one atomic script over a sorted set of deadlines, so replicas racing on the same
expiry each see it claimed once (invariant 2); Redis keyspace notifications are never used
(invariant 4); and it never expires what it may not have heard renewed (invariant 3).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from agentroster.cancellation import raise_if_cancelling
from agentroster.store.redis_store import RedisStore
from agentroster.worker.loops import REDIS_UNAVAILABLE, report_flapping
from agentroster.worker.metrics import WorkerMetrics

log = logging.getLogger(__name__)


#: Why the reaper must not expire leases now, or None when it may.
HoldReason = Callable[[], Awaitable[str | None]]


async def never_hold() -> str | None:
    """The default gate: always sweep."""
    return None


class Reaper:
    """Periodic sweeper of expired leases, idle periods and retention.

    Before each sweep it asks `hold_reason` (the worker's broker connection is down, the
    commands backlog is large): while held, it does not sweep, and a hold longer than the gap
    makes the next sweep give every lease a full TTL (see reap.lua).
    """

    def __init__(
        self,
        store: RedisStore,
        metrics: WorkerMetrics,
        *,
        interval_s: float,
        gap_s: float,
        brake_share: float,
        brake_min_agents: int,
        hold_reason: HoldReason = never_hold,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._interval_s = interval_s
        self._gap_ms = round(gap_s * 1000)
        self._brake_share = brake_share
        self._brake_min_agents = brake_min_agents
        self._hold_reason = hold_reason
        self._held_for: str | None = None
        #: `time.monotonic()` when the loop last went round (held or not); None before it ran.
        self.last_cycle: float | None = None

    async def sweep(self) -> int:
        """Expire everything due now; returns the number of events written."""
        events = 0
        while True:
            known_epoch = self._store.epoch
            result = await self._store.reap(
                gap_ms=self._gap_ms,
                brake_share=self._brake_share,
                brake_min_agents=self._brake_min_agents,
            )
            if known_epoch and result.epoch != known_epoch:
                log.warning(
                    "Redis lost the registry's data (epoch %s is now %s): agents come back "
                    "by their periodic full registration; no lease expires for %.0fs",
                    known_epoch,
                    result.epoch,
                    result.recovery_ms_left / 1000,
                )
            self._metrics.recovering.set(1 if result.recovery_ms_left else 0)
            report_flapping(self._metrics, result.damped)
            self._metrics.leases_expired.inc(result.leases_expired)
            if result.graced:
                self._metrics.leases_graced.inc(result.graced)
                log.warning(
                    "reaper: no sweep for over %.1fs; %d leases get a full TTL from now",
                    self._gap_ms / 1000,
                    result.graced,
                )
            if result.held:
                self._metrics.leases_held.inc(result.held)
                if result.recovery_ms_left:
                    log.info("reaper: %d due leases held in the recovery window", result.held)
                else:
                    log.warning(
                        "reaper: %d leases would have ended most live agents at once; "
                        "held for one TTL (mass-expiry brake)",
                        result.held,
                    )
            events += result.events
            if not result.more_due:
                break
        return events

    async def run(self) -> None:
        """Sweep every interval until cancelled; Redis outages are logged and waited out."""
        while True:
            raise_if_cancelling()
            self.last_cycle = time.monotonic()
            reason = await self._hold_reason()
            self._metrics.reaper_paused.set(1 if reason else 0)
            if reason != self._held_for:
                if reason:
                    log.warning("reaper paused: %s", reason)
                else:
                    log.info("reaper resumed")
                self._held_for = reason
            if reason is None:
                try:
                    await self.sweep()
                except REDIS_UNAVAILABLE as exc:
                    raise_if_cancelling()
                    self._metrics.redis_errors.inc()
                    log.warning("reaper: Redis unavailable (%s)", exc)
            await asyncio.sleep(self._interval_s)
