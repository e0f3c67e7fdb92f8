"""`DiscoveryClient` against `httpx.MockTransport`: paging, the query it sends, error mapping.

No services: the handler plays the API, answering as its documented shapes say.
"""

from __future__ import annotations

import pickle
from typing import Any

import httpx
import pytest

from agentroster.client.discovery import DiscoveryClient, DiscoveryError
from agentroster.client.models import Agent, DetailedAgent

BASE_URL = "http://registry.test"


def summary(agent_id: str, **fields: Any) -> dict[str, Any]:
    """An agent as `GET /v1/agents` lists it."""
    return {
        "agent_id": agent_id,
        "status": "live",
        "revision": 3,
        "card_digest": "sha256:00",
        "live_instances": 1,
        "first_seen": "2025-05-01T09:00:00Z",
        "last_seen": "2025-05-01T09:30:10Z",
        "lease": {"ttl_s": 30.0, "interval_s": 10.0, "idle_ttl_s": None},
        "agent": {
            "name": agent_id.title(),
            "description": "",
            "version": "1.0.0",
            "card_format": "a2a/1.0",
            "endpoints": [
                {
                    "transport": "http",
                    "protocol": "a2a",
                    "protocol_version": "1.0",
                    "binding": "JSONRPC",
                    "url": f"https://{agent_id}.example/a2a",
                    "exchange": None,
                    "routing_key": None,
                }
            ],
            "skills": [{"id": "echo", "name": "Echo", "description": "", "tags": ["t"]}],
            "tags": ["t"],
            "labels": {"team": "qa"},
        },
        **fields,
    }


def error(status: int, code: str, message: str, details: Any = None) -> httpx.Response:
    """An error in the API's one shape."""
    body = {"error": {"code": code, "message": message, "details": details}}
    return httpx.Response(status, json=body)


class PagingApi:
    """Plays `GET /v1/agents` over a fixed list of agent ids, paging by `limit` and `cursor`."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert request.url.path == "/v1/agents"
        limit = int(request.url.params["limit"])
        cursor = request.url.params.get("cursor")
        after = [i for i in self.ids if cursor is None or i > cursor]
        page = after[:limit]
        more = len(after) > limit
        return httpx.Response(
            200,
            json={
                "revision": 42,
                "agents": [summary(i) for i in page],
                "next_cursor": page[-1] if more else None,
            },
        )


def client(handler: Any) -> DiscoveryClient:
    return DiscoveryClient(BASE_URL, transport=httpx.MockTransport(handler))


async def test_find_follows_cursors_until_the_last_page() -> None:
    """Pages of 3 over 10 agents: four requests, each cursor the previous page's last id."""
    api = PagingApi([f"agent-{n:02d}" for n in range(10)])
    async with client(api) as registry:
        found = [agent.agent_id async for agent in registry.find(page_size=3)]

    assert found == api.ids
    assert [r.url.params.get("cursor") for r in api.requests] == [
        None,
        "agent-02",
        "agent-05",
        "agent-08",
    ]
    assert {r.url.params["limit"] for r in api.requests} == {"3"}


async def test_find_of_nothing_is_one_request_and_no_agents() -> None:
    """An empty registry: one page, nothing yielded."""
    api = PagingApi([])
    async with client(api) as registry:
        assert [agent async for agent in registry.find()] == []
    assert len(api.requests) == 1


async def test_a_page_exactly_full_ends_on_a_null_cursor() -> None:
    """When the API says there is no next page, no further request is made."""
    api = PagingApi(["a", "b", "c"])
    async with client(api) as registry:
        page = await registry.list_page(page_size=3)
        assert [a.agent_id for a in page.agents] == ["a", "b", "c"]
        assert page.next_cursor is None
        assert page.revision == 42
        assert [a.agent_id async for a in registry.find(page_size=3)] == ["a", "b", "c"]
    assert len(api.requests) == 2


async def test_list_page_passes_the_cursor_it_is_given() -> None:
    """`list_page(cursor=...)` fetches the page after it."""
    api = PagingApi(["a", "b", "c", "d"])
    async with client(api) as registry:
        page = await registry.list_page(page_size=2, cursor="b")
    assert [a.agent_id for a in page.agents] == ["c", "d"]
    assert page.next_cursor is None


async def test_every_filter_is_sent_and_skill_and_label_repeat() -> None:
    """All filters at once: skills and labels repeated, in the API's parameter names."""
    api = PagingApi([])
    async with client(api) as registry:
        await registry.list_page(
            skill=["forecast", "translate"],
            tag="weather",
            protocol="a2a",
            transport="amqp",
            q="rain & snow",
            labels={"team": "geo", "url": "http://x:1"},
            status="all",
            page_size=50,
            cursor="m",
        )
    (request,) = api.requests
    assert request.url.params.multi_items() == [
        ("skill", "forecast"),
        ("skill", "translate"),
        ("tag", "weather"),
        ("protocol", "a2a"),
        ("transport", "amqp"),
        ("q", "rain & snow"),
        ("label", "team:geo"),
        ("label", "url:http://x:1"),
        ("status", "all"),
        ("limit", "50"),
        ("cursor", "m"),
    ]


