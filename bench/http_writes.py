"""HTTP heartbeats against AMQP heartbeats, in one run: rate, and API CPU per HTTP heartbeat.

A worker and an API (`agentroster worker`, `agentroster api`, each a process of its own) serve a
registry of the run's prefix. `--agents` agents register over HTTP (with the bootstrap admin
key) and as many more over AMQP; then, alternating `--repeat` times:

- HTTP: `--heartbeats` heartbeats `POST /v1/agents/<id>/instances/<i>/heartbeat` from
  `--concurrency` keep-alive connections of this process (the load generator, not measured),
  each answered 202 once the broker confirmed it. The API process's CPU (/proc/<pid>/stat)
  over the phase, divided by the heartbeats, is its CPU per HTTP heartbeat.
- AMQP: as many heartbeats published by this process with publisher confirms (as a Beacon
  does), `--concurrency` in flight.

Each phase ends when the worker applied its last heartbeat (a heartbeat with `?wait=true` sent
after the rest answers once its batch committed, and the worker applies in queue order), so the
applied rate of both paths is the worker's, end to end. The goal for the API is 0.15 ms of CPU
per HTTP heartbeat; oo-a2a-registry's own server took 0.31 ms on this machine (issue 13).

    .venv/bin/python -m bench.http_writes --agents 1000 --heartbeats 20000 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import aio_pika
import httpx
import orjson
from redis.asyncio import Redis

from agentroster.contracts import Topology
from bench.harness.measure import load_average, process_cpu_s
from bench.harness.processes import Service, free_port, wait_ready
from bench.harness.services import (
    add_service_options,
    check_cleanup,
    cleanup_left_behind,
    cleanup_prefix,
    new_prefix,
    service_env,
)
from bench.harness.tables import Column, Table

KEY = "bench-http-writes-bootstrap-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
#: Goal of issue 13, and what oo-a2a-registry's server took per heartbeat on this machine.
GOAL_MS = 0.15
OO_A2A_REGISTRY_MS = 0.31
TTL_S = 600  # no lease may expire during a run
START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Phase:
    """One measured phase: what was sent, how long, and the CPU the processes used."""

    path: str
    heartbeats: int
    accepted_s: float  # until the last 202 (HTTP) or confirm (AMQP)
    applied_s: float  # until the worker applied the last one
    api_cpu_s: float
    worker_cpu_s: float
    client_cpu_s: float  # this process, the load generator: is it the bottleneck?

    @property
    def accepted_per_s(self) -> float:
        """Heartbeats per second until the last was accepted."""
        return self.heartbeats / self.accepted_s

    @property
    def applied_per_s(self) -> float:
        """Heartbeats per second until the worker applied the last."""
        return self.heartbeats / self.applied_s

    @property
    def api_ms(self) -> float:
        """API CPU milliseconds per heartbeat."""
        return self.api_cpu_s * 1000 / self.heartbeats

    @property
    def client_ms(self) -> float:
        """Load generator CPU milliseconds per heartbeat."""
        return self.client_cpu_s * 1000 / self.heartbeats

    @property
    def worker_ms(self) -> float:
        """Worker CPU milliseconds per heartbeat."""
        return self.worker_cpu_s * 1000 / self.heartbeats


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options of a run."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.http_writes", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--agents", type=int, default=1000, help="agents per path (1000)")
    parser.add_argument(
        "--heartbeats", type=int, default=20_000, help="heartbeats per phase (20000)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=32, help="requests or publishes in flight (32)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="alternate the phases this often")
    add_service_options(parser, cleanup=True)
    args = parser.parse_args(argv)
    check_cleanup(parser, args)
    if min(args.agents, args.heartbeats, args.concurrency, args.repeat) < 1:
        parser.error("--agents, --heartbeats, --concurrency and --repeat must be positive")
    return args


def _http_agent(k: int) -> str:
    return f"http-{k}"


def _amqp_agent(k: int) -> str:
    return f"amqp-{k}"


def _card(agent_id: str) -> dict[str, object]:
    return {
        "name": agent_id,
        "description": "bench agent",
        "version": "1.0.0",
        "supportedInterfaces": [
            {"url": f"http://127.0.0.1:9/{agent_id}", "protocolBinding": "JSONRPC"}
        ],
        "skills": [{"id": "echo", "name": "echo", "tags": ["echo"]}],
    }


class RawHttp:
    """A bare HTTP/1.1 keep-alive client for the load: httpx costs several milliseconds of CPU
    per request, which made the load generator, not the API, the bottleneck."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST `body` (JSON) with the bench's key; the status and the response body."""
        if self._idle:
            reader, writer = self._idle.pop()
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", self._port)
        writer.write(
            b"POST %s HTTP/1.1\r\nhost: bench\r\nauthorization: Bearer %s\r\n"
            b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
            % (path.encode(), KEY.encode(), len(body), body)
        )
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        answer = await reader.readexactly(length)
        self._idle.append((reader, writer))
        return status, answer

    async def close(self) -> None:
        """Close every connection."""
        for _, writer in self._idle:
            writer.close()
        self._idle = []


