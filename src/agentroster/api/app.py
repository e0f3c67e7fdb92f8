"""Assemble the read API: routes, one error shape, metrics, and a lifespan that connects.

Built by `create_api(settings)`; nothing connects until the ASGI server runs the lifespan,
which opens the Redis client (unless one was passed in: then the caller owns it) and closes
it, with the broker probe's connection, at shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from agentroster import __version__
from agentroster.api.deps import ApiState
from agentroster.api.errors import install_error_handlers
from agentroster.api.metrics import ApiMetrics, MetricsMiddleware
from agentroster.api.probes import PROBE_TIMEOUT_S, BrokerProbe
from agentroster.api.routes import agents, events, health, wellknown
from agentroster.settings import Settings
from agentroster.store.outbox import Outbox
from agentroster.store.reader import RegistryReader

DESCRIPTION = """\
Discovery of the agents in an agentroster registry.

Every error has one shape: `{"error": {"code", "message", "details"}}`. Responses carry the
registry `revision`: list at revision R, then follow events after R (list + watch).
"""


def create_api(
    settings: Settings,
    *,
    redis: Redis | None = None,
    registries: Sequence[CollectorRegistry] = (),
) -> FastAPI:
    """Build the API from settings (nothing connects until the lifespan runs).

    `redis` replaces the client the API would open (the caller then closes it);
    `registries` are exposed by /metrics after the API's own (e.g. the worker's, when both
    run in one process).
    """
    metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = redis or Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=PROBE_TIMEOUT_S,
            socket_timeout=5.0,
            health_check_interval=30,
        )
        broker = BrokerProbe(settings.broker_url)
        app.state.agentroster = ApiState(
            settings=settings,
            redis=client,
            reader=RegistryReader(client, settings.prefix, text_budget=settings.query_text_budget),
            outbox=Outbox(client, settings.prefix),
            broker=broker,
            registries=(metrics.registry, *registries),
        )
        try:
            yield
        finally:
            app.state.agentroster = None
            await broker.close()
            if redis is None:
                await client.aclose()

    app = FastAPI(
        title="agentroster",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.include_router(agents.router)
    app.include_router(health.router)
    app.include_router(wellknown.router)
    app.include_router(events.router)
    return app