async def test_filters_not_given_are_not_sent() -> None:
    """Without filters only status and limit go out (what today's API knows)."""
    api = PagingApi([])
    async with client(api) as registry:
        await registry.list_page()
        await registry.list_page(skill="echo")
    plain, one_skill = api.requests
    assert plain.url.params.multi_items() == [("status", "live"), ("limit", "100")]
    assert one_skill.url.params.get_list("skill") == ["echo"]


async def test_a_label_key_with_a_colon_is_refused_before_any_request() -> None:
    """`label=a:b:c` would filter key `a`: a key with `:` is a ValueError, not a wrong filter."""
    api = PagingApi([])
    async with client(api) as registry:
        with pytest.raises(ValueError, match="contains ':'"):
            await registry.list_page(labels={"a:b": "c"})
    assert api.requests == []


async def test_a_repeated_cursor_is_an_error_not_an_endless_walk() -> None:
    """An API that hands back the cursor it was given would loop forever: stop with an error."""

    def stuck(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"revision": 1, "agents": [summary("a")], "next_cursor": "a"}
        )

    async with client(stuck) as registry:
        with pytest.raises(DiscoveryError) as raised:
            _ = [agent async for agent in registry.find()]
    assert raised.value.code == "invalid-response"


async def test_an_api_error_becomes_a_discovery_error_with_its_fields() -> None:
    """A 422 in the one error shape: status, code, message and details as sent."""
    details = [{"in": "query", "parameter": "limit", "message": "too big"}]

    def handler(request: httpx.Request) -> httpx.Response:
        return error(422, "invalid-request", "invalid parameter: limit", details)

    async with client(handler) as registry:
        with pytest.raises(DiscoveryError) as raised:
            await registry.list_page(page_size=5000)
    exc = raised.value
    assert (exc.status, exc.code, exc.message, exc.details) == (
        422,
        "invalid-request",
        "invalid parameter: limit",
        details,
    )
    assert str(exc) == "invalid parameter: limit (HTTP 422, invalid-request)"
    copy = pickle.loads(pickle.dumps(exc))
    assert (copy.status, copy.code, copy.details) == (422, "invalid-request", details)


async def test_a_503_keeps_the_api_code() -> None:
    """Redis down: `store-unavailable`, raised from `find` as from every call."""

    def handler(request: httpx.Request) -> httpx.Response:
        return error(503, "store-unavailable", "retry later")

    async with client(handler) as registry:
        with pytest.raises(DiscoveryError) as raised:
            _ = [agent async for agent in registry.find()]
    assert (raised.value.status, raised.value.code) == (503, "store-unavailable")


async def test_an_error_not_in_the_api_shape_is_named_after_its_status() -> None:
    """A proxy's HTML 502: code from the status phrase, the body's start in the message."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>upstream down</html>")

    async with client(handler) as registry:
        with pytest.raises(DiscoveryError) as raised:
            await registry.get("weather")
    exc = raised.value
    assert (exc.status, exc.code, exc.details) == (502, "bad-gateway", None)
    assert "upstream down" in exc.message


async def test_an_answer_of_the_wrong_shape_is_an_invalid_response() -> None:
    """A 200 that is no page (a wrong base URL serving something else): a clear error."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"hello": "world"})

    async with client(handler) as registry:
        with pytest.raises(DiscoveryError) as raised:
            await registry.list_page()
    assert raised.value.code == "invalid-response"
    assert "AgentPage" in raised.value.message


