"""`Roster` against `httpx.MockTransport`: list + follow, skips, resumes, re-lists, filters.

No services: `FakeApi` plays `GET /v1/agents` (scripted pages) and `GET /v1/events` (scripted
streams of server-sent events, each one connection).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from agentroster.client import Change, Changes, ChangesLost, DiscoveryError, Roster, RosterClosed
from agentroster.client._sse import SseTooLarge, sse_events
from agentroster.client._state import entry_of
from agentroster.client.models import Agent, AgentInfo
from agentroster.contracts import AgentView
from agentroster.registry.terms import index_terms, search_text
from tests.unit.test_discovery_client import summary

BASE_URL = "http://registry.test"


def view(agent_id: str, skills: tuple[str, ...] = ("echo",), **labels: str) -> dict[str, Any]:
    """An agent's view as events and lists carry it."""
    return {
        "name": agent_id.title(),
        "description": f"The {agent_id} agent",
        "version": "1.0.0",
        "card_format": "generic",
        "endpoints": [
            {"transport": "http", "protocol": "a2a", "url": f"https://{agent_id}.example/"}
        ],
        "skills": [{"id": s, "name": s.title(), "tags": ["Tools"]} for s in skills],
        "tags": ["Tools"],
        "labels": labels,
    }


def listed(agent_id: str, revision: int, status: str = "live", **kw: Any) -> dict[str, Any]:
    """An agent as a list page carries it."""
    return summary(
        agent_id,
        revision=revision,
        status=status,
        live_instances=int(status == "live"),
        agent=view(agent_id, **kw),
    )


def sse(
    kind: str,
    agent_id: str,
    revision: int,
    status: str = "live",
    verified: bool | None = None,
    signature: str | None = None,
    **kw: Any,
) -> bytes:
    """One server-sent event as `GET /v1/events` writes it."""
    data: dict[str, Any] = {
        "agent_id": agent_id,
        "revision": revision,
        "status": status,
        "live_instances": int(status == "live"),
        "reason": {"joined": "registered", "left": "deregistered"}.get(kind, "card-changed"),
        "agent": view(agent_id, **kw),
        "card": {"name": agent_id} if kind in ("joined", "updated") else None,
    }
    if verified is not None:  # absent while the registry has not checked the card
        data["verified"] = verified
    if signature is not None:  # absent while a signed card is not checked
        data["signature"] = signature
    return (
        f"id: {revision}\r\nevent: agent.{kind}\r\ndata: ".encode()
        + orjson.dumps(data)
        + b"\r\n\r\n"
    )


class Cut(httpx.ReadError):
    """The connection broke mid-stream."""


class FakeApi:
    """Scripted answers: list pages in order (the last repeats), then event streams in order
    (each a list of chunks, a `Cut` to break it, or a status code); the last stream hangs."""

    def __init__(self) -> None:
        self.pages: deque[list[dict[str, Any]]] = deque()
        self.streams: deque[list[bytes | Cut] | int] = deque()
        self.event_requests: list[httpx.Request] = []
        self.list_requests: list[httpx.Request] = []
        self.hang = asyncio.Event()

    def lists(self, *pages: tuple[int, list[dict[str, Any]]]) -> None:
        """One full list: pages of (revision, agents), cursors filled in."""
        for n, (revision, agents) in enumerate(pages):
            more = n + 1 < len(pages)
            self.pages.append(
                [{"revision": revision, "agents": agents, "next_cursor": f"c{n}" if more else None}]
            )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/agents":
            self.list_requests.append(request)
            (page,) = self.pages.popleft() if len(self.pages) > 1 else self.pages[0]
            return httpx.Response(200, json=page)
        assert request.url.path == "/v1/events"
        self.event_requests.append(request)
        if not self.streams:
            return httpx.Response(200, content=self._hang())
        script = self.streams.popleft()
        if isinstance(script, int):
            code = "events-expired" if script == 410 else "unavailable"
            body = {"error": {"code": code, "message": code, "details": None}}
            return httpx.Response(script, json=body)
        return httpx.Response(200, content=self._chunks(script))

    async def _chunks(self, script: list[bytes | Cut]) -> AsyncIterator[bytes]:
        for chunk in script:
            if isinstance(chunk, Cut):
                raise chunk
            yield chunk
        await self.hang.wait()

    async def _hang(self) -> AsyncIterator[bytes]:
        yield b": ping\r\n\r\n"
        await self.hang.wait()


