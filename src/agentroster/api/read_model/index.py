"""The registry's agents in memory: one prepared entry per agent and sorted id indexes.

Pure (no I/O, no clock): `AgentIndex.put` and `remove` keep every index in step with the
entries; `page` answers `GET /v1/agents` with the same filter rules as the Redis query path
(`Filters.matches`, `registry/terms.py`) and the same paging (agent id order, after `cursor`).

Each entry carries its summary JSON encoded once, when the agent changed (`orjson.Fragment`,
the bytes `api/models.summary_json` gives), its index terms and its search text: a page is cut
by walking the smallest candidate list (the status list or one term's list) after the cursor and
checking the other filters on each entry, then embedding the fragments as they are.

Sorted lists of ids (`bisect`) rather than a balanced tree: lookups and the walk are C-speed
list operations, and an insert or removal moves at most a few hundred KB of pointers (tens of
µs at a million agents), once per change.
"""

from __future__ import annotations

import sys
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from agentroster.api.models import summary_json
from agentroster.contracts import AgentView
from agentroster.registry.terms import (
    Filters,
    index_terms,
    search_text,
    signature_term,
    verified_term,
)
from agentroster.store.outbox import OutboxEvent
from agentroster.store.reader import StoredAgent

#: The statuses an agent is listed under (`all` is every agent).
STATUSES = ("live", "idle", "offline")


@dataclass(frozen=True, slots=True)
class Entry:
    """One agent as the read model holds it, prepared for pages."""

    agent_id: str
    status: str
    #: The revision of the agent's last change (its last event).
    revision: int
    #: Sorted and interned (to move the agent between index lists when it changes); a tuple,
    #: a fifth of a frozenset's memory.
    terms: tuple[str, ...]
    #: Lower-cased name, description, skill ids and names (what `q` searches).
    text: str
    #: The agent's summary JSON, as a page embeds it.
    json: orjson.Fragment


def entry_from_record(record: StoredAgent, stored: tuple[str, str] | None = None) -> Entry:
    """Prepare an agent's entry from its summary (read from Redis, or built from an event).

    `stored` is the agent's index terms (newline-separated) and search text as the worker
    stored them beside the view, when read with it: then the view is not validated again
    (most of a load's CPU).
    """
    if stored is not None:
        terms = tuple(sys.intern(term) for term in stored[0].split("\n") if term)
        text = stored[1]
    else:
        try:
            view = AgentView.model_validate(
                {key: value for key, value in record.view.items() if key in AgentView.model_fields}
            )
            found = index_terms(view)
            if record.verified is not None:  # stored beside the others (verify.lua)
                found.append(verified_term(record.verified))
            if record.signature is not None:  # as apply.lua and signature.lua index it
                found.append(signature_term(record.signature))
            terms = tuple(sys.intern(term) for term in found)
            text = search_text(view)
        except ValidationError:  # as `summary_json` shows it: an empty view matches no filter
            terms, text = (), ""
    # copied: the bytes orjson returns keep its whole output buffer (several KiB for a 1.5 KiB
    # summary), the copy is exact; it halved the model's memory (bench/README.md, Discovery)
    encoded = bytes(memoryview(orjson.dumps(summary_json(record), option=orjson.OPT_UTC_Z)))
    return Entry(
        agent_id=record.agent_id,
        status=sys.intern(record.status),
        revision=record.revision,
        terms=terms,
        text=text,
        json=orjson.Fragment(encoded),
    )


def record_from_event(event: OutboxEvent) -> StoredAgent:
    """The agent's summary as of this event (its `last_seen` is the one of this change)."""
    try:
        view: Any = orjson.loads(event.view)
    except orjson.JSONDecodeError:
        view = {}
    return StoredAgent(
        agent_id=event.agent_id,
        status=event.status,
        revision=event.revision,
        digest=event.digest,
        view=view if isinstance(view, dict) else {},
        first_seen_ms=event.first_seen_ms,
        last_seen_ms=event.last_seen_ms,
        ttl_ms=event.ttl_ms,
        interval_ms=event.interval_ms,
        idle_ttl_ms=event.idle_ttl_ms,
        live_instances=event.live_instances,
        verified=event.verified,
        signature=event.signature,
    )


