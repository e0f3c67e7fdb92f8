"""a2a-registry's JSON-RPC 2.0 methods at `POST /jsonrpc`, with its params and result shapes.

`register_agent`, `get_agent`, `list_agents`, `search_agents` and `unregister_agent` answer as
a2a-registry 0.1.5 does. Reads come from the registry (Redis); writes are commands through the
gateway, awaited, behind a key allowed to write the agent. An agent's id is its card name's
slug (a2a-registry's is the name itself: `get_agent` and `unregister_agent` take either); a
registration is the agent's instance `jsonrpc` with a lease of `AGENTROSTER_TTL_MAX_S` (24 h by
default): register again to renew it. Framing and error codes: `api/jsonrpc.py`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.exceptions import RedisError

from agentroster.api import dispatch
from agentroster.api.auth import Principal, Unauthenticated, authenticate, authorize_write
from agentroster.api.deps import ApiState, StateDep
from agentroster.api.errors import ApiError, ErrorResponse
from agentroster.api.jsonrpc import (
    AGENT_NOT_FOUND,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    UNAVAILABLE,
    BadCall,
    Call,
    RpcError,
    error,
    parse,
    result,
)
from agentroster.api.peer_cards import JSONRPC_INSTANCE, without_nulls
from agentroster.contracts.commands import Deregister, Register
from agentroster.contracts.ids import derive_agent_id
from agentroster.registry.terms import Filters
from agentroster.store.reader import ListStatus

log = logging.getLogger(__name__)
router = APIRouter(tags=["compat"])

#: The statuses a2a-registry's "registered" stands for: the agent can be reached.
AVAILABLE: tuple[ListStatus, ...] = ("live", "idle")
#: Most agents `list_agents` answers (then `truncated: true`): one call's work is bounded.
MAX_LISTED = 10_000
#: Agents read per round trip while a method walks the registry.
PAGE = 1000
#: Fields a2a-registry requires of a card (`protocol_version` may be spelt `protocolVersion`).
REQUIRED_FIELDS = ("name", "description", "url", "version", "protocol_version")


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegisterParams(_Params):
    """`register_agent`: the agent's card (a2a-registry's snake_case card, or an A2A one)."""

    agent_card: dict[str, Any]


class AgentIdParams(_Params):
    """`get_agent`, `unregister_agent`: the agent's id (or its card's name)."""

    agent_id: str = Field(min_length=1, max_length=256)


class ListParams(_Params):
    """`list_agents` takes no parameter."""


class SearchParams(_Params):
    """`search_agents`: text in name, description or skills; skill ids (any of them)."""

    query: str = Field(default="", max_length=256)
    skills: list[str] | None = Field(default=None, max_length=20)
    #: Accepted for a2a-registry's clients; the search is by keyword whatever they ask.
    search_mode: str = Field(default="SEARCH_MODE_VECTOR", max_length=64)
    similarity_threshold: float = Field(default=0.5, ge=0, le=1)
    max_results: int = Field(default=10, ge=1, le=1000)


class Session:
    """One HTTP request's calls: its key is read once, when a call first needs it."""

    def __init__(self, request: Request, state: ApiState) -> None:
        self.request = request
        self.state = state
        self._principal: Principal | None = None
        self._failure: ApiError | None = None
        self._authenticated = False

    async def principal(self) -> Principal | None:
        """The key's principal (None without a key); a key that is not valid raises, each time."""
        if not self._authenticated:
            self._authenticated = True
            try:
                self._principal = await authenticate(self.request)
            except ApiError as exc:
                self._failure = exc
        if self._failure is not None:
            raise self._failure
        return self._principal

    async def writer(self, agent_id: str) -> Principal:
        """The principal, if its key may write `agent_id` (else 401 or 403)."""
        return authorize_write(await self.principal(), agent_id)

    async def may_read(self) -> None:
        """Refuse a read without a valid key where reads need one
        (`AGENTROSTER_READ_REQUIRES_KEY`); elsewhere reads never look at the key."""
        if not self.state.settings.read_requires_key:
            return
        if await self.principal() is None:
            raise Unauthenticated("reads need an API key: Authorization: Bearer <key>")


def _agent_id(name: str) -> str:
    """The registry's id of an agent a2a-registry names `name` (an id stays itself)."""
    try:
        return derive_agent_id(name)
    except ValueError as exc:
        raise RpcError(INVALID_PARAMS, {"agent_id": str(exc)}) from None


def _not_found(agent_id: str) -> RpcError:
    return RpcError(AGENT_NOT_FOUND, {"agent_id": agent_id})


