"""The API's read model against real Redis and RabbitMQ: read-your-writes with `min_revision`,
the deletion event after retention, readiness before the model caught up, and a rebuild after
Redis lost the registry's data that never serves a mix of the two registries."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI

from agentroster.api.app import create_api
from agentroster.api.deps import ApiState
from agentroster.api.read_model import ReadModel
from agentroster.settings import Settings
from agentroster.store.reader import StoredPage
from agentroster.store.redis_store import RedisStore
from agentroster.worker import Worker
from tests.helpers import EventCollector, RawPublisher, cleanup_redis
from tests.integration.agents import a2a_card
from tests.integration.leases import deregister, outbox_events, register


@asynccontextmanager
async def running_api(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, ApiState]]:
    """A client of a freshly started API and the API's state (its read model)."""
    app: FastAPI = create_api(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://registry.test"
        ) as client,
    ):
        yield client, app.state.agentroster


def model_of(state: ApiState) -> ReadModel:
    assert state.read_model is not None
    return state.read_model


async def until(predicate: Any) -> None:
    """Wait for a condition of the read model (events drive it; the bound only stops a hang)."""
    async with asyncio.timeout(30):
        while not predicate():
            await asyncio.sleep(0.01)


async def listed(api: httpx.AsyncClient, revision: int, **params: Any) -> dict[str, Any]:
    """`GET /v1/agents?status=all` at `revision` or later."""
    query: dict[str, Any] = {"status": "all", "min_revision": revision, **params}
    answer = await api.get("/v1/agents", params=query)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def last_revision(store: RedisStore) -> int:
    return int(await store.redis.get(store.keys.revision) or 0)


async def test_min_revision_reads_a_registration_made_through_the_broker(
    worker: Worker, events: EventCollector
) -> None:
    """Register through the broker; a list with the joined event's revision shows the agent."""
    async with running_api(worker.settings) as (api, state):
        await until(lambda: model_of(state).ready)
        async with RawPublisher(worker.settings.broker_url, worker.settings.prefix) as raw:
            body = {
                "agent_id": "rw",
                "instance_id": "i",
                "seq": 1,
                "ttl_s": 60,
                "card": a2a_card("rw"),
                "sent_at": datetime.now(UTC).isoformat(),
            }
            await raw.send("agent.rw.register", body)
        (joined,) = await events.wait_until(lambda evs: len(evs) >= 1)
        revision = joined.data["revision"]
        page = await listed(api, revision, status="live")
        assert page["revision"] >= revision
        assert [a["agent_id"] for a in page["agents"]] == ["rw"]


async def test_min_revision_beyond_the_registry_is_a_503_with_retry_after(
    settings: Settings, store: RedisStore
) -> None:
    """A revision beyond the registry's is refused at once (410 revision-ahead), in the one
    error shape, and so is a waiter beyond the bound (503 too-many-waiting)."""
    await store.apply([register("x1")])
    quick = settings.model_copy(update={"min_revision_wait_s": 0.05})
    async with running_api(quick) as (api, state):
        await until(lambda: model_of(state).ready)
        far = await api.get("/v1/agents", params={"min_revision": 10**12})
        assert far.status_code == 410
        assert far.json()["error"]["code"] == "revision-ahead"
        ok = await api.get("/v1/agents", params={"min_revision": await last_revision(store)})
        assert [a["agent_id"] for a in ok.json()["agents"]] == ["x1"]
        bad = await api.get("/v1/agents", params={"min_revision": -1})
        assert bad.status_code == 422
    none_waiting = settings.model_copy(update={"min_revision_max_waiting": 0})
    async with running_api(none_waiting) as (api, state):
        await until(lambda: model_of(state).ready)
        await store.apply([register("x2")])  # a revision the model may not have yet
        wanted = await last_revision(store)
        model_of(state).revision = wanted - 1  # as if it lagged: the request has to wait
        full = await api.get("/v1/agents", params={"min_revision": wanted})
        assert full.status_code == 503
        assert full.json()["error"]["code"] == "too-many-waiting"


