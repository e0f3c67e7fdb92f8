"""The API's way onto the broker: it publishes HTTP agents' commands, the worker applies them.

One `CommandGateway` per API process: one AMQP connection, a channel with publisher confirms,
commands published as an AMQP agent would (same exchange, routing key, properties), plus the
principal header (`contracts.gateway`). With `wait`, it asks the worker for the outcome through
RabbitMQ's direct reply-to and waits for it (read-your-write).

`CommandGateway` is the interface routes depend on; `AmqpGateway` is the real one. A command is
either confirmed by the broker (then it is in the commands queue: the worker will apply or
dead-letter it) or `BrokerUnavailable` is raised and the client retries: never lost, and a
retry of one that did arrive after all is ignored by its `seq`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import aio_pika
import orjson
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustConnection,
)

from agentroster import tracing
from agentroster.api.auth import Principal
from agentroster.api.gateway_errors import BrokerUnavailable
from agentroster.api.heartbeat_batches import HeartbeatBatches, batch_item
from agentroster.client._publisher import command_message
from agentroster.contracts import CommandKind, Topology
from agentroster.contracts.commands import (
    Command,
    Deregister,
    Heartbeat,
    Register,
)
from agentroster.contracts.gateway import (
    DIRECT_REPLY_TO,
    HEARTBEAT_BATCH_KEY,
    HEARTBEAT_BATCH_TYPE,
    PRINCIPAL_HEADER,
)
from agentroster.contracts.ids import broker_user

__all__ = [
    "AmqpGateway",
    "BrokerUnavailable",
    "CommandGateway",
    "Outcome",
    "command_kind",
    "create_gateway",
]

log = logging.getLogger(__name__)

#: Longest wait for a connection, a channel or a publisher confirm before answering 503.
BROKER_TIMEOUT_S = 5.0
#: After a failed connection attempt, requests fail at once for this long instead of each
#: trying again (a broker that is down must not be knocked on by every request).
CONNECT_BACKOFF_S = 1.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a command: `accepted` (confirmed by the broker, outcome not awaited),
    `applied` by the worker, or `rejected` (dead-lettered: `reason` is the dead-letter reason).
    """

    status: Literal["accepted", "applied", "rejected"]
    reason: str | None = None
    message: str | None = None


class CommandGateway:
    """Publishes commands for API keys; see the module docstring."""

    async def start(self) -> None:
        """Connect (lazily reconnects later; a broker down at start is not fatal)."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Close the connection."""
        raise NotImplementedError

    async def send(
        self, command: Command, principal: Principal | None, *, wait: bool = False
    ) -> Outcome:
        """Publish `command` for `principal` (None: no identity) and wait for the confirm.

        With `wait`, also wait (at most `write_wait_s`) for the worker's outcome. Raises
        `BrokerUnavailable` when the broker does not confirm.
        """
        raise NotImplementedError


def command_kind(command: Command) -> CommandKind:
    """The kind word of a command (routing key and AMQP `type`)."""
    match command:
        case Register():
            return "register"
        case Heartbeat():
            return "heartbeat"
        case Deregister():
            return "deregister"
    raise TypeError(f"not a command: {type(command).__name__}")  # pragma: no cover


