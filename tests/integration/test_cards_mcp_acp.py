"""MCP servers and ACP agents as cards, against a real worker, RabbitMQ and Redis.

Real cards (`tests/card_examples.py` says where each comes from: the MCP Registry's published
`server.json` examples and the ACP specification's manifest example) are registered with
`Announcement`, the base of `Beacon`; they are found by `protocol=mcp|acp` and by one of their
tools or capabilities (over HTTP, with `DiscoveryClient` and with a `Roster`), and their cards
come back byte for byte. Hostile cards published beside them are dead-lettered with the reason
and the field's path, and the valid ones register all the same.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from agentroster.api import create_api
from agentroster.client import Announcement, DiscoveryClient, Roster
from agentroster.contracts import (
    DETAIL_HEADER,
    REASON_HEADER,
    Endpoint,
    Topology,
    card_bytes,
    card_digest,
)
from agentroster.contracts.mcp_server import PUBLISHER_META
from agentroster.settings import Settings
from agentroster.worker import Worker
from tests.card_examples import ACP_MANIFEST, MCP_REMOTE_SERVER_WITH_TOOLS, MCP_STDIO_SERVER
from tests.helpers import EventCollector, RawPublisher, drain_queue, serve_http

ACP_ENDPOINT = Endpoint(transport="http", protocol="acp", url="http://127.0.0.1:8000/agents/chat")
#: agent id -> (card, explicit endpoints)
AGENTS: dict[str, tuple[dict[str, Any], list[Endpoint] | None]] = {
    "mcp-fs": (MCP_REMOTE_SERVER_WITH_TOOLS, None),
    "mcp-filesystem": (MCP_STDIO_SERVER, None),
    "acp-chat": (ACP_MANIFEST, [ACP_ENDPOINT]),
}
TIMEOUT_S = 30.0


@pytest.fixture
async def registered(worker: Worker, events: EventCollector) -> AsyncIterator[None]:
    """The three real cards, each registered by its own Announcement, all joined."""
    announcements = [
        Announcement(
            card,
            worker.settings.broker_url,
            prefix=worker.settings.prefix,
            agent_id=agent_id,
            ttl_s=60,
            endpoints=endpoints,
        )
        for agent_id, (card, endpoints) in AGENTS.items()
    ]
    for announcement in announcements:
        await announcement.open()
    try:
        await events.wait_until(
            lambda evs: set(AGENTS) <= {e.agent_id for e in evs if e.kind == "joined"}
        )
        yield
    finally:
        for announcement in announcements:
            await announcement.close()


@pytest.fixture
async def api_url(settings: Settings) -> AsyncIterator[str]:
    async with serve_http(create_api(settings)) as url:
        yield url


async def ids(api: httpx.AsyncClient, **params: str) -> set[str]:
    response = await api.get("/v1/agents", params=params)
    assert response.status_code == 200, response.text
    return {agent["agent_id"] for agent in response.json()["agents"]}


async def test_found_by_protocol_and_by_tool_or_capability(registered: None, api_url: str) -> None:
    """`protocol=mcp` finds both servers (the stdio one too), `protocol=mcp&skill=<tool>` the
    one with that tool, `protocol=acp&skill=<capability>` the ACP agent, `tag=<domain>` too."""
    async with httpx.AsyncClient(base_url=api_url) as api:
        assert await ids(api, protocol="mcp") == {"mcp-fs", "mcp-filesystem"}
        assert await ids(api, protocol="mcp", skill="read_text_file") == {"mcp-fs"}
        assert await ids(api, protocol="acp") == {"acp-chat"}
        assert await ids(api, protocol="acp", skill="Vacation Request") == {"acp-chat"}
        assert await ids(api, tag="finance") == {"acp-chat"}
        assert await ids(api, protocol="mcp", transport="http") == {"mcp-fs"}
        assert await ids(api, protocol="a2a") == set()

        detail = (await api.get("/v1/agents/mcp-filesystem")).json()["agent"]
        assert detail["card_format"] == "mcp/server"
        assert detail["endpoints"] == []
        assert detail["no_endpoint_reason"] == (
            "local only: the MCP server runs from its packages (stdio)"
        )
        remote = (await api.get("/v1/agents/mcp-fs")).json()["agent"]
        [endpoint] = remote["endpoints"]
        assert endpoint["protocol"] == "mcp"
        assert endpoint["transport"] == "http"
        assert endpoint["binding"] == "streamable-http"
        assert endpoint["url"] == "https://mcp-fs.anonymous.modelcontextprotocol.io/http"

    async with DiscoveryClient(api_url) as client:
        found = [a.agent_id async for a in client.find(protocol="mcp", skill="list_directory")]
        assert found == ["mcp-fs"]
    async with Roster(api_url, protocol="acp", skill="Conversational AI") as roster:
        assert [a.agent_id for a in roster.agents()] == ["acp-chat"]
        assert [a.agent_id for a in roster.find(skill="Vacation Request")] == ["acp-chat"]


async def test_cards_come_back_byte_exact(registered: None, api_url: str) -> None:
    """Each card exactly as registered, with its digest as ETag; `A2A-Version` changes nothing
    (they are not A2A cards), and `/.well-known/agents` (A2A cards only) leaves them out."""
    async with httpx.AsyncClient(base_url=api_url) as api:
        for agent_id, (card, _) in AGENTS.items():
            for headers in ({}, {"A2A-Version": "1.0"}, {"A2A-Version": "0.3"}):
                response = await api.get(f"/v1/agents/{agent_id}/card", headers=headers)
                assert response.status_code == 200, response.text
                assert response.content == card_bytes(card)
                assert response.headers["etag"] == f'"{card_digest(card)}"'
        well_known = await api.get("/.well-known/agents")
        assert well_known.json() == []


def hostile_cards() -> dict[str, tuple[dict[str, Any], str, str]]:
    """agent id -> (card, dead-letter reason, what the detail must say)."""
    wrong_types = copy.deepcopy(MCP_REMOTE_SERVER_WITH_TOOLS)
    wrong_types["remotes"] = {"type": "sse", "url": "https://evil.example/sse"}
    control = copy.deepcopy(MCP_REMOTE_SERVER_WITH_TOOLS)
    control["_meta"][PUBLISHER_META]["tools"] = [{"name": "read_file\r\nX-Admin: yes"}]
    huge = copy.deepcopy(MCP_REMOTE_SERVER_WITH_TOOLS)
    huge["_meta"][PUBLISHER_META]["tools"] = [{"name": f"tool{n}"} for n in range(2000)]
    javascript = copy.deepcopy(MCP_REMOTE_SERVER_WITH_TOOLS)
    javascript["remotes"] = [{"type": "sse", "url": "javascript:alert(1)"}]
    acp = copy.deepcopy(ACP_MANIFEST)
    acp["metadata"]["capabilities"] = [{"name": 42, "description": "not a name"}]
    return {
        "wrong-types": (wrong_types, "invalid-card", "remotes: Input should be a valid list"),
        "control-chars": (control, "invalid-card", "tools.0.name: must not contain control"),
        "huge-tools": (huge, "registration-too-large", "2000 skills"),
        "javascript": (javascript, "invalid-card", "remotes.0.url: Value error, an http"),
        "acp-types": (acp, "invalid-card", "metadata.capabilities.0.name: Input should be"),
    }


async def test_hostile_cards_are_refused_with_a_reason_while_valid_ones_register(
    worker: Worker, events: EventCollector, settings: Settings
) -> None:
    """Wrong types, control characters in a tool name, 2000 tools, a javascript: remote, a
    capability named by a number: each dead-lettered with its reason and path, its body kept;
    the valid registrations sent between them all join."""
    hostile = hostile_cards()
    good = {"instance_id": "i-1", "seq": 1, "ttl_s": 60, "sent_at": "2026-01-01T00:00:00Z"}
    valid = [f"valid-{n}" for n in range(len(hostile))]
    async with RawPublisher(worker.settings.broker_url, worker.settings.prefix) as raw:
        for agent_id, valid_id in zip(hostile, valid, strict=True):
            card = hostile[agent_id][0]
            await raw.send(
                f"agent.{agent_id}.register", {**good, "agent_id": agent_id, "card": card}
            )
            await raw.send(
                f"agent.{valid_id}.register",
                {**good, "agent_id": valid_id, "card": MCP_REMOTE_SERVER_WITH_TOOLS},
            )
    await events.wait_until(lambda evs: len(evs) >= len(valid), timeout=TIMEOUT_S)
    assert sorted(e.agent_id for e in events.events) == valid

    parked = await drain_queue(
        worker.settings.broker_url, Topology(worker.settings.prefix).dead_letter_queue, len(hostile)
    )
    by_key = {m.routing_key: m for m in parked}
    for agent_id, (_, reason, detail) in hostile.items():
        message = by_key[f"agent.{agent_id}.register"]
        assert message.headers[REASON_HEADER] == reason
        assert detail in str(message.headers[DETAIL_HEADER])
        assert "X-Admin" not in str(message.headers[DETAIL_HEADER])

    async with serve_http(create_api(settings)) as url, httpx.AsyncClient(base_url=url) as api:
        assert await ids(api, protocol="mcp", skill="read_text_file") == set(valid)
