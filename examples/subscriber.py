"""A service that follows the registry: one line per agent.joined / agent.updated / agent.left.

    AGENTROSTER_BROKER_URL=amqp://guest:guest@127.0.0.1:5672/ python examples/subscriber.py

A plain aio-pika consumer, no agentroster code needed beyond the exchange's name: events are
CloudEvents in binary mode (attributes in `cloudEvents_*` headers, the data as the JSON body),
published to the topic exchange `<prefix>.events` with routing key `agent.<kind>.<agent_id>`.
Bind `agent.*.*` for everything, `agent.left.*` for departures, `agent.*.weather` for one agent.

The exclusive queue sees events from the moment it is bound; to replay older ones, read the
`<prefix>.events.log` stream queue instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from agentroster.contracts import Topology


async def on_event(message: AbstractIncomingMessage) -> None:
    async with message.process():
        _, kind, _ = (message.routing_key or "..").split(".", 2)
        data = json.loads(message.body)
        print(
            f"{kind} {data['agent_id']} status={data['status']} reason={data['reason']} "
            f"revision={data['revision']} live_instances={data['live_instances']}",
            flush=True,
        )


async def main(bindings: list[str]) -> None:
    broker_url = os.environ.get("AGENTROSTER_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")
    prefix = os.environ.get("AGENTROSTER_PREFIX", "agentroster")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    connection = await aio_pika.connect_robust(broker_url)
    try:
        channel = await connection.channel()
        # Declared as the worker declares it, so the subscriber may start first.
        exchange = await channel.declare_exchange(
            Topology(prefix).events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True)  # a private, server-named queue
        for binding in bindings:
            await queue.bind(exchange, routing_key=binding)
        await queue.consume(on_event)
        print(f"subscribed to {exchange.name}: {' '.join(bindings)}", flush=True)
        await stop.wait()
    finally:
        await connection.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Print the registry's events.")
    parser.add_argument(
        "bindings", nargs="*", default=["agent.*.*"], help="routing-key patterns (agent.*.*)"
    )
    args = parser.parse_args()
    asyncio.run(main(args.bindings))
