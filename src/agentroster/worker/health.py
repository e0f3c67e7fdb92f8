"""The worker's own /healthz, /readyz and /metrics, for a kubelet and Prometheus.

A worker replica runs without the API, so it serves these itself on `AGENTROSTER_WORKER_PORT`
(`agentroster worker` and `agentroster up` start it; `0` turns it off). Ready means the three
things a replica is for work: it is consuming commands, Redis answers, and the reaper's loop
goes round (it may be holding expiries on purpose: that is reported, not unready).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable, Generator
from dataclasses import asdict, dataclass

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agentroster.worker.app import Worker

OK = "ok"
#: What the worker serves: liveness, readiness, Prometheus (the manifests probe these).
HEALTHZ, READYZ, METRICS = "/healthz", "/readyz", "/metrics"
#: How long /readyz waits for Redis' PING.
PING_TIMEOUT_S = 1.0


class HealthPortUnavailable(OSError):
    """The worker's health port is taken (or the address is not this host's)."""


@dataclass(frozen=True, slots=True)
class WorkerReadiness:
    """The three checks of /readyz; each is "ok" or says what is wrong."""

    consuming: str
    redis: str
    reaper: str

    @property
    def ready(self) -> bool:
        """Whether every check is ok."""
        return self.consuming == self.redis == self.reaper == OK


async def _ping(redis: Redis) -> str:
    try:
        await asyncio.wait_for(redis.ping(), PING_TIMEOUT_S)
    except Exception as exc:  # any failure is "unreachable"; the kind says enough
        return f"unreachable ({type(exc).__name__})"
    return OK


def _reaper_check(last_cycle: float | None, stale_after_s: float, now: float) -> str:
    if last_cycle is None:
        return "not started"
    if now - last_cycle > stale_after_s:
        return f"no sweep for {now - last_cycle:.1f}s"
    return OK


async def readiness(
    worker: Worker, *, now: Callable[[], float] = time.monotonic
) -> WorkerReadiness:
    """What /readyz answers for `worker`."""
    settings = worker.settings
    # the loop goes round every sweep interval plus its own work; a few missed rounds is a stall
    stale_after_s = max(settings.reaper_gap_s, 5 * settings.sweep_interval_s)
    return WorkerReadiness(
        consuming=OK if worker.consumer.consuming() else "not consuming commands",
        redis=await _ping(worker.redis),
        reaper=_reaper_check(worker.reaper.last_cycle, stale_after_s, now()),
    )


def health_app(worker: Worker) -> Starlette:
    """The ASGI app of the worker's health and metrics endpoints."""

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        checks = await readiness(worker)
        body = {"ready": checks.ready, "checks": asdict(checks)}
        return JSONResponse(body, status_code=200 if checks.ready else 503)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(worker.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route(HEALTHZ, healthz),
            Route(READYZ, readyz),
            Route(METRICS, metrics),
        ]
    )


class _NoSignals(uvicorn.Server):
    """A uvicorn server that leaves signals to its process (the worker or `up` handles them)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@contextlib.asynccontextmanager
async def serve_health(worker: Worker, host: str, port: int) -> AsyncIterator[int | None]:
    """Serve `health_app(worker)` on host:port while the block runs; yields the bound port.

    Port 0 serves nothing and yields None. A port that is taken fails at once
    (`HealthPortUnavailable`, saying which setting to change).
    """
    if port == 0:
        yield None
        return
    try:
        sock = socket.create_server((host, port), family=_family(host), reuse_port=False)
    except OSError as exc:
        raise HealthPortUnavailable(
            f"the worker's health endpoints cannot listen on {host}:{port} ({exc.strerror}): "
            "set AGENTROSTER_WORKER_PORT to a free port, or 0 to not serve them"
        ) from exc
    config = uvicorn.Config(health_app(worker), log_config=None, access_log=False, lifespan="off")
    server = _NoSignals(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="agentroster-worker-health")
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
