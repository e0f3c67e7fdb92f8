"""Discovery: list agents, read one agent, read its card exactly as registered."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from agentroster.api.a2a_conversion import A2AVersion, VersionNotOffered, converted_card_bytes
from agentroster.api.a2a_version import (
    A2A_VERSION,
    VERSION_RESPONSES,
    A2AVersionDep,
    version_not_offered,
)
from agentroster.api.deps import AgentIdPath, ReaderDep, StateDep
from agentroster.api.discovery import discovery_page
from agentroster.api.errors import ERROR_RESPONSES, AgentNotFound, ErrorResponse
from agentroster.api.models import AgentDetail, AgentList, detail_json
from agentroster.contracts.events import SignatureStatus
from agentroster.contracts.ids import AGENT_ID_PATTERN
from agentroster.registry.terms import TEXT_BUDGET, Filters
from agentroster.store.reader import SCAN_BUDGET, ListStatus

#: How long a client may use a card without revalidating it (then `If-None-Match` → 304).
CARD_MAX_AGE_S = 60
#: The query parameters `GET /v1/agents` knows.
LIST_PARAMETERS = frozenset(
    {
        "status",
        "limit",
        "cursor",
        "skill",
        "tag",
        "protocol",
        "transport",
        "q",
        "label",
        "verified",
        "signature",
        "min_revision",
    }
)
#: A label filter, `key:value`.
LABEL_PATTERN = r"^[^:]{1,63}:.{0,256}$"

router = APIRouter(prefix="/v1/agents", tags=["agents"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No agent with this id."}
}
_CARD_HEADERS = {
    "ETag": {
        "description": "The card's digest, quoted; a converted card adds `;v=0.3` or `;v=1.0`.",
        "schema": {"type": "string"},
    },
    "Cache-Control": {"description": f"`max-age={CARD_MAX_AGE_S}`", "schema": {"type": "string"}},
    "Vary": {"description": "`A2A-Version`", "schema": {"type": "string"}},
}
_CARD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"application/json": {"schema": {"type": "object"}}},
        "description": (
            "The card's bytes exactly as registered, or converted to the A2A version"
            " `A2A-Version` asks for; `ETag` is its digest."
        ),
        "headers": _CARD_HEADERS,
    },
    304: {"description": "The card matches `If-None-Match`.", "headers": _CARD_HEADERS},
    **_NOT_FOUND,
    **VERSION_RESPONSES,
    **ERROR_RESPONSES,
}


async def reject_unknown_parameters(request: Request) -> None:
    """A parameter this API does not know is an error, not silently ignored.

    Otherwise a client misspelling a filter (e.g. `skills`) would get every agent and believe
    they all match.
    """
    unknown = sorted(set(request.query_params) - LIST_PARAMETERS)
    if unknown:
        raise RequestValidationError(
            [
                {"type": "extra_forbidden", "loc": ("query", name), "msg": "Unknown parameter"}
                for name in unknown
            ]
        )


_LIST_DESCRIPTION = f"""One page of the agents matching every filter, in agent id order, with the
revision to follow events from. Filters (status included) apply before the page is cut, so a page
is never short because agents were dropped after the cut.

Answered from the API process's read model in memory (`AGENTROSTER_DISCOVERY_SOURCE=memory`, the
default), which follows the registry's events: the page is exactly the registry at `revision`.
Each agent shows its state as of its last change (its last event): `last_seen`, `lease` and
`live_instances` may have moved since without an event (a heartbeat, another instance of a live
agent); `GET /v1/agents/{{agent_id}}` reads them exactly. `min_revision=R` waits (at most
`AGENTROSTER_MIN_REVISION_WAIT_S`, 2 s by default) until the answer is at revision R or later:
read your own writes by passing the revision of the event your change produced; past the wait,
503 `revision-not-reached` with Retry-After; a revision the registry has not reached at all, 410
`revision-ahead` at once.

