"""Heartbeat throughput of the worker against a raw aio-pika consumer (the ceiling).

Run from the repository root: `.venv/bin/python bench/heartbeats.py` (see bench/README.md).

1. Registers `--agents` agents through the real worker (in this process), then stops it.
2. For each variant (worker and ceiling by default; see VARIANTS): pre-loads `--heartbeats`
   heartbeat commands into `<prefix>.commands` while nothing consumes, starts ONE consumer
   process of that variant, and measures it from the moment the queue starts to drain to the
   moment the last heartbeat is in Redis (wall time, and the consumer process's CPU time from
   /proc/<pid>/stat over the same window).
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
import re
import secrets
import signal
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
from faststream import AckPolicy
from faststream.rabbit import Channel, RabbitBroker, RabbitMessage
from pamqp import commands, frame, header
from pamqp.body import ContentBody
from pamqp.exceptions import UnmarshalingException
from redis.asyncio import BlockingConnectionPool, Redis

from agentroster.contracts import Heartbeat, Register, Topology, card_digest
from agentroster.contracts.ids import broker_user
from agentroster.registry.prepare import (
    Limits,
    Prepared,
    kind_from_routing_key,
    prepare,
    prepare_heartbeat,
)
from agentroster.settings import Settings
from agentroster.store.keys import Keys
from agentroster.store.outbox import Outbox
from agentroster.store.redis_store import OUTCOMES, RedisStore
from agentroster.worker import create_worker
from agentroster.worker.app import CommandPayload
from agentroster.worker.metrics import WorkerMetrics
from agentroster.worker.topology import rabbit_topology

DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
TTL_S = 3600.0  # nothing expires during a run
PREFETCH = 2000  # the worker's default (Settings.prefetch); the ceiling uses the same
BATCH = 500  # the worker's default (Settings.batch_max); the ceiling uses the same
PUBLISH_CHUNK = 1000  # messages written with one send()
PUBLISH_WINDOW = 20_000  # messages awaiting their publisher confirm at most
DRAIN_TIMEOUT_S = 600.0
FLUSH_IDLE_S = 0.02  # the ceiling applies a partial batch after this long without deliveries
SCRIPT = os.path.abspath(__file__)

VARIANTS: dict[str, str] = {
    "worker": "worker (FastStream-declared, CommandBatcher)",
    "ceiling": "ceiling (raw aio-pika, 1 Lua per 500)",
    "ceiling-eager": "raw aio-pika, eager batches",
    "fs-batched": "FastStream handler, 1 Lua per batch",
    "fs-per-message": "FastStream handler, 1 Lua per message",
}
DEFAULT_VARIANTS = ("worker", "ceiling")

log = logging.getLogger("bench.heartbeats")
T = TypeVar("T")
#: (routing key, AMQP type, body) of the j-th message of a pre-load
Make = Callable[[int], tuple[str, str, bytes]]


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


def register_command(agents: Agents, k: int) -> tuple[str, str, bytes]:
    """(routing key, AMQP type, body) of agent k's register command."""
    command = Register(
        agent_id=agents.ids[k],
        instance_id=agents.instances[k],
        seq=1,
        sent_at=datetime.now(UTC),
        ttl_s=TTL_S,
        interval_s=10.0,
        card=agents.cards[k],
    )
    body = command.model_dump_json(exclude_none=True).encode()
    return Topology.command_key(agents.ids[k], "register"), "register", body


def heartbeat_command(agents: Agents, k: int, seq: int) -> tuple[str, str, bytes]:
    """(routing key, AMQP type, body) of a heartbeat of agent k's instance."""
    command = Heartbeat(
        agent_id=agents.ids[k],
        instance_id=agents.instances[k],
        seq=seq,
        sent_at=datetime.now(UTC),
        ttl_s=TTL_S,
        card_digest=agents.digests[k],
    )
    body = command.model_dump_json(exclude_none=True).encode()
    return Topology.command_key(agents.ids[k], "heartbeat"), "heartbeat", body


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


