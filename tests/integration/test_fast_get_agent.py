"""The fast path of `GET /v1/agents/{id}` (api/fast_get_agent.py) answers exactly what the
FastAPI route does.

Two APIs on the same registry (Redis): one as built, one without the fast path. Every
request, common or hostile, goes to both; status, header list and body bytes must be the same.
The common ones must have been answered without the route, the others by it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from agentroster.api import create_api
from agentroster.api.fast_get_agent import GET_AGENT_ROUTE, FastGetAgent
from agentroster.api.fast_heartbeat import FastHeartbeat
from agentroster.registry.prepare import prepare
from agentroster.settings import Settings
from agentroster.store.redis_store import RedisStore
from tests.integration.agents import command_body
from tests.integration.fast_paths import BOOTSTRAP, Api, bearer, new_key, pair
from tests.tracing_support import spans, untraced

__all__ = ["spans", "untraced"]  # fixtures

BURST = 3


@dataclass(frozen=True)
class Answer:
    """What a client sees, byte for byte."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


async def both(
    apis: tuple[Api, Api],
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
) -> Answer:
    """Send one request to both APIs; their answers must be equal (it is returned)."""
    answers = []
    for api in apis:
        response = await api.client.request(method, path, headers=headers)
        answers.append(Answer(response.status_code, list(response.headers.raw), response.content))
    assert answers[0] == answers[1], (method, path, headers)
    return answers[0]


async def registered(settings: Settings, store: RedisStore) -> None:
    """`weather` with two instances, labels and an interval; `solo` with one instance."""
    limits = settings.limits()
    commands: list[tuple[str, str, dict[str, Any]]] = [
        ("weather", "i-1", {"interval_s": 20, "labels": {"team": "qa"}}),
        ("weather", "i-2", {"interval_s": 20, "labels": {"team": "qa"}}),
        ("solo", "only", {}),
    ]
    await store.apply(
        [
            prepare(
                f"agent.{agent_id}.register",
                orjson.dumps(command_body(agent_id, instance_id=instance_id, **more)),
                None,
                limits,
            )
            for agent_id, instance_id, more in commands
        ]
    )


@pytest.fixture
async def apis(settings: Settings, store: RedisStore) -> AsyncIterator[tuple[Api, Api]]:
    """(with the fast path, without it), on a registry holding `registered`'s agents."""
    await registered(settings, store)
    async with pair(settings, FastGetAgent) as both_apis:
        yield both_apis


@pytest.fixture
async def keyed(settings: Settings, store: RedisStore) -> AsyncIterator[tuple[Api, Api]]:
    """The same, with `AGENTROSTER_READ_REQUIRES_KEY` on and a small rate per key."""
    await registered(settings, store)
    async with pair(
        settings,
        FastGetAgent,
        read_requires_key=True,
        key_rate_per_s=0.001,
        key_rate_burst=BURST,
    ) as both_apis:
        yield both_apis


async def test_reads_of_known_and_unknown_agents_are_answered_in_front_of_fastapi(
    apis: tuple[Api, Api],
) -> None:
    """Found (200, with its instances) and unknown (404 agent-not-found): the route's bytes and
    headers, and the fast API's route never ran."""
    fast, slow = apis
    found = await both(apis, "/v1/agents/weather")
    assert found.status == 200
    detail = found.json()
    assert detail["agent_id"] == "weather"
    assert [i["instance_id"] for i in detail["instances"]] == ["i-1", "i-2"]
    assert detail["lease"]["interval_s"] == 20
    assert detail["agent"]["name"] == "weather"
    assert (b"x-content-type-options", b"nosniff") in found.headers
    assert (await both(apis, "/v1/agents/solo")).json()["live_instances"] == 1
    missing = await both(apis, "/v1/agents/nobody-here")
    assert missing.status == 404
    assert missing.json()["error"]["code"] == "agent-not-found"
    # any header is ignored while reads are open, a key too (not even looked at)
    keyed = await both(apis, "/v1/agents/weather", headers=bearer("ar_unknown_" + "s" * 40))
    assert keyed == found
    assert fast.route_calls == []
    assert len(slow.route_calls) == 4


async def test_malformed_hostile_and_other_requests_get_the_routes_own_answer(
    apis: tuple[Api, Api],
) -> None:
    """Ids the route refuses (too long, capitals, percent-encoded slash or NUL, non-ASCII, a
    trailing slash), a query string, and other methods all reach the route and get its answer
    on both APIs; a common read after them still takes the fast path."""
    fast, _ = apis
    cases: list[tuple[str, str]] = [
        ("GET", "/v1/agents/" + "a" * 64),
        ("GET", "/v1/agents/" + "a" * 60_000),
        ("GET", "/v1/agents/Weather"),
        ("GET", "/v1/agents/-weather"),
        ("GET", "/v1/agents/weather%00"),
        ("GET", "/v1/agents/wea%00ther"),
        ("GET", "/v1/agents/weather%2Fcard"),
        ("GET", "/v1/agents/..%2F..%2Fmetrics"),
        ("GET", "/v1/agents/w%C3%A9ather"),
        ("GET", "/v1/agents/weather%0A"),
        ("GET", "/v1/agents/weather/"),
        ("GET", "/v1/agents/weather?x=1"),
        ("HEAD", "/v1/agents/weather"),
        ("POST", "/v1/agents/weather"),
        ("DELETE", "/v1/agents/weather"),
        ("OPTIONS", "/v1/agents/weather"),
    ]
    fast.route_calls.clear()
    statuses = []
    for method, path in cases:
        got = await both(apis, path, method=method)
        statuses.append(got.status)
        if got.status >= 400 and got.body:
            assert set(got.json()) == {"error"}, got
    assert len(fast.route_calls) == len(cases)
    assert 422 in statuses
    assert 405 in statuses
    fast.route_calls.clear()
    assert (await both(apis, "/v1/agents/weather")).status == 200
    assert fast.route_calls == []


