"""The registry's own A2A card, at the well-known paths A2A clients look at, and the live
agents' A2A cards at `/.well-known/agents` (as oo-a2a-registry serves them)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from agentroster.api.a2a_conversion import A2AVersion, VersionNotOffered, converted_card_bytes
from agentroster.api.a2a_version import A2A_VERSION, VERSION_RESPONSES, A2AVersionDep
from agentroster.api.auth import READ_RESPONSES, ReadAccess
from agentroster.api.deps import ReaderDep, StateDep
from agentroster.api.errors import ERROR_RESPONSES
from agentroster.api.registry_card import registry_card_bytes
from agentroster.api.routes.agents import IfNoneMatch, etag_matches
from agentroster.contracts.cards import is_a2a

#: How long clients may cache the registry's card.
CARD_MAX_AGE_S = 300
#: Agents read per round trip while `/.well-known/agents` walks every live agent.
AGENTS_PAGE = 1000

router = APIRouter(tags=["well-known"])

_CARD_HEADERS = {
    "ETag": {"description": "The served card's digest, quoted.", "schema": {"type": "string"}},
    "Cache-Control": {"description": f"`max-age={CARD_MAX_AGE_S}`", "schema": {"type": "string"}},
    "Vary": {"description": "`A2A-Version`", "schema": {"type": "string"}},
}
_CARD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/json": {"schema": {"type": "object"}}},
        "description": "The registry's A2A agent card, in the version the path or"
        " `A2A-Version` asks for.",
        "headers": _CARD_HEADERS,
    },
    304: {"description": "The card matches `If-None-Match`.", "headers": _CARD_HEADERS},
    **VERSION_RESPONSES,
    **ERROR_RESPONSES,
}


def _registry_card_response(
    state: StateDep, version: A2AVersion, if_none_match: str | None
) -> Response:
    body, digest = registry_card_bytes(state.settings.public_base_url, version)
    etag = f'"{digest}"'
    headers = {"ETag": etag, "Cache-Control": f"max-age={CARD_MAX_AGE_S}", "Vary": A2A_VERSION}
    if if_none_match is not None and etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


@router.get(
    "/.well-known/agent-card.json",
    response_class=Response,
    summary="The registry's A2A card",
    responses=_CARD_RESPONSES,
)
async def agent_card(
    state: StateDep, a2a_version: A2AVersionDep, if_none_match: IfNoneMatch = None
) -> Response:
    """The registry's own A2A card, v1.0 unless `A2A-Version` asks for 0.3: its skill is
    discovering agents over this API. `ETag` is the served card's digest.

    Its urls are under the configured public URL (`AGENTROSTER_PUBLIC_URL`), never the
    request's `Host` header: a forged Host must not end up in a card caches keep.
    """
    return _registry_card_response(state, a2a_version or "1.0", if_none_match)


@router.get(
    "/.well-known/agent.json",
    response_class=Response,
    summary="The registry's A2A card (legacy path, v0.3)",
    responses=_CARD_RESPONSES,
)
async def agent_card_legacy(
    state: StateDep, a2a_version: A2AVersionDep, if_none_match: IfNoneMatch = None
) -> Response:
    """The same card at the path A2A clients before v1.0 look at: v0.3 unless `A2A-Version`
    asks for 1.0."""
    return _registry_card_response(state, a2a_version or "0.3", if_none_match)


@router.get(
    "/.well-known/agents",
    response_class=Response,
    summary="The live agents' A2A cards",
    dependencies=[ReadAccess],
    responses={
        200: {
            "content": {
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}}
            },
            "description": (
                "A JSON array of the A2A cards of every live agent, in agent id order: each"
                " as registered, or converted to the version `A2A-Version` asks for."
            ),
            "headers": {"Vary": {"description": "`A2A-Version`", "schema": {"type": "string"}}},
        },
        **READ_RESPONSES,
        **VERSION_RESPONSES,
        **ERROR_RESPONSES,
    },
)
async def live_agent_cards(reader: ReaderDep, a2a_version: A2AVersionDep) -> Response:
    """Every live agent's A2A card, as oo-a2a-registry's `GET /.well-known/agents` answers.

    A bare JSON array of cards (MCP and other non-A2A cards are left out). Without
    `A2A-Version` each card is as registered, so v0.3 and v1.0 cards may mix; with it, each is
    converted to that version, except signed cards, which come as registered; a card with no
    interface speaking that version is left out (its agent cannot be talked to in it).
    """
    version = a2a_version
    parts: list[bytes] = []
    cursor: str | None = None
    while True:
        page = await reader.list_agents("live", limit=AGENTS_PAGE, cursor=cursor)
        # the view's card format is the worker's `card_format(card)`: no card parsed to tell
        a2a = [a.agent_id for a in page.agents if is_a2a(a.view.get("card_format", "generic"))]
        for stored in await reader.cards(a2a):
            if stored is None:
                continue  # deleted since it was listed
            try:
                converted = converted_card_bytes(stored, version) if version else None
            except VersionNotOffered:
                continue
            parts.append(stored if converted is None else converted)
        cursor = page.next_cursor
        if cursor is None:
            break
    return Response(
        b"[" + b",".join(parts) + b"]",
        media_type="application/json",
        headers={"Vary": A2A_VERSION, "Cache-Control": "no-cache"},
    )
