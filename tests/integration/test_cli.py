"""`agentroster up`: worker and API in one process, as the README runs it."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

import httpx

from agentroster.client import Announcement
from agentroster.settings import Settings
from tests.helpers import EventCollector
from tests.integration.agents import a2a_card


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_up_runs_worker_and_api_in_one_process(
    settings: Settings, events: EventCollector
) -> None:
    """An agent registered over RabbitMQ is served by the same process's HTTP API."""
    port = free_port()
    env = {
        **os.environ,
        "AGENTROSTER_BROKER_URL": settings.broker_url,
        "AGENTROSTER_REDIS_URL": settings.redis_url,
        "AGENTROSTER_PREFIX": settings.prefix,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agentroster",
        "up",
        "--port",
        str(port),
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    try:

        async def serving() -> None:
            assert process.stderr is not None
            while line := (await process.stderr.readline()).decode():
                if "Uvicorn running" in line:
                    return
            raise AssertionError("agentroster up exited before serving")

        await asyncio.wait_for(serving(), 30)
        agent = await Announcement(
            a2a_card("served"), settings.broker_url, prefix=settings.prefix, ttl_s=60
        ).open()
        await events.wait_until(lambda evs: any(e.agent_id == "served" for e in evs))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            found = (await http.get("/v1/agents/served")).json()
            assert found["status"] == "live"
            metrics = (await http.get("/metrics")).text
            assert 'agentroster_commands_total{kind="register",outcome="applied"} 1.0' in metrics
        await agent.close()
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
