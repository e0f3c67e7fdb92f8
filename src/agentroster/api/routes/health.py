"""Operations: /healthz (the process is up), /readyz (Redis, RabbitMQ answer, the read model
caught up), /metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from agentroster.api.deps import ApiState, StateDep
from agentroster.api.metrics import exposition
from agentroster.api.models import Health, Readiness, ReadModelStatus, Safeguards
from agentroster.api.probes import OK, check_redis, hide_addresses, url_hosts
from agentroster.api.read_model import ReadModel

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=Health, summary="Liveness")
async def healthz() -> Health:
    """The process is up and serving; says nothing about Redis or RabbitMQ."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness",
    responses={503: {"model": Readiness, "description": "A dependency does not answer."}},
)
async def readyz(state: StateDep) -> JSONResponse:
    """Ready when Redis answers PING, RabbitMQ answers on an AMQP connection and the read model
    has loaded and caught up (it reports its revision and lag); else 503.

    `safeguards` shows the holds on expiry in force (they do not make the API unready). A
    failed check says what went wrong without the dependency's address, unless
    `AGENTROSTER_READYZ_SHOW_ADDRESSES` is set.
    """
    (redis, holds), rabbitmq = await asyncio.gather(
        check_redis(state.redis, state.reader.keys), state.broker.check()
    )
    safeguards = None
    if holds is not None:
        recovery, held, brake = holds
        safeguards = Safeguards(
            recovery_ms_left=recovery, brake_held_leases=held, brake_ms_left=brake
        )
    checks = {"redis": redis, "rabbitmq": rabbitmq}
    model = state.read_model
    read_model = await _read_model_status(state, model) if model is not None else None
    if read_model is not None:
        checks["read_model"] = OK if read_model.ready else "loading"
    if not state.settings.readyz_show_addresses:
        hosts = url_hosts(state.settings.redis_url, state.settings.broker_url)
        checks = {name: hide_addresses(check, hosts) for name, check in checks.items()}
    readiness = Readiness(
        ready=all(check == OK for check in checks.values()),
        checks=checks,
        safeguards=safeguards,
        read_model=read_model,
    )
    return JSONResponse(
        readiness.model_dump(mode="json"), status_code=200 if readiness.ready else 503
    )


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Text exposition."}},
)
async def metrics(state: StateDep) -> Response:
    """The API's request metrics, then those of every registry passed to `create_api`."""
    return Response(exposition(state.registries), media_type=CONTENT_TYPE_LATEST)


async def _read_model_status(state: ApiState, model: ReadModel) -> ReadModelStatus:
    try:
        lag: int | None = max(0, await state.reader.revision() - model.revision)
    except Exception:  # Redis' own check says what went wrong
        lag = None
    return ReadModelStatus(
        ready=model.ready,
        revision=model.revision,
        lag=lag if model.ready else None,
        agents=len(model.index),
        loads=model.loads,
    )
