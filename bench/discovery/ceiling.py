"""The ceiling: the same Redis reads without HTTP, in a process of its own.

`python -m bench.discovery --role ceiling --variant raw|reader` (internal) grows the same
population from the same seed, then measures each kind written to its stdin and answers with
one JSON line (a `Measurement`); it exits when its stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import asdict

from redis.asyncio import Redis

from agentroster.cli import tune_gc
from bench.discovery.load import Measurement, drive
from bench.discovery.population import Population, Queries
from bench.discovery.targets import RawTarget, ReaderTarget, Target
from bench.harness.measure import load_average, redis_cpu_s
from bench.harness.processes import ROOT, role_command


class CeilingProcess:
    """A `--role ceiling` process: it grows the same population, then measures kinds on demand.

    Protocol: it prints `ready`, then for each kind written to its stdin one JSON line (a
    Measurement); it exits when its stdin closes.
    """

    def __init__(self, args: argparse.Namespace, variant: str, prefix: str, size: int) -> None:
        self.command = role_command(
            "bench.discovery",
            "--role",
            "ceiling",
            "--variant",
            variant,
            "--prefix",
            prefix,
            "--ceiling-size",
            str(size),
            "--seed",
            str(args.seed),
            "--concurrency",
            str(args.concurrency),
            "--seconds",
            str(args.seconds),
            "--warmup",
            str(args.warmup),
            "--max-requests",
            str(args.max_requests),
            "--redis-url",
            args.redis_url,
        )
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Start the process and wait until it has grown its population."""
        self.process = await asyncio.create_subprocess_exec(
            *self.command, cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        if await self._line() != "ready":
            raise RuntimeError("the ceiling process did not start")

    async def measure(self, kind: str) -> Measurement:
        """Have the process measure one kind; its Measurement, with this moment's load."""
        assert self.process is not None
        assert self.process.stdin is not None
        self.process.stdin.write(f"{kind}\n".encode())
        await self.process.stdin.drain()
        measurement = Measurement(**json.loads(await self._line()))
        measurement.load = load_average()
        return measurement

    async def _line(self) -> str:
        assert self.process is not None
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError("the ceiling process exited")
        return line.decode().strip()

    async def stop(self) -> None:
        """Close its stdin (it exits), killing it after 30 s."""
        if self.process is None:
            return
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        self.process = None


async def role_ceiling(args: argparse.Namespace) -> None:
    """The ceiling process: `--concurrency` tasks on one Redis client, no HTTP."""
    population = Population(args.seed)
    population.grow(args.ceiling_size)
    queries = Queries(population, args.ceiling_size, args.seed)
    tune_gc()  # the process settings of `agentroster api`: the same collector and event loop
    # the client the API opens (api/app.py), so both sides pay the same connection settings
    redis = Redis.from_url(
        args.redis_url, socket_connect_timeout=5.0, socket_timeout=5.0, health_check_interval=30
    )
    target: Target
    if args.variant == "raw":
        raw = RawTarget(redis, args.prefix)
        await raw.load()
        target = raw
    else:
        target = ReaderTarget(redis, args.prefix)
    targets = [target] * args.concurrency
    print("ready", flush=True)
    try:
        while kind := (await asyncio.to_thread(sys.stdin.readline)).strip():
            await drive(
                kind,
                targets,
                queries,
                args.warmup,
                args.max_requests,
                args.seed + 1,
                complete_walks=False,
            )
            cpu, redis_cpu = time.process_time(), await redis_cpu_s(redis)
            load = await drive(kind, targets, queries, args.seconds, args.max_requests, args.seed)
            usage = {
                "server_cpu_s": time.process_time() - cpu,
                "redis_cpu_s": await redis_cpu_s(redis) - redis_cpu,
            }
            measurement = Measurement.of(kind, args.variant, load, **usage)
            print(json.dumps(asdict(measurement)), flush=True)
    finally:
        await redis.aclose()
