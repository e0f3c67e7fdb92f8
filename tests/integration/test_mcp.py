"""`/mcp`: the registry as an MCP server, driven by the official `mcp` client.

A real registry (`agentroster up`), agents registered by the real `Beacon`, and the SDK's
Streamable HTTP client and `ClientSession`, which also checks each structured result against
the tool's output schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import McpError
from mcp.shared.session import RequestResponder
from pydantic import AnyUrl

from agentroster.client import Beacon
from agentroster.settings import Settings
from tests.helpers import registry_server
from tests.integration.agents import a2a_card

KEY = "mcp-test-bootstrap-key-0123456789abcdef"
CARD_URI = "agentroster://agents/{}/card"
#: What an MCP client sends first, by hand (a greedy or hostile client does not use the SDK).
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


class Notifications:
    """The server's notifications a `ClientSession` received, awaitable by condition."""

    def __init__(self) -> None:
        self.received: list[types.ServerNotification] = []
        self._changed = asyncio.Condition()

    async def __call__(
        self,
        message: RequestResponder[types.ServerRequest, types.ClientResult]
        | types.ServerNotification
        | Exception,
    ) -> None:
        if isinstance(message, types.ServerNotification):
            async with self._changed:
                self.received.append(message)
                self._changed.notify_all()

    def of(self, kind: type[Any]) -> list[Any]:
        return [n.root for n in self.received if isinstance(n.root, kind)]

    async def wait_for(self, predicate: Callable[[Notifications], bool]) -> None:
        async def satisfied() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: predicate(self))

        try:
            await asyncio.wait_for(satisfied(), 30)  # only against a hang
        except TimeoutError:
            raise AssertionError(f"no such notification; got {self.received}") from None


