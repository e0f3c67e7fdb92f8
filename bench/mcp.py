"""MCP at /mcp: a discover_agents call against GET /v1/agents, and write -> list_changed.

An API process (discovery from memory) serves a registry of its own prefix holding `--agents`
agents of the discovery population, written straight into Redis with the worker's script. The
official MCP client then calls `discover_agents` with one random skill (limit 20) `--calls`
times (`call_tool`, which checks each result against the tool's output schema, and the same
request sent raw, without that check), and the same queries go to `GET /v1/agents` (whose page
cache answers a query string it has seen at this revision). Last, one session that listed
resources waits for `notifications/resources/list_changed` after each of `--writes` new
registrations: the time from the write's commit to the notification's arrival, through the
outbox follower.

    .venv/bin/python -m bench.mcp --agents 2000 --calls 300 --writes 100
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections.abc import Sequence

import aio_pika
import httpx
from mcp import ClientSession, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.session import RequestResponder
from redis.asyncio import Redis

from agentroster.registry.prepare import Limits, prepare
from agentroster.store.redis_store import RedisStore
from bench.discovery.population import SKILLS, Population, skill_id
from bench.discovery.run import READY_TIMEOUT_S
from bench.harness.measure import percentile
from bench.harness.processes import Service, free_port, wait_ready
from bench.harness.services import add_service_options, cleanup_prefix, new_prefix, service_env

#: Registrations written per script call while populating.
BATCH = 200


async def populate(store: RedisStore, population: Population, first: int, last: int) -> None:
    """Write agents first..last-1 with the worker's script, `BATCH` per call."""
    for start in range(first, last, BATCH):
        commands = [population.register_command(k) for k in range(start, min(start + BATCH, last))]
        await store.apply([prepare(key, body, None, Limits()) for key, _, body in commands])


async def run(args: argparse.Namespace) -> None:
    """Start the API, populate, time the calls and the notifications; print the figures."""
    prefix = new_prefix()
    redis = Redis.from_url(args.redis_url)
    connection = await aio_pika.connect(args.broker_url)
    store = RedisStore(redis, prefix)
    population = Population(1)
    population.grow(args.agents + args.writes)
    await populate(store, population, 0, args.agents)
    port = free_port()
    api = Service(
        "api",
        [sys.executable, "-m", "agentroster", "api", "--host", "127.0.0.1", "--port", str(port)],
        service_env(args.broker_url, args.redis_url, prefix, "INFO"),
        ready="Uvicorn running",
    )
    rng = random.Random(7)
    skills = [skill_id(rng.randrange(SKILLS)) for _ in range(args.calls)]
    figures: dict[str, list[float]] = {
        "MCP call_tool": [],
        "MCP tools/call, raw": [],
        "HTTP GET /v1/agents": [],
    }
    notified: list[float] = []
    changed = asyncio.Event()

    async def on_message(
        message: RequestResponder[types.ServerRequest, types.ClientResult]
        | types.ServerNotification
        | Exception,
    ) -> None:
        if isinstance(message, types.ServerNotification) and isinstance(
            message.root, types.ResourceListChangedNotification
        ):
            changed.set()

    try:
        await api.start()
        base_url = f"http://127.0.0.1:{port}"
        await wait_ready(base_url, READY_TIMEOUT_S)
        async with (
            httpx.AsyncClient(base_url=base_url, timeout=30) as http,
            streamable_http_client(f"{base_url}/mcp", http_client=http) as (read, write, _),
            ClientSession(read, write, message_handler=on_message) as session,
        ):
            await session.initialize()
            await session.list_tools()  # the client keeps the output schemas it validates
            for skill in skills:
                started = time.perf_counter()
                result = await session.call_tool(
                    "discover_agents", {"skills": [skill], "limit": 20}
                )
                figures["MCP call_tool"].append((time.perf_counter() - started) * 1000)
                assert not result.isError, result.content
            for skill in skills:  # the same request without the client's output-schema check
                request = types.CallToolRequest(
                    params=types.CallToolRequestParams(
                        name="discover_agents", arguments={"skills": [skill], "limit": 20}
                    )
                )
                started = time.perf_counter()
                result = await session.send_request(
                    types.ClientRequest(request), types.CallToolResult
                )
                figures["MCP tools/call, raw"].append((time.perf_counter() - started) * 1000)
                assert not result.isError, result.content
            for skill in skills:
                started = time.perf_counter()
                answer = await http.get("/v1/agents", params={"skill": skill, "limit": 20})
                figures["HTTP GET /v1/agents"].append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200, answer.text
            await session.list_resources()  # the session now hears of every change
            for k in range(args.agents, args.agents + args.writes):
                changed.clear()
                await populate(store, population, k, k + 1)
                written = time.perf_counter()
                await asyncio.wait_for(changed.wait(), 30)
                notified.append((time.perf_counter() - written) * 1000)
    finally:
        await api.stop()
        await cleanup_prefix(connection, redis, prefix)
        await redis.aclose()
        await connection.close()
    print(f"MCP, {args.agents} agents, one random skill, limit 20 (ms per call):")
    for name, values in figures.items():
        print(
            f"  {name:22} p50 {percentile(values, 0.5):6.2f}  p99 {percentile(values, 0.99):6.2f}"
            f"  max {max(values):6.2f}  ({len(values)} calls)"
        )
    print(
        f"  {'write -> list_changed':22} p50 {percentile(notified, 0.5):6.2f}"
        f"  p99 {percentile(notified, 0.99):6.2f}  max {max(notified):6.2f}"
        f"  ({len(notified)} writes)"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options: agents, calls, writes, and the services."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.mcp",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--agents", type=int, default=2000, help="agents registered (2000)")
    parser.add_argument("--calls", type=int, default=300, help="discovery calls each way (300)")
    parser.add_argument("--writes", type=int, default=100, help="registrations notified (100)")
    add_service_options(parser)
    args = parser.parse_args(argv)
    if args.agents < 1 or args.calls < 1 or args.writes < 1:
        parser.error("--agents, --calls and --writes must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Measure and print the figures."""
    asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
