"""API memory and `GET /v1/agents` latency with 0, 100 and 1,000 open event streams.

Run from the repository root: `.venv/bin/python -m bench.streams` (see bench/README.md).

1. Starts a worker (`python -m agentroster worker`) and an API (`python -m agentroster api`),
   each a subprocess of its own, on loopback, under a fresh prefix; registers `--agents`
   agents (cards of about 4 KB) through the broker and waits until the API lists them all.
2. For each stream count of `--streams`: opens that many `GET /v1/events` streams whose
   clients read and discard everything, plus `--idle` streams with `since=0` (replaying the
   whole window) whose clients never read a byte. While one agent joins and leaves every
   `--churn-ms` (live events fanned out to every stream), one keep-alive client sends
   `--requests` sequential `GET /v1/agents?limit=100` and `GET /readyz`; the answers are
   checked (status 200, every agent listed), their latencies kept.
3. Prints, per stream count: the API's RSS (VmRSS) and peak (VmHWM), p50 and p99 of
   `GET /v1/agents`, and the Redis connections the API holds (`CLIENT LIST`, name
   `<prefix>-api`). Then deletes everything it created (its own prefix only).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import aio_pika
import httpx
from redis.asyncio import Redis

from agentroster.contracts import Deregister, Register, Topology
from bench.harness.measure import percentile, rss_kib
from bench.harness.processes import free_port
from bench.harness.processes import service as process
from bench.harness.services import add_service_options, cleanup_prefix, new_prefix
from bench.harness.tables import Column, Table

TABLE = Table(
    Column("streams", 8),
    Column("+idle", 6),
    Column("RSS MiB", 8, ".1f"),
    Column("peak MiB", 9, ".1f"),
    Column("p50 ms", 7, ".2f"),
    Column("p99 ms", 7, ".2f"),
    Column("Redis conns", 12, ".0f"),
)


def card(name: str) -> dict[str, object]:
    """An A2A v1.0 card of about 4 KB (a long description and 8 skills)."""
    return {
        "name": name,
        "description": f"{name}: " + "benchmark agent " * 120,
        "version": "1.0.0",
        "supportedInterfaces": [
            {"url": f"http://127.0.0.1:9/{name}", "protocolBinding": "JSONRPC"}
        ],
        "capabilities": {},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [
            {"id": f"s{n}", "name": f"skill {n}", "description": "d" * 100, "tags": [f"t{n}"]}
            for n in range(8)
        ],
    }


class Publisher:
    """Register and deregister commands onto the broker, with confirms."""

    def __init__(self, connection: aio_pika.abc.AbstractConnection, prefix: str) -> None:
        self.connection = connection
        self.topology = Topology(prefix)
        self.seq: dict[str, int] = {}

    async def open(self) -> None:
        channel = await self.connection.channel(publisher_confirms=True)
        self.exchange = await channel.get_exchange(self.topology.commands_exchange)

    async def _send(self, agent_id: str, kind: str, body: bytes) -> None:
        await self.exchange.publish(
            aio_pika.Message(body, content_type="application/json", type=kind),
            routing_key=f"agent.{agent_id}.{kind}",
        )

    def _next(self, agent_id: str) -> int:
        self.seq[agent_id] = self.seq.get(agent_id, 0) + 1
        return self.seq[agent_id]

    async def register(self, agent_id: str) -> None:
        command = Register(
            agent_id=agent_id,
            instance_id=f"{agent_id}-i",
            seq=self._next(agent_id),
            sent_at=datetime.now(UTC),
            ttl_s=3600,
            card=card(agent_id),
        )
        await self._send(agent_id, "register", command.model_dump_json(exclude_none=True).encode())

    async def deregister(self, agent_id: str) -> None:
        command = Deregister(
            agent_id=agent_id,
            instance_id=f"{agent_id}-i",
            seq=self._next(agent_id),
            reason="bench",
            sent_at=datetime.now(UTC),
        )
        await self._send(
            agent_id, "deregister", command.model_dump_json(exclude_none=True).encode()
        )


async def open_stream(
    port: int, query: str, read: bool
) -> tuple[asyncio.StreamWriter, asyncio.Task[None] | None]:
    """One `GET /v1/events` on a socket of its own; a task reads and discards, unless not."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /v1/events{query} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"stream refused: {head!r}")

    async def discard() -> None:
        while await reader.read(65536):
            pass

    return writer, (asyncio.create_task(discard()) if read else None)


