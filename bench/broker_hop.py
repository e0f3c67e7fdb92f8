"""One broker hop alone, and the whole path as a raw prototype, no agentroster code.

Run from the repository root: `.venv/bin/python -m bench.broker_hop` (see bench/README.md,
"Latency"). It tells how much of `bench.latency`'s register -> agent.joined path the broker
takes by itself:

- one hop: publish (with confirms, persistent) to a queue and consume it, for a quorum queue
  (the commands queue's type) and a classic queue;
- the raw path: the same publish to a commands queue, whose consumer runs one small script in
  Redis (HSET and XADD, as apply.lua's least) and publishes the event (persistent, confirmed)
  to a topic exchange, to a plain subscriber's queue. Everything in one process on one
  connection, the fewest wake-ups any implementation of the path can have.

Each case runs with a gap between messages (as one registration every 30 ms) and back to back.
Queues, exchange and Redis keys are made under the run's prefix and deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from redis.asyncio import Redis

from bench.harness.measure import load_average, percentile
from bench.harness.services import DEFAULT_BROKER_URL, DEFAULT_REDIS_URL, new_prefix

#: Messages published before the measured ones (connection and queue warm-up).
WARMUP = 20
#: About the size of a register command with a small card.
BODY = b"x" * 600
#: The least of an apply: the agent's record written and one outbox entry appended.
APPLY = """
redis.call('HSET', KEYS[1], 'status', 'live', 'body', ARGV[1])
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', 1000, '*', 'event', ARGV[1])
"""


async def hop(broker_url: str, queue_type: str, count: int, gap_s: float) -> list[float]:
    """Publish-to-delivery times (ms) of `count` messages through one fresh queue."""
    connection = await aio_pika.connect(broker_url)
    try:
        publishing = await connection.channel(publisher_confirms=True)
        consuming = await connection.channel()
        name = f"{new_prefix()}.hop.{queue_type}"
        queue = await consuming.declare_queue(
            name, durable=True, arguments={"x-queue-type": queue_type}
        )
        arrived: asyncio.Queue[float] = asyncio.Queue()

        async def on_message(message: AbstractIncomingMessage) -> None:
            await arrived.put(time.perf_counter())
            await message.ack()

        tag = await queue.consume(on_message)
        times: list[float] = []
        try:
            for n in range(WARMUP + count):
                sent = time.perf_counter()
                message = aio_pika.Message(BODY, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
                await publishing.default_exchange.publish(message, routing_key=name)
                delivered = await arrived.get()
                if n >= WARMUP:
                    times.append((delivered - sent) * 1000)
                if gap_s:
                    await asyncio.sleep(gap_s)
        finally:
            await queue.cancel(tag)
            await queue.delete(if_unused=False, if_empty=False)
        return times
    finally:
        await connection.close()


async def raw_path(
    broker_url: str, redis_url: str, queue_type: str, count: int, gap_s: float
) -> list[float]:
    """Publish-to-subscriber times (ms) of `count` commands through the raw path (module
    docstring): commands queue, Redis script, events exchange, subscriber queue."""
    prefix = f"{new_prefix()}.path.{queue_type}"
    connection = await aio_pika.connect(broker_url)
    redis = Redis.from_url(redis_url)
    try:
        agent = await connection.channel(publisher_confirms=True)
        worker = await connection.channel(publisher_confirms=True)
        commands = await worker.declare_queue(
            f"{prefix}.commands", durable=True, arguments={"x-queue-type": queue_type}
        )
        events = await worker.declare_exchange(
            f"{prefix}.events", aio_pika.ExchangeType.TOPIC, durable=True
        )
        subscriber = await agent.declare_queue(exclusive=True)
        await subscriber.bind(events, routing_key="agent.joined.*")
        apply = redis.register_script(APPLY)
        keys = [f"{prefix}:agent", f"{prefix}:outbox"]
        arrived: asyncio.Queue[float] = asyncio.Queue()

        async def on_command(message: AbstractIncomingMessage) -> None:
            await apply(keys=keys, args=[message.body])
            event = aio_pika.Message(message.body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            await events.publish(event, routing_key="agent.joined.a")
            await message.ack()

        async def on_event(message: AbstractIncomingMessage) -> None:
            await arrived.put(time.perf_counter())
            await message.ack()

        tags = [(commands, await commands.consume(on_command))]
        tags.append((subscriber, await subscriber.consume(on_event)))
        times: list[float] = []
        try:
            for n in range(WARMUP + count):
                sent = time.perf_counter()
                message = aio_pika.Message(BODY, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
                await agent.default_exchange.publish(message, routing_key=commands.name)
                delivered = await arrived.get()
                if n >= WARMUP:
                    times.append((delivered - sent) * 1000)
                if gap_s:
                    await asyncio.sleep(gap_s)
        finally:
            for queue, tag in tags:
                await queue.cancel(tag)
            await commands.delete(if_unused=False, if_empty=False)
            await events.delete()
            await redis.delete(*keys)
        return times
    finally:
        await redis.aclose()
        await connection.close()


def _line(label: str, gap_ms: float, times: list[float]) -> str:
    return (
        f"  {label:22} gap {gap_ms:4.0f} ms   p50 {percentile(times, 0.5):6.2f} ms"
        f"  p99 {percentile(times, 0.99):6.2f} ms"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.broker_hop", description=__doc__)
    parser.add_argument("--broker-url", default=DEFAULT_BROKER_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--count", type=int, default=200, help="measured messages per case")
    parser.add_argument("--gap-ms", type=float, default=30.0, help="pause between messages")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    """Measure every case and print one line each."""
    print(
        f"one broker hop, and the raw path, {args.count} messages per case, load "
        f"{load_average():.1f}"
    )
    for gap_ms in (args.gap_ms, 0.0):
        for queue_type in ("quorum", "classic"):
            times = await hop(args.broker_url, queue_type, args.count, gap_ms / 1000)
            print(_line(f"hop, {queue_type}", gap_ms, times))
        for queue_type in ("quorum", "classic"):
            times = await raw_path(
                args.broker_url, args.redis_url, queue_type, args.count, gap_ms / 1000
            )
            print(_line(f"raw path, {queue_type}", gap_ms, times))


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point."""
    asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
