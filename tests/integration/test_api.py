"""The read API against a real worker, RabbitMQ and Redis: agents are registered over the
broker, their events awaited, and then the HTTP answers checked.

The app runs in-process (httpx's ASGI transport) with its lifespan entered, as a server would.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from agentroster.client import Announcement
from agentroster.contracts import card_bytes, card_digest
from agentroster.settings import Settings
from agentroster.store.redis_store import RedisStore
from agentroster.worker import Worker
from tests.helpers import EventCollector, serve_api
from tests.integration.agents import a2a_card
from tests.integration.leases import make_due, register


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the API of the test registry."""
    async with serve_api(settings) as client:
        yield client


def announcement(worker: Worker, card: dict[str, Any], **options: Any) -> Announcement:
    options.setdefault("ttl_s", 60)
    return Announcement(card, worker.settings.broker_url, prefix=worker.settings.prefix, **options)


async def joined(events: EventCollector, *agent_ids: str) -> int:
    """Wait for every agent's agent.joined; the highest revision among them."""
    wanted = set(agent_ids)
    await events.wait_until(lambda evs: wanted <= {e.agent_id for e in evs if e.kind == "joined"})
    return max(e.revision for e in events.events if e.agent_id in wanted)


async def barrier(worker: Worker, events: EventCollector) -> None:
    """Once a later marker agent joined, every earlier command was applied (queue order)."""
    marker = f"marker-{uuid.uuid4().hex[:8]}"
    async with announcement(worker, a2a_card(marker)):
        await joined(events, marker)


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is an error in the one shape; its body."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body


def parameters(body: dict[str, Any]) -> set[str]:
    return {entry["parameter"] for entry in body["error"]["details"]}


