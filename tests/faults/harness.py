"""What the fault suite (and bench/faults.py) runs the registry on, and breaks.

- `PrivateRedis`: a `redis-server` of our own on a free port, without persistence; killed at
  the end, and restartable empty on the same port (Redis that lost its data).
- `PrivateVhost`: a RabbitMQ vhost of our own (`rabbitmqctl add_vhost`, deleted at the end),
  so nothing of the shared broker's default vhost is touched.
- `TcpProxy` (proxy.py): between a worker (or an agent) and Redis or RabbitMQ, to cut, hang
  or delay its connections.
- `FaultWorker`: `agentroster worker` as its own OS process (so `kill -9` is real), keeping the
  tail of its log for failure messages.
- `Rig`: one registry under a unique prefix: its settings (pointed through proxies where asked),
  proxies, workers and an event tap, all closed and deleted by `close()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import tempfile
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from agentroster.contracts import Topology
from agentroster.settings import Settings
from agentroster.store.keys import Keys
from tests.faults.proxy import TcpProxy
from tests.helpers import EventCollector, WorkerProcess, cleanup_broker, free_port

INSTALL_HINT = {
    "redis-server": "install Redis (e.g. `apt-get install redis-server`): the fault suite "
    "starts a private redis-server of its own",
    "rabbitmqctl": "install RabbitMQ (e.g. `apt-get install rabbitmq-server`) and start it "
    "(`rabbitmq-server -detached`): the fault suite creates a private vhost with rabbitmqctl",
}


class MissingTool(RuntimeError):
    """A program the fault suite needs is not installed (the suite fails, it never skips)."""


def require(program: str) -> str:
    """The path of `program`, or `MissingTool` saying what to install."""
    path = shutil.which(program)
    if path is None:
        raise MissingTool(f"{program} not found on PATH: {INSTALL_HINT[program]}")
    return path


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, *, timeout: float = 60.0, every: float = 0.05
) -> None:
    """Poll a condition until it holds (the timeout only guards against a hang)."""

    async def poll() -> None:
        while not await check():
            await asyncio.sleep(every)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"never reached within {timeout:.0f}s: {what}") from None


class PrivateRedis:
    """`redis-server` on a free port, no RDB, no AOF: killed, its data is gone."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: asyncio.subprocess.Process | None = None
        self._dir = tempfile.mkdtemp(prefix="agentroster-faults-redis-")

    @property
    def url(self) -> str:
        """Where it listens."""
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> PrivateRedis:
        """Start it (empty) and wait until it answers PING."""
        self.process = await asyncio.create_subprocess_exec(
            require("redis-server"),
            *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", self._dir),
            *("--save", "", "--appendonly", "no", "--logfile", ""),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        client = Redis.from_url(self.url, socket_connect_timeout=1)
        try:

            async def answers() -> bool:
                assert self.process is not None
                if self.process.returncode is not None:
                    raise AssertionError(f"redis-server on port {self.port} exited at start")
                try:
                    return bool(await client.ping())
                except (OSError, RedisConnectionError):
                    return False

            await eventually(answers, f"redis-server answering on port {self.port}", timeout=20)
        finally:
            await client.aclose()
        return self

    async def kill(self) -> None:
        """kill -9: its data is lost."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    async def restart_empty(self) -> None:
        """Redis lost its data: kill it and start it again, empty, on the same port."""
        await self.kill()
        await self.start()

    async def close(self) -> None:
        """Kill it and remove its (empty) directory."""
        await self.kill()
        shutil.rmtree(self._dir, ignore_errors=True)


class PrivateVhost:
    """A RabbitMQ vhost of our own on the local node, made and deleted with rabbitmqctl."""

    def __init__(self, broker_url: str) -> None:
        self.name = f"t-faults-{uuid.uuid4().hex[:10]}"
        self._base = urlsplit(broker_url)

    @property
    def url(self) -> str:
        """The broker URL of the vhost (the base URL's user, host and port)."""
        return urlunsplit(self._base._replace(path="/" + quote(self.name, safe="")))

    def _ctl(self, *args: str) -> None:
        result = subprocess.run(
            [require("rabbitmqctl"), *args], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {result.stderr.strip()}")

    def create(self) -> PrivateVhost:
        """Add the vhost and give the URL's user every permission in it."""
        self._ctl("add_vhost", self.name)
        user = self._base.username or "guest"
        self._ctl("set_permissions", "-p", self.name, user, ".*", ".*", ".*")
        return self

    def delete(self) -> None:
        """Delete the vhost with everything in it."""
        self._ctl("delete_vhost", self.name)


class FaultWorker(WorkerProcess):
    """A worker process (see `WorkerProcess`) that keeps the tail of its log."""

    def __init__(self, settings: Settings, name: str = "worker") -> None:
        super().__init__(settings, name)
        self.log: deque[str] = deque(maxlen=60)

    async def _discard(self, stream: asyncio.StreamReader) -> None:  # type: ignore[override]
        while line := await stream.readline():
            self.log.append(line.decode(errors="replace").rstrip())

    @property
    def alive(self) -> bool:
        """The process runs."""
        return self.process is not None and self.process.returncode is None

    async def crash(self) -> None:
        """kill -9 and wait until it is gone: nothing acknowledged, no lock released."""
        self.kill()
        if self.process is not None:
            await self.process.wait()

    def tail(self, lines: int = 15) -> str:
        """The last lines of its log, for a failure message."""
        return "\n".join(list(self.log)[-lines:])


@dataclass
class Rig:
    """One registry under a unique prefix, in the private vhost and the private Redis."""

    broker_url: str
    redis_server: PrivateRedis
    prefix: str = field(default_factory=lambda: f"f-{uuid.uuid4().hex[:10]}")
    proxies: list[TcpProxy] = field(default_factory=list)
    workers: list[FaultWorker] = field(default_factory=list)
    _tap: aio_pika.abc.AbstractConnection | None = None

    def __post_init__(self) -> None:
        self.redis = Redis.from_url(self.redis_server.url)
        self.keys = Keys(self.prefix)
        self.names = Topology(self.prefix)

    def settings(
        self,
        *,
        redis_proxy: TcpProxy | None = None,
        broker_proxy: TcpProxy | None = None,
        **overrides: Any,
    ) -> Settings:
        """Settings of this registry (short TTLs allowed, fast sweeps), through proxies if given."""
        broker_url = broker_proxy.url(self.broker_url) if broker_proxy else self.broker_url
        redis_url = redis_proxy.url(self.redis_server.url) if redis_proxy else self.redis_server.url
        values: dict[str, Any] = {
            "broker_url": broker_url,
            "redis_url": redis_url,
            "prefix": self.prefix,
            "ttl_min_s": 0.5,
            "sweep_interval_s": 0.1,
            "relay_lock_ttl_s": 2.0,
            "events_window": 10_000_000,  # the outbox keeps every event: audit.settle reads it
        }
        return Settings(**(values | overrides))

    async def restart_redis_empty(self) -> None:
        """Redis loses its data: restarted empty on the same port (the rig's own client
        drops its dead connections)."""
        await self.redis_server.restart_empty()
        await self.redis.connection_pool.disconnect()

    async def proxy(self, url: str) -> TcpProxy:
        """A proxy to the service at `url`, closed with the rig."""
        proxy = await TcpProxy.to(url)
        self.proxies.append(proxy)
        return proxy

    async def worker(self, settings: Settings, name: str = "worker") -> FaultWorker:
        """A started worker process, killed with the rig if still running."""
        worker = FaultWorker(settings, name)
        self.workers.append(worker)
        await worker.start()
        return worker

    async def tap(self) -> EventCollector:
        """Every event of this registry, from now on, by a plain consumer (no proxy)."""
        collector = EventCollector()
        self._tap = await aio_pika.connect(self.broker_url)
        channel = await self._tap.channel()
        exchange = await channel.declare_exchange(
            self.names.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, routing_key="#")
        await queue.consume(collector.on_message)
        return collector

    async def queue_messages(self, queue: str) -> int:
        """Messages ready in `queue` (passive declare; unacknowledged ones are not counted)."""
        connection = await aio_pika.connect(self.broker_url)
        try:
            channel = await connection.channel()
            declared = await channel.declare_queue(queue, passive=True)
            return int(declared.declaration_result.message_count or 0)
        finally:
            await connection.close()

    async def stop_workers(self) -> None:
        """SIGTERM every running worker and wait (their unacknowledged commands return)."""
        await asyncio.gather(*(w.stop() for w in self.workers if w.alive))

    def worker_logs(self) -> str:
        """The log tails of every worker, for failure messages."""
        return "\n".join(f"--- {w.name}\n{w.tail()}" for w in self.workers)

    async def close(self) -> None:
        """Kill the workers, close the proxies and the tap, delete the prefix's broker objects."""
        for worker in self.workers:
            with contextlib.suppress(ProcessLookupError):
                await worker.crash()
        for proxy in self.proxies:
            await proxy.close()
        if self._tap is not None:
            await self._tap.close()
        with contextlib.suppress(Exception):  # the broker itself may be what failed
            await cleanup_broker(self.broker_url, self.prefix)
        await self.redis.aclose()


@contextlib.asynccontextmanager
async def private_redis() -> AsyncIterator[PrivateRedis]:
    """A started `PrivateRedis`, killed at the end."""
    server = PrivateRedis()
    try:
        yield await server.start()
    finally:
        await server.close()


@contextlib.asynccontextmanager
async def rig(broker_url: str) -> AsyncIterator[Rig]:
    """A `Rig` on a fresh private Redis (for bench/faults.py; the tests use fixtures)."""
    async with private_redis() as server:
        r = Rig(broker_url, server)
        try:
            yield r
        finally:
            await r.close()


def environment_problem() -> str | None:
    """What is missing for the fault suite, or None."""
    missing = [p for p in INSTALL_HINT if shutil.which(p) is None]
    return "; ".join(f"{p} not found on PATH: {INSTALL_HINT[p]}" for p in missing) or None
