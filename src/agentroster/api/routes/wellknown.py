"""The registry's own A2A card, at the well-known paths A2A clients look at."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from agentroster.api.registry_card import registry_card

#: How long clients may cache the registry's card.
CARD_MAX_AGE_S = 300

router = APIRouter(tags=["well-known"])

_CARD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/json": {"schema": {"type": "object"}}},
        "description": "An A2A v1.0 agent card.",
    }
}


@router.get(
    "/.well-known/agent-card.json",
    response_class=JSONResponse,
    summary="The registry's A2A card",
    responses=_CARD_RESPONSES,
)
async def agent_card(request: Request) -> JSONResponse:
    """The registry's own A2A v1.0 card: its skill is discovering agents over this API."""
    return JSONResponse(
        registry_card(str(request.base_url)),
        headers={"Cache-Control": f"max-age={CARD_MAX_AGE_S}"},
    )


@router.get(
    "/.well-known/agent.json",
    response_class=JSONResponse,
    summary="The registry's A2A card (legacy path)",
    responses=_CARD_RESPONSES,
)
async def agent_card_legacy(request: Request) -> JSONResponse:
    """The same card at the path A2A clients before v0.3 look at."""
    return await agent_card(request)
