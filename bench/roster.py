"""`Roster.find` at 100,000 agents, and the lag from an outbox write to a Roster's change.

Run from the repository root: `.venv/bin/python -m bench.roster` (see bench/README.md).

1. **find** (no services): a Roster syncs `--agents` synthetic agents from a fake API
   (`httpx.MockTransport` serving list pages of 1,000, then an idle event stream), so the
   real list and index code runs. Then each query below is called for `--seconds` and its
   per-call latency kept; printed as p50 and p99 in microseconds, with the matches per call.
2. **lag** (RabbitMQ and Redis; skipped with `--no-lag`): an API process
   (`python -m agentroster api`) under a fresh prefix and a Roster following it. `--lag`
   registrations, one every `--interval-ms`, are written straight into the store (the apply
   script, which writes the outbox in the same call: no broker, no worker on the path); the
   lag is from just before the script call to the Roster applying the `joined` event
   (`wait_for`). Printed as p50 and p99 in milliseconds. Deletes what it created.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import aio_pika
import httpx
import orjson
from redis.asyncio import Redis

from agentroster.client import Agent, Roster
from agentroster.registry.prepare import Limits, prepare
from agentroster.store.redis_store import RedisStore
from bench.harness.measure import percentile, rss_kib
from bench.harness.processes import free_port
from bench.harness.processes import service as process
from bench.harness.services import add_service_options, cleanup_prefix, new_prefix
from bench.harness.tables import Column, Table

SKILLS, TAGS, TEAMS, REGIONS = 1000, 50, 20, 5
FIND_TABLE = Table(
    Column("query", 24, align="<"),
    Column("calls", 8, ","),
    Column("matches", 8, ".0f"),
    Column("p50 µs", 10, ".1f"),
    Column("p99 µs", 10, ".1f"),
)


def synthetic(n: int, rng: random.Random) -> dict[str, Any]:
    """One listed agent: 3 of 1,000 skills, tags, two labels, an a2a/http or mcp/amqp endpoint."""
    skills = rng.sample(range(SKILLS), 3)
    tags = sorted({f"tag-{s % TAGS}" for s in skills})
    mcp = n % 5 == 0
    endpoint = (
        {"transport": "amqp", "protocol": "mcp", "exchange": "", "routing_key": f"q.a{n}"}
        if mcp
        else {"transport": "http", "protocol": "a2a", "url": f"https://a{n}.example/a2a"}
    )
    return {
        "agent_id": f"a{n:06d}",
        "status": "offline" if n % 10 == 9 else "live",
        "revision": n + 1,
        "card_digest": f"sha256:{n:064x}",
        "live_instances": 0 if n % 10 == 9 else 1,
        "lease": {"ttl_s": 30.0},
        "agent": {
            "name": f"Agent {n}",
            "description": f"Synthetic agent number {n} for the roster benchmark",
            "version": "1.0.0",
            "card_format": "a2a/1.0",
            "endpoints": [endpoint],
            "skills": [
                {"id": f"skill-{s}", "name": f"Skill {s}", "tags": [f"tag-{s % TAGS}"]}
                for s in skills
            ],
            "tags": tags,
            "labels": {"team": f"team-{n % TEAMS}", "region": f"region-{n % REGIONS}"},
        },
    }


def fake_api(count: int) -> httpx.MockTransport:
    """Pages of 1,000 synthetic agents at revision `count`, then an event stream that idles."""
    rng = random.Random(12)
    pages: dict[str | None, bytes] = {}
    agents = [synthetic(n, rng) for n in range(count)]
    for start in range(0, count, 1000):
        cursor = None if start == 0 else agents[start - 1]["agent_id"]
        last = start + 1000 >= count
        body = {
            "revision": count,
            "agents": agents[start : start + 1000],
            "next_cursor": None if last else agents[start + 999]["agent_id"],
        }
        pages[cursor] = orjson.dumps(body)
    idle = asyncio.Event()

    async def stream() -> Any:
        yield b": ping\r\n\r\n"
        await idle.wait()

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/agents":
            return httpx.Response(200, content=pages[request.url.params.get("cursor")])
        return httpx.Response(200, content=stream())

    return httpx.MockTransport(handle)


async def bench_find(agents: int, seconds: float) -> None:
    api = fake_api(agents)
    before = rss_kib()[0] / 1024
    started = time.perf_counter()
    async with Roster("http://fake", http_transport=api) as roster:
        gc.collect()
        held = rss_kib()[0] / 1024 - before
        print(
            f"synced {len(roster):,} agents in {time.perf_counter() - started:.1f} s; "
            f"RSS +{held:.0f} MiB ({held * 1024 * 1024 / max(len(roster), 1):,.0f} bytes/agent)"
        )
        rng = random.Random(7)
        queries: list[tuple[str, Callable[[], list[Agent] | Agent | None]]] = [
            ("get(agent_id)", lambda: roster.get(f"a{rng.randrange(agents):06d}")),
            ("skill", lambda: roster.find(skill=f"skill-{rng.randrange(SKILLS)}")),
            (
                "skill + label",
                lambda: roster.find(
                    skill=f"skill-{rng.randrange(SKILLS)}",
                    labels={"region": f"region-{rng.randrange(REGIONS)}"},
                ),
            ),
            (
                "2 skills",
                lambda: roster.find(
                    skill=[f"skill-{rng.randrange(SKILLS)}", f"skill-{rng.randrange(SKILLS)}"]
                ),
            ),
            ("tag", lambda: roster.find(tag=f"TAG-{rng.randrange(TAGS)}")),
            ("protocol=mcp (broad)", lambda: roster.find(protocol="mcp")),
            ("q (text scan)", lambda: roster.find(q=f"number {rng.randrange(agents)}")),
            ("status=live, no filter", lambda: roster.find()),
        ]
        print(FIND_TABLE.header())
        for name, call in queries:
            latencies: list[float] = []
            matches = 0
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                t0 = time.perf_counter_ns()
                found = call()
                latencies.append((time.perf_counter_ns() - t0) / 1000)
                matches += len(found) if isinstance(found, list) else int(found is not None)
            calls = len(latencies)
            p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
            print(FIND_TABLE.row(name, calls, matches / calls, p50, p99))


def register_body(agent_id: str) -> bytes:
    card = {
        "name": agent_id,
        "description": "lag benchmark agent",
        "version": "1.0.0",
        "supportedInterfaces": [
            {"url": f"http://127.0.0.1:9/{agent_id}", "protocolBinding": "JSONRPC"}
        ],
        "capabilities": {},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [{"id": "echo", "name": "Echo", "description": "echo", "tags": ["t"]}],
    }
    body = {
        "agent_id": agent_id,
        "instance_id": "i",
        "seq": 1,
        "ttl_s": 3600,
        "card": card,
        "sent_at": datetime.now(UTC).isoformat(),
    }
    return orjson.dumps(body)


async def bench_lag(args: argparse.Namespace) -> None:
    prefix = new_prefix()
    port = free_port()
    env = {
        **os.environ,
        "AGENTROSTER_BROKER_URL": args.broker_url,
        "AGENTROSTER_REDIS_URL": args.redis_url,
        "AGENTROSTER_PREFIX": prefix,
    }
    redis = Redis.from_url(args.redis_url)
    store = RedisStore(redis, prefix)
    argv = [sys.executable, "-m", "agentroster", "api", "--port", str(port)]
    try:
        async with (
            process(argv, env, "Uvicorn running"),
            Roster(f"http://127.0.0.1:{port}") as roster,
        ):
            lags: list[float] = []
            for n in range(args.lag):
                agent_id = f"lag-{n}"
                prepared = prepare(
                    f"agent.{agent_id}.register", register_body(agent_id), None, Limits()
                )
                t0 = time.perf_counter()
                await store.apply([prepared])
                await roster.wait_for(agent_id, timeout=30)
                lags.append((time.perf_counter() - t0) * 1000)
                await asyncio.sleep(args.interval_ms / 1000)
            print(
                f"outbox write -> Roster change, {len(lags)} registrations every "
                f"{args.interval_ms} ms: p50 {percentile(lags, 0.5):.2f} ms, "
                f"p99 {percentile(lags, 0.99):.2f} ms, max {max(lags):.2f} ms"
            )
    finally:
        connection = await aio_pika.connect(args.broker_url)
        await cleanup_prefix(connection, redis, prefix)
        await connection.close()
        await redis.aclose()


async def run(args: argparse.Namespace) -> None:
    await bench_find(args.agents, args.seconds)
    if args.lag:
        await bench_lag(args)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--agents", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=1.0, help="per find query")
    parser.add_argument("--lag", type=int, default=300, help="registrations (0: skip)")
    parser.add_argument("--interval-ms", type=float, default=20.0)
    add_service_options(parser)
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(run(parse_args()))
