"""No false deaths (invariant 3): a gap in sweeping gives leases a full TTL, a mass expiry is
held once, and a registry that was down while agents heartbeated reports no agent.left."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from agentroster.client import Beacon
from agentroster.settings import Settings
from agentroster.store.redis_store import RedisStore
from agentroster.worker import create_worker
from tests.helpers import EventCollector
from tests.integration.agents import a2a_card
from tests.integration.leases import make_due, redis_now_ms, register


async def test_after_a_gap_in_sweeping_due_leases_get_a_full_ttl(store: RedisStore) -> None:
    """No sweep for longer than the gap: nothing expires, every lease runs from now."""
    agents = [f"gap-{n}" for n in range(5)]
    await store.apply([register(a) for a in agents])
    await store.reap()  # the reaper has run...
    now = await redis_now_ms(store.redis)
    await store.redis.set(store.keys.reaper, now - 60_000)  # ...but not for a minute
    await make_due(store, agents)
    result = await store.reap(gap_ms=5_000)
    assert (result.graced, result.leases_expired, result.events) == (5, 0, 0)
    deadlines = [await store.redis.zscore(store.keys.leases, f"{a}|i") for a in agents]
    assert all(d is not None and d >= now + 60_000 for d in deadlines)
    assert (await store.reap(gap_ms=5_000)).leases_expired == 0


async def test_a_mass_expiry_is_held_once_then_happens(store: RedisStore) -> None:
    """20 of 30 live agents due at once: held for one TTL; due again, they expire."""
    agents = [f"mass-{n:02d}" for n in range(30)]
    await store.apply([register(a) for a in agents])
    await store.reap()
    await make_due(store, agents[:20])
    held = await store.reap(brake_share=0.5, brake_min_agents=20)
    assert (held.held, held.leases_expired, held.events) == (20, 0, 0)
    assert (await store.reap()).leases_expired == 0  # extended by one TTL
    await make_due(store, agents[:20])  # still gone one TTL later
    expired = await store.reap(brake_share=0.5, brake_min_agents=20)
    assert (expired.held, expired.leases_expired, expired.events) == (0, 20, 20)


async def test_a_mass_expiry_larger_than_a_sweep_chunk_is_held_whole(store: RedisStore) -> None:
    """30 of 40 live agents due, swept 5 leases per call: the brake weighs all 30 at once
    (not 5 against a live count the earlier chunks shrank) and holds every one of them."""
    agents = [f"chunk-{n:02d}" for n in range(40)]
    await store.apply([register(a) for a in agents])
    await store.reap()
    await make_due(store, agents[:30])
    held = await store.reap(limit=5, brake_share=0.5, brake_min_agents=20)
    assert (held.held, held.leases_expired, held.events) == (30, 0, 0)
    assert (await store.reap(limit=5)).leases_expired == 0  # all 30 extended, not 5


async def test_a_few_expiries_are_not_braked(store: RedisStore) -> None:
    """Below the share, or below the minimum of agents, expiries go through at once."""
    agents = [f"few-{n:02d}" for n in range(30)]
    await store.apply([register(a) for a in agents])
    await store.reap()
    await make_due(store, agents[:10])
    result = await store.reap(brake_share=0.5, brake_min_agents=20)
    assert (result.held, result.leases_expired) == (0, 10)


async def test_a_registry_down_for_three_ttls_reports_no_false_death(
    settings: Settings, events: EventCollector
) -> None:
    """Agents heartbeat while every worker is down for 3 x TTL: after the restart none of
    them leaves; an agent that really stopped during the outage leaves, after recovery."""
    ttl_s = 1.5
    settings = settings.model_copy(update={"reaper_gap_s": 0.5})
    beacons = [
        Beacon(
            a2a_card(f"steady-{n}"),
            settings.broker_url,
            prefix=settings.prefix,
            interval_s=0.3,
            ttl_s=ttl_s,
            handle_signals=False,
        )
        for n in range(10)
    ]
    async with create_worker(settings):
        await asyncio.gather(*(b.open() for b in beacons))
        await events.wait_until(lambda evs: len(evs) >= 10)
    stopped = beacons[0]
    assert stopped._loop_task is not None
    stopped._loop_task.cancel()  # dies during the outage
    await asyncio.sleep(3 * ttl_s)  # the outage itself: heartbeats queue up meanwhile
    recovered_at = datetime.now(UTC)
    async with create_worker(settings):
        await events.wait_until(lambda evs: any(e.kind == "left" for e in evs), timeout=30)
        for b in beacons[1:]:
            await b.close()
        await events.wait_until(lambda evs: len(evs) >= 20)
    left = [e for e in events.events if e.kind == "left"]
    assert [(e.agent_id, e.data["reason"]) for e in left[:1]] == [(stopped.agent_id, "expired")]
    assert {e.data["reason"] for e in left[1:]} == {"deregistered"}
    # the stopped agent got a full TTL from recovery before it expired
    expired_at = datetime.fromisoformat(left[0].headers["cloudEvents_time"])
    assert (expired_at - recovered_at).total_seconds() >= ttl_s - 0.5
    await stopped.close()
