"""The Roster's copy of the registry, without I/O: agents, their filter terms, small indexes.

`RosterState` takes listed agents (`relist`) and events (`apply`) and answers `find` with the
filter rules of `GET /v1/agents` (`agentroster.registry.terms`, which imports only contracts,
so the base install has it). Each agent's index terms and search text are computed once per
change, and two small indexes (term -> ids, status -> ids) let `find` start from the smallest
candidate set instead of scanning every agent.

The scope of a Roster (its `Filters` and status) decides which agents it holds: an event that
takes an agent out of the scope removes it (`Change.after` is None), one that brings it in adds
it (`Change.before` is None).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from pydantic import Field, ValidationError

from agentroster.client.models import Agent, AgentInfo, _Reader
from agentroster.contracts.cards import card_digest
from agentroster.registry.terms import (
    Filters,
    index_terms,
    search_text,
    signature_term,
    verified_term,
)

#: Statuses a filter may ask for; `all` is every agent.
STATUSES = ("live", "idle", "offline", "all")
#: An empty index set (never changed).
_NONE: frozenset[str] = frozenset()
#: The event kind that removes an agent from the registry (retention), if the registry sends it.
DELETED = "deleted"


class EventData(_Reader):
    """An event's body (`AgentEvent`), read as tolerantly as the other client models."""

    agent_id: str
    revision: int
    status: str
    live_instances: int = 0
    reason: str = ""
    agent: AgentInfo = Field(default_factory=AgentInfo)
    card: dict[str, Any] | None = None
    verified: bool | None = None
    signature: str | None = None


class BadEvent(ValueError):
    """An event the Roster cannot read: it re-lists instead of guessing."""


def parse_event(kind: str, data: str | bytes) -> tuple[str, EventData]:
    """The kind (`joined`, ... without `agent.`) and body of one event."""
    try:
        body = EventData.model_validate_json(data)
    except ValidationError as exc:
        raise BadEvent(f"an {kind!r} event does not parse: {exc.error_count()} errors") from exc
    return kind.removeprefix("agent."), body


@dataclass(frozen=True, slots=True)
class Change:
    """One change of a Roster's content.

    `kind` is the registry's event kind (`joined`, `updated`, `left`, `deleted`), or, for a
    change found by re-listing (`relisted` True), `joined`/`updated`/`left` as the difference
    between the old and the new list. `before`/`after` are the agent in this Roster before and
    after (None: it was not / is no longer in it, e.g. it left the Roster's filters).
    """

    kind: str
    agent_id: str
    revision: int
    reason: str
    before: Agent | None
    after: Agent | None
    relisted: bool = False


@dataclass(frozen=True, slots=True)
class Entry:
    """One agent held, with what `find` reads precomputed."""

    agent: Agent
    terms: frozenset[str]
    text: str


def make_filters(
    *,
    skill: str | Iterable[str] | None = None,
    tag: str | None = None,
    protocol: str | None = None,
    transport: str | None = None,
    q: str | None = None,
    labels: Mapping[str, str] | None = None,
    verified: bool | None = None,
    signature: str | None = None,
) -> Filters:
    """`Filters` from the keyword arguments `DiscoveryClient.find` takes."""
    skills = (skill,) if isinstance(skill, str) else tuple(skill or ())
    return Filters(
        skills=skills,
        tag=tag,
        protocol=protocol,
        transport=transport,
        labels=tuple((labels or {}).items()),
        q=q,
        verified=verified,
        signature=signature,
    )


