"""MCP `server.json` and ACP manifests as cards: detection, validation, endpoints, skills, terms.

The cards are the projects' published examples (`tests/card_examples.py` says where from).
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from hypothesis import given

from agentroster.api.a2a_conversion import NotAnA2ACardError, convert_card, converted_card_bytes
from agentroster.client.models import AgentInfo
from agentroster.contracts import Endpoint, agent_view, card_bytes, card_format, derive_agent_id
from agentroster.contracts.mcp_server import MCP_SCHEMA_PREFIX, PUBLISHER_META
from agentroster.registry.prepare import Limits, Rejected, prepare
from agentroster.registry.terms import Filters, index_terms, search_text
from tests.card_examples import (
    ACP_MANIFEST,
    MCP_REMOTE_SERVER,
    MCP_REMOTE_SERVER_WITH_TOOLS,
    MCP_STDIO_SERVER,
)
from tests.unit.test_cards import json_objects, json_values
from tests.unit.test_prepare import dumps, register_body

KEY = "agent.weather.register"
ACP_ENDPOINT = Endpoint(transport="http", protocol="acp", url="https://acp.example/agents/chat")


def with_(card: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A deep copy of `card` with `fields` replaced."""
    changed = copy.deepcopy(card)
    changed.update(fields)
    return changed


def with_tools(tools: Any) -> dict[str, Any]:
    """The remote MCP server with `tools` listed in its publisher-provided `_meta`."""
    card = copy.deepcopy(MCP_REMOTE_SERVER)
    card["_meta"][PUBLISHER_META]["tools"] = tools
    return card


def refusal(card: dict[str, Any], limits: Limits | None = None) -> Rejected:
    """What `prepare` says of a registration with this card (it must refuse it)."""
    with pytest.raises(Rejected) as caught:
        prepare(KEY, dumps(register_body(card=card)), None, limits or Limits())
    return caught.value


# --- detection ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("card", "expected"),
    [
        (MCP_REMOTE_SERVER, "mcp/server"),
        (MCP_STDIO_SERVER, "mcp/server"),
        (ACP_MANIFEST, "acp/manifest"),
        # no $schema: a reverse-DNS name with a slash and remotes or packages
        ({"name": "io.github.x/y", "packages": []}, "mcp/server"),
        ({"name": "io.github.x/y", "remotes": []}, "mcp/server"),
        ({"$schema": "https://example.com/s.json", "name": "io.x/y", "remotes": []}, "mcp/server"),
        # another schema of the MCP site is not a server.json
        (
            {
                "$schema": f"{MCP_SCHEMA_PREFIX}2025-12-11/other.json",
                "name": "io.x/y",
                "remotes": [],
            },
            "generic",
        ),
        # A2A markers win: an A2A card is never taken for MCP or ACP
        (with_(MCP_REMOTE_SERVER, url="https://a.example/a2a"), "a2a/0.3"),
        (with_(ACP_MANIFEST, supportedInterfaces=[]), "a2a/1.0"),
        (with_(ACP_MANIFEST, preferredTransport="JSONRPC"), "a2a/0.3"),
        # near misses stay generic
        ({"$schema": "https://json-schema.org/draft-07/schema", "packages": []}, "generic"),
        ({"name": "plain", "packages": []}, "generic"),
        ({"name": "a/b/c", "remotes": []}, "generic"),
        ({"name": "chat", "input_content_types": ["*/*"]}, "generic"),
    ],
)
def test_card_format_tells_mcp_and_acp_from_a2a(card: dict[str, Any], expected: str) -> None:
    """server.json by its official $schema (or name + remotes/packages), ACP by its two
    content-type lists; the A2A markers are looked at first."""
    assert card_format(card) == expected


def test_a2a_sdk_shaped_cards_are_still_a2a() -> None:
    """An A2A card with input/output modes and skills is not read as an ACP manifest."""
    card = {
        "name": "w",
        "supportedInterfaces": [{"url": "https://w.example", "protocolBinding": "JSONRPC"}],
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [{"id": "s", "name": "S", "tags": []}],
    }
    assert card_format(card) == "a2a/1.0"


# --- MCP: endpoints, tools, the stdio-only case ------------------------------------------------


