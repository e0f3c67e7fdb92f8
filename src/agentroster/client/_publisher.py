"""Publish commands with publisher confirms and `mandatory`: a lost command is an error.

An agent needs only *write* permission (design, invariant 6): the commands exchange is looked
up passively, never declared, and every command carries the connection's user name as its AMQP
`user_id`, which RabbitMQ checks against the authenticated user (it cannot be forged).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol, Self
from urllib.parse import parse_qs, urlsplit

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection
from aiormq.exceptions import (
    ChannelAccessRefused,
    ChannelNotFoundEntity,
    ChannelPreconditionFailed,
)

from agentroster import tracing
from agentroster.client._errors import CommandRefused, RegistryNotDeclared
from agentroster.contracts import CommandKind, Deregister, Heartbeat, Register, Topology
from agentroster.contracts.commands import command_json
from agentroster.contracts.ids import broker_user
from agentroster.contracts.topology import DEFAULT_PREFIX

#: The URL scheme of an in-process `FakeRegistry` (agentroster.client.testing).
MEMORY_SCHEME = "memory"
#: Seconds between reconnection attempts, jittered per client so that a fleet reconnecting
#: after a broker restart does not knock all at once (aio-pika's default is a fixed 5 s: too
#: slow for leases of a few seconds).
RECONNECT_INTERVAL_S = (0.5, 1.5)


def command_message(
    command: Register | Heartbeat | Deregister,
    kind: str,
    message_id: str,
    user_id: str | None,
    headers: dict[str, Any] | None,
    *,
    reply_to: str | None = None,
    correlation_id: str | None = None,
) -> aio_pika.Message:
    """A command as every publisher sends it (agents' clients and the API's gateway): its wire
    JSON, persistent, typed by its kind, stamped, under the publisher's validated `user_id`."""
    return aio_pika.Message(
        command_json(command),
        content_type="application/json",
        type=kind,
        message_id=message_id,
        timestamp=datetime.now(UTC),
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        user_id=user_id,
        headers=headers,
        reply_to=reply_to,
        correlation_id=correlation_id,
    )


class Publisher(Protocol):
    """What an `Announcement` publishes through: `CommandPublisher`, or for a `memory://` URL
    the in-process `FakeRegistry` of `agentroster.client.testing`."""

    user_id: str | None
    reconnected: asyncio.Event

    async def connect(self) -> Self:
        """Connect and find the commands exchange (`RegistryNotDeclared` if it is missing)."""
        ...

    async def publish(self, kind: CommandKind, command: Register | Heartbeat | Deregister) -> None:
        """Publish one command and wait until the broker took it."""
        ...

    async def close(self) -> None:
        """Disconnect."""
        ...


def publisher_for(broker_url: str, *, prefix: str, user_id: str | None = None) -> Publisher:
    """The publisher for a broker URL: RabbitMQ, or a `FakeRegistry` for `memory://` URLs."""
    if urlsplit(broker_url).scheme == MEMORY_SCHEME:
        # imported on use: only tests point a client at a memory:// URL
        from agentroster.client.testing import MemoryPublisher

        return MemoryPublisher(broker_url, prefix=prefix, user_id=user_id)
    return CommandPublisher(broker_url, prefix=prefix, user_id=user_id)


