"""A2A cards over the read API, against a real worker, RabbitMQ and Redis, read with the a2a SDK.

Agents register cards built with the SDK (a v1.0 protobuf card, a v0.3 pydantic card); the API
serves each as registered, converts it on `A2A-Version`, answers the SDK's card resolver, and
lists the live agents' cards at `/.well-known/agents` as oo-a2a-registry does.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from a2a.client import ClientConfig, ClientFactory
from a2a.client.card_resolver import A2ACardResolver, parse_agent_card
from a2a.compat.v0_3 import types as v03
from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    Message,
    Part,
    Role,
    SendMessageRequest,
)
from google.protobuf.json_format import MessageToDict, ParseDict

from agentroster.api import create_api
from agentroster.api.a2a_conversion import to_a2a_v03, to_a2a_v10
from agentroster.client import Announcement
from agentroster.contracts import AMQP_BINDING_URI, Endpoint, card_bytes, card_digest
from agentroster.settings import Settings
from agentroster.worker import Worker
from tests.a2a_schemas import v03_card_validator
from tests.helpers import EventCollector, serve_api

QUEUE_URL = "amqp://broker.example/?queue=modern"


def v10_card(name: str, *, legacy_too: bool = True) -> AgentCard:
    """A v1.0 card built with the SDK: HTTP interfaces (the JSON-RPC one for a tenant) and a
    queue interface speaking 1.0 and, unless `legacy_too` is false, one url still speaking 0.3
    (a mixed card, as an agent half way through its upgrade has)."""
    legacy = [
        AgentInterface(
            url=f"https://{name}.example/a2a/v03",
            protocol_binding="JSONRPC",
            protocol_version="0.3",
        )
    ]
    return AgentCard(
        name=name,
        description=f"{name}, a v1.0 agent",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(
                url=f"https://{name}.example/a2a",
                protocol_binding="JSONRPC",
                protocol_version="1.0",
                tenant="acme",
            ),
            AgentInterface(
                url=f"https://{name}.example/rest",
                protocol_binding="HTTP+JSON",
                protocol_version="1.0",
            ),
            AgentInterface(
                url=QUEUE_URL, protocol_binding=AMQP_BINDING_URI, protocol_version="1.0"
            ),
            *(legacy if legacy_too else []),
        ],
        capabilities=AgentCapabilities(streaming=True, extended_agent_card=True),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[AgentSkill(id="echo", name="Echo", description="echoes", tags=["test"])],
    )


def v03_card(name: str) -> v03.AgentCard:
    """A v0.3 card built with the SDK's v0.3 types: a main url and a gRPC interface."""
    return v03.AgentCard(
        name=name,
        description=f"{name}, a v0.3 agent",
        version="0.9.0",
        url=f"https://{name}.example/a2a",
        preferred_transport="JSONRPC",
        additional_interfaces=[
            v03.AgentInterface(url=f"https://{name}.example/a2a", transport="JSONRPC"),
            v03.AgentInterface(url=f"https://{name}.example/grpc", transport="GRPC"),
        ],
        capabilities=v03.AgentCapabilities(streaming=False),
        supports_authenticated_extended_card=False,
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[v03.AgentSkill(id="sum", name="Sum", description="adds", tags=["math"])],
    )


def as_dict(card: AgentCard | v03.AgentCard) -> dict[str, Any]:
    """The card's JSON, as `Announcement` turns it into the card it registers."""
    if isinstance(card, AgentCard):
        converted: dict[str, Any] = MessageToDict(card)
        return converted
    dumped: dict[str, Any] = card.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


def parse_v10(body: bytes) -> AgentCard:
    """Parse a v1.0 card strictly with the SDK (a field it does not know is an error)."""
    parsed = AgentCard()
    ParseDict(orjson.loads(body), parsed)
    return parsed


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_api(settings) as client:
        yield client


def announcement(worker: Worker, card: Any, **options: Any) -> Announcement:
    options.setdefault("ttl_s", 60)
    return Announcement(card, worker.settings.broker_url, prefix=worker.settings.prefix, **options)