class RawPublisher:
    """A bare AMQP 0-9-1 publisher (pamqp frames on one socket), only to pre-load queues fast.

    aio-pika makes one `send()` per message (about 200 us of client CPU each here); this writes
    PUBLISH_CHUNK messages per `send()` and waits for publisher confirms, keeping at most
    PUBLISH_WINDOW unconfirmed. The messages carry the properties `CommandPublisher` sets
    (content type, type, message id, timestamp, persistent, user_id), except `mandatory`: the
    queue depth is checked after every pre-load instead.
    """

    def __init__(self, url: str) -> None:
        self._url = urlsplit(url)
        self._user = broker_user(url)
        self._buffer = bytearray()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reading: asyncio.Task[None] | None = None
        self._published = 0  # delivery tags are 1, 2, 3...
        self._confirmed = 0  # every tag up to this one is confirmed
        self._singles: set[int] = set()  # confirmed one by one, above _confirmed
        self._progress = asyncio.Event()
        self._failure: str | None = None
        self._closed = asyncio.Event()

    async def connect(self) -> None:
        url = self._url
        self._reader, self._writer = await asyncio.open_connection(
            url.hostname or "127.0.0.1", url.port or 5672
        )
        self._send(header.ProtocolHeader(), 0)
        await self._expect(commands.Connection.Start)
        user, password = unquote(url.username or "guest"), unquote(url.password or "guest")
        self._send(
            commands.Connection.StartOk(
                client_properties={"connection_name": "agentroster-bench-preload"},
                mechanism="PLAIN",
                response=f"\0{user}\0{password}",
                locale="en_US",
            ),
            0,
        )
        tune = await self._expect(commands.Connection.Tune)
        self._send(
            commands.Connection.TuneOk(
                channel_max=tune.channel_max, frame_max=tune.frame_max, heartbeat=0
            ),
            0,
        )
        self._send(commands.Connection.Open(virtual_host=unquote(url.path[1:]) or "/"), 0)
        await self._expect(commands.Connection.OpenOk)
        self._send(commands.Channel.Open(), 1)
        await self._expect(commands.Channel.OpenOk)
        self._send(commands.Confirm.Select(), 1)
        await self._expect(commands.Confirm.SelectOk)
        self._reading = asyncio.create_task(self._read_confirms())

    async def publish(self, exchange: str, count: int, make: Make) -> float:
        """Publish `count` messages `make(0..count-1)` and wait for every confirm; seconds."""
        assert self._writer is not None
        started = time.perf_counter()
        for start in range(0, count, PUBLISH_CHUNK):
            frames: list[bytes] = []
            for j in range(start, min(count, start + PUBLISH_CHUNK)):
                routing_key, kind, body = make(j)
                properties = commands.Basic.Properties(
                    content_type="application/json",
                    message_type=kind,
                    message_id=uuid.uuid4().hex,
                    timestamp=datetime.now(UTC),
                    delivery_mode=2,
                    user_id=self._user,  # as CommandPublisher: the connection's user
                )
                frames += (
                    frame.marshal(
                        commands.Basic.Publish(exchange=exchange, routing_key=routing_key), 1
                    ),
                    frame.marshal(header.ContentHeader(0, len(body), properties), 1),
                    frame.marshal(ContentBody(body), 1),
                )
            self._writer.write(b"".join(frames))
            self._published += len(frames) // 3
            await self._writer.drain()
            await self._confirmed_up_to(self._published - PUBLISH_WINDOW)
        await self._confirmed_up_to(self._published)
        return time.perf_counter() - started

    async def close(self) -> None:
        if self._writer is None:
            return
        if self._failure is None:
            self._send(
                commands.Connection.Close(
                    reply_code=200, reply_text="bye", class_id=0, method_id=0
                ),
                0,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closed.wait(), 5)
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()
        self._writer = None

    async def _confirmed_up_to(self, tag: int) -> None:
        while self._confirmed < tag:
            if self._failure is not None:
                raise RuntimeError(f"pre-load failed: {self._failure}")
            self._progress.clear()
            await self._progress.wait()

    def _send(self, value: frame.FrameTypes, channel: int) -> None:
        assert self._writer is not None
        self._writer.write(frame.marshal(value, channel))

    async def _next_frame(self) -> frame.FrameTypes:
        assert self._reader is not None
        while True:
            try:
                consumed, _channel, value = frame.unmarshal(bytes(self._buffer))
            except UnmarshalingException:  # not all of it yet
                data = await self._reader.read(65536)
                if not data:
                    raise ConnectionError("RabbitMQ closed the connection") from None
                self._buffer += data
                continue
            del self._buffer[:consumed]
            return value

    async def _expect(self, kind: type[T]) -> T:
        value = await self._next_frame()
        if not isinstance(value, kind):
            raise RuntimeError(f"expected {kind.__name__}, RabbitMQ sent {value!r}")
        return value

    async def _read_confirms(self) -> None:
        try:
            while True:
                value = await self._next_frame()
                if isinstance(value, commands.Basic.Ack):
                    self._on_ack(value.delivery_tag, value.multiple)
                elif isinstance(value, commands.Connection.CloseOk):
                    self._closed.set()
                    return
                elif isinstance(value, commands.Basic.Nack):
                    self._failure = f"RabbitMQ refused message {value.delivery_tag}"
                elif isinstance(value, commands.Channel.Close | commands.Connection.Close):
                    self._failure = f"RabbitMQ closed: {value.reply_code} {value.reply_text}"
                self._progress.set()
                if self._failure is not None:
                    return
        except ConnectionError as exc:
            self._failure = str(exc)
            self._progress.set()

    def _on_ack(self, tag: int, multiple: bool) -> None:
        if multiple:
            self._confirmed = max(self._confirmed, tag)
            self._singles = {t for t in self._singles if t > tag}
        else:
            self._singles.add(tag)
        while self._confirmed + 1 in self._singles:
            self._confirmed += 1
            self._singles.remove(self._confirmed)


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


