"""Agent cards: A2A v0.3, A2A v1.0, an MCP `server.json`, an ACP manifest, or a generic card.

The registry hands back exactly the card an agent registered, so a card is kept as the JSON
object it arrived as; these helpers only read it. `card_digest` is what heartbeats carry to say
"my card has not changed": agent and registry compute it the same way, here.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import InitErrorDetails
from typing_extensions import TypeAliasType

from agentroster.contracts.acp_manifest import AcpManifest, is_acp_manifest
from agentroster.contracts.endpoints import (
    PRINTABLE,
    Endpoint,
    endpoints_from_a2a_v03,
    endpoints_from_a2a_v10,
)
from agentroster.contracts.mcp_server import McpServer, is_mcp_server_json

#: A named alias: the JSON schemas give it its own definition, so generated clients name it.
CardFormat = TypeAliasType(
    "CardFormat",
    Annotated[
        Literal["a2a/1.0", "a2a/0.3", "mcp/server", "acp/manifest", "generic"],
        Field(
            description="`a2a/1.0` (the card has `supportedInterfaces`), `a2a/0.3` (it has "
            "`url` or `preferredTransport`), `mcp/server` (an MCP Registry `server.json`: its "
            "`$schema` is the official one, or it has a reverse-DNS `name` with a slash and "
            "`remotes` or `packages`), `acp/manifest` (an ACP agent manifest: it has "
            "`input_content_types` and `output_content_types`), `generic` (any other card)."
        ),
    ],
)

#: Cards larger than this (serialised) are rejected by the registry unless configured otherwise.
DEFAULT_MAX_CARD_BYTES = 64 * 1024


#: A skill tag: an index term, so no control character.
Tag = Annotated[str, Field(pattern=PRINTABLE)]


class Skill(BaseModel):
    """The part of a card's skill discovery needs: id, name, tags.

    Ids and tags are index terms: a control character in one makes the card invalid rather
    than being indexed as something else.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(pattern=PRINTABLE)
    name: str = ""
    description: str = ""
    tags: tuple[Tag, ...] = ()


