"""Expire leases whose deadline passed, every sweep interval, on every replica.

The sweep is one atomic script over a sorted set of deadlines, so replicas racing on the same
expiry each see it claimed once (invariant 2); Redis keyspace notifications are never used
(invariant 4).
"""

from __future__ import annotations

import asyncio
import logging

from agentroster.store.redis_store import RedisStore
from agentroster.worker.batcher import REDIS_UNAVAILABLE, raise_if_cancelling
from agentroster.worker.metrics import WorkerMetrics

log = logging.getLogger(__name__)


class Reaper:
    """Periodic sweeper of expired leases, idle periods and retention."""

    def __init__(
        self,
        store: RedisStore,
        metrics: WorkerMetrics,
        *,
        interval_s: float,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._interval_s = interval_s

    async def sweep(self) -> int:
        """Expire everything due now; returns the number of events written."""
        events = 0
        while True:
            result = await self._store.reap()
            self._metrics.leases_expired.inc(result.leases_expired)
            events += result.events
            if not result.more_due:
                break
        return events

    async def run(self) -> None:
        """Sweep every interval until cancelled; Redis outages are logged and waited out."""
        while True:
            try:
                await self.sweep()
            except REDIS_UNAVAILABLE as exc:
                raise_if_cancelling()
                self._metrics.redis_errors.inc()
                log.warning("reaper: Redis unavailable (%s)", exc)
            await asyncio.sleep(self._interval_s)