def load_average() -> float:
    with open("/proc/loadavg") as loadavg:
        return float(loadavg.read().split()[0])


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
    load: float = 0.0  # 1-minute load average at the end (other processes share the cores)
    outcomes: dict[str, int] = field(default_factory=dict)
    batches: int = 0  # apply.lua calls of the consumer process

    @property
    def batch_size(self) -> float:
        return sum(self.outcomes.values()) / self.batches if self.batches else 0.0

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

    def __init__(self, args: argparse.Namespace, prefix: str | None = None) -> None:
        self.args = args
        self.prefix = prefix or f"bench-{secrets.token_hex(5)}"
        self.names = Topology(self.prefix)
        self.keys = Keys(self.prefix)
        self.agents = Agents.make(args.agents)
        self.per_round = math.ceil(args.heartbeats / args.agents)

    def settings(self) -> Settings:
        return Settings(
            broker_url=self.args.broker_url,
            redis_url=self.args.redis_url,
            prefix=self.prefix,
            max_agents_per_identity=0,  # --agents may be more than one identity's quota
        )

    async def run(self) -> list[Result]:
        connection = await aio_pika.connect(self.args.broker_url)
        redis = Redis.from_url(self.args.redis_url)
        publisher = RawPublisher(self.args.broker_url)
        try:
            channel = await connection.channel()
            await self.register(publisher, redis)
            results = []
            for number, variant in enumerate(self.args.variants * self.args.repeat):
                round_ = Round(self.agents, self.args.heartbeats, 2 + number * self.per_round)
                await self.preload(publisher, channel, round_)
                result = await self.measure(variant, round_, channel, redis, number)
                results.append(result)
            return results
        finally:
            try:
                await publisher.close()
            finally:
                await self.cleanup(connection, redis)
            await redis.aclose()
            await connection.close()

    async def cleanup_only(self) -> None:
        """Delete what an interrupted run of this prefix left behind."""
        connection = await aio_pika.connect(self.args.broker_url)
        redis = Redis.from_url(self.args.redis_url)
        try:
            await self.cleanup(connection, redis)
        finally:
            await redis.aclose()
            await connection.close()

    async def register(self, publisher: RawPublisher, redis: Redis) -> None:
        """Register every agent through the real worker (in this process), then stop it."""
        n = self.agents.count
        started = time.perf_counter()
        async with create_worker(self.settings()):  # declares the queues and exchanges
            await publisher.connect()
            await publisher.publish(
                self.names.commands_exchange, n, lambda k: register_command(self.agents, k)
            )
            deadline = time.monotonic() + DRAIN_TIMEOUT_S
            outbox = Outbox(redis, self.keys.prefix)
            while await redis.zcard(self.keys.agents) < n or await outbox.backlog() > 0:
                if time.monotonic() > deadline:
                    raise RuntimeError("registration did not complete in time")
                await asyncio.sleep(0.05)
        print(
            f"registered {n:,} agents through the worker in {time.perf_counter() - started:.1f}s "
            f"(their agent.joined events relayed: no outbox backlog)",
            flush=True,
        )

    async def preload(
        self, publisher: RawPublisher, channel: AbstractChannel, round_: Round
    ) -> None:
        """Publish the round's heartbeats while nothing consumes; check they are all queued."""
        queue = self.names.commands_queue
        if (ready := await queue_ready(channel, queue)) != 0:
            raise RuntimeError(f"{queue} holds {ready} messages before the pre-load")

        def make(j: int) -> tuple[str, str, bytes]:
            k, seq = round_.target(j)
            return heartbeat_command(self.agents, k, seq)

        exchange = self.names.commands_exchange
        seconds = await publisher.publish(exchange, round_.heartbeats, make)
        ready = await queue_ready(channel, queue)
        if ready != round_.heartbeats:
            raise RuntimeError(f"{queue} holds {ready} messages, expected {round_.heartbeats}")
        print(
            f"pre-loaded {ready:,} heartbeats (seq from {round_.base_seq}) in {seconds:.1f}s "
            f"({ready / seconds:,.0f}/s)",
            flush=True,
        )

    async def measure(
        self, variant: str, round_: Round, channel: AbstractChannel, redis: Redis, number: int
    ) -> Result:
        finals = round_.final_seqs()
        # agents whose last heartbeat is among the last 2 * PREFETCH published: once nothing is
        # ready, whatever is not applied yet is among the unacknowledged (at most PREFETCH)
        tail = sorted(
            {
                round_.target(j)[0]
                for j in range(max(0, round_.heartbeats - 2 * PREFETCH), round_.heartbeats)
            }
        )
        tail_keys = [self.instance_key(k) for k in tail]
        tail_seqs = [finals[k] for k in tail]
        all_keys = [self.instance_key(k) for k in finals]
        all_seqs = list(finals.values())

        command = [sys.executable]
        if self.args.profile:
            os.makedirs(self.args.profile, exist_ok=True)
            command += [
                "-m",
                "cProfile",
                "-o",
                os.path.join(self.args.profile, f"{number}-{variant}.prof"),
            ]
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
                if await self.applied(redis, tail_keys, tail_seqs):
                    after = (
                        time.perf_counter(),
                        process_cpu_s(process.pid),
                        await redis_cpu_s(redis),
                    )
                    # checked once the tail is in (in-order consumers are then done), so the
                    # check itself is not timed; a concurrent consumer may still be behind
                    if await self.applied(redis, all_keys, all_seqs):
                        break
                if process.returncode is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{variant}: the last heartbeats were never applied")
                await asyncio.sleep(0.025)
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
            load=load_average(),
            outcomes=report.get("outcomes", {}),
            batches=report.get("batches", 0),
        )
        print(
            f"[{variant}] {result.rate:,.0f} heartbeats/s, {result.cpu_us:.1f} CPU us/heartbeat "
            f"(wall {result.wall_s:.2f}s, CPU {result.cpu_s:.2f}s, load {result.load:.1f}); "
            f"outcomes {result.outcomes} in {result.batches:,} apply.lua calls",
            flush=True,
        )
        if (ready := await queue_ready(channel, self.names.commands_queue)) != 0:
            raise RuntimeError(f"{variant}: {ready} messages left in the queue")
        return result

    def instance_key(self, k: int) -> str:
        return self.keys.instance(self.agents.ids[k], self.agents.instances[k])

    async def applied(self, redis: Redis, keys: list[str], seqs: list[int]) -> bool:
        """Whether each instance `keys[i]` holds seq `seqs[i]` (or a later one)."""
        pipe = redis.pipeline(transaction=False)
        for key in keys:
            pipe.hget(key, "seq")
        held = await pipe.execute()
        return all(int(h or 0) >= want for h, want in zip(held, seqs, strict=True))

    async def cleanup(self, connection: AbstractConnection, redis: Redis) -> None:
        """Delete this run's queues, exchanges and Redis keys (its own prefix, nothing else)."""
        await cleanup_prefix(connection, redis, self.prefix)


