"""`Roster` against a real registry: cuts, an API restart, a Redis data loss; `agentroster watch`.

The Roster talks to an `agentroster api` process through a TCP proxy that resets its
connections on demand (tests/faults/proxy.py); the worker runs in the test's process. What the
registry published is read by a plain AMQP subscriber (the `events` fixture), independent of
the SSE path the Roster uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from agentroster.client import Change, Roster
from agentroster.client.models import Agent
from agentroster.settings import Settings
from agentroster.worker import Worker
from tests.faults.proxy import TcpProxy
from tests.helpers import (
    EventCollector,
    RawPublisher,
    RunningProgram,
    cleanup_redis,
    free_port,
    registry_server,
)
from tests.integration.agents import a2a_card

#: Guards against a hang only; nothing waits this long when things work.
TIMEOUT_S = 60.0


@contextlib.asynccontextmanager
async def api_process(settings: Settings, port: int) -> AsyncIterator[str]:
    """`python -m agentroster api` on `port` until the block ends (SIGTERM, then wait)."""
    env = {
        **os.environ,
        "AGENTROSTER_BROKER_URL": settings.broker_url,
        "AGENTROSTER_REDIS_URL": settings.redis_url,
        "AGENTROSTER_PREFIX": settings.prefix,
    }
    argv = (sys.executable, "-m", "agentroster", "api", "--port", str(port))
    async with RunningProgram.run(*argv, env=env) as program:
        await program.wait_for_line(lambda line: "Uvicorn running" in line)
        drain = asyncio.create_task(program.process.communicate())
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            program.process.terminate()
            await asyncio.wait_for(drain, TIMEOUT_S)


async def listing(url: str) -> dict[str, Agent]:
    """Every agent of `GET /v1/agents?status=all`, every page."""
    found: dict[str, Agent] = {}
    cursor: str | None = None
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        while True:
            params: dict[str, Any] = {"status": "all", "limit": 1000}
            if cursor:
                params["cursor"] = cursor
            page = (await http.get("/v1/agents", params=params)).raise_for_status().json()
            found |= {a["agent_id"]: Agent.model_validate(a) for a in page["agents"]}
            if not (cursor := page["next_cursor"]):
                return found


def state(agent: Agent) -> dict[str, Any]:
    """What a Roster keeps current from events (not the lease and seen times: events do not
    carry them)."""
    return agent.model_dump(
        include={"agent_id", "status", "revision", "live_instances", "card_digest", "agent"}
    )


class Seen:
    """The changes a Roster reported, and a way to wait for a condition on them."""

    def __init__(self, roster: Roster) -> None:
        self.changes: list[Change] = []
        self._more = asyncio.Event()
        roster.on_change(self._add)

    def _add(self, change: Change) -> None:
        self.changes.append(change)
        self._more.set()

    async def until(self, predicate: Callable[[list[Change]], bool]) -> None:
        async def wait() -> None:
            while not predicate(self.changes):
                self._more.clear()
                await self._more.wait()

        await asyncio.wait_for(wait(), TIMEOUT_S)


def at_least(count: int) -> Callable[[list[Any]], bool]:
    """A condition on a list: it has `count` items or more."""
    return lambda items: len(items) >= count


def register(agent_id: str, seq: int, version: str = "1.0.0") -> tuple[str, dict[str, Any]]:
    """A registration command (another `version`: another card, so an `updated`)."""
    body = {
        "agent_id": agent_id,
        "instance_id": "i",
        "seq": seq,
        "ttl_s": 600,
        "card": a2a_card(agent_id, skills=("echo", f"s{hash(agent_id) % 7}"), version=version),
        "sent_at": datetime.now(UTC).isoformat(),
    }
    return f"agent.{agent_id}.register", body


def deregister(agent_id: str, seq: int) -> tuple[str, dict[str, Any]]:
    """A deregistration command."""
    body = {"agent_id": agent_id, "instance_id": "i", "seq": seq, "sent_at": _now()}
    return f"agent.{agent_id}.deregister", body


def _now() -> str:
    return datetime.now(UTC).isoformat()


async def test_a_roster_follows_500_agents_across_cuts_and_an_api_restart(
    settings: Settings, worker: Worker, events: EventCollector
) -> None:
    """500 agents join, change and half leave, in batches; the Roster's connection is cut 5
    times mid-stream and the API restarts once. At the end its copy equals the registry's list
    and the changes it reported are exactly the published events, in order."""
    port = free_port()
    proxy = await TcpProxy.to(f"http://127.0.0.1:{port}")
    ids = [f"r{n:03d}" for n in range(500)]
    batches = [ids[n : n + 100] for n in range(0, 500, 100)]
    api = api_process(settings, port)
    url = await api.__aenter__()
    try:
        roster = Roster(proxy.url(url), backoff_max_s=0.5, sync_timeout=TIMEOUT_S)
        seen = Seen(roster)
        async with roster, RawPublisher(settings.broker_url, settings.prefix) as raw:
            published = 0
            for round_, batch in enumerate(batches):
                commands = [register(a, 1) for a in batch]
                commands += [register(a, 2, version="2.0.0") for a in batch]
                commands += [deregister(a, 3) for a in batch[::2]]
                for key, body in commands:
                    await raw.send(key, body)
                target = published + len(commands)
                # mid-stream: part of this round is applied, the rest still to come
                await seen.until(at_least(published + 50))
                proxy.cut()
                proxy.restore()
                if round_ == 2:  # the API restarts (on the same port) while events flow
                    await api.__aexit__(None, None, None)
                    api = api_process(settings, port)
                    url = await api.__aenter__()
                published = target
                await events.wait_until(at_least(target), timeout=TIMEOUT_S)
            await seen.until(lambda changes: len(changes) >= published)
            registry = await listing(url)
            copy = {a.agent_id: a for a in roster.agents()}
            reconnects = roster.reconnects
            lists = roster.lists
    finally:
        await api.__aexit__(None, None, None)
        await proxy.close()

    assert len(registry) == 500
    assert {a: state(agent) for a, agent in copy.items()} == {
        a: state(agent) for a, agent in registry.items()
    }
    amqp = sorted({e.revision: (e.kind, e.agent_id, e.revision) for e in events.events}.items())
    assert [rev for rev, _ in amqp] == list(range(1, published + 1))  # the registry's own
    assert [(c.kind, c.agent_id, c.revision) for c in seen.changes] == [e for _, e in amqp]
    assert not any(c.relisted for c in seen.changes)
    assert lists == 1  # resumed each time: nothing had to be listed again
    assert reconnects >= 6  # 5 cuts and the restart


async def test_a_roster_lists_again_after_redis_lost_the_data(
    settings: Settings, worker: Worker, events: EventCollector
) -> None:
    """Redis loses the registry's keys (as a restart without persistence would); half the
    agents register again. The Roster lists again and ends equal to the registry."""
    ids = [f"loss{n:02d}" for n in range(20)]
    async with (
        api_process(settings, free_port()) as url,
        Roster(url, backoff_max_s=0.5, sync_timeout=TIMEOUT_S) as roster,
        RawPublisher(settings.broker_url, settings.prefix) as raw,
    ):
        for agent_id in ids:
            await raw.send(*register(agent_id, 1))
        for agent_id in ids:
            await roster.wait_for(agent_id, timeout=TIMEOUT_S)
        before = roster.revision

        await cleanup_redis(settings.redis_url, settings.prefix)
        back = ids[::2]
        for agent_id in back:  # their periodic full registration
            await raw.send(*register(agent_id, 2))
        await events.wait_until(
            lambda evs: sum(e.data["reason"] == "recovered" for e in evs) >= len(back),
            timeout=TIMEOUT_S,
        )

        async def converged() -> None:
            while set(a.agent_id for a in roster.agents()) != set(back):
                await asyncio.sleep(0.05)  # the re-list has no event of its own to await

        await asyncio.wait_for(converged(), TIMEOUT_S)
        registry = await listing(url)
        assert {a.agent_id: state(a) for a in roster.agents()} == {
            a: state(agent) for a, agent in registry.items()
        }
        assert roster.lists >= 2
        assert roster.revision > before


async def test_watch_prints_a_join_and_a_leave_as_json_lines(
    settings: Settings, cleanup: None
) -> None:
    """`agentroster watch --json` against a running registry prints the join and the leave."""
    async with registry_server(settings) as server:
        argv = (sys.executable, "-m", "agentroster", "watch", "--json", "--url", server.url)
        async with (
            RunningProgram.run(*argv, env=dict(os.environ)) as watch,
            RawPublisher(settings.broker_url, settings.prefix) as raw,
        ):
            await watch.wait_for_line(lambda line: line.startswith("synced: 0 agents"))
            await raw.send(*register("watched", 1))
            joined = orjson.loads(await watch.wait_for_line(lambda line: line.startswith("{")))
            await raw.send(*deregister("watched", 2))
            left = orjson.loads(await watch.wait_for_line(lambda line: line.startswith("{")))
            assert await watch.stop() == 0
    assert (joined["kind"], joined["agent_id"], joined["status"]) == ("joined", "watched", "live")
    assert joined["agent"]["agent"]["name"] == "watched"
    assert (left["kind"], left["status"], left["reason"]) == ("left", "offline", "deregistered")
    assert left["revision"] == joined["revision"] + 1


async def test_a_roster_follows_the_event_log_stream_across_broker_cuts(
    settings: Settings, worker: Worker, events: EventCollector
) -> None:
    """With `events_from`, the events come from the event log stream; its broker connection
    is cut 3 times mid-stream: the Roster resumes from its stream offset, ends equal to the
    registry, and reported each published event once, in order."""
    broker = await TcpProxy.to(settings.broker_url)
    ids = [f"s{n:03d}" for n in range(150)]
    try:
        async with (
            api_process(settings, free_port()) as url,
            RawPublisher(settings.broker_url, settings.prefix) as raw,
        ):
            roster = Roster(
                url,
                events_from=broker.url(settings.broker_url),
                prefix=settings.prefix,
                backoff_max_s=0.5,
                sync_timeout=TIMEOUT_S,
            )
            seen = Seen(roster)
            async with roster:
                published = 0
                for batch in (ids[:50], ids[50:100], ids[100:]):
                    commands = [register(a, 1) for a in batch]
                    commands += [deregister(a, 2) for a in batch[::2]]
                    for key, body in commands:
                        await raw.send(key, body)
                    await seen.until(at_least(published + 20))
                    broker.cut()
                    broker.restore()
                    published += len(commands)
                await events.wait_until(at_least(published), timeout=TIMEOUT_S)
                await seen.until(at_least(published))
                registry = await listing(url)
                copy = {a.agent_id: state(a) for a in roster.agents()}
                assert roster.lists == 1
                assert roster.reconnects >= 3
    finally:
        await broker.close()
    assert copy == {a: state(agent) for a, agent in registry.items()}
    amqp = sorted({e.revision: (e.kind, e.agent_id, e.revision) for e in events.events}.items())
    assert [(c.kind, c.agent_id, c.revision) for c in seen.changes] == [e for _, e in amqp]
