"""Read side of the registry's Redis state: what the HTTP API shows, never written here.

Uses the key layout of `store/keys.py` and the scripts named in `store/scripts.py`. One agent
is read by one small read-only script (`read_agent.lua`), so a
`GET /v1/agents/{id}` costs one round trip (the reads that arrive while another is in flight
are merged into one call: store/script_batch.py) and sees one consistent moment (the agent hash, its
instances and their records, and the global revision together). A page of agents is one call
of `query.lua`, which filters, cuts the page and returns its summaries with the revision, all
at one moment.

Revision and list + watch: a page is exactly the state at its `revision`, so a client that
lists and then follows events after that revision misses nothing and sees nothing twice.

The agent's `owner` is never read: it is the registry's business, not the readers'.

Its records are named `Stored*` (`StoredAgent`, `StoredAgentDetail`, `StoredInstance`,
`StoredPage`, `StoredCard`): times in ms of the Redis clock, the view as stored. The API's
response models (`api/models.py`) and the client's models (`client/models.py`) have names of
their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from redis.asyncio import Redis

from agentroster.registry.terms import TEXT_BUDGET, Filters
from agentroster.store.keys import Keys
from agentroster.store.scripts import QUERY, READ_AGENT, SUMMARY_FIELDS, Script

#: What `list_agents` can filter on: the agent's status, or every known agent.
ListStatus = Literal["live", "idle", "offline", "all"]
#: Ids one list request examines at most before it returns what it found, with a cursor (two
#: large index sets that never intersect cost ~10 ms of Redis for 5,000: bench/README.md, Limits).
SCAN_BUDGET = 5_000


#: Instances returned with one agent (soonest lease deadline first); `live_instances` counts all.
MAX_INSTANCES = 1000


@dataclass(frozen=True, slots=True)
class StoredInstance:
    """One live instance of an agent and its lease (times in ms, Redis clock)."""

    instance_id: str
    lease_deadline_ms: int
    first_seen_ms: int | None
    last_seen_ms: int | None


@dataclass(frozen=True, slots=True)
class StoredAgent:
    """An agent as a page of the list shows it: status, lease settings, view; no card.

    `revision` is the revision of the agent's last change; times are ms of the Redis clock;
    `interval_ms` and `idle_ttl_ms` are 0 when the agent did not set them.
    """

    agent_id: str
    status: str
    revision: int
    digest: str
    view: dict[str, Any]
    first_seen_ms: int | None
    last_seen_ms: int | None
    ttl_ms: int
    interval_ms: int
    idle_ttl_ms: int
    live_instances: int
    #: Whether its well-known card matched when the registry fetched it; None: not checked.
    verified: bool | None = field(default=None, kw_only=True)
    #: `valid`, `invalid` or `unsigned`; None: a signed card not checked yet.
    signature: str | None = field(default=None, kw_only=True)


@dataclass(frozen=True, slots=True)
class StoredAgentDetail(StoredAgent):
    """One agent in full: the summary and its live instances (the card is read by `card`).

    `registry_revision` is the global revision at the moment of the read.
    """

    instances: tuple[StoredInstance, ...]
    registry_revision: int


@dataclass(frozen=True, slots=True)
class StoredCard:
    """An agent's card exactly as stored, with its digest."""

    card: bytes
    digest: str


@dataclass(frozen=True, slots=True)
class StoredPage:
    """One page of agents, the global revision it is exactly the state of, and where the next
    page starts.

    `next_cursor` is None once the scan reached the end.
    """

    revision: int
    agents: list[StoredAgent]
    next_cursor: str | None