async def joined(events: EventCollector, *agent_ids: str) -> None:
    wanted = set(agent_ids)
    await events.wait_until(lambda evs: wanted <= {e.agent_id for e in evs if e.kind == "joined"})


async def left(events: EventCollector, agent_id: str) -> None:
    await events.wait_until(
        lambda evs: any(e.agent_id == agent_id and e.kind == "left" for e in evs)
    )


@pytest.fixture
async def two_agents(
    worker: Worker, events: EventCollector
) -> AsyncIterator[tuple[Announcement, Announcement]]:
    """A v1.0 agent (`modern`) and a v0.3 agent (`legacy`), registered from SDK cards."""
    async with (
        announcement(worker, v10_card("modern")) as modern,
        announcement(worker, v03_card("legacy")) as legacy,
    ):
        await joined(events, "modern", "legacy")
        yield modern, legacy


CARD_PATHS = ("/v1/agents/{}/card", "/v1/agents/{}/.well-known/agent-card.json")
#: Where A2A clients before v1.0 look for a card under an agent's base url: v0.3 by default.
LEGACY_PATH = "/v1/agents/{}/.well-known/agent.json"


async def test_cards_come_back_as_registered_and_parse_with_the_sdk(
    two_agents: tuple[Announcement, Announcement], api: httpx.AsyncClient
) -> None:
    """No A2A-Version: the exact bytes registered, which the SDK parses in their own version."""
    modern, legacy = two_agents
    assert modern.card == as_dict(v10_card("modern"))
    assert legacy.card == as_dict(v03_card("legacy"))
    for path in CARD_PATHS:
        response = await api.get(path.format("modern"))
        assert response.status_code == 200, response.text
        assert response.content == card_bytes(modern.card)
        assert response.headers["etag"] == f'"{card_digest(modern.card)}"'
        assert response.headers["vary"] == "A2A-Version"
        assert parse_v10(response.content) == v10_card("modern")

        response = await api.get(path.format("legacy"))
        assert response.content == card_bytes(legacy.card)
        assert v03.AgentCard.model_validate_json(response.content) == v03_card("legacy")


@pytest.mark.parametrize("header", ["0.3", "0.3.0", "0.3.5"])
async def test_a_v10_card_asked_for_as_v03_lists_only_its_interfaces_speaking_0_3(
    two_agents: tuple[Announcement, Announcement], api: httpx.AsyncClient, header: str
) -> None:
    """A2A-Version 0.3 (any patch) on a mixed v1.0 card: a v0.3 card valid under the official
    schema and the SDK, whose one url is the one that speaks 0.3; the 1.0 urls are left out."""
    modern, _ = two_agents
    responses = [
        *[await api.get(p.format("modern"), headers={"A2A-Version": header}) for p in CARD_PATHS],
        await api.get(CARD_PATHS[0].format("modern"), params={"A2A-Version": header}),
        await api.get(LEGACY_PATH.format("modern")),
    ]
    for response in responses:
        assert response.status_code == 200, response.text
        assert response.content == card_bytes(to_a2a_v03(modern.card))
        assert response.headers["etag"] == f'"{card_digest(modern.card)};v=0.3"'
        assert response.headers["vary"] == "A2A-Version"
        v03_card_validator().validate(orjson.loads(response.content))
        card = v03.AgentCard.model_validate_json(response.content)
        assert card.url == "https://modern.example/a2a/v03"
        assert card.preferred_transport == "JSONRPC"
        assert card.protocol_version == "0.3"
        assert card.supports_authenticated_extended_card is True
        assert card.additional_interfaces is None  # the only one speaking 0.3
        assert b"tenant" not in response.content


