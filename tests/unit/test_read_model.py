"""The in-memory read model, without Redis: indexes, paging, loading against fake pages and
events, gaps and resets that rebuild, and waiting for a revision."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Sequence
from typing import Any

import orjson
import pytest

from agentroster.api.models import summary_json
from agentroster.api.read_model import ReadModel, RevisionNotReached, TooManyWaiting
from agentroster.api.read_model.index import (
    AgentIndex,
    entry_from_record,
    record_from_event,
)
from agentroster.contracts import AgentView, agent_view
from agentroster.registry.terms import Filters, index_terms, search_text
from agentroster.store.outbox import OutboxEvent
from agentroster.store.reader import StoredAgent, StoredPage

SKILLS = ("translate", "summarize", "forecast", "search")


def view(agent_id: str, skills: Sequence[str], team: str = "red") -> dict[str, Any]:
    """A stored view as the worker writes it."""
    card = {
        "name": f"Agent {agent_id}",
        "description": "does things",
        "version": "1.0.0",
        "supportedInterfaces": [
            {"url": f"http://x/{agent_id}", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"}
        ],
        "skills": [{"id": s, "name": s.title(), "tags": [s[:3]]} for s in skills],
    }
    data: dict[str, Any] = orjson.loads(agent_view(card, None, {"team": team}).model_dump_json())
    return data


def record(agent_id: str, revision: int, status: str = "live", **more: Any) -> StoredAgent:
    """An agent's summary as Redis (or an event) gives it."""
    n = int(agent_id[1:])
    fields: dict[str, Any] = {
        "agent_id": agent_id,
        "status": status,
        "revision": revision,
        "digest": f"sha256:{n}",
        "view": view(agent_id, SKILLS[: 1 + n % len(SKILLS)], ("red", "blue")[n % 2]),
        "first_seen_ms": 1_700_000_000_000,
        "last_seen_ms": 1_700_000_000_000 + revision,
        "ttl_ms": 30_000,
        "interval_ms": 10_000,
        "idle_ttl_ms": 0,
        "live_instances": 1 if status == "live" else 0,
    }
    return StoredAgent(**(fields | more))


def event(revision: int, agent_id: str, kind: str = "joined", status: str = "live") -> OutboxEvent:
    """An outbox entry about an agent."""
    r = record(agent_id, revision, status)
    return OutboxEvent(
        revision=revision,
        kind=kind,  # type: ignore[arg-type]
        agent_id=agent_id,
        status=status,
        live_instances=r.live_instances,
        reason="registered",
        time_ms=0,
        epoch="e",
        view=orjson.dumps(r.view),
        card=None,
        digest=r.digest,
        first_seen_ms=r.first_seen_ms,
        last_seen_ms=r.last_seen_ms,
        ttl_ms=r.ttl_ms,
        interval_ms=r.interval_ms,
        idle_ttl_ms=r.idle_ttl_ms,
    )


def brute_force(
    records: dict[str, StoredAgent], status: str, filters: Filters
) -> list[StoredAgent]:
    """The matching agents in id order, computed the slow obvious way."""
    out = []
    for agent_id in sorted(records):
        r = records[agent_id]
        v = agent_view_of(r)
        if (status == "all" or r.status == status) and filters.matches(
            frozenset(index_terms(v)), search_text(v)
        ):
            out.append(r)
    return out


def agent_view_of(r: StoredAgent) -> AgentView:
    """The record's view as the contract's model."""
    return AgentView.model_validate(r.view)


def walk(index: AgentIndex, status: str, filters: Filters, limit: int, budget: int) -> list[Any]:
    """Every page of a query, following cursors."""
    got: list[Any] = []
    cursor = None
    while True:
        page = index.page(status, limit, cursor, filters, budget)
        got += orjson.loads(orjson.dumps(page.agents))
        if page.next_cursor is None:
            return got
        cursor = page.next_cursor


def test_an_entry_holds_the_summary_json_the_redis_path_writes() -> None:
    """The prepared fragment is byte for byte `summary_json` encoded as a page does it."""
    r = record("a7", 12)
    entry = entry_from_record(r)
    assert orjson.dumps(entry.json) == orjson.dumps(summary_json(r), option=orjson.OPT_UTC_Z)
    assert "skill:translate" in entry.terms
    assert "label:team=blue" in entry.terms