def roster(api: FakeApi, **kw: Any) -> Roster:
    """A Roster of the fake API, reconnecting fast."""
    return Roster(BASE_URL, http_transport=httpx.MockTransport(api), backoff_max_s=0.01, **kw)


@contextlib.asynccontextmanager
async def following(api: FakeApi, **kw: Any) -> AsyncIterator[tuple[Roster, Changes]]:
    """A started Roster of the fake API and its changes from before it started."""
    live = roster(api, sync_timeout=10, **kw)
    changes = live.changes()
    try:
        await live.start()
        yield live, changes
    finally:
        await live.aclose()


async def take(changes: AsyncIterator[Change], count: int) -> list[Change]:
    """The next `count` changes (the timeout only guards against a hang)."""

    async def read() -> list[Change]:
        return [await anext(changes) for _ in range(count)]

    return await asyncio.wait_for(read(), 10)


def brief(changes: list[Change]) -> list[tuple[str, str, int]]:
    return [(c.kind, c.agent_id, c.revision) for c in changes]


async def test_events_after_the_list_are_applied_and_reported() -> None:
    """List at 2, then joined/updated/left events: the copy follows, each change is reported
    with the agent before and after."""
    api = FakeApi()
    api.lists((2, [listed("a", 1), listed("b", 2)]))
    api.streams.append(
        [
            sse("joined", "c", 3),
            sse("updated", "a", 4, skills=("echo", "sum")),
            sse("left", "b", 5, status="offline"),
        ]
    )
    async with following(api) as (live, changes):
        got = await take(changes, 3)
        assert brief(got) == [("joined", "c", 3), ("updated", "a", 4), ("left", "b", 5)]
        assert got[0].before is None
        assert got[0].after is not None
        assert got[1].before is not None
        assert got[1].before.revision == 1
        assert got[2].after is not None
        assert got[2].after.status == "offline"
        assert live.revision == 5
        assert [a.agent_id for a in live.find()] == ["a", "c"]
        assert [a.agent_id for a in live.find(skill="sum")] == ["a"]
        assert [a.agent_id for a in live.find(status="offline")] == ["b"]
        assert api.event_requests[0].url.params["since"] == "2"


async def test_a_verification_event_updates_the_copy() -> None:
    """agent.updated (reason verified) changes only `verified`: the copy shows it, the change
    is reported, and a later event without the check (a new card) resets it."""
    api = FakeApi()
    api.lists((1, [listed("a", 1)]))
    api.streams.append(
        [sse("updated", "a", 2, verified=True), sse("updated", "a", 3, skills=("new",))]
    )
    async with following(api) as (live, changes):
        got = await take(changes, 2)
        assert got[0].before is not None
        assert got[0].before.verified is None
        assert got[0].after is not None
        assert got[0].after.verified is True
        assert got[1].after is not None
        assert got[1].after.verified is None
        agent = live.get("a")
        assert agent is not None
        assert agent.verified is None


async def test_a_signature_event_updates_the_copy() -> None:
    """agent.updated (reason signature) changes only `signature`: the copy shows it and the
    change is reported; a later event without it (a new signed card, not checked) resets it."""
    api = FakeApi()
    api.lists((1, [listed("a", 1)]))
    api.streams.append(
        [sse("updated", "a", 2, signature="invalid"), sse("updated", "a", 3, skills=("new",))]
    )
    async with following(api) as (_live, changes):
        got = await take(changes, 2)
        assert got[0].before is not None
        assert got[0].before.signature is None
        assert got[0].after is not None
        assert got[0].after.signature == "invalid"
        assert got[1].after is not None
        assert got[1].after.signature is None


async def test_find_by_signature_locally() -> None:
    """`find(signature=...)` matches the signature the copy holds, as the API's filter does."""
    api = FakeApi()
    api.lists((1, [listed("a", 1), listed("b", 1)]))
    api.streams.append([sse("updated", "a", 2, signature="valid")])
    async with following(api) as (live, changes):
        await take(changes, 1)
        assert [a.agent_id for a in live.find(signature="valid")] == ["a"]
        assert live.find(signature="invalid") == []
        assert [a.agent_id for a in live.find()] == ["a", "b"]


