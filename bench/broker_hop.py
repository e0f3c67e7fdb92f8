"""One broker hop alone: publish (with confirms, persistent) to a queue, consume it, no worker.

Run from the repository root: `.venv/bin/python -m bench.broker_hop` (see bench/README.md,
"Latency"). It tells how much of `bench.latency`'s register -> agent.joined path the broker
takes by itself: for a quorum queue (the commands queue's type) and a classic queue, with a
gap between messages (as one registration every 30 ms) and back to back. Each queue is
declared under the run's prefix and deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from bench.harness.measure import load_average, percentile
from bench.harness.services import DEFAULT_BROKER_URL, new_prefix

#: Messages published before the measured ones (connection and queue warm-up).
WARMUP = 20
#: About the size of a register command with a small card.
BODY = b"x" * 600


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


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.broker_hop", description=__doc__)
    parser.add_argument("--broker-url", default=DEFAULT_BROKER_URL)
    parser.add_argument("--count", type=int, default=200, help="measured messages per case")
    parser.add_argument("--gap-ms", type=float, default=30.0, help="pause between messages")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    """Measure every case and print one line each."""
    print(f"one broker hop, {args.count} messages per case, load {load_average():.1f}")
    for gap_ms in (args.gap_ms, 0.0):
        for queue_type in ("quorum", "classic"):
            times = await hop(args.broker_url, queue_type, args.count, gap_ms / 1000)
            print(
                f"  {queue_type:8} gap {gap_ms:4.0f} ms   p50 {percentile(times, 0.5):6.2f} ms"
                f"  p99 {percentile(times, 0.99):6.2f} ms"
            )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point."""
    asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
