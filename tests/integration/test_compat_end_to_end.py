"""The peers' clients against the whole registry: the API with its real gateway, RabbitMQ, the
worker and Redis. oo-a2a-registry's unchanged `RegistryClient` heartbeats an agent whose card is
served on a local port; a2a-registry's JSON-RPC methods run end to end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from a2a_registry.client.heartbeat import RegistryClient
from a2a_registry.models import AgentCard, AgentInterface, AgentSkill
from fastapi import FastAPI

from agentroster.api import create_api
from agentroster.api.peer_cards import heartbeat_agent_id
from agentroster.settings import Settings
from agentroster.worker import Worker, create_worker
from tests.helpers import EventCollector, serve_http

KEY = "k" * 40


@dataclass
class Registry:
    """The API served over TCP (real gateway) and a client of it."""

    url: str
    http: httpx.AsyncClient

    def keyed_url(self, key: str = KEY) -> str:
        """The registry URL with a key as its password, as an oo-a2a agent configures it."""
        return self.url.replace("http://", f"http://agent:{key}@")


@pytest.fixture
async def registry(settings: Settings, worker: Worker) -> AsyncIterator[Registry]:
    """The API of the test registry with the bootstrap key `KEY`; compat writes need a key."""
    keyed = Settings.model_validate({**settings.model_dump(), "bootstrap_admin_key": KEY})
    async with (
        serve_http(create_api(keyed)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        yield Registry(url, http)


@dataclass
class CardServer:
    """An agent's well-known card on a local port, and the requests that reached it."""

    url: str
    requests: list[str]


@pytest.fixture
async def card_server() -> AsyncIterator[CardServer]:
    """An agent serving its A2A card at its well-known paths on a local port."""
    app = FastAPI()
    holder: dict[str, Any] = {}
    requests: list[str] = []

    @app.get("/.well-known/agent-card.json")
    async def card() -> dict[str, Any]:
        requests.append("/.well-known/agent-card.json")
        return dict(holder["card"])

    async with serve_http(app) as url:
        holder["card"] = card_of(url).model_dump(exclude_none=True)
        yield CardServer(url, requests)


@pytest.fixture
def agent_url(card_server: CardServer) -> str:
    """The URL of an agent serving its card."""
    return card_server.url


def card_of(url: str) -> AgentCard:
    """The agent's card, as an oo-a2a-registry agent builds it."""
    return AgentCard(
        name="Forecaster",
        description="forecasts",
        supportedInterfaces=[AgentInterface(url=url, protocolBinding="json-rpc/2.0")],
        skills=[AgentSkill(id="forecast", name="Forecast")],
    )


async def test_registry_client_registers_is_listed_and_expires(
    registry: Registry, agent_url: str, events: EventCollector
) -> None:
    """Heartbeats every 2 s with a key in the URL: joined, listed in /.well-known/agents and
    /v1/agents; once the client stops, agent.left `expired` (the TTL is three intervals)."""
    agent_id = heartbeat_agent_id("Forecaster", agent_url)
    client = RegistryClient(
        registry_url=registry.keyed_url(), agent_card=card_of(agent_url), interval=2
    )
    first = await client.send_once()
    assert first is not None
    assert first.status == "ok"
    assert isinstance(first.verified, bool)
    async with client:  # its own heartbeat loop from here
        await events.wait_until(lambda _: bool(events.of("joined")))
        [joined] = events.of("joined")
        assert joined.agent_id == agent_id
        listed = await registry.http.get("/v1/agents", params={"min_revision": joined.revision})
        assert [a["agent_id"] for a in listed.json()["agents"]] == [agent_id]
        cards = (await registry.http.get("/.well-known/agents")).json()
        assert [AgentCard.model_validate(c).effective_url for c in cards] == [agent_url]
    await events.wait_until(lambda _: bool(events.of("left")))
    [left] = events.of("left")
    assert (left.agent_id, left.data["reason"]) == (agent_id, "expired")
    assert len(events.of("joined")) == 1  # heartbeats renewed it: no flapping
    after = await registry.http.get("/v1/agents", params={"min_revision": left.revision})
    assert after.json()["agents"] == []


async def test_registry_client_with_a_wrong_key_is_refused(
    registry: Registry, agent_url: str
) -> None:
    """A wrong key, or none, where compat writes need one: refused; nothing registered."""
    wrong = RegistryClient(
        registry_url=registry.keyed_url("x" * 40), agent_card=card_of(agent_url), interval=1
    )
    assert await wrong.send_once() is None  # the client logged the 401
    keyless = await registry.http.post(
        "/.well-known/agents/heartbeat",
        json={"agent_card": card_of(agent_url).model_dump(), "interval": 1},
    )
    assert keyless.status_code == 401
    assert keyless.json()["error"]["code"] == "unauthenticated"
    agent_id = heartbeat_agent_id("Forecaster", agent_url)
    assert (await registry.http.get(f"/v1/agents/{agent_id}")).status_code == 404


