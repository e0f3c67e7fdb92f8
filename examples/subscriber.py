"""A service that follows the registry: one line per agent.joined / agent.updated / agent.left.

    AGENTROSTER_BROKER_URL=amqp://guest:guest@127.0.0.1:5672/ python examples/subscriber.py

A plain aio-pika consumer, no agentroster code needed beyond the exchange's name: events are
CloudEvents in binary mode (attributes in `cloudEvents_*` headers, the data as the JSON body),
published to the topic exchange `<prefix>.events` with routing key `agent.<kind>.<agent_id>`.
Bind `agent.*.*` for everything, `agent.left.*` for departures, `agent.*.weather` for one agent.

The exclusive queue sees events from the moment it is bound; to replay older ones, read the
`<prefix>.events.log` stream queue instead.

Only the registry may publish to the events exchange, and every event carries its broker user
name as the AMQP `user_id`, which RabbitMQ checks against the publishing connection: an event
whose `user_id` is not the registry's user (`--registry-user`, or `AGENTROSTER_REGISTRY_USER`;
default `guest`, the user of a registry set up with no users of its own) did not come from the
registry, and is dropped with a warning. The subscriber needs no *configure* on the exchange
(it looks it up passively): `agentroster broker grant-subscriber USER` gives it what it needs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from agentroster.contracts import Topology
from agentroster.contracts.topology import DEFAULT_BROKER_URL, DEFAULT_PREFIX


def event_printer(registry_user: str) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
    """A consumer that prints the registry's events and drops any other publisher's."""

    async def on_event(message: AbstractIncomingMessage) -> None:
        async with message.process():
            if message.user_id != registry_user:
                print(
                    f"dropped an event from user_id={message.user_id!r} (not the registry's "
                    f"user {registry_user!r}): routing key {message.routing_key}",
                    file=sys.stderr,
                    flush=True,
                )
                return
            _, kind, _ = (message.routing_key or "..").split(".", 2)
            data = json.loads(message.body)
            print(
                f"{kind} {data['agent_id']} status={data['status']} reason={data['reason']} "
                f"revision={data['revision']} live_instances={data['live_instances']}",
                flush=True,
            )

    return on_event


async def main(bindings: list[str], registry_user: str) -> None:
    broker_url = os.environ.get("AGENTROSTER_BROKER_URL", DEFAULT_BROKER_URL)
    prefix = os.environ.get("AGENTROSTER_PREFIX", DEFAULT_PREFIX)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    connection = await aio_pika.connect_robust(broker_url)
    try:
        channel = await connection.channel()
        # Looked up, not declared (that would need *configure*): the registry declares it.
        exchange = await channel.get_exchange(Topology(prefix).events_exchange)
        queue = await channel.declare_queue(exclusive=True)  # a private, server-named queue
        for binding in bindings:
            await queue.bind(exchange, routing_key=binding)
        await queue.consume(event_printer(registry_user))
        print(f"subscribed to {exchange.name}: {' '.join(bindings)}", flush=True)
        await stop.wait()
    finally:
        await connection.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Print the registry's events.")
    parser.add_argument(
        "bindings", nargs="*", default=["agent.*.*"], help="routing-key patterns (agent.*.*)"
    )
    parser.add_argument(
        "--registry-user",
        default=os.environ.get("AGENTROSTER_REGISTRY_USER", "guest"),
        help="the registry's broker user: events with another user_id are dropped",
    )
    args = parser.parse_args()
    asyncio.run(main(args.bindings, args.registry_user))
