"""The gauges the dashboard and alerts read: commands backlog (worker), open event streams (API)."""

from __future__ import annotations

import asyncio

import aio_pika
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agentroster.settings import Settings
from agentroster.worker import create_worker
from tests.helpers import registry_server


def gauge(exposition: str, name: str) -> float:
    """The value of an unlabelled gauge in a Prometheus text exposition."""
    for family in text_string_to_metric_families(exposition):
        if family.name == name:
            (sample,) = family.samples
            return float(sample.value)
    raise AssertionError(f"{name} is not exposed")


async def test_the_backlog_gauge_is_what_the_reaper_last_read(
    settings: Settings, cleanup: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three ready commands: the gauge says 3, whether or not the reaper holds for them."""
    worker = create_worker(settings)
    connection = await aio_pika.connect(settings.broker_url)
    try:
        channel = await connection.channel()
        queue = worker.names.commands_queue
        await channel.declare_queue(queue, durable=True)
        for n in range(3):
            await channel.default_exchange.publish(aio_pika.Message(b"%d" % n), routing_key=queue)

        async def up(timeout: float = 0) -> bool:
            return True

        # the worker is not started: its connections' checks say "up", the depth is real
        monkeypatch.setattr(worker.consumer, "connected", lambda: True)
        monkeypatch.setattr(worker.broker, "ping", up)
        assert await worker.reaper_hold_reason() is None
        assert worker.metrics.registry.get_sample_value("agentroster_commands_backlog") == 3

        monkeypatch.setattr(worker.settings, "reaper_backlog_limit", 2)
        assert await worker.reaper_hold_reason() == f"3 commands wait in {queue}"
        assert worker.metrics.registry.get_sample_value("agentroster_commands_backlog") == 3
    finally:
        await worker.backlog.close()
        await worker.redis.aclose()
        await connection.close()


async def test_the_streams_gauge_counts_open_event_streams(
    settings: Settings, cleanup: None
) -> None:
    """0, then 1 while a client follows /v1/events, then 0 again once it left."""
    async with (
        registry_server(settings) as server,
        httpx.AsyncClient(base_url=server.url, timeout=30) as client,
    ):
        metrics = await client.get("/metrics")
        assert gauge(metrics.text, "agentroster_sse_streams") == 0
        async with client.stream("GET", "/v1/events", params={"since": 0}) as response:
            assert response.status_code == 200
            metrics = await client.get("/metrics")
            assert gauge(metrics.text, "agentroster_sse_streams") == 1
        # the server notices the closed connection on its own time: no event to await here
        async with asyncio.timeout(30):
            while gauge((await client.get("/metrics")).text, "agentroster_sse_streams"):
                await asyncio.sleep(0.05)
