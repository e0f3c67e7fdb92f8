"""Hostile registrations next to valid traffic, and text queries with a budget, for real.

Each hostile command is sent between two valid registrations. The hostile one must land in the
dead-letter queue with its own reason and a detail naming the limit or the value, leave nothing
in Redis, and be counted; every valid command around it must be applied.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from agentroster.api import create_api
from agentroster.client import DiscoveryClient
from agentroster.contracts import DETAIL_HEADER, REASON_HEADER, Topology
from agentroster.settings import Settings
from agentroster.store.redis_store import RedisStore
from agentroster.worker import Worker, create_worker
from tests.helpers import EventCollector, RawPublisher, drain_queue
from tests.integration.agents import a2a_card
from tests.integration.leases import make_due
from tests.integration.leases import register as register_prepared

NOW = datetime.now(UTC).isoformat()


def register(agent_id: str, **fields: Any) -> dict[str, Any]:
    body = {
        "agent_id": agent_id,
        "instance_id": "i-1",
        "seq": 1,
        "ttl_s": 600,
        "card": a2a_card(agent_id),
        "sent_at": NOW,
    }
    return body | fields


def http_endpoint(n: int, url: str | None = None) -> dict[str, Any]:
    return {"transport": "http", "protocol": "a2a", "url": url or f"https://w.example/{n}"}


#: name -> (body, the reason, what the detail says)
HOSTILE: dict[str, tuple[dict[str, Any] | bytes, str, str]] = {
    "huge-exchange": (
        register(
            "huge-exchange",
            endpoints=[
                {"transport": "amqp", "protocol": "a2a", "exchange": "x" * 5_000_000}
                | {"routing_key": "k"}
            ],
        ),
        "message-too-large",
        "AGENTROSTER_MAX_MESSAGE_BYTES",
    ),
    "long-exchange": (
        register(
            "long-exchange",
            endpoints=[
                {"transport": "amqp", "protocol": "a2a", "exchange": "x" * 256, "routing_key": "k"}
            ],
        ),
        "invalid-schema",
        "endpoints.0.exchange",
    ),
    "many-endpoints": (
        register("many-endpoints", endpoints=[http_endpoint(n) for n in range(2000)]),
        "invalid-schema",
        "endpoints",
    ),
    "endpoints-over-setting": (
        register("endpoints-over-setting", endpoints=[http_endpoint(n) for n in range(33)]),
        "registration-too-large",
        "AGENTROSTER_MAX_ENDPOINTS",
    ),
    "many-skills": (
        register(
            "many-skills",
            card={"name": "many", "skills": [{"id": f"s{n}"} for n in range(129)]},
        ),
        "registration-too-large",
        "AGENTROSTER_MAX_SKILLS",
    ),
    "many-terms": (
        register(
            "many-terms",
            card={
                "name": "t",
                "skills": [{"id": f"s{n}", "tags": [f"a{n}", f"b{n}"]} for n in range(90)],
            },
        ),
        "registration-too-large",
        "AGENTROSTER_MAX_INDEX_TERMS",
    ),
    "long-term": (
        register("long-term", card={"name": "l", "skills": [{"id": "s" * 600}]}),
        "registration-too-large",
        "AGENTROSTER_MAX_TERM_BYTES",
    ),
    "big-stored": (
        register(
            "big-stored",
            card={
                "name": "b",
                "description": "d" * 30_000,
                "skills": [{"id": "s", "name": "n" * 15_000, "description": "e" * 15_000}],
            },
            endpoints=[http_endpoint(n, f"https://w.example/{n}/{'p' * 2000}") for n in range(32)],
            labels={f"k{n}": "v" * 256 for n in range(64)},
        ),
        "registration-too-large",
        "AGENTROSTER_MAX_REGISTRATION_BYTES",
    ),
    "nan-card": (
        orjson.dumps(register("nan-card", card={"name": "n", "x": "@"})).replace(b'"@"', b"NaN"),
        "invalid-card",
        "NaN and Infinity",
    ),
    "newline-label": (
        register("newline-label", labels={"team": "geo\neu"}),
        "invalid-schema",
        "must not contain control characters",
    ),
    "javascript-url": (
        register("javascript-url", endpoints=[http_endpoint(0, "javascript:alert(1)")]),
        "invalid-schema",
        "http:// or https://",
    ),
    "data-url-card": (
        register(
            "data-url-card",
            card={"name": "d", "supportedInterfaces": [{"url": "data:text/html,<script>"}]},
        ),
        "invalid-card",
        "'data' is not allowed",
    ),
    "file-url-other": (
        register(
            "file-url-other",
            endpoints=[{"transport": "sb", "protocol": "a2a", "url": "file:///etc/passwd"}],
        ),
        "invalid-schema",
        "'file'",
    ),
}


async def test_hostile_registrations_are_dead_lettered_and_valid_ones_around_them_applied(
    worker: Worker, events: EventCollector
) -> None:
    """Every hostile registration is parked with its reason and detail, changes nothing, and
    is counted; the valid registrations sent before and after each one are applied."""
    good = [f"good-{n}" for n in range(len(HOSTILE) + 1)]
    async with RawPublisher(worker.settings.broker_url, worker.settings.prefix) as raw:
        await raw.send(f"agent.{good[0]}.register", register(good[0]))
        for n, (name, (body, _, _)) in enumerate(HOSTILE.items(), start=1):
            await raw.send(f"agent.{name}.register", body)
            await raw.send(f"agent.{good[n]}.register", register(good[n]))
    await events.wait_until(lambda evs: len(evs) >= len(good))
    assert sorted(e.agent_id for e in events.events) == sorted(good)

    parked = await drain_queue(
        worker.settings.broker_url, Topology(worker.settings.prefix).dead_letter_queue, len(HOSTILE)
    )
    by_key = {m.routing_key: m for m in parked}
    for name, (body, reason, said) in HOSTILE.items():
        message = by_key[f"agent.{name}.register"]
        assert message.headers[REASON_HEADER] == reason, name
        assert said in str(message.headers[DETAIL_HEADER]), (name, message.headers[DETAIL_HEADER])
        assert message.body == (body if isinstance(body, bytes) else orjson.dumps(body))
        assert not await worker.redis.exists(worker.store.keys.agent(name)), name
    reasons = {reason for _, reason, _ in HOSTILE.values()}
    counted = sum(worker.metrics.dead_lettered.labels(r)._value.get() for r in reasons)
    assert counted == len(HOSTILE)
    # nothing was indexed under the hostile ones' terms
    assert not await worker.redis.exists(worker.store.keys.index("label:team=geo\neu"))
    assert not await worker.redis.exists(worker.store.keys.index("label:team=geo eu"))


async def test_idle_ttl_is_lowered_to_its_ceiling(worker: Worker, events: EventCollector) -> None:
    """A 10-year idle TTL is stored as the ceiling (7 days by default), like ttl_s."""
    ten_years = 10 * 365 * 24 * 3600
    async with RawPublisher(worker.settings.broker_url, worker.settings.prefix) as raw:
        await raw.send("agent.sleepy.register", register("sleepy", idle_ttl_s=ten_years))
    await events.wait_until(lambda evs: any(e.agent_id == "sleepy" for e in evs))
    stored = await worker.redis.hget(worker.store.keys.agent("sleepy"), "idle_ttl")
    assert stored is not None
    assert int(stored) == round(worker.settings.idle_ttl_max_s * 1000)


async def test_the_largest_registrations_are_applied_in_byte_bounded_batches(
    settings: Settings, events: EventCollector, cleanup: None
) -> None:
    """Registrations near the size limit, sent at once with small ones, are all applied; the
    batcher splits them into calls whose cost stops at `batch_max_bytes` (plus one command)."""
    limited = settings.model_copy(update={"batch_max_bytes": 300_000})
    big = [f"big-{n}" for n in range(8)]
    small = [f"small-{n}" for n in range(8)]
    batches: list[list[int]] = []
    async with create_worker(limited) as worker:
        original = worker.store.apply

        async def spy(batch: Any) -> Any:
            batches.append([command.cost() for command in batch])
            return await original(batch)

        worker.store.apply = spy  # type: ignore[method-assign]
        async with RawPublisher(worker.settings.broker_url, worker.settings.prefix) as raw:
            for b, s in zip(big, small, strict=True):
                card = {"name": b, "description": "d" * 60_000, "skills": [{"id": "s"}]}
                await raw.send(f"agent.{b}.register", register(b, card=card))
                await raw.send(f"agent.{s}.register", register(s))
        await events.wait_until(lambda evs: len(evs) >= len(big) + len(small))
    assert sorted(e.agent_id for e in events.events) == sorted(big + small)
    for sizes in batches:
        # a batch ends at the command whose bytes reach the bound
        assert sum(sizes[:-1]) < limited.batch_max_bytes, sizes


# --- q with a budget ------------------------------------------------------------------------------


@pytest.fixture
async def budget_api(settings: Settings) -> AsyncIterator[httpx.ASGITransport]:
    """The transport of an API answering discovery from Redis, whose text queries read at most 4
    search texts per request."""
    app = create_api(
        settings.model_copy(update={"query_text_budget": 4, "discovery_source": "redis"})
    )
    async with app.router.lifespan_context(app):
        yield httpx.ASGITransport(app=app)


async def test_a_text_query_pages_by_budget_and_finds_exactly_the_matches(
    worker: Worker, events: EventCollector, budget_api: httpx.ASGITransport
) -> None:
    """With a budget of 4 texts per request, `q` over 30 agents answers short pages with cursors
    (some empty); following them finds each live match once, in order, and none of the offline
    ones; the client pages through them by itself."""
    ids = [f"a{n:02d}" for n in range(30)]
    matching = {i for n, i in enumerate(ids) if n % 7 == 0}  # a00 a07 a14 a21 a28
    offline = {"a14"}
    async with RawPublisher(worker.settings.broker_url, worker.settings.prefix) as raw:
        for agent_id in ids:
            name = f"Needle {agent_id}" if agent_id in matching else f"Hay {agent_id}"
            card = {**a2a_card(agent_id), "name": name}
            await raw.send(f"agent.{agent_id}.register", register(agent_id, card=card))
        await events.wait_until(lambda evs: len(evs) >= len(ids))
        await raw.send(
            "agent.a14.deregister",
            {"agent_id": "a14", "instance_id": "i-1", "seq": 2, "sent_at": NOW},
        )
        await events.wait_until(lambda evs: any(e.kind == "left" for e in evs))

    pages: list[tuple[list[str], str | None]] = []
    cursor: str | None = None
    http = httpx.AsyncClient(transport=budget_api, base_url="http://registry.test")
    while True:
        params: dict[str, str | int] = {"q": "needle", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        response = await http.get("/v1/agents", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"revision", "agents", "next_cursor"}
        pages.append(([a["agent_id"] for a in body["agents"]], body["next_cursor"]))
        assert len(pages) <= 30, "a cursor must always move forward"
        cursor = body["next_cursor"]
        if cursor is None:
            break
    found = [agent_id for page, _ in pages for agent_id in page]
    assert found == sorted(matching - offline)
    assert any(len(page) < 2 and next_cursor for page, next_cursor in pages)  # short, not done
    assert any(not page and next_cursor for page, next_cursor in pages)  # even empty
    assert len(pages) >= math.ceil(30 / 4)  # each request read at most 4 texts

    await http.aclose()
    async with DiscoveryClient("http://registry.test", transport=budget_api) as client:
        assert [a.agent_id async for a in client.find(q="needle")] == found


# --- reap with a budget ---------------------------------------------------------------------------


async def test_a_sweep_over_its_budget_leaves_the_rest_for_the_next_call(
    settings: Settings, cleanup: None
) -> None:
    """Each reap call stops once its budget is spent and says more is due; the calls that follow
    expire, and after the retention delete, every agent exactly once, with one event each."""
    client = Redis.from_url(settings.redis_url)
    store = RedisStore(client, settings.prefix, retention_ms=1, flap_max_events=0)
    try:
        agents = [f"big-{n}" for n in range(6)]
        view = orjson.dumps({"name": "x" * 50_000})
        await store.apply(
            [dataclasses.replace(register_prepared(a), view=view, terms="tag:t") for a in agents]
        )
        await store.reap()
        await make_due(store, agents)
        results = [await store.reap(budget=1)]  # one piece of work per call
        while results[-1].more_due:
            results.append(await store.reap(budget=1))
        assert sum(r.leases_expired for r in results) == len(agents)
        assert all(r.leases_expired + r.deleted <= 1 for r in results)
        for _ in range(10_000):  # until the retention (1 ms) ran out for each of them
            if sum(r.deleted for r in results) == len(agents):
                break
            results.append(await store.reap(budget=1))
        assert sum(r.deleted for r in results) == len(agents)
        # one agent.left when each expired, one agent.deleted when each was deleted
        assert sum(r.events for r in results) == 2 * len(agents)
        assert not await client.exists(store.keys.index("tag:t"))
        assert await client.zcard(store.keys.agents) == 0
    finally:
        await client.aclose()


async def test_registrations_are_applied_while_text_queries_flood_the_api(
    worker: Worker, events: EventCollector, budget_api: httpx.ASGITransport
) -> None:
    """Eight clients sending text queries that match nothing, without pause, while agents
    register: every registration is applied, and every query is answered in the documented
    shape (a bounded cost per request; the figures are in bench/README.md, Limits)."""
    first = [f"hay-{n:03d}" for n in range(200)]
    later = [f"late-{n:02d}" for n in range(30)]
    async with RawPublisher(worker.settings.broker_url, worker.settings.prefix) as raw:
        for agent_id in first:
            await raw.send(f"agent.{agent_id}.register", register(agent_id))
        await events.wait_until(lambda evs: len(evs) >= len(first))

        stop = asyncio.Event()
        answers: list[int] = []

        async def flood() -> None:
            async with httpx.AsyncClient(
                transport=budget_api, base_url="http://registry.test"
            ) as http:
                while not stop.is_set():
                    response = await http.get("/v1/agents", params={"q": "no such text"})
                    assert set(response.json()) == {"revision", "agents", "next_cursor"}
                    answers.append(response.status_code)

        floods = [asyncio.create_task(flood()) for _ in range(8)]
        try:
            for agent_id in later:
                await raw.send(f"agent.{agent_id}.register", register(agent_id))
            await events.wait_until(lambda evs: len(evs) >= len(first) + len(later))
        finally:
            stop.set()
            await asyncio.gather(*floods)
    assert {e.agent_id for e in events.events} == set(first + later)
    assert answers
    assert set(answers) == {200}
