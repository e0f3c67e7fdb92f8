"""The cost of one `RedisStore.apply` call, without a broker: a lone register, and 500 heartbeats.

Run from the repository root: `.venv/bin/python -m bench.apply_calls` (see bench/README.md).
To compare two versions of the store, run it alternately with `PYTHONPATH=<other>/src` in
front: the figures are wall times of the calls (Python and Redis together), so compare them
within one run of alternations, on the same machine load.

Works under a prefix of its own (`bench-<10 hex digits>`) and deletes its Redis keys at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from redis.asyncio import Redis

from agentroster.registry.prepare import Prepared
from agentroster.store.redis_store import RedisStore
from bench.harness.measure import percentile
from bench.harness.services import DEFAULT_REDIS_URL, delete_keys, glob_escape, new_prefix

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


async def run(args: argparse.Namespace) -> None:
    prefix = new_prefix()
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
        await delete_keys(redis, glob_escape(store.keys.base) + "*")
        await redis.aclose()
    n = min(args.registers, BATCH)
    print(
        f"lone register: p50 {statistics.median(lone):.3f} ms  p99 {percentile(lone, 0.99):.3f} ms"
        f"   {n} heartbeats: min {min(batches):.2f} ms  p50 {statistics.median(batches):.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--registers", type=int, default=500, help="lone registers (500)")
    parser.add_argument("--batches", type=int, default=200, help="heartbeat batches (200)")
    parser.add_argument(
        "--gap-ms", type=float, default=0.0, help="idle time before each lone register (0)"
    )
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    args = parser.parse_args()
    if args.registers < 1 or args.batches < 1 or args.gap_ms < 0:
        parser.error("--registers and --batches must be positive, --gap-ms not negative")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
