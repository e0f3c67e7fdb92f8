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
AGENT_QUOTA, INSTANCE_QUOTA, STUCK = 5, 6, 7
OUTCOMES = {
    APPLIED: "applied",
    DUPLICATE: "duplicate",
    FORBIDDEN: "forbidden",
    UNKNOWN_AGENT: "unknown-agent",
    STALE_CARD: "stale-card",
    AGENT_QUOTA: "over-quota",
    INSTANCE_QUOTA: "over-quota",
    STUCK: "duplicate",  # a duplicate too; the first of a run that says the client is stuck
}


def lua_source(name: str, *, with_common: bool = True) -> str:
    """A script from `store/lua/`, after `common.lua` (its shared helpers) unless told not to."""
    lua = files("agentroster.store") / "lua"
    source = (lua / name).read_text()
    return (lua / "common.lua").read_text() + "\n" + source if with_common else source


#: The longest TTL assumed for the recovery window when no registration has told it (e.g. a
#: worker that restarted together with Redis): 30 s, a common heartbeat TTL.
FALLBACK_TTL_MS = 30_000


@dataclass(frozen=True, slots=True)
class Quotas:
    """What one identity may hold (0: no limit); past it a command is dead-lettered."""

    agents_per_identity: int = 10_000
    instances_per_agent: int = 1_000


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What one batch did: a code per command, events written, agents whose damping began."""

    codes: list[int]
    events: int
    damped: list[str]


#: What one reap call may cost, in bytes (see `RedisStore.reap`): 10-15 ms of Redis time for
#: the largest agents (bench/README.md, Limits; a thousand of them took over a second without).
REAP_BUDGET = 2 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ReapResult:
    """What one sweep expired, and the registry's state seen from it."""

    leases_expired: int
    idle_expired: int
    deleted: int
    more_due: bool
    events: int
    graced: int = 0
    held: int = 0
    epoch: str = ""
    recovery_ms_left: int = 0
    brake_ms_left: int = 0
    damped: tuple[str, ...] = ()


class RedisStore:
    """Registry state in Redis under one key prefix.

    It remembers the registry epoch it last saw and the longest TTL in use, so that the next
    script call notices when Redis lost its data (the epoch key is gone) and opens a recovery
    window of twice that TTL (see common.lua).
    """

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        retention_ms: int = 24 * 3600 * 1000,
        flap_window_ms: int = 60_000,
        flap_max_events: int = 10,
        quotas: Quotas | None = None,
    ):
        self.redis = redis
        self.keys = Keys(prefix)
        self.retention_ms = retention_ms
        self.flap_window_ms = flap_window_ms
        self.flap_max_events = flap_max_events
        self.quotas = quotas or Quotas()
        #: The epoch this store last saw ("" before the first look).
        self.epoch = ""
        self.longest_ttl_ms = 0
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

    def _common_args(self) -> list[Any]:
        """The arguments every write script starts with (see common.lua)."""
        recovery_ms = 2 * (self.longest_ttl_ms or FALLBACK_TTL_MS)
        return [
            self.keys.base,
            secrets.token_hex(8),
            self.epoch,
            recovery_ms,
            self.flap_window_ms,
            self.flap_max_events,
        ]

    async def observe(self) -> str:
        """Learn the registry's epoch and longest TTL (on start, before the first write)."""
        epoch, longest = await self.redis.mget(self.keys.epoch, self.keys.ttl_max)
        self.epoch = epoch.decode() if isinstance(epoch, bytes) else (epoch or "")
        self.longest_ttl_ms = int(longest or 0)
        return self.epoch

    async def apply(self, batch: Sequence[Prepared]) -> ApplyResult:
        """Apply commands in one atomic script (see apply.lua)."""
        args = [
            *self._common_args(),
            self.retention_ms,
            self.quotas.agents_per_identity,
            self.quotas.instances_per_agent,
            len(batch),
        ]
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
        reply: list[Any] = await self._apply(keys=[self.keys.revision], args=args)
        n = len(batch)
        # the epoch from every write too: a worker whose reaper is held still notices a loss
        self.epoch = reply[n + 1].decode()
        return ApplyResult(reply[:n], reply[n], [a.decode() for a in reply[n + 2 :]])

    async def reap(
        self,
        limit: int = 1000,
        *,
        gap_ms: int = 5000,
        brake_share: float = 0.5,
        brake_min_agents: int = 20,
        budget: int = REAP_BUDGET,
    ) -> ReapResult:
        """Expire due leases, idle periods and retention, each claimed by exactly one caller.

        After a gap of `gap_ms` without sweeps, leases get a full TTL instead; a mass expiry
        (more than `brake_share` of at least `brake_min_agents` live agents) is held once for
        one TTL (see reap.lua). One call stops once its work costs `budget` (4 KiB per agent
        it ends or deletes, the views its events carry, what the agents it deletes stored,
        256 per index term) and reports `more_due`: the reaper sweeps again at once.
        """
        own = [limit, self.retention_ms, gap_ms, brake_share, brake_min_agents, budget]
        reply = await self._reap(keys=[self.keys.leases], args=[*self._common_args(), *own])
        expired, idle, deleted, more, events, graced, held, epoch, recovery, brake = reply[:10]
        self.epoch = epoch.decode()
        self.longest_ttl_ms = reply[10]
        damped = tuple(a.decode() for a in reply[11:])
        return ReapResult(
            expired,
            idle,
            deleted,
            bool(more),
            events,
            graced,
            held,
            self.epoch,
            max(recovery, 0),
            max(brake, 0),
            damped,
        )

    async def acquire_relay(self, owner: str, ttl_ms: int) -> bool:
        """Take or keep the relay lock; only its holder publishes, so events leave in order."""
        if await self._relay_renew(keys=[self.keys.relay_lock], args=[owner, ttl_ms]):
            return True
        return bool(await self.redis.set(self.keys.relay_lock, owner, nx=True, px=ttl_ms))

    async def release_relay(self, owner: str) -> None:
        """Give the relay lock up (on shutdown) so another replica takes over at once."""
        await self._relay_release(keys=[self.keys.relay_lock], args=[owner])
