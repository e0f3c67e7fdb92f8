"""`agentroster up`: worker and API in one process, as the README runs it."""

from __future__ import annotations

import asyncio
import signal

import httpx

from agentroster.client import Announcement
from agentroster.settings import Settings
from tests.helpers import EventCollector, registry_server
from tests.integration.agents import a2a_card


async def test_up_runs_worker_and_api_in_one_process(
    settings: Settings, events: EventCollector
) -> None:
    """An agent registered over RabbitMQ is served by the same process's HTTP API."""
    async with registry_server(settings) as server:
        agent = await Announcement(
            a2a_card("served"), settings.broker_url, prefix=settings.prefix, ttl_s=60
        ).open()
        await events.wait_until(lambda evs: any(e.agent_id == "served" for e in evs))
        async with httpx.AsyncClient(base_url=server.url) as http:
            found = (await http.get("/v1/agents/served")).json()
            assert found["status"] == "live"
            metrics = (await http.get("/metrics")).text
            assert 'agentroster_commands_total{kind="register",outcome="applied"} 1.0' in metrics
        await agent.close()
        server.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(server.process.wait(), 30) == 0
