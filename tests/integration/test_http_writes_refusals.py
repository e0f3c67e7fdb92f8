"""HTTP writes that must be refused before anything is published: no key, a key that may not
write the agent, invalid input, an oversized body; and what a gateway outcome is answered with.

The API runs with a spy gateway (it records what would be published) and its real lifespan
(Redis); each hostile request is followed by a valid one, which still works.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from agentroster.api import create_api
from agentroster.api.auth import Principal, Scope, authenticate
from agentroster.api.gateway import BrokerUnavailable, Outcome
from agentroster.contracts.commands import Deregister, Heartbeat, Register
from agentroster.settings import Settings
from tests.integration.agents import a2a_card
from tests.integration.fast_paths import Spy

KEY = "test-bootstrap-admin-key-" + "y" * 16
AUTH = {"Authorization": f"Bearer {KEY}"}
WEATHER_KEY = Principal(
    key_id="k-weather", name="weather-team", scope=Scope.AGENT, agent_patterns=("weather-*",)
)


@pytest.fixture
def spy() -> Spy:
    return Spy()


@contextlib.asynccontextmanager
async def api_with(
    settings: Settings, spy: Spy, principal: Principal | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The API with the spy gateway; `principal` stands in for whatever key is presented."""
    app = create_api(
        settings.model_copy(update={"bootstrap_admin_key": SecretStr(KEY)}), gateway=spy
    )
    if principal is not None:

        async def as_principal() -> Principal:
            return principal

        app.dependency_overrides[authenticate] = as_principal
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://registry.test"
        ) as client,
    ):
        yield client


@pytest.fixture
async def api(settings: Settings, spy: Spy, cleanup: None) -> AsyncIterator[httpx.AsyncClient]:
    async with api_with(settings, spy) as client:
        yield client


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is an error in the one shape; its `error` object."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    found: dict[str, Any] = body["error"]
    return found


REGISTER = {"card": a2a_card("weather-1")}
URL = "/v1/agents/weather-1/instances/i1"


async def test_without_a_valid_key_nothing_is_published(api: httpx.AsyncClient, spy: Spy) -> None:
    """No key, an unknown key, a malformed Basic header: 401 with WWW-Authenticate."""
    attempts = [
        {},
        {"Authorization": "Bearer not-the-key"},
        {"Authorization": "Basic !!!"},
        {"Authorization": "Basic " + base64.b64encode(b"agent:wrong").decode()},
        {"Authorization": "Token " + KEY},
    ]
    for headers in attempts:
        for method, url, body in [
            ("PUT", URL, REGISTER),
            ("POST", "/v1/agents/weather-1/instances", REGISTER),
            ("POST", URL + "/heartbeat", None),
            ("DELETE", URL, None),
        ]:
            response = await api.request(method, url, json=body, headers=headers)
            error(response, 401, "unauthenticated")
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert spy.sent == []
    basic = {"Authorization": "Basic " + base64.b64encode(f"agent:{KEY}".encode()).decode()}
    assert (await api.put(URL, json=REGISTER, headers=basic)).status_code == 202
    assert len(spy.sent) == 1


async def test_a_key_outside_its_pattern_is_forbidden_and_nothing_published(
    settings: Settings, spy: Spy, cleanup: None
) -> None:
    """An agent key for `weather-*` writing `billing`: 403 naming what it lacks."""
    async with api_with(settings, spy, WEATHER_KEY) as api:
        refused = await api.put(
            "/v1/agents/billing/instances/i1", json={"card": a2a_card("billing")}
        )
        details = error(refused, 403, "forbidden")["details"]
        assert details == {"agent_id": "billing", "scope": "agent", "agent_patterns": ["weather-*"]}
        assert spy.sent == []
        # an invalid body with a foreign agent: still 403 first (the key is checked first)
        error(await api.put("/v1/agents/billing/instances/i1", json={"nope": 1}), 403, "forbidden")
        accepted = await api.put(URL, json=REGISTER)
    assert accepted.status_code == 202, accepted.text
    [(command, principal, wait)] = spy.sent
    assert principal == WEATHER_KEY
    assert not wait
    assert isinstance(command, Register)
    assert command.agent_id == "weather-1"


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/v1/agents/Weather/instances/i1", REGISTER),  # not a DNS label
        ("/v1/agents/weather-1/instances/i%201", REGISTER),  # a space in the instance id
        ("/v1/agents/weather-1/instances/" + "i" * 129, REGISTER),
        (URL, {}),  # no card
        (URL, {"card": "a string"}),
        (URL, {**REGISTER, "ttl_s": -1}),
        (URL, {**REGISTER, "ttl_s": 0}),
        (URL, {**REGISTER, "seq": 0}),
        (URL, {**REGISTER, "seq": 2**53}),
        (URL, {**REGISTER, "labels": {"a:b": "c"}}),
        (URL, {**REGISTER, "endpoints": [{"transport": "http"}]}),
        (URL, {**REGISTER, "agent_id": "billing"}),  # unknown field: not a way to rename
        (URL, {**REGISTER, "extra": 1}),
        (URL + "/heartbeat", {"card_digest": "x" * 129}),
        (URL + "/heartbeat", {"ttl_s": "soon"}),
        (URL + "/heartbeat", [1, 2]),
    ],
)
async def test_invalid_writes_are_422_before_anything_is_published(
    api: httpx.AsyncClient, spy: Spy, url: str, body: Any
) -> None:
    """Each invalid request: 422 in the error shape; a valid one next to it is published."""
    refused = await api.request(
        "PUT" if "heartbeat" not in url else "POST", url, json=body, headers=AUTH
    )
    error(refused, 422, "invalid-request")
    assert spy.sent == []
    assert (await api.put(URL, json=REGISTER, headers=AUTH)).status_code == 202


