"""How many commands wait in the queue: the reaper pauses while the backlog is large.

A backlog means renewals are queued but not yet applied: expiring leases then would declare
agents dead that are heartbeating (invariant 3). A passive declare reads the ready count.
"""

from __future__ import annotations

import logging

import aio_pika
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection

log = logging.getLogger(__name__)


class QueueDepth:
    """Reads the number of ready messages of one queue over a connection of its own."""

    def __init__(self, broker_url: str, queue: str) -> None:
        self._url = broker_url
        self._queue = queue
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None

    async def ready(self) -> int | None:
        """Ready messages, or None when the broker cannot be asked right now."""
        try:
            if self._connection is None:
                self._connection = await aio_pika.connect_robust(
                    self._url, client_properties={"connection_name": "agentroster-backlog"}
                )
            if self._channel is None or self._channel.is_closed:
                self._channel = await self._connection.channel()
            # robust=False: a robust channel caches the declared queue, and with it the count
            queue = await self._channel.declare_queue(self._queue, passive=True, robust=False)
        except Exception as exc:  # unreachable broker: the connection check says so too
            log.debug("could not read the depth of %s: %s", self._queue, exc)
            self._channel = None
            return None
        return queue.declaration_result.message_count

    async def close(self) -> None:
        """Close the connection."""
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