async def rpc(
    registry: Registry, method: str, params: Any = None, key: str | None = KEY
) -> dict[str, Any]:
    """One JSON-RPC call; its response object."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    request = {"jsonrpc": "2.0", "method": method, "params": params or {}, "id": 7}
    response = await registry.http.post("/jsonrpc", json=request, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_jsonrpc_methods_end_to_end(registry: Registry, events: EventCollector) -> None:
    """register -> agent.joined and readable at once (the write waited for the worker); search;
    unregister -> agent.left deregistered; then not found."""
    card = {
        "name": "Summariser",
        "description": "summarises documents",
        "url": "http://127.0.0.1:9/summariser",
        "version": "1.0.0",
        "protocol_version": "0.3.0",
        "skills": [{"id": "summarise", "description": "summaries"}],
    }
    registered = await rpc(registry, "register_agent", {"agent_card": card})
    assert registered["result"]["agent_id"] == "summariser"
    got = await rpc(registry, "get_agent", {"agent_id": "Summariser"})
    assert got["result"]["agent_card"]["name"] == "Summariser"
    listed = await rpc(registry, "list_agents")
    assert [a["name"] for a in listed["result"]["agents"]] == ["Summariser"]
    found = await rpc(registry, "search_agents", {"query": "summar", "skills": ["summarise"]})
    assert found["result"]["count"] == 1
    await events.wait_until(lambda _: bool(events.of("joined")))

    unregistered = await rpc(registry, "unregister_agent", {"agent_id": "summariser"})
    assert unregistered["result"]["success"] is True
    await events.wait_until(lambda _: bool(events.of("left", "deregistered")))
    assert (await rpc(registry, "get_agent", {"agent_id": "summariser"}))["error"]["code"] == (
        -32001
    )


async def test_jsonrpc_errors_end_to_end(registry: Registry) -> None:
    """A write without a key, an unknown agent, a card the registry refuses: their codes."""
    card = {
        "name": "x",
        "description": "",
        "url": "http://h/",
        "version": "1",
        "protocol_version": "0.3.0",
    }
    no_key = await rpc(registry, "register_agent", {"agent_card": card}, key=None)
    assert no_key["error"]["code"] == -32002
    unknown = await rpc(registry, "unregister_agent", {"agent_id": "nobody"})
    assert unknown["error"]["code"] == -32001
    bad = await rpc(
        registry, "register_agent", {"agent_card": {**card, "skills": [{"id": "\x01"}]}}
    )
    assert (bad["error"]["code"], bad["error"]["data"]["code"]) == (-32006, "invalid-card")


@pytest.fixture
async def verifying_registry(settings: Settings, cleanup: None) -> AsyncIterator[Registry]:
    """A registry whose card checks may fetch from 127.0.0.0/8 (where the test's agent is)."""
    local = Settings.model_validate(
        {**settings.model_dump(), "bootstrap_admin_key": KEY, "verify_networks": ["127.0.0.0/8"]}
    )
    async with (
        create_worker(local),
        serve_http(create_api(local)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        yield Registry(url, http)


async def test_registry_client_agent_is_verified_by_its_served_card(
    verifying_registry: Registry, card_server: CardServer, events: EventCollector
) -> None:
    """The worker fetches the card the agent serves, once: discovery says `verified: true`,
    filters on it, and the client's next heartbeat answer says so too."""
    registry = verifying_registry
    agent_id = heartbeat_agent_id("Forecaster", card_server.url)
    client = RegistryClient(
        registry_url=registry.keyed_url(), agent_card=card_of(card_server.url), interval=2
    )
    assert await client.send_once() is not None
    await events.wait_until(lambda _: bool(events.of("updated", "verified")))
    [checked] = events.of("updated", "verified")
    assert (checked.agent_id, checked.data["verified"]) == (agent_id, True)
    answer = await client.send_once()
    assert answer is not None
    assert answer.verified is True
    page = await registry.http.get(
        "/v1/agents", params={"verified": "true", "min_revision": checked.revision}
    )
    assert [a["agent_id"] for a in page.json()["agents"]] == [agent_id]
    assert page.json()["agents"][0]["verified"] is True
    assert card_server.requests == ["/.well-known/agent-card.json"]  # once, not per heartbeat


async def test_a_card_at_a_forbidden_address_is_never_fetched(
    registry: Registry, card_server: CardServer, events: EventCollector
) -> None:
    """127.0.0.1 is not among the allowed networks here: `verified: false`, and the agent's
    server received nothing."""
    agent_id = heartbeat_agent_id("Forecaster", card_server.url)
    client = RegistryClient(
        registry_url=registry.keyed_url(), agent_card=card_of(card_server.url), interval=2
    )
    assert await client.send_once() is not None
    await events.wait_until(lambda _: bool(events.of("updated", "verified")))
    [checked] = events.of("updated", "verified")
    assert (checked.agent_id, checked.data["verified"]) == (agent_id, False)
    answer = await client.send_once()
    assert answer is not None
    assert answer.verified is False
    assert card_server.requests == []
