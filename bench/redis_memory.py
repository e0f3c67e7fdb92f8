"""Redis memory per agent: register agents through the worker, then weigh every key of the run.

Run from the repository root: `.venv/bin/python -m bench.redis_memory --sizes 10000,50000`
(bench/README.md, Redis memory). The agents are the discovery benchmark's (one instance each,
an A2A card with 8 skills and 3 tags, bench/discovery/population.py), registered through a
real `agentroster worker` process. Each key under the run's prefix is weighed with
`MEMORY USAGE <key> SAMPLES 0` (exact: every element counted; it includes the key's name and
Redis' per-key overhead), so other users of the same Redis do not disturb the figure, as
`INFO memory` would. Keys are grouped by their kind (`agent:`, `i:`, `ix:` ...); the outbox
stream is reported apart, since the events window bounds it (AGENTROSTER_EVENTS_WINDOW), not
the number of agents. Deletes everything it created at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections import Counter
from collections.abc import Sequence

import aio_pika
from redis.asyncio import Redis

from agentroster.store.keys import Keys
from bench.discovery.run import Bench as Registration
from bench.harness.services import (
    add_service_options,
    check_cleanup,
    cleanup_left_behind,
    cleanup_prefix,
    glob_escape,
    new_prefix,
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The options of a run."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.redis_memory", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument(
        "--sizes",
        type=lambda s: sorted({int(n) for n in s.split(",") if n}),
        default=[10_000],
        help="agents registered, growing, weighed at each size (10000)",
    )
    parser.add_argument("--seed", type=int, default=1, help="of the agents' cards (1)")
    add_service_options(parser, cleanup=True)
    args = parser.parse_args(argv)
    check_cleanup(parser, args)
    if not args.sizes or args.sizes[0] < 1 or args.sizes[-1] > 2_000_000:
        parser.error("--sizes: agent counts from 1 to 2000000")
    return args


async def weigh(redis: Redis, keys: Keys) -> tuple[Counter[str], Counter[str]]:
    """Bytes and key counts per kind of key under `keys.base`."""
    sizes: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    batch: list[bytes] = []

    async def flush() -> None:
        pipe = redis.pipeline(transaction=False)
        for key in batch:
            pipe.memory_usage(key, samples=0)
        for key, used in zip(batch, await pipe.execute(), strict=True):
            kind = key.decode()[len(keys.base) :].split(":")[0]
            sizes[kind] += used or 0
            counts[kind] += 1
        batch.clear()

    async for key in redis.scan_iter(match=glob_escape(keys.base) + "*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            await flush()
    if batch:
        await flush()
    return sizes, counts


def print_weights(size: int, sizes: Counter[str], counts: Counter[str], outbox: int) -> None:
    """One table: bytes per agent by kind of key, the total, and the outbox apart."""
    print(f"\nagentroster Redis memory, {size:,} agents (MEMORY USAGE ... SAMPLES 0 per key)")
    print(f"{'key kind':<12} {'keys':>10} {'MiB':>9} {'bytes/agent':>12}")
    print("-" * 46)
    for kind, used in sizes.most_common():
        if kind == "outbox":
            continue
        print(f"{kind:<12} {counts[kind]:>10,} {used / 2**20:>9.1f} {used / size:>12,.0f}")
    total = sum(used for kind, used in sizes.items() if kind != "outbox")
    print("-" * 46)
    keys = sum(n for kind, n in counts.items() if kind != "outbox")
    print(f"{'per agent':<12} {keys:>10,} {total / 2**20:>9.1f} {total / size:>12,.0f}")
    if outbox:
        print(
            f"outbox stream: {outbox:,} entries, {sizes['outbox'] / 2**20:.1f} MiB, "
            f"{sizes['outbox'] / outbox:,.0f} bytes per event (bounded by the events window)"
        )


async def run(args: argparse.Namespace) -> None:
    """Grow the population size by size, weighing after each; delete it all at the end."""
    args.prefix = new_prefix()
    registration = Registration(args, prefix=args.prefix)
    keys = Keys(args.prefix)
    connection = await aio_pika.connect(args.broker_url)
    redis = Redis.from_url(args.redis_url)
    try:
        for size in args.sizes:
            await registration.register(connection, redis, size)
            sizes, counts = await weigh(redis, keys)
            print_weights(size, sizes, counts, await redis.xlen(keys.outbox))
    finally:
        await cleanup_prefix(connection, redis, args.prefix)
        await redis.aclose()
        await connection.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark, or a cleanup, as the options say."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.cleanup:
        asyncio.run(cleanup_left_behind(args.broker_url, args.redis_url, args.cleanup))
        return
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
