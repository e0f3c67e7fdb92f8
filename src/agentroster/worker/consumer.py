"""Take the commands queue's deliveries with aio-pika, openly, and hand them to the batcher.

Why not a FastStream handler: FastStream (0.7) runs every delivery through its own pipeline
(parser, decoder, middlewares, context, dependency injection, one handler call per message),
about 4x the CPU of the batcher per command (bench/README.md), and it has no batch subscriber
for RabbitMQ. Assigning our callback to the subscriber's `consume` method worked, but it was an
assignment to a library's method that any FastStream release could break without a word.

So the roles are split, each through supported API only:

- FastStream *declares* the commands subscriber without a handler. A handler-less subscriber
  is FastStream's own mode for code that reads a queue itself (`get_one`, iteration): on
  `broker.start()` it declares the quorum queue and binds it to the commands exchange, and it
  consumes nothing. It still documents the channel and operation in the AsyncAPI document,
  whose message payloads come from the contract catalog (`agentroster.specification`).
- `CommandConsumer` consumes with aio-pika over a connection of its own: a robust connection
  and channel (the prefetch and the consumer are restored after a reconnect), the queue
  looked up passively (FastStream declared it), every delivery to `CommandBatcher.on_message`.
  Consuming on a connection apart from the one that publishes events is also what RabbitMQ
  advises: its flow control blocks a publishing connection, and acknowledgements must not
  wait behind that.

tests/integration/test_worker_consumer.py pins this: the worker's queue has exactly one
consumer (ours; a FastStream that started consuming handler-less subscribers would add one),
and a published command reaches the batcher.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import aio_pika
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
)

log = logging.getLogger(__name__)

#: What takes each delivery (the batcher's `on_message`).
OnMessage = Callable[[AbstractIncomingMessage], Awaitable[None]]


class CommandConsumer:
    """Consumes one queue with a prefetch, over its own robust connection."""

    def __init__(
        self,
        broker_url: str,
        queue: str,
        on_message: OnMessage,
        *,
        prefetch: int,
        on_connection_lost: Callable[[BaseException | None], None] | None = None,
    ) -> None:
        self._url = broker_url
        self._queue_name = queue
        self._on_message = on_message
        self._prefetch = prefetch
        self._on_connection_lost = on_connection_lost
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractRobustChannel | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None

    async def start(self) -> None:
        """Connect and start consuming; the queue must have been declared (by FastStream)."""
        self._connection = await aio_pika.connect_robust(
            self._url, client_properties={"connection_name": "agentroster-worker-commands"}
        )
        self._connection.close_callbacks.add(self._closed)
        channel = await self._connection.channel()
        assert isinstance(channel, AbstractRobustChannel)  # a robust connection's channel
        self._channel = channel
        await channel.set_qos(prefetch_count=self._prefetch)
        self._queue = await channel.get_queue(self._queue_name, ensure=True)
        await self.consume()

    async def consume(self) -> None:
        """Take deliveries (again, after `stop_consuming`) on the open channel."""
        if self._queue is None:
            raise RuntimeError("CommandConsumer.start() was not awaited")
        if self._consumer_tag is None:
            self._consumer_tag = await self._queue.consume(self._on_message)

    def connected(self) -> bool:
        """Whether deliveries can arrive now (the connection is up)."""
        connection = self._connection
        return connection is not None and connection.connected.is_set()

    def consuming(self) -> bool:
        """Whether deliveries arrive now: connected, and not paused by `stop_consuming`."""
        return self._consumer_tag is not None and self.connected()

    def _closed(self, _connection: object, error: BaseException | None = None) -> None:
        if self._on_connection_lost is not None and self._consumer_tag is not None:
            self._on_connection_lost(error)

    async def stop_consuming(self) -> None:
        """Stop taking deliveries; those taken stay to be settled on this channel (`consume`
        takes them again)."""
        queue, tag, self._consumer_tag = self._queue, self._consumer_tag, None
        if queue is None or tag is None:
            return
        try:
            await queue.cancel(tag)
        except Exception as exc:  # the channel is gone: the broker stopped delivering anyway
            log.debug("could not cancel the commands consumer: %s", exc)

    async def close(self) -> None:
        """Stop consuming and close the connection (unsettled deliveries return to the queue)."""
        await self.stop_consuming()
        connection, self._connection = self._connection, None
        self._channel = self._queue = None
        if connection is not None:
            await connection.close()
