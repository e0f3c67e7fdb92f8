"""Heartbeat throughput of the worker against a raw aio-pika consumer (the ceiling).

Run from the repository root: `.venv/bin/python bench/heartbeats.py` (see bench/README.md).

1. Registers `--agents` agents through the real worker (in this process), then stops it.
2. For each variant: pre-loads `--heartbeats` heartbeat commands into `<prefix>.commands` while
   nothing consumes, starts ONE consumer process of that variant, and measures it from the moment
   the queue starts to drain to the moment the last heartbeat is in Redis (wall time, and the
   consumer process's CPU time from /proc/<pid>/stat over the same window).
3. Prints heartbeats/s and CPU us/heartbeat per variant and the ratio worker/ceiling, checks
   that every heartbeat was applied, and deletes everything it created (queues, exchanges and
   Redis keys of its own unique prefix, nothing else).

The same file is the consumer processes: `--role <variant> --prefix <prefix>` (internal).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import secrets
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
from faststream import AckPolicy
from faststream.rabbit import Channel, RabbitBroker, RabbitMessage
from redis.asyncio import BlockingConnectionPool, Redis

from agentroster.contracts import Heartbeat, Register, Topology, card_digest
from agentroster.registry.prepare import Limits, Prepared, kind_from_routing_key, prepare
from agentroster.settings import Settings
from agentroster.store.keys import Keys
from agentroster.store.redis_store import OUTCOMES, RedisStore
from agentroster.worker import create_worker
from agentroster.worker.app import CommandPayload
from agentroster.worker.batcher import CommandBatcher
from agentroster.worker.dead_letters import DeadLetters
from agentroster.worker.metrics import WorkerMetrics
from agentroster.worker.topology import rabbit_topology

DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
TTL_S = 3600.0  # nothing expires during a run
PREFETCH = 2000  # the worker's default (Settings.prefetch); the ceiling uses the same
BATCH = 500  # the worker's default (Settings.batch_max); the ceiling uses the same
PUBLISH_WINDOW = 5000  # publishes awaiting their confirm at once
DRAIN_TIMEOUT_S = 600.0
SCRIPT = os.path.abspath(__file__)

VARIANTS: dict[str, str] = {
    "worker": "worker: FastStream subscriber -> CommandBatcher",
    "ceiling": "ceiling: raw aio-pika, 1 Lua/500",
    "fs-batched": "FastStream handler -> CommandBatcher",
    "fs-per-message": "FastStream handler, 1 Lua/message",
}
DEFAULT_VARIANTS = ("worker", "ceiling")

log = logging.getLogger("bench.heartbeats")


# --------------------------------------------------------------------------------------------
# The agents of a run and the commands they send
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Agents:
    """`count` agents with one instance each; heartbeat j goes to agent j % count."""

    count: int
    ids: list[str]
    instances: list[str]
    cards: list[dict[str, Any]]
    digests: list[str]

    @classmethod
    def make(cls, count: int) -> Agents:
        ids = [f"bench-{k:06d}" for k in range(count)]
        instances = [f"bench-host-{k:06d}-{secrets.token_hex(4)}" for k in range(count)]
        cards: list[dict[str, Any]] = [
            {
                "name": f"Bench agent {k}",
                "description": "An agent of the agentroster heartbeat benchmark.",
                "version": "1.0.0",
                "skills": [{"id": "echo", "name": "Echo", "tags": ["bench", "echo"]}],
            }
            for k in range(count)
        ]
        return cls(count, ids, instances, cards, [card_digest(c) for c in cards])


def _message(body: str, kind: str) -> aio_pika.Message:
    """A command message with the properties `CommandPublisher` sets."""
    return aio_pika.Message(
        body.encode(),
        content_type="application/json",
        type=kind,
        message_id=uuid.uuid4().hex,
        timestamp=datetime.now(UTC),
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


def register_message(agents: Agents, k: int) -> tuple[str, aio_pika.Message]:
    command = Register(
        agent_id=agents.ids[k],
        instance_id=agents.instances[k],
        seq=1,
        sent_at=datetime.now(UTC),
        ttl_s=TTL_S,
        interval_s=10.0,
        card=agents.cards[k],
    )
    body = command.model_dump_json(exclude_none=True)
    return Topology.command_key(agents.ids[k], "register"), _message(body, "register")


def heartbeat_message(agents: Agents, k: int, seq: int) -> tuple[str, aio_pika.Message]:
    command = Heartbeat(
        agent_id=agents.ids[k],
        instance_id=agents.instances[k],
        seq=seq,
        sent_at=datetime.now(UTC),
        ttl_s=TTL_S,
        card_digest=agents.digests[k],
    )
    body = command.model_dump_json(exclude_none=True)
    return Topology.command_key(agents.ids[k], "heartbeat"), _message(body, "heartbeat")


@dataclass(frozen=True)
class Round:
    """The heartbeats of one variant: j -> agent j % n, seq base + j // n (always new seqs)."""

    agents: Agents
    heartbeats: int
    base_seq: int

    def target(self, j: int) -> tuple[int, int]:
        return j % self.agents.count, self.base_seq + j // self.agents.count

    def final_seqs(self) -> dict[int, int]:
        """Agent index -> the seq its instance holds once the round is applied."""
        finals: dict[int, int] = {}
        for j in range(max(0, self.heartbeats - self.agents.count), self.heartbeats):
            k, seq = self.target(j)
            finals[k] = seq
        return finals