async def cleanup_prefix(connection: AbstractConnection, redis: Redis, prefix: str) -> None:
    """Delete a run's queues, exchanges and Redis keys (its own prefix, nothing else)."""
    names, keys = Topology(prefix), Keys(prefix)
    for queue in names.queues:
        channel = await connection.channel()
        with contextlib.suppress(Exception):  # never declared
            await channel.queue_delete(queue)
        with contextlib.suppress(Exception):
            await channel.close()
    for exchange in names.exchanges:
        channel = await connection.channel()
        with contextlib.suppress(Exception):
            await channel.exchange_delete(exchange)
        with contextlib.suppress(Exception):
            await channel.close()
    deleted = 0
    batch: list[bytes] = []
    async for key in redis.scan_iter(match=f"{keys.base}*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += await redis.delete(*batch)
            batch = []
    if batch:
        deleted += await redis.delete(*batch)
    print(f"cleaned up: 3 queues, 3 exchanges, {deleted:,} Redis keys of {prefix}", flush=True)


def print_table(args: argparse.Namespace, results: Sequence[Result]) -> None:
    print()
    print(
        f"agentroster heartbeats: {args.agents:,} agents, {args.heartbeats:,} heartbeats per "
        f"measurement, prefetch {PREFETCH}, batch_max {BATCH}, {os.cpu_count()} cores"
    )
    header = (
        f"{'variant':<44} {'heartbeats/s':>12} {'CPU us/hb':>9} {'Redis us/hb':>11} "
        f"{'cmds/Lua':>8} {'load':>5}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{VARIANTS[r.variant]:<44} {r.rate:>12,.0f} {r.cpu_us:>9.1f} {r.redis_cpu_us:>11.1f} "
            f"{r.batch_size:>8.1f} {r.load:>5.1f}"
        )
    rate: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for variant in dict.fromkeys(r.variant for r in results):
        rate[variant] = statistics.median(r.rate for r in results if r.variant == variant)
        cpu[variant] = statistics.median(r.cpu_us for r in results if r.variant == variant)
    if args.repeat > 1:
        print(f"medians of {args.repeat} measurements:")
        for variant in rate:
            print(f"{VARIANTS[variant]:<44} {rate[variant]:>12,.0f} {cpu[variant]:>9.1f}")
    if "worker" in rate and "ceiling" in rate:
        ratio = rate["worker"] / rate["ceiling"]
        print(
            f"ratio worker/ceiling: heartbeats/s {ratio:.2f} (goal >= 0.6: "
            f"{'met' if ratio >= 0.6 else 'NOT met'}); CPU us/heartbeat "
            f"{cpu['worker'] / cpu['ceiling']:.2f}"
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


@dataclass
class Tally:
    """What a consumer process applied: outcome per command, and apply.lua calls."""

    codes: Counter[int] = field(default_factory=Counter)
    batches: int = 0

    def add(self, codes: list[int]) -> None:
        self.codes.update(codes)
        self.batches += 1

    def report(self) -> dict[str, Any]:
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
        await _until_terminated()
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
    await _until_terminated()
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
    await _until_terminated()
    await broker.stop()
    flusher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await flusher
    await redis.aclose()
    return tally.report()


async def run_role(args: argparse.Namespace) -> None:
    roles: dict[str, Callable[[argparse.Namespace], Awaitable[dict[str, Any]]]] = {
        "worker": role_worker,
        "ceiling": role_ceiling,
        "ceiling-eager": lambda a: role_ceiling(a, eager=True),
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
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure the variants this many times, alternating (medians are reported)",
    )
    parser.add_argument("--broker-url", default=DEFAULT_BROKER_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument(
        "--profile", metavar="DIR", help="run each consumer under cProfile, stats to DIR"
    )
    parser.add_argument(
        "--cleanup",
        metavar="PREFIX",
        help="only delete what an interrupted run left behind (PREFIX is bench-<hex>)",
    )
    parser.add_argument("--role", choices=list(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if unknown := [v for v in args.variants if v not in VARIANTS]:
        parser.error(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    if args.cleanup and not re.fullmatch(r"bench-[0-9a-f]{10}", args.cleanup):
        parser.error("--cleanup takes a prefix this benchmark made: bench-<10 hex digits>")
    if args.agents < 1 or args.heartbeats < 1 or args.repeat < 1:
        parser.error("--agents, --heartbeats and --repeat must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.role:
        asyncio.run(run_role(args))
        return
    if args.cleanup:
        asyncio.run(Bench(args, args.cleanup).cleanup_only())
        return
    results = asyncio.run(Bench(args).run())
    print_table(args, results)


if __name__ == "__main__":
    main()
