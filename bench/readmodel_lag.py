"""Lag of the API's read model: from an outbox write to the change being visible in the API.

An API process (discovery from memory) follows a registry of its own prefix; this process
writes one registration every `--every-ms` straight into Redis with the worker's script (the
outbox write commits when `apply` returns), then asks `GET /v1/agents?min_revision=R` for the
revision R of that write, which answers as soon as the read model has applied it. The figure
includes one HTTP round trip, so the same request is timed again once visible (the baseline);
the read model's own lag is about the difference.

    .venv/bin/python -m bench.readmodel_lag --writes 300 --every-ms 30
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence

import aio_pika
import httpx
from redis.asyncio import Redis

from agentroster.registry.prepare import Limits, prepare
from agentroster.store.redis_store import RedisStore
from bench.discovery.population import Population
from bench.discovery.run import READY_TIMEOUT_S
from bench.harness.measure import percentile
from bench.harness.processes import Service, free_port, wait_ready
from bench.harness.services import add_service_options, cleanup_prefix, new_prefix, service_env


async def run(args: argparse.Namespace) -> None:
    """Start the API, write `--writes` registrations, time each until the API shows it."""
    prefix = new_prefix()
    redis = Redis.from_url(args.redis_url)
    connection = await aio_pika.connect(args.broker_url)
    store = RedisStore(redis, prefix)
    population = Population(1)
    population.grow(args.writes)
    port = free_port()
    api = Service(
        "api",
        [sys.executable, "-m", "agentroster", "api", "--host", "127.0.0.1", "--port", str(port)],
        service_env(args.broker_url, args.redis_url, prefix, "INFO"),
        ready="Uvicorn running",
    )
    lags: list[float] = []
    baseline: list[float] = []
    try:
        await api.start()
        base_url = f"http://127.0.0.1:{port}"
        await wait_ready(base_url, READY_TIMEOUT_S)
        revision = int(await redis.get(store.keys.revision) or 0)
        async with httpx.AsyncClient(base_url=base_url) as http:
            for k in range(args.writes):
                key, _, body = population.register_command(k)
                prepared = prepare(key, body, None, Limits())
                result = await store.apply([prepared])
                written = time.perf_counter()
                revision += result.events
                params: dict[str, str | int] = {
                    "status": "all",
                    "limit": 1,
                    "min_revision": revision,
                }
                answer = await http.get("/v1/agents", params=params)
                seen = time.perf_counter()
                assert answer.status_code == 200, answer.text
                await http.get("/v1/agents", params=params)
                baseline.append((time.perf_counter() - seen) * 1000)
                lags.append((seen - written) * 1000)
                await asyncio.sleep(args.every_ms / 1000)
    finally:
        await api.stop()
        await cleanup_prefix(connection, redis, prefix)
        await redis.aclose()
        await connection.close()
    print(f"read model lag, {args.writes} writes every {args.every_ms} ms (ms, with one HTTP GET):")
    for name, values in (("write -> visible", lags), ("HTTP GET baseline", baseline)):
        print(
            f"  {name:18} p50 {percentile(values, 0.5):6.2f}  p99 {percentile(values, 0.99):6.2f}"
            f"  max {max(values):6.2f}"
        )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options: how many writes, how far apart, and the services."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.readmodel_lag",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--writes", type=int, default=300, help="registrations written (300)")
    parser.add_argument("--every-ms", type=float, default=30.0, help="pause between (30)")
    add_service_options(parser)
    args = parser.parse_args(argv)
    if args.writes < 1 or args.every_ms < 0:
        parser.error("--writes must be positive, --every-ms not negative")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Measure and print the lag."""
    asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