async def test_a_card_speaking_only_1_0_has_no_v03_view(
    worker: Worker, events: EventCollector, api: httpx.AsyncClient
) -> None:
    """Asked for as 0.3: 400 version-not-supported naming what the agent speaks (the spec's
    VersionNotSupportedError), on every card path; left out of `/.well-known/agents` as 0.3."""
    async with announcement(worker, v10_card("only10", legacy_too=False)) as only10:
        await joined(events, "only10")
        responses = [
            *[
                await api.get(p.format("only10"), headers={"A2A-Version": "0.3"})
                for p in CARD_PATHS
            ],
            await api.get(CARD_PATHS[0].format("only10"), params={"A2A-Version": "0.3"}),
            await api.get(LEGACY_PATH.format("only10")),
        ]
        for response in responses:
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert error["code"] == "version-not-supported"
            assert error["details"] == {"requested": "0.3", "supported": ["1.0"]}
            assert "0.3" in error["message"]
        as_v10 = await api.get(LEGACY_PATH.format("only10"), headers={"A2A-Version": "1.0"})
        assert as_v10.content == card_bytes(only10.card)
        listed = await api.get("/.well-known/agents", params={"A2A-Version": "0.3"})
        assert "only10" not in {card["name"] for card in listed.json()}
        assert [c["name"] for c in (await api.get("/.well-known/agents")).json()] == ["only10"]


@pytest.mark.parametrize("header", ["1.0", "1.0.0"])
async def test_a_v03_card_asked_for_as_v10_is_a_valid_v10_card(
    two_agents: tuple[Announcement, Announcement], api: httpx.AsyncClient, header: str
) -> None:
    """A2A-Version 1.0 on a v0.3 card: a v1.0 card the SDK parses strictly."""
    _, legacy = two_agents
    response = await api.get("/v1/agents/legacy/card", headers={"A2A-Version": header})
    assert response.status_code == 200, response.text
    assert response.content == card_bytes(to_a2a_v10(legacy.card))
    assert response.headers["etag"] == f'"{card_digest(legacy.card)};v=1.0"'
    card = parse_v10(response.content)
    assert [(i.url, i.protocol_binding, i.protocol_version) for i in card.supported_interfaces] == [
        ("https://legacy.example/a2a", "JSONRPC", "0.3.0"),
        ("https://legacy.example/grpc", "GRPC", "0.3.0"),
    ]
    assert card.capabilities.extended_agent_card is False
    assert [s.id for s in card.skills] == ["sum"]


async def test_asking_for_the_version_a_card_already_has_returns_it_as_registered(
    two_agents: tuple[Announcement, Announcement], api: httpx.AsyncClient
) -> None:
    """Same bytes and the same ETag as without the header."""
    modern, legacy = two_agents
    for agent, header in ((modern, "1.0"), (legacy, "0.3"), (legacy, "0.3.0")):
        response = await api.get(
            f"/v1/agents/{agent.agent_id}/card", headers={"A2A-Version": header}
        )
        assert response.status_code == 200, response.text
        assert response.content == card_bytes(agent.card)
        assert response.headers["etag"] == f'"{card_digest(agent.card)}"'
        assert response.headers["vary"] == "A2A-Version"


async def test_each_representation_has_its_own_etag(
    two_agents: tuple[Announcement, Announcement], api: httpx.AsyncClient
) -> None:
    """The converted card's ETag answers 304 for itself only, not for the registered card."""
    modern, _ = two_agents
    path = "/v1/agents/modern/card"
    registered = (await api.get(path)).headers["etag"]
    converted = (await api.get(path, headers={"A2A-Version": "0.3"})).headers["etag"]
    assert registered != converted

    cached = await api.get(path, headers={"A2A-Version": "0.3", "If-None-Match": converted})
    assert cached.status_code == 304
    assert cached.headers["etag"] == converted
    assert cached.headers["vary"] == "A2A-Version"
    stale = await api.get(path, headers={"A2A-Version": "0.3", "If-None-Match": registered})
    assert stale.status_code == 200
    assert stale.content == card_bytes(to_a2a_v03(modern.card))
    other = await api.get(path, headers={"If-None-Match": converted})
    assert other.status_code == 200
    assert other.content == card_bytes(modern.card)


