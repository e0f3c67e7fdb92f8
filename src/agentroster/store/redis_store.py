"""The Redis implementation of the registry's state: leases, cards, revision, outbox.

Every change goes through one Lua script call (`apply.lua`, `reap.lua`), so a batch of
commands or a sweep of expiries commits whole or not at all, with its events in the outbox.
The scripts' arguments, records, result codes and replies are named in `store/scripts.py`.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from redis.asyncio import Redis

from agentroster.registry.prepare import Prepared
from agentroster.store.keys import Keys
from agentroster.store.scripts import APPLY, REAP, SIGN, VERIFY, Code, Script

#: The codes apply.lua returns per command, by the names the worker imports.
APPLIED, DUPLICATE, FORBIDDEN, UNKNOWN_AGENT = (
    Code.APPLIED,
    Code.DUPLICATE,
    Code.FORBIDDEN,
    Code.UNKNOWN_AGENT,
)
STALE_CARD, AGENT_QUOTA, INSTANCE_QUOTA, STUCK = (
    Code.STALE_CARD,
    Code.AGENT_QUOTA,
    Code.INSTANCE_QUOTA,
    Code.STUCK,
)
#: What the worker's metrics call each code.
OUTCOMES: dict[int, str] = {
    APPLIED: "applied",
    DUPLICATE: "duplicate",
    FORBIDDEN: "forbidden",
    UNKNOWN_AGENT: "unknown-agent",
    STALE_CARD: "stale-card",
    AGENT_QUOTA: "over-quota",
    INSTANCE_QUOTA: "over-quota",
    STUCK: "duplicate",  # a duplicate too; the first of a run that says the client is stuck
}

#: A command's record for apply.lua, in the order of `APPLY.record`.
_record = attrgetter(*APPLY.record)


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
class VerifyResult:
    """What recording one card check did (see verify.lua)."""

    #: False when the agent's state changed since (or it is no longer available): not recorded.
    recorded: bool
    #: `verified` took a new value: a revision and an agent.updated event.
    changed: bool
    damped: tuple[str, ...] = ()


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
        self._apply = Script(redis, APPLY)
        self._reap = Script(redis, REAP)
        self._verify = Script(redis, VERIFY)
        self._sign = Script(redis, SIGN)

    def _common_args(self) -> dict[str, Any]:
        """The arguments every write script starts with (see common.lua)."""
        return {
            "P": self.keys.base,
            "new_epoch": secrets.token_hex(8),
            "seen_epoch": self.epoch,
            "recovery_ms": 2 * (self.longest_ttl_ms or FALLBACK_TTL_MS),
            "flap_window": self.flap_window_ms,
            "flap_max": self.flap_max_events,
        }

    async def observe(self) -> str:
        """Learn the registry's epoch and longest TTL (on start, before the first write)."""
        epoch, longest = await self.redis.mget(self.keys.epoch, self.keys.ttl_max)
        self.epoch = epoch.decode() if isinstance(epoch, bytes) else (epoch or "")
        self.longest_ttl_ms = int(longest or 0)
        return self.epoch

    async def apply(self, batch: Sequence[Prepared]) -> ApplyResult:
        """Apply commands in one atomic script (see apply.lua)."""
        args = self._common_args()
        args["retention"] = self.retention_ms
        args["max_agents"] = self.quotas.agents_per_identity
        args["max_instances"] = self.quotas.instances_per_agent
        args["n"] = n = len(batch)
        records: list[Any] = []
        for p in batch:
            records += _record(p)
        reply = await self._apply([self.keys.revision], args, records)
        head, tail = self._apply.head(reply)
        # the epoch from every write too: a worker whose reaper is held still notices a loss
        self.epoch = head["epoch"].decode()
        return ApplyResult(list(tail[:n]), head["events"], [a.decode() for a in tail[n:]])

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
        args = self._common_args()
        args.update(
            limit=limit,
            retention=self.retention_ms,
            gap_ms=gap_ms,
            brake_share=brake_share,
            brake_min=brake_min_agents,
            budget=budget,
        )
        head, damped = self._reap.head(await self._reap([self.keys.leases], args))
        self.epoch = head["epoch"].decode()
        self.longest_ttl_ms = head["longest_ttl_ms"]
        return ReapResult(
            leases_expired=head["leases_expired"],
            idle_expired=head["idle_expired"],
            deleted=head["deleted"],
            more_due=bool(head["more_due"]),
            events=head["events"],
            graced=head["graced"],
            held=head["held"],
            epoch=self.epoch,
            recovery_ms_left=max(head["recovery_ms_left"], 0),
            brake_ms_left=max(head["brake_ms_left"], 0),
            damped=tuple(a.decode() for a in damped),
        )

    async def needs_check(self, agent_id: str, state_digest: str) -> bool:
        """Whether the agent still has this state and it has not been checked yet (one
        re-registration of an unchanged card is not fetched again)."""
        stored = await self.redis.hmget(self.keys.agent(agent_id), ["sdigest", "vdigest"])
        sdigest, vdigest = (v.decode() if isinstance(v, bytes) else v for v in stored)
        return sdigest == state_digest and vdigest != state_digest

    async def record_verification(
        self, agent_id: str, state_digest: str, verified: bool
    ) -> VerifyResult:
        """Record a check of the agent's well-known card for the state `state_digest` (see
        verify.lua): only if the agent still has that state; an event if the value changed."""
        args = self._common_args()
        args.update(agent_id=agent_id, sdigest=state_digest, verified=1 if verified else 0)
        head, damped = self._verify.head(await self._verify([self.keys.agent(agent_id)], args))
        self.epoch = head["epoch"].decode()
        return VerifyResult(
            recorded=bool(head["recorded"]),
            changed=bool(head["changed"]),
            damped=tuple(a.decode() for a in damped),
        )

    async def card_to_check(self, agent_id: str, state_digest: str) -> bytes | None:
        """The agent's card while it still has this state and its signatures were not checked
        yet; None otherwise (read here, not kept in the queue: a queue of cards could hold
        1,000 cards of 64 KiB)."""
        key = self.keys.agent(agent_id)
        sdigest, gdigest = await self.redis.hmget(key, ["sdigest", "gdigest"])
        state = state_digest.encode()
        if sdigest != state or gdigest == state:
            return None  # the common case (a Beacon re-registering its card): the card unread
        card = await self.redis.hget(key, "card")
        return card if isinstance(card, bytes) and card else None

    async def record_signature(
        self, agent_id: str, state_digest: str, signature: str
    ) -> VerifyResult:
        """Record the check of a signed card's signatures (`valid` or `invalid`) for the state
        `state_digest` (see signature.lua): only if the agent still has that state; an
        agent.updated event if the value changed."""
        args = self._common_args()
        args.update(agent_id=agent_id, sdigest=state_digest, signature=signature)
        head, damped = self._sign.head(await self._sign([self.keys.agent(agent_id)], args))
        self.epoch = head["epoch"].decode()
        return VerifyResult(
            recorded=bool(head["recorded"]),
            changed=bool(head["changed"]),
            damped=tuple(a.decode() for a in damped),
        )