class CommandPublisher:
    """A robust connection to RabbitMQ and the commands exchange of one registry.

    `user_id` defaults to the broker URL's user name, so every command carries its validated
    identity; pass `user_id=""` to send none. With EXTERNAL authentication (`?auth=external`)
    the URL names no user and none is sent unless `user_id` gives the certificate's user name.
    The attribute `user_id` holds what is sent (None: nothing). A refused publish raises
    `CommandRefused`; the channel the broker closed for it is replaced before the next publish.
    """

    def __init__(
        self, broker_url: str, *, prefix: str = DEFAULT_PREFIX, user_id: str | None = None
    ) -> None:
        self._url = broker_url
        self._topology = Topology(prefix)
        self._user = broker_user(broker_url)
        if user_id is None and _external_auth(broker_url):
            user_id = ""  # the certificate names the user, not the URL: send none
        self.user_id = self._user if user_id is None else (user_id or None)
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        #: Set each time the connection came back after a loss (the Beacon beats at once).
        self.reconnected = asyncio.Event()
        #: Whether publishes are traced, decided when connecting (`tracing.publishing`).
        self._traced = False

    async def connect(self) -> Self:
        """Connect (robustly: it reconnects by itself) and look up the commands exchange.

        Raises `RegistryNotDeclared` when the exchange does not exist.
        """
        self._traced = tracing.enabled()
        self._connection = await aio_pika.connect_robust(
            self._url,
            client_properties={"connection_name": "agentroster-client"},
            reconnect_interval=random.uniform(*RECONNECT_INTERVAL_S),
        )
        self._connection.reconnect_callbacks.add(lambda *_: self.reconnected.set())
        try:
            await self._open_channel()
        except BaseException:
            await self.close()
            raise
        return self

    async def _open_channel(self) -> AbstractExchange:
        assert self._connection is not None
        channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        name = self._topology.commands_exchange
        try:
            # passive: needs no permission at all; declaring would need *configure*
            exchange = await channel.get_exchange(name, ensure=True)
        except ChannelNotFoundEntity as exc:
            await _close(channel)
            raise RegistryNotDeclared(name, _reply_text(exc)) from None
        self._channel, self._exchange = channel, exchange
        return exchange

    async def publish(self, kind: CommandKind, command: Register | Heartbeat | Deregister) -> None:
        """Publish and wait for the broker's confirm; raises if unroutable or not confirmed.

        Raises `CommandRefused` when the broker refuses it (a missing permission, a foreign
        `user_id`) and `RegistryNotDeclared` when the commands exchange has gone.
        """
        if self._connection is None:
            raise RuntimeError("CommandPublisher.connect() was not awaited")
        exchange = self._exchange
        if exchange is None or self._channel is None or self._channel.is_closed:
            await self._discard_channel()
            exchange = await self._open_channel()
        routing_key = Topology.command_key(command.agent_id, kind)
        message_id = uuid.uuid4().hex
        with tracing.publishing(
            exchange.name, routing_key, message_id, traced=self._traced
        ) as trace_headers:
            message = command_message(command, kind, message_id, self.user_id, trace_headers)
            await self._send(exchange, message, routing_key)

    async def _send(
        self, exchange: AbstractExchange, message: aio_pika.Message, routing_key: str
    ) -> None:
        try:
            await exchange.publish(message, routing_key=routing_key, mandatory=True)
        except (ChannelAccessRefused, ChannelPreconditionFailed, ChannelNotFoundEntity) as exc:
            # the broker closed the channel for this: the next publish opens a new one
            await self._discard_channel()
            if isinstance(exc, ChannelNotFoundEntity):
                raise RegistryNotDeclared(exchange.name, _reply_text(exc)) from None
            raise self._refused(exc, routing_key, exchange.name) from None

    def _refused(self, exc: Exception, routing_key: str, exchange: str) -> CommandRefused:
        detail = _reply_text(exc)
        if isinstance(exc, ChannelPreconditionFailed):
            permission = "user_id" if "user_id" in detail else "publish"
        elif "access to topic" in detail:
            permission = "topic write"
        else:
            permission = "write"
        return CommandRefused(
            permission=permission,
            routing_key=routing_key,
            exchange=exchange,
            user=self._user,
            detail=detail,
        )

    async def _discard_channel(self) -> None:
        channel, self._channel, self._exchange = self._channel, None, None
        if channel is not None:
            await _close(channel)

    async def close(self) -> None:
        """Close the connection."""
        self._channel = None
        self._exchange = None
        if self._connection is not None:
            await self._connection.close()
            self._connection = None


async def _close(channel: AbstractChannel) -> None:
    """Close a channel, also one the broker closed: a robust channel would otherwise reopen
    itself, unused, after every refusal."""
    with contextlib.suppress(Exception):  # already closed: nothing left to do
        await channel.close()


def _external_auth(broker_url: str) -> bool:
    """Whether the URL asks for EXTERNAL (TLS client certificate) authentication."""
    query = parse_qs(urlsplit(broker_url).query)
    return any(value.lower() == "external" for value in query.get("auth", []))


def _reply_text(exc: Exception) -> str:
    """The broker's reply text of a channel exception (aiormq keeps it as an argument)."""
    for arg in reversed(exc.args):
        if isinstance(arg, str) and arg:
            return arg
    return str(exc)