@pytest.mark.parametrize("header", ["2.0", "1.1", "0.2"])
async def test_a_version_not_served_is_400_version_not_supported(
    two_agents: tuple[Announcement, Announcement], api: httpx.AsyncClient, header: str
) -> None:
    """A well-formed version other than 0.3 and 1.0 (patch aside): the spec's
    VersionNotSupportedError, in the error shape, with the versions that are served."""
    for path in (*(p.format("modern") for p in CARD_PATHS), "/.well-known/agents"):
        for response in (
            await api.get(path, headers={"A2A-Version": header}),
            await api.get(path, params={"A2A-Version": header}),
        ):
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert error["code"] == "version-not-supported"
            assert error["details"] == {"requested": header, "supported": ["0.3", "1.0"]}


@pytest.mark.parametrize("header", ["1", "latest", "v1.0", "1.0-rc1"])
async def test_a_value_that_is_no_version_is_422_in_the_error_shape(
    two_agents: tuple[Announcement, Announcement], api: httpx.AsyncClient, header: str
) -> None:
    for path in (*(p.format("modern") for p in CARD_PATHS), "/.well-known/agents"):
        response = await api.get(path, headers={"A2A-Version": header})
        assert response.status_code == 422, response.text
        body = response.json()
        assert set(body) == {"error"}
        assert body["error"]["code"] == "invalid-request"
        assert "A2A-Version" in body["error"]["message"]
        assert body["error"]["details"][0]["in"] == "header"
        assert body["error"]["details"][0]["parameter"] == "A2A-Version"
        assert repr(header) not in response.text  # the rejected value is not echoed


async def test_an_empty_version_header_is_no_header(
    two_agents: tuple[Announcement, Announcement], api: httpx.AsyncClient
) -> None:
    modern, _ = two_agents
    response = await api.get("/v1/agents/modern/card", headers={"A2A-Version": ""})
    assert response.status_code == 200, response.text
    assert response.content == card_bytes(modern.card)


async def test_a_signed_card_is_served_as_registered_whatever_the_version(
    worker: Worker, events: EventCollector, api: httpx.AsyncClient
) -> None:
    """Converting a signed card would break its signatures: it comes back byte for byte."""
    card = as_dict(v10_card("signer"))
    card["signatures"] = [{"protected": "eyJhbGciOiJFUzI1NiJ9", "signature": "c2lnbmF0dXJl"}]
    async with announcement(worker, card):
        await joined(events, "signer")
        for header in ("0.3", "1.0"):
            response = await api.get("/v1/agents/signer/card", headers={"A2A-Version": header})
            assert response.status_code == 200, response.text
            assert response.content == card_bytes(card)
            assert response.headers["etag"] == f'"{card_digest(card)}"'


async def test_the_sdk_card_resolver_reads_each_card_under_the_agents_base_url(
    two_agents: tuple[Announcement, Announcement], settings: Settings
) -> None:
    """A2ACardResolver with base URL http://registry.test/v1/agents/<id> finds the card where A2A
    clients look for it, as registered or converted."""
    _, legacy = two_agents
    app = create_api(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client,
    ):
        resolved = await A2ACardResolver(
            client, "http://registry.test/v1/agents/modern"
        ).get_agent_card()
        assert resolved == v10_card("modern")

        resolved = await A2ACardResolver(
            client, "http://registry.test/v1/agents/legacy/"
        ).get_agent_card()
        assert resolved == parse_agent_card(as_dict(v03_card("legacy")))  # the SDK's v0.3 reading

        as_v10 = await A2ACardResolver(
            client, "http://registry.test/v1/agents/legacy"
        ).get_agent_card(http_kwargs={"headers": {"A2A-Version": "1.0"}})
        assert as_v10 == parse_v10(card_bytes(to_a2a_v10(legacy.card)))
        assert as_v10.name == "legacy"
        assert {i.url for i in as_v10.supported_interfaces} == {
            i.url for i in resolved.supported_interfaces
        }

        as_v03 = await A2ACardResolver(
            client, "http://registry.test/v1/agents/modern"
        ).get_agent_card(http_kwargs={"headers": {"A2A-Version": "0.3"}})
        legacy_path = await A2ACardResolver(
            client, "http://registry.test/v1/agents/modern"
        ).get_agent_card(relative_card_path="/.well-known/agent.json")
        for read in (as_v03, legacy_path):  # only the url speaking 0.3, read as speaking it
            assert [(i.url, i.protocol_version) for i in read.supported_interfaces] == [
                ("https://modern.example/a2a/v03", "0.3")
            ]


