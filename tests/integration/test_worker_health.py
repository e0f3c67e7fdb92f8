"""The worker's own /healthz, /readyz and /metrics (issue 15): what a kubelet probes."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from agentroster.settings import Settings
from agentroster.worker import Worker, create_worker
from agentroster.worker.health import serve_health
from tests.faults.proxy import TcpProxy
from tests.helpers import WorkerProcess, free_port

pytestmark = pytest.mark.usefixtures("cleanup")


async def _readiness_becomes(
    http: httpx.AsyncClient, ready: bool, *, timeout: float = 15.0
) -> dict[str, Any]:
    """Poll /readyz until it says `ready` (the timeout only guards against a hang)."""

    async def answered() -> dict[str, Any]:
        while True:
            response = await http.get("/readyz")
            body: dict[str, Any] = response.json()
            if body["ready"] is ready:
                assert response.status_code == (200 if ready else 503)
                return body
            await asyncio.sleep(0.05)

    try:
        return await asyncio.wait_for(answered(), timeout)
    except TimeoutError:
        raise AssertionError(f"/readyz never became ready={ready}") from None


@pytest.fixture
async def redis_proxy(settings: Settings) -> AsyncIterator[TcpProxy]:
    proxy = await TcpProxy.to(settings.redis_url)
    yield proxy
    await proxy.close()


@pytest.fixture
async def proxied_worker(settings: Settings, redis_proxy: TcpProxy) -> AsyncIterator[Worker]:
    through_proxy = settings.model_copy(update={"redis_url": redis_proxy.url(settings.redis_url)})
    async with create_worker(through_proxy) as worker:
        yield worker


async def test_readyz_follows_redis_and_consuming(
    proxied_worker: Worker, redis_proxy: TcpProxy
) -> None:
    async with (
        serve_health(proxied_worker, "127.0.0.1", free_port()) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
    ):
        body = await _readiness_becomes(http, True)
        assert body["checks"] == {"consuming": "ok", "redis": "ok", "reaper": "ok"}

        redis_proxy.cut()
        body = await _readiness_becomes(http, False)
        assert body["checks"]["redis"].startswith("unreachable")
        assert (await http.get("/healthz")).status_code == 200  # alive, just not ready

        redis_proxy.restore()
        await _readiness_becomes(http, True)

        await proxied_worker.consumer.stop_consuming()
        body = await _readiness_becomes(http, False)
        assert body["checks"]["consuming"] == "not consuming commands"
        await proxied_worker.consumer.consume()
        await _readiness_becomes(http, True)

        metrics = await http.get("/metrics")
        assert metrics.status_code == 200
        assert "agentroster_commands_total" in metrics.text


async def test_port_zero_serves_nothing(worker: Worker) -> None:
    async with serve_health(worker, "127.0.0.1", 0) as port:
        assert port is None


async def test_agentroster_worker_serves_its_health_port(settings: Settings) -> None:
    port = free_port()
    process = await WorkerProcess(settings, health_port=port).start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            await _readiness_becomes(http, True)
    finally:
        await process.stop()


async def test_a_taken_health_port_stops_the_worker_with_a_clear_error(settings: Settings) -> None:
    """Exit status 2 and a line naming the setting, not a traceback of the error."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "agentroster",
            "worker",
            env={
                **os.environ,
                "AGENTROSTER_BROKER_URL": settings.broker_url,
                "AGENTROSTER_REDIS_URL": settings.redis_url,
                "AGENTROSTER_PREFIX": settings.prefix,
                "AGENTROSTER_WORKER_PORT": str(port),
            },
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in err.decode()
    assert "AGENTROSTER_WORKER_PORT" in err.decode()
    assert "HealthPortUnavailable" not in err.decode()  # said in a line, not as a traceback