class RegistryReader:
    """Reads agents, cards and the revision of one registry (one key prefix)."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        text_budget: int = TEXT_BUDGET,
        scan_budget: int = SCAN_BUDGET,
    ) -> None:
        self.redis = redis
        self.keys = Keys(prefix)
        self.text_budget = text_budget
        self.scan_budget = scan_budget
        # concurrent reads of agents are merged into one call (`GET /v1/agents/{id}`'s CPU)
        self._read_agent = Script(redis, READ_AGENT, batched=True)
        self._query = Script(redis, QUERY)

    async def revision(self) -> int:
        """The global revision: how many changes the registry has made."""
        return _int(await self.redis.get(self.keys.revision)) or 0

    async def get_agent(self, agent_id: str) -> StoredAgentDetail | None:
        """One agent with its live instances, in one round trip; None if unknown."""
        args = {"P": self.keys.base, "max_instances": MAX_INSTANCES}
        (reply,) = await self._read_agent([self.keys.agent(agent_id)], args, [agent_id])
        head, tail = self._read_agent.head(reply)
        summary = _summary_fields(agent_id, head["summary"], head["live"])
        if summary is None:
            return None
        return StoredAgentDetail(
            **summary,
            instances=tuple(
                StoredInstance(
                    instance_id=_text(instance_id),
                    lease_deadline_ms=_int(deadline) or 0,
                    first_seen_ms=_int(first_seen),
                    last_seen_ms=_int(last_seen),
                )
                for instance_id, deadline, first_seen, last_seen in self._read_agent.rows(tail)
            ),
            registry_revision=_int(head["revision"]) or 0,
        )

    async def get_card(self, agent_id: str) -> StoredCard | None:
        """An agent's card exactly as stored and its digest; None if unknown."""
        card, digest = await self.redis.hmget(self.keys.agent(agent_id), ["card", "digest"])
        if card is None or digest is None:
            return None
        return StoredCard(_bytes(card), _text(digest))

    async def cards(self, agent_ids: list[str]) -> list[bytes | None]:
        """These agents' cards exactly as stored, in order, in one pipelined round trip.

        None for an agent that is unknown (or was deleted since it was listed).
        """
        if not agent_ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for agent_id in agent_ids:
            pipe.hmget(self.keys.agent(agent_id), ["card"])
        replies = await pipe.execute()
        return [None if card is None else _bytes(card) for (card,) in replies]

    async def search_fields(self, agent_ids: list[str]) -> list[tuple[str, str] | None]:
        """These agents' index terms (newline-separated) and search text as stored, in order,
        in one pipelined round trip; None for an agent without them (deleted since)."""
        if not agent_ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for agent_id in agent_ids:
            pipe.hmget(self.keys.agent(agent_id), ["terms", "text", "status"])
        replies = await pipe.execute()
        return [
            None if status is None else (_text(terms or b""), _text(text or b""))
            for terms, text, status in replies
        ]

    async def list_agents(
        self,
        status: ListStatus = "live",
        limit: int = 100,
        cursor: str | None = None,
        filters: Filters | None = None,
    ) -> StoredPage:
        """A page of matching agents in agent id order, after `cursor` (the last id returned).

        The status set and one secondary index per filter are intersected in Redis
        (`query.lua`), before the page is cut: a page is short only at the end of the matches,
        or when one request has spent its budget (`scan_budget` ids examined, or with `q` the
        text budget): then it carries a cursor, and may even be empty.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        filters = filters or Filters()
        status_set = self.keys.agents if status == "all" else self.keys.status(status)
        sets = [status_set, *(self.keys.index(term) for term in filters.terms())]
        args = {
            "P": self.keys.base,
            "cursor": cursor or "",
            "limit": limit,
            "budget": self.scan_budget,
            "q": filters.text(),
            "text_budget": self.text_budget,
        }
        head, tail = self._query.head(await self._query([self.keys.revision], args, sets))
        revision, next_cursor = int(head["revision"]), _text(head["next_cursor"])
        rows = [
            _summary(_text(agent_id), summary, live)
            for agent_id, summary, live in self._query.rows(tail)
        ]
        # a set member without its hash (the scripts change both together) is left out
        return StoredPage(revision, [r for r in rows if r is not None], next_cursor or None)


def _summary(agent_id: str, values: list[Any], live: Any) -> StoredAgent | None:
    """Build a summary from the `SUMMARY_FIELDS` values; None when the agent has no record."""
    summary = _summary_fields(agent_id, values, live)
    return None if summary is None else StoredAgent(**summary)


def _summary_fields(agent_id: str, values: list[Any], live: Any) -> dict[str, Any] | None:
    """A `StoredAgent`'s fields from the `SUMMARY_FIELDS` values (a detail adds its own);
    None when the agent has no record."""
    record = dict(zip(SUMMARY_FIELDS, values, strict=True))
    status, digest, view = record["status"], record["digest"], record["view"]
    if status is None:
        return None
    return {
        "agent_id": agent_id,
        "status": _text(status),
        "revision": _int(record["rev"]) or 0,
        "digest": _text(digest) if digest is not None else "",
        "view": _view(view),
        "first_seen_ms": _int(record["first_seen"]),
        "last_seen_ms": _int(record["last_seen"]),
        "ttl_ms": _int(record["ttl"]) or 0,
        "interval_ms": _int(record["interval"]) or 0,
        "idle_ttl_ms": _int(record["idle_ttl"]) or 0,
        "live_instances": _int(live) or 0,
        "verified": _flag(record["verified"]),
        "signature": _text(record["signature"]) if record["signature"] else None,
    }


def _flag(value: Any) -> bool | None:
    """A stored `1`/`0`, None when absent (or empty: an event's field for a nil)."""
    if value is None or value in (b"", ""):
        return None
    return _text(value) == "1"


def _view(raw: Any) -> dict[str, Any]:
    """The stored view as JSON; an absent or unreadable one is empty rather than an error."""
    if raw is None:
        return {}
    try:
        view = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return view if isinstance(view, dict) else {}


def _bytes(value: Any) -> bytes:
    """A reply as bytes, whether the client decodes responses or not."""
    if isinstance(value, bytes):
        return value
    return str(value).encode() if value is not None else b""


def _text(value: Any) -> str:
    """A reply as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _int(value: Any) -> int | None:
    """A numeric reply (Redis stores numbers as strings; scores may come back as floats)."""
    if value is None or isinstance(value, int):
        return value
    try:
        return int(value)  # bytes or str of an integer (the usual case), or a float
    except ValueError:  # "1.5", "1e3"
        return int(float(_text(value)))