async def test_pages_of_seven_walk_every_agent_exactly_once(
    worker: Worker, events: EventCollector, api: httpx.AsyncClient
) -> None:
    """Paging with limit 7 returns every live agent once, in id order, full pages but the last."""
    ids = [f"pager-{n:02d}" for n in range(20)]
    async with contextlib.AsyncExitStack() as stack:
        for agent_id in ids:
            await stack.enter_async_context(announcement(worker, a2a_card(agent_id)))
        last_join = await joined(events, *ids)

        seen: list[str] = []
        sizes: list[int] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 7}
            if cursor is not None:
                params["cursor"] = cursor
            response = await api.get("/v1/agents", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            assert page["revision"] >= last_join
            sizes.append(len(page["agents"]))
            seen += [agent["agent_id"] for agent in page["agents"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
            assert len(sizes) <= 4, "the walk does not end"

        assert seen == ids
        assert sizes == [7, 7, 6]

        whole = (await api.get("/v1/agents")).json()
        assert [agent["agent_id"] for agent in whole["agents"]] == ids
        assert whole["next_cursor"] is None


async def test_one_agent_shows_status_lease_and_each_instance(
    worker: Worker, events: EventCollector, api: httpx.AsyncClient
) -> None:
    """GET /v1/agents/{id}: status, lease settings, both instances with their deadlines."""
    card = a2a_card("twin-reader", skills=("echo", "sum"))
    options: dict[str, Any] = {"ttl_s": 60, "interval_s": 20, "labels": {"team": "qa"}}
    before = time.time()
    async with (
        announcement(worker, card, **options) as first,
        announcement(worker, card, **options) as second,
    ):
        await joined(events, "twin-reader")
        await barrier(worker, events)  # the second register raises no event of its own
        response = await api.get("/v1/agents/twin-reader")
        after = time.time()

    assert response.status_code == 200, response.text
    agent = response.json()
    assert "owner" not in agent
    (event,) = [e for e in events.of("joined") if e.agent_id == "twin-reader"]
    assert agent["agent_id"] == "twin-reader"
    assert agent["status"] == "live"
    assert agent["revision"] == event.revision
    assert agent["registry_revision"] >= event.revision
    assert agent["card_digest"] == card_digest(card)
    assert agent["lease"] == {"ttl_s": 60.0, "interval_s": 20.0, "idle_ttl_s": None}
    assert agent["agent"]["name"] == "twin-reader"
    assert [s["id"] for s in agent["agent"]["skills"]] == ["echo", "sum"]
    assert agent["agent"]["labels"] == {"team": "qa"}
    assert agent["live_instances"] == 2
    instances = {i["instance_id"]: i for i in agent["instances"]}
    assert set(instances) == {first.instance_id, second.instance_id}
    slack = 5.0  # Redis and this process share a host clock; slack for scheduling only
    for instance in instances.values():
        deadline = datetime.fromisoformat(instance["lease_deadline"]).timestamp()
        first_seen = datetime.fromisoformat(instance["first_seen"]).timestamp()
        last_seen = datetime.fromisoformat(instance["last_seen"]).timestamp()
        assert before - slack <= first_seen <= last_seen <= after + slack
        assert deadline == pytest.approx(last_seen + 60, abs=0.01)
    agent_first_seen = datetime.fromisoformat(agent["first_seen"]).timestamp()
    agent_last_seen = datetime.fromisoformat(agent["last_seen"]).timestamp()
    assert agent_first_seen <= agent_last_seen
    assert agent_first_seen == min(
        datetime.fromisoformat(i["first_seen"]).timestamp() for i in instances.values()
    )


async def test_card_is_served_byte_for_byte_with_etag_and_304(
    worker: Worker, events: EventCollector, api: httpx.AsyncClient
) -> None:
    """The card comes back exactly as stored; its digest is a strong ETag answering 304."""
    card = {
        "zeta": "last key first",
        **a2a_card("card-keeper"),
        "description": 'Grüße, 天気 and "quotes"',
        "numbers": [1, 2.5, -3e-7, 12345678901234567],
        "alpha": {"nested": [None, True, {}]},
    }
    async with announcement(worker, card):
        await joined(events, "card-keeper")
        expected_etag = f'"{card_digest(card)}"'
        for path in (
            "/v1/agents/card-keeper/card",
            "/v1/agents/card-keeper/.well-known/agent-card.json",
        ):
            response = await api.get(path)
            assert response.status_code == 200, response.text
            assert response.content == card_bytes(card)
            assert response.headers["content-type"] == "application/json"
            assert response.headers["etag"] == expected_etag
            assert response.headers["cache-control"].startswith("max-age=")

            for matching in (expected_etag, f"W/{expected_etag}", f'"other", {expected_etag}', "*"):
                cached = await api.get(path, headers={"If-None-Match": matching})
                assert cached.status_code == 304, matching
                assert cached.content == b""
                assert cached.headers["etag"] == expected_etag

            changed = await api.get(path, headers={"If-None-Match": '"sha256:stale"'})
            assert changed.status_code == 200
            assert changed.content == card_bytes(card)


async def test_unknown_agent_is_404_in_the_error_shape(api: httpx.AsyncClient) -> None:
    """An agent the registry never heard of: 404 agent-not-found, naming it."""
    for path in ("/v1/agents/ghost", "/v1/agents/ghost/card"):
        body = assert_error(await api.get(path), 404, "agent-not-found")
        assert body["error"]["details"] == {"agent_id": "ghost"}


@pytest.mark.parametrize("agent_id", ["Bad_Id", "-dash", "dash-", "a" * 64, "weather%0A"])
async def test_an_agent_id_that_is_no_dns_label_is_422(
    api: httpx.AsyncClient, agent_id: str
) -> None:
    """A malformed agent id is a 422 naming `agent_id`, on the agent and on its card."""
    for path in (f"/v1/agents/{agent_id}", f"/v1/agents/{agent_id}/card"):
        body = assert_error(await api.get(path), 422, "invalid-request")
        assert parameters(body) == {"agent_id"}
        assert body["error"]["details"][0]["in"] == "path"


@pytest.mark.parametrize("limit", ["0", "1001", "x", "-1", ""])
async def test_a_bad_limit_is_422_naming_limit(api: httpx.AsyncClient, limit: str) -> None:
    """`limit` outside 1..1000, or no integer: 422 naming `limit`, never a 500."""
    body = assert_error(
        await api.get("/v1/agents", params={"limit": limit}), 422, "invalid-request"
    )
    assert parameters(body) == {"limit"}
    assert "limit" in body["error"]["message"]


async def test_offline_agents_are_hidden_by_default_and_listed_with_status_all(
    worker: Worker, events: EventCollector, api: httpx.AsyncClient
) -> None:
    """A deregistered agent leaves the default list, stays readable, and shows with `all`."""
    async with announcement(worker, a2a_card("stayer")):
        leaver = await announcement(worker, a2a_card("leaver")).open()
        await joined(events, "stayer", "leaver")
        await leaver.close()
        await events.wait_until(
            lambda evs: any(e.agent_id == "leaver" and e.kind == "left" for e in evs)
        )

        async def listed(**params: str) -> dict[str, str]:
            response = await api.get("/v1/agents", params=params)
            assert response.status_code == 200, response.text
            return {a["agent_id"]: a["status"] for a in response.json()["agents"]}

        assert await listed() == {"stayer": "live"}
        assert await listed(status="live") == {"stayer": "live"}
        assert await listed(status="all") == {"leaver": "offline", "stayer": "live"}
        assert await listed(status="offline") == {"leaver": "offline"}

        gone = (await api.get("/v1/agents/leaver")).json()
        assert gone["status"] == "offline"
        assert gone["live_instances"] == 0
        assert gone["instances"] == []
        assert (await api.get("/v1/agents/leaver/card")).status_code == 200


async def test_idle_agents_are_filtered_without_short_pages(
    worker: Worker, events: EventCollector, api: httpx.AsyncClient
) -> None:
    """Idle agents between live ones never shorten a page of live agents (limit 1)."""
    async with (
        announcement(worker, a2a_card("a-live")),
        announcement(worker, a2a_card("c-live")),
    ):
        sleeper = await announcement(worker, a2a_card("b-idle"), idle_ttl_s=60).open()
        await joined(events, "a-live", "b-idle", "c-live")
        await sleeper.close()  # its last instance ends: it scales to zero
        await events.wait_until(
            lambda evs: any(e.agent_id == "b-idle" and e.kind == "updated" for e in evs)
        )

        pages: list[list[str]] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 1} | ({"cursor": cursor} if cursor else {})
            page = (await api.get("/v1/agents", params=params)).json()
            pages.append([a["agent_id"] for a in page["agents"]])
            if (cursor := page["next_cursor"]) is None:
                break
        assert pages == [["a-live"], ["c-live"]]

        idle = (await api.get("/v1/agents", params={"status": "idle"})).json()["agents"]
        assert [(a["agent_id"], a["status"]) for a in idle] == [("b-idle", "idle")]
        assert idle[0]["lease"]["idle_ttl_s"] == 60.0


async def test_readyz_is_200_when_redis_and_rabbitmq_answer(api: httpx.AsyncClient) -> None:
    """Both dependencies answer and the read model has loaded: ready."""
    response = await api.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "ready": True,
        "checks": {"redis": "ok", "rabbitmq": "ok", "read_model": "ok"},
        "safeguards": {"recovery_ms_left": 0, "brake_held_leases": 0, "brake_ms_left": 0},
        "read_model": {"ready": True, "revision": 0, "lag": 0, "agents": 0, "loads": 1},
    }


async def test_readyz_shows_the_mass_expiry_brake_holding_leases(
    api: httpx.AsyncClient, store: RedisStore
) -> None:
    """20 of 30 agents due at once: the brake holds them, and /readyz says so (still ready)."""
    agents = [f"braked-{n:02d}" for n in range(30)]
    await store.apply([register(a) for a in agents])
    await store.reap()
    await make_due(store, agents[:20])
    assert (await store.reap(brake_share=0.5, brake_min_agents=20)).held == 20

    response = await api.get("/readyz")
    assert response.status_code == 200, response.text
    safeguards = response.json()["safeguards"]
    assert safeguards["brake_held_leases"] == 20
    assert 0 < safeguards["brake_ms_left"] <= 60_000
    assert safeguards["recovery_ms_left"] == 0


async def test_readyz_is_503_naming_redis_when_redis_does_not_answer(settings: Settings) -> None:
    """Redis on a closed port: 503, the Redis check says why, RabbitMQ is still ok."""
    unreachable = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    async with serve_api(unreachable, wait_ready=False) as client:
        response = await client.get("/readyz")
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["ready"] is False
        assert body["checks"]["rabbitmq"] == "ok"
        assert body["checks"]["redis"] != "ok"
        assert "Error" in body["checks"]["redis"]

        listing = await client.get("/v1/agents")
        assert_error(listing, 503, "store-unavailable")
        assert listing.headers["retry-after"] == "1"
