"""What the load is sent to: the API over HTTP (httpx or bare streams), or Redis directly.

Each target is one client; each call returns its own latency in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from typing import Protocol

import httpx
import orjson
from redis.asyncio import Redis

from agentroster.registry.terms import TEXT_BUDGET, Filters, skill_term
from agentroster.store.keys import Keys
from agentroster.store.reader import MAX_INSTANCES, SCAN_BUDGET, RegistryReader
from agentroster.store.scripts import QUERY, READ_AGENT

LIMIT = 100  # agents per page, every list query
CHECK_EVERY = 16  # each client decodes one page in this many in full, to check page_shape


class Target(Protocol):
    """One client's way to run a query; each call returns its own latency in seconds."""

    async def page(
        self, skills: tuple[str, ...], cursor: str | None
    ) -> tuple[int, str | None, float]:
        """(agents on the page, next cursor, seconds) of a live-agent query."""
        ...

    async def agent(self, agent_id: str) -> tuple[bool, float]:
        """(found, seconds) of one agent's read."""
        ...


def page_shape(body: bytes) -> tuple[int, str | None]:
    """(agents, next_cursor) of a `GET /v1/agents` body, without decoding it.

    A page of 100 agents is about 150 KB of JSON, and `orjson.loads` takes about 1.9 ms of the
    client's CPU for it, on the cores the API needs too. Each agent has one `"agent_id"` key
    (the benchmark's cards contain no such text); `next_cursor` is the body's last field.
    """
    tail = body[body.rindex(b'"next_cursor":') + len(b'"next_cursor":') :]
    cursor = None if tail.startswith(b"null") else tail[1 : tail.index(b'"', 1)].decode()
    return body.count(b'"agent_id":'), cursor


class HttpTarget:
    """One client: an httpx.AsyncClient with one keep-alive HTTP/1.1 connection."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.AsyncClient(
            base_url=base_url,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=30.0,
        )
        self.pages = 0

    async def page(
        self, skills: tuple[str, ...], cursor: str | None
    ) -> tuple[int, str | None, float]:
        """One page of live agents holding `skills`, from `cursor`."""
        params: list[tuple[str, str | int | float | bool | None]] = [("skill", s) for s in skills]
        params.append(("limit", LIMIT))
        if cursor is not None:
            params.append(("cursor", cursor))
        started = time.perf_counter()
        response = await self.client.get("/v1/agents", params=params)
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"GET /v1/agents: {response.status_code} {response.text[:300]}")
        count, next_cursor = page_shape(response.content)
        self.pages += 1
        if self.pages % CHECK_EVERY == 0:  # now and then, check the shortcut with a decode
            body = orjson.loads(response.content)
            if (len(body["agents"]), body["next_cursor"]) != (count, next_cursor):
                raise RuntimeError(f"page_shape misread a page: {count}, {next_cursor!r}")
        return count, next_cursor, seconds

    async def agent(self, agent_id: str) -> tuple[bool, float]:
        """One agent's detail."""
        started = time.perf_counter()
        response = await self.client.get(f"/v1/agents/{agent_id}")
        seconds = time.perf_counter() - started
        if response.status_code not in (200, 404):
            raise RuntimeError(f"GET /v1/agents/{agent_id}: {response.status_code}")
        return response.status_code == 200 and b'"agent_id"' in response.content, seconds

    async def aclose(self) -> None:
        """Close the connection."""
        await self.client.aclose()


