"""Agent cards: A2A v0.3, A2A v1.0 or a generic card (MCP, ACP, custom).

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

from agentroster.contracts.endpoints import (
    PRINTABLE,
    Endpoint,
    endpoints_from_a2a_v03,
    endpoints_from_a2a_v10,
)

#: A named alias: the JSON schemas give it its own definition, so generated clients name it.
CardFormat = TypeAliasType(
    "CardFormat",
    Annotated[
        Literal["a2a/1.0", "a2a/0.3", "generic"],
        Field(
            description="`a2a/1.0` (the card has `supportedInterfaces`), `a2a/0.3` (it has "
            "`url` or `preferredTransport`), `generic` (any other card: MCP, ACP, custom)."
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
    tags: list[str] = Field(default_factory=list, description="Union of the skills' tags.")
    labels: dict[str, str] = Field(default_factory=dict)


def card_format(card: dict[str, Any]) -> CardFormat:
    """Tell the card's format from its fields: `supportedInterfaces` is v1.0, `url` is v0.3."""
    if "supportedInterfaces" in card:
        return "a2a/1.0"
    if "url" in card or "preferredTransport" in card:
        return "a2a/0.3"
    return "generic"


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
    """The endpoints an A2A card declares; a generic card declares none by itself."""
    match card_format(card):
        case "a2a/1.0":
            return endpoints_from_a2a_v10(card)
        case "a2a/0.3":
            return endpoints_from_a2a_v03(card)
        case _:
            return []


def card_skills(card: dict[str, Any]) -> list[Skill]:
    """The card's skills that have an id (A2A and generic cards share the `skills[]` shape)."""
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
    """Build the view of an agent from its card, explicit endpoints (if any) and labels."""
    skills = card_skills(card)
    tags = sorted({tag for skill in skills for tag in skill.tags})
    name = card.get("name")
    return AgentView(
        name=name if isinstance(name, str) else "",
        description=str(card.get("description") or ""),
        version=str(card.get("version") or ""),
        card_format=card_format(card),
        endpoints=endpoints if endpoints is not None else derive_endpoints(card),
        skills=skills,
        tags=tags,
        labels=labels or {},
    )