async def publish_all(
    channel: AbstractChannel,
    exchange_name: str,
    count: int,
    make: Callable[[int], tuple[str, aio_pika.Message]],
) -> float:
    """Publish `count` messages with publisher confirms, PUBLISH_WINDOW in flight; seconds."""
    exchange = await channel.get_exchange(exchange_name, ensure=True)
    started = time.perf_counter()
    for start in range(0, count, PUBLISH_WINDOW):
        pending: list[Awaitable[Any]] = []
        for j in range(start, min(count, start + PUBLISH_WINDOW)):
            routing_key, message = make(j)
            pending.append(exchange.publish(message, routing_key=routing_key, mandatory=True))
        await asyncio.gather(*pending)
    return time.perf_counter() - started


# --------------------------------------------------------------------------------------------
# Measuring a consumer process
# --------------------------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        text = stat.read()
    fields = text[text.rindex(")") + 2 :].split()  # fields[0] is field 3 (state)
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


async def redis_cpu_s(redis: Redis) -> float:
    """CPU seconds the Redis server used so far (every client's work, not only ours)."""
    info: dict[str, Any] = await redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def queue_ready(channel: AbstractChannel, queue: str) -> int:
    """Messages ready in the queue (a passive declare counts neither unacked nor in flight)."""
    declared = await channel.declare_queue(queue, passive=True)
    count = declared.declaration_result.message_count
    assert count is not None
    return count


@dataclass
class Result:
    variant: str
    heartbeats: int
    wall_s: float
    cpu_s: float
    redis_cpu_s: float
    preload_s: float
    outcomes: dict[str, int] = field(default_factory=dict)
    verified: int = 0

    @property
    def rate(self) -> float:
        return self.heartbeats / self.wall_s

    @property
    def cpu_us(self) -> float:
        return self.cpu_s / self.heartbeats * 1e6

    @property
    def redis_cpu_us(self) -> float:
        return self.redis_cpu_s / self.heartbeats * 1e6


