"""The services a benchmark runs against, its own prefix, and the cleanup of that prefix.

A run works under `bench-<10 hex digits>` and deletes, at the end, exactly what it created:
the queues and exchanges `Topology(prefix)` names and the Redis keys under `Keys(prefix).base`
(found with SCAN). It never deletes a name it did not make, so benchmarks can share the
services with tests and other sessions.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets

import aio_pika
from aio_pika.abc import AbstractConnection
from redis.asyncio import Redis

from agentroster.contracts import Topology
from agentroster.store.keys import Keys

DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
PREFIX_PATTERN = re.compile(r"bench-[0-9a-f]{10}")


def new_prefix() -> str:
    """A prefix no other run uses: every name and key of the run lives under it."""
    return f"bench-{secrets.token_hex(5)}"


def add_service_options(parser: argparse.ArgumentParser, *, cleanup: bool = False) -> None:
    """`--broker-url` and `--redis-url` (and `--cleanup PREFIX` for benches that can resume)."""
    parser.add_argument("--broker-url", default=DEFAULT_BROKER_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    if cleanup:
        parser.add_argument(
            "--cleanup",
            metavar="PREFIX",
            help="only delete what an interrupted run left behind (PREFIX is bench-<hex>)",
        )


def check_cleanup(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse a `--cleanup` prefix a benchmark cannot have made (so it deletes nothing else)."""
    if args.cleanup and not PREFIX_PATTERN.fullmatch(args.cleanup):
        parser.error("--cleanup takes a prefix this benchmark made: bench-<10 hex digits>")


def service_env(
    broker_url: str, redis_url: str, prefix: str, log_level: str = "WARNING"
) -> dict[str, str]:
    """This process's environment plus the settings of an agentroster server under `prefix`."""
    env = dict(os.environ)
    env.update(
        AGENTROSTER_PREFIX=prefix,
        AGENTROSTER_BROKER_URL=broker_url,
        AGENTROSTER_REDIS_URL=redis_url,
        AGENTROSTER_LOG_LEVEL=log_level,
        # a bench's population is one identity (the bench's broker user): no quota
        AGENTROSTER_MAX_AGENTS_PER_IDENTITY="0",
        # several workers run side by side: none serves the health port
        AGENTROSTER_WORKER_PORT="0",
    )
    return env


def glob_escape(text: str) -> str:
    """`text` as a literal in a Redis SCAN pattern (so a prefix never matches others' keys)."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


async def delete_keys(redis: Redis, match: str) -> int:
    """Delete the Redis keys matching `match` (SCAN, 1,000 at a time); how many went."""
    deleted = 0
    batch: list[bytes] = []
    async for key in redis.scan_iter(match=match, count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += await redis.delete(*batch)
            batch = []
    if batch:
        deleted += await redis.delete(*batch)
    return deleted


async def cleanup_prefix(connection: AbstractConnection, redis: Redis, prefix: str) -> None:
    """Delete a run's queues, exchanges and Redis keys (its own prefix, nothing else)."""
    names, keys = Topology(prefix), Keys(prefix)
    for queue in names.queues:
        channel = await connection.channel()
        with contextlib.suppress(Exception):  # never declared
            await channel.queue_delete(queue)
        with contextlib.suppress(Exception):
            await channel.close()
    for exchange in names.exchanges:
        channel = await connection.channel()
        with contextlib.suppress(Exception):
            await channel.exchange_delete(exchange)
        with contextlib.suppress(Exception):
            await channel.close()
    deleted = await delete_keys(redis, glob_escape(keys.base) + "*")
    print(f"cleaned up: 3 queues, 3 exchanges, {deleted:,} Redis keys of {prefix}", flush=True)


async def cleanup_left_behind(broker_url: str, redis_url: str, prefix: str) -> None:
    """`--cleanup PREFIX`: delete what an interrupted run of that prefix left behind."""
    connection = await aio_pika.connect(broker_url)
    redis = Redis.from_url(redis_url)
    try:
        await cleanup_prefix(connection, redis, prefix)
    finally:
        await redis.aclose()
        await connection.close()