async def test_events_already_in_a_later_page_are_skipped() -> None:
    """Pages at revisions 10 and 12; following from 10, the events of an agent listed on the
    second page at its revision 12 are skipped, others applied: the copy is exact."""
    api = FakeApi()
    api.lists((10, [listed("a", 5)]), (12, [listed("c", 12, skills=("new",))]))
    api.streams.append(
        [
            sse("joined", "b", 11),  # b sorts on page 1 (read at 10): not listed, applied
            sse("updated", "c", 12, skills=("new",)),  # in c's listed record: skipped
            sse("left", "a", 13, status="offline"),
            sse("updated", "c", 14, skills=("newer",)),  # after c's record: applied
        ]
    )
    async with following(api) as (live, changes):
        got = await take(changes, 3)
        assert brief(got) == [("joined", "b", 11), ("left", "a", 13), ("updated", "c", 14)]
        assert live.revision == 14
        assert [(a.agent_id, a.status, a.revision) for a in live.agents()] == [
            ("a", "offline", 13),
            ("b", "live", 11),
            ("c", "live", 14),
        ]
        assert [a.agent_id for a in live.find(skill="newer")] == ["c"]


async def test_synced_waits_for_the_events_up_to_the_last_page() -> None:
    """Entering returns once the events up to the highest page revision are applied."""
    api = FakeApi()
    api.lists((1, []), (3, []))
    api.streams.append([sse("joined", "a", 2), sse("joined", "z", 3)])
    async with roster(api) as live:
        assert live.is_synced
        assert live.revision == 3
        assert len(live) == 2


async def test_a_cut_resumes_after_the_last_applied_revision() -> None:
    """After a broken connection the Roster asks for the events after the last one applied;
    a replayed duplicate is skipped: every change reported once, in order."""
    api = FakeApi()
    api.lists((0, []))
    api.streams.append([sse("joined", "a", 1), sse("joined", "b", 2), Cut("reset")])
    api.streams.append([sse("joined", "b", 2), sse("joined", "c", 3)])
    async with following(api) as (live, changes):
        got = await take(changes, 3)
        assert brief(got) == [("joined", "a", 1), ("joined", "b", 2), ("joined", "c", 3)]
        second = api.event_requests[1]
        assert second.url.params["since"] == "2"
        assert second.headers["Last-Event-ID"] == "2"
        assert live.lists == 1


async def test_410_lists_again_and_reports_the_difference() -> None:
    """`events-expired`: the Roster lists again and reports what differs, marked relisted."""
    api = FakeApi()
    api.lists((5, [listed("a", 4), listed("b", 5)]))
    api.lists((9, [listed("b", 5), listed("c", 8)]))
    api.streams.append(410)
    async with following(api) as (live, changes):
        got = await take(changes, 2)
        assert brief(got) == [("left", "a", 9), ("joined", "c", 8)]
        assert all(c.relisted for c in got)
        assert got[0].after is None
        assert [a.agent_id for a in live.agents()] == ["b", "c"]
        assert live.revision == 9
        assert live.lists == 2


async def test_a_revision_jump_lists_again() -> None:
    """Revisions are contiguous; a jump (a new keyspace after a data loss) means list again."""
    api = FakeApi()
    api.lists((1, [listed("a", 1)]))
    api.lists((1_700_000_000_001, [listed("a", 1_700_000_000_001, status="offline")]))
    api.streams.append([sse("joined", "b", 1_700_000_000_002)])
    async with following(api) as (live, changes):
        (change,) = await take(changes, 1)
        assert (change.kind, change.relisted) == ("updated", True)
        assert live.lists == 2
        assert "b" not in live


async def test_a_scope_keeps_only_matching_agents() -> None:
    """A Roster of one skill and status live: an agent leaving either leaves the Roster."""
    api = FakeApi()
    api.lists((2, [listed("a", 1), listed("b", 2)]))
    api.streams.append(
        [
            sse("updated", "a", 3, skills=("other",)),
            sse("left", "b", 4, status="offline"),
            sse("joined", "c", 5, skills=("other",)),
            sse("joined", "d", 6),
        ]
    )
    async with following(api, skill="echo", status="live") as (live, changes):
        got = await take(changes, 3)
        assert brief(got) == [("updated", "a", 3), ("left", "b", 4), ("joined", "d", 6)]
        assert got[0].after is None
        assert got[1].after is None
        assert [a.agent_id for a in live.agents()] == ["d"]
        assert api.list_requests[0].url.params.get_list("skill") == ["echo"]
        assert api.list_requests[0].url.params["status"] == "all"


