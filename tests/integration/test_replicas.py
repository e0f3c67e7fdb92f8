"""Several worker processes: transitions exactly once; a killed worker loses nothing."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from agentroster.client import Beacon
from agentroster.contracts import card_digest
from agentroster.settings import Settings
from agentroster.store.keys import Keys
from agentroster.store.outbox import Outbox
from tests.helpers import EventCollector, RawPublisher, WorkerProcess
from tests.integration.agents import a2a_card


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 60) -> None:
    """Poll a condition on the registry's state (the timeout only guards against a hang)."""

    async def poll() -> None:
        while not await check():
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"never reached: {what}") from None


async def test_three_workers_report_every_transition_exactly_once(
    settings: Settings, events: EventCollector
) -> None:
    """Test 6: 3 workers racing on 200 agents' joins, heartbeats, expiries and leaves."""
    workers = [await WorkerProcess(settings, f"w{n}").start() for n in range(3)]
    try:
        beacons = [
            Beacon(
                a2a_card(f"busy-{n:03d}"),
                settings.broker_url,
                prefix=settings.prefix,
                interval_s=0.2,
                ttl_s=3.0,  # 15 beats: a loaded CI machine must not cause false expiries
                handle_signals=False,
            )
            for n in range(200)
        ]
        await asyncio.gather(*(b.open() for b in beacons))
        await events.wait_until(lambda evs: len(evs) >= 200)
        # every agent heartbeats a few times, across the three workers
        redis = Redis.from_url(settings.redis_url)
        keys = Keys(settings.prefix)

        async def beaten() -> bool:
            async with redis.pipeline(transaction=False) as pipe:
                for b in beacons:
                    pipe.hget(keys.instance(b.agent_id, b.instance_id), "seq")
                return all(int(seq or 0) >= 4 for seq in await pipe.execute())

        try:
            await eventually(beaten, "three heartbeats from every agent")
        finally:
            await redis.aclose()
        graceful, crashed = beacons[:100], beacons[100:]
        for b in crashed:  # stop beating and vanish without a word, as a crash would
            assert b._loop_task is not None
            b._loop_task.cancel()
            await b._publisher.close()
        await asyncio.gather(*(b.close() for b in graceful))
        await events.wait_until(lambda evs: len(evs) >= 400)
    finally:
        for w in workers:
            await w.stop()
    per_agent = Counter((e.agent_id, e.kind) for e in events.events)
    assert all(per_agent[(b.agent_id, "joined")] == 1 for b in beacons)
    assert all(per_agent[(b.agent_id, "left")] == 1 for b in beacons)
    assert {e.agent_id for e in events.of("left", "expired")} == {b.agent_id for b in crashed}
    assert {e.agent_id for e in events.of("left", "deregistered")} == {b.agent_id for b in graceful}
    assert sorted(e.revision for e in events.events) == list(range(1, 401))


async def test_kill_minus_nine_mid_stream_loses_no_command_and_no_event(
    settings: Settings, events: EventCollector
) -> None:
    """Test 7: kill -9 of the worker while 10,000 heartbeats are in flight, then a restart."""
    now = datetime.now(UTC).isoformat()
    agents = [f"steady-{n:03d}" for n in range(500)]
    newcomers = [f"late-{n:03d}" for n in range(200)]

    def register(agent: str, seq: int) -> dict[str, Any]:
        return {
            "agent_id": agent,
            "instance_id": "i",
            "seq": seq,
            "ttl_s": 60,
            "card": a2a_card(agent),
            "sent_at": now,
        }

    def heartbeat(agent: str, seq: int) -> dict[str, Any]:
        return {
            "agent_id": agent,
            "instance_id": "i",
            "seq": seq,
            "ttl_s": 60,
            "card_digest": card_digest(a2a_card(agent)),
            "sent_at": now,
        }

    first = await WorkerProcess(settings, "first").start()
    second: WorkerProcess | None = None
    try:
        async with RawPublisher(settings.broker_url, settings.prefix) as raw:
            await asyncio.gather(*(raw.send(f"agent.{a}.register", register(a, 1)) for a in agents))
            await events.wait_until(lambda evs: len(evs) >= len(agents))
            # 20 rounds of heartbeats (10,000), newcomers registering in the middle
            for seq in range(2, 22):
                await asyncio.gather(
                    *(raw.send(f"agent.{a}.heartbeat", heartbeat(a, seq)) for a in agents)
                )
                if seq == 11:
                    first.kill()
                    await asyncio.gather(
                        *(raw.send(f"agent.{a}.register", register(a, 1)) for a in newcomers)
                    )
            second = await WorkerProcess(settings, "second").start()
            keys = Keys(settings.prefix)
            redis = Redis.from_url(settings.redis_url)
            try:

                async def all_applied() -> bool:
                    async with redis.pipeline(transaction=False) as pipe:
                        for a in agents:
                            pipe.hget(keys.instance(a, "i"), "seq")
                        seqs = await pipe.execute()
                    return all(s == b"21" for s in seqs) and await redis.zcard(keys.agents) == 700

                await eventually(all_applied, "every heartbeat and registration applied")
                await events.wait_until(lambda evs: len({e.agent_id for e in evs}) >= 700)
                outbox = Outbox(redis, settings.prefix)
                await eventually(lambda: _empty(outbox.backlog()), "outbox relayed")
            finally:
                await redis.aclose()
    finally:
        first.kill()
        if second is not None:
            await second.stop()
    assert {e.agent_id for e in events.of("joined")} == set(agents + newcomers)
    assert events.of("left") == []  # no false death
    # at least once: a re-published event carries the same id and revision
    by_id: dict[str, set[tuple[str, int]]] = {}
    for e in events.events:
        assert e.message_id is not None
        by_id.setdefault(e.message_id, set()).add((e.agent_id, e.revision))
    assert all(len(v) == 1 for v in by_id.values())
    assert len(by_id) == 700


async def _empty(length: Awaitable[int]) -> bool:
    return await length == 0
