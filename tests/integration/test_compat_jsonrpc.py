"""a2a-registry's JSON-RPC API against the API and real Redis, with a gateway that applies each
command to Redis as the worker would (tests/gateways.py). The same against the real worker and
broker: test_compat_end_to_end.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from agentroster.api.auth import Principal, Scope
from agentroster.api.routes import jsonrpc
from agentroster.settings import Settings
from agentroster.store.redis_store import RedisStore
from tests.gateways import StoreGateway
from tests.helpers import serve_api

KEY = "k" * 40
AUTH = {"Authorization": f"Bearer {KEY}"}


def a2a_registry_card(name: str = "Weather Bot", **more: Any) -> dict[str, Any]:
    """A card as a2a-registry's clients send it (fasta2a's snake_case fields)."""
    return {
        "name": name,
        "description": "forecasts the weather",
        "url": "http://127.0.0.1:9/weather",
        "version": "1.0.0",
        "protocol_version": "0.3.0",
        "skills": [{"id": "forecast", "description": "a forecast"}],
        **more,
    }


def call(method: str, params: Any = None, request_id: Any = 1) -> dict[str, Any]:
    """One JSON-RPC request object."""
    request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
    if params is not None:
        request["params"] = params
    return request


class Rpc:
    """A JSON-RPC client of the test API."""

    def __init__(self, http: httpx.AsyncClient, gateway: StoreGateway) -> None:
        self.http = http
        self.gateway = gateway

    async def __call__(
        self, method: str, params: Any = None, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        response = await self.http.post(
            "/jsonrpc", json=call(method, params), headers=AUTH if headers is None else headers
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        assert answer["jsonrpc"] == "2.0"
        assert answer["id"] == 1
        return answer

    async def result(self, method: str, params: Any = None) -> dict[str, Any]:
        """The result of a call that must succeed."""
        answer = await self(method, params)
        assert "error" not in answer, answer
        result: dict[str, Any] = answer["result"]
        return result

    async def error(
        self, method: str, params: Any = None, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """The error of a call that must fail."""
        answer = await self(method, params, headers)
        assert "result" not in answer, answer
        error: dict[str, Any] = answer["error"]
        return error


@asynccontextmanager
async def open_rpc(settings: Settings, **update: Any) -> AsyncIterator[Rpc]:
    """The API with the bootstrap key `KEY`, a `StoreGateway`, and `update`d settings."""
    keyed = Settings.model_validate({**settings.model_dump(), "bootstrap_admin_key": KEY, **update})
    redis = Redis.from_url(settings.redis_url)
    gateway = StoreGateway(store=RedisStore(redis, settings.prefix), limits=keyed.limits())
    try:
        async with serve_api(keyed, gateway=gateway) as http:
            yield Rpc(http, gateway)
    finally:
        await redis.aclose()


@pytest.fixture
async def rpc(settings: Settings, cleanup: None) -> AsyncIterator[Rpc]:
    """Public reads, writes behind a key."""
    async with open_rpc(settings) as running:
        yield running


async def test_each_method_with_a2a_registrys_shapes(rpc: Rpc) -> None:
    """register, get (by id and by name), list, search, unregister, then get: not found."""
    registered = await rpc.result("register_agent", {"agent_card": a2a_registry_card()})
    assert registered == {
        "success": True,
        "agent_id": "weather-bot",
        "message": "Agent registered successfully",
        "transport": "JSONRPC",
    }
    expected = {**a2a_registry_card(), "preferred_transport": "JSONRPC"}
    for name in ("weather-bot", "Weather Bot"):
        assert await rpc.result("get_agent", {"agent_id": name}) == {
            "agent_card": expected,
            "found": True,
        }
    assert await rpc.result("list_agents") == {
        "agents": [expected],
        "count": 1,
        "transport": "JSONRPC",
    }
    found = await rpc.result("search_agents", {"query": "weather", "skills": ["forecast", "x"]})
    assert (found["agents"], found["count"], found["search_mode"]) == (
        [expected],
        1,
        "SEARCH_MODE_KEYWORD",
    )
    assert (found["query"], found["skills_filter"], found["transport"]) == (
        "weather",
        ["forecast", "x"],
        "JSONRPC",
    )
    assert (await rpc.result("search_agents", {"query": "nothing like it"}))["count"] == 0
    assert (await rpc.result("search_agents", {"skills": ["x"]}))["count"] == 0
    assert await rpc.result("unregister_agent", {"agent_id": "Weather Bot"}) == {
        "success": True,
        "message": "Agent unregistered successfully",
        "agent_id": "weather-bot",
    }
    assert (await rpc.error("get_agent", {"agent_id": "weather-bot"}))["code"] == -32001
    assert (await rpc.result("list_agents"))["count"] == 0
    assert (await rpc.error("unregister_agent", {"agent_id": "weather-bot"}))["code"] == -32001
    kinds = [type(sent.command).__name__ for sent in rpc.gateway.sent]
    assert kinds == ["Register", "Deregister"]
    assert all(sent.wait for sent in rpc.gateway.sent)


async def test_params_by_position(rpc: Rpc) -> None:
    """jsonrpcserver binds an array of params by position: so does this endpoint."""
    await rpc.result("register_agent", [a2a_registry_card()])
    assert (await rpc.result("get_agent", ["weather-bot"]))["found"] is True
    assert (await rpc.result("search_agents", ["weather", ["forecast"]]))["count"] == 1


async def test_writes_need_a_key_and_reads_do_not(rpc: Rpc) -> None:
    """No key, or a wrong one: -32002 with why; nothing reaches the gateway; reads still work."""
    error = await rpc.error("register_agent", {"agent_card": a2a_registry_card()}, headers={})
    assert error["code"] == -32002
    assert error["data"]["status"] == 401
    wrong = {"Authorization": "Bearer " + "x" * 40}
    error = await rpc.error("unregister_agent", {"agent_id": "a"}, headers=wrong)
    assert error["code"] == -32002
    assert rpc.gateway.sent == []
    assert (await rpc("list_agents", headers={}))["result"]["count"] == 0
    assert (await rpc("list_agents", headers=wrong))["result"]["count"] == 0  # key not read


async def test_a_key_for_other_agents_is_forbidden(
    rpc: Rpc, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent key whose patterns do not match: -32003 naming the key's scope and patterns."""
    agent_key = Principal("k1", "team-a", Scope.AGENT, ("team-a-*",))

    async def as_agent_key(request: object) -> Principal:
        return agent_key

    monkeypatch.setattr(jsonrpc, "authenticate", as_agent_key)
    error = await rpc.error("register_agent", {"agent_card": a2a_registry_card()})
    assert error["code"] == -32003
    assert error["data"]["details"]["agent_patterns"] == ["team-a-*"]
    assert rpc.gateway.sent == []


