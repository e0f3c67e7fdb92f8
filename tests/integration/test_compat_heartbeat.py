"""oo-a2a-registry's heartbeat against the API and real Redis, with a gateway that applies each
command to Redis as the worker would (tests/gateways.py): the HTTP layer end to end, without a
broker. The same against the real worker and broker: test_compat_end_to_end.py."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from a2a_registry.client.heartbeat import RegistryClient
from a2a_registry.models import AgentCard, AgentInterface, AgentSkill
from redis.asyncio import Redis

from agentroster.api import create_api
from agentroster.api.auth import BOOTSTRAP
from agentroster.api.gateway import Outcome
from agentroster.api.peer_cards import heartbeat_agent_id, heartbeat_instance_id
from agentroster.contracts.commands import Register
from agentroster.settings import Settings
from agentroster.store.redis_store import RedisStore
from tests.gateways import StoreGateway
from tests.helpers import serve_http

KEY = "k" * 40
HEARTBEAT = "/.well-known/agents/heartbeat"


def oo_card(name: str = "Weather Bot", url: str = "http://127.0.0.1:9/weather") -> AgentCard:
    """An agent card as an oo-a2a-registry agent builds it (v1.0)."""
    return AgentCard(
        name=name,
        description="forecasts",
        supportedInterfaces=[AgentInterface(url=url, protocolBinding="json-rpc/2.0")],
        skills=[AgentSkill(id="forecast", name="Forecast", tags=["weather"])],
    )


def body(card: AgentCard, interval: int = 30) -> dict[str, Any]:
    """A heartbeat body exactly as the client serialises it (nulls included)."""
    return {"agent_card": orjson.loads(card.model_dump_json()), "interval": interval}


@dataclass
class Registry:
    """The API served over TCP, its gateway, and a client of it."""

    url: str
    gateway: StoreGateway
    http: httpx.AsyncClient
    settings: Settings

    def keyed_url(self, key: str = KEY) -> str:
        """The registry URL with a key as its password, as an oo-a2a agent configures it."""
        return self.url.replace("http://", f"http://agent:{key}@")


async def open_registry(settings: Settings) -> AsyncIterator[Registry]:
    """Serve the API with a `StoreGateway` on a local port."""
    redis = Redis.from_url(settings.redis_url)
    gateway = StoreGateway(store=RedisStore(redis, settings.prefix), limits=settings.limits())
    try:
        async with (
            serve_http(create_api(settings, gateway=gateway)) as url,
            httpx.AsyncClient(base_url=url) as http,
        ):
            yield Registry(url, gateway, http, settings)
    finally:
        await redis.aclose()


@pytest.fixture
async def registry(settings: Settings, cleanup: None) -> AsyncIterator[Registry]:
    """Compat writes need no key (the client's URL carries none)."""
    async for running in open_registry(
        settings.model_copy(update={"compat_writes_require_key": False})
    ):
        yield running


@pytest.fixture
async def keyed(settings: Settings, cleanup: None) -> AsyncIterator[Registry]:
    """Compat writes need a key (the default); the bootstrap key is `KEY`."""
    update = {"bootstrap_admin_key": KEY, "compat_writes_require_key": True}
    async for running in open_registry(
        Settings.model_validate({**settings.model_dump(), **update})
    ):
        yield running


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    return error


async def test_the_unchanged_client_registers_its_agent(registry: Registry) -> None:
    """RegistryClient.send_once: 202 parsed as its HeartbeatResponse, the agent in discovery
    with one instance per URL, a TTL of three intervals, and its interval kept."""
    card = oo_card()
    client = RegistryClient(registry_url=registry.url, agent_card=card, interval=30)
    answer = await client.send_once()
    assert answer is not None
    assert (answer.status, answer.verified) == ("ok", False)
    assert client.interval == 30  # Retry-After: the agent's own interval, within the bounds

    agent_id = heartbeat_agent_id("Weather Bot", "http://127.0.0.1:9/weather")
    assert agent_id.startswith("weather-bot-")
    detail = (await registry.http.get(f"/v1/agents/{agent_id}")).json()
    assert detail["status"] == "live"
    assert [i["instance_id"] for i in detail["instances"]] == [
        heartbeat_instance_id("http://127.0.0.1:9/weather")
    ]
    [sent] = registry.gateway.sent
    assert isinstance(sent.command, Register)
    assert (sent.command.ttl_s, sent.command.interval_s, sent.wait) == (90, 30, True)
    assert sent.principal is None  # no key needed, none given: no identity
    # stored without the nulls the client sends; discovery reads its endpoint from the card
    card_json = (await registry.http.get(f"/v1/agents/{agent_id}/card")).json()
    assert "url" not in card_json
    assert detail["agent"]["endpoints"][0]["url"] == "http://127.0.0.1:9/weather"


async def test_a_second_heartbeat_renews_the_same_instance(registry: Registry) -> None:
    """Each heartbeat is a register with a higher seq: applied, never ignored as a duplicate."""
    client = RegistryClient(registry_url=registry.url, agent_card=oo_card(), interval=30)
    assert await client.send_once() is not None
    assert await client.send_once() is not None
    first, second = registry.gateway.sent
    assert second.command.seq > first.command.seq
    assert second.command.instance_id == first.command.instance_id


async def test_a_v03_card_is_registered_as_v03(registry: Registry) -> None:
    """a2a_version="0.3": the card keeps its top-level url, without `supportedInterfaces: null`."""
    client = RegistryClient(
        registry_url=registry.url, agent_card=oo_card(), interval=30, a2a_version="0.3"
    )
    assert await client.send_once() is not None
    agent_id = heartbeat_agent_id("Weather Bot", "http://127.0.0.1:9/weather")
    detail = (await registry.http.get(f"/v1/agents/{agent_id}")).json()
    assert detail["agent"]["card_format"] == "a2a/0.3"
    assert (
        "supportedInterfaces" not in (await registry.http.get(f"/v1/agents/{agent_id}/card")).json()
    )


async def test_one_name_at_two_urls_is_two_agents(registry: Registry) -> None:
    """oo-a2a-registry tells agents apart by URL: so does the derived agent id."""
    for url in ("http://127.0.0.1:9/a", "http://127.0.0.1:9/b"):
        client = RegistryClient(registry_url=registry.url, agent_card=oo_card(url=url), interval=30)
        assert await client.send_once() is not None
    ids = {sent.command.agent_id for sent in registry.gateway.sent}
    assert len(ids) == 2
    listed = (
        await registry.http.get("/v1/agents", params={"q": "weather bot", "min_revision": 2})
    ).json()
    assert {a["agent_id"] for a in listed["agents"]} == ids


async def test_the_old_path_answers_the_same(registry: Registry) -> None:
    """oo-a2a-registry 0.1's `POST /registry/heartbeat`."""
    response = await registry.http.post("/registry/heartbeat", json=body(oo_card()))
    assert response.status_code == 202
    assert response.json() == {"status": "ok", "verified": False}
    assert response.headers["Retry-After"] == "30"


async def test_the_interval_is_bounded_and_the_client_told(registry: Registry) -> None:
    """A huge interval: Retry-After says the longest the registry accepts, and the client takes
    it (its lease: three of those intervals, within the TTL bound)."""
    client = RegistryClient(registry_url=registry.url, agent_card=oo_card(), interval=10**9)
    assert await client.send_once() is not None
    longest = int(registry.settings.ttl_max_s // 3)
    assert client.interval == longest
    [sent] = registry.gateway.sent
    assert isinstance(sent.command, Register)
    assert sent.command.ttl_s == 3 * longest


async def test_live_agents_are_listed_as_the_client_models_them(registry: Registry) -> None:
    """`GET /.well-known/agents`: a JSON array of cards oo-a2a-registry's AgentCard reads, and
    converted by `A2A-Version` (its server's header) for a heartbeat agent."""
    client = RegistryClient(registry_url=registry.url, agent_card=oo_card(), interval=30)
    assert await client.send_once() is not None
    await (await registry.http.get("/v1/agents", params={"min_revision": 1})).aread()
    cards = [
        AgentCard.model_validate(c) for c in (await registry.http.get("/.well-known/agents")).json()
    ]
    assert [c.name for c in cards] == ["Weather Bot"]
    assert cards[0].effective_url == "http://127.0.0.1:9/weather"
    v03 = (await registry.http.get("/.well-known/agents", headers={"A2A-Version": "0.3"})).json()
    assert v03[0]["url"] == "http://127.0.0.1:9/weather"
    assert AgentCard.model_validate(v03[0]).supportedInterfaces is None


async def test_with_keys_the_key_in_the_url_is_the_identity(keyed: Registry) -> None:
    """The key as the URL's password (Basic auth by httpx): registered for that principal."""
    client = RegistryClient(registry_url=keyed.keyed_url(), agent_card=oo_card(), interval=30)
    assert await client.send_once() is not None
    [sent] = keyed.gateway.sent
    assert sent.principal == BOOTSTRAP


async def test_with_keys_no_key_or_a_wrong_one_is_refused(keyed: Registry) -> None:
    """401 with WWW-Authenticate in the error shape; nothing reaches the gateway; the client
    reports failure (None) rather than a registration."""
    error = error_of(await keyed.http.post(HEARTBEAT, json=body(oo_card())), 401)
    assert error["code"] == "unauthenticated"
    wrong = RegistryClient(registry_url=keyed.keyed_url("x" * 40), agent_card=oo_card())
    assert await wrong.send_once() is None
    basic = base64.b64encode(b"agent:" + b"y" * 40).decode()
    response = await keyed.http.post(
        HEARTBEAT, json=body(oo_card()), headers={"Authorization": f"Basic {basic}"}
    )
    assert error_of(response, 401)["code"] == "unauthenticated"
    assert "WWW-Authenticate" in response.headers
    assert keyed.gateway.sent == []


@pytest.mark.parametrize(
    ("payload", "parameter"),
    [
        (b"{", "body"),
        (b"[]", "body"),
        (orjson.dumps({"interval": 30}), "agent_card"),
        (orjson.dumps({"agent_card": {"name": "x"}, "interval": 30}), "agent_card.url"),
        (orjson.dumps({"agent_card": {"url": "http://h/"}}), "agent_card.name"),
        (orjson.dumps({"agent_card": {"name": "!!!", "url": "http://h/"}}), "agent_card.name"),
        (orjson.dumps({"agent_card": {"name": 7, "url": "http://h/"}}), "agent_card.name"),
        (
            orjson.dumps({"agent_card": {"name": "a", "url": "http://h/"}, "interval": 0}),
            "interval",
        ),
    ],
)
async def test_a_malformed_heartbeat_is_422_naming_what(
    registry: Registry, payload: bytes, parameter: str
) -> None:
    """Bad bodies: 422 naming the bad field of the body; nothing sent."""
    response = await registry.http.post(
        HEARTBEAT, content=payload, headers={"Content-Type": "application/json"}
    )
    error = error_of(response, 422)
    assert {(d["in"], d["parameter"]) for d in error["details"]} == {("body", parameter)}
    assert registry.gateway.sent == []


async def test_a_card_the_worker_would_refuse_is_refused_at_once(registry: Registry) -> None:
    """A skill id with a control character: 422 invalid-card now, not a 202 for a registration
    that never happens."""
    card = body(oo_card())
    card["agent_card"]["skills"][0]["id"] = "fore\x00cast"
    error = error_of(await registry.http.post(HEARTBEAT, json=card), 422)
    assert error["code"] == "invalid-card"
    assert registry.gateway.sent == []


async def test_an_oversized_body_is_413_before_it_is_read_whole(registry: Registry) -> None:
    """Beyond AGENTROSTER_MAX_MESSAGE_BYTES: 413 in the error shape, nothing sent."""
    big = body(oo_card())
    big["agent_card"]["description"] = "x" * (registry.settings.max_message_bytes + 1)
    error = error_of(await registry.http.post(HEARTBEAT, json=big), 413)
    assert error["code"] == "body-too-large"
    assert registry.gateway.sent == []


async def test_nobody_takes_over_an_agent_another_key_owns(keyed: Registry) -> None:
    """Keys off for heartbeats without one, but the agent was registered with a key: a keyless
    heartbeat for it is 403 forbidden, and its card is unchanged."""
    client = RegistryClient(registry_url=keyed.keyed_url(), agent_card=oo_card(), interval=30)
    assert await client.send_once() is not None
    agent_id = keyed.gateway.sent[0].command.agent_id
    before = (await keyed.http.get(f"/v1/agents/{agent_id}/card")).content

    keyed.settings.compat_writes_require_key = False  # the API reads its settings per request
    hostile = oo_card()
    hostile.description = "hijacked"
    error = error_of(await keyed.http.post(HEARTBEAT, json=body(hostile)), 403)
    assert error["code"] == "forbidden"
    assert (await keyed.http.get(f"/v1/agents/{agent_id}/card")).content == before


async def test_a_broker_that_is_down_is_503_with_retry_after(registry: Registry) -> None:
    """The client's raise_for_status sees a 503; Retry-After says when to try again."""
    registry.gateway.down = True
    response = await registry.http.post(HEARTBEAT, json=body(oo_card()))
    assert error_of(response, 503)["code"] == "broker-unavailable"
    assert response.headers["Retry-After"] == "2"


async def test_a_rejected_outcome_reaches_the_client(registry: Registry) -> None:
    """What the worker dead-letters (here: a quota) is the client's 4xx, not a 202."""
    registry.gateway.outcome = Outcome("rejected", "quota-exceeded", "too many agents")
    error = error_of(await registry.http.post(HEARTBEAT, json=body(oo_card())), 409)
    assert error["code"] == "quota-exceeded"


@pytest.mark.parametrize("url", ["http://h/a b", "http://h/\x00", "http://[::1/", "x" * 5000])
async def test_a_hostile_url_is_refused_next_to_valid_traffic(registry: Registry, url: str) -> None:
    """A card URL the registry cannot use: 422 with the reason, nothing sent; an honest agent
    heartbeating beside it is registered as ever."""
    honest = RegistryClient(registry_url=registry.url, agent_card=oo_card(), interval=30)
    assert await honest.send_once() is not None
    hostile = body(oo_card())
    hostile["agent_card"]["supportedInterfaces"][0]["url"] = url
    error = error_of(await registry.http.post(HEARTBEAT, json=hostile), 422)
    assert error["code"] in {"invalid-card", "invalid-schema"}
    assert await honest.send_once() is not None
    assert len(registry.gateway.sent) == 2
    assert {s.command.agent_id for s in registry.gateway.sent} == {
        heartbeat_agent_id("Weather Bot", "http://127.0.0.1:9/weather")
    }
