"""Test helpers: an independent event subscriber, clean-up of what a test created."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Self

import aio_pika
import httpx
import orjson
from aio_pika.abc import AbstractIncomingMessage
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from redis.asyncio import Redis

from agentroster.api import create_api
from agentroster.api.gateway import CommandGateway
from agentroster.contracts import Topology
from agentroster.settings import Settings


@dataclass
class ReceivedEvent:
    """One event as a plain AMQP consumer sees it."""

    routing_key: str
    headers: dict[str, Any]
    message_id: str | None
    type: str | None
    data: dict[str, Any]
    user_id: str | None = None  # the publisher's broker user, validated by RabbitMQ

    @property
    def kind(self) -> str:
        """joined, updated, left or deleted."""
        return self.routing_key.split(".")[1]

    @property
    def agent_id(self) -> str:
        """The agent the event is about."""
        return str(self.data["agent_id"])

    @property
    def revision(self) -> int:
        """The registry revision of the event."""
        return int(self.data["revision"])


@dataclass
class EventCollector:
    """A plain aio-pika consumer on the events exchange (not the project's own code)."""

    events: list[ReceivedEvent] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        """Record one delivery."""
        async with message.process():
            event = ReceivedEvent(
                routing_key=message.routing_key or "",
                headers=dict(message.headers or {}),
                message_id=message.message_id,
                type=message.type,
                data=orjson.loads(message.body),
                user_id=message.user_id,
            )
        async with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    async def wait_until(
        self, predicate: Callable[[list[ReceivedEvent]], bool], *, timeout: float = 30.0
    ) -> list[ReceivedEvent]:
        """Wait for events satisfying `predicate` (the timeout only guards against a hang)."""

        async def satisfied() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: predicate(self.events))

        try:
            await asyncio.wait_for(satisfied(), timeout)
        except TimeoutError:
            summary = [(e.kind, e.agent_id, e.data.get("reason")) for e in self.events]
            raise AssertionError(f"events never satisfied the condition; got {summary}") from None
        return self.events

    def of(self, kind: str, reason: str | None = None) -> list[ReceivedEvent]:
        """The events of one kind (and reason)."""
        return [
            e
            for e in self.events
            if e.kind == kind and (reason is None or e.data.get("reason") == reason)
        ]


async def cleanup_broker(broker_url: str, prefix: str) -> None:
    """Delete the exchanges and queues of registry `prefix` (only those: never others')."""
    names = Topology(prefix)
    connection = await aio_pika.connect(broker_url)
    try:
        for queue in names.queues:
            channel = await connection.channel()
            with contextlib.suppress(Exception):  # it was never declared
                await channel.queue_delete(queue)
        for exchange in names.exchanges:
            channel = await connection.channel()
            with contextlib.suppress(Exception):
                await channel.exchange_delete(exchange)
    finally:
        await connection.close()


async def cleanup_redis(redis_url: str, prefix: str) -> None:
    """Delete every key of registry `prefix`."""
    client = Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{{{prefix}}}:*", count=1000)]
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start : start + 1000])
    finally:
        await client.aclose()


class RawPublisher:
    """Publishes hand-made command messages (bad ones too), with confirms."""

    def __init__(self, broker_url: str, prefix: str) -> None:
        self._url = broker_url
        self._names = Topology(prefix)
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._exchange: aio_pika.abc.AbstractExchange | None = None

    async def __aenter__(self) -> RawPublisher:
        self._connection = await aio_pika.connect(self._url)
        channel = await self._connection.channel(publisher_confirms=True)
        self._exchange = await channel.get_exchange(self._names.commands_exchange)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def send(self, routing_key: str, body: bytes | dict[str, Any], **properties: Any) -> None:
        """Publish one message; a dict body is serialised as JSON."""
        assert self._exchange is not None
        payload = body if isinstance(body, bytes) else orjson.dumps(body)
        properties.setdefault("content_type", "application/json")
        await self._exchange.publish(
            aio_pika.Message(payload, **properties), routing_key=routing_key, mandatory=True
        )


async def drain_queue(
    broker_url: str, queue: str, expected: int, timeout: float = 30.0
) -> list[AbstractIncomingMessage]:
    """Consume `expected` messages from `queue` (acknowledging them)."""
    got: list[AbstractIncomingMessage] = []
    done = asyncio.Event()
    connection = await aio_pika.connect(broker_url)
    try:
        channel = await connection.channel()
        q = await channel.declare_queue(queue, passive=True)

        async def on_message(message: AbstractIncomingMessage) -> None:
            await message.ack()
            got.append(message)
            if len(got) >= expected:
                done.set()

        await q.consume(on_message)
        try:
            await asyncio.wait_for(done.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"{queue}: expected {expected} messages, got {len(got)}") from None
    finally:
        await connection.close()
    return got