async def test_nobody_overwrites_an_agent_another_identity_owns(
    rpc: Rpc, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Registered with one key; another key allowed by pattern: the registry refuses it
    (-32003 forbidden from the worker's rule) and the card stays."""
    await rpc.result("register_agent", {"agent_card": a2a_registry_card()})
    other = Principal("k2", "other", Scope.AGENT, ("weather-*",))

    async def as_other(request: object) -> Principal:
        return other

    monkeypatch.setattr(jsonrpc, "authenticate", as_other)
    hostile = a2a_registry_card(description="hijacked")
    error = await rpc.error("register_agent", {"agent_card": hostile})
    assert (error["code"], error["data"]["code"]) == (-32003, "forbidden")
    card = (await rpc.result("get_agent", {"agent_id": "weather-bot"}))["agent_card"]
    assert card["description"] == "forecasts the weather"


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({}, "agent_card"),
        ({"agent_card": "x"}, "agent_card"),
        ({"agent_card": {}, "extra": 1}, "extra"),
        ([1, 2], "params"),
    ],
)
async def test_invalid_params_are_32602_naming_them(rpc: Rpc, params: Any, where: str) -> None:
    """-32602 with `data` naming each bad parameter; nothing sent."""
    error = await rpc.error("register_agent", params)
    assert error["code"] == -32602
    assert where in str(error["data"])
    assert rpc.gateway.sent == []


@pytest.mark.parametrize("missing", ["name", "description", "url", "version", "protocol_version"])
async def test_a_card_without_a_required_field_is_refused_as_there(rpc: Rpc, missing: str) -> None:
    """a2a-registry's own check and message: "Missing required field: <name>"."""
    card = a2a_registry_card()
    del card[missing]
    error = await rpc.error("register_agent", {"agent_card": card})
    assert (error["code"], error["message"]) == (-32602, f"Missing required field: {missing}")


