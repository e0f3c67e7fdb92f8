"""The registry's MCP tools: discover agents, read one agent, read its card.

Each tool answers from the same code paths as the HTTP routes (`api/discovery.py`, the
`RegistryReader`, `api/a2a_conversion.py`), never through an HTTP call to the API itself. The
descriptions are written for a language model choosing a tool; arguments are checked by the
pydantic models below (their JSON schemas are the tools' input schemas), and a refusal is a
tool error (`isError`) whose text says what to change, never an exception trace.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, TypeVar

import orjson
from mcp import types
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from redis.exceptions import RedisError

from agentroster.api.a2a_conversion import (
    SUPPORTED_VERSIONS,
    InvalidVersionError,
    UnsupportedVersionError,
    VersionNotOffered,
    converted_card_bytes,
    normalize_version,
)
from agentroster.api.discovery import discovery_page
from agentroster.api.errors import ApiError
from agentroster.api.models import AgentDetail, AgentList, detail_json
from agentroster.api.read_model import ReadModel
from agentroster.contracts.events import SignatureStatus
from agentroster.contracts.ids import AGENT_ID_PATTERN
from agentroster.registry.terms import Filters
from agentroster.store.reader import ListStatus, RegistryReader

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

DISCOVER_AGENTS = "discover_agents"
GET_AGENT = "get_agent"
GET_AGENT_CARD = "get_agent_card"
#: Agents one `discover_agents` call returns at most: a page is read by a model, whose
#: context is the scarce resource (`GET /v1/agents` allows 1,000).
MAX_PAGE = 100

AgentId = Annotated[
    str,
    StringConstraints(pattern=AGENT_ID_PATTERN),
    Field(description="The agent's id, as `discover_agents` returns it (e.g. `weather`)."),
]
Term = Annotated[str, StringConstraints(min_length=1, max_length=256)]
LabelKey = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=r"^[^:]+$")]
LabelValue = Annotated[str, StringConstraints(max_length=256)]


class ToolError(Exception):
    """A refusal the calling model should read: its message says what to change."""


class DiscoverAgentsInput(BaseModel):
    """The filters of `GET /v1/agents`; every one given must match."""

    model_config = ConfigDict(extra="forbid")

    skills: list[Term] = Field(
        default=[],
        max_length=20,
        description='Skill ids the agent must all have, e.g. ["summarize"].',
    )
    tag: Term | None = Field(default=None, description="A tag of one of the agent's skills.")
    protocol: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None, description="The protocol it speaks: `a2a`, `mcp`, `acp` or `custom`."
    )
    transport: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None, description="How it is reached: `http`, `amqp` (a queue), ..."
    )
    labels: dict[LabelKey, LabelValue] = Field(
        default={},
        max_length=20,
        description='Labels the agent must all carry, e.g. {"team": "geo"}.',
    )
    text: Term | None = Field(
        default=None,
        description="Words to look for in the agent's name, description, skill ids and names "
        "(any case). Use it when you know what the agent does but not its skill id.",
    )
    status: ListStatus = Field(
        default="live",
        description="`live` (default: an instance is running now), `idle` (scaled to zero, "
        "still reachable through its queue), `offline` (gone, kept for a while), or `all`.",
    )
    verified: bool | None = Field(
        default=None,
        description="true: only agents whose own well-known card matched the registered one.",
    )
    signature: SignatureStatus | None = Field(
        default=None,
        description="`valid`: only agents whose signed card verified with a trusted key "
        "(`invalid`: signed but not verified; `unsigned`: no signature).",
    )
    limit: int = Field(default=20, ge=1, le=MAX_PAGE, description="Agents per page.")
    cursor: Annotated[str, StringConstraints(pattern=AGENT_ID_PATTERN)] | None = Field(
        default=None,
        description="`next_cursor` of the previous page, to read the next one.",
    )

    def filters(self) -> Filters:
        """The filters as discovery takes them."""
        return Filters(
            skills=tuple(self.skills),
            tag=self.tag,
            protocol=self.protocol,
            transport=self.transport,
            labels=tuple(self.labels.items()),
            q=self.text,
            verified=self.verified,
            signature=self.signature,
        )


class GetAgentInput(BaseModel):
    """Which agent to read."""

    model_config = ConfigDict(extra="forbid")

    agent_id: AgentId


class GetAgentCardInput(BaseModel):
    """Which agent's card to read, and in which A2A version."""

    model_config = ConfigDict(extra="forbid")

    agent_id: AgentId
    a2a_version: Annotated[str, StringConstraints(max_length=16)] | None = Field(
        default=None,
        description=f"Convert an A2A card to this A2A version ({', '.join(SUPPORTED_VERSIONS)}; "
        "a patch number is ignored); omit it to get the card exactly as the agent registered "
        "it. A signed card, or a card that is not an A2A card, always comes as registered.",
    )