class Bench:
    """One run: a prefix of its own, the agents, and the variants measured in turn."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.prefix = f"bench-{secrets.token_hex(5)}"
        self.names = Topology(self.prefix)
        self.keys = Keys(self.prefix)
        self.agents = Agents.make(args.agents)
        self.per_round = math.ceil(args.heartbeats / args.agents)
        self.finals: dict[int, int] = dict.fromkeys(range(args.agents), 1)

    def settings(self) -> Settings:
        return Settings(
            broker_url=self.args.broker_url, redis_url=self.args.redis_url, prefix=self.prefix
        )

    async def run(self) -> list[Result]:
        connection = await aio_pika.connect(self.args.broker_url)
        redis = Redis.from_url(self.args.redis_url)
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            await self.register(channel, redis)
            results = []
            for number, variant in enumerate(self.args.variants):
                round_ = Round(self.agents, self.args.heartbeats, 2 + number * self.per_round)
                results.append(await self.measure(variant, round_, channel, redis))
            return results
        finally:
            await self.cleanup(connection, redis)
            await redis.aclose()
            await connection.close()

    async def register(self, channel: AbstractChannel, redis: Redis) -> None:
        """Register every agent through the real worker (in this process), then stop it."""
        n = self.agents.count
        started = time.perf_counter()
        async with create_worker(self.settings()):
            await publish_all(
                channel,
                self.names.commands_exchange,
                n,
                lambda k: register_message(self.agents, k),
            )
            deadline = time.monotonic() + DRAIN_TIMEOUT_S
            while await redis.zcard(self.keys.agents) < n or await redis.xlen(self.keys.outbox) > 0:
                if time.monotonic() > deadline:
                    raise RuntimeError("registration did not complete in time")
                await asyncio.sleep(0.05)
        print(
            f"registered {n:,} agents through the worker in {time.perf_counter() - started:.1f}s "
            f"(joined events relayed: outbox empty)",
            flush=True,
        )

    async def preload(self, channel: AbstractChannel, round_: Round) -> float:
        queue = self.names.commands_queue
        if (ready := await queue_ready(channel, queue)) != 0:
            raise RuntimeError(f"{queue} holds {ready} messages before the pre-load")

        def make(j: int) -> tuple[str, aio_pika.Message]:
            k, seq = round_.target(j)
            return heartbeat_message(self.agents, k, seq)

        seconds = await publish_all(channel, self.names.commands_exchange, round_.heartbeats, make)
        ready = await queue_ready(channel, queue)
        if ready != round_.heartbeats:
            raise RuntimeError(f"{queue} holds {ready} messages, expected {round_.heartbeats}")
        return seconds

    async def measure(
        self, variant: str, round_: Round, channel: AbstractChannel, redis: Redis
    ) -> Result:
        preload_s = await self.preload(channel, round_)
        print(
            f"[{variant}] pre-loaded {round_.heartbeats:,} heartbeats in {preload_s:.1f}s "
            f"({round_.heartbeats / preload_s:,.0f}/s); starting the consumer process",
            flush=True,
        )
        finals = round_.final_seqs()
        # agents whose last heartbeat is among the last 2 * PREFETCH published: once nothing is
        # ready, whatever is not applied yet is among the unacknowledged (at most PREFETCH)
        tail = sorted(
            {
                round_.target(j)[0]
                for j in range(max(0, round_.heartbeats - 2 * PREFETCH), round_.heartbeats)
            }
        )
        tail_keys = [self.keys.instance(self.agents.ids[k], self.agents.instances[k]) for k in tail]
        tail_seqs = [finals[k] for k in tail]

        command = [sys.executable]
        if self.args.profile:
            os.makedirs(self.args.profile, exist_ok=True)
            command += ["-m", "cProfile", "-o", os.path.join(self.args.profile, f"{variant}.prof")]
        command += [
            SCRIPT,
            "--role",
            variant,
            "--prefix",
            self.prefix,
            "--broker-url",
            self.args.broker_url,
            "--redis-url",
            self.args.redis_url,
        ]
        process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
        try:
            queue = self.names.commands_queue
            total = round_.heartbeats
            deadline = time.monotonic() + DRAIN_TIMEOUT_S
            # start: the last sample before the queue began to drain (start-up excluded; at
            # most one poll interval of start-up is counted against the consumer)
            before = (time.perf_counter(), process_cpu_s(process.pid), await redis_cpu_s(redis))
            while await queue_ready(channel, queue) == total:
                if process.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{variant}: the consumer never started consuming")
                await asyncio.sleep(0.01)
                before = (
                    time.perf_counter(),
                    process_cpu_s(process.pid),
                    await redis_cpu_s(redis),
                )
            # end: the first sample where nothing is ready and every tail heartbeat is applied
            while await queue_ready(channel, queue) > 0:
                if process.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{variant}: the consumer did not drain the queue")
                await asyncio.sleep(0.025)
            while True:
                pipe = redis.pipeline(transaction=False)
                for key in tail_keys:
                    pipe.hget(key, "seq")
                seqs = await pipe.execute()
                if all(int(s or 0) >= want for s, want in zip(seqs, tail_seqs, strict=True)):
                    break
                if process.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{variant}: the last heartbeats were never applied")
                await asyncio.sleep(0.025)
            after = (time.perf_counter(), process_cpu_s(process.pid), await redis_cpu_s(redis))
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            stdout, _ = await process.communicate()
        lines = stdout.decode().strip().splitlines()
        report: dict[str, Any] = json.loads(lines[-1]) if lines else {}
        result = Result(
            variant,
            round_.heartbeats,
            wall_s=after[0] - before[0],
            cpu_s=after[1] - before[1],
            redis_cpu_s=after[2] - before[2],
            preload_s=preload_s,
            outcomes=report.get("outcomes", {}),
        )
        result.verified = await self.verify(redis, finals)
        print(
            f"[{variant}] {result.rate:,.0f} heartbeats/s, {result.cpu_us:.1f} CPU us/heartbeat "
            f"(wall {result.wall_s:.2f}s, CPU {result.cpu_s:.2f}s); outcomes {result.outcomes}; "
            f"{result.verified:,}/{len(finals):,} instances hold their final seq",
            flush=True,
        )
        if (ready := await queue_ready(channel, self.names.commands_queue)) != 0:
            raise RuntimeError(f"{variant}: {ready} messages left in the queue")
        return result

    async def verify(self, redis: Redis, finals: dict[int, int]) -> int:
        """How many instances hold the seq of their last heartbeat of the round."""
        pipe = redis.pipeline(transaction=False)
        order = sorted(finals)
        for k in order:
            pipe.hget(self.keys.instance(self.agents.ids[k], self.agents.instances[k]), "seq")
        seqs = await pipe.execute()
        return sum(1 for k, s in zip(order, seqs, strict=True) if int(s or 0) == finals[k])

    async def cleanup(self, connection: AbstractConnection, redis: Redis) -> None:
        """Delete this run's queues, exchanges and Redis keys (its own prefix, nothing else)."""
        names = self.names
        for queue in (names.commands_queue, names.dead_letter_queue, names.events_log):
            channel = await connection.channel()
            with contextlib.suppress(Exception):  # never declared
                await channel.queue_delete(queue)
            with contextlib.suppress(Exception):
                await channel.close()
        for exchange in (
            names.commands_exchange,
            names.dead_letter_exchange,
            names.events_exchange,
        ):
            channel = await connection.channel()
            with contextlib.suppress(Exception):
                await channel.exchange_delete(exchange)
            with contextlib.suppress(Exception):
                await channel.close()
        deleted = 0
        batch: list[bytes] = []
        async for key in redis.scan_iter(match=f"{self.keys.base}*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += await redis.delete(*batch)
                batch = []
        if batch:
            deleted += await redis.delete(*batch)
        print(f"cleaned up: 3 queues, 3 exchanges, {deleted:,} Redis keys of {self.prefix}")


def print_table(args: argparse.Namespace, results: Sequence[Result]) -> None:
    print()
    print(
        f"agentroster heartbeats: {args.agents:,} agents, {args.heartbeats:,} heartbeats per "
        f"variant, prefetch {PREFETCH}, batch {BATCH}, {os.cpu_count()} cores"
    )
    header = f"{'variant':<48} {'heartbeats/s':>12} {'CPU us/hb':>10} {'Redis us/hb':>11}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{VARIANTS[r.variant]:<48} {r.rate:>12,.0f} {r.cpu_us:>10.1f} {r.redis_cpu_us:>11.1f}"
        )
    by_name = {r.variant: r for r in results}
    if "worker" in by_name and "ceiling" in by_name:
        worker, ceiling = by_name["worker"], by_name["ceiling"]
        ratio = worker.rate / ceiling.rate
        print(
            f"ratio worker/ceiling: throughput {ratio:.2f} (goal >= 0.6: "
            f"{'met' if ratio >= 0.6 else 'NOT met'}), CPU per heartbeat "
            f"{worker.cpu_us / ceiling.cpu_us:.2f}"
        )


