"""Publish commands with publisher confirms and `mandatory`: a lost command is an error."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime
from typing import Self

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractRobustConnection

from agentroster.contracts import CommandKind, Deregister, Heartbeat, Register, Topology

DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/"
#: Seconds between reconnection attempts, jittered per client so that a fleet reconnecting
#: after a broker restart does not knock all at once (aio-pika's default is a fixed 5 s: too
#: slow for leases of a few seconds).
RECONNECT_INTERVAL_S = (0.5, 1.5)


class CommandPublisher:
    """A robust connection to RabbitMQ and the commands exchange of one registry."""

    def __init__(
        self, broker_url: str, *, prefix: str = "agentroster", user_id: str | None = None
    ) -> None:
        self._url = broker_url
        self._topology = Topology(prefix)
        self._user_id = user_id
        self._connection: AbstractRobustConnection | None = None
        self._exchange: AbstractExchange | None = None
        #: Set each time the connection came back after a loss (the Beacon beats at once).
        self.reconnected = asyncio.Event()

    async def connect(self) -> Self:
        """Connect (robustly: it reconnects by itself) and declare the commands exchange."""
        self._connection = await aio_pika.connect_robust(
            self._url,
            client_properties={"connection_name": "agentroster-client"},
            reconnect_interval=random.uniform(*RECONNECT_INTERVAL_S),
        )
        self._connection.reconnect_callbacks.add(lambda *_: self.reconnected.set())
        channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        self._exchange = await channel.declare_exchange(
            self._topology.commands_exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        return self

    async def publish(self, kind: CommandKind, command: Register | Heartbeat | Deregister) -> None:
        """Publish and wait for the broker's confirm; raises if unroutable or not confirmed."""
        if self._exchange is None:
            raise RuntimeError("CommandPublisher.connect() was not awaited")
        message = aio_pika.Message(
            command.model_dump_json(exclude_none=True).encode(),
            content_type="application/json",
            type=kind,
            message_id=uuid.uuid4().hex,
            timestamp=datetime.now(UTC),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            user_id=self._user_id,
        )
        await self._exchange.publish(
            message, routing_key=Topology.command_key(command.agent_id, kind), mandatory=True
        )

    async def close(self) -> None:
        """Close the connection."""
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
            self._exchange = None
