"""The page cache replays GET /v1/agents only while the answer cannot have changed."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agentroster.api.metrics import ApiMetrics
from agentroster.api.page_cache import PageCache


class FakeModel:
    """What the cache reads of the read model."""

    def __init__(self) -> None:
        self.ready = True
        self.revision = 7
        self.loads = 1


@pytest.fixture
def world() -> SimpleNamespace:
    model = FakeModel()
    calls: list[str] = []
    status = {"code": 200}

    async def agents(request: Request) -> Response:
        calls.append(request.url.query)
        return JSONResponse({"revision": model.revision, "n": len(calls)}, status.get("code", 200))

    metrics = ApiMetrics()
    app = Starlette(
        routes=[Route("/v1/agents", agents), Route("/other", agents)],
        middleware=[Middleware(PageCache, metrics=metrics, max_entries=2)],
    )
    app.state.agentroster = SimpleNamespace(
        read_model=model, settings=SimpleNamespace(read_requires_key=False)
    )
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    return SimpleNamespace(
        model=model, calls=calls, client=client, metrics=metrics, app=app, status=status
    )


def hits(world: SimpleNamespace) -> float:
    return world.metrics.page_cache.labels("hit")._value.get()  # type: ignore[no-any-return]


async def test_same_query_same_revision_is_replayed(world: SimpleNamespace) -> None:
    first = await world.client.get("/v1/agents?skill=x")
    second = await world.client.get("/v1/agents?skill=x")
    assert second.content == first.content
    assert second.headers["content-type"] == "application/json"
    assert world.calls == ["skill=x"]
    assert hits(world) == 1


async def test_a_new_revision_or_a_rebuild_recomputes(world: SimpleNamespace) -> None:
    await world.client.get("/v1/agents")
    world.model.revision = 8
    assert (await world.client.get("/v1/agents")).json()["revision"] == 8
    world.model.loads = 2  # a rebuild, even back at an older revision
    world.model.revision = 7
    await world.client.get("/v1/agents")
    assert len(world.calls) == 3
    assert hits(world) == 0


async def test_other_queries_and_paths_are_their_own(world: SimpleNamespace) -> None:
    await world.client.get("/v1/agents?skill=x")
    await world.client.get("/v1/agents?skill=y")
    await world.client.get("/other")
    await world.client.get("/other")
    assert world.calls == ["skill=x", "skill=y", "", ""]


@pytest.mark.parametrize(
    "situation",
    ["loading", "min_revision", "reads need a key", "not a 200"],
)
async def test_it_stays_out_of_the_way(world: SimpleNamespace, situation: str) -> None:
    url = "/v1/agents"
    if situation == "loading":
        world.model.ready = False
    elif situation == "min_revision":
        url += "?min_revision=7"
    elif situation == "reads need a key":
        world.app.state.agentroster.settings.read_requires_key = True
    else:
        world.status["code"] = 503
    await world.client.get(url)
    await world.client.get(url)
    assert len(world.calls) == 2


async def test_bounded_in_entries(world: SimpleNamespace) -> None:
    for skill in ("a", "b", "c", "c"):  # room for two
        await world.client.get(f"/v1/agents?skill={skill}")
    assert world.calls == ["skill=a", "skill=b", "skill=c", "skill=c"]
    await world.client.get("/v1/agents?skill=a")
    assert hits(world) == 1
