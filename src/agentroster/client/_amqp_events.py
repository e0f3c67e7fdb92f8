"""The registry's events from its event log stream, for a Roster in a service that speaks AMQP.

`<prefix>.events.log` is a RabbitMQ stream queue bound to every event (see
`contracts/topology.py`); an agent granted `--subscribe` may read it without any right on an
exchange. A stream is read from an offset, so the Roster resumes after a disconnect from the
offset after the last event it applied; its first read starts from a time a little before its
list began (events at or below the list's revision are then skipped by revision). Each message
is acknowledged after it was applied: the prefetch bounds what waits in memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from agentroster.client._state import BadEvent
from agentroster.contracts import Topology

#: Unacknowledged events the broker sends ahead (a stream consumer must set a prefetch).
PREFETCH = 500


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One event of the stream: its stream offset, its kind (`joined`...), its body, and the
    message's routing key and headers (the trace context among them, see `tracing`)."""

    offset: int
    kind: str
    body: bytes
    routing_key: str = ""
    headers: Mapping[str, Any] = field(default_factory=dict)


async def stream_events(
    broker_url: str, prefix: str, start: int | datetime
) -> AsyncIterator[StreamEvent]:
    """The events of the stream from `start` (an offset, or a time), until the connection ends.

    Raises `ConnectionError` when the broker closes the connection or the channel, and what
    aio-pika raises otherwise (`aio_pika.exceptions.AMQPError`).
    """
    connection = await aio_pika.connect(broker_url)
    inbox: asyncio.Queue[AbstractIncomingMessage | None] = asyncio.Queue()

    def closed(*_: object) -> None:
        inbox.put_nowait(None)

    try:
        connection.close_callbacks.add(closed)
        channel = await connection.channel()
        channel.close_callbacks.add(closed)
        await channel.set_qos(prefetch_count=PREFETCH)
        queue = await channel.get_queue(Topology(prefix).events_log, ensure=False)
        await queue.consume(inbox.put, arguments={"x-stream-offset": start})
        while (message := await inbox.get()) is not None:
            offset = (message.headers or {}).get("x-stream-offset")
            parts = (message.routing_key or "").split(".")
            if not isinstance(offset, int) or len(parts) != 3:
                raise BadEvent(f"not an event of the stream: {message.routing_key!r}")
            yield StreamEvent(
                offset, parts[1], message.body, message.routing_key or "", message.headers or {}
            )
            await message.ack()
        raise ConnectionError("the broker closed the event stream's connection")
    finally:
        await connection.close()
