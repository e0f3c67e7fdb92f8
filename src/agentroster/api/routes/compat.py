"""oo-a2a-registry's heartbeat, so its unchanged `RegistryClient` registers agents here.

`POST /.well-known/agents/heartbeat` (0.2) and `POST /registry/heartbeat` (0.1) take its
`{"agent_card", "interval"}` and answer 202 `{"status": "ok", "verified"}` with `Retry-After`,
the interval the registry wants. Each heartbeat is a `register` command of the card's agent
(`api/peer_cards.py` says which agent and instance) with a TTL of 3 intervals, sent through
the gateway and awaited, so a refusal reaches the client as a 4xx it logs.

A key: `AGENTROSTER_COMPAT_WRITES_REQUIRE_KEY` (default on) makes one mandatory; the client
sends it as the password of its registry URL (`http://agent:<key>@registry:8000`, which httpx
turns into Basic auth). Off, a heartbeat without a key has no identity, and one with a key is
still checked and speaks for it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentroster.api import dispatch
from agentroster.api.auth import Principal, authenticate, authorize_write
from agentroster.api.deps import StateDep
from agentroster.api.errors import ERROR_RESPONSES, ErrorResponse
from agentroster.api.peer_cards import (
    STALE_MULTIPLIER,
    bounded_interval,
    effective_url,
    heartbeat_agent_id,
    heartbeat_instance_id,
    without_nulls,
)
from agentroster.contracts.commands import Register
from agentroster.store.reader import RegistryReader

router = APIRouter(tags=["compat"])


class HeartbeatRequest(BaseModel):
    """oo-a2a-registry's heartbeat body: the agent's A2A card (v0.3 or v1.0) and interval."""

    model_config = ConfigDict(extra="ignore")

    agent_card: dict[str, Any] = Field(
        description="An A2A card: `name`, and `url` (v0.3) or `supportedInterfaces` (v1.0). "
        "`null` members are dropped, as oo-a2a-registry's model reads them as absent."
    )
    interval: int = Field(
        default=60,
        ge=1,
        le=2**31 - 1,
        description="Seconds between heartbeats; the lease lasts 3 intervals.",
    )


class HeartbeatResponse(BaseModel):
    """oo-a2a-registry's heartbeat answer."""

    status: str = Field(default="ok", examples=["ok"])
    verified: bool = Field(
        description="Whether the registry fetched the agent's well-known card and it matched."
    )


def _invalid(where: tuple[str, ...], message: str) -> RequestValidationError:
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body", *where), "msg": message}]
    )


def _parse(body: bytes) -> tuple[HeartbeatRequest, dict[str, Any], str]:
    """The request, its card without nulls, and the card's URL; 422 naming what is wrong."""
    try:
        request = HeartbeatRequest.model_validate_json(body)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_input=False)]
        raise RequestValidationError(errors) from None
    card: dict[str, Any] = without_nulls(request.agent_card)
    if not isinstance(card.get("name"), str):
        raise _invalid(("agent_card", "name"), "the card needs a name")
    url = effective_url(card)
    if url is None:
        raise _invalid(
            ("agent_card", "url"),
            "the card needs `url` (A2A v0.3) or `supportedInterfaces[0].url` (A2A v1.0)",
        )
    return request, card, url


async def _principal(request: Request, agent_id: str, require_key: bool) -> Principal | None:
    """The key's principal if it may write `agent_id`; None without a key where none is needed."""
    principal = await authenticate(request)
    if principal is None and not require_key:
        return None
    return authorize_write(principal, agent_id)


async def discovered_verified(reader: RegistryReader, agent_id: str) -> bool:
    """Whether discovery shows the agent as verified (False until the registry records it)."""
    record = await reader.get_agent(agent_id)
    if record is None:
        return False
    return record.verified is True


_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "model": HeartbeatResponse,
        "description": "Registered (or renewed). `Retry-After`: seconds until the next heartbeat.",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
    401: {"model": ErrorResponse, "description": "A key is needed, or it is not valid."},
    403: {"model": ErrorResponse, "description": "The key may not write this agent."},
    409: {"model": ErrorResponse, "description": "`quota-exceeded`: too many agents."},
    413: {"model": ErrorResponse, "description": "The body is too large."},
    429: {"model": ErrorResponse, "description": "The key is over its rate (Retry-After)."},
    **ERROR_RESPONSES,
}
_BODY_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": HeartbeatRequest.model_json_schema()}},
    }
}


async def heartbeat(request: Request, state: StateDep) -> Response:
    """Register or renew the agent of an oo-a2a-registry heartbeat (see the module docstring)."""
    settings = state.settings
    hb, card, url = _parse(await request.body())
    try:
        agent_id = heartbeat_agent_id(card["name"], url)
    except ValueError as exc:
        raise _invalid(("agent_card", "name"), str(exc)) from None
    principal = await _principal(request, agent_id, settings.compat_writes_require_key)
    interval = bounded_interval(hb.interval, settings.ttl_min_s, settings.ttl_max_s)
    fields: dict[str, Any] = {
        "agent_id": agent_id,
        "instance_id": heartbeat_instance_id(url),
        "seq": dispatch.seq_clock(request).next(),
        "ttl_s": interval * STALE_MULTIPLIER,
        "interval_s": interval,
        "card": card,
        "sent_at": datetime.now(UTC),
        "verify": True,  # oo-a2a-registry verifies every agent it registers
    }
    command = Register.model_validate(fields)
    dispatch.check(command, principal, settings.limits())
    await dispatch.send(state.gateway, command, principal, wait=True)
    verified = await discovered_verified(state.reader, agent_id)
    return Response(
        orjson.dumps({"status": "ok", "verified": verified}),
        status_code=202,
        media_type="application/json",
        headers={"Retry-After": str(interval)},
    )


for _path, _summary in (
    ("/.well-known/agents/heartbeat", "Heartbeat of an oo-a2a-registry client"),
    ("/registry/heartbeat", "Heartbeat of an oo-a2a-registry client (0.1 path)"),
):
    router.add_api_route(
        _path,
        heartbeat,
        methods=["POST"],
        status_code=202,
        summary=_summary,
        response_class=Response,
        responses=_RESPONSES,
        openapi_extra=_BODY_SCHEMA,
    )
