"""The ownership rule as apply.lua runs it, for every pair of owner and sender identities.

The store alone (real Redis, no broker): an agent is bound to the identity of its first
registration ("" for none); a command from any other identity is refused (code FORBIDDEN) and
changes nothing at all in the registry's keys; one from the owner is applied.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from agentroster.registry.prepare import Limits, Prepared, prepare
from agentroster.store.redis_store import APPLIED, FORBIDDEN, RedisStore
from tests.integration.agents import a2a_card

IDENTITIES = ("", "alice", "bob")


def command(
    kind: str, user: str, *, instance: str = "i-1", seq: int = 2, name: str = "a"
) -> Prepared:
    """A prepared command for agent `a`, as the worker hands it to the store."""
    body: dict[str, Any] = {
        "agent_id": "a",
        "instance_id": instance,
        "seq": seq,
        "sent_at": datetime.now(UTC).isoformat(),
    }
    if kind == "register":
        body |= {"ttl_s": 60, "card": a2a_card(name)}
    elif kind == "heartbeat":
        body |= {"ttl_s": 60, "card_digest": "sha256:x"}
    return prepare(f"agent.a.{kind}", orjson.dumps(body), user, Limits())


async def snapshot(redis: Redis, prefix: str) -> dict[bytes, Any]:
    """Every key of the registry with its whole content (TTLs aside)."""
    found: dict[bytes, Any] = {}
    async for key in redis.scan_iter(match=f"{{{prefix}}}:*"):
        kind = await redis.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "hash":
            found[key] = await redis.hgetall(key)
        elif kind == "zset":
            found[key] = await redis.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            found[key] = await redis.smembers(key)
        elif kind == "stream":
            found[key] = await redis.xrange(key)
        else:
            found[key] = await redis.get(key)
    return found


@pytest.mark.parametrize("kind", ["register", "heartbeat", "deregister"])
@pytest.mark.parametrize("sender", IDENTITIES)
@pytest.mark.parametrize("owner", IDENTITIES[:2])
async def test_only_the_owner_identity_speaks_for_an_agent(
    store: RedisStore, prefix: str, owner: str, sender: str, kind: str
) -> None:
    """Another identity (none against one, one against none included) is refused and changes
    nothing, for its own instance and for the owner's; the owner's command is applied."""
    (code,) = (await store.apply([command("register", owner, seq=1)])).codes
    assert code == APPLIED
    for instance in ("i-1", "i-2"):  # the owner's instance (seq 1 applied) and a new one
        before = await snapshot(store.redis, prefix)
        # a huge seq: were it applied, it would silence the owner's instance for good
        attempt = command(kind, sender, instance=instance, seq=2**53 - 1, name="evil")
        (code,) = (await store.apply([attempt])).codes
        if sender != owner:
            assert code == FORBIDDEN
            assert await snapshot(store.redis, prefix) == before
        else:
            assert code != FORBIDDEN
    assert await store.redis.hget(store.keys.agent("a"), "owner") == owner.encode()


async def test_a_forbidden_command_in_a_batch_leaves_its_neighbours_applied(
    store: RedisStore,
) -> None:
    """One batch: the owner's commands around an intruder's are applied, the intruder's not."""
    codes = (
        await store.apply(
            [
                command("register", "alice", seq=1),
                command("register", "bob", seq=5, name="evil"),
                command("heartbeat", "alice", seq=2),
            ]
        )
    ).codes
    assert codes[0] == APPLIED
    assert codes[1] == FORBIDDEN
    assert codes[2] in (APPLIED, 4)  # applied (4: with another card digest)
    assert await store.redis.hget(store.keys.instance("a", "i-1"), "seq") == b"2"
    card = orjson.loads(await store.redis.hget(store.keys.agent("a"), "card") or b"{}")
    assert card["name"] == "a"
