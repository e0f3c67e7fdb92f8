"""Publish the outbox to RabbitMQ, in revision order, and drop each event once confirmed.

One replica at a time holds the relay lock (a Redis key with a TTL it renews), so events leave
in the order the scripts wrote them. A relay that dies leaves its entries in the outbox, and
the lock expires to another replica, which publishes them again: delivery is at least once,
and a re-published event keeps its id.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from faststream.rabbit.publisher import RabbitPublisher

from agentroster.contracts import CE_HEADERS, EventKind, Topology
from agentroster.contracts.events import CE_SPECVERSION
from agentroster.store.redis_store import OutboxEntry, RedisStore
from agentroster.worker.batcher import REDIS_UNAVAILABLE, raise_if_cancelling
from agentroster.worker.metrics import WorkerMetrics

log = logging.getLogger(__name__)


class OutboxRelay:
    """Moves events from the Redis outbox to the events exchange through declared publishers."""

    def __init__(
        self,
        store: RedisStore,
        publishers: Mapping[EventKind, RabbitPublisher],
        metrics: WorkerMetrics,
        *,
        topology: Topology,
        source: str,
        lock_ttl_s: float,
        chunk: int = 500,
    ) -> None:
        self._store = store
        self._publishers = publishers
        self._metrics = metrics
        self._topology = topology
        self._source = source
        self._lock_ttl_ms = round(lock_ttl_s * 1000)
        self._chunk = chunk
        self.owner = f"{socket.gethostname()}-{secrets.token_hex(4)}"

    async def run(self) -> None:
        """Relay until cancelled; the lock is given up on the way out."""
        try:
            while True:
                try:
                    await self._relay_once()
                except REDIS_UNAVAILABLE as exc:
                    raise_if_cancelling()
                    self._metrics.redis_errors.inc()
                    log.warning("relay: Redis unavailable (%s)", exc)
                    await asyncio.sleep(1.0)
                except Exception:
                    raise_if_cancelling()
                    log.exception("relay: publishing failed; retrying")
                    await asyncio.sleep(1.0)
        finally:
            await asyncio.shield(self._release())

    async def _release(self) -> None:
        try:
            await self._store.release_relay(self.owner)
        except Exception as exc:  # shutting down anyway; the lock expires by itself
            log.debug("relay: could not release the lock: %s", exc)

    async def _relay_once(self) -> None:
        if not await self._store.acquire_relay(self.owner, self._lock_ttl_ms):
            await asyncio.sleep(self._lock_ttl_ms / 3000)
            return
        # XREAD from 0-0 returns at once while the outbox holds anything, and otherwise wakes on
        # the next event any replica writes; block well within the lock's TTL to renew it in time
        entries = await self._store.read_outbox("0-0", self._chunk, block_ms=self._lock_ttl_ms // 3)
        if not entries:
            self._metrics.outbox_depth.set(0)
            return
        await asyncio.gather(*(self._publish(e) for e in entries))
        await self._store.remove_outbox([e.entry_id for e in entries])
        self._metrics.outbox_depth.set(await self._store.outbox_depth())

    async def _publish(self, entry: OutboxEntry) -> None:
        f = entry.fields
        kind: EventKind = f[b"kind"].decode()  # type: ignore[assignment]
        agent_id = f[b"agent"].decode()
        revision = int(f[b"rev"])
        event_id = f"{self._topology.prefix}-{entry.entry_id}"
        time = datetime.fromtimestamp(int(f[b"time"]) / 1000, UTC)
        body = {
            "agent_id": agent_id,
            "revision": revision,
            "status": f[b"status"].decode(),
            "live_instances": int(f[b"live"]),
            "reason": f[b"reason"].decode(),
            "agent": orjson.Fragment(f[b"view"]),
        }
        if b"card" in f:
            body["card"] = orjson.Fragment(f[b"card"])
        values: tuple[str | int, ...] = (
            CE_SPECVERSION,
            event_id,
            self._topology.event_type(kind),
            self._source,
            agent_id,
            time.isoformat().replace("+00:00", "Z"),
            revision,
        )
        headers: dict[str, Any] = dict(zip(CE_HEADERS, values, strict=True))
        await self._publishers[kind].publish(
            orjson.dumps(body),
            routing_key=self._topology.event_key(kind, agent_id),
            headers=headers,
            message_id=event_id,
            timestamp=time,
            content_type="application/json",
            message_type=f"agent.{kind}",
            persist=True,
        )
        self._metrics.events_relayed.labels(kind).inc()