async def test_redis_unreachable_is_the_same_503_with_retry_after(
    apis: tuple[Api, Api], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read fails with Redis's error: 503 `store-unavailable` with Retry-After, the same
    bytes on both, and the error's text is not answered."""
    fast, _ = apis

    async def unreachable(agent_id: str) -> None:
        raise RedisConnectionError("secret-host:6379 refused")

    for api in apis:
        monkeypatch.setattr(api.state.reader, "get_agent", unreachable)
    fast.route_calls.clear()
    got = await both(apis, "/v1/agents/weather")
    assert got.status == 503
    assert got.json()["error"]["code"] == "store-unavailable"
    assert (b"retry-after", b"1") in got.headers
    assert b"secret-host" not in got.body
    assert fast.route_calls == []


async def test_with_a_read_key_required_only_a_cached_key_within_its_rate_skips_the_route(
    keyed: tuple[Api, Api],
) -> None:
    """No key, a malformed or unknown key, Basic credentials: the route's 401 on both. A valid
    key is read by the route the first time, then answered in front of FastAPI; the bootstrap
    key too; two Authorization headers go to the route."""
    fast, _ = keyed
    token = await new_key(fast, "read")
    refused: list[dict[str, str] | list[tuple[str, str]]] = [
        {},
        bearer("not-a-key"),
        bearer("ar_nosuchkey_" + "s" * 40),
        {"Authorization": "Bearer " + "k" * 2000},
        {"Authorization": "Basic !!!"},
        {"Authorization": "Digest x"},
    ]
    fast.route_calls.clear()
    for headers in refused:
        got = await both(keyed, "/v1/agents/weather", headers=headers)
        assert got.status == 401, got
        assert got.json()["error"]["code"] == "unauthenticated"
        assert (b"www-authenticate", b'Bearer realm="agentroster"') in got.headers
    assert len(fast.route_calls) == len(refused)

    fast.route_calls.clear()
    first = await both(keyed, "/v1/agents/weather", headers=bearer(token))  # the key is read
    assert first.status == 200
    assert fast.route_calls == ["/v1/agents/weather"]
    fast.route_calls.clear()
    assert await both(keyed, "/v1/agents/weather", headers=bearer(token)) == first
    assert (await both(keyed, "/v1/agents/nobody", headers=bearer(token))).status == 404
    assert await both(keyed, "/v1/agents/weather", headers=bearer(BOOTSTRAP)) == first
    assert fast.route_calls == []
    # two keys: the route decides (it reads the first)
    doubled = [("Authorization", "Bearer x"), ("Authorization", f"Bearer {token}")]
    assert (await both(keyed, "/v1/agents/weather", headers=doubled)).status == 401
    assert fast.route_calls == ["/v1/agents/weather"]


async def test_a_greedy_read_key_is_refused_by_the_route_and_others_go_on(
    keyed: tuple[Api, Api],
) -> None:
    """A key over its rate: its burst is served (fast after the first read), then 429 with
    Retry-After from the route, counted once per request; another key is still served fast."""
    fast, _ = keyed
    greedy = await new_key(fast, "read")
    honest = await new_key(fast, "read")
    assert (await both(keyed, "/v1/agents/solo", headers=bearer(honest))).status == 200
    fast.route_calls.clear()
    answers = [
        await both(keyed, "/v1/agents/solo", headers=bearer(greedy)) for _ in range(BURST + 1)
    ]
    assert [a.status for a in answers] == [200] * BURST + [429]
    assert answers[-1].json()["error"]["code"] == "rate-limited"
    assert (b"retry-after", b"1000") in answers[-1].headers
    # the first read of the key and the refusal went to the route, the rest not
    assert fast.route_calls == ["/v1/agents/solo", "/v1/agents/solo"]
    fast.route_calls.clear()
    assert (await both(keyed, "/v1/agents/solo", headers=bearer(honest))).status == 200
    assert fast.route_calls == []


async def test_reads_answered_in_front_keep_the_request_metrics_of_the_route(
    apis: tuple[Api, Api],
) -> None:
    """Found and unknown agents read in front of FastAPI are counted under the route's
    template, with their status, as the route's are."""
    fast, _ = apis
    for path in ("/v1/agents/weather", "/v1/agents/solo", "/v1/agents/nobody"):
        await fast.client.get(path)
    assert fast.route_calls == []
    metrics = (await fast.client.get("/metrics")).text
    for status, count in (("200", "2.0"), ("404", "1.0")):
        line = (
            f'agentroster_http_requests_total{{method="GET",route="{GET_AGENT_ROUTE}",'
            f'status="{status}"}} {count}'
        )
        assert line in metrics


def middleware_classes(settings: Settings) -> list[object]:
    """The classes of the middlewares an API built now would run, outermost first."""
    return [middleware.cls for middleware in create_api(settings).user_middleware]


@pytest.mark.usefixtures("spans")
def test_with_tracing_on_reads_take_the_route_which_makes_the_spans(settings: Settings) -> None:
    """Tracing on: the fast path is not installed (nor the heartbeat's)."""
    installed = middleware_classes(settings)
    assert FastGetAgent not in installed
    assert FastHeartbeat not in installed


@pytest.mark.usefixtures("untraced")
def test_without_tracing_the_fast_path_is_outermost(settings: Settings) -> None:
    """Tracing off: the fast path runs first, before the page cache and the other middlewares."""
    assert middleware_classes(settings)[0] is FastGetAgent
