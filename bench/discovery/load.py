"""Driving one kind of query from concurrent clients, and summing it up as a `Measurement`."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.discovery.population import Queries
from bench.discovery.targets import LIMIT, Target
from bench.harness.measure import load_average, percentile


@dataclass
class Load:
    """What the concurrent clients of one measurement recorded."""

    latencies: list[float] = field(default_factory=list)  # per request (per page for walks)
    walks: list[float] = field(default_factory=list)  # per complete walk
    errors: int = 0  # answers with the wrong number of agents, or an agent not found
    first_error: str = ""
    wall_s: float = 0.0


async def drive(
    kind: str,
    targets: Sequence[Target],
    queries: Queries,
    seconds: float,
    max_requests: int,
    seed: int,
    *,
    complete_walks: bool = True,
) -> Load:
    """Run one kind of query from every target at once, for `seconds` or `max_requests`.

    With `complete_walks`, a walk that has started goes on to its last page, so the wall time
    may exceed `seconds`; without (a warm-up), it stops where it is.
    """
    load = Load()
    started = time.perf_counter()
    deadline = started + seconds

    def more() -> bool:
        return time.perf_counter() < deadline and len(load.latencies) < max_requests

    def wrong(what: str) -> None:
        load.errors += 1
        load.first_error = load.first_error or what

    async def client(number: int, target: Target) -> None:
        rng = random.Random(seed * 1000 + number)
        while more():
            if kind == "get":
                agent = queries.agent(rng)
                found, latency = await target.agent(agent)
                load.latencies.append(latency)
                if not found:
                    wrong(f"agent {agent} not found")
            elif kind in ("single", "two"):
                skills, expected = queries.skill(rng) if kind == "single" else queries.pair(rng)
                count, cursor, latency = await target.page(skills, None)
                load.latencies.append(latency)
                if count != min(LIMIT, expected) or (cursor is not None) != (expected > LIMIT):
                    wrong(f"{skills}: {count} agents, cursor {cursor!r}; expected {expected}")
            else:  # walk: every page of one skill's agents
                skills, expected = queries.skill(rng)
                walk_started = time.perf_counter()
                total, cursor = 0, None
                while True:
                    count, cursor, latency = await target.page(skills, cursor)
                    load.latencies.append(latency)
                    total += count
                    if cursor is None:
                        break
                    if not complete_walks and not more():
                        return
                load.walks.append(time.perf_counter() - walk_started)
                if total != expected:
                    wrong(f"walk {skills}: {total} agents, expected {expected}")

    await asyncio.gather(*(client(n, t) for n, t in enumerate(targets)))
    load.wall_s = time.perf_counter() - started
    return load


@dataclass
class Measurement:
    """One kind of query on one path (the API, or a ceiling) at one size."""

    kind: str
    path: str
    requests: int
    wall_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    walks: int = 0
    walk_p50_ms: float = 0.0
    walk_p99_ms: float = 0.0
    errors: int = 0
    first_error: str = ""
    server_cpu_s: float = 0.0  # the API process, or the ceiling process
    client_cpu_s: float = 0.0  # the load generator (API only; the ceiling is its own client)
    redis_cpu_s: float = 0.0  # every client of that Redis, not only ours
    load: float = 0.0  # 1-minute load average at the end

    @classmethod
    def of(cls, kind: str, path: str, load: Load, **usage: float) -> Measurement:
        """The summary of one `Load`, with the processes' CPU seconds in `usage`."""
        ms = [s * 1000 for s in load.latencies]
        walks_ms = [s * 1000 for s in load.walks]
        return cls(
            kind=kind,
            path=path,
            requests=len(ms),
            wall_s=load.wall_s,
            p50_ms=percentile(ms, 0.50),
            p99_ms=percentile(ms, 0.99),
            max_ms=max(ms, default=float("nan")),
            walks=len(walks_ms),
            walk_p50_ms=percentile(walks_ms, 0.50) if walks_ms else 0.0,
            walk_p99_ms=percentile(walks_ms, 0.99) if walks_ms else 0.0,
            errors=load.errors,
            first_error=load.first_error,
            load=load_average(),
            **usage,
        )

    @property
    def rate(self) -> float:
        """Requests per second of wall time."""
        return self.requests / self.wall_s if self.wall_s else 0.0

    def per_request_us(self, seconds: float) -> float:
        """`seconds` (of CPU) per request, in microseconds."""
        return seconds / self.requests * 1e6 if self.requests else 0.0
