"""HTTP writes: register, heartbeat and deregister an instance, published onto the broker.

The API does not write the registry: it publishes the same command an AMQP agent would
(`api/gateway.py`) with the key's principal as identity, and the worker applies it. So an HTTP
agent owns its agent exactly as an AMQP agent does, and every invariant holds for both.

Every write needs a key that may write the agent (`api.auth`); refusals come before anything
is published. The answer is 202 `accepted` once the broker confirmed the command, or with
`?wait=true` the worker's outcome: 200 `applied`, or the rejection as 403/409/422.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentroster.api.auth import Principal, authenticate, authorize_write
from agentroster.api.deps import AgentIdPath, StateDep
from agentroster.api.dispatch import publish, seq_clock
from agentroster.api.errors import ERROR_RESPONSES, ErrorResponse
from agentroster.api.gateway import Outcome
from agentroster.api.write_answers import MAX_SEQ, heartbeat_in_s, write_answer
from agentroster.contracts.commands import (
    MAX_ENDPOINTS,
    Command,
    Deregister,
    Heartbeat,
    Labels,
    Register,
    Seconds,
)
from agentroster.contracts.endpoints import Endpoint
from agentroster.contracts.ids import INSTANCE_ID_PATTERN
from agentroster.registry.prepare import TtlBounds, non_finite_at

router = APIRouter(prefix="/v1/agents", tags=["writes"])

C = TypeVar("C", Register, Heartbeat, Deregister)

Seq = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_SEQ,
        description="Your own message number for this instance (1, 2, 3...). Absent: the API "
        "numbers by its clock in microseconds, which orders one client's writes through one "
        "API process; send your own for strict order across API replicas. Do not mix both "
        "for one instance: a clock number is far above any count.",
    ),
]


class RegisterBody(BaseModel):
    """Register (or refresh) an instance: the agent's card and its lease."""

    model_config = ConfigDict(extra="forbid")

    card: dict[str, Any] = Field(description="The agent's native card (A2A v0.3, v1.0, generic).")
    ttl_s: Seconds | None = Field(
        default=None, description="Lease length (absent: AGENTROSTER_HTTP_TTL_S); bounded."
    )
    interval_s: Seconds | None = Field(default=None, description="Your heartbeat interval.")
    idle_ttl_s: Seconds | None = Field(
        default=None, description="Stay `idle` this long after the last lease expired."
    )
    endpoints: list[Endpoint] | None = Field(default=None, max_length=MAX_ENDPOINTS)
    labels: Labels | None = None
    verify: bool | None = Field(
        default=None, description="Ask the registry to fetch the card and verify it."
    )
    seq: Seq | None = None


class HeartbeatBody(BaseModel):
    """Renew an instance's lease."""

    model_config = ConfigDict(extra="forbid")

    ttl_s: Seconds | None = Field(
        default=None, description="Lease length (absent: AGENTROSTER_HTTP_TTL_S); bounded."
    )
    card_digest: str | None = Field(
        default=None,
        max_length=128,
        description="The digest of the card you run (see the Heartbeat command); absent: not "
        "stated, no stale-card count.",
    )
    seq: Seq | None = None


class WriteAnswer(BaseModel):
    """What a client needs next: its instance, the seq used, and when to heartbeat."""

    agent_id: str
    instance_id: str
    seq: int = Field(description="The seq the command carried.")
    ttl_s: float | None = Field(description="The lease the registry grants (bounded).")
    heartbeat_in_s: float | None = Field(
        description="Renew within this many seconds (also `Retry-After`, in whole seconds)."
    )
    outcome: Literal["accepted", "applied"] = Field(
        description="`accepted`: the broker took the command, the worker applies it shortly; "
        "`applied`: the worker applied it (`?wait=true`)."
    )
    reason: str | None = Field(
        default=None,
        description="With `applied`: the store's outcome (`applied`, `duplicate`, `stale-card`).",
    )


