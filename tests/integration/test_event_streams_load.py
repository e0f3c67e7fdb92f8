"""Many open event streams, some that never read, beside a normal client, on a real server.

The streams are plain sockets (one HTTP/1.1 request each, cheap enough for a thousand); the
normal client uses httpx. What must hold: the normal client's `GET /v1/agents`, `/readyz` and
its own stream get their answers and events; the API holds a handful of Redis connections
whatever the number of streams (one follower); past the cap a stream is refused with 503,
`Retry-After` and the error shape.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import orjson
from redis.asyncio import Redis

from agentroster.client import Announcement
from agentroster.settings import Settings
from tests.helpers import EventCollector
from tests.integration.agents import a2a_card
from tests.integration.test_events_stream import read_events, registry


class RawStream:
    """One `GET /v1/events` over a socket of its own; reads only when asked to."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.status = 0

    @classmethod
    async def open(cls, base_url: str, query: str = "") -> RawStream:
        url = urlsplit(base_url)
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        writer.write(
            f"GET /v1/events{query} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        stream = cls(reader, writer)
        head = await reader.readuntil(b"\r\n\r\n")
        stream.status = int(head.split(b" ", 2)[1])
        return stream

    async def until(self, needle: bytes) -> None:
        """Read until `needle` went by."""
        seen = b""
        while needle not in seen:
            chunk = await self.reader.read(65536)
            if not chunk:
                raise AssertionError("the stream ended")
            seen = seen[-len(needle) :] + chunk

    def close(self) -> None:
        self.writer.close()


@contextlib.asynccontextmanager
async def raw_streams(base_url: str, count: int) -> AsyncIterator[list[RawStream]]:
    streams: list[RawStream] = []
    try:
        for start in range(0, count, 100):  # in batches: the listen backlog stays small
            batch = min(100, count - start)
            streams += await asyncio.gather(*(RawStream.open(base_url) for _ in range(batch)))
        yield streams
    finally:
        for stream in streams:
            stream.close()
        for stream in streams:
            with contextlib.suppress(OSError):
                await stream.writer.wait_closed()


async def api_redis_connections(settings: Settings) -> int:
    """Redis connections the API holds now (it names them `<prefix>-api`)."""
    redis = Redis.from_url(settings.redis_url)
    try:
        clients = await redis.client_list()
    finally:
        await redis.aclose()
    return sum(1 for c in clients if c.get("name") == f"{settings.prefix}-api")


async def test_a_thousand_streams_share_one_reader_and_the_api_keeps_answering(
    settings: Settings, events: EventCollector
) -> None:
    """1,000 streams (20 of them never read) plus a normal client's (the cap is 1,001): every
    answer stays the
    same, the normal stream and the reading streams get the new event, and the API's Redis
    connections stay a handful."""
    async with registry(settings, AGENTROSTER_SSE_MAX_STREAMS="1001") as api:
        first = await Announcement(
            a2a_card("steady"), settings.broker_url, prefix=settings.prefix, ttl_s=60
        ).open()
        await events.wait_until(lambda evs: len(evs) >= 1)
        agents_before = (await api.get("/v1/agents")).json()
        assert (await api.get("/readyz")).status_code == 200
        async with raw_streams(api.base_url.__str__(), 1000) as streams:
            assert {s.status for s in streams} == {200}
            readers, idle = streams[:980], streams[980:]
            assert len(idle) == 20
            connections = await api_redis_connections(settings)
            # one follower, a few bounded replay reads, the probes: never one per stream
            assert connections < 20, connections
            agents = await api.get("/v1/agents")
            assert agents.status_code == 200
            assert agents.json() == agents_before
            ready = await api.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["ready"] is True
            async with api.stream(
                "GET", "/v1/events", params={"since": agents_before["revision"]}
            ) as own:
                assert own.status_code == 200
                second = await Announcement(
                    a2a_card("newcomer"), settings.broker_url, prefix=settings.prefix, ttl_s=60
                ).open()
                (event,) = await asyncio.wait_for(read_events(own.aiter_lines(), 1), 30)
            assert event["event"] == "agent.joined"
            assert orjson.loads(event["data"])["agent_id"] == "newcomer"
            await asyncio.wait_for(
                asyncio.gather(*(s.until(b'"agent_id":"newcomer"') for s in readers)), 30
            )
            assert await api_redis_connections(settings) < 20
        await second.close()
        await first.close()


async def test_over_the_cap_a_stream_is_refused_with_503_and_retry_after(
    settings: Settings, events: EventCollector
) -> None:
    """A cap of 3: the fourth stream gets 503 too-many-streams with Retry-After while the
    three and every other route keep working; a closed stream frees its slot."""
    async with (
        registry(settings, AGENTROSTER_SSE_MAX_STREAMS="3") as api,
        raw_streams(str(api.base_url), 3) as streams,
    ):
        refused = await api.get("/v1/events")
        assert refused.status_code == 503
        assert int(refused.headers["retry-after"]) > 0
        assert refused.headers["x-content-type-options"] == "nosniff"
        error = refused.json()["error"]
        assert error["code"] == "too-many-streams"
        assert error["details"] == {"max_streams": 3}
        assert (await api.get("/v1/agents")).status_code == 200
        assert (await api.get("/readyz")).status_code == 200
        agent = await Announcement(
            a2a_card("capped"), settings.broker_url, prefix=settings.prefix, ttl_s=60
        ).open()
        await asyncio.wait_for(
            asyncio.gather(*(s.until(b'"agent_id":"capped"') for s in streams)), 30
        )
        streams[0].close()

        async def slot_freed() -> None:
            # the server notices the closed socket on its own schedule: ask until it did
            while True:
                async with api.stream("GET", "/v1/events") as response:
                    if response.status_code == 200:
                        return
                await asyncio.sleep(0.05)

        await asyncio.wait_for(slot_freed(), 30)
        await agent.close()