def test_an_event_carries_the_whole_summary() -> None:
    """A summary rebuilt from an outbox event equals the record it was made from."""
    assert record_from_event(event(5, "a3")) == record("a3", 5)


FILTERS = [
    Filters(),
    Filters(skills=("forecast",)),
    Filters(skills=("translate", "search")),
    Filters(tag="SEA"),
    Filters(labels=(("team", "red"),)),
    Filters(skills=("summarize",), labels=(("team", "blue"),)),
    Filters(q="agent a1"),
    Filters(q="forecast", protocol="a2a", transport="http"),
    Filters(protocol="mcp"),
]


@pytest.mark.parametrize("filters", FILTERS)
@pytest.mark.parametrize("status", ["live", "offline", "all"])
def test_pages_walk_every_match_once_in_id_order(filters: Filters, status: str) -> None:
    """Every filter and status, any page size, with or without a tight budget: the walk
    returns exactly the brute-force answer; a page is full unless it is the last."""
    rng = random.Random(7)
    records = {
        f"a{n:03d}": record(f"a{n:03d}", n, rng.choice(["live", "live", "offline"]))
        for n in range(200)
    }
    index = AgentIndex()
    for r in rng.sample(list(records.values()), len(records)):
        index.put(entry_from_record(r))
    expected = [summary_json(r)["agent_id"] for r in brute_force(records, status, filters)]
    for limit in (1, 7, 1000):
        got = walk(index, status, filters, limit, budget=10**9)
        assert [a["agent_id"] for a in got] == expected
        page = index.page(status, limit, None, filters, 10**9)
        assert len(page.agents) == min(limit, len(expected))
        assert (page.next_cursor is None) == (len(expected) <= limit)
    # a budget cuts pages short with a cursor, and the walk still sees every match once
    assert [a["agent_id"] for a in walk(index, status, filters, 7, budget=5)] == expected


def test_changes_and_removals_keep_every_index_in_step() -> None:
    """An agent changing status and skills, then deleted, is listed where it is, only."""
    index = AgentIndex()
    index.put(entry_from_record(record("a1", 1)))  # translate, summarize; blue
    index.put(entry_from_record(record("a1", 2, status="offline", view=view("a1", ["plan"]))))
    assert walk(index, "live", Filters(), 10, 10**9) == []
    assert walk(index, "offline", Filters(skills=("translate",)), 10, 10**9) == []
    (only,) = walk(index, "offline", Filters(skills=("plan",)), 10, 10**9)
    assert only["revision"] == 2
    index.remove("a1")
    index.remove("a1")  # twice: no error
    assert len(index) == 0
    assert walk(index, "all", Filters(skills=("plan",)), 10, 10**9) == []


class FakeReader:
    """Pages of a registry that changes while it is read: page i at revision R_i."""

    def __init__(self, pages: list[tuple[int, list[StoredAgent]]]) -> None:
        self.pages = pages
        self.gate = asyncio.Event()
        self.gate.set()

    async def list_agents(
        self, status: str, limit: int, cursor: str | None, filters: Filters | None = None
    ) -> StoredPage:
        await self.gate.wait()
        at = 0 if cursor is None else int(cursor)
        revision, agents = self.pages[at]
        more = str(at + 1) if at + 1 < len(self.pages) else None
        return StoredPage(revision, agents, more)

    async def search_fields(self, agent_ids: list[str]) -> list[tuple[str, str] | None]:
        """Nothing stored beside the views: entries are built from the views."""
        return [None for _ in agent_ids]

    async def revision(self) -> int:
        """The registry's revision: ahead of every revision these tests wait for."""
        return 10**9


class FakeFollower:
    """Positioned at once; remembers its subscriber."""

    def __init__(self, position: int) -> None:
        self.position = position
        self.subscriber: Any = None
        self.subscribers = 0

    async def positioned(self) -> None:
        return None

    def subscribe(self, subscriber: Any) -> int:
        self.subscriber, self.subscribers = subscriber, 1
        return self.position

    def unsubscribe(self, subscriber: Any) -> None:
        self.subscriber, self.subscribers = None, 0

    def hand_out(self, events: list[OutboxEvent]) -> None:
        self.position = events[-1].revision
        self.subscriber.deliver(events)


class FakeOutbox:
    """Holds no event the follower has not handed out."""

    async def after(self, revision: int, count: int, block_ms: int | None) -> list[OutboxEvent]:
        return []


