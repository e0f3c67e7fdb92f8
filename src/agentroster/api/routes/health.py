"""Operations: /healthz (the process is up), /readyz (Redis, RabbitMQ answer), /metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from agentroster.api.deps import StateDep
from agentroster.api.metrics import exposition
from agentroster.api.models import Health, Readiness, Safeguards
from agentroster.api.probes import OK, check_redis, hide_addresses, url_hosts

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
    """Ready when Redis answers PING and RabbitMQ answers on an AMQP connection; else 503.

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
    if not state.settings.readyz_show_addresses:
        hosts = url_hosts(state.settings.redis_url, state.settings.broker_url)
        checks = {name: hide_addresses(check, hosts) for name, check in checks.items()}
    readiness = Readiness(
        ready=redis == OK and rabbitmq == OK,
        checks=checks,
        safeguards=safeguards,
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