def check_status(status: str) -> str:
    """`status` if it is one a filter may ask for; `ValueError` otherwise."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {status!r}")
    return status


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause CPython's cyclic collector for one synchronous bulk step (never across an await).

    A list allocates about 15 containers per agent; while the heap grows by 100,000 agents
    the collector traverses it again and again: a 20,000-agent list took 3.5 times as long
    with it running (bench/README.md, Roster). Nothing built here forms cycles.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def entry_of(agent: Agent) -> Entry:
    """An agent with its index terms (verification included) and search text."""
    terms = index_terms(agent.agent)
    if agent.verified is not None:  # indexed beside the card's terms, as the API does
        terms.append(verified_term(agent.verified))
    if agent.signature is not None:  # as the registry indexes it (apply.lua, signature.lua)
        terms.append(signature_term(agent.signature))
    return Entry(agent, frozenset(terms), search_text(agent.agent))


def _same(a: Agent, b: Agent) -> bool:
    """Whether two records of one agent say the same, apart from the revision numbering."""
    return (a.status, a.live_instances, a.card_digest, a.verified, a.signature, a.agent) == (
        b.status,
        b.live_instances,
        b.card_digest,
        b.verified,
        b.signature,
        b.agent,
    )


class RosterState:
    """The agents of one scope (filters and status) at one revision, with indexes."""

    def __init__(self, scope: Filters, status: str = "all") -> None:
        self.scope = scope
        self.status = check_status(status)
        self.revision = 0
        self._entries: dict[str, Entry] = {}
        #: The same agents without their entries: one pointer less to chase per match.
        self._agents: dict[str, Agent] = {}
        self._by_term: dict[str, set[str]] = {}
        self._by_status: dict[str, set[str]] = {}
        #: Per listed agent, the revision of its listed record: events at or below it are
        #: already in the list (see the Roster module's docstring). Emptied once passed.
        self._listed: dict[str, int] = {}
        self._list_top = 0
        #: Every id held, sorted; rebuilt on demand after an agent came or went.
        self._order: list[str] | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, agent_id: str) -> Agent | None:
        """The agent held under this id, if any."""
        return self._agents.get(agent_id)

    def agents(self) -> list[Agent]:
        """Every agent held, in agent id order."""
        return [self._agents[a] for a in sorted(self._agents)]

    def _in_scope(self, entry: Entry) -> bool:
        if self.status != "all" and entry.agent.status != self.status:
            return False
        return self.scope.matches(entry.terms, entry.text)

    def _put(self, entry: Entry) -> None:
        agent_id = entry.agent.agent_id
        if self._unindex(agent_id) is None:
            self._order = None  # a new id: the cached order no longer has it
        self._entries[agent_id] = entry
        self._agents[agent_id] = entry.agent
        for term in entry.terms:
            self._by_term.setdefault(term, set()).add(agent_id)
        self._by_status.setdefault(entry.agent.status, set()).add(agent_id)

    def _drop(self, agent_id: str) -> None:
        if self._unindex(agent_id) is not None:
            self._order = None

    def _unindex(self, agent_id: str) -> Entry | None:
        entry = self._entries.pop(agent_id, None)
        if entry is None:
            return None
        del self._agents[agent_id]
        for term in entry.terms:
            ids = self._by_term[term]
            ids.discard(agent_id)
            if not ids:
                del self._by_term[term]
        self._by_status[entry.agent.status].discard(agent_id)
        return entry

    def relist(self, agents: Iterable[Agent], revision: int) -> list[Change]:
        """Replace the content by a fresh list whose first page was at `revision`.

        Returns the differences from the previous content as `relisted` changes (none for an
        agent whose record says the same apart from its revision).
        """
        listed = list(agents)
        with paused_gc():
            fresh = {a.agent_id: e for a in listed if self._in_scope(e := entry_of(a))}
        changes: list[Change] = []
        for agent_id in sorted(self._entries.keys() | fresh.keys()):
            old, new = self._entries.get(agent_id), fresh.get(agent_id)
            if old is not None and new is not None and _same(old.agent, new.agent):
                continue
            kind = "joined" if old is None else "left" if new is None else "updated"
            rev = new.agent.revision if new is not None else revision
            changes.append(
                Change(
                    kind,
                    agent_id,
                    rev,
                    "relisted",
                    old.agent if old else None,
                    new.agent if new else None,
                    relisted=True,
                )
            )
        self._entries.clear()
        self._agents.clear()
        self._by_term.clear()
        self._by_status.clear()
        self._order = None
        with paused_gc():
            for entry in fresh.values():
                self._put(entry)
        # every listed agent, in scope or not: an older event must not override its record
        self._listed = {a.agent_id: a.revision for a in listed}
        self._list_top = max((a.revision for a in listed), default=revision)
        self.revision = revision
        return changes

    def apply(self, kind: str, event: EventData) -> Change | None:
        """Apply one event (the next revision); the change it makes here, if any.

        An event for a listed agent whose record is at least as new is already in the list:
        skipped. An event that neither was nor is in scope changes nothing here.
        """
        self.revision = max(self.revision, event.revision)
        agent_id = event.agent_id
        if self._listed and self.revision > self._list_top:
            self._listed.clear()  # past every listed record: nothing more to skip
        listed = self._listed.pop(agent_id, None)
        if listed is not None and listed >= event.revision:
            self._listed[agent_id] = listed
            return None
        old = self._entries.get(agent_id)
        new: Entry | None = None
        if kind != DELETED:
            base = old.agent if old is not None else Agent(agent_id=agent_id, status=event.status)
            update: dict[str, Any] = {
                "status": event.status,
                "revision": event.revision,
                "live_instances": event.live_instances,
                "agent": event.agent,
                "verified": event.verified,
                "signature": event.signature,
            }
            if event.card is not None:
                update["card_digest"] = card_digest(event.card)
            candidate = entry_of(base.model_copy(update=update))
            if self._in_scope(candidate):
                new = candidate
        if old is None and new is None:
            return None
        if new is None:
            self._drop(agent_id)
        else:
            self._put(new)
        return Change(
            kind,
            agent_id,
            event.revision,
            event.reason,
            old.agent if old else None,
            new.agent if new else None,
        )

    def find(self, filters: Filters, status: str = "live") -> list[Agent]:
        """The agents held that pass `filters` and have `status` (`all`: any), in id order.

        The index sets of the filter's terms (and of the status) are intersected, smallest
        first, in C; only `q` reads each remaining agent's text.
        """
        pools = [self._by_term.get(term, _NONE) for term in filters.terms()]
        if status != "all":
            pools.append(self._by_status.get(status, _NONE))
        entries = self._entries
        q = filters.text()
        ids: AbstractSet[str]
        if pools:
            pools.sort(key=len)
            ids = pools[0].intersection(*pools[1:]) if len(pools) > 1 else pools[0]
            if q:
                ids = {a for a in ids if q in entries[a].text}
        elif q:
            ids = {a for a, entry in entries.items() if q in entry.text}
        else:
            ids = entries.keys()
        agents = self._agents
        return [agents[a] for a in self._ordered(ids)]

    def _ordered(self, ids: AbstractSet[str]) -> list[str]:
        """`ids` in id order: sorted when few, else picked from the cached order of all ids."""
        count = len(ids)
        if count * max(count.bit_length(), 1) < len(self._entries):
            return sorted(ids)
        if self._order is None:
            self._order = sorted(self._entries)
        if count == len(self._entries):
            return self._order
        return [a for a in self._order if a in ids]
