"""One heartbeat run: register the agents, then per variant pre-load, start a consumer, measure.

The window runs from the last sample at which the queue still held every message to the first
at which nothing is ready and every instance holds its final seq (bench/README.md, Heartbeats).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel
from redis.asyncio import Redis

from agentroster.contracts import Topology
from agentroster.settings import Settings
from agentroster.store.keys import Keys
from agentroster.store.outbox import Outbox
from agentroster.worker import create_worker
from bench.harness.measure import load_average, process_cpu_s, queue_ready, redis_cpu_s
from bench.harness.preload import RawPublisher
from bench.harness.processes import ROOT, role_command
from bench.harness.services import cleanup_prefix, new_prefix
from bench.heartbeats.agents import Agents, Round, heartbeat_command, register_command
from bench.heartbeats.roles import PREFETCH

DRAIN_TIMEOUT_S = 600.0
#: How long the consumer processes may take to start their interpreters.
GATE_TIMEOUT_S = 120.0


@dataclass
class Result:
    """One measurement of one variant: its window, CPU, and what the consumer reported."""

    variant: str
    heartbeats: int
    wall_s: float
    cpu_s: float
    redis_cpu_s: float
    load: float = 0.0  # 1-minute load average at the end (other processes share the cores)
    outcomes: dict[str, int] = field(default_factory=dict)
    batches: int = 0  # apply.lua calls of the consumer processes
    processes: int = 1  # consumer processes draining the queue together

    @property
    def batch_size(self) -> float:
        """Commands per apply.lua call."""
        return sum(self.outcomes.values()) / self.batches if self.batches else 0.0

    @property
    def rate(self) -> float:
        """Heartbeats per second of the window."""
        return self.heartbeats / self.wall_s

    @property
    def cpu_us(self) -> float:
        """The consumers' CPU microseconds per heartbeat (all their processes)."""
        return self.cpu_s / self.heartbeats * 1e6

    @property
    def redis_cpu_us(self) -> float:
        """Redis's CPU microseconds per heartbeat (every client of that Redis)."""
        return self.redis_cpu_s / self.heartbeats * 1e6


