"""The outbox as both publication queue and replay window.

Every event is appended to the `{p}:outbox` stream with id `<revision>-0`, by the script that
makes the change. The relay publishes entries after `{p}:relayed` (the last revision RabbitMQ
confirmed) and then advances it; entries stay for a window of `events_window` revisions after
publication, so `GET /v1/events?since=R` can replay them, and only then are trimmed. An entry
is never trimmed before it is published.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from redis.asyncio import Redis

from agentroster.contracts import CE_HEADERS, EventKind, Topology
from agentroster.contracts.events import CE_SPECVERSION
from agentroster.store.keys import Keys

#: Advance the relayed revision (never backwards) and trim what the window no longer keeps.
_MARK_RELAYED = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local rev, window = tonumber(ARGV[1]), tonumber(ARGV[2])
if rev > current then redis.call('SET', KEYS[1], rev) current = rev end
local keep_from = current - window + 1
if keep_from > 1 then redis.call('XTRIM', KEYS[2], 'MINID', keep_from .. '-0') end
return current
"""


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One event as the outbox holds it; builds the AMQP/SSE body and CloudEvents attributes."""

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
        return orjson.dumps(data)

    def cloudevents_headers(self, topology: Topology, source: str) -> dict[str, Any]:
        """The CloudEvents attributes as AMQP headers (binary mode)."""
        values: tuple[str | int, ...] = (
            CE_SPECVERSION,
            self.event_id(topology.prefix),
            topology.event_type(self.kind),
            source,
            self.agent_id,
            self.time.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            self.revision,
        )
        return dict(zip(CE_HEADERS, values, strict=True))


class Outbox:
    """Reads and advances the outbox of one registry."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.keys = Keys(prefix)
        self._mark = redis.register_script(_MARK_RELAYED)

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

    async def mark_relayed(self, revision: int, window: int) -> None:
        """Record that RabbitMQ confirmed every event up to `revision`; trim beyond the window."""
        await self._mark(keys=[self.keys.relayed, self.keys.outbox], args=[revision, window])

    async def backlog(self) -> int:
        """Events written but not yet confirmed."""
        written, relayed = await self.redis.mget(self.keys.revision, self.keys.relayed)
        return int(written or 0) - int(relayed or 0)


def _ms(value: bytes | None) -> int | None:
    """A stored number of ms; None when absent or empty (the script writes '' for a nil)."""
    return int(value) if value else None