class AgentView(BaseModel):
    """The digest of an agent's card that discovery and events carry, beside the card itself."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    version: str = ""
    card_format: CardFormat = Field(description="How the card is written.")
    endpoints: list[Endpoint] = Field(default_factory=list)
    skills: list[Skill] = Field(default_factory=list)
    tags: list[str] = Field(
        default_factory=list,
        description="Union of the skills' tags (and of an ACP manifest's tags and domains).",
    )
    labels: dict[str, str] = Field(default_factory=dict)
    no_endpoint_reason: str | None = Field(
        default=None,
        description="Why the agent has no network endpoint, when its card says so: e.g. an MCP "
        "server that runs only locally from its packages (stdio), or an ACP manifest "
        "registered without endpoints. Null when it has endpoints or its card says nothing.",
    )


def card_format(card: dict[str, Any]) -> CardFormat:
    """Tell the card's format from its fields.

    The A2A markers are looked at first (`supportedInterfaces` is v1.0, `url` or
    `preferredTransport` v0.3), so an A2A card is never taken for another format; then an MCP
    `server.json` (`is_mcp_server_json`), then an ACP manifest (`is_acp_manifest`).
    """
    if "supportedInterfaces" in card:
        return "a2a/1.0"
    if "url" in card or "preferredTransport" in card:
        return "a2a/0.3"
    if is_mcp_server_json(card):
        return "mcp/server"
    if is_acp_manifest(card):
        return "acp/manifest"
    return "generic"


def is_a2a(card_format: str) -> bool:
    """Whether a card of this format is an A2A card (v0.3 or v1.0)."""
    return card_format.startswith("a2a/")


def card_bytes(card: dict[str, Any]) -> bytes:
    """The card as the registry stores and serves it: compact JSON, keys in their given order."""
    return orjson.dumps(card)


def card_digest(card: dict[str, Any]) -> str:
    """A digest of the card's content, independent of key order and whitespace.

    `sha256:` and the lowercase hex SHA-256 of the card as compact UTF-8 JSON with the keys of
    every object sorted by code point (`Heartbeat.card_digest` says it for other languages).
    """
    canonical = orjson.dumps(card, option=orjson.OPT_SORT_KEYS)
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def derive_endpoints(card: dict[str, Any]) -> list[Endpoint]:
    """The endpoints a card declares: an A2A card's interfaces, an MCP server's remotes; an
    ACP manifest or a generic card declares none by itself.

    Raises `ValidationError` for an MCP `server.json` that does not validate.
    """
    match card_format(card):
        case "a2a/1.0":
            return endpoints_from_a2a_v10(card)
        case "a2a/0.3":
            return endpoints_from_a2a_v03(card)
        case "mcp/server":
            return McpServer.model_validate(card).endpoints()
        case _:
            return []


def card_skills(card: dict[str, Any]) -> list[Skill]:
    """The card's skills: an MCP server's tools, an ACP agent's capabilities, or the entries of
    `skills[]` that have an id (A2A and generic cards share that shape).

    Raises `ValidationError` (with the path in the card) for a skill, an MCP `server.json` or
    an ACP manifest that does not validate.
    """
    match card_format(card):
        case "mcp/server":
            return _mcp_skills(McpServer.model_validate(card))
        case "acp/manifest":
            return _acp_skills(AcpManifest.model_validate(card))
        case _:
            return _listed_skills(card)


# The tools and capabilities were validated with at least the rules of `Skill` (a printable id),
# so they are built without validating again: a card with thousands of them costs half as much.


def _mcp_skills(server: McpServer) -> list[Skill]:
    by_name = {
        tool.name: Skill.model_construct(
            id=tool.name, name=tool.title or tool.name, description=tool.description, tags=()
        )
        for tool in server.tools
    }
    return list(by_name.values())


def _acp_skills(manifest: AcpManifest) -> list[Skill]:
    by_name = {
        c.name: Skill.model_construct(id=c.name, name=c.name, description=c.description, tags=())
        for c in manifest.metadata.capabilities
    }
    return list(by_name.values())


def _listed_skills(card: dict[str, Any]) -> list[Skill]:
    skills = card.get("skills")
    if not isinstance(skills, list):
        return []
    found: list[Skill] = []
    for n, skill in enumerate(skills):
        if not (isinstance(skill, dict) and isinstance(skill.get("id"), str)):
            continue
        try:
            found.append(Skill.model_validate(skill))
        except ValidationError as exc:  # say where in the card: skills.<n>.<field>
            errors: list[InitErrorDetails] = []
            for e in exc.errors():
                error = InitErrorDetails(
                    type=e["type"], loc=("skills", n, *e["loc"]), input=e["input"]
                )
                if "ctx" in e:
                    error["ctx"] = e["ctx"]
                errors.append(error)
            raise ValidationError.from_exception_data("card", errors) from None
    return found


def agent_view(
    card: dict[str, Any], endpoints: list[Endpoint] | None, labels: dict[str, str] | None
) -> AgentView:
    """Build the view of an agent from its card, explicit endpoints (if any) and labels.

    Raises `ValidationError` (with the path in the card) for a card its format refuses.
    """
    fmt = card_format(card)
    card_tags: list[str] = []
    reason: str | None = None
    match fmt:
        case "mcp/server":
            server = McpServer.model_validate(card)
            skills, derived = _mcp_skills(server), server.endpoints()
            reason = server.no_endpoint_reason()
        case "acp/manifest":
            manifest = AcpManifest.model_validate(card)
            skills, derived, card_tags = _acp_skills(manifest), [], manifest.terms
            reason = "an ACP manifest names no URL and no endpoints were registered"
        case _:
            skills = _listed_skills(card)
            derived = derive_endpoints(card) if endpoints is None else []
    if endpoints is not None:
        derived = endpoints
    if derived:
        reason = None
    tags = {tag for skill in skills for tag in skill.tags} | set(card_tags)
    name = card.get("name")
    return AgentView(
        name=name if isinstance(name, str) else "",
        description=str(card.get("description") or ""),
        version=str(card.get("version") or ""),
        card_format=fmt,
        endpoints=derived,
        skills=skills,
        tags=sorted(tags),
        labels=labels or {},
        no_endpoint_reason=reason,
    )