def test_an_mcp_remote_is_an_mcp_endpoint_with_its_transport() -> None:
    """Each remote: transport http, protocol mcp, binding = the MCP transport."""
    card = with_(
        MCP_REMOTE_SERVER,
        remotes=[
            {"type": "streamable-http", "url": "https://m.example/mcp"},
            {"type": "sse", "url": "https://m.example/sse"},
        ],
    )
    view = agent_view(card, None, None)
    assert view.endpoints == [
        Endpoint(
            transport="http", protocol="mcp", binding="streamable-http", url="https://m.example/mcp"
        ),
        Endpoint(transport="http", protocol="mcp", binding="sse", url="https://m.example/sse"),
    ]
    assert view.no_endpoint_reason is None
    assert view.card_format == "mcp/server"
    assert (view.name, view.version) == ("io.modelcontextprotocol.anonymous/mcp-fs", "2.0.0")


def test_an_mcp_url_template_is_kept_as_published() -> None:
    """A remote url with {variables} (the schema allows templates) is an endpoint as written."""
    card = with_(
        MCP_REMOTE_SERVER, remotes=[{"type": "sse", "url": "https://{tenant}.m.example/sse"}]
    )
    [endpoint] = agent_view(card, None, None).endpoints
    assert endpoint.url == "https://{tenant}.m.example/sse"


def test_a_stdio_only_server_has_no_endpoint_and_says_why() -> None:
    """Only packages: no endpoint, a reason naming the local transport, still protocol mcp."""
    view = agent_view(MCP_STDIO_SERVER, None, None)
    assert view.endpoints == []
    assert view.no_endpoint_reason == "local only: the MCP server runs from its packages (stdio)"
    assert "protocol:mcp" in index_terms(view)
    assert not any(term.startswith("transport:") for term in index_terms(view))


def test_explicit_endpoints_replace_the_reason() -> None:
    """A stdio server registered with an endpoint (e.g. behind a gateway) is reachable there."""
    gateway = Endpoint(
        transport="http", protocol="mcp", binding="streamable-http", url="https://g.example/mcp"
    )
    view = agent_view(MCP_STDIO_SERVER, [gateway], None)
    assert (view.endpoints, view.no_endpoint_reason) == ([gateway], None)


def test_tools_in_publisher_meta_are_skills() -> None:
    """`_meta[publisher-provided].tools[]` become skills: id = tool name, name = its title."""
    view = agent_view(MCP_REMOTE_SERVER_WITH_TOOLS, None, None)
    assert [(s.id, s.name, s.description) for s in view.skills] == [
        ("read_text_file", "Read Text File", "Read a file as text"),
        ("list_directory", "list_directory", "List the entries of a directory"),
    ]
    terms = index_terms(view)
    assert {"skill:read_text_file", "protocol:mcp", "transport:http"} <= set(terms)
    assert "read text file" in search_text(view)


def test_the_agent_id_derives_from_the_server_name() -> None:
    """A Beacon without agent_id derives a DNS label from the reverse-DNS server name."""
    assert derive_agent_id(MCP_STDIO_SERVER["name"]) == "io-github-modelcontextprotocol-filesystem"


def test_a_server_json_without_tools_has_no_skills() -> None:
    """The published examples list no tools: no skills, nothing invented."""
    assert agent_view(MCP_REMOTE_SERVER, None, None).skills == []


# --- ACP ---------------------------------------------------------------------------------------


def test_acp_capabilities_are_skills_and_tags_and_domains_are_tags() -> None:
    """metadata.capabilities[].name are skills; metadata.tags and domains are the agent's tags."""
    view = agent_view(ACP_MANIFEST, None, None)
    assert [s.id for s in view.skills] == ["Conversational AI", "Vacation Request"]
    assert view.tags == ["Chat", "finance", "healthcare", "supply-chain"]
    terms = set(index_terms(view))
    assert {"skill:Vacation Request", "tag:chat", "tag:finance", "protocol:acp"} <= terms


def test_an_acp_manifest_has_only_the_endpoints_it_is_registered_with() -> None:
    """A manifest names no URL: no endpoint and a reason, unless endpoints are given."""
    bare = agent_view(ACP_MANIFEST, None, None)
    assert bare.endpoints == []
    assert bare.no_endpoint_reason is not None
    assert "no URL" in bare.no_endpoint_reason
    given = agent_view(ACP_MANIFEST, [ACP_ENDPOINT], None)
    assert (given.endpoints, given.no_endpoint_reason) == ([ACP_ENDPOINT], None)
    assert {"protocol:acp", "transport:http"} <= set(index_terms(given))


