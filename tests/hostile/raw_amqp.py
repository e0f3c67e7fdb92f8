"""A minimal AMQP 0-9-1 publisher over a plain TCP stream, for bytes no client library sends.

aio-pika and aiormq encode every short string as UTF-8 from a `str`, so they cannot publish a
routing key, a header key or a property that is not UTF-8. This client builds the frames with
pamqp and then splices the hostile bytes into them (same length, so every frame size stays
right), as a buggy or hostile client in any language could. It waits for the publisher
confirm of each message, so a test knows RabbitMQ accepted it.
"""

from __future__ import annotations

import asyncio
import struct
from urllib.parse import unquote, urlsplit

from pamqp import commands, frame, header
from pamqp.base import Frame
from pamqp.body import ContentBody

CHANNEL = 1


class RawAmqp:
    """One connection and one confirming channel; `publish` sends hand-spliced frames."""

    def __init__(self, url: str) -> None:
        self._url = urlsplit(url)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._frame_max = 131072

    async def __aenter__(self) -> RawAmqp:
        url = self._url
        self._reader, self._writer = await asyncio.open_connection(
            url.hostname or "127.0.0.1", url.port or 5672
        )
        self._writer.write(b"AMQP\x00\x00\x09\x01")
        await self._expect(commands.Connection.Start)
        user, password = unquote(url.username or "guest"), unquote(url.password or "guest")
        self._send(
            0,
            commands.Connection.StartOk(
                client_properties={"product": "agentroster-tests-raw-amqp"},
                mechanism="PLAIN",
                response=f"\0{user}\0{password}",
                locale="en_US",
            ),
        )
        tune = await self._expect(commands.Connection.Tune)
        assert isinstance(tune, commands.Connection.Tune)
        self._frame_max = tune.frame_max or self._frame_max
        self._send(0, commands.Connection.TuneOk(tune.channel_max, self._frame_max, 0))
        vhost = unquote(url.path[1:]) if url.path not in ("", "/") else "/"
        self._send(0, commands.Connection.Open(virtual_host=vhost))
        await self._expect(commands.Connection.OpenOk)
        self._send(CHANNEL, commands.Channel.Open())
        await self._expect(commands.Channel.OpenOk)
        self._send(CHANNEL, commands.Confirm.Select())
        await self._expect(commands.Confirm.SelectOk)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._writer is not None:
            close = commands.Connection.Close(200, "bye", class_id=0, method_id=0)
            self._send(0, close)
            try:
                await asyncio.wait_for(self._expect(commands.Connection.CloseOk), 5)
            finally:
                self._writer.close()

    async def publish(
        self,
        exchange: str,
        routing_key: bytes,
        body: bytes,
        properties: commands.Basic.Properties | None = None,
        *,
        splice: dict[bytes, bytes] | None = None,
        raw_properties: bytes | None = None,
    ) -> None:
        """Publish one message; each `splice` key in the content header becomes its value.

        The routing key is taken as raw bytes. Returns once RabbitMQ confirmed the message;
        raises if it refused it (a nack or a channel error). `raw_properties` (property flags
        and values, already encoded) replaces `properties` for what pamqp cannot even encode.
        """
        assert self._writer is not None
        method = struct.pack(">HHH", 60, 40, 0)  # basic.publish, reserved-1
        method += _short(exchange.encode()) + _short(routing_key) + b"\x00"
        content = frame.marshal(
            header.ContentHeader(
                body_size=len(body), properties=properties or commands.Basic.Properties()
            ),
            CHANNEL,
        )
        if raw_properties is not None:
            payload = struct.pack(">HHQ", 60, 0, len(body)) + raw_properties
            content = struct.pack(">BHI", 2, CHANNEL, len(payload)) + payload + b"\xce"
        for placeholder, hostile in (splice or {}).items():
            assert len(placeholder) == len(hostile), "a splice must keep the frame's size"
            assert content.count(placeholder) == 1, f"{placeholder!r} not once in the header"
            content = content.replace(placeholder, hostile)
        chunk = self._frame_max - 8
        bodies = b"".join(
            frame.marshal(ContentBody(body[i : i + chunk]), CHANNEL)
            for i in range(0, len(body), chunk)
        )
        method_frame = struct.pack(">BHI", 1, CHANNEL, len(method)) + method + b"\xce"
        self._writer.write(method_frame + content + bodies)
        confirm = await self._expect(commands.Basic.Ack, commands.Basic.Nack)
        if isinstance(confirm, commands.Basic.Nack):
            raise AssertionError("RabbitMQ nacked the message")

    def _send(self, channel: int, value: Frame) -> None:
        assert self._writer is not None
        self._writer.write(frame.marshal(value, channel))

    async def _expect(self, *kinds: type[Frame]) -> Frame:
        assert self._reader is not None
        head = await self._reader.readexactly(7)
        _, _, size = struct.unpack(">BHI", head)
        rest = await self._reader.readexactly(size + 1)
        _, _, value = frame.unmarshal(head + rest)
        if isinstance(value, commands.Channel.Close | commands.Connection.Close):
            raise AssertionError(f"RabbitMQ refused: {value.reply_code} {value.reply_text}")
        assert isinstance(value, kinds), f"expected {kinds}, got {value!r}"
        assert isinstance(value, Frame)
        return value


def _short(value: bytes) -> bytes:
    return bytes([len(value)]) + value


def nested_headers(depth: int) -> bytes:
    """Encoded properties: only `headers`, a table nested `depth` deep ({"a": {"a": ...}})."""
    table = struct.pack(">I", 0)
    for _ in range(depth):
        entry = b"\x01aF" + table
        table = struct.pack(">I", len(entry)) + entry
    return struct.pack(">H", 0x2000) + table