async def api_redis_connections(redis: Redis, prefix: str) -> int:
    return sum(1 for c in await redis.client_list() if c.get("name") == f"{prefix}-api")


async def measure(
    args: argparse.Namespace,
    port: int,
    api_pid: int,
    publisher: Publisher,
    redis: Redis,
    prefix: str,
    streams: int,
) -> dict[str, float]:
    writers: list[asyncio.StreamWriter] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        for start in range(0, streams, 100):
            opened = await asyncio.gather(
                *(open_stream(port, "", True) for _ in range(min(100, streams - start)))
            )
            for writer, task in opened:
                writers.append(writer)
                if task is not None:
                    tasks.append(task)
        for _ in range(args.idle):
            writer, _task = await open_stream(port, "?since=0", False)
            writers.append(writer)
        stop = asyncio.Event()

        async def churn() -> None:
            while not stop.is_set():
                await publisher.register("churn")
                await asyncio.sleep(args.churn_ms / 1000)
                await publisher.deregister("churn")
                await asyncio.sleep(args.churn_ms / 1000)

        churning = asyncio.create_task(churn())
        latencies: list[float] = []
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for _ in range(args.requests):
                started = time.perf_counter()
                response = await client.get("/v1/agents", params={"limit": 100})
                latencies.append(time.perf_counter() - started)
                # every agent, and the churning one while it is registered
                if response.status_code != 200 or len(response.json()["agents"]) < min(
                    100, args.agents
                ):
                    raise RuntimeError(f"unexpected answer: {response.status_code}")
            ready = await client.get("/readyz")
            if ready.status_code != 200:
                raise RuntimeError(f"/readyz: {ready.status_code} {ready.text}")
        connections = await api_redis_connections(redis, prefix)
        rss, peak = rss_kib(api_pid)
        stop.set()
        await churning
        return {
            "streams": streams,
            "rss_mib": rss / 1024,
            "peak_mib": peak / 1024,
            "p50_ms": percentile(latencies, 0.5) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
            "redis_connections": connections,
        }
    finally:
        for writer in writers:
            writer.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def run(args: argparse.Namespace) -> None:
    prefix = new_prefix()
    port = free_port()
    env = {
        **os.environ,
        "AGENTROSTER_PREFIX": prefix,
        "AGENTROSTER_BROKER_URL": args.broker_url,
        "AGENTROSTER_REDIS_URL": args.redis_url,
        "AGENTROSTER_SSE_MAX_STREAMS": str(max(args.streams) + args.idle + 10),
        "AGENTROSTER_LOG_LEVEL": "INFO",  # both say they started at INFO
        "AGENTROSTER_WORKER_PORT": "0",
    }
    redis = Redis.from_url(args.redis_url)
    connection = await aio_pika.connect(args.broker_url)
    python = sys.executable
    try:
        async with (
            process([python, "-m", "agentroster", "worker"], env, "worker started"),
            process(
                [python, "-m", "agentroster", "api", "--port", str(port)],
                env,
                "Uvicorn running",
            ) as api_pid,
        ):
            publisher = Publisher(connection, prefix)
            await publisher.open()
            for k in range(args.agents):
                await publisher.register(f"agent-{k:05d}")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                while True:
                    page = (await client.get("/v1/agents", params={"limit": 1000})).json()
                    if len(page["agents"]) >= min(args.agents, 1000):
                        break
                    await asyncio.sleep(0.2)
            print(f"prefix {prefix}: {args.agents} agents, API pid {api_pid}")
            print(TABLE.header())
            for streams in args.streams:
                m = await measure(args, port, api_pid, publisher, redis, prefix, streams)
                print(
                    TABLE.row(
                        streams,
                        args.idle,
                        m["rss_mib"],
                        m["peak_mib"],
                        m["p50_ms"],
                        m["p99_ms"],
                        m["redis_connections"],
                    )
                )
    finally:
        await cleanup_prefix(connection, redis, prefix)
        await connection.close()
        await redis.aclose()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--streams",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[0, 100, 1000],
        help="reading streams per measurement, comma-separated (0,100,1000)",
    )
    parser.add_argument("--idle", type=int, default=20, help="streams that never read (20)")
    parser.add_argument("--agents", type=int, default=500, help="registered agents (500)")
    parser.add_argument("--requests", type=int, default=1000, help="GET /v1/agents each (1000)")
    parser.add_argument("--churn-ms", type=float, default=20.0, help="between events (20)")
    add_service_options(parser)
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(run(parse_args()))