def make_model(reader: FakeReader, follower: FakeFollower, **more: Any) -> ReadModel:
    options: dict[str, Any] = {"scan_budget": 10**6, "max_waiting": 10} | more
    return ReadModel(reader, follower, FakeOutbox(), **options)  # type: ignore[arg-type]


async def until_ready(model: ReadModel) -> None:
    async with asyncio.timeout(10):  # only against a hang
        await model.loaded()


async def test_a_load_across_changes_ends_equal_to_the_registry() -> None:
    """Pages read at increasing revisions while agents change, join and are deleted: buffered
    events after the start position are applied unless the loaded record is as new."""
    # registry at revision 10: a1 (rev 3), a2 (rev 5), a3 (rev 10). While loading:
    # 11 a1 updated (page 1 read before it), 12 a3 deleted (page 2 read at 12: gone),
    # 13 a4 joined (page 2 read at 13 saw it), 14 a2 goes offline (after the load)
    reader = FakeReader(
        [
            (10, [record("a1", 3), record("a2", 5)]),
            (13, [record("a4", 13)]),
        ]
    )
    follower = FakeFollower(10)
    model = make_model(reader, follower)
    reader.gate.clear()
    await model.start()
    await asyncio.sleep(0)
    follower.hand_out([event(11, "a1", "updated"), event(12, "a3", "deleted")])
    follower.hand_out([event(13, "a4")])
    reader.gate.set()
    await until_ready(model)
    follower.hand_out([event(14, "a2", "left", "offline")])
    assert model.revision == 14
    assert {a: e.revision for a, e in model.index.entries.items()} == {
        "a1": 11,
        "a2": 14,
        "a4": 13,
    }
    assert model.index.entries["a2"].status == "offline"
    await model.stop()


async def test_a_gap_or_a_reset_rebuilds_and_nothing_is_served_meanwhile() -> None:
    """An event that is not revision + 1 (or a reset) makes the model unready until a new
    load is complete; the events from the gap on are applied after that load."""
    reader = FakeReader([(5, [record("a1", 5)])])
    follower = FakeFollower(5)
    model = make_model(reader, follower)
    await model.start()
    await until_ready(model)
    assert model.loads == 1
    reader.pages = [(100, [record("a9", 100)])]  # another registry (data loss)
    reader.gate.clear()
    follower.hand_out([event(100, "a9"), event(101, "a8")])
    assert not model.ready
    with pytest.raises(RuntimeError):
        model.page("live", 10, None, Filters())
    reader.gate.set()
    await until_ready(model)
    assert sorted(model.index.entries) == ["a8", "a9"]  # a1 was of the lost registry
    assert (model.revision, model.loads) == (101, 2)

    model.reset()
    assert not model.ready
    await until_ready(model)
    assert model.loads == 3
    await model.stop()


async def test_waiting_for_a_revision_is_bounded_in_time_and_in_number() -> None:
    """`reach` returns when the revision arrives, fails after its timeout, and refuses
    callers beyond `max_waiting`."""
    reader = FakeReader([(1, [record("a1", 1)])])
    follower = FakeFollower(1)
    model = make_model(reader, follower, max_waiting=1)
    await model.start()
    await until_ready(model)
    await model.reach(1, 0)  # already there
    waiting = asyncio.create_task(model.reach(2, 10))
    await asyncio.sleep(0)
    with pytest.raises(TooManyWaiting):
        await model.reach(3, 10)
    follower.hand_out([event(2, "a2")])
    await waiting
    with pytest.raises(RevisionNotReached) as raised:
        await model.reach(3, 0.01)
    assert raised.value.status == 503
    assert raised.value.details["revision"] == 2
    await model.stop()


def test_filters_cover_pairs() -> None:
    """Guard for the parametrisation above: pairs of filters are among the cases."""
    assert any(len(f.terms()) >= 2 for f in FILTERS)
    assert list(itertools.islice(FILTERS, 1)) == [Filters()]


def test_an_entry_from_the_stored_terms_and_text_equals_one_from_the_view() -> None:
    """Loading takes the terms and search text the worker stored instead of validating the
    view again; both ways give the same entry."""
    r = record("a5", 9)
    from_view = entry_from_record(r)
    v = agent_view_of(r)
    stored = entry_from_record(r, ("\n".join(index_terms(v)), search_text(v)))
    assert (stored.terms, stored.text) == (from_view.terms, from_view.text)
    assert orjson.dumps(stored.json) == orjson.dumps(from_view.json)