class Bench:
    """One run: a prefix of its own, the agents, and the variants measured in turn."""

    def __init__(self, args: argparse.Namespace, prefix: str | None = None) -> None:
        self.args = args
        self.prefix = prefix or new_prefix()
        self.names = Topology(self.prefix)
        self.keys = Keys(self.prefix)
        self.agents = Agents.make(args.agents)
        self.per_round = math.ceil(args.heartbeats / args.agents)

    def settings(self) -> Settings:
        """The registry's settings under this run's prefix."""
        return Settings(
            broker_url=self.args.broker_url,
            redis_url=self.args.redis_url,
            prefix=self.prefix,
            max_agents_per_identity=0,  # --agents may be more than one identity's quota
        )

    async def run(self) -> list[Result]:
        """Register, then each variant in turn; deletes what the run created."""
        connection = await aio_pika.connect(self.args.broker_url)
        redis = Redis.from_url(self.args.redis_url)
        publisher = RawPublisher(self.args.broker_url)
        try:
            channel = await connection.channel()
            await self.register(publisher, redis)
            results = []
            plan = [
                (variant, count)
                for _ in range(self.args.repeat)
                for count in self.args.workers
                for variant in self.args.variants
            ]
            for number, (variant, count) in enumerate(plan):
                round_ = Round(self.agents, self.args.heartbeats, 2 + number * self.per_round)
                await self.preload(publisher, channel, round_)
                result = await self.measure(variant, round_, channel, redis, number, count)
                results.append(result)
            return results
        finally:
            try:
                await publisher.close()
            finally:
                await cleanup_prefix(connection, redis, self.prefix)
            await redis.aclose()
            await connection.close()

    async def register(self, publisher: RawPublisher, redis: Redis) -> None:
        """Register every agent through the real worker (in this process), then stop it."""
        n = self.agents.count
        started = time.perf_counter()
        async with create_worker(self.settings()):  # declares the queues and exchanges
            await publisher.connect()
            await publisher.publish(
                self.names.commands_exchange, n, lambda k: register_command(self.agents, k)
            )
            deadline = time.monotonic() + DRAIN_TIMEOUT_S
            outbox = Outbox(redis, self.keys.prefix)
            while await redis.zcard(self.keys.agents) < n or await outbox.backlog() > 0:
                if time.monotonic() > deadline:
                    raise RuntimeError("registration did not complete in time")
                await asyncio.sleep(0.05)
        print(
            f"registered {n:,} agents through the worker in {time.perf_counter() - started:.1f}s "
            f"(their agent.joined events relayed: no outbox backlog)",
            flush=True,
        )

    async def preload(
        self, publisher: RawPublisher, channel: AbstractChannel, round_: Round
    ) -> None:
        """Publish the round's heartbeats while nothing consumes; check they are all queued."""
        queue = self.names.commands_queue
        if (ready := await queue_ready(channel, queue)) != 0:
            raise RuntimeError(f"{queue} holds {ready} messages before the pre-load")

        def make(j: int) -> tuple[str, str, bytes]:
            k, seq = round_.target(j)
            return heartbeat_command(self.agents, k, seq)

        exchange = self.names.commands_exchange
        seconds = await publisher.publish(exchange, round_.heartbeats, make)
        ready = await queue_ready(channel, queue)
        if ready != round_.heartbeats:
            raise RuntimeError(f"{queue} holds {ready} messages, expected {round_.heartbeats}")
        print(
            f"pre-loaded {ready:,} heartbeats (seq from {round_.base_seq}) in {seconds:.1f}s "
            f"({ready / seconds:,.0f}/s)",
            flush=True,
        )

    async def measure(
        self,
        variant: str,
        round_: Round,
        channel: AbstractChannel,
        redis: Redis,
        number: int,
        processes: int = 1,
    ) -> Result:
        """Start `processes` consumer processes of `variant` and time them draining the
        pre-loaded round together (their CPU summed)."""
        finals = round_.final_seqs()
        # agents whose last heartbeat is among the last 2 * PREFETCH published: once nothing is
        # ready, whatever is not applied yet is among the unacknowledged (at most PREFETCH per
        # process; with several, the check of every instance below waits for the rest)
        tail = sorted(
            {
                round_.target(j)[0]
                for j in range(max(0, round_.heartbeats - 2 * PREFETCH), round_.heartbeats)
            }
        )
        tail_keys = [self.instance_key(k) for k in tail]
        tail_seqs = [finals[k] for k in tail]
        all_keys = [self.instance_key(k) for k in finals]
        all_seqs = list(finals.values())

        consumers = [
            await self.start_consumer(variant, f"{number}-{variant}-{n}") for n in range(processes)
        ]
        label = f"{variant} x{processes}" if processes > 1 else variant

        def cpu_s() -> float:
            return sum(process_cpu_s(p.pid) for p in consumers)

        def exited() -> bool:
            return any(p.returncode is not None for p in consumers)

        try:
            await self.release(consumers)
            queue = self.names.commands_queue
            total = round_.heartbeats
            deadline = time.monotonic() + DRAIN_TIMEOUT_S
            # start: the last sample before the queue began to drain (start-up excluded; at
            # most one poll interval of start-up is counted against the consumer)
            before = (time.perf_counter(), cpu_s(), await redis_cpu_s(redis))
            while await queue_ready(channel, queue) == total:
                if exited() or time.monotonic() > deadline:
                    raise RuntimeError(f"{label}: the consumer never started consuming")
                await asyncio.sleep(0.01)
                before = (time.perf_counter(), cpu_s(), await redis_cpu_s(redis))
            # end: the first sample where nothing is ready and every tail heartbeat is applied
            while await queue_ready(channel, queue) > 0:
                if exited() or time.monotonic() > deadline:
                    raise RuntimeError(f"{label}: the consumer did not drain the queue")
                await asyncio.sleep(0.025)
            while True:
                if await self.applied(redis, tail_keys, tail_seqs):
                    after = (time.perf_counter(), cpu_s(), await redis_cpu_s(redis))
                    # checked once the tail is in (in-order consumers are then done), so the
                    # check itself is not timed; a concurrent consumer may still be behind
                    if await self.applied(redis, all_keys, all_seqs):
                        break
                if exited() or time.monotonic() > deadline:
                    raise RuntimeError(f"{label}: the last heartbeats were never applied")
                await asyncio.sleep(0.025)
        finally:
            reports = [await self.stop_consumer(p) for p in consumers]
        outcomes: dict[str, int] = {}
        for report in reports:
            for outcome, n in report.get("outcomes", {}).items():
                outcomes[outcome] = outcomes.get(outcome, 0) + n
        result = Result(
            variant,
            round_.heartbeats,
            wall_s=after[0] - before[0],
            cpu_s=after[1] - before[1],
            redis_cpu_s=after[2] - before[2],
            load=load_average(),
            outcomes=outcomes,
            batches=sum(report.get("batches", 0) for report in reports),
            processes=processes,
        )
        print(
            f"[{label}] {result.rate:,.0f} heartbeats/s, {result.cpu_us:.1f} CPU us/heartbeat "
            f"(wall {result.wall_s:.2f}s, CPU {result.cpu_s:.2f}s, load {result.load:.1f}); "
            f"outcomes {result.outcomes} in {result.batches:,} apply.lua calls",
            flush=True,
        )
        if (ready := await queue_ready(channel, self.names.commands_queue)) != 0:
            raise RuntimeError(f"{label}: {ready} messages left in the queue")
        return result

    async def start_consumer(self, variant: str, name: str) -> asyncio.subprocess.Process:
        """One consumer process of `variant`, started but held at its gate (see `release`)."""
        profile = None
        if self.args.profile:
            os.makedirs(self.args.profile, exist_ok=True)
            profile = os.path.join(self.args.profile, f"{name}.prof")
        command = role_command(
            "bench.heartbeats",
            "--role",
            variant,
            "--gate",
            "--prefix",
            self.prefix,
            "--broker-url",
            self.args.broker_url,
            "--redis-url",
            self.args.redis_url,
            profile=profile,
        )
        return await asyncio.create_subprocess_exec(
            *command, cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )

    async def release(self, consumers: list[asyncio.subprocess.Process]) -> None:
        """Once every consumer has started its interpreter and says `ready`, let them all go:
        a scale-out measurement does not count one start-up against the others."""
        async with asyncio.timeout(GATE_TIMEOUT_S):
            for process in consumers:
                assert process.stdout is not None
                if (await process.stdout.readline()).strip() != b"ready":
                    raise RuntimeError("a consumer process exited before it was ready")
        for process in consumers:
            assert process.stdin is not None
            process.stdin.write(b"go\n")
            await process.stdin.drain()

    async def stop_consumer(self, process: asyncio.subprocess.Process) -> dict[str, Any]:
        """SIGTERM, and the report the consumer prints as it stops ({} if it printed none)."""
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        stdout, _ = await process.communicate()
        lines = stdout.decode().strip().splitlines()
        report: dict[str, Any] = json.loads(lines[-1]) if lines and lines[-1] != "ready" else {}
        return report

    def instance_key(self, k: int) -> str:
        """Agent k's instance hash key."""
        return self.keys.instance(self.agents.ids[k], self.agents.instances[k])

    async def applied(self, redis: Redis, keys: list[str], seqs: list[int]) -> bool:
        """Whether each instance `keys[i]` holds seq `seqs[i]` (or a later one)."""
        pipe = redis.pipeline(transaction=False)
        for key in keys:
            pipe.hget(key, "seq")
        held = await pipe.execute()
        return all(int(h or 0) >= want for h, want in zip(held, seqs, strict=True))