async def test_a_card_the_worker_would_refuse_is_32006(rpc: Rpc) -> None:
    """A skill id with a control character: refused now with the worker's reason."""
    card = a2a_registry_card(skills=[{"id": "a\x00b"}])
    error = await rpc.error("register_agent", {"agent_card": card})
    assert (error["code"], error["data"]["code"]) == (-32006, "invalid-card")
    assert rpc.gateway.sent == []


async def test_an_unknown_method_is_32601_listing_the_methods(rpc: Rpc) -> None:
    error = await rpc.error("drop_registry", {})
    assert error["code"] == -32601
    assert error["data"]["methods"] == [
        "register_agent",
        "get_agent",
        "list_agents",
        "search_agents",
        "unregister_agent",
    ]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{", -32700),
        (b"[]", -32600),
        (b"7", -32600),
        (b'{"method": "list_agents", "id": 1}', -32600),
        (b'{"jsonrpc": "2.0", "method": 5, "id": 1}', -32600),
        (b'{"jsonrpc": "2.0", "method": "list_agents", "params": 3, "id": 1}', -32600),
        (b'{"jsonrpc": "2.0", "method": "list_agents", "id": {"a": 1}}', -32600),
    ],
)
async def test_malformed_requests_are_answered_with_their_code(
    rpc: Rpc, body: bytes, code: int
) -> None:
    """Parse error and invalid requests: one error response, id null when none could be read."""
    response = await rpc.http.post(
        "/jsonrpc", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200
    answer = response.json()
    assert answer["error"]["code"] == code
    assert answer["id"] in (None, 1)


async def test_a_batch_answers_each_call_in_order_and_no_notification(rpc: Rpc) -> None:
    """Results and errors side by side; a notification is carried out but not answered."""
    batch = [
        {"jsonrpc": "2.0", "method": "register_agent", "params": [a2a_registry_card()]},
        call("get_agent", {"agent_id": "weather-bot"}, "a"),
        call("get_agent", {"agent_id": "nobody"}, "b"),
        {"jsonrpc": "2.0"},
        call("nope", None, 3),
    ]
    response = await rpc.http.post("/jsonrpc", json=batch, headers=AUTH)
    answers = response.json()
    assert [a["id"] for a in answers] == ["a", "b", None, 3]
    assert answers[0]["result"]["found"] is True
    assert [a.get("error", {}).get("code") for a in answers[1:]] == [-32001, -32600, -32601]


async def test_only_notifications_get_no_body(rpc: Rpc) -> None:
    response = await rpc.http.post(
        "/jsonrpc", json=[{"jsonrpc": "2.0", "method": "list_agents"}], headers=AUTH
    )
    assert (response.status_code, response.content) == (204, b"")


async def test_a_batch_is_bounded(rpc: Rpc) -> None:
    """More than MAX_BATCH calls: one -32600 and none of them run."""
    batch = [call("register_agent", [a2a_registry_card(f"a{n}")], n) for n in range(21)]
    answer = (await rpc.http.post("/jsonrpc", json=batch, headers=AUTH)).json()
    assert answer["error"]["code"] == -32600
    assert rpc.gateway.sent == []


async def test_an_oversized_body_is_413(rpc: Rpc, settings: Settings) -> None:
    big = call("register_agent", [a2a_registry_card(description="x" * settings.max_message_bytes)])
    response = await rpc.http.post("/jsonrpc", json=big, headers=AUTH)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body-too-large"
    assert rpc.gateway.sent == []


async def test_a_broker_that_is_down_is_32005_with_when_to_retry(rpc: Rpc) -> None:
    rpc.gateway.down = True
    error = await rpc.error("register_agent", {"agent_card": a2a_registry_card()})
    assert error["code"] == -32005
    assert error["data"]["code"] == "broker-unavailable"
    assert error["data"]["retry_after_s"] == 2


async def test_reads_need_a_key_where_the_registry_says_so(
    settings: Settings, cleanup: None
) -> None:
    """AGENTROSTER_READ_REQUIRES_KEY: a read without a key is -32002; with one it answers."""
    async with open_rpc(settings, read_requires_key=True) as rpc:
        assert (await rpc.error("list_agents", headers={}))["code"] == -32002
        wrong = {"Authorization": "Bearer " + "x" * 40}
        assert (await rpc.error("get_agent", ["a"], headers=wrong))["code"] == -32002
        assert (await rpc.result("list_agents"))["count"] == 0
