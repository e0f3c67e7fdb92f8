"""Discovery: list agents, read one agent, read its card exactly as registered."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from agentroster.api.deps import AgentIdPath, ReaderDep
from agentroster.api.errors import ERROR_RESPONSES, AgentNotFound, ErrorResponse
from agentroster.api.models import AgentDetail, AgentList, AgentSummary
from agentroster.contracts.ids import AGENT_ID_PATTERN

#: How long a client may use a card without revalidating it (then `If-None-Match` → 304).
CARD_MAX_AGE_S = 60
#: The query parameters `GET /v1/agents` knows; the filters of design section 5 come next.
LIST_PARAMETERS = frozenset({"status", "limit", "cursor"})

router = APIRouter(prefix="/v1/agents", tags=["agents"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No agent with this id."}
}
_CARD_HEADERS = {
    "ETag": {"description": "The card's digest, quoted.", "schema": {"type": "string"}},
    "Cache-Control": {"description": f"`max-age={CARD_MAX_AGE_S}`", "schema": {"type": "string"}},
}
_CARD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/json": {"schema": {"type": "object"}}},
        "description": "The card's bytes exactly as registered; `ETag` is its digest.",
        "headers": _CARD_HEADERS,
    },
    304: {"description": "The card matches `If-None-Match`.", "headers": _CARD_HEADERS},
    **_NOT_FOUND,
    **ERROR_RESPONSES,
}


def reject_unknown_parameters(request: Request) -> None:
    """A parameter this API does not know is an error, not silently ignored.

    Otherwise a client filtering by a filter that does not exist yet (e.g. `skill`) would get
    every agent and believe they all match.
    """
    unknown = sorted(set(request.query_params) - LIST_PARAMETERS)
    if unknown:
        raise RequestValidationError(
            [
                {"type": "extra_forbidden", "loc": ("query", name), "msg": "Unknown parameter"}
                for name in unknown
            ]
        )


@router.get(
    "",
    response_model=AgentList,
    summary="Discover agents",
    responses=ERROR_RESPONSES,
    dependencies=[Depends(reject_unknown_parameters)],
)
async def list_agents(
    reader: ReaderDep,
    status: Annotated[
        Literal["live", "idle", "offline", "all"],
        Query(description="`live` (default), `idle`, `offline`, or `all` agents."),
    ] = "live",
    limit: Annotated[int, Query(ge=1, le=1000, description="Agents per page.")] = 100,
    cursor: Annotated[
        str | None,
        Query(
            pattern=AGENT_ID_PATTERN,
            description="`next_cursor` of the previous page; pass it back as it is.",
        ),
    ] = None,
) -> AgentList:
    """One page of agents in agent id order, and the revision to follow events from."""
    page = await reader.list_agents(status, limit, cursor)
    return AgentList(
        revision=page.revision,
        agents=[AgentSummary.from_record(agent) for agent in page.agents],
        next_cursor=page.next_cursor,
    )


@router.get(
    "/{agent_id}",
    response_model=AgentDetail,
    summary="Read one agent",
    responses={**_NOT_FOUND, **ERROR_RESPONSES},
)
async def get_agent(agent_id: AgentIdPath, reader: ReaderDep) -> AgentDetail:
    """One agent with its status, lease, live instances, first and last seen, and revision."""
    record = await reader.get_agent(agent_id)
    if record is None:
        raise AgentNotFound(agent_id)
    return AgentDetail.from_detail(record)


async def _card(agent_id: str, reader: ReaderDep, if_none_match: str | None) -> Response:
    stored = await reader.get_card(agent_id)
    if stored is None:
        raise AgentNotFound(agent_id)
    etag = f'"{stored.digest}"'
    headers = {"ETag": etag, "Cache-Control": f"max-age={CARD_MAX_AGE_S}"}
    if if_none_match is not None and etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(stored.card, media_type="application/json", headers=headers)


def etag_matches(if_none_match: str, etag: str) -> bool:
    """Whether an `If-None-Match` header matches `etag` (weak comparison, as RFC 9110 says)."""
    candidates = [tag.strip() for tag in if_none_match.split(",")]
    return "*" in candidates or any(tag.removeprefix("W/") == etag for tag in candidates)


IfNoneMatch = Annotated[
    str | None,
    Header(description="An ETag from an earlier answer: 304 when the card is unchanged."),
]


@router.get(
    "/{agent_id}/card",
    response_class=Response,
    summary="Read an agent's card",
    responses=_CARD_RESPONSES,
)
async def get_card(
    agent_id: AgentIdPath, reader: ReaderDep, if_none_match: IfNoneMatch = None
) -> Response:
    """The agent's native card, byte for byte as registered, with its digest as `ETag`."""
    return await _card(agent_id, reader, if_none_match)


@router.get(
    "/{agent_id}/.well-known/agent-card.json",
    response_class=Response,
    summary="Read an agent's card (A2A well-known path)",
    responses=_CARD_RESPONSES,
)
async def get_card_well_known(
    agent_id: AgentIdPath, reader: ReaderDep, if_none_match: IfNoneMatch = None
) -> Response:
    """The same as `/card`, where A2A clients look for a card under an agent's base URL."""
    return await _card(agent_id, reader, if_none_match)
