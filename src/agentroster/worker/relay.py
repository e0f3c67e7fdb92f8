"""Publish the outbox to RabbitMQ, in revision order, and drop each event once confirmed.

One replica at a time holds the relay lock (a Redis key with a TTL it renews, kept by `Outbox`
beside the stream it guards), so events leave in the order the scripts wrote them. The relay
waits for events in `XREAD BLOCK`, which Redis answers as a script's `XADD` commits: no poll.
After RabbitMQ confirmed a chunk, the relay advances the outbox's relayed revision (the entries
stay for the replay window, see `store/outbox.py`). A relay that dies before that leaves its
position where it was, and the lock expires to another replica, which publishes the chunk
again: delivery is at least once, and a re-published event keeps its id.

Every event carries the registry's broker user name as its AMQP `user_id`: RabbitMQ checks it
against the publishing connection, so a subscriber that compares it with the registry's user
knows the event came from the registry and not from another broker client (invariant 6).

An event caused by a command that carried a W3C trace context carries it on (`traceparent`,
`tracestate`): with tracing on, through a PRODUCER span of the relay's, child of the worker's
span for that command; with it off, as the command's own context.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
from collections.abc import Mapping
from typing import Any

from faststream.rabbit.publisher import RabbitPublisher

from agentroster import tracing
from agentroster.cancellation import raise_if_cancelling
from agentroster.contracts import EventKind, Topology
from agentroster.contracts.events import cloudevents_headers
from agentroster.store.outbox import Outbox, OutboxEvent
from agentroster.worker.loops import REDIS_UNAVAILABLE
from agentroster.worker.metrics import WorkerMetrics

log = logging.getLogger(__name__)


class OutboxRelay:
    """Moves events from the Redis outbox to the events exchange through declared publishers."""

    def __init__(
        self,
        outbox: Outbox,
        publishers: Mapping[EventKind, RabbitPublisher],
        metrics: WorkerMetrics,
        *,
        topology: Topology,
        source: str,
        user_id: str,
        lock_ttl_s: float,
        window: int,
        chunk: int = 500,
    ) -> None:
        self._outbox = outbox
        self._publishers = publishers
        self._metrics = metrics
        self._topology = topology
        self._source = source
        self._user_id = user_id
        self._lock_ttl_ms = round(lock_ttl_s * 1000)
        self._window = window
        self._chunk = chunk
        self.owner = f"{socket.gethostname()}-{secrets.token_hex(4)}"
        self._traced = tracing.enabled()

    async def run(self) -> None:
        """Relay until cancelled; the lock is given up on the way out."""
        try:
            while True:
                raise_if_cancelling()
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
            await self._outbox.release_relay(self.owner)
        except Exception as exc:  # shutting down anyway; the lock expires by itself
            log.debug("relay: could not release the lock: %s", exc)

    async def _relay_once(self) -> None:
        # the lock and the position in one round trip, and the mark returns the backlog: two
        # round trips per chunk besides the read, so a burst's events wait less between chunks
        relayed = await self._outbox.acquire_relay(self.owner, self._lock_ttl_ms)
        if relayed is None:
            await asyncio.sleep(self._lock_ttl_ms / 3000)
            return
        # XREAD returns at once while unpublished events exist, and otherwise wakes on the next
        # event any replica writes; it blocks well within the lock's TTL, to renew it in time
        events = await self._outbox.after(relayed, self._chunk, block_ms=self._lock_ttl_ms // 3)
        backlog = 0  # nothing after the position when the read timed out
        if events:
            await asyncio.gather(*(self._publish(e) for e in events))
            backlog = await self._outbox.mark_relayed(events[-1].revision, self._window)
        self._metrics.outbox_depth.set(backlog)

    async def _publish(self, event: OutboxEvent) -> None:
        headers = event_headers(event, self._topology, self._source)
        caused_by = tracing.unpack(event.trace)  # {} for an event no traced command caused
        if not caused_by:
            await self._send(event, headers)
            return
        if not self._traced:
            await self._send(event, {**headers, **caused_by})  # passed on as it came
            return
        routing_key = self._topology.event_key(event.kind, event.agent_id)
        parent = tracing.extract(caused_by)
        event_id = event.event_id(self._topology.prefix)
        with tracing.publishing(
            self._topology.events_exchange, routing_key, event_id, parent, traced=True
        ) as own:
            await self._send(event, {**headers, **(own or caused_by)})

    async def _send(self, event: OutboxEvent, headers: dict[str, Any]) -> None:
        await self._publishers[event.kind].publish(
            event.body(),
            routing_key=self._topology.event_key(event.kind, event.agent_id),
            headers=headers,
            message_id=event.event_id(self._topology.prefix),
            timestamp=event.time,
            content_type="application/json",
            message_type=Topology.event_name(event.kind),
            user_id=self._user_id,
            persist=True,
        )
        self._metrics.events_relayed.labels(event.kind).inc()


def event_headers(event: OutboxEvent, topology: Topology, source: str) -> dict[str, Any]:
    """The CloudEvents headers the relay sends with an outbox event (the AsyncAPI example is
    built by this function too)."""
    return cloudevents_headers(
        event_id=event.event_id(topology.prefix),
        event_type=topology.event_type(event.kind),
        source=source,
        subject=event.agent_id,
        time=event.time,
        revision=event.revision,
    )