async def test_the_sdk_speaks_1_0_with_the_tenant_to_a_mixed_cards_1_0_url(
    two_agents: tuple[Announcement, Announcement], settings: Settings
) -> None:
    """a2a-sdk 1.x resolves the mixed card from the registry (v1.0: as registered, the tenant
    kept), picks the interface speaking 1.0 and sends it `A2A-Version: 1.0` and the tenant."""
    sent: list[httpx.Request] = []

    def agent(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        reply = {"message": {"messageId": "r1", "role": "ROLE_AGENT", "parts": [{"text": "ok"}]}}
        body = orjson.loads(request.content)
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"], "result": reply})

    app = create_api(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as registry,
        httpx.AsyncClient(transport=httpx.MockTransport(agent)) as to_agent,
    ):
        card = await A2ACardResolver(
            registry, "http://registry.test/v1/agents/modern"
        ).get_agent_card(http_kwargs={"headers": {"A2A-Version": "1.0"}})
        assert card.supported_interfaces[0].tenant == "acme"
        client = ClientFactory(ClientConfig(httpx_client=to_agent, streaming=False)).create(card)
        request = SendMessageRequest(
            message=Message(message_id="m1", role=Role.ROLE_USER, parts=[Part(text="hi")])
        )
        replies = [reply async for reply in client.send_message(request)]
    assert replies
    (call,) = sent
    assert str(call.url) == "https://modern.example/a2a"
    assert call.headers["A2A-Version"] == "1.0"
    assert orjson.loads(call.content)["params"]["tenant"] == "acme"


async def test_well_known_agents_lists_exactly_the_live_agents_a2a_cards(
    worker: Worker, events: EventCollector, api: httpx.AsyncClient
) -> None:
    """A bare JSON array of the live agents' A2A cards, as registered; a deregistered agent
    leaves it, and an MCP agent's card is never in it."""
    mcp_card = {"name": "toolbox", "protocol": "mcp", "description": "tools"}
    mcp_endpoint = Endpoint(transport="http", protocol="mcp", url="http://127.0.0.1:9/mcp")
    async with (
        announcement(worker, v10_card("modern")) as modern,
        announcement(worker, mcp_card, endpoints=[mcp_endpoint]),
    ):
        legacy = await announcement(worker, v03_card("legacy")).open()
        await joined(events, "modern", "legacy", "toolbox")

        response = await api.get("/.well-known/agents")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        assert response.headers["vary"] == "A2A-Version"
        assert (
            response.content
            == b"[" + card_bytes(legacy.card) + b"," + card_bytes(modern.card) + b"]"
        )  # agent id order

        as_v10 = (await api.get("/.well-known/agents", headers={"A2A-Version": "1.0"})).json()
        assert as_v10 == [to_a2a_v10(legacy.card), modern.card]
        for card in as_v10:
            parse_v10(orjson.dumps(card))
        as_v03 = (await api.get("/.well-known/agents", headers={"A2A-Version": "0.3"})).json()
        assert as_v03 == [legacy.card, to_a2a_v03(modern.card)]
        for card in as_v03:
            v03.AgentCard.model_validate(card)

        await legacy.close()
        await left(events, "legacy")
        assert (await api.get("/.well-known/agents")).json() == [modern.card]

    await left(events, "modern")
    assert (await api.get("/.well-known/agents")).json() == []


async def test_well_known_agents_walks_past_one_page(
    worker: Worker, events: EventCollector, api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every live agent is listed however many pages the walk takes (pages of 2 here)."""
    from agentroster.api.routes import wellknown

    monkeypatch.setattr(wellknown, "AGENTS_PAGE", 2)
    ids = [f"pager-{n}" for n in range(5)]
    async with contextlib.AsyncExitStack() as stack:
        for agent_id in ids:
            await stack.enter_async_context(announcement(worker, v10_card(agent_id)))
        await joined(events, *ids)
        cards = (await api.get("/.well-known/agents")).json()
    assert [card["name"] for card in cards] == ids
