"""Latency from an agent's `register` to `agent.joined` at a plain AMQP subscriber.

Run from the repository root: `.venv/bin/python -m bench.latency` (see bench/README.md).

1. Starts the real worker in its own process (`--role worker`, as `agentroster worker` runs it).
2. Binds a plain aio-pika subscriber (exclusive queue, `agent.joined.*`) to the events exchange.
3. Publishes one `register` of a new agent every `--interval-ms` (with publisher confirms and
   `mandatory`, as `CommandPublisher` does) and measures from just before the publish to the
   arrival of that agent's `agent.joined` at the subscriber. Prints p50, p99 and max.
4. With `--stages`, the worker process stamps every agent's steps (delivered to the batcher,
   script call started and returned, read from the outbox by the relay, relay publish started
   and confirmed) on the monotonic clock the bench's processes share (`time.perf_counter` is
   CLOCK_MONOTONIC on Linux), and the bench prints each step's median and p99. The stamps cost
   a few microseconds per step; use them for the breakdown, the plain run for the figures.
5. Deletes what it created (queues, exchanges, Redis keys of its own prefix, nothing else).

The same file is the worker process: `--role worker --prefix <prefix>` (internal).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from redis.asyncio import Redis

from agentroster.contracts import Register, Topology
from agentroster.settings import Settings
from agentroster.worker import create_worker
from bench.harness.measure import percentile
from bench.harness.processes import ROOT, role_command
from bench.harness.processes import until_terminated as _until_terminated
from bench.harness.services import add_service_options, cleanup_prefix, new_prefix

#: The steps the worker stamps, in path order (see `install_stamps`).
STEPS = ("delivered", "apply_start", "apply_end", "read", "publish_start", "confirmed")


def _settings(args: argparse.Namespace, prefix: str) -> Settings:
    return Settings(broker_url=args.broker_url, redis_url=args.redis_url, prefix=prefix)


def install_stamps(stamps: dict[str, dict[str, float]]) -> None:
    """Wrap the worker's steps (class attributes, before the worker is built) so that each
    records, per agent, when it ran."""
    from agentroster.store.outbox import Outbox
    from agentroster.store.redis_store import RedisStore
    from agentroster.worker.batcher import CommandBatcher
    from agentroster.worker.relay import OutboxRelay

    def stamp(agent_id: str, step: str) -> None:
        stamps.setdefault(agent_id, {}).setdefault(step, time.perf_counter())

    on_message, apply = CommandBatcher.on_message, RedisStore.apply
    after, publish = Outbox.after, OutboxRelay._publish

    async def on_message_(self: Any, message: AbstractIncomingMessage) -> None:
        stamp((message.routing_key or "..").split(".")[1], "delivered")
        await on_message(self, message)

    async def apply_(self: Any, batch: Any) -> Any:
        for p in batch:
            stamp(p.agent_id, "apply_start")
        result = await apply(self, batch)
        for p in batch:
            stamp(p.agent_id, "apply_end")
        return result

    async def after_(self: Any, *a: Any, **kw: Any) -> Any:
        events = await after(self, *a, **kw)
        for e in events:
            stamp(e.agent_id, "read")
        return events

    async def publish_(self: Any, event: Any) -> None:
        stamp(event.agent_id, "publish_start")
        await publish(self, event)
        stamp(event.agent_id, "confirmed")

    CommandBatcher.on_message = on_message_  # type: ignore[method-assign]
    RedisStore.apply = apply_  # type: ignore[method-assign]
    Outbox.after = after_  # type: ignore[method-assign]
    OutboxRelay._publish = publish_  # type: ignore[method-assign]


async def role_worker(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    """The real worker until terminated; with `--stages-file`, stamping its steps."""
    stamps: dict[str, dict[str, float]] = {}
    if args.stages_file:
        install_stamps(stamps)
    async with create_worker(_settings(args, args.prefix)):
        print("ready", flush=True)
        await _until_terminated()
    return stamps


def _register_body(agent_id: str) -> bytes:
    card = {
        "name": f"Latency agent {agent_id}",
        "description": "An agent of the agentroster latency benchmark.",
        "version": "1.0.0",
        "skills": [{"id": "echo", "name": "Echo", "tags": ["bench"]}],
    }
    command = Register(
        agent_id=agent_id,
        instance_id=f"{agent_id}-{secrets.token_hex(4)}",
        seq=1,
        sent_at=datetime.now(UTC),
        ttl_s=3600.0,
        interval_s=10.0,
        card=card,
    )
    return command.model_dump_json(exclude_none=True).encode()


Run = tuple[list[str], dict[str, float], dict[str, float], str]


async def run(args: argparse.Namespace) -> Run:
    """Measure; returns the measured agents, when each was sent and joined, and the stamps'
    file ("" without --stages)."""
    prefix = new_prefix()
    names = Topology(prefix)
    stages_file = ""
    if args.stages:
        stages_file = str(Path(tempfile.gettempdir()) / f"agentroster-latency-{prefix}.json")
    command = role_command("bench.latency", "--role", "worker", "--prefix", prefix)
    command += ["--broker-url", args.broker_url, "--redis-url", args.redis_url]
    if stages_file:
        command += ["--stages-file", stages_file]
    worker = await asyncio.create_subprocess_exec(
        *command, cwd=ROOT, stdout=asyncio.subprocess.PIPE
    )
    assert worker.stdout is not None
    await asyncio.wait_for(worker.stdout.readline(), 60)  # "ready": topology declared
    connection = await aio_pika.connect(args.broker_url)
    redis = Redis.from_url(args.redis_url)
    sent: dict[str, float] = {}
    confirmed: dict[str, float] = {}
    joined: dict[str, float] = {}
    arrived = asyncio.Event()
    try:
        channel = await connection.channel()
        events = await channel.get_exchange(names.events_exchange)
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(events, routing_key="agent.joined.*")

        async def on_event(message: AbstractIncomingMessage) -> None:
            joined.setdefault((message.routing_key or "..").split(".")[2], time.perf_counter())
            arrived.set()

        await queue.consume(on_event, no_ack=True)
        publish_channel = await connection.channel(publisher_confirms=True)
        commands = await publish_channel.get_exchange(names.commands_exchange)
        total = args.warmup + args.count
        next_at = time.perf_counter()
        for k in range(total):
            agent_id = f"lat-{k:05d}"
            message = aio_pika.Message(
                _register_body(agent_id),
                content_type="application/json",
                type="register",
                message_id=secrets.token_hex(8),
                timestamp=datetime.now(UTC),
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            delay = next_at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            next_at += args.interval_ms / 1000
            sent[agent_id] = time.perf_counter()
            await commands.publish(
                message, routing_key=names.command_key(agent_id, "register"), mandatory=True
            )
            confirmed[agent_id] = time.perf_counter()
        deadline = time.perf_counter() + 30
        while len(joined) < total and time.perf_counter() < deadline:
            arrived.clear()
            await asyncio.wait_for(arrived.wait(), 30)
    finally:
        worker.terminate()
        await worker.wait()
        await cleanup_prefix(connection, redis, prefix)
        await redis.aclose()
        await connection.close()
    measured = [f"lat-{k:05d}" for k in range(args.warmup, total)]
    latencies = [(joined[a] - sent[a]) * 1000 for a in measured if a in joined]
    confirms = [(confirmed[a] - sent[a]) * 1000 for a in measured]
    print(
        f"\nregister -> agent.joined: {len(latencies)} of {len(measured)} registrations, "
        f"one every {args.interval_ms:g} ms (after {args.warmup} warm-up), "
        f"load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"  latency    p50 {statistics.median(latencies):6.2f} ms  "
        f"p99 {percentile(latencies, 0.99):6.2f} ms  max {max(latencies):6.2f} ms"
    )
    print(
        f"  publish+confirm at the agent  p50 {statistics.median(confirms):6.2f} ms  "
        f"p99 {percentile(confirms, 0.99):6.2f} ms"
    )
    return measured, sent, joined, stages_file


def print_stages(
    measured: list[str],
    sent: dict[str, float],
    joined: dict[str, float],
    stamps: dict[str, dict[str, float]],
) -> None:
    """Each step's share of the path, median and p99 over the agents that passed every step."""
    rows = []
    for agent_id in measured:
        s = stamps.get(agent_id, {})
        if agent_id in joined and all(step in s for step in STEPS):
            rows.append([sent[agent_id], *(s[step] for step in STEPS), joined[agent_id]])
    labels = ["sent", *STEPS, "joined at subscriber"]
    print(f"\n  steps (worker stamps, {len(rows)} agents)        p50 ms   p99 ms")
    for n in range(1, len(labels)):
        label = f"{labels[n - 1]} -> {labels[n]}"
        gaps = [(row[n] - row[n - 1]) * 1000 for row in rows]
        print(f"  {label:42} {statistics.median(gaps):7.3f}  {percentile(gaps, 0.99):7.3f}")
    if rows:
        tail = [(row[-1] - row[4]) * 1000 for row in rows]
        print(f"  {'apply_end -> joined at subscriber':42} {statistics.median(tail):7.3f}")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=300, help="registrations measured (300)")
    parser.add_argument("--warmup", type=int, default=20, help="registrations before (20)")
    parser.add_argument("--interval-ms", type=float, default=30.0, help="between them (30)")
    parser.add_argument("--stages", action="store_true", help="print the worker's steps too")
    add_service_options(parser)
    parser.add_argument("--role", choices=["worker"], help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    parser.add_argument("--stages-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.count < 1 or args.warmup < 0 or args.interval_ms <= 0:
        parser.error("--count must be positive, --warmup not negative, --interval-ms positive")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.role:
        stamps = asyncio.run(role_worker(args))
        if args.stages_file:
            Path(args.stages_file).write_text(json.dumps(stamps))
        return
    measured, sent, joined, stages_file = asyncio.run(run(args))
    if stages_file:
        path = Path(stages_file)
        print_stages(measured, sent, joined, json.loads(path.read_text()))
        path.unlink()


if __name__ == "__main__":
    main()