class BareHttpTarget:
    """One client: one keep-alive HTTP/1.1 connection on asyncio streams, and nothing else.

    The request is written as bytes and the answer read by its `Content-Length` (the API sends
    one on every answer). It costs the benchmark's process about a tenth of httpx's CPU per
    request, on the two cores the API needs too: `--client bare` shows how much of the API's
    latency is the load generator's.
    """

    def __init__(self, base_url: str) -> None:
        url = httpx.URL(base_url)
        self.host, self.port = url.host, url.port or 80
        self.head = f"Host: {self.host}:{self.port}\r\n\r\n".encode()
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.pages = 0

    async def get(self, target: str) -> tuple[int, bytes]:
        """(status, body) of `GET target`; the connection is opened on first use.

        The server closes a connection that stayed idle (uvicorn: after 5 s, e.g. while
        another path is measured); as httpx does, the request is then sent on a new one.
        """
        request = b"GET " + target.encode() + b" HTTP/1.1\r\n" + self.head
        for attempt in (1, 2):
            if self.streams is None:
                self.streams = await asyncio.open_connection(self.host, self.port)
            reader, writer = self.streams
            writer.write(request)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                break
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                await self.aclose()
                if attempt == 2 or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                    raise
        length = _CONTENT_LENGTH.search(head)
        if length is None:
            raise RuntimeError(f"an answer without Content-Length: {head[:300]!r}")
        return int(head[9:12]), await reader.readexactly(int(length[1]))

    async def page(
        self, skills: tuple[str, ...], cursor: str | None
    ) -> tuple[int, str | None, float]:
        """One page of live agents holding `skills`, from `cursor`."""
        query = [f"skill={s}" for s in skills]  # skill ids and cursors need no escaping
        query.append(f"limit={LIMIT}")
        if cursor is not None:
            query.append(f"cursor={cursor}")
        started = time.perf_counter()
        status, body = await self.get("/v1/agents?" + "&".join(query))
        seconds = time.perf_counter() - started
        if status != 200:
            raise RuntimeError(f"GET /v1/agents: {status} {body[:300]!r}")
        count, next_cursor = page_shape(body)
        self.pages += 1
        if self.pages % CHECK_EVERY == 0:  # now and then, check the shortcut with a decode
            decoded = orjson.loads(body)
            if (len(decoded["agents"]), decoded["next_cursor"]) != (count, next_cursor):
                raise RuntimeError(f"page_shape misread a page: {count}, {next_cursor!r}")
        return count, next_cursor, seconds

    async def agent(self, agent_id: str) -> tuple[bool, float]:
        """One agent's detail."""
        started = time.perf_counter()
        status, body = await self.get(f"/v1/agents/{agent_id}")
        seconds = time.perf_counter() - started
        if status not in (200, 404):
            raise RuntimeError(f"GET /v1/agents/{agent_id}: {status}")
        return status == 200 and b'"agent_id"' in body, seconds

    async def aclose(self) -> None:
        """Close the connection, if open."""
        if self.streams is not None:
            self.streams[1].close()
            with contextlib.suppress(OSError):
                await self.streams[1].wait_closed()
            self.streams = None


_CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")

HTTP_CLIENTS: dict[str, type[HttpTarget | BareHttpTarget]] = {
    "httpx": HttpTarget,
    "bare": BareHttpTarget,
}


class RawTarget:
    """The same Redis reads as the API, with nothing around them: EVALSHA, then a pipeline."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.keys = Keys(prefix)
        self.agent_key = self.keys.agent("").encode()
        self.instances_key = self.keys.instances("").encode()
        self.live = self.keys.status("live")
        self.query_sha = ""
        self.read_sha = ""

    async def load(self) -> None:
        """Load both scripts into Redis (their SHAs are used after)."""
        self.query_sha = await self.redis.script_load(QUERY.source())
        self.read_sha = await self.redis.script_load(READ_AGENT.source())

    async def page(
        self, skills: tuple[str, ...], cursor: str | None
    ) -> tuple[int, str | None, float]:
        """query.lua for one page of live agents holding `skills`."""
        sets = [self.live, *(self.keys.index(skill_term(s)) for s in skills)]
        started = time.perf_counter()
        reply = await self.redis.evalsha(
            self.query_sha,
            1,
            self.keys.revision,
            self.keys.base,
            cursor or "",
            LIMIT,
            SCAN_BUDGET,
            "",
            TEXT_BUDGET,
            *sets,
        )
        # the script returns the page's summaries itself: id, fields, live count per agent
        count = (len(reply) - 2) // 3
        seconds = time.perf_counter() - started
        return count, reply[1].decode() or None, seconds

    async def agent(self, agent_id: str) -> tuple[bool, float]:
        """The read-agents script for this one agent (a call per read: the API merges its
        concurrent reads into one call, the ceiling does not)."""
        started = time.perf_counter()
        (reply,) = await self.redis.evalsha(
            self.read_sha,
            1,
            self.keys.agent(agent_id),
            self.keys.base,
            MAX_INSTANCES,
            agent_id,
        )
        seconds = time.perf_counter() - started
        return reply[1][0] is not None, seconds  # the status field of the summary


class ReaderTarget:
    """What the API's routes call: `RegistryReader.list_agents` and `get_agent`."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.reader = RegistryReader(redis, prefix)

    async def page(
        self, skills: tuple[str, ...], cursor: str | None
    ) -> tuple[int, str | None, float]:
        """`RegistryReader.list_agents` for one page of live agents holding `skills`."""
        started = time.perf_counter()
        page = await self.reader.list_agents("live", LIMIT, cursor, Filters(skills=skills))
        seconds = time.perf_counter() - started
        return len(page.agents), page.next_cursor, seconds

    async def agent(self, agent_id: str) -> tuple[bool, float]:
        """`RegistryReader.get_agent`."""
        started = time.perf_counter()
        detail = await self.reader.get_agent(agent_id)
        seconds = time.perf_counter() - started
        return detail is not None, seconds