A request examines at most a bounded number of agents (`AGENTROSTER_MEMORY_SCAN_BUDGET`; a text
`q` also counts once per KiB read); while the read model loads or rebuilds, pages come from Redis,
where a request examines at most {SCAN_BUDGET:,} agents and with `q` reads at most
{TEXT_BUDGET:,} agents' search texts by default (`AGENTROSTER_QUERY_TEXT_BUDGET`). A request
that spends its budget before the page is full answers the matches found so far, possibly none,
with `next_cursor` set: a short page with a cursor means "go on", and only `next_cursor: null`
means the end."""


@router.get(
    "",
    response_model=AgentList,
    summary="Discover agents",
    description=_LIST_DESCRIPTION,
    responses={
        410: {
            "model": ErrorResponse,
            "description": "`revision-ahead`: `min_revision` is beyond the registry's revision.",
        },
        **ERROR_RESPONSES,
    },
    dependencies=[Depends(reject_unknown_parameters)],
)
async def list_agents(
    state: StateDep,
    status: Annotated[
        ListStatus,
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
    skill: Annotated[
        list[str],
        Query(max_length=20, description="Skill id; repeat it: the agent has every one."),
    ] = [],  # noqa: B006 - FastAPI copies the default per request
    tag: Annotated[
        str | None, Query(max_length=256, description="A tag of one of its skills.")
    ] = None,
    protocol: Annotated[
        str | None,
        Query(
            max_length=64,
            description="An endpoint's protocol or the card format's: `a2a`, `mcp`, `acp`...",
        ),
    ] = None,
    transport: Annotated[str | None, Query(max_length=64, description="`http`, `amqp`...")] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=256,
            description="Text in its name, description, skill ids or names (any case). A "
            f"request reads a bounded amount of text (by default {TEXT_BUDGET:,} agents' texts, "
            "fewer when they are long), then answers what it found with a cursor to go on from.",
        ),
    ] = None,
    label: Annotated[
        list[Annotated[str, Query(pattern=LABEL_PATTERN)]],
        Query(max_length=20, description="`key:value`; repeat it: the agent has every one."),
    ] = [],  # noqa: B006 - FastAPI copies the default per request
    verified: Annotated[
        bool | None,
        Query(
            description="`true`: its well-known card was fetched and matched; `false`: it was "
            "fetched and did not match, or could not be fetched (agents not checked have "
            "neither)."
        ),
    ] = None,
    signature: Annotated[
        SignatureStatus | None,
        Query(
            description="`valid`: one of its card's signatures verified with a trusted key; "
            "`invalid`: none did; `unsigned`: its card has none (a signed card not checked "
            "yet has none of them)."
        ),
    ] = None,
    min_revision: Annotated[
        int | None,
        Query(
            ge=0,
            le=2**63 - 1,
            description="Answer at this registry revision or later (read your own writes): "
            "waits briefly for it, then 503 `revision-not-reached`.",
        ),
    ] = None,
) -> Response:
    """One page of the agents matching every filter, in agent id order (see `_LIST_DESCRIPTION`)."""
    filters = Filters(
        skills=tuple(skill),
        tag=tag,
        protocol=protocol,
        transport=transport,
        labels=tuple(_label(item) for item in label),
        q=q,
        verified=verified,
        signature=signature,
    )
    body = await discovery_page(
        state.read_model,
        state.reader,
        status,
        limit,
        cursor,
        filters,
        min_revision=min_revision,
        wait_s=state.settings.min_revision_wait_s,
    )
    return Response(body, media_type="application/json")


def _label(item: str) -> tuple[str, str]:
    key, _, value = item.partition(":")
    return key, value


@router.get(
    "/{agent_id}",
    response_model=AgentDetail,
    summary="Read one agent",
    responses={**_NOT_FOUND, **ERROR_RESPONSES},
)
async def get_agent(agent_id: AgentIdPath, reader: ReaderDep) -> Response:
    """One agent with its status, lease, live instances, first and last seen, and revision."""
    record = await reader.get_agent(agent_id)
    if record is None:
        raise AgentNotFound(agent_id)
    # built with orjson as the list is, without validating the model a second time: the same
    # bytes as `AgentDetail.from_detail(record)` (tests/unit/test_api_json.py)
    return Response(
        orjson.dumps(detail_json(record), option=orjson.OPT_UTC_Z), media_type="application/json"
    )


async def _card(
    agent_id: str, reader: ReaderDep, if_none_match: str | None, version: A2AVersion | None
) -> Response:
    stored = await reader.get_card(agent_id)
    if stored is None:
        raise AgentNotFound(agent_id)
    body, etag = stored.card, f'"{stored.digest}"'
    if version is not None:
        try:
            converted = converted_card_bytes(stored.card, version)
        except VersionNotOffered as error:
            raise version_not_offered(error) from None
        if converted is not None:  # else served as registered: same version, signed, not A2A
            body, etag = converted, f'"{stored.digest};v={version}"'
    headers = {
        "ETag": etag,
        "Cache-Control": f"max-age={CARD_MAX_AGE_S}",
        "Vary": A2A_VERSION,
    }
    if if_none_match is not None and etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


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
    agent_id: AgentIdPath,
    reader: ReaderDep,
    a2a_version: A2AVersionDep,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """The agent's native card, byte for byte as registered, with its digest as `ETag`.

    With `A2A-Version`, an A2A card in the other version is converted (a signed one never is).
    """
    return await _card(agent_id, reader, if_none_match, a2a_version)


@router.get(
    "/{agent_id}/.well-known/agent-card.json",
    response_class=Response,
    summary="Read an agent's card (A2A well-known path)",
    responses=_CARD_RESPONSES,
)
async def get_card_well_known(
    agent_id: AgentIdPath,
    reader: ReaderDep,
    a2a_version: A2AVersionDep,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """The same as `/card`, where A2A v1.0 clients look for a card under an agent's base URL."""
    return await _card(agent_id, reader, if_none_match, a2a_version)


@router.get(
    "/{agent_id}/.well-known/agent.json",
    response_class=Response,
    summary="Read an agent's card as A2A v0.3 (legacy well-known path)",
    responses=_CARD_RESPONSES,
)
async def get_card_well_known_legacy(
    agent_id: AgentIdPath,
    reader: ReaderDep,
    a2a_version: A2AVersionDep,
    if_none_match: IfNoneMatch = None,
) -> Response:
    """The card at the path A2A clients before v1.0 look at: in v0.3 unless `A2A-Version`
    asks for another version (a non-A2A or signed card comes as registered)."""
    return await _card(agent_id, reader, if_none_match, a2a_version or "0.3")
