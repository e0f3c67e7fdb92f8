"""The outbox as both publication queue and replay window.

Every event is appended to the `{p}:outbox` stream with id `<revision>-0`, by the script that
makes the change. The relay publishes entries after `{p}:relayed` (the last revision RabbitMQ
confirmed) and then advances it; entries stay for a window of `events_window` revisions after
publication, so `GET /v1/events?since=R` can replay them, and only then are trimmed. An entry
is never trimmed before it is published. One relay at a time publishes (the relay lock, here
beside the stream it guards), so events leave in order.

`OutboxEvent` keeps the stored facts of an event; the wire form's CloudEvents headers are built
where the wire contract lives (`contracts.events.cloudevents_headers`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from redis.asyncio import Redis

from agentroster.contracts import EventKind
from agentroster.store.keys import Keys
from agentroster.store.scripts import MARK_RELAYED, RELAY_ACQUIRE, RELAY_RELEASE, Script


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One event as the outbox holds it; builds the AMQP/SSE body and its id."""

    revision: int
    kind: EventKind
    agent_id: str
    status: str
    live_instances: int
    reason: str
    time_ms: int
    epoch: str
    view: bytes
    card: bytes | None
    #: The rest of the agent's summary at this change, for the API's read model (internal: never
    #: in `body()`); times in ms of the Redis clock, None (0 for durations) when not recorded
    #: (an entry written by an older worker has none of them).
    digest: str = ""
    first_seen_ms: int | None = None
    last_seen_ms: int | None = None
    ttl_ms: int = 0
    interval_ms: int = 0
    idle_ttl_ms: int = 0
    #: Whether the agent's well-known card matched when checked; None: not checked (or unknown).
    verified: bool | None = None
    #: `valid`, `invalid` or `unsigned`; None: a signed card not checked yet (or unknown).
    signature: str | None = None
    #: The trace context of the command that caused it (`tracing.pack`), '' for none.
    trace: str = ""

    @classmethod
    def from_fields(cls, fields: dict[bytes, bytes]) -> OutboxEvent:
        """Parse the stream entry's fields."""
        return cls(
            revision=int(fields[b"rev"]),
            kind=fields[b"kind"].decode(),  # type: ignore[arg-type]
            agent_id=fields[b"agent"].decode(),
            status=fields[b"status"].decode(),
            live_instances=int(fields[b"live"]),
            reason=fields[b"reason"].decode(),
            time_ms=int(fields[b"time"]),
            epoch=fields.get(b"epoch", b"0").decode(),
            view=fields[b"view"],
            card=fields.get(b"card"),
            digest=fields.get(b"digest", b"").decode(),
            first_seen_ms=_ms(fields.get(b"first")),
            last_seen_ms=_ms(fields.get(b"seen")),
            ttl_ms=_ms(fields.get(b"ttl")) or 0,
            interval_ms=_ms(fields.get(b"ivl")) or 0,
            idle_ttl_ms=_ms(fields.get(b"ittl")) or 0,
            verified=_flag(fields.get(b"ver")),
            signature=fields.get(b"sig", b"").decode() or None,
            trace=fields.get(b"tc", b"").decode(errors="replace"),
        )

    @property
    def time(self) -> datetime:
        """When the change happened (Redis clock)."""
        return datetime.fromtimestamp(self.time_ms / 1000, UTC)

    def event_id(self, prefix: str) -> str:
        """Unique per registry and the same on every re-publication; the epoch keeps ids apart
        after Redis lost its data and revisions started again."""
        return f"{prefix}-{self.epoch}-{self.revision}"

    def body(self) -> bytes:
        """The event data (`AgentEvent`), embedding the stored view and card as they are."""
        data: dict[str, Any] = {
            "agent_id": self.agent_id,
            "revision": self.revision,
            "status": self.status,
            "live_instances": self.live_instances,
            "reason": self.reason,
            "agent": orjson.Fragment(self.view),
        }
        if self.card is not None:
            data["card"] = orjson.Fragment(self.card)
        if self.verified is not None:
            data["verified"] = self.verified
        if self.signature is not None:
            data["signature"] = self.signature
        return orjson.dumps(data)


class Outbox:
    """Reads and advances the outbox of one registry."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.keys = Keys(prefix)
        self._mark = Script(redis, MARK_RELAYED)
        self._relay_acquire = Script(redis, RELAY_ACQUIRE)
        self._relay_release = Script(redis, RELAY_RELEASE)

    async def relayed(self) -> int:
        """The last revision RabbitMQ confirmed."""
        return int(await self.redis.get(self.keys.relayed) or 0)

    async def after(self, revision: int, count: int, block_ms: int | None) -> list[OutboxEvent]:
        """Events after `revision`, in order; with `block_ms`, wait that long for the first."""
        reply: Any = await self.redis.xread(
            {self.keys.outbox: f"{revision}-0"}, count=count, block=block_ms
        )
        if not reply:
            return []
        return [OutboxEvent.from_fields(fields) for _, fields in reply[0][1]]

    async def span(self) -> tuple[int, int | None]:
        """The registry's revision and the oldest revision still kept (None when the outbox
        is empty), in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(self.keys.revision)
            pipe.xrange(self.keys.outbox, count=1)
            revision, first = await pipe.execute()
        return int(revision or 0), int(first[0][0].split(b"-")[0]) if first else None

    async def mark_relayed(self, revision: int, window: int) -> int:
        """Record that RabbitMQ confirmed every event up to `revision`; trim beyond the window.
        Returns the backlog: events written but not yet confirmed."""
        args = {"P": self.keys.base, "revision": revision, "window": window}
        reply, _ = self._mark.head(await self._mark([self.keys.relayed, self.keys.outbox], args))
        return int(reply["backlog"])

    async def backlog(self) -> int:
        """Events written but not yet confirmed."""
        written, relayed = await self.redis.mget(self.keys.revision, self.keys.relayed)
        return int(written or 0) - int(relayed or 0)

    async def acquire_relay(self, owner: str, ttl_ms: int) -> int | None:
        """Take or keep the relay lock (only its holder publishes, so events leave in order);
        the relayed revision if `owner` holds it now, None if another replica does. One
        round trip."""
        args = {"P": self.keys.base, "owner": owner, "ttl_ms": ttl_ms}
        reply = await self._relay_acquire([self.keys.relay_lock], args)
        lock, _ = self._relay_acquire.head(reply)
        return int(lock["relayed"]) if lock["held"] else None

    async def release_relay(self, owner: str) -> None:
        """Give the relay lock up (on shutdown) so another replica takes over at once."""
        args = {"P": self.keys.base, "owner": owner}
        await self._relay_release([self.keys.relay_lock], args)


def _flag(value: bytes | None) -> bool | None:
    """A stored `1`/`0`; None when absent or empty (not checked)."""
    return value == b"1" if value else None


def _ms(value: bytes | None) -> int | None:
    """A stored number of ms; None when absent or empty (the script writes '' for a nil)."""
    return int(value) if value else None
