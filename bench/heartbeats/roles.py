"""The consumer processes, one per variant (`python -m bench.heartbeats --role <variant>`).

Each drains `<prefix>.commands`, applies every heartbeat with `apply.lua`, and on SIGTERM
prints one JSON line: the outcome per command and the number of script calls.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from faststream import AckPolicy
from faststream.rabbit import Channel, RabbitBroker, RabbitMessage
from redis.asyncio import BlockingConnectionPool, Redis

from agentroster.contracts import Heartbeat, Topology
from agentroster.registry.prepare import (
    Limits,
    Prepared,
    kind_from_routing_key,
    prepare,
    prepare_heartbeat,
)
from agentroster.settings import Settings
from agentroster.store.redis_store import OUTCOMES, RedisStore
from agentroster.worker import create_worker
from agentroster.worker.app import CommandPayload
from agentroster.worker.metrics import WorkerMetrics
from agentroster.worker.topology import rabbit_topology
from bench.harness.processes import until_terminated

PREFETCH = 2000  # the worker's default (Settings.prefetch); the ceiling uses the same
BATCH = 500  # the worker's default (Settings.batch_max); the ceiling uses the same
FLUSH_IDLE_S = 0.02  # the ceiling applies a partial batch after this long without deliveries

VARIANTS: dict[str, str] = {
    "worker": "worker (FastStream-declared, CommandBatcher)",
    "ceiling": "ceiling (raw aio-pika, 1 Lua per 500)",
    "ceiling-eager": "raw aio-pika, eager batches",
    "fs-batched": "FastStream handler, 1 Lua per batch",
    "fs-per-message": "FastStream handler, 1 Lua per message",
}
DEFAULT_VARIANTS = ("worker", "ceiling")


@dataclass
class Tally:
    """What a consumer process applied: outcome per command, and apply.lua calls."""

    codes: Counter[int] = field(default_factory=Counter)
    batches: int = 0

    def add(self, codes: list[int]) -> None:
        """Count one apply.lua call's outcome codes."""
        self.codes.update(codes)
        self.batches += 1

    def report(self) -> dict[str, Any]:
        """What the process prints on exit: outcomes by name, and the number of calls."""
        outcomes = {OUTCOMES[code]: n for code, n in self.codes.items()}
        return {"outcomes": outcomes, "batches": self.batches}


def _report_from(metrics: WorkerMetrics) -> dict[str, Any]:
    outcomes: Counter[str] = Counter()
    batches = 0
    for metric in metrics.registry.collect():
        for sample in metric.samples:
            if sample.name == "agentroster_commands_total":
                outcomes[sample.labels["outcome"]] += int(sample.value)
            elif sample.name == "agentroster_command_batches_total":
                batches += int(sample.value)
    return {"outcomes": dict(outcomes), "batches": batches}


async def role_worker(args: argparse.Namespace) -> dict[str, Any]:
    """The real worker, exactly as `agentroster worker` runs it."""
    settings = Settings(broker_url=args.broker_url, redis_url=args.redis_url, prefix=args.prefix)
    worker = create_worker(settings)
    async with worker:
        await until_terminated()
    return _report_from(worker.metrics)


async def role_ceiling(args: argparse.Namespace, *, eager: bool = False) -> dict[str, Any]:
    """No FastStream: aio-pika, prefetch 2000, prepare() + one apply.lua per batch, multiple-ack.

    Batches are full (BATCH commands; a smaller rest once nothing arrived for FLUSH_IDLE_S).
    eager: like CommandBatcher, take whatever is queued (up to BATCH) as soon as the previous
    batch committed.
    """
    limits = Limits()
    redis = Redis.from_url(args.redis_url)
    store = RedisStore(redis, args.prefix)
    connection = await aio_pika.connect(args.broker_url)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=PREFETCH)
    queue = await channel.get_queue(Topology(args.prefix).commands_queue, ensure=True)
    pending: list[AbstractIncomingMessage] = []
    ready = asyncio.Event()
    tally = Tally()

    loop = asyncio.get_running_loop()
    last_delivery = loop.time()

    async def on_message(message: AbstractIncomingMessage) -> None:
        nonlocal last_delivery
        pending.append(message)
        last_delivery = loop.time()
        if eager or len(pending) >= BATCH:
            ready.set()

    async def apply(batch: list[AbstractIncomingMessage]) -> None:
        commands = [prepare(m.routing_key or "", m.body, m.user_id, limits) for m in batch]
        codes = (await store.apply(commands)).codes
        tally.add(codes)
        await batch[-1].ack(multiple=True)

    async def flush() -> None:
        while True:
            try:
                await asyncio.wait_for(ready.wait(), None if eager else FLUSH_IDLE_S)
            except TimeoutError:  # nothing arrived for a while: apply the rest
                if pending and loop.time() - last_delivery >= FLUSH_IDLE_S:
                    batch = pending[:BATCH]
                    del pending[:BATCH]
                    await apply(batch)
                continue
            ready.clear()
            while len(pending) >= (1 if eager else BATCH):
                batch = pending[:BATCH]
                del pending[:BATCH]
                await apply(batch)

    flusher = asyncio.create_task(flush())
    tag = await queue.consume(on_message)
    await until_terminated()
    await queue.cancel(tag)
    flusher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await flusher
    await connection.close()
    await redis.aclose()
    return tally.report()