@contextlib.asynccontextmanager
async def mcp_session(
    url: str, *, key: str | None = None, notifications: Notifications | None = None
) -> AsyncIterator[ClientSession]:
    """An initialized session of the official client with the registry at `url`."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with (
        httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(30, read=300)) as http,
        streamable_http_client(f"{url}/mcp", http_client=http) as (read, write, _),
        ClientSession(read, write, message_handler=notifications) as session,
    ):
        await session.initialize()
        yield session


def text_of(result: types.CallToolResult) -> str:
    (content,) = result.content
    assert isinstance(content, types.TextContent)
    return content.text


async def test_a_model_finds_an_agent_by_skill_reads_its_card_and_hears_it_join(
    settings: Settings, cleanup: None
) -> None:
    """Tools listed with schemas; the subscribed card's agent joins: list_changed and updated
    arrive; discover by skill finds it (structured, valid against the output schema); its card
    as resource and tool, converted as over HTTP."""
    card = a2a_card("summarizer", skills=("summarize", "translate"))
    legacy = {
        "url": "http://127.0.0.1:9/v03",
        "protocolBinding": "JSONRPC",
        "protocolVersion": "0.3",
    }
    card["supportedInterfaces"].append(legacy)  # so that the card has a v0.3 view
    notifications = Notifications()
    uri = CARD_URI.format("summarizer")
    async with (
        registry_server(settings) as server,
        mcp_session(server.url, notifications=notifications) as session,
        httpx.AsyncClient(base_url=server.url, timeout=30) as http,
    ):
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        assert set(tools) == {"discover_agents", "get_agent", "get_agent_card"}
        assert all(tool.description and len(tool.description) > 100 for tool in tools.values())
        assert tools["discover_agents"].outputSchema is not None
        assert "skills" in tools["discover_agents"].inputSchema["properties"]
        assert (await session.list_resources()).resources == []
        (template,) = (await session.list_resource_templates()).resourceTemplates
        assert template.uriTemplate == "agentroster://agents/{agent_id}/card"
        await session.subscribe_resource(AnyUrl(uri))

        beacon = Beacon(
            card,
            settings.broker_url,
            prefix=settings.prefix,
            interval_s=5,
            handle_signals=False,
        )
        async with beacon:
            await notifications.wait_for(
                lambda n: (
                    bool(n.of(types.ResourceListChangedNotification))
                    and any(
                        str(u.params.uri) == uri for u in n.of(types.ResourceUpdatedNotification)
                    )
                )
            )

            found = await session.call_tool("discover_agents", {"skills": ["summarize"]})
            assert not found.isError, text_of(found)
            assert found.structuredContent is not None
            (agent,) = found.structuredContent["agents"]
            assert agent["agent_id"] == "summarizer"
            assert agent["status"] == "live"
            assert json.loads(text_of(found)) == found.structuredContent
            over_http = (await http.get("/v1/agents", params={"skill": "summarize"})).json()
            assert found.structuredContent == over_http
            none = await session.call_tool("discover_agents", {"skills": ["summarize", "nope"]})
            assert none.structuredContent is not None
            assert none.structuredContent["agents"] == []
            by_text = await session.call_tool("discover_agents", {"text": "SUMMARIZER for"})
            assert by_text.structuredContent is not None
            assert [a["agent_id"] for a in by_text.structuredContent["agents"]] == ["summarizer"]
            for signature, expected in (("unsigned", ["summarizer"]), ("valid", [])):
                signed = await session.call_tool("discover_agents", {"signature": signature})
                assert signed.structuredContent is not None
                assert [a["agent_id"] for a in signed.structuredContent["agents"]] == expected

            listed = (await session.list_resources()).resources
            assert [(str(r.uri), r.title) for r in listed] == [(uri, "summarizer")]
            (contents,) = (await session.read_resource(AnyUrl(uri))).contents
            assert isinstance(contents, types.TextResourceContents)
            registered = (await http.get("/v1/agents/summarizer/card")).text
            assert contents.text == registered
            assert json.loads(contents.text) == card
            assert contents.mimeType == "application/json"

            as_registered = await session.call_tool("get_agent_card", {"agent_id": "summarizer"})
            assert text_of(as_registered) == registered
            v03 = await session.call_tool(
                "get_agent_card", {"agent_id": "summarizer", "a2a_version": "0.3"}
            )
            converted = await http.get("/v1/agents/summarizer/card", headers={"A2A-Version": "0.3"})
            assert text_of(v03) == converted.text
            assert json.loads(text_of(v03))["url"] == legacy["url"]

            one = await session.call_tool("get_agent", {"agent_id": "summarizer"})
            assert one.structuredContent is not None
            assert one.structuredContent["status"] == "live"
            assert [i["instance_id"] for i in one.structuredContent["instances"]] == [
                beacon.instance_id
            ]
        # the agent leaves: the list changes again
        await notifications.wait_for(
            lambda n: len(n.of(types.ResourceListChangedNotification)) >= 2
        )


async def test_unknown_agents_and_bad_arguments_are_clear_tool_errors(
    settings: Settings, cleanup: None
) -> None:
    """A model's mistakes come back as tool errors saying what to change; the session goes on."""
    async with registry_server(settings) as server, mcp_session(server.url) as session:
        refusals = {
            ("get_agent", "ghost"): "no agent 'ghost' in this registry",
            ("get_agent_card", "ghost"): "no agent 'ghost' in this registry",
        }
        for (tool, agent_id), message in refusals.items():
            result = await session.call_tool(tool, {"agent_id": agent_id})
            assert result.isError
            assert message in text_of(result)
        bad_arguments: list[tuple[str, dict[str, Any], str]] = [
            ("discover_agents", {"status": "bogus"}, "status"),
            ("discover_agents", {"signature": "trusted"}, "signature: Input should be"),
            ("discover_agents", {"skill": ["summarize"]}, "skill: Extra inputs"),
            ("discover_agents", {"limit": 5000}, "limit: Input should be less than or equal"),
            ("discover_agents", {"skills": ["s"] * 21}, "skills: List should have at most 20"),
            ("discover_agents", {"text": "x" * 257}, "text: String should have at most 256"),
            ("discover_agents", {"cursor": "../etc"}, "cursor: String should match pattern"),
            ("discover_agents", {"labels": {"a:b": "c"}}, "labels.a:b"),
            ("get_agent", {"agent_id": "NOT AN ID"}, "agent_id: String should match pattern"),
            ("get_agent_card", {"agent_id": "x", "a2a_version": "9.9"}, "is not supported"),
            ("get_agent_card", {"agent_id": "x", "a2a_version": "v1"}, "not an A2A version"),
            ("no_such_tool", {}, "unknown tool 'no_such_tool'"),
        ]
        for tool, arguments, message in bad_arguments:
            result = await session.call_tool(tool, arguments)
            assert result.isError, (tool, arguments)
            assert message in text_of(result), (tool, arguments, text_of(result))
        with pytest.raises(McpError) as unknown:
            await session.read_resource(AnyUrl(CARD_URI.format("ghost")))
        assert unknown.value.error.code == -32002
        with pytest.raises(McpError) as not_a_card:
            await session.read_resource(AnyUrl("agentroster://keys/admin"))
        assert not_a_card.value.error.code == types.INVALID_PARAMS
        with pytest.raises(McpError) as bad_subscription:
            await session.subscribe_resource(AnyUrl("agentroster://agents/NOT_AN_ID/card"))
        assert bad_subscription.value.error.code == types.INVALID_PARAMS
        assert "not an agent card URI" in bad_subscription.value.error.message
        with pytest.raises(McpError) as bad_cursor:
            await session.list_resources(cursor="../../etc")
        assert bad_cursor.value.error.code == types.INVALID_PARAMS
        fine = await session.call_tool("discover_agents", {})
        assert not fine.isError
        assert fine.structuredContent is not None
        assert fine.structuredContent == {
            "revision": fine.structuredContent["revision"],
            "agents": [],
            "next_cursor": None,
        }