# --- what the worker accepts and refuses -------------------------------------------------------


@pytest.mark.parametrize("card", [MCP_REMOTE_SERVER_WITH_TOOLS, MCP_STDIO_SERVER, ACP_MANIFEST])
def test_the_published_examples_are_accepted_and_stored_exactly(card: dict[str, Any]) -> None:
    """Valid cards: prepared with the card's bytes exactly as registered."""
    prepared = prepare(KEY, dumps(register_body(card=card)), None, Limits())
    assert prepared.card == card_bytes(card) == orjson.dumps(card)


@pytest.mark.parametrize(
    ("card", "where"),
    [
        (
            with_(MCP_REMOTE_SERVER, remotes="https://m.example"),
            "remotes: Input should be a valid list",
        ),
        (with_(MCP_REMOTE_SERVER, name=42), "name: Input should be a valid string"),
        (
            with_(MCP_REMOTE_SERVER, name="no-slash"),
            "name: must be a reverse-DNS name and one slash",
        ),
        (
            with_(MCP_REMOTE_SERVER, description="x" * 101),
            "description: String should have at most 100",
        ),
        (
            with_(MCP_REMOTE_SERVER, remotes=[{"type": "websocket", "url": "https://m.example"}]),
            "remotes.0.type",
        ),
        (
            with_(MCP_REMOTE_SERVER, remotes=[{"type": "sse", "url": "javascript:alert(1)"}]),
            "remotes.0.url: Value error, an http endpoint's url must be http",
        ),
        (with_(MCP_REMOTE_SERVER, remotes=[{"type": "sse"}]), "remotes.0.url: Field required"),
        (
            with_(MCP_STDIO_SERVER, packages=[{"registryType": "npm", "identifier": "x"}]),
            "packages.0.transport: Field required",
        ),
        (
            with_tools([{"name": "read\nfile"}]),
            f"_meta.{PUBLISHER_META}.tools.0.name: must not contain control characters",
        ),
        (
            with_tools([{"name": "read\x1b[31m"}]),
            "tools.0.name: must not contain control characters",
        ),
        (with_tools("read_file"), "tools: Input should be a valid list"),
        (with_tools([{"title": "no name"}]), "tools.0.name: Field required"),
        (with_(ACP_MANIFEST, name="Chat Agent"), "name: must be a DNS label"),
        (
            with_(ACP_MANIFEST, input_content_types=[]),
            "input_content_types: List should have at least 1",
        ),
        (
            with_(ACP_MANIFEST, output_content_types="text/plain"),
            "output_content_types: Input should be a valid list",
        ),
        (
            with_(ACP_MANIFEST, output_content_types=["text/plain\r\nX-Injected: 1"]),
            "output_content_types.0: must be a media type",
        ),
        (
            with_(ACP_MANIFEST, metadata={"capabilities": [{"name": "a\tb", "description": ""}]}),
            "metadata.capabilities.0.name: must not contain control characters",
        ),
        (
            with_(ACP_MANIFEST, metadata={"capabilities": {"name": "x"}}),
            "metadata.capabilities: Input should be a valid list",
        ),
        (
            with_(ACP_MANIFEST, metadata={"tags": [7]}),
            "metadata.tags.0: Input should be a valid string",
        ),
    ],
)
def test_a_hostile_card_is_refused_with_the_path(card: dict[str, Any], where: str) -> None:
    """Wrong types, bad urls, control characters: `invalid-card`, the field's path in the
    detail, and the refused value itself never echoed back."""
    refused = refusal(card)
    assert refused.reason == "invalid-card"
    assert where in refused.detail
    assert "alert(1)" not in refused.detail
    assert "X-Injected" not in refused.detail


def test_a_huge_tool_list_is_refused_by_the_skill_limit() -> None:
    """A tool list longer than AGENTROSTER_MAX_SKILLS: refused, the limit named."""
    tools = [{"name": f"t{n}"} for n in range(129)]
    refused = refusal(with_tools(tools))
    assert refused.reason == "registration-too-large"
    assert "129 skills" in refused.detail
    assert "AGENTROSTER_MAX_SKILLS" in refused.detail


