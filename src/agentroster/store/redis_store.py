"""The Redis implementation of the registry's state: leases, cards, revision, outbox.

Every change goes through one Lua script call (`apply.lua`, `reap.lua`), so a batch of
commands or a sweep of expiries commits whole or not at all, with its events in the outbox.
redis-py's `Script` runs `EVALSHA` and reloads the script after a Redis restart (NOSCRIPT).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from redis.asyncio import Redis

from agentroster.registry.prepare import Prepared
from agentroster.store.keys import Keys

#: Codes apply.lua returns per command.
APPLIED, DUPLICATE, FORBIDDEN, UNKNOWN_AGENT, STALE_CARD = 0, 1, 2, 3, 4
OUTCOMES = {
    APPLIED: "applied",
    DUPLICATE: "duplicate",
    FORBIDDEN: "forbidden",
    UNKNOWN_AGENT: "unknown-agent",
    STALE_CARD: "stale-card",
}


def lua_source(name: str, *, with_common: bool = True) -> str:
    """A script from `store/lua/`, after `common.lua` (its shared helpers) unless told not to."""
    lua = files("agentroster.store") / "lua"
    source = (lua / name).read_text()
    return (lua / "common.lua").read_text() + "\n" + source if with_common else source


@dataclass(frozen=True, slots=True)
class ReapResult:
    """What one sweep expired."""

    leases_expired: int
    idle_expired: int
    deleted: int
    more_due: bool
    events: int
    graced: int = 0
    held: int = 0


class RedisStore:
    """Registry state in Redis under one key prefix."""

    def __init__(self, redis: Redis, prefix: str, *, retention_ms: int = 24 * 3600 * 1000):
        self.redis = redis
        self.keys = Keys(prefix)
        self.retention_ms = retention_ms
        self._apply = redis.register_script(lua_source("apply.lua"))
        self._reap = redis.register_script(lua_source("reap.lua"))
        self._relay_renew = redis.register_script(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then "
            "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
        )
        self._relay_release = redis.register_script(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then "
            "return redis.call('DEL', KEYS[1]) end return 0"
        )

    async def apply(self, batch: Sequence[Prepared]) -> tuple[list[int], int]:
        """Apply commands in one atomic script; returns per-command codes and events written."""
        args: list[Any] = [self.keys.base, secrets.token_hex(8), self.retention_ms, len(batch)]
        for p in batch:
            args += (
                p.kind,
                p.agent_id,
                p.instance_id,
                p.seq,
                p.ttl_ms,
                p.interval_ms,
                p.idle_ttl_ms,
                p.user_id,
                p.digest,
                p.state_digest,
                p.card,
                p.view,
                p.reason,
                p.terms,
                p.text,
            )
        result: list[int] = await self._apply(keys=[self.keys.revision], args=args)
        return result[:-1], result[-1]

    async def reap(
        self,
        limit: int = 1000,
        *,
        gap_ms: int = 5000,
        brake_share: float = 0.5,
        brake_min_agents: int = 20,
    ) -> ReapResult:
        """Expire due leases, idle periods and retention, each claimed by exactly one caller.

        After a gap of `gap_ms` without sweeps, leases get a full TTL instead; a mass expiry
        (more than `brake_share` of at least `brake_min_agents` live agents) is held once for
        one TTL (see reap.lua).
        """
        reply = await self._reap(
            keys=[self.keys.leases],
            args=[self.keys.base, limit, self.retention_ms, gap_ms, brake_share, brake_min_agents],
        )
        expired, idle, deleted, more, events, graced, held = reply
        return ReapResult(expired, idle, deleted, bool(more), events, graced, held)

    async def acquire_relay(self, owner: str, ttl_ms: int) -> bool:
        """Take or keep the relay lock; only its holder publishes, so events leave in order."""
        if await self._relay_renew(keys=[self.keys.relay_lock], args=[owner, ttl_ms]):
            return True
        return bool(await self.redis.set(self.keys.relay_lock, owner, nx=True, px=ttl_ms))

    async def release_relay(self, owner: str) -> None:
        """Give the relay lock up (on shutdown) so another replica takes over at once."""
        await self._relay_release(keys=[self.keys.relay_lock], args=[owner])