InstancePath = Annotated[
    str,
    Path(
        description="One running process of the agent: 1-128 of A-Z, a-z, 0-9, `._:@-`.",
        pattern=INSTANCE_ID_PATTERN,
        examples=["weather-7d9f-5c2a1b3e"],
    ),
]
Wait = Annotated[
    bool,
    Query(
        description="Wait (at most AGENTROSTER_WRITE_WAIT_S) until the worker applied or "
        "rejected the command; without an answer by then, 202 `accepted`."
    ),
]

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": WriteAnswer, "description": "Applied (`?wait=true`)."},
    202: {
        "model": WriteAnswer,
        "description": "Accepted: the broker confirmed the command.",
        "headers": {
            "Retry-After": {
                "description": "Seconds until the next heartbeat is due.",
                "schema": {"type": "string"},
            }
        },
    },
    400: {
        "model": ErrorResponse,
        "description": "The body cannot be read as JSON text (e.g. it is not UTF-8).",
    },
    401: {"model": ErrorResponse, "description": "No key, or an unknown or revoked one."},
    403: {
        "model": ErrorResponse,
        "description": "The key may not write this agent, or (`?wait=true`) the agent is "
        "owned by another identity.",
    },
    404: {"model": ErrorResponse, "description": "Heartbeat (`?wait=true`) of an unknown agent."},
    409: {"model": ErrorResponse, "description": "`quota-exceeded` (`?wait=true`)."},
    413: {"model": ErrorResponse, "description": "The body is over AGENTROSTER_MAX_MESSAGE_BYTES."},
    **ERROR_RESPONSES,
    503: {
        "model": ErrorResponse,
        "description": "`broker-unavailable`: the command was not taken; retry after "
        "`Retry-After` seconds.",
    },
}


async def writer(
    agent_id: AgentIdPath, principal: Annotated[Principal | None, Depends(authenticate)]
) -> Principal:
    """The caller's principal, if its key may write the agent (401 or 403 otherwise)."""
    return authorize_write(principal, agent_id)


WriterDep = Annotated[Principal, Depends(writer)]


def _answer(
    command: Command,
    outcome: Outcome,
    *,
    ttl_s: float | None,
    next_s: float | None,
    created: bool = False,
) -> Response:
    """The answer (`WriteAnswer`), or the error a worker's outcome means (`write_answer`)."""
    ids = {"agent_id": command.agent_id, "instance_id": command.instance_id, "seq": command.seq}
    status, body, headers = write_answer(ids, outcome, ttl_s=ttl_s, next_s=next_s, created=created)
    return Response(body, status, headers or None, media_type="application/json")


def _build(model: type[C], **fields: Any) -> C:
    """The command, or 422 for what only the whole command can check."""
    try:
        return model(**fields)
    except ValidationError as exc:
        raise RequestValidationError(_in_body(exc)) from None


def _in_body(exc: ValidationError) -> list[dict[str, Any]]:
    """The errors of a command model, located in the request body."""
    return [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_input=False)]


def _bounds(state: StateDep) -> TtlBounds:
    return TtlBounds(state.settings.ttl_min_s, state.settings.ttl_max_s)


async def _register(
    state: StateDep,
    request: Request,
    principal: Principal,
    agent_id: str,
    instance_id: str,
    body: RegisterBody,
    wait: bool,
    created: bool = False,
) -> Response:
    ttl_s = body.ttl_s or state.settings.http_ttl_s
    fields: dict[str, Any] = {}
    if body.verify:  # sent only when asked: the contract's default is False
        fields["verify"] = True
    if (where := non_finite_at(body.card)) is not None:
        raise RequestValidationError(
            [{"loc": ("body", "card", *where.split(".")), "msg": "NaN and Infinity are not JSON"}]
        )
    command = _build(
        Register,
        agent_id=agent_id,
        instance_id=instance_id,
        seq=body.seq or seq_clock(request).next(),
        ttl_s=ttl_s,
        interval_s=body.interval_s,
        idle_ttl_s=body.idle_ttl_s,
        card=body.card,
        endpoints=body.endpoints,
        labels=body.labels,
        sent_at=datetime.now(UTC),
        **fields,
    )
    outcome = await publish(state.gateway, command, principal, wait=wait)
    granted = _bounds(state).clamp_ms(ttl_s) / 1000
    return _answer(
        command,
        outcome,
        ttl_s=granted,
        next_s=heartbeat_in_s(granted, body.interval_s),
        created=created,
    )