# --------------------------------------------------------------------------------------------
# Consumer processes (one per variant, started by the benchmark with --role)
# --------------------------------------------------------------------------------------------


async def _until_terminated() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _outcomes_from(metrics: WorkerMetrics) -> dict[str, int]:
    outcomes: Counter[str] = Counter()
    for metric in metrics.registry.collect():
        for sample in metric.samples:
            if sample.name == "agentroster_commands_total":
                outcomes[sample.labels["outcome"]] += int(sample.value)
    return dict(outcomes)


async def role_worker(args: argparse.Namespace) -> dict[str, Any]:
    """The real worker, exactly as `agentroster worker` runs it."""
    settings = Settings(broker_url=args.broker_url, redis_url=args.redis_url, prefix=args.prefix)
    worker = create_worker(settings)
    async with worker:
        await _until_terminated()
    return {"outcomes": _outcomes_from(worker.metrics)}


async def role_ceiling(args: argparse.Namespace) -> dict[str, Any]:
    """No FastStream: aio-pika, prefetch 2000, prepare() + one apply.lua per 500, multiple-ack."""
    limits = Limits()
    redis = Redis.from_url(args.redis_url)
    store = RedisStore(redis, args.prefix)
    connection = await aio_pika.connect(args.broker_url)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=PREFETCH)
    queue = await channel.get_queue(Topology(args.prefix).commands_queue, ensure=True)
    pending: list[AbstractIncomingMessage] = []
    wakeup = asyncio.Event()
    outcomes: Counter[int] = Counter()

    async def on_message(message: AbstractIncomingMessage) -> None:
        pending.append(message)
        wakeup.set()

    async def flush() -> None:
        while True:
            await wakeup.wait()
            wakeup.clear()
            while pending:
                batch = pending[:BATCH]
                del pending[:BATCH]
                commands = [prepare(m.routing_key or "", m.body, m.user_id, limits) for m in batch]
                codes, _events = await store.apply(commands)
                outcomes.update(codes)
                await batch[-1].ack(multiple=True)

    flusher = asyncio.create_task(flush())
    tag = await queue.consume(on_message)
    await _until_terminated()
    await queue.cancel(tag)
    flusher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await flusher
    await connection.close()
    await redis.aclose()
    return {"outcomes": {OUTCOMES[code]: n for code, n in outcomes.items()}}


