"""verify.lua on real Redis: a check is recorded only for the state it was made for, a changed
value is one revision and one `agent.updated` (reason verified), the index term follows it, a
new card resets it, and flap damping delivers a held-back verification as the final state."""

from __future__ import annotations

from typing import Any

from agentroster.registry.terms import VERIFIED_TERMS
from agentroster.store.redis_store import RedisStore
from tests.integration.leases import deregister, outbox_events, register


async def members(store: RedisStore) -> dict[str, set[Any]]:
    """Who is in each verification index set."""
    found: dict[str, set[Any]] = {}
    for term in VERIFIED_TERMS:
        found[term] = set(await store.redis.zrange(store.keys.index(term), 0, -1))
    return found


async def test_recorded_with_one_event_per_change(store: RedisStore) -> None:
    """true, then true again (nothing new), then false: two events, the index set follows."""
    command = register("checked")
    await store.apply([command])
    assert await store.needs_check("checked", command.state_digest)
    first = await store.record_verification("checked", command.state_digest, True)
    assert (first.recorded, first.changed) == (True, True)
    assert not await store.needs_check("checked", command.state_digest)
    again = await store.record_verification("checked", command.state_digest, True)
    assert (again.recorded, again.changed) == (True, False)
    assert await members(store) == {"verified:true": {b"checked"}, "verified:false": set()}
    await store.record_verification("checked", command.state_digest, False)
    assert await members(store) == {"verified:true": set(), "verified:false": {b"checked"}}
    events = await outbox_events(store)
    assert [(e.kind, e.reason, e.verified) for e in events] == [
        ("joined", "registered", None),
        ("updated", "verified", True),
        ("updated", "verified", False),
    ]
    assert events[1].card is not None
    terms = await store.redis.hget(store.keys.agent("checked"), "terms")
    assert terms is not None
    assert b"verified:false" in terms
    assert b"verified:true" not in terms


async def test_not_recorded_for_another_state(store: RedisStore) -> None:
    """A check of a card the agent no longer has, of an unknown agent, or of an offline one
    changes nothing; a new card resets `verified` and its index term."""
    old, new = register("moving", version="1"), register("moving", seq=2, version="2")
    await store.apply([old])
    await store.record_verification("moving", old.state_digest, True)
    await store.apply([new])
    assert await store.redis.hget(store.keys.agent("moving"), "verified") is None
    assert await members(store) == {"verified:true": set(), "verified:false": set()}
    late = await store.record_verification("moving", old.state_digest, True)
    assert not late.recorded
    assert not (await store.record_verification("nobody", old.state_digest, True)).recorded
    await store.apply([deregister("moving", seq=3)])
    assert not (await store.record_verification("moving", new.state_digest, True)).recorded
    reasons = [e.reason for e in await outbox_events(store)]
    assert "verified" in reasons[:2]
    assert reasons.count("verified") == 1


async def test_damped_verification_is_delivered_at_the_window_end(store: RedisStore) -> None:
    """A flapping agent's verification is held back, then delivered as its final state."""
    damped = RedisStore(store.redis, store.keys.prefix, flap_window_ms=60_000, flap_max_events=1)
    command = register("flappy")
    await damped.apply([command])
    held = await damped.record_verification("flappy", command.state_digest, True)
    assert held.recorded
    assert held.damped == ("flappy",)
    assert len(await outbox_events(damped)) == 1
    await damped.redis.zadd(damped.keys.damped, {"flappy": 1})
    await damped.redis.delete(damped.keys.flap("flappy"))
    await damped.reap()
    final = (await outbox_events(damped))[-1]
    assert (final.kind, final.reason, final.verified) == ("updated", "verified", True)
