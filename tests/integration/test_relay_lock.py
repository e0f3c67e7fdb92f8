"""The relay lock and position, as `Outbox` keeps them beside the stream they guard."""

from __future__ import annotations

from agentroster.registry.prepare import Prepared
from agentroster.store.outbox import Outbox
from agentroster.store.redis_store import RedisStore


def _register(agent_id: str) -> Prepared:
    return Prepared("register", agent_id, "i", 1, 60_000, card=b"{}", view=b"{}", digest="d")


async def test_one_owner_at_a_time_with_its_position(store: RedisStore) -> None:
    """The first owner takes the lock and learns the relayed revision in the same call;
    another owner gets None until the first releases it; a release by a non-owner is a no-op."""
    outbox = Outbox(store.redis, store.keys.prefix)
    assert await outbox.acquire_relay("a", 5_000) == 0
    assert await outbox.acquire_relay("b", 5_000) is None
    await outbox.release_relay("b")  # not b's: nothing happens
    assert await outbox.acquire_relay("a", 5_000) == 0  # kept (renewed) by its owner
    assert 0 < await store.redis.pttl(store.keys.relay_lock) <= 5_000
    await outbox.release_relay("a")
    assert await outbox.acquire_relay("b", 5_000) == 0


async def test_mark_relayed_returns_the_backlog_and_never_goes_back(store: RedisStore) -> None:
    """Marking advances the position the lock call reports and returns what is still unsent."""
    outbox = Outbox(store.redis, store.keys.prefix)
    await store.observe()
    await store.apply([_register(f"agent-{n}") for n in range(3)])  # three joins: revisions 1-3
    assert await outbox.acquire_relay("a", 5_000) == 0
    assert await outbox.mark_relayed(2, window=100) == 1
    assert await outbox.acquire_relay("a", 5_000) == 2
    assert await outbox.mark_relayed(1, window=100) == 1  # never backwards
    assert await outbox.mark_relayed(3, window=100) == 0
    assert await outbox.acquire_relay("a", 5_000) == 3
    assert await outbox.backlog() == 0