def _env_value(value: object) -> str:
    """A setting's value as its environment variable spells it (lists as JSON)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, list):
        return json.dumps(value)
    return str(value)


class WorkerProcess:
    """`python -m agentroster worker` in a subprocess, for multi-replica and kill -9 tests."""

    def __init__(
        self,
        settings: Settings,
        name: str = "worker",
        health_port: int = 0,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self._env = {
            **os.environ,
            **{
                f"AGENTROSTER_{k.upper()}": _env_value(v)
                for k, v in settings.model_dump().items()
                if v is not None  # unset optional settings stay unset
            },
            # replicas run side by side: the health port only when a test asks for one
            "AGENTROSTER_WORKER_PORT": str(health_port),
            **(env or {}),
        }
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> WorkerProcess:
        """Start it and wait until it consumes (its log says "worker started")."""
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "agentroster",
            "worker",
            env=self._env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self.process.stderr is not None
        lines: list[str] = []

        async def started() -> None:
            assert self.process is not None
            assert self.process.stderr is not None
            while line := (await self.process.stderr.readline()).decode():
                lines.append(line)
                if "worker started" in line:
                    return
            raise AssertionError(f"{self.name} exited before starting:\n{''.join(lines)}")

        await asyncio.wait_for(started(), 30)
        self._drain = asyncio.create_task(self._discard(self.process.stderr))
        return self

    @staticmethod
    async def _discard(stream: asyncio.StreamReader) -> None:
        while await stream.readline():
            pass

    def kill(self) -> None:
        """kill -9: no shutdown, no acknowledgement, no lock release."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> int:
        """SIGTERM, then wait for a graceful exit."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), 30)


async def queue_depth(broker_url: str, queue: str) -> int:
    """Messages in `queue`, ready and unacknowledged."""
    connection = await aio_pika.connect(broker_url)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        assert declared.declaration_result.message_count is not None
        ready = declared.declaration_result.message_count
    finally:
        await connection.close()
    return ready


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RegistryProcess:
    """A running `agentroster up` subprocess and its base URL."""

    url: str
    process: asyncio.subprocess.Process


@contextlib.asynccontextmanager
async def registry_server(settings: Settings, **env: str) -> AsyncIterator[RegistryProcess]:
    """`python -m agentroster up` on a free port (with `env` added) until the block ends."""
    async with registry_server_on(free_port(), settings, **env) as registry:
        yield registry


@contextlib.asynccontextmanager
async def registry_server_on(
    port: int, settings: Settings, **env: str
) -> AsyncIterator[RegistryProcess]:
    """`registry_server` on `port`: a restart on the same address is a second block on it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agentroster",
        "up",
        "--port",
        str(port),
        env={
            **os.environ,
            "AGENTROSTER_BROKER_URL": settings.broker_url,
            "AGENTROSTER_REDIS_URL": settings.redis_url,
            "AGENTROSTER_PREFIX": settings.prefix,
            # tests run several registries at once: the worker's health port only when asked
            "AGENTROSTER_WORKER_PORT": "0",
            **env,
        },
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    stderr = process.stderr
    drain: asyncio.Task[None] | None = None
    try:

        async def serving() -> None:
            while line := (await stderr.readline()).decode():
                if "Uvicorn running" in line:
                    return
            raise AssertionError("agentroster up exited before serving")

        async def discard() -> None:
            while await stderr.readline():
                pass

        await asyncio.wait_for(serving(), 30)
        drain = asyncio.create_task(discard())
        yield RegistryProcess(f"http://127.0.0.1:{port}", process)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
        if drain is not None:
            await drain


class RunningProgram:
    """A program running as a subprocess, its stdout (and stderr) read line by line."""

    #: Guards against a hang only; nothing waits this long when things work.
    timeout_s = 30.0

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    @classmethod
    @contextlib.asynccontextmanager
    async def run(
        cls, *argv: str, env: dict[str, str], cwd: str | os.PathLike[str] | None = None
    ) -> AsyncIterator[Self]:
        """Start `argv` (stderr merged into stdout); kill it on exit if it is still running."""
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            yield cls(process)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()

    async def wait_for_line(self, predicate: Callable[[str], bool]) -> str:
        """Read output until a line satisfies `predicate`; return that line."""

        async def read() -> str:
            assert self.process.stdout is not None
            while raw := await self.process.stdout.readline():
                line = raw.decode(errors="replace").rstrip("\n")
                self.lines.append(line)
                if predicate(line):
                    return line
            raise AssertionError(f"the program ended without the expected line:\n{self.output}")

        try:
            return await asyncio.wait_for(read(), self.timeout_s)
        except TimeoutError:
            raise AssertionError(
                f"no expected line within {self.timeout_s} s:\n{self.output}"
            ) from None

    async def stop(self) -> int:
        """Send SIGTERM and wait for the exit status, reading the rest of the output."""
        self.process.send_signal(signal.SIGTERM)
        try:
            rest, _ = await asyncio.wait_for(self.process.communicate(), self.timeout_s)
        except TimeoutError:
            raise AssertionError(
                f"no exit within {self.timeout_s} s of SIGTERM:\n{self.output}"
            ) from None
        self.lines.extend(rest.decode(errors="replace").splitlines())
        assert self.process.returncode is not None
        return self.process.returncode

    @property
    def output(self) -> str:
        """Everything read so far, for failure messages."""
        return "\n".join(self.lines)


@contextlib.asynccontextmanager
async def serve_api(
    settings: Settings,
    registries: tuple[CollectorRegistry, ...] = (),
    *,
    wait_ready: bool = True,
    gateway: CommandGateway | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client (base URL http://registry.test) of a freshly built API, lifespan running,
    its read model loaded unless `wait_ready` is false (an API without Redis never loads it);
    `gateway` takes its writes."""
    app = create_api(settings, registries=registries, gateway=gateway)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://registry.test"
        ) as client,
    ):
        model = app.state.agentroster.read_model
        if wait_ready and model is not None:
            async with asyncio.timeout(30):  # only against a hang
                await model.loaded()
        yield client


@contextlib.asynccontextmanager
async def serve_http(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on a local port, in this process; yields its base URL.

    The socket listens before uvicorn starts: a client may connect at once (uvicorn accepts
    after the app's lifespan has started), so nothing waits for "started".
    """
    import uvicorn  # the server extra: only the tests that serve over TCP need it

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()
