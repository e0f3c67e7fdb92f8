"""Assemble the read API: routes, one error shape, metrics, and a lifespan that connects.

Built by `create_api(settings)`; nothing connects until the ASGI server runs the lifespan,
which opens the Redis client (unless one was passed in: then the caller owns it), starts the
process's one outbox follower (which feeds every event stream and the in-memory read model that
discovery is answered from) and the MCP server at /mcp (whose sessions and notifications live
inside the lifespan), and at shutdown stops them and closes the broker probe's
connection and the client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis
from starlette.routing import Route

from agentroster import __version__, tracing
from agentroster.api.auth import READ_RESPONSES, ReadAccess
from agentroster.api.body_limit import BodyLimitMiddleware
from agentroster.api.deps import ApiState
from agentroster.api.errors import NoSniffMiddleware, install_error_handlers
from agentroster.api.fast_get_agent import FastGetAgent
from agentroster.api.fast_heartbeat import FastHeartbeat
from agentroster.api.follower import OutboxFollower
from agentroster.api.gateway import CommandGateway, create_gateway
from agentroster.api.key_verifier import KeyVerifier
from agentroster.api.mcp_server import MCP_PATH, McpEndpoint, McpService
from agentroster.api.metrics import ApiMetrics, MetricsMiddleware
from agentroster.api.page_cache import PageCache
from agentroster.api.params import reject_repeated_query_parameters
from agentroster.api.probes import PROBE_TIMEOUT_S, BrokerProbe
from agentroster.api.read_model import ReadModel
from agentroster.api.routes import (
    agents,
    compat,
    events,
    health,
    jsonrpc,
    keys,
    ui,
    wellknown,
    writes,
)
from agentroster.api.streams import StreamHub
from agentroster.metrics_export import exporting_metrics
from agentroster.settings import Settings
from agentroster.store.api_keys import KeyStore
from agentroster.store.outbox import Outbox
from agentroster.store.reader import RegistryReader

DESCRIPTION = """\
Discovery of the agents in an agentroster registry.

Every error has one shape: `{"error": {"code", "message", "details"}}`. Responses carry the
registry `revision`: list at revision R, then follow events after R (list + watch).

A live dashboard of the registry is served at [/ui/](/ui/): the agents with their status, the
filters of `GET /v1/agents`, each agent's card, and the events as they happen.
"""


def create_api(
    settings: Settings,
    *,
    redis: Redis | None = None,
    registries: Sequence[CollectorRegistry] = (),
    gateway: CommandGateway | None = None,
) -> FastAPI:
    """Build the API from settings (nothing connects until the lifespan runs).

    `redis` replaces the client the API would open (the caller then closes it);
    `registries` are exposed by /metrics after the API's own (e.g. the worker's, when both
    run in one process); `gateway` replaces the broker gateway of HTTP writes (tests).
    """
    metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = redis or Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=PROBE_TIMEOUT_S,
            socket_timeout=5.0,
            health_check_interval=30,
            # operators (and tests) tell the API's connections apart in CLIENT LIST
            client_name=f"{settings.prefix}-api",
        )
        broker = BrokerProbe(settings.broker_url)
        outbox = Outbox(client, settings.prefix)
        follower = OutboxFollower(outbox)
        await follower.start()
        reader = RegistryReader(client, settings.prefix, text_budget=settings.query_text_budget)
        read_model = None
        if settings.discovery_source == "memory":
            read_model = ReadModel(
                reader,
                follower,
                outbox,
                scan_budget=settings.memory_scan_budget,
                max_waiting=settings.min_revision_max_waiting,
            )
            await read_model.start()
        key_store = KeyStore(client, settings.prefix)
        bootstrap = settings.bootstrap_admin_key
        streams = StreamHub(
            follower,
            max_streams=settings.sse_max_streams,
            buffer_events=settings.sse_buffer_events,
        )
        metrics.sse_streams.set_function(lambda: streams.open_streams)
        writes = gateway or create_gateway(
            settings.broker_url,
            prefix=settings.prefix,
            wait_s=settings.write_wait_s,
            batch_max=settings.http_heartbeat_batch,
            batch_max_bytes=settings.max_message_bytes,
        )
        await writes.start()
        mcp = McpService(settings, reader, read_model, follower)
        app.state.agentroster = ApiState(
            settings=settings,
            redis=client,
            reader=reader,
            outbox=outbox,
            broker=broker,
            streams=streams,
            read_model=read_model,
            registries=(metrics.registry, *registries),
            keys=key_store,
            key_verifier=KeyVerifier(
                key_store.get,
                cache_s=settings.key_cache_s,
                rate_per_s=settings.key_rate_per_s,
                burst=settings.key_rate_burst,
                bootstrap=bootstrap.get_secret_value() if bootstrap else None,
            ),
            gateway=writes,
            mcp=mcp,
        )
        try:
            # pushed over OpenTelemetry too when OTEL_* variables ask (metrics_export.py)
            async with (
                mcp.run(),  # the SDK's session manager lives inside the lifespan
                exporting_metrics(app.state.agentroster.registries),
            ):
                yield
        finally:
            app.state.agentroster = None
            if read_model is not None:
                await read_model.stop()
            await follower.stop()
            await writes.stop()
            await broker.close()
            if redis is None:
                await client.aclose()

    app = FastAPI(
        title="agentroster",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(reject_repeated_query_parameters)],
        # the API makes its own spans (api/http_tracing.py, opt-in) and metrics (/metrics,
        # metrics_export.py): FastAPI's native telemetry would add a second set, and it asks
        # the global OpenTelemetry providers on every request (a few % of a read's CPU)
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(app)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(NoSniffMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_message_bytes)
    # in front of the rest: a hit skips them (it counts itself in the request metrics)
    app.add_middleware(PageCache, metrics=metrics)
    if not tracing.enabled():  # with tracing, requests take the routes, which make spans
        # outermost but for tracing: a common heartbeat (api/fast_heartbeat.py) and a common
        # read of one agent (api/fast_get_agent.py) skip FastAPI
        app.add_middleware(
            FastHeartbeat, metrics=metrics, max_body_bytes=settings.max_message_bytes
        )
        app.add_middleware(FastGetAgent, metrics=metrics)
    if tracing.enabled():  # outermost: a SERVER span per request (api/http_tracing.py)
        from agentroster.api.http_tracing import instrument

        instrument(app)
    # discovery needs a key when AGENTROSTER_READ_REQUIRES_KEY says so; health stays open
    app.include_router(agents.router, dependencies=[ReadAccess], responses=READ_RESPONSES)
    app.include_router(health.router)
    app.include_router(wellknown.router)
    app.include_router(events.router, dependencies=[ReadAccess], responses=READ_RESPONSES)
    app.include_router(keys.router)
    app.include_router(writes.router)
    app.include_router(compat.router)
    app.include_router(jsonrpc.router)
    # the MCP server (api/mcp_server): Streamable HTTP, every method on the one path
    app.router.routes.append(Route(MCP_PATH, McpEndpoint(), include_in_schema=False))
    app.include_router(ui.router)
    app.mount("/ui", ui.ui_files(), name="ui")
    return app