async def _spread(count: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> None:
    """Run `one(0..count-1)` with at most `concurrency` at a time."""
    next_k = 0

    async def lane() -> None:
        nonlocal next_k
        while next_k < count:
            k, next_k = next_k, next_k + 1
            await one(k)

    await asyncio.gather(*(lane() for _ in range(concurrency)))


class Run:
    """One run: its services, agents and phases."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.prefix = new_prefix()
        env = service_env(args.broker_url, args.redis_url, self.prefix, "INFO")
        env["AGENTROSTER_BOOTSTRAP_ADMIN_KEY"] = KEY
        env["AGENTROSTER_KEY_RATE_PER_S"] = "1000000"  # one key sends everything here
        env["AGENTROSTER_KEY_RATE_BURST"] = "1000000"
        self.port = free_port()
        self.worker = Service(
            "worker", [sys.executable, "-m", "agentroster", "worker"], env, "worker started"
        )
        self.api = Service(
            "api",
            [
                sys.executable,
                "-m",
                "agentroster",
                "api",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env,
            ready="Uvicorn running",
        )
        self.seq = 0

    async def main(self) -> list[Phase]:
        """Start, register, measure, stop, clean up."""
        connection = await aio_pika.connect(self.args.broker_url)
        redis = Redis.from_url(self.args.redis_url)
        phases: list[Phase] = []
        try:
            await self.worker.start()
            await self.api.start()
            base_url = f"http://127.0.0.1:{self.port}"
            await wait_ready(base_url, START_TIMEOUT_S)
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(Topology(self.prefix).commands_exchange)
            # a client per phase: uvicorn closes connections idle for 5 s (the other phase),
            # and a request on one it is closing fails
            async with self._client(base_url) as http:
                await self._register(http, exchange)
            for _ in range(self.args.repeat):
                async with self._client(base_url) as http:
                    phases.append(await self._http_phase(http))
                async with self._client(base_url) as http:
                    phases.append(await self._amqp_phase(http, exchange))
        except Exception:
            print(f"the API said:\n{self.api.output()}", file=sys.stderr)
            raise
        finally:
            await self.api.stop()
            await self.worker.stop()
            await cleanup_prefix(connection, redis, self.prefix)
            await redis.aclose()
            await connection.close()
        return phases

    def _client(self, base_url: str) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=self.args.concurrency)
        return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60)

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    async def _register(
        self, http: httpx.AsyncClient, exchange: aio_pika.abc.AbstractExchange
    ) -> None:
        agents = self.args.agents

        async def over_http(k: int) -> None:
            agent = _http_agent(k)
            answer = await http.put(
                f"/v1/agents/{agent}/instances/i1",
                json={"card": _card(agent), "ttl_s": TTL_S, "seq": self._next_seq()},
                headers=AUTH,
            )
            answer.raise_for_status()

        async def over_amqp(k: int) -> None:
            agent = _amqp_agent(k)
            await self._publish(exchange, "register", agent, {"card": _card(agent)})

        await _spread(agents, self.args.concurrency, over_http)
        await _spread(agents, self.args.concurrency, over_amqp)
        await self._applied(http)

    async def _publish(
        self,
        exchange: aio_pika.abc.AbstractExchange,
        kind: str,
        agent: str,
        more: dict[str, object],
    ) -> None:
        body = {
            "agent_id": agent,
            "instance_id": "i1",
            "seq": self._next_seq(),
            "ttl_s": TTL_S,
            "sent_at": datetime.now(UTC).isoformat(),
            **more,
        }
        await exchange.publish(
            aio_pika.Message(
                orjson.dumps(body),
                content_type="application/json",
                type=kind,
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                user_id="guest" if "guest" in self.args.broker_url else None,
            ),
            routing_key=Topology.command_key(agent, kind),  # type: ignore[arg-type]
            mandatory=True,
        )

    async def _applied(self, http: httpx.AsyncClient) -> None:
        """Once this heartbeat's reply came, the worker applied everything sent before it."""
        answer = await http.post(
            f"/v1/agents/{_http_agent(0)}/instances/i1/heartbeat",
            json={"ttl_s": TTL_S, "seq": self._next_seq()},
            params={"wait": "true"},
            headers=AUTH,
        )
        if answer.status_code != 200:
            raise RuntimeError(f"the marker heartbeat was not applied: {answer.text}")

    async def _http_phase(self, http: httpx.AsyncClient) -> Phase:
        agents = self.args.agents
        raw = RawHttp(self.port)

        async def beat(k: int) -> None:
            status, answer = await raw.post(
                f"/v1/agents/{_http_agent(k % agents)}/instances/i1/heartbeat",
                orjson.dumps({"ttl_s": TTL_S, "seq": self._next_seq()}),
            )
            if status != 202:
                raise RuntimeError(f"heartbeat answered {status}: {answer!r}")

        try:
            return await self._measure("HTTP", beat, http)
        finally:
            await raw.close()

    async def _amqp_phase(
        self, http: httpx.AsyncClient, exchange: aio_pika.abc.AbstractExchange
    ) -> Phase:
        agents = self.args.agents

        async def beat(k: int) -> None:
            await self._publish(exchange, "heartbeat", _amqp_agent(k % agents), {"card_digest": ""})

        return await self._measure("AMQP", beat, http)

    async def _measure(
        self, path: str, beat: Callable[[int], Awaitable[None]], http: httpx.AsyncClient
    ) -> Phase:
        count = self.args.heartbeats
        api_cpu, worker_cpu = process_cpu_s(self.api.pid), process_cpu_s(self.worker.pid)
        client_cpu = time.process_time()
        started = time.perf_counter()
        await _spread(count, self.args.concurrency, beat)
        accepted = time.perf_counter() - started
        client_used = time.process_time() - client_cpu
        api_used = process_cpu_s(self.api.pid) - api_cpu  # before the marker's own request
        await self._applied(http)
        applied = time.perf_counter() - started
        return Phase(
            path,
            count,
            accepted,
            applied,
            api_used,
            process_cpu_s(self.worker.pid) - worker_cpu,
            client_used,
        )


def report(args: argparse.Namespace, phases: list[Phase]) -> None:
    """The phases, then medians per path and the API's CPU against the goal."""
    table = Table(
        Column("path", 6, align="<"),
        Column("heartbeats", 10, ","),
        Column("accepted/s", 10, ",.0f"),
        Column("applied/s", 10, ",.0f"),
        Column("API ms/hb", 9, ".3f"),
        Column("worker ms/hb", 12, ".3f"),
        Column("client ms/hb", 12, ".3f"),
    )
    print(
        f"\nHTTP and AMQP heartbeats: {args.agents:,} agents per path, {args.heartbeats:,} "
        f"heartbeats per phase, {args.concurrency} in flight, load {load_average():.2f}"
    )
    print(table.header())
    print(table.rule())
    for phase in phases:
        print(
            table.row(
                phase.path,
                phase.heartbeats,
                phase.accepted_per_s,
                phase.applied_per_s,
                phase.api_ms if phase.path == "HTTP" else None,
                phase.worker_ms,
                phase.client_ms,
            )
        )
    http = [p for p in phases if p.path == "HTTP"]
    amqp = [p for p in phases if p.path == "AMQP"]
    api_ms = statistics.median(p.api_ms for p in http)
    http_rate = statistics.median(p.accepted_per_s for p in http)
    amqp_rate = statistics.median(p.accepted_per_s for p in amqp)
    print(
        f"\nmedians: HTTP {http_rate:,.0f} heartbeats/s accepted, AMQP {amqp_rate:,.0f}/s "
        f"(HTTP/AMQP {http_rate / amqp_rate:.2f}); API CPU {api_ms:.3f} ms per HTTP heartbeat: "
        f"{api_ms / GOAL_MS:.2f}x the goal ({GOAL_MS} ms), "
        f"{api_ms / OO_A2A_REGISTRY_MS:.2f}x oo-a2a-registry ({OO_A2A_REGISTRY_MS} ms)"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark, or a cleanup."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.cleanup:
        asyncio.run(cleanup_left_behind(args.broker_url, args.redis_url, args.cleanup))
        return
    report(args, asyncio.run(Run(args).main()))


if __name__ == "__main__":
    main()