async def role_faststream(args: argparse.Namespace, *, batched: bool) -> dict[str, Any]:
    """A plain FastStream subscriber: typed handler (decode, validate, DI, middlewares).

    batched: the handler passes the delivery to the same CommandBatcher as the worker (manual
    acks); otherwise it applies each command with its own apply.lua call and FastStream acks it.
    """
    settings = Settings(broker_url=args.broker_url, redis_url=args.redis_url, prefix=args.prefix)
    names = Topology(args.prefix)
    rabbit = rabbit_topology(
        names,
        delivery_limit=settings.delivery_limit,
        event_log_max_age=settings.event_log_max_age,
    )
    # up to PREFETCH handlers run at once: bound the connections they open to Redis
    redis = Redis(
        connection_pool=BlockingConnectionPool.from_url(args.redis_url, max_connections=64)
    )
    store = RedisStore(redis, args.prefix)
    limits = Limits()
    metrics = WorkerMetrics()
    broker = RabbitBroker(args.broker_url, logger=logging.getLogger("agentroster.broker"))
    dead_letters = DeadLetters(
        broker.publisher(exchange=rabbit.dead_letter_exchange, persist=True), metrics
    )
    batcher = CommandBatcher(store, dead_letters, metrics, limits=limits, batch_max=BATCH)
    outcomes: Counter[int] = Counter()
    subscriber = broker.subscriber(
        rabbit.commands_queue,
        rabbit.commands_exchange,
        channel=Channel(prefetch_count=PREFETCH),
        ack_policy=AckPolicy.MANUAL if batched else AckPolicy.REJECT_ON_ERROR,
    )

    async def to_batcher(command: CommandPayload, message: RabbitMessage) -> None:
        await batcher.on_message(message.raw_message)

    async def per_message(command: CommandPayload, message: RabbitMessage) -> None:
        raw = message.raw_message
        agent_id, kind = kind_from_routing_key(raw.routing_key or "")
        if isinstance(command, Heartbeat) and kind == "heartbeat" and agent_id == command.agent_id:
            prepared = Prepared(
                kind="heartbeat",
                agent_id=command.agent_id,
                instance_id=command.instance_id,
                seq=command.seq,
                ttl_ms=limits.ttl.clamp_ms(command.ttl_s),
                user_id=raw.user_id or "",
                digest=command.card_digest,
            )
        else:
            prepared = prepare(raw.routing_key or "", raw.body, raw.user_id, limits)
        codes, _events = await store.apply([prepared])
        outcomes.update(codes)

    subscriber(to_batcher if batched else per_message)
    flusher = asyncio.create_task(batcher.run())
    await broker.start()
    await _until_terminated()
    await subscriber.stop()
    await asyncio.wait_for(batcher.drained(), 10)
    flusher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await flusher
    await broker.stop()
    await redis.aclose()
    if batched:
        return {"outcomes": _outcomes_from(metrics)}
    return {"outcomes": {OUTCOMES[code]: n for code, n in outcomes.items()}}


