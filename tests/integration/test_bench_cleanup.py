"""A benchmark's cleanup deletes exactly what its prefix created, on the real services.

Benchmarks share RabbitMQ and Redis with tests and other sessions, so `cleanup_prefix` must
leave every other name alone: a neighbouring prefix, a key that merely starts the same way.
"""

from __future__ import annotations

import aio_pika
from redis.asyncio import Redis

from agentroster.contracts import Topology
from agentroster.store.keys import Keys
from bench.harness.services import cleanup_prefix
from tests.helpers import cleanup_broker, cleanup_redis
from tests.services import Services


async def _queue_exists(connection: aio_pika.abc.AbstractConnection, name: str) -> bool:
    channel = await connection.channel()
    try:
        await channel.declare_queue(name, passive=True)
        return True
    except aio_pika.exceptions.ChannelClosed:
        return False
    finally:
        if not channel.is_closed:
            await channel.close()


async def test_cleanup_deletes_its_own_prefix_and_nothing_else(
    services: Services, prefix: str
) -> None:
    """Queues, exchanges and keys of the run's prefix go; a neighbour's (prefix + "x", and a
    key without the braces) stay."""
    neighbour = prefix + "x"
    redis = Redis.from_url(services.redis_url)
    connection = await aio_pika.connect(services.broker_url)
    try:
        channel = await connection.channel()
        for name in (prefix, neighbour):
            names = Topology(name)
            for exchange in names.exchanges:
                await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC)
            await channel.declare_queue(names.commands_queue)
        own = [Keys(prefix).agents, Keys(prefix).outbox, Keys(prefix).base + "x:1"]
        others = [Keys(neighbour).agents, f"{prefix}:agents", f"x{Keys(prefix).base}agents"]
        for key in own + others:
            await redis.set(key, "1")

        await cleanup_prefix(connection, redis, prefix)

        assert await redis.exists(*own) == 0
        assert await redis.exists(*others) == len(others)
        assert not await _queue_exists(connection, Topology(prefix).commands_queue)
        assert await _queue_exists(connection, Topology(neighbour).commands_queue)
    finally:
        await redis.delete(*others)
        await cleanup_redis(services.redis_url, prefix)
        await cleanup_broker(services.broker_url, prefix)
        await cleanup_broker(services.broker_url, neighbour)
        await redis.aclose()
        await connection.close()