@dataclass(frozen=True, slots=True)
class Page:
    """A page cut from memory: the entries' JSON and where the next page starts."""

    agents: list[orjson.Fragment]
    next_cursor: str | None


def _holds(ids: list[str], agent_id: str) -> bool:
    at = bisect_left(ids, agent_id)
    return at < len(ids) and ids[at] == agent_id


def _insert(ids: list[str], agent_id: str) -> None:
    at = bisect_left(ids, agent_id)
    if at == len(ids) or ids[at] != agent_id:
        ids.insert(at, agent_id)


def _discard(ids: list[str], agent_id: str) -> None:
    at = bisect_left(ids, agent_id)
    if at < len(ids) and ids[at] == agent_id:
        del ids[at]


class AgentIndex:
    """Every agent's entry, and the ids sorted per status and per index term."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self._all: list[str] = []
        self._by_status: dict[str, list[str]] = {status: [] for status in STATUSES}
        self._by_term: dict[str, list[str]] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, agent_id: str) -> Entry | None:
        """The agent's entry, if the model holds it."""
        return self.entries.get(agent_id)

    def put(self, entry: Entry) -> None:
        """Add the agent, or replace what the model held of it."""
        old = self.entries.get(entry.agent_id)
        self.entries[entry.agent_id] = entry
        if old is None:
            _insert(self._all, entry.agent_id)
        if old is None or old.status != entry.status:
            if old is not None:
                _discard(self._by_status.setdefault(old.status, []), old.agent_id)
            _insert(self._by_status.setdefault(entry.status, []), entry.agent_id)
        before = set(old.terms) if old is not None else set()
        after = set(entry.terms)
        for term in before - after:
            self._discard_term(term, entry.agent_id)
        for term in after - before:
            _insert(self._by_term.setdefault(term, []), entry.agent_id)

    def remove(self, agent_id: str) -> None:
        """Forget the agent (deleted at the end of its retention)."""
        old = self.entries.pop(agent_id, None)
        if old is None:
            return
        _discard(self._all, agent_id)
        _discard(self._by_status.setdefault(old.status, []), agent_id)
        for term in old.terms:
            self._discard_term(term, agent_id)

    def _discard_term(self, term: str, agent_id: str) -> None:
        ids = self._by_term.get(term)
        if ids is not None:
            _discard(ids, agent_id)
            if not ids:  # a term no agent has any more costs nothing
                del self._by_term[term]

    def page(
        self, status: str, limit: int, cursor: str | None, filters: Filters, budget: int
    ) -> Page:
        """Up to `limit` matching agents after `cursor`, in id order.

        `next_cursor` is set when more matches exist, or when `budget` (ids examined, plus one
        per KiB of search text read for `q`) ran out first: then the page may be short, as on
        the Redis path, and the cursor says where to go on.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        terms = filters.terms()
        candidates = [self._all if status == "all" else self._by_status.get(status, [])]
        candidates += [self._by_term.get(term, []) for term in terms]
        driver = min(candidates, key=len)
        start = bisect_right(driver, cursor) if cursor else 0
        # the loop runs on the event loop for every agent examined: C-level checks only
        by_status = status != "all" and driver is not candidates[0]
        # the other candidate lists: membership by bisection, without per-entry term sets
        others = [ids for ids in candidates[1:] if ids is not driver]
        q = filters.text()
        entries = self.entries
        found: list[orjson.Fragment] = []
        spent = 0
        last = last_found = ""
        end = len(driver)
        for at in range(start, end):
            agent_id = driver[at]
            entry = entries[agent_id]
            last = agent_id
            spent += 1
            if q:
                spent += len(entry.text) >> 10  # a long text costs once per KiB, as on Redis
            if (
                (not by_status or entry.status == status)
                and (not others or all(_holds(ids, agent_id) for ids in others))
                and (not q or q in entry.text)
            ):
                if len(found) == limit:  # one more match: the page is full, not the end
                    return Page(found, last_found)
                found.append(entry.json)
                last_found = agent_id
            if spent >= budget and at + 1 < end:
                return Page(found, last)
        return Page(found, None)
