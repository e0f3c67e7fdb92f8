"""Flap damping: instance churn behind a live agent is silent; an agent that flaps itself has
its events held back past the limit, and its final state is delivered when the window ends."""

from __future__ import annotations

import pytest

from agentroster.store.redis_store import RedisStore
from tests.integration.leases import deregister, make_due, outbox_events, register


@pytest.fixture
def damped(store: RedisStore) -> RedisStore:
    """The test registry's store with a limit of 2 events per agent per minute."""
    return RedisStore(store.redis, store.keys.prefix, flap_window_ms=60_000, flap_max_events=2)


async def end_window(store: RedisStore, agent_id: str) -> None:
    """Make the agent's flap window end now."""
    await store.redis.zadd(store.keys.damped, {agent_id: 1})
    await store.redis.delete(store.keys.flap(agent_id))


async def test_instances_coming_and_going_behind_a_live_agent_cause_no_event(
    store: RedisStore,
) -> None:
    """One instance deregisters and returns, then expires and returns, while the other stays
    live: the agent stayed available, so nothing is published after its join."""
    await store.apply([register("pair", "a"), register("pair", "b")])
    await store.apply([deregister("pair", "a", seq=2)])
    await store.apply([register("pair", "a", seq=3)])
    await make_due(store, ["pair"], "a")
    assert (await store.reap()).leases_expired == 1
    await store.apply([register("pair", "a", seq=4)])
    assert [(e.kind, e.reason) for e in await outbox_events(store)] == [("joined", "registered")]


async def test_a_flapping_agent_is_damped_then_its_final_state_delivered(
    damped: RedisStore,
) -> None:
    """Joined, left (the limit), then joined and left and joined again held back: reported
    once, and when the window ends one `agent.joined` brings subscribers to `live`."""
    first = await damped.apply([register("flappy", seq=1), deregister("flappy", seq=2)])
    assert first.damped == []
    held = await damped.apply([register("flappy", seq=3), deregister("flappy", seq=4)])
    assert held.events == 0
    assert held.damped == ["flappy"]  # reported when the damping begins, not again
    again = await damped.apply([register("flappy", seq=5)])
    assert (again.events, again.damped) == (0, [])
    assert await damped.redis.hget(damped.keys.agent("flappy"), "status") == b"live"

    await end_window(damped, "flappy")
    await damped.reap()
    events = await outbox_events(damped)
    assert [(e.kind, e.status, e.reason) for e in events] == [
        ("joined", "live", "registered"),
        ("left", "offline", "deregistered"),
        ("joined", "live", "registered"),
    ]
    assert events[-1].card is not None


async def test_a_flap_that_ends_where_it_began_owes_nothing(damped: RedisStore) -> None:
    """Told offline, flapped, offline again at the window's end: no event is owed."""
    await damped.apply([register("back-and-forth", seq=1), deregister("back-and-forth", seq=2)])
    await damped.apply([register("back-and-forth", seq=3), deregister("back-and-forth", seq=4)])
    await end_window(damped, "back-and-forth")
    result = await damped.reap()
    assert result.events == 0
    assert len(await outbox_events(damped)) == 2
    assert await damped.redis.zcard(damped.keys.damped) == 0


async def test_the_final_state_of_a_damped_expiry_is_a_left(damped: RedisStore) -> None:
    """Joined, updated (the limit), then it expires: subscribers get that `agent.left` when the
    window ends, with the reason of the change that was held back."""
    await damped.apply([register("fading", seq=1), register("fading", seq=2, version="2")])
    await make_due(damped, ["fading"])
    expired = await damped.reap()
    assert (expired.leases_expired, expired.events, expired.damped) == (1, 0, ("fading",))

    await end_window(damped, "fading")
    assert (await damped.reap()).events == 1
    events = await outbox_events(damped)
    assert [(e.kind, e.status, e.reason) for e in events] == [
        ("joined", "live", "registered"),
        ("updated", "live", "card-changed"),
        ("left", "offline", "expired"),
    ]