class AmqpGateway(CommandGateway):
    """The gateway over one robust aio-pika connection (see the module docstring)."""

    def __init__(
        self,
        broker_url: str,
        *,
        prefix: str,
        wait_s: float,
        connection_name: str | None = None,
        batch_max: int = 0,
        batch_max_bytes: int = 256 * 1024,
    ) -> None:
        self._url = broker_url
        self._topology = Topology(prefix)
        self._user_id = broker_user(broker_url)
        self._wait_s = wait_s
        #: decided once (`tracing.publishing`): the process set its tracer provider before
        self._traced = tracing.enabled()
        self._connection_name = connection_name or f"{prefix}-api-gateway"
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._lock = asyncio.Lock()
        self._failed_at = -CONNECT_BACKOFF_S
        #: Correlation id -> the request waiting for the worker's reply.
        self._waiting: dict[str, asyncio.Future[Outcome]] = {}
        self._closing: set[asyncio.Task[None]] = set()
        #: heartbeats without `wait` go in batches (off with tracing: a span per command)
        self._batches = (
            HeartbeatBatches(self._publish_batch, max_items=batch_max, max_bytes=batch_max_bytes)
            if batch_max > 0 and not self._traced
            else None
        )

    async def start(self) -> None:
        """Connect now if the broker answers; otherwise the first write tries again."""
        try:
            await self._ready()
        except BrokerUnavailable as exc:
            log.warning("the write gateway could not reach the broker (%s); retrying on use", exc)

    async def stop(self) -> None:
        """Close the connection; requests still waiting for a reply get `accepted`."""
        if self._batches is not None:
            await self._batches.stop()
        self._forget_waiting()
        connection, self._connection = self._connection, None
        self._channel = self._exchange = None
        if connection is not None:
            with contextlib.suppress(Exception):  # already gone: nothing to close
                await connection.close()

    async def send(
        self, command: Command, principal: Principal | None, *, wait: bool = False
    ) -> Outcome:
        """Publish with confirms (see `CommandGateway.send`); a heartbeat without `wait` goes
        in the next heartbeat batch (api/heartbeat_batches.py)."""
        name = principal.name if principal is not None else ""
        if self._batches is not None and not wait and isinstance(command, Heartbeat):
            await self._batches.send(batch_item(command, name))
            return Outcome("accepted")
        exchange = await self._ready()
        kind = command_kind(command)
        correlation_id = uuid.uuid4().hex
        routing_key = Topology.command_key(command.agent_id, kind)
        headers: dict[str, Any] = {PRINCIPAL_HEADER: name}
        reply: asyncio.Future[Outcome] | None = None
        if wait:
            reply = asyncio.get_running_loop().create_future()
            self._waiting[correlation_id] = reply
        try:
            # a child of the HTTP request's span, when tracing is on
            with tracing.publishing(
                exchange.name, routing_key, correlation_id, traced=self._traced
            ) as trace_headers:
                message = command_message(
                    command,
                    kind,
                    correlation_id,
                    self._user_id,
                    {**headers, **trace_headers} if trace_headers else headers,
                    reply_to=DIRECT_REPLY_TO if wait else None,
                    correlation_id=correlation_id if wait else None,
                )
                await self._confirmed(exchange, message, routing_key)
            if reply is None:
                return Outcome("accepted")
            try:
                async with asyncio.timeout(self._wait_s):
                    return await reply
            except TimeoutError:
                return Outcome("accepted")
        finally:
            self._waiting.pop(correlation_id, None)

    async def _publish_batch(self, body: bytes) -> None:
        """Publish a heartbeat batch (as a gateway user, no principal header of its own)."""
        exchange = await self._ready()
        message = aio_pika.Message(
            body,
            content_type="application/json",
            type=HEARTBEAT_BATCH_TYPE,
            message_id=uuid.uuid4().hex,
            timestamp=datetime.now(UTC),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            user_id=self._user_id,
        )
        await self._confirmed(exchange, message, HEARTBEAT_BATCH_KEY)

    async def _confirmed(
        self, exchange: AbstractExchange, message: aio_pika.Message, routing_key: str
    ) -> None:
        """Publish and wait for the broker's confirm; `BrokerUnavailable` if none comes."""
        try:
            async with asyncio.timeout(BROKER_TIMEOUT_S):
                await exchange.publish(message, routing_key=routing_key)
        except Exception as exc:  # any failure to be confirmed: the client must retry
            await self._discard_channel()
            raise BrokerUnavailable(_describe(exc)) from None

    async def _ready(self) -> AbstractExchange:
        """The commands exchange on an open confirming channel, connecting if need be."""
        if self._usable() and self._exchange is not None:
            return self._exchange
        connection = self._connection
        if connection is not None and not connection.connected.is_set():
            # aio-pika reconnects by itself: until then, refuse at once rather than wait
            raise BrokerUnavailable("the broker connection is down (reconnecting)")
        async with self._lock:
            if self._usable() and self._exchange is not None:
                return self._exchange
            if time.monotonic() - self._failed_at < CONNECT_BACKOFF_S:
                raise BrokerUnavailable("the broker was unreachable a moment ago")
            try:
                async with asyncio.timeout(BROKER_TIMEOUT_S):
                    return await self._open()
            except Exception as exc:  # down, refused, or the registry not declared yet
                self._failed_at = time.monotonic()
                await self._discard_channel()
                raise BrokerUnavailable(_describe(exc)) from None

    def _usable(self) -> bool:
        """Whether the channel is open on a connected connection."""
        channel, connection = self._channel, self._connection
        return (
            channel is not None
            and not channel.is_closed
            and connection is not None
            and connection.connected.is_set()
        )

    async def _open(self) -> AbstractExchange:
        if self._connection is None:
            connection = await aio_pika.connect_robust(
                self._url,
                client_properties={"connection_name": self._connection_name},
                reconnect_interval=1.0,
            )
            connection.reconnect_callbacks.add(self._reconnected)
            self._connection = connection
        if not self._connection.connected.is_set():
            raise ConnectionError("the broker connection is down (reconnecting)")
        channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        try:
            replies = await channel.get_queue(DIRECT_REPLY_TO, ensure=False)
            await replies.consume(self._on_reply, no_ack=True)
            # passive: the worker declares it; a missing exchange is a registry not yet up
            exchange = await channel.get_exchange(self._topology.commands_exchange, ensure=True)
        except BaseException:
            with contextlib.suppress(Exception):
                await channel.close()
            raise
        self._channel, self._exchange = channel, exchange
        return exchange

    def _reconnected(self, *_: object) -> None:
        """After a reconnect the reply consumer is gone: the next send opens a new channel."""
        self._forget_waiting()
        channel, self._channel, self._exchange = self._channel, None, None
        if channel is not None:
            task = asyncio.get_running_loop().create_task(_close(channel))
            self._closing.add(task)  # held until done: the loop keeps only weak references
            task.add_done_callback(self._closing.discard)

    async def _discard_channel(self) -> None:
        channel, self._channel, self._exchange = self._channel, None, None
        if channel is not None:
            await _close(channel)

    def _forget_waiting(self) -> None:
        """Replies for these can no longer arrive; their commands were confirmed."""
        for future in self._waiting.values():
            if not future.done():
                future.set_result(Outcome("accepted"))

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        future = self._waiting.get(message.correlation_id or "")
        if future is None or future.done():
            return  # its request timed out already
        try:
            body = orjson.loads(message.body)
            status = body["outcome"]
            if status not in ("applied", "rejected"):
                raise ValueError(status)
            future.set_result(Outcome(status, body.get("reason"), body.get("message")))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.warning("an unreadable reply from the worker: %r", message.body[:200])


async def _close(channel: AbstractChannel) -> None:
    with contextlib.suppress(Exception):  # already closed by the broker
        await channel.close()


def _describe(exc: BaseException) -> str:
    """A short reason for a 503, without internals beyond the broker's own words."""
    if isinstance(exc, TimeoutError):
        return "the broker did not answer in time"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def create_gateway(
    broker_url: str,
    *,
    prefix: str,
    wait_s: float,
    batch_max: int = 0,
    batch_max_bytes: int = 256 * 1024,
) -> AmqpGateway:
    """The gateway of one API process (nothing connects until `start`); `batch_max` > 0
    publishes heartbeats without `wait` in batches of at most that many."""
    return AmqpGateway(
        broker_url,
        prefix=prefix,
        wait_s=wait_s,
        batch_max=batch_max,
        batch_max_bytes=batch_max_bytes,
    )