async def test_deleted_removes_the_agent() -> None:
    """The `deleted` kind (retention) removes the agent whatever its body says."""
    api = FakeApi()
    api.lists((1, [listed("a", 1, status="offline")]))
    api.streams.append([sse("deleted", "a", 2, status="offline")])
    async with following(api) as (live, changes):
        (change,) = await take(changes, 1)
        assert (change.kind, change.after) == ("deleted", None)
        assert len(live) == 0


async def test_find_follows_the_api_filter_rules() -> None:
    """Tags, protocols, transports any case; skills and labels exact; q in name/description/
    skills, any case; status live by default; every filter must match."""
    api = FakeApi()
    api.lists(
        (
            3,
            [
                listed("alpha", 1, skills=("echo", "sum"), team="geo"),
                listed("beta", 2, skills=("echo",), team="ops"),
                listed("gamma", 3, status="offline", skills=("sum",), team="geo"),
            ],
        )
    )
    async with roster(api) as live:

        def ids(**kw: Any) -> list[str]:
            return [a.agent_id for a in live.find(**kw)]

        assert ids() == ["alpha", "beta"]
        assert ids(status="all") == ["alpha", "beta", "gamma"]
        assert ids(skill=["echo", "sum"]) == ["alpha"]
        assert ids(skill="ECHO") == []
        assert ids(tag="tools", protocol="A2A", transport="HTTP") == ["alpha", "beta"]
        assert ids(labels={"team": "geo"}, status="all") == ["alpha", "gamma"]
        assert ids(q="BETA AGENT") == ["beta"]
        assert ids(q="sum", status="all") == ["alpha", "gamma"]
        assert ids(skill="nope") == []
        with pytest.raises(ValueError, match="status"):
            live.find(status="available")


def test_terms_and_text_are_the_registrys() -> None:
    """The Roster's per-agent terms and search text equal `registry.terms` on the same view."""
    raw = view("mixed", skills=("echo", "Sum"), team="Geo", tier="1")
    raw["endpoints"].append(
        {"transport": "AMQP", "protocol": "MCP", "exchange": "", "routing_key": "q.mixed"}
    )
    raw["tags"] = ["Tools", "Maths"]
    entry = entry_of(Agent(agent_id="mixed", status="live", agent=AgentInfo.model_validate(raw)))
    assert entry.terms == frozenset(index_terms(AgentView.model_validate(raw)))
    assert entry.text == search_text(AgentView.model_validate(raw))


async def test_wait_for_returns_once_the_status_is_reached() -> None:
    """`wait_for` answers at once when held so, else when a change brings it."""
    api = FakeApi()
    api.lists((1, [listed("a", 1)]))
    api.streams.append([])
    async with roster(api) as live:
        assert (await live.wait_for("a")).agent_id == "a"
        waiting = asyncio.create_task(live.wait_for("a", "offline", timeout=10))
        await asyncio.sleep(0)
        api.hang.set()  # the stream ends; the next one brings the change
        api.streams.append([sse("left", "a", 2, status="offline")])
        assert (await waiting).status == "offline"
        with pytest.raises(TimeoutError):
            await live.wait_for("nobody", timeout=0.01)


async def test_an_invalid_filter_is_raised_on_entering() -> None:
    """A first list the API refuses (422) is the caller's error, not retried forever."""

    def refuse(request: httpx.Request) -> httpx.Response:
        body = {"error": {"code": "invalid-request", "message": "bad label", "details": []}}
        return httpx.Response(422, json=body)

    with pytest.raises(DiscoveryError) as caught:
        async with Roster(BASE_URL, http_transport=httpx.MockTransport(refuse)):
            pass
    assert caught.value.code == "invalid-request"


async def test_a_slow_change_reader_is_told_it_lost_changes() -> None:
    """An iterator more than `max_pending` behind ends with `ChangesLost`, after what it kept;
    the Roster itself goes on."""
    api = FakeApi()
    api.lists((0, []))
    api.streams.append([sse("joined", f"a{n}", n) for n in range(1, 6)])
    live = roster(api, sync_timeout=10)
    changes = live.changes(max_pending=2)
    try:
        await live.start()
        await live.wait_for("a5", timeout=10)
        assert brief([await anext(changes), await anext(changes)]) == [
            ("joined", "a1", 1),
            ("joined", "a2", 2),
        ]
        with pytest.raises(ChangesLost):
            await anext(changes)
        assert len(live) == 5
    finally:
        await live.aclose()