async def register_agent(session: Session, params: RegisterParams) -> dict[str, Any]:
    """Register (or replace) the agent of a card; it holds for `AGENTROSTER_TTL_MAX_S`."""
    card: dict[str, Any] = without_nulls(params.agent_card)
    for name in REQUIRED_FIELDS:
        if name not in card and not (name == "protocol_version" and "protocolVersion" in card):
            raise RpcError(INVALID_PARAMS, {"agent_card": name}, f"Missing required field: {name}")
    if not isinstance(card["name"], str):
        raise RpcError(INVALID_PARAMS, {"agent_card": "name must be a string"})
    if "preferred_transport" not in card and "preferredTransport" not in card:
        card["preferred_transport"] = "JSONRPC"  # as a2a-registry stores it
    agent_id = _agent_id(card["name"])
    principal = await session.writer(agent_id)
    settings = session.state.settings
    command = Register(
        agent_id=agent_id,
        instance_id=JSONRPC_INSTANCE,
        seq=dispatch.seq_clock(session.request).next(),
        ttl_s=settings.ttl_max_s,
        card=card,
        sent_at=datetime.now(UTC),
    )
    dispatch.check(command, principal, settings.limits())
    await dispatch.send(session.state.gateway, command, principal, wait=True)
    return {
        "success": True,
        "agent_id": agent_id,
        "message": "Agent registered successfully",
        "transport": "JSONRPC",
    }


async def get_agent(session: Session, params: AgentIdParams) -> dict[str, Any]:
    """The card of an available agent, as registered."""
    await session.may_read()
    agent_id = _agent_id(params.agent_id)
    reader = session.state.reader
    record = await reader.get_agent(agent_id)
    stored = await reader.get_card(agent_id) if record and record.status in AVAILABLE else None
    if stored is None:
        raise _not_found(agent_id)
    return {"agent_card": orjson.Fragment(stored.card), "found": True}


async def _walk(session: Session, filters: Filters, limit: int) -> tuple[list[str], bool]:
    """Ids of available agents matching `filters`, at most `limit`, in id order; and whether
    there were more."""
    found: list[str] = []
    for status in AVAILABLE:
        cursor: str | None = None
        while len(found) <= limit:
            size = min(PAGE, limit + 1 - len(found))
            page = await session.state.reader.list_agents(status, size, cursor, filters)
            found.extend(agent.agent_id for agent in page.agents)
            cursor = page.next_cursor
            if cursor is None:
                break
    return sorted(found[:limit]), len(found) > limit


async def _cards(session: Session, agent_ids: list[str]) -> list[orjson.Fragment]:
    cards = await session.state.reader.cards(agent_ids)
    return [orjson.Fragment(card) for card in cards if card is not None]


async def list_agents(session: Session, params: ListParams) -> dict[str, Any]:
    """Every available agent's card (at most `MAX_LISTED`, then `truncated: true`)."""
    await session.may_read()
    ids, more = await _walk(session, Filters(), MAX_LISTED)
    agents = await _cards(session, ids)
    answer: dict[str, Any] = {"agents": agents, "count": len(agents), "transport": "JSONRPC"}
    if more:
        answer["truncated"] = True
    return answer


async def search_agents(session: Session, params: SearchParams) -> dict[str, Any]:
    """Available agents with `query` in their name, description or skill ids and names, and
    any one of `skills`; by keyword, as a2a-registry's fallback search."""
    await session.may_read()
    q = params.query.strip() or None
    # a2a-registry matches any one of the skills; a filter of several matches all of them
    each: list[tuple[str, ...]] = [(skill,) for skill in params.skills or []] or [()]
    ids: set[str] = set()
    for skills in each:
        filters = Filters(skills=skills, q=q)
        found, _ = await _walk(session, filters, params.max_results)
        ids.update(found)
    agents = await _cards(session, sorted(ids)[: params.max_results])
    return {
        "agents": agents,
        "count": len(agents),
        "query": params.query,
        "skills_filter": params.skills,
        "search_mode": "SEARCH_MODE_KEYWORD",
        "transport": "JSONRPC",
    }


