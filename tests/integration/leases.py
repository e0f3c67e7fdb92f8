"""Driving the store directly: commands without a broker, leases made due without waiting."""

from __future__ import annotations

from redis.asyncio import Redis

from agentroster.contracts import card_bytes, card_digest
from agentroster.registry.prepare import Prepared
from agentroster.store.outbox import Outbox, OutboxEvent
from agentroster.store.redis_store import RedisStore
from tests.integration.agents import a2a_card


def register(
    agent_id: str, instance_id: str = "i", seq: int = 1, ttl_ms: int = 60_000, version: str = "1"
) -> Prepared:
    """A prepared registration of a small A2A card (another `version`: another card)."""
    card = a2a_card(agent_id, version=version)
    return Prepared(
        kind="register",
        agent_id=agent_id,
        instance_id=instance_id,
        seq=seq,
        ttl_ms=ttl_ms,
        digest=card_digest(card),
        state_digest=card_digest(card),
        card=card_bytes(card),
        view=b"{}",
    )


def deregister(agent_id: str, instance_id: str = "i", seq: int = 2) -> Prepared:
    """A prepared deregistration."""
    return Prepared(kind="deregister", agent_id=agent_id, instance_id=instance_id, seq=seq)


async def make_due(store: RedisStore, agent_ids: list[str], instance_id: str = "i") -> None:
    """Move these leases' deadlines into the past, as if their agents stopped long ago."""
    for agent_id in agent_ids:
        await store.redis.zadd(store.keys.leases, {f"{agent_id}|{instance_id}": 1})
        await store.redis.zadd(store.keys.instances(agent_id), {instance_id: 1})


async def redis_now_ms(redis: Redis) -> int:
    """Redis server time in ms: the registry's clock."""
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def outbox_events(store: RedisStore, after: int = 0) -> list[OutboxEvent]:
    """Every event in the store's outbox after a revision."""
    return await Outbox(store.redis, store.keys.prefix).after(after, 10_000, block_ms=None)
