"""A KEDA-style ephemeral worker for a queue-addressed agent.

    AGENTROSTER_BROKER_URL=amqp://guest:guest@127.0.0.1:5672/ \\
        python examples/keda_worker.py --name Summarizer --queue agents.summarizer

KEDA starts replicas of this worker while its queue holds jobs and stops them (SIGTERM) when
it is empty. Callers reach the agent through the queue, which the card names as an A2A v1.0
interface (`amqp://host/?queue=Q`, protocol binding `urn:agentroster:binding:amqp-0-9-1`).

- On start it `announce()`s itself once with an explicit lease (`--ttl`): no heartbeat task.
- Each job renews the lease (`renew()`); a replica that stops taking jobs simply expires.
- On SIGTERM it stops consuming, finishes the job in hand and deregisters (`close()`). With
  `--idle-ttl` > 0 the last replica leaving makes the agent `idle` (event `agent.updated`,
  reason `scaled-to-zero`): still reachable through its queue, where KEDA wakes it again.
  With `--idle-ttl 0` it goes `offline` (event `agent.left`).

Its commands carry the broker user as `user_id`, and the commands exchange is only looked up:
`agentroster broker grant-agent USER --agents summarizer` covers the registration. The job
queue is the agent's own business: declaring and consuming it takes *configure* and *read*
on it, which `grant-agent` does not give (see the README, Security).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from typing import Any
from urllib.parse import urlencode, urlsplit

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from agentroster.client import announce
from agentroster.contracts import AMQP_BINDING_URI, derive_agent_id
from agentroster.contracts.topology import DEFAULT_BROKER_URL, DEFAULT_PREFIX


def queue_url(broker_url: str, queue: str) -> str:
    """Where callers send jobs: the broker (without credentials) and the queue's name."""
    broker = urlsplit(broker_url)
    host = broker.hostname or "127.0.0.1"
    port = f":{broker.port}" if broker.port else ""
    return f"{broker.scheme}://{host}{port}{broker.path or '/'}?{urlencode({'queue': queue})}"


def summarizer_card(name: str, url: str) -> dict[str, Any]:
    """An A2A v1.0 card whose only interface is a queue."""
    return {
        "name": name,
        "description": "Summarises documents; send a job to its queue.",
        "version": "1.0.0",
        "supportedInterfaces": [
            {"url": url, "protocolBinding": AMQP_BINDING_URI, "protocolVersion": "1.0"}
        ],
        "capabilities": {},
        "defaultInputModes": ["text/plain"],
        "defaultOutputModes": ["text/plain"],
        "skills": [
            {
                "id": "summarize",
                "name": "Summarize",
                "description": "A short summary of a text.",
                "tags": ["text", "summary"],
            }
        ],
    }


async def main(name: str, queue_name: str, ttl_s: float, idle_ttl_s: float) -> None:
    broker_url = os.environ.get("AGENTROSTER_BROKER_URL", DEFAULT_BROKER_URL)
    prefix = os.environ.get("AGENTROSTER_PREFIX", DEFAULT_PREFIX)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    connection = await aio_pika.connect_robust(broker_url)
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1)  # one job at a time
        # The queue outlives the replicas: jobs wait in it while the agent is scaled to zero.
        queue = await channel.declare_queue(queue_name, durable=True)

        announcement = await announce(
            summarizer_card(name, queue_url(broker_url, queue_name)),
            broker_url,
            ttl_s=ttl_s,
            idle_ttl_s=idle_ttl_s or None,
            prefix=prefix,
        )
        print(f"announced {announcement.agent_id}/{announcement.instance_id}", flush=True)
        try:
            busy = asyncio.Lock()

            async def on_job(message: AbstractIncomingMessage) -> None:
                async with busy, message.process():
                    await announcement.renew()  # the lease now covers this job
                    text = message.body.decode(errors="replace")
                    print(f"job {message.message_id}: {text}", flush=True)
                    # ... the actual work goes here ...

            consumer_tag = await queue.consume(on_job)
            await stop.wait()
            await queue.cancel(consumer_tag)  # take no new job,
            async with busy:  # but finish the one in hand
                pass
        finally:
            await announcement.close()
            print(f"deregistered {announcement.agent_id}/{announcement.instance_id}", flush=True)
    finally:
        await connection.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="A KEDA-style worker of a queue-addressed agent.")
    parser.add_argument("--name", default="Summarizer", help="the card's name")
    parser.add_argument("--queue", default=None, help="its job queue (default: agents.<id>)")
    parser.add_argument("--ttl", type=float, default=300.0, help="lease per job (s)")
    parser.add_argument(
        "--idle-ttl", type=float, default=3600.0, help="idle after scale-to-zero (s); 0: offline"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    queue_name = args.queue or f"agents.{derive_agent_id(args.name)}"
    asyncio.run(main(args.name, queue_name, args.ttl, args.idle_ttl))
