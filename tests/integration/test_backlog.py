"""The reaper's backlog gauge reads the queue's depth afresh every time."""

from __future__ import annotations

import aio_pika

from agentroster.worker.backlog import QueueDepth
from tests.services import Services


async def test_queue_depth_follows_the_queue(services: Services, prefix: str) -> None:
    """0, then 5 after five messages, then 0 after a purge: never a stale first reading."""
    name = f"{prefix}.depth"
    connection = await aio_pika.connect(services.broker_url)
    channel = await connection.channel()  # with publisher confirms: a publish is enqueued
    depth = QueueDepth(services.broker_url, name)
    try:
        queue = await channel.declare_queue(name, auto_delete=False)
        assert await depth.ready() == 0
        for n in range(5):
            await channel.default_exchange.publish(aio_pika.Message(b"%d" % n), routing_key=name)
        assert await depth.ready() == 5
        await queue.purge()
        assert await depth.ready() == 0
    finally:
        await depth.close()
        await channel.queue_delete(name)
        await connection.close()
