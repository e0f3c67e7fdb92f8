"""A TCP proxy that breaks connections on purpose: between a worker (or an agent) and Redis or
RabbitMQ, it can `cut()` (reset every connection with a TCP RST and refuse new ones, as a
crashed server or a firewall would), `hang()` (stop forwarding in both directions: bytes wait,
as in a network partition where TCP retransmits, and flow on when healed), `delay(ms)` (each
chunk late), and `restore()` (heal)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

Chunks = asyncio.Queue[bytes]


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a crashed peer or a firewall reset would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    task: asyncio.Task[Any] | None
    upstream: asyncio.StreamWriter | None = None

    def reset(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                _reset(writer)
        if self.task is not None:
            self.task.cancel()


class TcpProxy:
    """A TCP forwarder to one address that can cut, hang or delay what goes through it."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.mode: Literal["open", "cut", "hang"] = "open"
        self._delay_s = 0.0
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._holding: list[bytes] = []  # what clients sent that a hang holds
        self._held_more = asyncio.Event()

    @classmethod
    async def to(cls, url: str) -> TcpProxy:
        """A started proxy to the host and port of `url`."""
        parts = urlsplit(url)
        proxy = cls(parts.hostname or "127.0.0.1", parts.port or _default_port(parts.scheme))
        proxy._server = await asyncio.start_server(proxy._serve, "127.0.0.1", 0)
        proxy.port = proxy._server.sockets[0].getsockname()[1]
        return proxy

    def url(self, url: str) -> str:
        """`url` with its host and port replaced by the proxy's (user, path and query kept)."""
        parts = urlsplit(url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{self.port}" if userinfo else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    @property
    def connections(self) -> int:
        """Connections currently forwarded (or waiting to be)."""
        return len(self._links)

    def cut(self) -> None:
        """Reset every connection; refuse (reset) new ones until `restore()`."""
        self.mode = "cut"
        for link in list(self._links):
            link.reset()
        self._links.clear()

    def hang(self) -> None:
        """Stop forwarding in both directions and hold new connections: bytes wait, as in a
        network partition (TCP retransmits), and flow again on `restore()`."""
        self.mode = "hang"
        self._flowing.clear()

    def delay(self, ms: float) -> None:
        """Forward every chunk `ms` late (0: no delay)."""
        self._delay_s = ms / 1000

    def restore(self) -> None:
        """Forward again (new connections are accepted; held bytes flow on)."""
        self.mode = "open"
        self._holding.clear()
        self._flowing.set()

    async def held(self, *markers: bytes, timeout: float = 30.0) -> None:
        """Wait until `hang()` holds bytes a client sent that contain one of `markers` (e.g. the
        arguments of a script call: it is in flight, and stays so until `restore()`); no
        marker: any bytes."""
        wanted = markers or (b"",)

        async def seen() -> None:
            while not any(m in chunk for chunk in self._holding for m in wanted):
                self._held_more.clear()
                await self._held_more.wait()

        try:
            await asyncio.wait_for(seen(), timeout)
        except TimeoutError:
            what = [chunk[:60] for chunk in self._holding[:5]]
            raise AssertionError(
                f"the hung proxy never held {wanted!r} from a client; it holds {what!r}"
            ) from None

    async def close(self) -> None:
        """Stop listening and reset what is still connected."""
        if self._server is not None:
            self._server.close()
        self.cut()
        self._flowing.set()
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "cut":
            _reset(writer)
            return
        link = _Link(writer, asyncio.current_task())
        self._links.add(link)
        up: Chunks = asyncio.Queue(maxsize=256)  # at most 16 MiB held per direction
        down: Chunks = asyncio.Queue(maxsize=256)
        tasks = [asyncio.create_task(self._read(reader, up, from_client=True))]
        try:
            # a connection made during a hang is accepted, its bytes held, like the others'
            await self._flowing.wait()
            up_reader, link.upstream = await asyncio.open_connection(*self.target)
            tasks.append(asyncio.create_task(self._read(up_reader, down, from_client=False)))
            writers = {
                asyncio.create_task(self._write(up, link.upstream)),
                asyncio.create_task(self._write(down, writer)),
            }
            tasks += writers
            await asyncio.wait(writers, return_when=asyncio.FIRST_COMPLETED)
        except (OSError, asyncio.CancelledError):
            pass  # reset by cut(), or the target refused: the client sees its connection end
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._links.discard(link)
            for w in (writer, link.upstream):
                if w is not None and not w.is_closing():
                    w.close()

    async def _read(self, src: asyncio.StreamReader, chunks: Chunks, *, from_client: bool) -> None:
        """Read one direction into `chunks` (b"" at the end). Reading goes on during a hang, as
        the kernel's buffers would take the bytes, so what a client sent is held whole."""
        with contextlib.suppress(OSError):
            while data := await src.read(65536):
                if from_client and not self._flowing.is_set():
                    self._holding.append(data)
                    self._held_more.set()
                await chunks.put(data)
        await chunks.put(b"")

    async def _write(self, chunks: Chunks, dst: asyncio.StreamWriter) -> None:
        """Write one direction while not hung (each chunk late by the delay), until the end."""
        with contextlib.suppress(OSError):
            while data := await chunks.get():
                await self._flowing.wait()
                if self._delay_s:
                    await asyncio.sleep(self._delay_s)
                dst.write(data)
                await dst.drain()


def _default_port(scheme: str) -> int:
    return {"redis": 6379, "amqp": 5672}.get(scheme, 0)