TOOLS = [
    types.Tool(
        name=DISCOVER_AGENTS,
        title="Discover agents",
        description=(
            "Find agents registered in this agent registry that can do something: by skill id, "
            "skill tag, protocol (a2a, mcp, acp), transport, labels or free text. Returns the "
            "matching agents (id, status, name, description, skills, endpoints to call them "
            "at) in agent id order. Live agents only unless `status` says otherwise. A result "
            "with `next_cursor` set has more: call again with `cursor` = that value (a short or "
            "even empty page with a cursor is not the end). Use `get_agent_card` next to read "
            "how to talk to the agent you picked."
        ),
        inputSchema=DiscoverAgentsInput.model_json_schema(),
        outputSchema=AgentList.model_json_schema(mode="serialization"),
        annotations=types.ToolAnnotations(readOnlyHint=True, openWorldHint=False),
    ),
    types.Tool(
        name=GET_AGENT,
        title="Get one agent",
        description=(
            "Read one agent of this registry by its id: status (live, idle, offline), its "
            "running instances and their leases, when it was first and last seen, and its "
            "name, description, skills and endpoints. Use it to check that an agent found "
            "earlier is still live before calling it."
        ),
        inputSchema=GetAgentInput.model_json_schema(),
        outputSchema=AgentDetail.model_json_schema(mode="serialization"),
        annotations=types.ToolAnnotations(readOnlyHint=True, openWorldHint=False),
    ),
    types.Tool(
        name=GET_AGENT_CARD,
        title="Get an agent's card",
        description=(
            "Read the card an agent registered (its A2A agent card, or its MCP/ACP/custom "
            "card) as JSON: everything needed to talk to it, such as interfaces, skills with "
            "examples, input and output modes, and security schemes. With `a2a_version`, an A2A "
            "card is converted to that A2A version for a client that speaks only it."
        ),
        inputSchema=GetAgentCardInput.model_json_schema(),
        annotations=types.ToolAnnotations(readOnlyHint=True, openWorldHint=False),
    ),
]


class RegistryTools:
    """Answers the tools from the API process's read model and Redis reader."""

    def __init__(self, reader: RegistryReader, read_model: ReadModel | None) -> None:
        self.reader = reader
        self.read_model = read_model

    async def call(self, request: types.CallToolRequest) -> types.ServerResult:
        """Run one tool call; a refusal or failure is a tool error the model can read."""
        name, arguments = request.params.name, request.params.arguments or {}
        try:
            if name == DISCOVER_AGENTS:
                result = await self.discover(_parse(DiscoverAgentsInput, name, arguments))
            elif name == GET_AGENT:
                result = await self.get_agent(_parse(GetAgentInput, name, arguments))
            elif name == GET_AGENT_CARD:
                result = await self.get_card(_parse(GetAgentCardInput, name, arguments))
            else:
                known = ", ".join(tool.name for tool in TOOLS)
                raise ToolError(f"unknown tool {name!r}; this registry has {known}")
        except ToolError as exc:
            return _error(str(exc))
        except ApiError as exc:  # e.g. the read model's bounded waits
            return _error(exc.message)
        except RedisError as exc:
            log.warning("MCP tool %s: Redis unreachable: %s", name, exc)
            return _error("the registry's store (Redis) is unreachable; retry later")
        return types.ServerResult(result)

    async def discover(self, query: DiscoverAgentsInput) -> types.CallToolResult:
        """One page of discovery, as structured content with its JSON as text."""
        body = await discovery_page(
            self.read_model, self.reader, query.status, query.limit, query.cursor, query.filters()
        )
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=body.decode())],
            structuredContent=orjson.loads(body),
        )

    async def get_agent(self, query: GetAgentInput) -> types.CallToolResult:
        """One agent, read from Redis as `GET /v1/agents/{agent_id}` reads it."""
        record = await self.reader.get_agent(query.agent_id)
        if record is None:
            raise ToolError(_unknown(query.agent_id))
        body = orjson.dumps(detail_json(record), option=orjson.OPT_UTC_Z)
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=body.decode())],
            structuredContent=orjson.loads(body),
        )

    async def get_card(self, query: GetAgentCardInput) -> types.CallToolResult:
        """The card as registered, or converted as `A2A-Version` converts it over HTTP."""
        version = None
        if query.a2a_version:
            try:
                version = normalize_version(query.a2a_version)
            except (UnsupportedVersionError, InvalidVersionError) as exc:
                raise ToolError(str(exc)) from None
        stored = await self.reader.get_card(query.agent_id)
        if stored is None:
            raise ToolError(_unknown(query.agent_id))
        card = stored.card
        if version is not None:
            try:
                card = converted_card_bytes(stored.card, version) or card
            except VersionNotOffered as exc:  # a v1.0 card whose interfaces speak only 1.x
                raise ToolError(str(exc)) from None
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=card.decode(errors="replace"))]
        )


def _parse(model: type[M], tool: str, arguments: dict[str, Any]) -> M:
    try:
        return model.model_validate(arguments)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or 'arguments'}: {error['msg']}"
            for error in exc.errors(include_url=False)
        )
        raise ToolError(f"invalid arguments for {tool}: {problems}") from None


def _unknown(agent_id: str) -> str:
    return (
        f"no agent {agent_id!r} in this registry (never registered, or gone after its "
        f"retention); {DISCOVER_AGENTS} lists the agents there are"
    )


def _error(message: str) -> types.ServerResult:
    return types.ServerResult(
        types.CallToolResult(content=[types.TextContent(type="text", text=message)], isError=True)
    )
