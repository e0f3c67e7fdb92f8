"""A bare AMQP 0-9-1 publisher that fills a queue fast, before a measurement starts.

aio-pika makes one `send()` system call per published message (about 200 us of client CPU
each on this VM, i.e. ~2,000 messages/s); this writes PUBLISH_CHUNK messages per `send()` and
waits for publisher confirms, at 10,000 to 13,000 messages/s (bench/README.md, Heartbeats).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import unquote, urlsplit

from pamqp import commands, frame, header
from pamqp.body import ContentBody
from pamqp.exceptions import UnmarshalingException

from agentroster.contracts.ids import broker_user

PUBLISH_CHUNK = 1000  # messages written with one send()
PUBLISH_WINDOW = 20_000  # messages awaiting their publisher confirm at most

T = TypeVar("T")
#: (routing key, AMQP type, body) of the j-th message of a pre-load
Make = Callable[[int], tuple[str, str, bytes]]


class RawPublisher:
    """A bare AMQP 0-9-1 publisher (pamqp frames on one socket), only to pre-load queues fast.

    aio-pika makes one `send()` per message (about 200 us of client CPU each here); this writes
    PUBLISH_CHUNK messages per `send()` and waits for publisher confirms, keeping at most
    PUBLISH_WINDOW unconfirmed. The messages carry the properties `CommandPublisher` sets
    (content type, type, message id, timestamp, persistent, user_id), except `mandatory`: the
    queue depth is checked after every pre-load instead.
    """

    def __init__(self, url: str) -> None:
        self._url = urlsplit(url)
        self._user = broker_user(url)
        self._buffer = bytearray()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None
        self._published = 0  # delivery tags are 1, 2, 3...
        self._confirmed = 0  # every tag up to this one is confirmed
        self._singles: set[int] = set()  # confirmed one by one, above _confirmed
        self._progress = asyncio.Event()
        self._failure: str | None = None
        self._closed = asyncio.Event()

    async def connect(self) -> None:
        """Open the connection and one channel in confirm mode."""
        url = self._url
        self._reader, self._writer = await asyncio.open_connection(
            url.hostname or "127.0.0.1", url.port or 5672
        )
        self._send(header.ProtocolHeader(), 0)
        await self._expect(commands.Connection.Start)
        user, password = unquote(url.username or "guest"), unquote(url.password or "guest")
        self._send(
            commands.Connection.StartOk(
                client_properties={"connection_name": "agentroster-bench-preload"},
                mechanism="PLAIN",
                response=f"\0{user}\0{password}",
                locale="en_US",
            ),
            0,
        )
        tune = await self._expect(commands.Connection.Tune)
        self._send(
            commands.Connection.TuneOk(
                channel_max=tune.channel_max, frame_max=tune.frame_max, heartbeat=0
            ),
            0,
        )
        self._send(commands.Connection.Open(virtual_host=unquote(url.path[1:]) or "/"), 0)
        await self._expect(commands.Connection.OpenOk)
        self._send(commands.Channel.Open(), 1)
        await self._expect(commands.Channel.OpenOk)
        self._send(commands.Confirm.Select(), 1)
        await self._expect(commands.Confirm.SelectOk)
        self._reading = asyncio.create_task(self._read_confirms())

    async def publish(self, exchange: str, count: int, make: Make) -> float:
        """Publish `count` messages `make(0..count-1)` and wait for every confirm; seconds."""
        assert self._writer is not None
        started = time.perf_counter()
        for start in range(0, count, PUBLISH_CHUNK):
            frames: list[bytes] = []
            for j in range(start, min(count, start + PUBLISH_CHUNK)):
                routing_key, kind, body = make(j)
                properties = commands.Basic.Properties(
                    content_type="application/json",
                    message_type=kind,
                    message_id=uuid.uuid4().hex,
                    timestamp=datetime.now(UTC),
                    delivery_mode=2,
                    user_id=self._user,  # as CommandPublisher: the connection's user
                )
                frames += (
                    frame.marshal(
                        commands.Basic.Publish(exchange=exchange, routing_key=routing_key), 1
                    ),
                    frame.marshal(header.ContentHeader(0, len(body), properties), 1),
                    frame.marshal(ContentBody(body), 1),
                )
            self._writer.write(b"".join(frames))
            self._published += len(frames) // 3
            await self._writer.drain()
            await self._confirmed_up_to(self._published - PUBLISH_WINDOW)
        await self._confirmed_up_to(self._published)
        return time.perf_counter() - started

    async def close(self) -> None:
        """Close the connection (gracefully unless it already failed)."""
        if self._writer is None:
            return
        if self._failure is None:
            self._send(
                commands.Connection.Close(
                    reply_code=200, reply_text="bye", class_id=0, method_id=0
                ),
                0,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), 5)
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()
        self._writer = None

    async def _confirmed_up_to(self, tag: int) -> None:
        while self._confirmed < tag:
            if self._failure is not None:
                raise RuntimeError(f"pre-load failed: {self._failure}")
            self._progress.clear()
            await self._progress.wait()

    def _send(self, value: frame.FrameTypes, channel: int) -> None:
        assert self._writer is not None
        self._writer.write(frame.marshal(value, channel))

    async def _next_frame(self) -> frame.FrameTypes:
        assert self._reader is not None
        while True:
            try:
                consumed, _channel, value = frame.unmarshal(bytes(self._buffer))
            except UnmarshalingException:  # not all of it yet
                data = await self._reader.read(65536)
                if not data:
                    raise ConnectionError("RabbitMQ closed the connection") from None
                self._buffer += data
                continue
            del self._buffer[:consumed]
            return value

    async def _expect(self, kind: type[T]) -> T:
        value = await self._next_frame()
        if not isinstance(value, kind):
            raise RuntimeError(f"expected {kind.__name__}, RabbitMQ sent {value!r}")
        return value

    async def _read_confirms(self) -> None:
        try:
            while True:
                value = await self._next_frame()
                if isinstance(value, commands.Basic.Ack):
                    self._on_ack(value.delivery_tag, value.multiple)
                elif isinstance(value, commands.Connection.CloseOk):
                    self._closed.set()
                    return
                elif isinstance(value, commands.Basic.Nack):
                    self._failure = f"RabbitMQ refused message {value.delivery_tag}"
                elif isinstance(value, commands.Channel.Close | commands.Connection.Close):
                    self._failure = f"RabbitMQ closed: {value.reply_code} {value.reply_text}"
                self._progress.set()
                if self._failure is not None:
                    return
        except ConnectionError as exc:
            self._failure = str(exc)
            self._progress.set()

    def _on_ack(self, tag: int, multiple: bool) -> None:
        if multiple:
            self._confirmed = max(self._confirmed, tag)
            self._singles = {t for t in self._singles if t > tag}
        else:
            self._singles.add(tag)
        while self._confirmed + 1 in self._singles:
            self._confirmed += 1
            self._singles.remove(self._confirmed)