def _prepared_from(
    command: CommandPayload, raw: AbstractIncomingMessage, limits: Limits
) -> Prepared:
    """What `prepare()` returns, from the command FastStream already decoded and validated."""
    agent_id, kind = kind_from_routing_key(raw.routing_key or "")
    if isinstance(command, Heartbeat) and kind == "heartbeat" and agent_id == command.agent_id:
        return prepare_heartbeat(command, raw.user_id or "", limits)
    return prepare(raw.routing_key or "", raw.body, raw.user_id, limits)  # not in this bench


async def role_faststream(args: argparse.Namespace, *, batched: bool) -> dict[str, Any]:
    """A plain FastStream subscriber with a typed handler: FastStream decodes and validates the
    body, injects the message (fast_depends), runs its middlewares, per message.

    Per message (the design before CommandBatcher): each command gets its own apply.lua call and
    FastStream acknowledges it. Batched: the handler queues the command, a flusher applies 500
    per apply.lua call and acknowledges with multiple-acks (handlers finish out of delivery
    order, so it acks up to the highest tag below which everything is applied).
    """
    settings = Settings(broker_url=args.broker_url, redis_url=args.redis_url, prefix=args.prefix)
    rabbit = rabbit_topology(
        Topology(args.prefix),
        delivery_limit=settings.delivery_limit,
        event_log_max_age=settings.event_log_max_age,
        commands_max_length=settings.commands_max_length,
        dead_letter_max_length=settings.dead_letter_max_length,
    )
    # up to PREFETCH handlers run at once: bound the connections they open to Redis
    redis = Redis(
        connection_pool=BlockingConnectionPool.from_url(args.redis_url, max_connections=64)
    )
    store = RedisStore(redis, args.prefix)
    limits = Limits()
    tally = Tally()
    broker = RabbitBroker(args.broker_url, logger=logging.getLogger("agentroster.broker"))
    subscriber = broker.subscriber(
        rabbit.commands_queue,
        rabbit.commands_exchange,
        channel=Channel(prefetch_count=PREFETCH),
        ack_policy=AckPolicy.MANUAL if batched else AckPolicy.REJECT_ON_ERROR,
    )
    pending: list[tuple[AbstractIncomingMessage, Prepared]] = []
    wakeup = asyncio.Event()

    async def per_message(command: CommandPayload, message: RabbitMessage) -> None:
        codes = (await store.apply([_prepared_from(command, message.raw_message, limits)])).codes
        tally.add(codes)

    async def to_batch(command: CommandPayload, message: RabbitMessage) -> None:
        pending.append((message.raw_message, _prepared_from(command, message.raw_message, limits)))
        wakeup.set()

    async def flush() -> None:
        applied: set[int] = set()
        unacked: dict[int, AbstractIncomingMessage] = {}
        acked = 0  # every delivery tag up to this one is acknowledged
        while True:
            await wakeup.wait()
            wakeup.clear()
            while pending:
                batch = pending[:BATCH]
                del pending[:BATCH]
                codes = (await store.apply([p for _m, p in batch])).codes
                tally.add(codes)
                for message, _p in batch:
                    assert message.delivery_tag is not None
                    applied.add(message.delivery_tag)
                    unacked[message.delivery_tag] = message
                top = acked
                while top + 1 in applied:
                    top += 1
                    applied.remove(top)
                if top > acked:
                    await unacked[top].ack(multiple=True)
                    for tag in range(acked + 1, top + 1):
                        del unacked[tag]
                    acked = top

    subscriber(to_batch if batched else per_message)
    flusher = asyncio.create_task(flush())
    await broker.start()
    await until_terminated()
    await broker.stop()
    flusher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await flusher
    await redis.aclose()
    return tally.report()


async def run_role(args: argparse.Namespace) -> None:
    """Run the consumer of `--role` until SIGTERM, then print its report as JSON.

    With `--gate` it first prints `ready` and waits for a line on stdin: the processes of one
    scale-out measurement start consuming together, not one interpreter start-up apart.
    """
    if args.gate:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
    roles: dict[str, Callable[[argparse.Namespace], Awaitable[dict[str, Any]]]] = {
        "worker": role_worker,
        "ceiling": role_ceiling,
        "ceiling-eager": lambda a: role_ceiling(a, eager=True),
        "fs-batched": lambda a: role_faststream(a, batched=True),
        "fs-per-message": lambda a: role_faststream(a, batched=False),
    }
    report = await roles[args.role](args)
    print(json.dumps(report), flush=True)