async def test_non_finite_numbers_in_a_card_are_422(api: httpx.AsyncClient, spy: Spy) -> None:
    """JSON has no NaN: a card with one (Python's json accepts it) is refused, not nulled."""
    raw = b'{"card": {"name": "weather-1", "score": NaN}}'
    refused = await api.put(URL, content=raw, headers={**AUTH, "Content-Type": "application/json"})
    error(refused, 422, "invalid-request")
    assert spy.sent == []


async def test_a_body_over_the_message_limit_is_413_unread(
    settings: Settings, api: httpx.AsyncClient, spy: Spy
) -> None:
    """Over AGENTROSTER_MAX_MESSAGE_BYTES, with a length or chunked: 413, nothing published."""
    big = b'{"card": {"name": "' + b"x" * settings.max_message_bytes + b'"}}'
    error(await api.put(URL, content=big, headers=AUTH), 413, "body-too-large")

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    error(await api.put(URL, content=chunks(), headers=AUTH), 413, "body-too-large")
    assert spy.sent == []

    async def small() -> AsyncIterator[bytes]:
        yield b'{"card": {"name": "weather-1"}}'

    chunked = await api.put(
        URL, content=small(), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert chunked.status_code == 202, chunked.text


async def test_broker_unavailable_is_503_with_retry_after(api: httpx.AsyncClient, spy: Spy) -> None:
    spy.error = BrokerUnavailable("down", retry_after_s=2)
    refused = await api.post(URL + "/heartbeat", headers=AUTH)
    error(refused, 503, "broker-unavailable")
    assert refused.headers["Retry-After"] == "2"


async def test_the_answer_says_what_to_do_next(
    settings: Settings, api: httpx.AsyncClient, spy: Spy
) -> None:
    """202 with seq, bounded ttl and Retry-After; defaults from the settings; numbered seqs."""
    first = await api.put(URL, json={**REGISTER, "interval_s": 4, "ttl_s": 12}, headers=AUTH)
    assert first.status_code == 202
    assert first.json() | {"seq": 0} == {
        "agent_id": "weather-1",
        "instance_id": "i1",
        "seq": 0,
        "ttl_s": 12.0,
        "heartbeat_in_s": 4.0,
        "outcome": "accepted",
        "reason": None,
    }
    assert first.headers["Retry-After"] == "4"
    beat = await api.post(URL + "/heartbeat", headers=AUTH)  # no body at all
    assert beat.status_code == 202
    assert beat.json()["ttl_s"] == settings.http_ttl_s
    assert beat.headers["Retry-After"] == str(int(settings.http_ttl_s / 3))
    assert beat.json()["seq"] > first.json()["seq"]
    huge = await api.post(URL + "/heartbeat", json={"ttl_s": 10**6, "seq": 5}, headers=AUTH)
    assert huge.json()["ttl_s"] == settings.ttl_max_s  # bounded as the worker bounds it
    assert huge.json()["seq"] == 5
    bye = await api.delete(URL, params={"reason": "done"}, headers=AUTH)
    assert bye.status_code == 202
    assert "Retry-After" not in bye.headers
    kinds = [type(command) for command, _, _ in spy.sent]
    assert kinds == [Register, Heartbeat, Heartbeat, Deregister]
    heartbeat = spy.sent[1][0]
    assert isinstance(heartbeat, Heartbeat)
    assert heartbeat.card_digest == ""
    deregister = spy.sent[3][0]
    assert isinstance(deregister, Deregister)
    assert deregister.reason == "done"


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        ("forbidden", 403),
        ("identity-required", 403),
        ("quota-exceeded", 409),
        ("invalid-card", 422),
        ("registration-too-large", 422),
    ],
)
async def test_a_rejection_is_answered_with_its_reason(
    api: httpx.AsyncClient, spy: Spy, reason: str, status: int
) -> None:
    spy.outcome = Outcome("rejected", reason, "what the worker said")
    refused = await api.put(URL, json=REGISTER, params={"wait": "true"}, headers=AUTH)
    body = error(refused, status, reason)
    assert body["message"] == "what the worker said"
    assert body["details"]["reason"] == reason
    assert body["details"]["instance_id"] == "i1"
    assert spy.sent[0][2] is True  # asked to wait


async def test_applied_with_wait_is_200_and_201_for_a_new_instance(
    api: httpx.AsyncClient, spy: Spy
) -> None:
    spy.outcome = Outcome("applied", "applied")
    applied = await api.put(URL, json=REGISTER, params={"wait": "true"}, headers=AUTH)
    assert applied.status_code == 200
    assert applied.json()["outcome"] == "applied"
    created = await api.post(
        "/v1/agents/weather-1/instances", json=REGISTER, params={"wait": "true"}, headers=AUTH
    )
    assert created.status_code == 201
    assert created.headers["Location"].startswith("/v1/agents/weather-1/instances/http-")


async def test_the_write_routes_are_in_the_openapi_document(api: httpx.AsyncClient) -> None:
    paths = (await api.get("/openapi.json")).json()["paths"]
    writes = {
        (method.upper(), path)
        for path, operations in paths.items()
        for method, operation in operations.items()
        if "writes" in operation.get("tags", [])
    }
    assert writes == {
        ("PUT", "/v1/agents/{agent_id}/instances/{instance_id}"),
        ("POST", "/v1/agents/{agent_id}/instances"),
        ("POST", "/v1/agents/{agent_id}/instances/{instance_id}/heartbeat"),
        ("DELETE", "/v1/agents/{agent_id}/instances/{instance_id}"),
    }
