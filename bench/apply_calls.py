"""The cost of one `RedisStore.apply` call, without a broker: a lone register, and 500 heartbeats.

Run from the repository root: `.venv/bin/python bench/apply_calls.py` (see bench/README.md).
To compare two versions of the store, run it alternately with `PYTHONPATH=<other>/src` in
front: the figures are wall times of the calls (Python and Redis together), so compare them
within one run of alternations, on the same machine load.

Works under a prefix of its own (`bench-<10 hex digits>`) and deletes its Redis keys at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import time
from collections.abc import Sequence

from redis.asyncio import Redis

from agentroster.registry.prepare import Prepared
from agentroster.store.redis_store import RedisStore

BATCH = 500


def _register(k: int) -> Prepared:
    card = b'{"name":"Bench agent","skills":[{"id":"echo"}]}'
    return Prepared(
        kind="register",
        agent_id=f"a-{k:06d}",
        instance_id="i",
        seq=1,
        ttl_ms=3_600_000,
        interval_ms=10_000,
        digest="d",
        state_digest="s",
        card=card * 10,
        view=card,
        terms="skill:echo\ntag:bench",
        text="bench agent echo",
    )


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> None:
    prefix = f"bench-{secrets.token_hex(5)}"
    redis = Redis.from_url(args.redis_url)
    store = RedisStore(redis, prefix, flap_max_events=0)
    try:
        await store.observe()
        lone = []
        for k in range(args.registers):
            if args.gap_ms:
                await asyncio.sleep(args.gap_ms / 1000)  # idle between calls, as a quiet registry
            started = time.perf_counter()
            await store.apply([_register(k)])
            lone.append((time.perf_counter() - started) * 1000)
        batches = []
        agents = [f"a-{k:06d}" for k in range(min(args.registers, BATCH))]
        for seq in range(2, 2 + args.batches):
            batch = [Prepared("heartbeat", a, "i", seq, 3_600_000, digest="d") for a in agents]
            started = time.perf_counter()
            result = await store.apply(batch)
            batches.append((time.perf_counter() - started) * 1000)
            assert set(result.codes) == {0}, result.codes[:5]
    finally:
        keys = [key async for key in redis.scan_iter(match=f"{store.keys.base}*", count=1000)]
        for n in range(0, len(keys), 1000):
            await redis.delete(*keys[n : n + 1000])
        await redis.aclose()
    n = min(args.registers, BATCH)
    print(
        f"lone register: p50 {statistics.median(lone):.3f} ms  p99 {_quantile(lone, 0.99):.3f} ms"
        f"   {n} heartbeats: min {min(batches):.2f} ms  p50 {statistics.median(batches):.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--registers", type=int, default=500, help="lone registers (500)")
    parser.add_argument("--batches", type=int, default=200, help="heartbeat batches (200)")
    parser.add_argument(
        "--gap-ms", type=float, default=0.0, help="idle time before each lone register (0)"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    if args.registers < 1 or args.batches < 1 or args.gap_ms < 0:
        parser.error("--registers and --batches must be positive, --gap-ms not negative")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
