"""Agents join, leave by expiry or by shutdown; instances of one agent; card changes."""

from __future__ import annotations

import asyncio
from datetime import datetime

from agentroster.client import Beacon
from agentroster.contracts import CE_HEADERS
from agentroster.store.keys import Keys
from agentroster.worker import Worker
from tests.helpers import EventCollector
from tests.integration.agents import a2a_card

#: Lease of the test agents: 7 beats, so a loaded machine does not cause false expiries.
TTL_S = 2.0


def beacon(worker: Worker, name: str, **options: object) -> Beacon:
    options.setdefault("interval_s", 0.3)
    options.setdefault("ttl_s", TTL_S)
    return Beacon(
        a2a_card(name),
        worker.settings.broker_url,
        prefix=worker.settings.prefix,
        handle_signals=False,
        **options,  # type: ignore[arg-type]
    )


async def test_hundred_agents_join_then_forty_expire_and_twenty_deregister(
    worker: Worker, events: EventCollector
) -> None:
    """Tests 1-3: 100 joined with CloudEvents headers; 40 crashed expire; 20 deregister."""
    beacons = [beacon(worker, f"agent-{n:03d}") for n in range(100)]
    await asyncio.gather(*(b.open() for b in beacons))
    await events.wait_until(lambda evs: len(evs) >= 100)
    joined = events.of("joined")
    assert len(joined) == 100
    assert {e.agent_id for e in joined} == {b.agent_id for b in beacons}
    for event in joined:
        assert set(CE_HEADERS) <= set(event.headers)
        assert event.headers["cloudEvents_specversion"] == "1.0"
        assert event.headers["cloudEvents_type"] == "agentroster.agent.joined"
        assert event.headers["cloudEvents_subject"] == event.agent_id
        assert event.headers["cloudEvents_id"] == event.message_id
        assert event.headers["cloudEvents_revision"] == str(event.revision)
        assert event.data["reason"] == "registered"
        assert event.data["card"]["name"] == event.agent_id
    assert len({e.message_id for e in joined}) == 100
    revisions = [e.revision for e in joined]
    assert revisions == sorted(revisions)
    assert len(set(revisions)) == 100

    # 40 crash: their heartbeat tasks stop without a deregistration
    crashed, rest = beacons[:40], beacons[40:]
    for b in crashed:
        assert b._loop_task is not None
        b._loop_task.cancel()
    await events.wait_until(lambda evs: len([e for e in evs if e.kind == "left"]) >= 40)
    expired = events.of("left", "expired")
    assert {e.agent_id for e in expired} == {b.agent_id for b in crashed}
    # each expired within ttl + 2 sweeps of its last applied renewal, both on the Redis clock
    keys = Keys(worker.settings.prefix)
    bound_ms = TTL_S * 1000 + 2 * worker.settings.sweep_interval_s * 1000
    for b in crashed:
        last_seen = int(
            await worker.redis.hget(keys.instance(b.agent_id, b.instance_id), "last_seen") or 0
        )
        (event,) = [e for e in expired if e.agent_id == b.agent_id]
        expired_ms = datetime.fromisoformat(event.headers["cloudEvents_time"]).timestamp() * 1000
        assert TTL_S * 1000 <= expired_ms - last_seen <= bound_ms

    # 20 shut down gracefully
    graceful = rest[:20]
    await asyncio.gather(*(b.close() for b in graceful))
    await events.wait_until(lambda evs: len([e for e in evs if e.kind == "left"]) >= 60)
    assert {e.agent_id for e in events.of("left", "deregistered")} == {b.agent_id for b in graceful}
    assert len(events.of("left")) == 60
    await asyncio.gather(*(b.close() for b in rest[20:] + crashed))