async def test_retention_deletes_with_an_event_and_the_model_forgets_the_agent(
    settings: Settings, store: RedisStore
) -> None:
    """An offline agent past its retention is deleted with `agent.deleted` (reason retention,
    revision bumped); the read model drops it, as Redis did."""
    async with running_api(settings) as (api, state):
        await until(lambda: model_of(state).ready)
        await store.apply([register("old"), register("kept")])
        await store.apply([deregister("old")])
        await store.redis.zadd(store.keys.retain, {"old": 1})  # its retention ended long ago
        before = await last_revision(store)
        reaped = await store.reap()
        assert reaped.deleted == 1
        (deleted,) = await outbox_events(store, before)
        assert (deleted.kind, deleted.reason, deleted.agent_id) == ("deleted", "retention", "old")
        assert deleted.revision == before + 1
        assert b'"retention"' in deleted.body()
        page = await listed(api, deleted.revision)
        assert [a["agent_id"] for a in page["agents"]] == ["kept"]


async def test_readyz_waits_for_the_model_and_a_data_loss_rebuilds_it(
    settings: Settings, store: RedisStore
) -> None:
    """Not ready while the model loads (lists come from Redis meanwhile); after Redis lost
    the registry, the model rebuilds and shows only the new registry's agents."""
    await store.apply([register(f"a{n}") for n in range(5)])
    await store.reap()  # the store learns the epoch, so it notices the loss later
    async with running_api(settings) as (api, state):
        model = model_of(state)
        await until(lambda: model.ready)
        ready = await api.get("/readyz")
        assert ready.json()["read_model"]["revision"] == await last_revision(store)
        assert ready.json()["checks"]["read_model"] == "ok"

        gate = asyncio.Event()
        list_agents = model.reader.list_agents

        async def held(*args: Any, **kwargs: Any) -> StoredPage:
            await gate.wait()
            return await list_agents(*args, **kwargs)

        model.reader = copy.copy(model.reader)  # held for the model only, not the routes
        model.reader.list_agents = held  # type: ignore[method-assign]
        await cleanup_redis(settings.redis_url, settings.prefix)  # Redis lost its data
        await store.apply([register("new")])
        await until(lambda: not model.ready)
        loading = await api.get("/readyz")
        assert loading.status_code == 503
        assert loading.json()["checks"]["read_model"] == "loading"
        # meanwhile lists come from Redis: the new registry only, never a mix
        page = (await api.get("/v1/agents", params={"status": "all"})).json()
        assert [a["agent_id"] for a in page["agents"]] == ["new"]

        gate.set()
        await until(lambda: model.ready)
        assert model.loads >= 2
        page = await listed(api, await last_revision(store))
        assert [a["agent_id"] for a in page["agents"]] == ["new"]
        assert (await api.get("/readyz")).json()["checks"]["read_model"] == "ok"


async def test_the_page_cache_never_answers_from_an_older_revision(
    settings: Settings, store: RedisStore
) -> None:
    """The same query at the same revision is replayed; a change moves the revision and the
    next answer shows it (the cache is keyed by the model's revision, never stale)."""
    await store.apply([register("c1")])
    async with running_api(settings) as (api, state):
        await until(lambda: model_of(state).ready and model_of(state).revision > 0)
        first = await api.get("/v1/agents")
        again = await api.get("/v1/agents")
        assert again.content == first.content
        assert again.headers.raw == first.headers.raw  # X-Content-Type-Options included
        assert (b"x-content-type-options", b"nosniff") in again.headers.raw
        assert [a["agent_id"] for a in again.json()["agents"]] == ["c1"]
        metrics = (await api.get("/metrics")).text
        assert 'agentroster_page_cache_total{result="hit"} 1.0' in metrics
        # the hit, answered in front of the other middlewares, is a request like the miss
        assert (
            'agentroster_http_requests_total{method="GET",route="/v1/agents",status="200"} 2.0'
            in metrics
        )

        await store.apply([register("c2")])
        wanted = await last_revision(store)
        await until(lambda: model_of(state).revision >= wanted)
        after = await api.get("/v1/agents")
        assert after.json()["revision"] >= wanted
        assert [a["agent_id"] for a in after.json()["agents"]] == ["c1", "c2"]
