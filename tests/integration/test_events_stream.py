"""`GET /v1/events`: replay after a revision, then live, the same events as the exchange."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from agentroster.client import Announcement
from agentroster.settings import Settings
from tests.helpers import EventCollector, registry_server, serve_api
from tests.integration.agents import a2a_card


@contextlib.asynccontextmanager
async def registry(settings: Settings, **env: str) -> AsyncIterator[httpx.AsyncClient]:
    """`agentroster up` (SSE needs a real server), and a client of its API."""
    async with (
        registry_server(settings, **env) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as client,
    ):
        yield client


async def read_events(lines: AsyncIterator[str], count: int) -> list[dict[str, Any]]:
    """Parse `count` server-sent events (comment lines, the pings, are skipped)."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    async for line in lines:
        if not line:
            if "data" in current:
                events.append(current)
                if len(events) == count:
                    return events
            current = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            current[field] = value.removeprefix(" ")
    raise AssertionError(f"the stream ended after {len(events)} events")


async def test_events_replay_after_a_revision_then_follow_live(
    settings: Settings, events: EventCollector
) -> None:
    """since=0 replays every event; new ones follow; data equals the exchange's bodies."""
    async with registry(settings) as api:
        agents = [
            await Announcement(
                a2a_card(f"sse-{n}"), settings.broker_url, prefix=settings.prefix, ttl_s=60
            ).open()
            for n in range(3)
        ]
        await events.wait_until(lambda evs: len(evs) >= 3)
        async with api.stream("GET", "/v1/events", params={"since": 0}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.aiter_lines()
            replayed = await asyncio.wait_for(read_events(lines, 3), 30)
            await agents[0].close()  # live: after the replay
            (live,) = await asyncio.wait_for(read_events(lines, 1), 30)
        await events.wait_until(lambda evs: len(evs) >= 4)
        for n, sse in enumerate([*replayed, live]):
            amqp = events.events[n]
            assert sse["id"] == str(amqp.revision) == str(n + 1)
            assert sse["event"] == f"agent.{amqp.kind}"
            assert orjson.loads(sse["data"]) == amqp.data
        assert live["event"] == "agent.left"
        # a reconnecting EventSource goes on after its Last-Event-ID, even though it asks the
        # URL it started from (with since=0) again
        for params in ({}, {"since": 0}):
            async with api.stream(
                "GET", "/v1/events", params=params, headers={"Last-Event-ID": "2"}
            ) as response:
                again = await asyncio.wait_for(read_events(response.aiter_lines(), 2), 30)
            assert [e["id"] for e in again] == ["3", "4"]
        for agent in agents[1:]:
            await agent.close()


async def test_asking_for_events_older_than_the_window_is_410(
    settings: Settings, events: EventCollector
) -> None:
    """With a window of 2 published events, since=0 after 4 events is gone: list again."""
    async with registry(settings, AGENTROSTER_EVENTS_WINDOW="2") as api:
        agents = [
            await Announcement(
                a2a_card(f"old-{n}"), settings.broker_url, prefix=settings.prefix, ttl_s=60
            ).open()
            for n in range(4)
        ]
        await events.wait_until(lambda evs: len(evs) >= 4)

        async def trimmed() -> bool:
            response = await api.get("/v1/events", params={"since": 0})
            return response.status_code == 410

        async def until_trimmed() -> None:
            while not await trimmed():  # the relay trims right after it published
                await asyncio.sleep(0.05)

        await asyncio.wait_for(until_trimmed(), 30)
        error = (await api.get("/v1/events", params={"since": 0})).json()["error"]
        assert error["code"] == "events-expired"
        assert error["details"] == {"since": 0, "oldest_kept": 3}
        async with api.stream("GET", "/v1/events", params={"since": 2}) as response:
            assert response.status_code == 200
            kept = await asyncio.wait_for(read_events(response.aiter_lines(), 2), 30)
        assert [e["id"] for e in kept] == ["3", "4"]
        for agent in agents:
            await agent.close()


async def test_a_revision_beyond_the_registrys_is_410(settings: Settings, cleanup: None) -> None:
    """A position the registry never reached (from before Redis lost its data, or from
    another registry) gets 410 at once, never a stream that silently waits for it."""
    async with serve_api(settings) as api:
        for request in (
            {"params": {"since": 7}},
            {"headers": {"Last-Event-ID": "7"}},
            {"params": {"since": 10**30}},
        ):
            response = await api.get("/v1/events", **request)
            assert response.status_code == 410, response.text
            error = response.json()["error"]
            assert error["code"] == "revision-ahead"
            assert error["details"]["revision"] == 0