async def test_reads_need_a_key_where_the_registry_says_so(
    settings: Settings, cleanup: None
) -> None:
    """With AGENTROSTER_READ_REQUIRES_KEY, /mcp answers 401 without a valid key, before any
    MCP work; with a read key, the official client works, and its session refuses other keys."""
    env = {"AGENTROSTER_READ_REQUIRES_KEY": "true", "AGENTROSTER_BOOTSTRAP_ADMIN_KEY": KEY}
    async with (
        registry_server(settings, **env) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as http,
    ):
        for headers in ({}, {"Authorization": "Bearer not-a-key-of-this-registry-at-all"}):
            refused = await http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS | headers)
            assert refused.status_code == 401
            assert refused.json()["error"]["code"] == "unauthenticated"
            assert refused.headers["WWW-Authenticate"] == 'Bearer realm="agentroster"'
            assert "mcp-session-id" not in refused.headers
        made = await http.post(
            "/v1/keys",
            headers={"Authorization": f"Bearer {KEY}"},
            json={"principal": "mcp-reader", "scope": "read"},
        )
        assert made.status_code == 201, made.text
        reader = {"Authorization": f"Bearer {made.json()['token']}"}
        async with (
            httpx.AsyncClient(headers=reader, timeout=httpx.Timeout(30, read=300)) as client,
            streamable_http_client(f"{server.url}/mcp", http_client=client) as (
                read,
                write,
                session_id,
            ),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            assert len((await session.list_tools()).tools) == 3
            assert not (await session.call_tool("discover_agents", {})).isError
            # the session answers only to the key that opened it
            opened = session_id()
            assert opened is not None
            tools_list = {"jsonrpc": "2.0", "id": 7, "method": "tools/list"}
            for other in ({"Authorization": f"Bearer {KEY}"}, {}):
                taken = await http.post(
                    "/mcp",
                    json=tools_list,
                    headers=MCP_HEADERS | other | {"mcp-session-id": opened},
                )
                assert taken.status_code == (404 if other else 401), taken.text
            assert not (await session.call_tool("discover_agents", {})).isError  # still its own


async def test_sessions_are_bounded_and_the_open_ones_go_on(
    settings: Settings, cleanup: None
) -> None:
    """Over AGENTROSTER_MCP_MAX_SESSIONS a new session is refused with 503 and a reason, while
    the open sessions keep working; a closed one frees its place. A body over the API's limit
    is refused before MCP reads it; a guessed session id is unknown; a browser origin not
    allowed is refused."""
    env = {
        "AGENTROSTER_MCP_MAX_SESSIONS": "2",
        "AGENTROSTER_MCP_ALLOWED_ORIGINS": '["https://app.example"]',
    }
    async with (
        registry_server(settings, **env) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as http,
        mcp_session(server.url) as first,
    ):
        async with mcp_session(server.url) as second:
            refused = await http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
            assert refused.status_code == 503
            assert refused.json()["error"]["message"] == "Too many open sessions"
            for session in (first, second):
                result = await session.call_tool("discover_agents", {})
                assert not result.isError
        async with mcp_session(server.url) as third:  # the second's place
            assert not (await third.call_tool("discover_agents", {})).isError

        oversized = await http.post(
            "/mcp",
            content=b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "pad": "'
            + b"x" * settings.max_message_bytes
            + b'"}',
            headers=MCP_HEADERS | {"Content-Type": "application/json"},
        )
        assert oversized.status_code == 413
        assert oversized.json()["error"]["code"] == "body-too-large"
        guessed = await http.post(
            "/mcp", json=INITIALIZE, headers=MCP_HEADERS | {"mcp-session-id": "0" * 32}
        )
        assert guessed.status_code == 404
        assert not (await first.call_tool("discover_agents", {})).isError

        # a browser page of another origin (DNS rebinding) is refused before any MCP work
        rebound = await http.post(
            "/mcp", json=INITIALIZE, headers=MCP_HEADERS | {"Origin": "http://evil.example"}
        )
        assert rebound.status_code == 403
        assert rebound.json()["error"]["code"] == "origin-not-allowed"
        assert "mcp-session-id" not in rebound.headers
        allowed = await http.post(
            "/mcp", json=INITIALIZE, headers=MCP_HEADERS | {"Origin": "https://app.example"}
        )
        assert allowed.status_code == 200
        assert allowed.headers["mcp-session-id"]


async def test_an_idle_session_is_closed_and_frees_its_place(
    settings: Settings, cleanup: None
) -> None:
    """A session left without requests for AGENTROSTER_MCP_SESSION_IDLE_S is closed: its id is
    unknown from then on, and its place under the bound goes to a new session."""
    env = {"AGENTROSTER_MCP_MAX_SESSIONS": "1", "AGENTROSTER_MCP_SESSION_IDLE_S": "0.5"}
    async with (
        registry_server(settings, **env) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as http,
    ):
        opened = await http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
        assert opened.status_code == 200
        idle = opened.headers["mcp-session-id"]

        async def admitted() -> httpx.Response:
            # asking for a new session does not touch the idle one (there is no event of its
            # end to await from outside the process)
            while True:
                attempt = await http.post("/mcp", json=INITIALIZE, headers=MCP_HEADERS)
                if attempt.status_code != 503:
                    return attempt
                await asyncio.sleep(0.05)

        async with asyncio.timeout(30):  # only against a hang
            new = await admitted()
        assert new.status_code == 200
        assert new.headers["mcp-session-id"] != idle
        gone = await http.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
            headers=MCP_HEADERS | {"mcp-session-id": idle, "mcp-protocol-version": "2025-06-18"},
        )
        assert gone.status_code == 404


async def test_the_registry_stops_cleanly_with_mcp_sessions_open(
    settings: Settings, cleanup: None
) -> None:
    """SIGTERM while a session holds its notification stream: the sessions end with the API's
    lifespan and the process exits 0 (nothing waits for the client to hang up)."""
    notifications = Notifications()
    async with (
        registry_server(settings) as server,
        mcp_session(server.url, notifications=notifications) as session,
    ):
        await session.list_resources()  # watched: its stream is what would hold a shutdown
        server.process.terminate()
        async with asyncio.timeout(30):  # only against a hang
            assert await server.process.wait() == 0