def test_a_huge_remote_list_is_refused_by_the_endpoint_limit() -> None:
    """More remotes than AGENTROSTER_MAX_ENDPOINTS: refused, the limit named."""
    remotes = [{"type": "sse", "url": f"https://m{n}.example/sse"} for n in range(33)]
    refused = refusal(with_(MCP_REMOTE_SERVER, remotes=remotes))
    assert refused.reason == "registration-too-large"
    assert "AGENTROSTER_MAX_ENDPOINTS" in refused.detail


def test_a_huge_capability_list_is_refused_by_the_skill_limit() -> None:
    """An ACP manifest with more capabilities than skills allowed: refused, limit named."""
    capabilities = [{"name": f"c{n}", "description": ""} for n in range(129)]
    refused = refusal(with_(ACP_MANIFEST, metadata={"capabilities": capabilities}))
    assert "AGENTROSTER_MAX_SKILLS" in refused.detail


# --- the client indexes as the worker does; A2A conversion leaves them alone --------------------


@pytest.mark.parametrize("card", [MCP_REMOTE_SERVER_WITH_TOOLS, MCP_STDIO_SERVER, ACP_MANIFEST])
def test_the_client_view_has_the_same_terms(card: dict[str, Any]) -> None:
    """A Roster indexes the `AgentInfo` it reads back under the worker's terms."""
    view = agent_view(card, None, None)
    info = AgentInfo.model_validate_json(view.model_dump_json())
    assert index_terms(info) == index_terms(view)
    assert info.no_endpoint_reason == view.no_endpoint_reason


def test_filters_find_them_by_protocol_and_skill() -> None:
    """`protocol=mcp&skill=read_text_file` and `protocol=acp&skill=...` match; crossed don't."""
    mcp = set(index_terms(agent_view(MCP_REMOTE_SERVER_WITH_TOOLS, None, None)))
    acp = set(index_terms(agent_view(ACP_MANIFEST, None, None)))
    by_tool = Filters(protocol="mcp", skills=("read_text_file",))
    by_capability = Filters(protocol="ACP", skills=("Conversational AI",))
    assert by_tool.matches(mcp, "")
    assert not by_tool.matches(acp, "")
    assert by_capability.matches(acp, "")
    assert not by_capability.matches(mcp, "")


@pytest.mark.parametrize("card", [MCP_REMOTE_SERVER, ACP_MANIFEST])
def test_mcp_and_acp_cards_are_not_converted_to_a2a(card: dict[str, Any]) -> None:
    """`A2A-Version` leaves them as registered: they are not A2A cards."""
    with pytest.raises(NotAnA2ACardError):
        convert_card(card, "1.0")
    assert converted_card_bytes(card_bytes(card), "0.3") is None


# --- anything at all ---------------------------------------------------------------------------


def outcome(card: dict[str, Any]) -> str:
    """`accepted`, or the reason `prepare` refuses a registration with this card."""
    try:
        prepare(KEY, dumps(register_body(card=card)), None, Limits())
    except Rejected as refused:
        return refused.reason
    return "accepted"


@given(extra=json_objects, remotes=json_values, tools=json_values)
def test_any_server_json_is_prepared_or_refused_with_a_reason(
    extra: dict[str, Any], remotes: Any, tools: Any
) -> None:
    """Whatever a `server.json` holds, `prepare` accepts it or refuses it as a card; it never
    fails otherwise (which would stop the worker's batch)."""
    card = {
        **extra,
        "$schema": f"{MCP_SCHEMA_PREFIX}2025-12-11/server.schema.json",
        "remotes": remotes,
        "_meta": {PUBLISHER_META: {"tools": tools}},
    }
    assert outcome(card) in {"accepted", "invalid-card", "registration-too-large"}


@given(extra=json_objects, content_types=json_values, metadata=json_values)
def test_any_acp_manifest_is_prepared_or_refused_with_a_reason(
    extra: dict[str, Any], content_types: Any, metadata: Any
) -> None:
    """The same for an ACP manifest."""
    card = {
        **extra,
        "input_content_types": content_types,
        "output_content_types": content_types,
        "metadata": metadata,
    }
    card.pop("url", None)
    card.pop("preferredTransport", None)
    card.pop("supportedInterfaces", None)
    assert outcome(card) in {"accepted", "invalid-card", "registration-too-large"}