@router.put(
    "/{agent_id}/instances/{instance_id}",
    response_model=WriteAnswer,
    status_code=202,
    summary="Register an instance",
    responses=_RESPONSES,
)
async def register_instance(
    agent_id: AgentIdPath,
    instance_id: InstancePath,
    body: RegisterBody,
    principal: WriterDep,
    state: StateDep,
    request: Request,
    wait: Wait = False,
) -> Response:
    """Start or refresh the instance's lease with the agent's card; heartbeat before
    `Retry-After` seconds pass."""
    return await _register(state, request, principal, agent_id, instance_id, body, wait)


@router.post(
    "/{agent_id}/instances",
    response_model=WriteAnswer,
    status_code=202,
    summary="Register a new instance (the registry names it)",
    responses={**_RESPONSES, 201: {"model": WriteAnswer, "description": "Applied (`?wait`)."}},
)
async def create_instance(
    agent_id: AgentIdPath,
    body: RegisterBody,
    principal: WriterDep,
    state: StateDep,
    request: Request,
    wait: Wait = False,
) -> Response:
    """Register an instance with a generated `instance_id` (in the answer and `Location`)."""
    instance_id = f"http-{uuid.uuid4().hex[:16]}"
    answer = await _register(
        state, request, principal, agent_id, instance_id, body, wait, created=True
    )
    answer.headers["Location"] = f"/v1/agents/{agent_id}/instances/{instance_id}"
    return answer


@router.post(
    "/{agent_id}/instances/{instance_id}/heartbeat",
    response_model=WriteAnswer,
    status_code=202,
    summary="Renew an instance's lease",
    responses=_RESPONSES,
)
async def heartbeat_instance(
    agent_id: AgentIdPath,
    instance_id: InstancePath,
    principal: WriterDep,
    state: StateDep,
    request: Request,
    body: HeartbeatBody | None = None,
    wait: Wait = False,
) -> Response:
    """Renew the lease (an empty body is fine); heartbeat again before `Retry-After`."""
    body = body or HeartbeatBody()
    ttl_s = body.ttl_s or state.settings.http_ttl_s
    command = _build(
        Heartbeat,
        agent_id=agent_id,
        instance_id=instance_id,
        seq=body.seq or seq_clock(request).next(),
        ttl_s=ttl_s,
        card_digest=body.card_digest or "",
        sent_at=datetime.now(UTC),
    )
    outcome = await publish(state.gateway, command, principal, wait=wait)
    granted = _bounds(state).clamp_ms(ttl_s) / 1000
    return _answer(command, outcome, ttl_s=granted, next_s=heartbeat_in_s(granted))


@router.delete(
    "/{agent_id}/instances/{instance_id}",
    response_model=WriteAnswer,
    status_code=202,
    summary="Deregister an instance",
    responses=_RESPONSES,
)
async def deregister_instance(
    agent_id: AgentIdPath,
    instance_id: InstancePath,
    principal: WriterDep,
    state: StateDep,
    request: Request,
    reason: Annotated[str, Query(max_length=256, pattern=r"^[^\x00-\x1f\x7f]*$")] = "shutdown",
    seq: Annotated[int | None, Query(ge=1, le=MAX_SEQ)] = None,
    wait: Wait = False,
) -> Response:
    """End the instance's lease (its agent leaves when it was the last instance)."""
    command = _build(
        Deregister,
        agent_id=agent_id,
        instance_id=instance_id,
        seq=seq or seq_clock(request).next(),
        reason=reason,
        sent_at=datetime.now(UTC),
    )
    outcome = await publish(state.gateway, command, principal, wait=wait)
    return _answer(command, outcome, ttl_s=None, next_s=None)