async def unregister_agent(session: Session, params: AgentIdParams) -> dict[str, Any]:
    """End the agent's JSON-RPC registration (its instance `jsonrpc`)."""
    agent_id = _agent_id(params.agent_id)
    principal = await session.writer(agent_id)
    record = await session.state.reader.get_agent(agent_id)
    if record is None or all(i.instance_id != JSONRPC_INSTANCE for i in record.instances):
        raise _not_found(agent_id)
    command = Deregister(
        agent_id=agent_id,
        instance_id=JSONRPC_INSTANCE,
        seq=dispatch.seq_clock(session.request).next(),
        reason="unregistered",
        sent_at=datetime.now(UTC),
    )
    await dispatch.send(session.state.gateway, command, principal, wait=True)
    return {"success": True, "message": "Agent unregistered successfully", "agent_id": agent_id}


METHODS: dict[str, tuple[type[_Params], Any]] = {
    "register_agent": (RegisterParams, register_agent),
    "get_agent": (AgentIdParams, get_agent),
    "list_agents": (ListParams, list_agents),
    "search_agents": (SearchParams, search_agents),
    "unregister_agent": (AgentIdParams, unregister_agent),
}


def _params(model: type[_Params], params: dict[str, Any] | list[Any]) -> _Params:
    """Bind by name (an object) or by position (an array), as a2a-registry's server does."""
    if isinstance(params, list):
        names = list(model.model_fields)
        if len(params) > len(names):
            raise RpcError(INVALID_PARAMS, {"params": f"at most {len(names)} positional"})
        params = dict(zip(names, params, strict=False))
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        data = [
            {"parameter": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
            for e in exc.errors(include_input=False)
        ]
        raise RpcError(INVALID_PARAMS, data) from None


async def _run(session: Session, call: Call) -> dict[str, Any]:
    """The answer of one call (its error, if it fails)."""
    try:
        entry = METHODS.get(call.method)
        if entry is None:
            raise RpcError(METHOD_NOT_FOUND, {"method": call.method[:100], "methods": [*METHODS]})
        model, method = entry
        return result(call.id, await method(session, _params(model, call.params)))
    except RpcError as exc:
        return error(call.id, exc)
    except ApiError as exc:
        return error(call.id, RpcError.from_api_error(exc))
    except RedisError as exc:
        log.warning("Redis unreachable during JSON-RPC %s: %s", call.method, exc)
        unavailable = {"code": "store-unavailable", "retry_after_s": 1}
        return error(call.id, RpcError(UNAVAILABLE, unavailable))
    except Exception:
        log.exception("unexpected error in JSON-RPC %s", call.method)
        return error(call.id, RpcError(INTERNAL_ERROR))


async def _answer(session: Session, item: Call | BadCall) -> dict[str, Any] | None:
    """The response to one element, or None for a notification (never answered)."""
    if isinstance(item, BadCall):
        return error(item.id, item.error)
    answer = await _run(session, item)
    return None if item.notification else answer


_JSONRPC_DESCRIPTION = """a2a-registry's JSON-RPC 2.0 API: `register_agent` ({"agent_card"}),
`get_agent` ({"agent_id"}), `list_agents`, `search_agents` ({"query", "skills", "max_results"}),
`unregister_agent` ({"agent_id"}); params by name or by position. Batches of at most 20 calls
(run in order); notifications are not answered (a body of notifications only: 204). Writes need
an API key that may write the agent (Bearer, or Basic's password). Errors: the JSON-RPC codes
(-32700, -32600, -32601, -32602, -32603) and server errors -32001 agent not found, -32002
unauthenticated, -32003 forbidden, -32004 rate limited, -32005 unavailable (retry), -32006
refused by the registry, each with `data` saying why. A body over
`AGENTROSTER_MAX_MESSAGE_BYTES`: HTTP 413."""


@router.post(
    "/jsonrpc",
    summary="a2a-registry's JSON-RPC 2.0 API",
    description=_JSONRPC_DESCRIPTION,
    response_class=Response,
    responses={
        200: {
            "content": {"application/json": {"schema": {"type": ["object", "array"]}}},
            "description": "The JSON-RPC response (or, for a batch, the array of them).",
        },
        204: {"description": "Every request was a notification."},
        413: {"model": ErrorResponse, "description": "The body is too large."},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": ["object", "array"]}}},
        }
    },
)
async def jsonrpc(request: Request, state: StateDep) -> Response:
    """Dispatch a JSON-RPC request or batch (see the description)."""
    body = await request.body()
    session = Session(request, state)
    calls = parse(body)
    if isinstance(calls, list):
        answers = [a for item in calls if (a := await _answer(session, item)) is not None]
        payload: Any = answers or None
    else:
        payload = await _answer(session, calls)
    if payload is None:
        return Response(status_code=204)
    return Response(orjson.dumps(payload), media_type="application/json")