async def test_get_is_none_only_for_agent_not_found() -> None:
    """`agent-not-found` is None; a 404 of an unknown route (wrong base URL) raises."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/agents/ghost":
            return error(404, "agent-not-found", "no agent 'ghost'", {"agent_id": "ghost"})
        return error(404, "not-found", "Not Found")

    async with client(handler) as registry:
        assert await registry.get("ghost") is None
    async with DiscoveryClient(
        f"{BASE_URL}/elsewhere", transport=httpx.MockTransport(handler)
    ) as registry:
        with pytest.raises(DiscoveryError) as raised:
            await registry.get("ghost")
    assert raised.value.code == "not-found"


async def test_get_reads_the_detail_and_ignores_unknown_fields() -> None:
    """A tolerant reader: fields a newer API adds are ignored; a new status is kept."""
    detail = summary(
        "weather",
        status="draining",
        owner="someone",
        instances=[
            {
                "instance_id": "weather-1",
                "lease_deadline": "2025-05-01T09:30:40Z",
                "first_seen": None,
                "last_seen": None,
                "zone": "eu",
            }
        ],
        registry_revision=57,
    )
    detail["agent"]["endpoints"][0]["priority"] = 1

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=detail)

    async with client(handler) as registry:
        agent = await registry.get("weather")
    assert isinstance(agent, DetailedAgent)
    assert agent.status == "draining"
    assert agent.registry_revision == 57
    assert [i.instance_id for i in agent.instances] == ["weather-1"]
    assert agent.name == "Weather"
    assert [e.address for e in agent.endpoints] == ["https://weather.example/a2a"]
    assert agent.lease.ttl_s == 30.0


def test_an_agent_needs_only_its_id_and_status() -> None:
    """Fields the API stops sending fall back to defaults."""
    agent = Agent.model_validate({"agent_id": "bare", "status": "live"})
    assert agent.name == ""
    assert agent.endpoints == []
    assert agent.live_instances == 0


def test_an_endpoint_address_is_its_url_exchange_or_queue() -> None:
    """The one-string address of HTTP, exchange-routed and queue endpoints."""
    agent = Agent.model_validate(
        {
            "agent_id": "a",
            "status": "live",
            "agent": {
                "endpoints": [
                    {"transport": "http", "protocol": "a2a", "url": "https://a/"},
                    {"transport": "amqp", "protocol": "a2a", "exchange": "x", "routing_key": "k"},
                    {"transport": "amqp", "protocol": "a2a", "exchange": "", "routing_key": "q"},
                ]
            },
        }
    )
    assert [e.address for e in agent.endpoints] == ["https://a/", "x/k", "q"]


async def test_card_sends_the_a2a_version_only_when_asked() -> None:
    """`version` becomes the `A2A-Version` header; the card comes back as a dict."""
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/agents/weather/card"
        seen.append(request.headers.get("A2A-Version"))
        return httpx.Response(200, json={"name": "Weather", "version": "1.0.0"})

    async with client(handler) as registry:
        assert await registry.card("weather") == {"name": "Weather", "version": "1.0.0"}
        await registry.card("weather", version="0.3")
    assert seen == [None, "0.3"]


async def test_card_of_an_unknown_agent_raises_agent_not_found() -> None:
    """Unlike `get`, `card` has no None: an unknown agent is an error."""

    def handler(request: httpx.Request) -> httpx.Response:
        return error(404, "agent-not-found", "no agent 'ghost'", {"agent_id": "ghost"})

    async with client(handler) as registry:
        with pytest.raises(DiscoveryError) as raised:
            await registry.card("ghost")
    assert raised.value.code == "agent-not-found"
    assert raised.value.details == {"agent_id": "ghost"}


async def test_a_card_that_is_no_json_object_is_an_invalid_response() -> None:
    """A card must be a JSON object."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=["not", "a", "card"])

    async with client(handler) as registry:
        with pytest.raises(DiscoveryError) as raised:
            await registry.card("weather")
    assert raised.value.code == "invalid-response"


@pytest.mark.parametrize(
    ("agent_id", "path"),
    [("a/b", "/v1/agents/a%2Fb"), ("..", "/v1/agents/%2E%2E"), ("a b", "/v1/agents/a%20b")],
)
async def test_an_agent_id_stays_one_path_segment(agent_id: str, path: str) -> None:
    """A `/` or dots in an id cannot reach another route; the API judges the id (422)."""
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path.decode())
        return error(422, "invalid-request", "invalid parameter: agent_id")

    async with client(handler) as registry:
        with pytest.raises(DiscoveryError):
            await registry.get(agent_id)
    assert paths == [path]


async def test_a_base_url_with_a_path_prefixes_every_request() -> None:
    """A registry behind a path (`http://host/registry`) is reached there."""
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        return httpx.Response(200, json={"revision": 1, "agents": [], "next_cursor": None})

    async with DiscoveryClient(
        "http://host/registry", transport=httpx.MockTransport(handler)
    ) as registry:
        await registry.list_page()
    assert paths == ["/registry/v1/agents"]


async def test_an_unreachable_api_raises_httpx_transport_errors() -> None:
    """Connection failures are not API answers: they stay `httpx.TransportError`."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with client(handler) as registry:
        with pytest.raises(httpx.TransportError):
            await registry.list_page()


async def test_signature_filter_passed_and_read() -> None:
    """`find(signature="valid")` asks the API for it, and each agent's `signature` is read."""
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        agents = [summary("signed", signature="valid"), summary("old-registry")]
        return httpx.Response(200, json={"revision": 1, "agents": agents, "next_cursor": None})

    async with client(handler) as registry:
        found = [(a.agent_id, a.signature) async for a in registry.find(signature="valid")]
    assert found == [("signed", "valid"), ("old-registry", None)]
    assert requests[0].url.params.get_list("signature") == ["valid"]