async def run_role(args: argparse.Namespace) -> None:
    roles: dict[str, Callable[[argparse.Namespace], Awaitable[dict[str, Any]]]] = {
        "worker": role_worker,
        "ceiling": role_ceiling,
        "fs-batched": lambda a: role_faststream(a, batched=True),
        "fs-per-message": lambda a: role_faststream(a, batched=False),
    }
    report = await roles[args.role](args)
    print(json.dumps(report), flush=True)


# --------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--agents", type=int, default=10_000, help="agents registered (10000)")
    parser.add_argument(
        "--heartbeats", type=int, default=100_000, help="heartbeats per variant (100000)"
    )
    parser.add_argument(
        "--variants",
        type=lambda s: [v for v in s.split(",") if v],
        default=list(DEFAULT_VARIANTS),
        help=f"comma-separated, in order, from {', '.join(VARIANTS)} "
        f"(default {','.join(DEFAULT_VARIANTS)})",
    )
    parser.add_argument("--broker-url", default=DEFAULT_BROKER_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument(
        "--profile", metavar="DIR", help="run each consumer under cProfile, stats to DIR"
    )
    parser.add_argument("--role", choices=list(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if unknown := [v for v in args.variants if v not in VARIANTS]:
        parser.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    if args.agents < 1 or args.heartbeats < 1:
        parser.error("--agents and --heartbeats must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.role:
        asyncio.run(run_role(args))
        return
    results = asyncio.run(Bench(args).run())
    print_table(args, results)


if __name__ == "__main__":
    main()