async def test_closing_ends_iterators_and_waiters() -> None:
    """After `aclose`, iterators stop and waiters get `RosterClosed`."""
    api = FakeApi()
    api.lists((0, []))
    live = roster(api)
    await live.start()
    changes = live.changes()
    waiting = asyncio.create_task(live.wait_for("x", timeout=10))
    await asyncio.sleep(0)
    await live.aclose()
    with pytest.raises(StopAsyncIteration):
        await anext(changes)
    with pytest.raises(RosterClosed):
        await waiting


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_sse_reader_joins_lines_across_chunks() -> None:
    """Fields split across chunks, CRLF split between chunks, comments, multi-line data."""
    stream = chunks(
        b": ping\r\n\r\nid: 7\r\nevent: agent.jo", b"ined\r", b"\ndata: {\r\ndata: }\r\n\r\n"
    )
    events = [e async for e in sse_events(stream, max_line=100)]
    assert [(e.id, e.event, e.data) for e in events] == [("7", "agent.joined", "{\n}")]


async def test_sse_reader_refuses_a_line_over_the_bound() -> None:
    """A server sending an endless line cannot make the reader buffer without bound."""
    stream = chunks(b"data: " + b"x" * 50, b"x" * 60)
    with pytest.raises(SseTooLarge):
        [e async for e in sse_events(stream, max_line=100)]


async def test_a_cursor_that_does_not_advance_never_loops() -> None:
    """A broken or hostile API answering the same page with the same cursor forever: each
    list stops at once, and entering gives up after `sync_timeout`."""
    requests: list[httpx.Request] = []

    def same_page(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"revision": 1, "agents": [], "next_cursor": "a"})

    live = Roster(
        BASE_URL, http_transport=httpx.MockTransport(same_page), sync_timeout=0.3, backoff_max_s=1
    )
    with pytest.raises(TimeoutError):
        async with live:
            pass
    assert 2 <= len(requests) < 20  # a few lists of two pages, with backoff between them


def test_watch_escapes_control_characters_for_the_terminal() -> None:
    """An agent id or reason with an escape sequence is printed escaped, never executed;
    ordinary changes print as they are."""
    from agentroster.cli import watch_line
    from agentroster.client.models import Agent

    good = Change(
        "joined", "weather", 7, "registered", None, Agent(agent_id="weather", status="live")
    )
    assert watch_line(good) == "joined   weather  live live=0  rev 7  (registered)"
    bad = Change("left", "x\x1b]0;owned\x07", 8, "expired\x1b[2J", None, None)
    line = watch_line(bad)
    assert "\x1b" not in line
    assert "\x07" not in line
    assert "\\x1b]0;owned\\x07" in line


async def test_an_unreadable_event_lists_again_past_it() -> None:
    """An event that does not parse would come again on every reconnection: the Roster lists
    again and follows from after it."""
    api = FakeApi()
    api.lists((1, [listed("a", 1)]))
    api.lists((3, [listed("a", 1), listed("b", 3)]))
    api.streams.append([b"id: 2\r\nevent: agent.joined\r\ndata: {not json\r\n\r\n"])
    async with following(api) as (live, changes):
        (change,) = await take(changes, 1)
        assert (change.kind, change.agent_id, change.relisted) == ("joined", "b", True)
        assert live.lists == 2
        assert live.revision == 3


async def test_wait_for_before_the_first_list_is_answered_by_it() -> None:
    """A waiter made before the Roster started is answered by the first list, which reports
    no change of its own."""
    api = FakeApi()
    api.lists((1, [listed("a", 1)]))
    live = roster(api, sync_timeout=10)
    waiting = asyncio.create_task(live.wait_for("a", timeout=10))
    await asyncio.sleep(0)
    try:
        await live.start()
        assert (await waiting).agent_id == "a"
    finally:
        await live.aclose()


def test_the_roster_needs_only_the_base_install() -> None:
    """Importing the client (Roster included) loads nothing of the server extra."""
    import subprocess
    import sys

    code = (
        "import sys, agentroster.client\n"
        "server = ('fastapi', 'redis', 'faststream', 'starlette', 'pydantic_settings', "
        "'sse_starlette', 'uvicorn', 'prometheus_client')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(server)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
