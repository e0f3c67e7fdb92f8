"""A tiny HTTP/1.1 server on 127.0.0.1 for card verification tests: it records every request
and answers from a table of routes, one connection per request (the fetcher keeps none alive).

    async with CardServer() as server:
        server.routes["/.well-known/agent-card.json"] = Reply.json(card)
        server.url               # http://127.0.0.1:<port>
        server.requests          # what arrived: method, path, headers
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass
class Request:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Reply:
    """What the server answers on one path."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    #: Send the headers and this many body bytes, then wait for this event before the rest.
    hold_after: int | None = None
    release: asyncio.Event | None = None
    #: No Content-Length: the body is streamed until the connection closes.
    stream: bool = False

    @classmethod
    def json(cls, value: Any, headers: dict[str, str] | None = None, **options: Any) -> Reply:
        """A JSON answer."""
        headers = {"Content-Type": "application/json", **(headers or {})}
        return cls(body=orjson.dumps(value), headers=headers, **options)

    @classmethod
    def redirect(
        cls, location: str, status: int = 302, headers: dict[str, str] | None = None
    ) -> Reply:
        """A redirect to `location`."""
        return cls(status=status, headers={"Location": location, **(headers or {})})


class CardServer:
    """See the module docstring."""

    def __init__(self) -> None:
        self.routes: dict[str, Reply | Callable[[Request], Reply]] = {}
        self.requests: list[Request] = []
        self.received = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The port it listens on."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        """Its base URL, without a trailing slash."""
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> CardServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._handlers):
            task.cancel()
        for task in list(self._handlers):
            with contextlib.suppress(BaseException):
                await task
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            request = Request(method, path, headers)
            self.requests.append(request)
            self.received.set()
            route = self.routes.get(path, Reply(status=404))
            reply = route(request) if callable(route) else route
            await self._answer(writer, reply)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._handlers.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    async def _answer(writer: asyncio.StreamWriter, reply: Reply) -> None:
        headers = dict(reply.headers)
        if not reply.stream:
            headers["Content-Length"] = str(len(reply.body))
        headers["Connection"] = "close"
        head = f"HTTP/1.1 {reply.status} X\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()
        )
        writer.write(head.encode("latin-1") + b"\r\n")
        if reply.hold_after is not None and reply.release is not None:
            writer.write(reply.body[: reply.hold_after])
            await writer.drain()
            await reply.release.wait()
            writer.write(reply.body[reply.hold_after :])
        else:
            writer.write(reply.body)
        await writer.drain()
