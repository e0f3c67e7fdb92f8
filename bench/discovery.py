"""Discovery latency and throughput of the read API against direct Redis reads (the ceiling).

Run from the repository root: `.venv/bin/python bench/discovery.py` (see bench/README.md).

1. Registers agents through the real worker (`python -m agentroster worker`, a subprocess),
   each with 8 of 200 skills and 3 tags, lease TTL 3600 s, then stops the worker. The sizes of
   `--sizes` are reached in turn: a larger size registers only the agents it adds.
2. Serves the API in a separate process (`python -m agentroster api`; one per
   `--api-variant`, to compare code or packages on the same data) and loads it from this
   process over loopback: `--concurrency` clients, each with one keep-alive connection
   (`--client`: an `httpx.AsyncClient`, or bare asyncio streams), for `--seconds` (at most
   `--max-requests`) per query kind.
3. The ceiling: the same Redis reads without HTTP, from one process with as many concurrent
   tasks and the process settings of `agentroster api` (garbage collector, event loop): `raw`
   (EVALSHA of query.lua, whose reply holds the page's summaries, or of the read-one-agent
   script; nothing is converted) and `reader` (`RegistryReader`, the code the API calls).
   Kinds alternate: each API, raw, reader.
4. Prints one table per size, then deletes everything it created (its own prefix only).

The same file is the ceiling processes: `--role ceiling --variant raw|reader` (internal).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import logging
import os
import random
import re
import secrets
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import aio_pika
import httpx
import orjson
from aio_pika.abc import AbstractConnection
from redis.asyncio import Redis

from agentroster.cli import run_server, tune_gc
from agentroster.contracts import Register, Topology
from agentroster.registry.terms import TEXT_BUDGET, Filters, skill_term
from agentroster.store.keys import Keys
from agentroster.store.reader import MAX_INSTANCES, SCAN_BUDGET, RegistryReader
from agentroster.store.scripts import QUERY, READ_AGENT

if TYPE_CHECKING:  # mypy sees bench/ from the repository root
    from bench.heartbeats import (
        RawPublisher,
        cleanup_prefix,
        load_average,
        process_cpu_s,
        redis_cpu_s,
    )
else:  # a script run as bench/discovery.py has bench/ on its path
    from heartbeats import (
        RawPublisher,
        cleanup_prefix,
        load_average,
        process_cpu_s,
        redis_cpu_s,
    )

DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_SIZES = "10000,100000"
SKILLS = 200  # distinct skill ids
SKILLS_PER_AGENT = 8
TAGS = 30  # distinct tags
TAGS_PER_AGENT = 3
TTL_S = 3600.0  # nothing expires during a run
LIMIT = 100  # agents per page, every list query
PAIRS = 1000  # two-skill queries are drawn from this many random pairs
CHECK_EVERY = 16  # each client decodes one page in this many in full, to check page_shape
REGISTER_TIMEOUT_S = 1200.0
START_TIMEOUT_S = 60.0
#: How long an API process may take to load its read model (a million agents: minutes).
READY_TIMEOUT_S = 900.0
SCRIPT = os.path.abspath(__file__)

KINDS: dict[str, str] = {
    "single": "single skill, limit 100",
    "two": "two skills, limit 100",
    "get": "GET /v1/agents/{id}",
    "walk": "cursor walk, 1 skill, limit 100",
}
PATHS: dict[str, str] = {
    "api": "API (HTTP)",
    "raw": "ceiling: EVALSHA query.lua",
    "reader": "ceiling: RegistryReader",
}


def api_path(name: str) -> str:
    """The `path` of an API variant's measurements: `api`, or `api:<name>`."""
    return f"api:{name}" if name else "api"


def path_label(path: str) -> str:
    if path.startswith("api:"):
        return f"API {path[4:]} (HTTP)"
    return PATHS[path]


GOAL_P99_MS = 10.0  # single-skill page at the largest size, 8 concurrent clients
GOAL_RATIO = 0.5  # API requests/s against the ceiling

log = logging.getLogger("bench.discovery")


# --------------------------------------------------------------------------------------------
# The agents of a run, and the queries about them
# --------------------------------------------------------------------------------------------


def skill_id(number: int) -> str:
    return f"skill-{number:03d}"


def agent_id(k: int) -> str:
    return f"bench-{k:06d}"  # a DNS label; id order is k order


class Population:
    """Agents 0, 1, 2...: agent k's skills and tags come from one seeded generator, in k order.

    So the first n agents are the same whatever size is grown to, and a ceiling process that
    grows its own copy from the same seed knows the same agents.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._rng = random.Random(seed)
        self.skills: list[tuple[int, ...]] = []  # agent k -> its skill numbers
        self.tags: list[tuple[int, ...]] = []  # agent k -> its tag numbers
        self.holders: list[list[int]] = [[] for _ in range(SKILLS)]  # skill -> agents, k order

    def grow(self, size: int) -> None:
        for k in range(len(self.skills), size):
            skills = tuple(sorted(self._rng.sample(range(SKILLS), SKILLS_PER_AGENT)))
            self.skills.append(skills)
            self.tags.append(tuple(self._rng.sample(range(TAGS), TAGS_PER_AGENT)))
            for s in skills:
                self.holders[s].append(k)

    def card(self, k: int) -> dict[str, Any]:
        """Agent k's A2A v1.0 card: one JSON-RPC interface, 8 skills, 3 tags among them."""
        tags = [f"tag-{t:02d}" for t in self.tags[k]]
        return {
            "name": f"Bench agent {k}",
            "description": "An agent of the agentroster discovery benchmark.",
            "version": "1.0.0",
            "supportedInterfaces": [
                {
                    "url": f"https://agent-{k}.bench.example/a2a",
                    "protocolBinding": "JSONRPC",
                    "protocolVersion": "1.0",
                }
            ],
            "capabilities": {"streaming": False},
            "defaultInputModes": ["text/plain"],
            "defaultOutputModes": ["application/json"],
            "skills": [
                {
                    "id": skill_id(s),
                    "name": f"Skill {s}",
                    "description": f"Performs task {s} of the benchmark.",
                    "tags": [tags[j % TAGS_PER_AGENT]],
                }
                for j, s in enumerate(self.skills[k])
            ],
        }

    def register_command(self, k: int) -> tuple[str, str, bytes]:
        """(routing key, AMQP type, body) of agent k's register command."""
        command = Register(
            agent_id=agent_id(k),
            instance_id=f"{agent_id(k)}-i1",
            seq=1,
            sent_at=datetime.now(UTC),
            ttl_s=TTL_S,
            interval_s=10.0,
            card=self.card(k),
        )
        body = command.model_dump_json(exclude_none=True).encode()
        return Topology.command_key(agent_id(k), "register"), "register", body


class Queries:
    """Random queries over the first `size` agents, with the number of matches each expects."""

    def __init__(self, population: Population, size: int, seed: int) -> None:
        self.size = size
        self.counts = [bisect.bisect_left(h, size) for h in population.holders]
        rng = random.Random(seed)
        self.pairs: list[tuple[tuple[str, ...], int]] = []
        for _ in range(PAIRS):
            a, b = rng.sample(range(SKILLS), 2)
            both = set(population.holders[a][: self.counts[a]])
            both.intersection_update(population.holders[b][: self.counts[b]])
            self.pairs.append(((skill_id(a), skill_id(b)), len(both)))

    def skill(self, rng: random.Random) -> tuple[tuple[str, ...], int]:
        s = rng.randrange(SKILLS)
        return (skill_id(s),), self.counts[s]

    def pair(self, rng: random.Random) -> tuple[tuple[str, ...], int]:
        return self.pairs[rng.randrange(PAIRS)]

    def agent(self, rng: random.Random) -> str:
        return agent_id(rng.randrange(self.size))


# --------------------------------------------------------------------------------------------
# What the load is sent to: the API over HTTP, or Redis directly
# --------------------------------------------------------------------------------------------


class Target(Protocol):
    """One client's way to run a query; each call returns its own latency in seconds."""

    async def page(
        self, skills: tuple[str, ...], cursor: str | None
    ) -> tuple[int, str | None, float]:
        """(agents on the page, next cursor, seconds) of a live-agent query."""
        ...

    async def agent(self, agent_id: str) -> tuple[bool, float]:
        """(found, seconds) of one agent's read."""
        ...


def page_shape(body: bytes) -> tuple[int, str | None]:
    """(agents, next_cursor) of a `GET /v1/agents` body, without decoding it.

    A page of 100 agents is about 150 KB of JSON, and `orjson.loads` takes about 1.9 ms of the
    client's CPU for it, on the cores the API needs too. Each agent has one `"agent_id"` key
    (the benchmark's cards contain no such text); `next_cursor` is the body's last field.
    """
    tail = body[body.rindex(b'"next_cursor":') + len(b'"next_cursor":') :]
    cursor = None if tail.startswith(b"null") else tail[1 : tail.index(b'"', 1)].decode()
    return body.count(b'"agent_id":'), cursor


class HttpTarget:
    """One client: an httpx.AsyncClient with one keep-alive HTTP/1.1 connection."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.AsyncClient(
            base_url=base_url,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=30.0,
        )
        self.pages = 0

    async def page(
        self, skills: tuple[str, ...], cursor: str | None
    ) -> tuple[int, str | None, float]:
        params: list[tuple[str, str | int | float | bool | None]] = [("skill", s) for s in skills]
        params.append(("limit", LIMIT))
        if cursor is not None:
            params.append(("cursor", cursor))
        started = time.perf_counter()
        response = await self.client.get("/v1/agents", params=params)
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"GET /v1/agents: {response.status_code} {response.text[:300]}")
        count, next_cursor = page_shape(response.content)
        self.pages += 1
        if self.pages % CHECK_EVERY == 0:  # now and then, check the shortcut with a decode
            body = orjson.loads(response.content)
            if (len(body["agents"]), body["next_cursor"]) != (count, next_cursor):
                raise RuntimeError(f"page_shape misread a page: {count}, {next_cursor!r}")
        return count, next_cursor, seconds

    async def agent(self, agent_id: str) -> tuple[bool, float]:
        started = time.perf_counter()
        response = await self.client.get(f"/v1/agents/{agent_id}")
        seconds = time.perf_counter() - started
        if response.status_code not in (200, 404):
            raise RuntimeError(f"GET /v1/agents/{agent_id}: {response.status_code}")
        return response.status_code == 200 and b'"agent_id"' in response.content, seconds

    async def aclose(self) -> None:
        await self.client.aclose()


class BareHttpTarget:
    """One client: one keep-alive HTTP/1.1 connection on asyncio streams, and nothing else.

    The request is written as bytes and the answer read by its `Content-Length` (the API sends
    one on every answer). It costs the benchmark's process about a tenth of httpx's CPU per
    request, on the two cores the API needs too: `--client bare` shows how much of the API's
    latency is the load generator's.
    """

    def __init__(self, base_url: str) -> None:
        url = httpx.URL(base_url)
        self.host, self.port = url.host, url.port or 80
        self.head = f"Host: {self.host}:{self.port}\r\n\r\n".encode()
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.pages = 0

    async def get(self, target: str) -> tuple[int, bytes]:
        """(status, body) of `GET target`; the connection is opened on first use.

        The server closes a connection that stayed idle (uvicorn: after 5 s, e.g. while
        another path is measured); as httpx does, the request is then sent on a new one.
        """
        request = b"GET " + target.encode() + b" HTTP/1.1\r\n" + self.head
        for attempt in (1, 2):
            if self.streams is None:
                self.streams = await asyncio.open_connection(self.host, self.port)
            reader, writer = self.streams
            writer.write(request)
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                break
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                await self.aclose()
                if attempt == 2 or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                    raise
        length = _CONTENT_LENGTH.search(head)
        if length is None:
            raise RuntimeError(f"an answer without Content-Length: {head[:300]!r}")
        return int(head[9:12]), await reader.readexactly(int(length[1]))

    async def page(
        self, skills: tuple[str, ...], cursor: str | None
    ) -> tuple[int, str | None, float]:
        query = [f"skill={s}" for s in skills]  # skill ids and cursors need no escaping
        query.append(f"limit={LIMIT}")
        if cursor is not None:
            query.append(f"cursor={cursor}")
        started = time.perf_counter()
        status, body = await self.get("/v1/agents?" + "&".join(query))
        seconds = time.perf_counter() - started
        if status != 200:
            raise RuntimeError(f"GET /v1/agents: {status} {body[:300]!r}")
        count, next_cursor = page_shape(body)
        self.pages += 1
        if self.pages % CHECK_EVERY == 0:  # now and then, check the shortcut with a decode
            decoded = orjson.loads(body)
            if (len(decoded["agents"]), decoded["next_cursor"]) != (count, next_cursor):
                raise RuntimeError(f"page_shape misread a page: {count}, {next_cursor!r}")
        return count, next_cursor, seconds

    async def agent(self, agent_id: str) -> tuple[bool, float]:
        started = time.perf_counter()
        status, body = await self.get(f"/v1/agents/{agent_id}")
        seconds = time.perf_counter() - started
        if status not in (200, 404):
            raise RuntimeError(f"GET /v1/agents/{agent_id}: {status}")
        return status == 200 and b'"agent_id"' in body, seconds

    async def aclose(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            with contextlib.suppress(OSError):
                await self.streams[1].wait_closed()
            self.streams = None


_CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")

HTTP_CLIENTS: dict[str, type[HttpTarget | BareHttpTarget]] = {
    "httpx": HttpTarget,
    "bare": BareHttpTarget,
}


class RawTarget:
    """The same Redis reads as the API, with nothing around them: EVALSHA, then a pipeline."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.keys = Keys(prefix)
        self.agent_key = self.keys.agent("").encode()
        self.instances_key = self.keys.instances("").encode()
        self.live = self.keys.status("live")
        self.query_sha = ""
        self.read_sha = ""

    async def load(self) -> None:
        self.query_sha = await self.redis.script_load(QUERY.source())
        self.read_sha = await self.redis.script_load(READ_AGENT.source())

    async def page(
        self, skills: tuple[str, ...], cursor: str | None
    ) -> tuple[int, str | None, float]:
        sets = [self.live, *(self.keys.index(skill_term(s)) for s in skills)]
        started = time.perf_counter()
        reply = await self.redis.evalsha(
            self.query_sha,
            1,
            self.keys.revision,
            self.keys.base,
            cursor or "",
            LIMIT,
            SCAN_BUDGET,
            "",
            TEXT_BUDGET,
            *sets,
        )
        # the script returns the page's summaries itself: id, fields, live count per agent
        count = (len(reply) - 2) // 3
        seconds = time.perf_counter() - started
        return count, reply[1].decode() or None, seconds

    async def agent(self, agent_id: str) -> tuple[bool, float]:
        started = time.perf_counter()
        reply = await self.redis.evalsha(
            self.read_sha,
            1,
            self.keys.agent(agent_id),
            self.keys.base,
            agent_id,
            MAX_INSTANCES,
        )
        seconds = time.perf_counter() - started
        return reply[1][0] is not None, seconds  # the status field of the summary


class ReaderTarget:
    """What the API's routes call: `RegistryReader.list_agents` and `get_agent`."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.reader = RegistryReader(redis, prefix)

    async def page(
        self, skills: tuple[str, ...], cursor: str | None
    ) -> tuple[int, str | None, float]:
        started = time.perf_counter()
        page = await self.reader.list_agents("live", LIMIT, cursor, Filters(skills=skills))
        seconds = time.perf_counter() - started
        return len(page.agents), page.next_cursor, seconds

    async def agent(self, agent_id: str) -> tuple[bool, float]:
        started = time.perf_counter()
        detail = await self.reader.get_agent(agent_id)
        seconds = time.perf_counter() - started
        return detail is not None, seconds


# --------------------------------------------------------------------------------------------
# Driving the load and summing it up
# --------------------------------------------------------------------------------------------


@dataclass
class Load:
    """What the concurrent clients of one measurement recorded."""

    latencies: list[float] = field(default_factory=list)  # per request (per page for walks)
    walks: list[float] = field(default_factory=list)  # per complete walk
    errors: int = 0  # answers with the wrong number of agents, or an agent not found
    first_error: str = ""
    wall_s: float = 0.0


async def drive(
    kind: str,
    targets: Sequence[Target],
    queries: Queries,
    seconds: float,
    max_requests: int,
    seed: int,
    *,
    complete_walks: bool = True,
) -> Load:
    """Run one kind of query from every target at once, for `seconds` or `max_requests`.

    With `complete_walks`, a walk that has started goes on to its last page, so the wall time
    may exceed `seconds`; without (a warm-up), it stops where it is.
    """
    load = Load()
    started = time.perf_counter()
    deadline = started + seconds

    def more() -> bool:
        return time.perf_counter() < deadline and len(load.latencies) < max_requests

    def wrong(what: str) -> None:
        load.errors += 1
        load.first_error = load.first_error or what

    async def client(number: int, target: Target) -> None:
        rng = random.Random(seed * 1000 + number)
        while more():
            if kind == "get":
                agent = queries.agent(rng)
                found, latency = await target.agent(agent)
                load.latencies.append(latency)
                if not found:
                    wrong(f"agent {agent} not found")
            elif kind in ("single", "two"):
                skills, expected = queries.skill(rng) if kind == "single" else queries.pair(rng)
                count, cursor, latency = await target.page(skills, None)
                load.latencies.append(latency)
                if count != min(LIMIT, expected) or (cursor is not None) != (expected > LIMIT):
                    wrong(f"{skills}: {count} agents, cursor {cursor!r}; expected {expected}")
            else:  # walk: every page of one skill's agents
                skills, expected = queries.skill(rng)
                walk_started = time.perf_counter()
                total, cursor = 0, None
                while True:
                    count, cursor, latency = await target.page(skills, cursor)
                    load.latencies.append(latency)
                    total += count
                    if cursor is None:
                        break
                    if not complete_walks and not more():
                        return
                load.walks.append(time.perf_counter() - walk_started)
                if total != expected:
                    wrong(f"walk {skills}: {total} agents, expected {expected}")

    await asyncio.gather(*(client(n, t) for n, t in enumerate(targets)))
    load.wall_s = time.perf_counter() - started
    return load


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value below which `fraction` of the sorted values lie (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


@dataclass
class Measurement:
    """One kind of query on one path (the API, or a ceiling) at one size."""

    kind: str
    path: str
    requests: int
    wall_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    walks: int = 0
    walk_p50_ms: float = 0.0
    walk_p99_ms: float = 0.0
    errors: int = 0
    first_error: str = ""
    server_cpu_s: float = 0.0  # the API process, or the ceiling process
    client_cpu_s: float = 0.0  # the load generator (API only; the ceiling is its own client)
    redis_cpu_s: float = 0.0  # every client of that Redis, not only ours
    load: float = 0.0  # 1-minute load average at the end

    @classmethod
    def of(cls, kind: str, path: str, load: Load, **usage: float) -> Measurement:
        ms = [s * 1000 for s in load.latencies]
        walks_ms = [s * 1000 for s in load.walks]
        return cls(
            kind=kind,
            path=path,
            requests=len(ms),
            wall_s=load.wall_s,
            p50_ms=percentile(ms, 0.50),
            p99_ms=percentile(ms, 0.99),
            max_ms=max(ms, default=float("nan")),
            walks=len(walks_ms),
            walk_p50_ms=percentile(walks_ms, 0.50) if walks_ms else 0.0,
            walk_p99_ms=percentile(walks_ms, 0.99) if walks_ms else 0.0,
            errors=load.errors,
            first_error=load.first_error,
            load=load_average(),
            **usage,
        )

    @property
    def rate(self) -> float:
        return self.requests / self.wall_s if self.wall_s else 0.0

    def per_request_us(self, seconds: float) -> float:
        return seconds / self.requests * 1e6 if self.requests else 0.0


# --------------------------------------------------------------------------------------------
# Processes: the worker, the API, the ceilings
# --------------------------------------------------------------------------------------------


class Service:
    """A subprocess that is up once a line of its stderr says so; stderr is drained after."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], ready: str) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.ready = ready
        self.process: asyncio.subprocess.Process | None = None
        self.tail: deque[str] = deque(maxlen=40)
        self._draining: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.command,
            env=self.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self.process.stderr is not None
        try:
            async with asyncio.timeout(START_TIMEOUT_S):
                while True:
                    line = await self.process.stderr.readline()
                    if not line:
                        raise RuntimeError(f"{self.name} exited: {self.output()}")
                    self.tail.append(line.decode(errors="replace").rstrip())
                    if self.ready in self.tail[-1]:
                        break
        except TimeoutError:
            raise RuntimeError(f"{self.name} did not start: {self.output()}") from None
        self._draining = asyncio.create_task(self._drain())

    def output(self) -> str:
        return "\n".join(self.tail)

    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def _drain(self) -> None:
        assert self.process is not None
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self.tail.append(line.decode(errors="replace").rstrip())

    async def stop(self) -> None:
        """SIGTERM (a graceful stop), then SIGKILL after 30 s; only this process."""
        if self.process is None:
            return
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._draining is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._draining
        self.process = None


def service_env(args: argparse.Namespace, prefix: str, log_level: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AGENTROSTER_PREFIX=prefix,
        AGENTROSTER_BROKER_URL=args.broker_url,
        AGENTROSTER_REDIS_URL=args.redis_url,
        AGENTROSTER_LOG_LEVEL=log_level,
        # the whole population is one identity (the bench's broker user): no quota
        AGENTROSTER_MAX_AGENTS_PER_IDENTITY="0",
    )
    return env


async def wait_ready(base_url: str) -> None:
    """Until `/readyz` says ready (the API's read model has loaded and caught up)."""
    async with httpx.AsyncClient(base_url=base_url) as http, asyncio.timeout(READY_TIMEOUT_S):
        while True:  # another process: nothing to await but its answer
            if (await http.get("/readyz")).status_code == 200:
                return
            await asyncio.sleep(0.2)


def rss_mib(pid: int) -> float:
    """Resident set size of a process, MiB (from /proc/<pid>/status)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class CeilingProcess:
    """A `--role ceiling` process: it grows the same population, then measures kinds on demand.

    Protocol: it prints `ready`, then for each kind written to its stdin one JSON line (a
    Measurement); it exits when its stdin closes.
    """

    def __init__(self, args: argparse.Namespace, variant: str, prefix: str, size: int) -> None:
        self.command = [
            sys.executable,
            SCRIPT,
            "--role",
            "ceiling",
            "--variant",
            variant,
            "--prefix",
            prefix,
            "--ceiling-size",
            str(size),
            "--seed",
            str(args.seed),
            "--concurrency",
            str(args.concurrency),
            "--seconds",
            str(args.seconds),
            "--warmup",
            str(args.warmup),
            "--max-requests",
            str(args.max_requests),
            "--redis-url",
            args.redis_url,
        ]
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        if await self._line() != "ready":
            raise RuntimeError("the ceiling process did not start")

    async def measure(self, kind: str) -> Measurement:
        assert self.process is not None
        assert self.process.stdin is not None
        self.process.stdin.write(f"{kind}\n".encode())
        await self.process.stdin.drain()
        measurement = Measurement(**json.loads(await self._line()))
        measurement.load = load_average()
        return measurement

    async def _line(self) -> str:
        assert self.process is not None
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError("the ceiling process exited")
        return line.decode().strip()

    async def stop(self) -> None:
        if self.process is None:
            return
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 30)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        self.process = None


async def role_ceiling(args: argparse.Namespace) -> None:
    """The ceiling process: `--concurrency` tasks on one Redis client, no HTTP."""
    population = Population(args.seed)
    population.grow(args.ceiling_size)
    queries = Queries(population, args.ceiling_size, args.seed)
    tune_gc()  # the process settings of `agentroster api`: the same collector and event loop
    # the client the API opens (api/app.py), so both sides pay the same connection settings
    redis = Redis.from_url(
        args.redis_url, socket_connect_timeout=5.0, socket_timeout=5.0, health_check_interval=30
    )
    target: Target
    if args.variant == "raw":
        raw = RawTarget(redis, args.prefix)
        await raw.load()
        target = raw
    else:
        target = ReaderTarget(redis, args.prefix)
    targets = [target] * args.concurrency
    print("ready", flush=True)
    try:
        while kind := (await asyncio.to_thread(sys.stdin.readline)).strip():
            await drive(
                kind,
                targets,
                queries,
                args.warmup,
                args.max_requests,
                args.seed + 1,
                complete_walks=False,
            )
            cpu, redis_cpu = time.process_time(), await redis_cpu_s(redis)
            load = await drive(kind, targets, queries, args.seconds, args.max_requests, args.seed)
            usage = {
                "server_cpu_s": time.process_time() - cpu,
                "redis_cpu_s": await redis_cpu_s(redis) - redis_cpu,
            }
            measurement = Measurement.of(kind, args.variant, load, **usage)
            print(json.dumps(asdict(measurement)), flush=True)
    finally:
        await redis.aclose()


# --------------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------------


class Bench:
    """One run: a prefix of its own, the sizes in turn, and what it deletes at the end."""

    def __init__(self, args: argparse.Namespace, prefix: str | None = None) -> None:
        self.args = args
        self.prefix = prefix or f"bench-{secrets.token_hex(5)}"
        self.names = Topology(self.prefix)
        self.keys = Keys(self.prefix)
        self.population = Population(args.seed)
        self.registered = 0
        self.apis: dict[str, tuple[Service, str]] = {}  # path -> (process, base URL)

    async def run(self) -> dict[int, list[Measurement]]:
        # SIGTERM and SIGINT (even where a shell made the script ignore SIGINT) cancel the run,
        # so the `finally` below stops the processes and deletes what the run created
        main_task = asyncio.current_task()
        assert main_task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, main_task.cancel)
        print(f"prefix {self.prefix}", flush=True)
        connection = await aio_pika.connect(self.args.broker_url)
        redis = Redis.from_url(self.args.redis_url)
        results: dict[int, list[Measurement]] = {}
        try:
            for size in self.args.sizes:
                await self.register(connection, redis, size)
                # a fresh API per size: its read model loads this size (load time, RSS)
                for api, _ in self.apis.values():
                    await api.stop()
                self.apis.clear()
                for name, pythonpath in self.args.api_variants:
                    self.apis[api_path(name)] = await self.start_api(name, pythonpath)
                results[size] = await self.measure_size(size, redis)
                print_table(self.args, size, results[size])
            return results
        finally:
            try:
                for api, _ in self.apis.values():
                    await api.stop()
            finally:
                await cleanup_prefix(connection, redis, self.prefix)
                await redis.aclose()
                await connection.close()

    async def cleanup_only(self) -> None:
        """Delete what an interrupted run of this prefix left behind."""
        connection = await aio_pika.connect(self.args.broker_url)
        redis = Redis.from_url(self.args.redis_url)
        try:
            await cleanup_prefix(connection, redis, self.prefix)
        finally:
            await redis.aclose()
            await connection.close()

    async def register(self, connection: AbstractConnection, redis: Redis, size: int) -> None:
        """Register agents `registered..size-1` through a worker process, then stop it."""
        first = self.registered
        if size <= first:
            return
        self.population.grow(size)
        started = time.perf_counter()
        worker = Service(
            "worker",
            [sys.executable, "-m", "agentroster", "worker"],
            service_env(self.args, self.prefix, "INFO"),
            ready="worker started",
        )
        await worker.start()  # it has declared the topology
        publisher = RawPublisher(self.args.broker_url)
        try:
            await publisher.connect()
            seconds = await publisher.publish(
                self.names.commands_exchange,
                size - first,
                lambda j: self.population.register_command(first + j),
            )
            print(
                f"published {size - first:,} registers in {seconds:.1f}s "
                f"({(size - first) / seconds:,.0f}/s)",
                flush=True,
            )
            await self.wait_registered(connection, redis, size, worker)
        finally:
            await publisher.close()
            await worker.stop()
        self.registered = size
        outbox = await redis.xlen(self.keys.outbox)
        print(
            f"registered agents {first:,}..{size - 1:,} through the worker in "
            f"{time.perf_counter() - started:.1f}s; worker stopped ({outbox:,} outbox entries)",
            flush=True,
        )

    async def wait_registered(
        self, connection: AbstractConnection, redis: Redis, size: int, worker: Service
    ) -> None:
        """Until `{prefix}:agents` and `{prefix}:status:live` both hold `size` agents."""
        deadline = time.monotonic() + REGISTER_TIMEOUT_S
        last_report = time.monotonic()
        while True:
            known = await redis.zcard(self.keys.agents)
            live = await redis.zcard(self.keys.status("live"))
            if known >= size and live >= size:
                if known != size or live != size:
                    raise RuntimeError(f"{known} agents, {live} live; expected {size}")
                return
            if not worker.alive() or time.monotonic() > deadline:
                channel = await connection.channel()
                queue = await channel.declare_queue(self.names.dead_letter_queue, passive=True)
                dead = queue.declaration_result.message_count
                await channel.close()
                raise RuntimeError(
                    f"registration stalled at {live:,} live of {size:,} ({dead} dead-lettered)"
                    f"; worker output:\n{worker.output()}"
                )
            if time.monotonic() - last_report > 10:
                print(f"  ... {live:,} live", flush=True)
                last_report = time.monotonic()
            await asyncio.sleep(0.1)

    async def start_api(self, name: str, pythonpath: str) -> tuple[Service, str]:
        """One API process (`name` '' is the installed code, unless `pythonpath` says)."""
        port = free_port()
        env = service_env(self.args, self.prefix, "INFO")
        env.update(self.args.api_env.get(name, {}))
        if pythonpath:  # experiments: a modified copy of src, extra packages
            env["PYTHONPATH"] = os.pathsep.join(
                [pythonpath, *filter(None, [env.get("PYTHONPATH")])]
            )
        api = Service(
            "api",
            [
                sys.executable,
                "-m",
                "agentroster",
                "api",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env,
            ready="Uvicorn running",
        )
        started = time.perf_counter()
        await api.start()
        base_url = f"http://127.0.0.1:{port}"
        variant = f" ({name}: PYTHONPATH {pythonpath or '-'})" if name else ""
        print(f"API process {api.pid} serving {base_url}{variant}", flush=True)
        await wait_ready(base_url)  # the read model loaded and caught up
        print(
            f"  ready after {time.perf_counter() - started:.1f}s; RSS {rss_mib(api.pid):,.0f} MiB",
            flush=True,
        )
        return api, base_url

    async def measure_api(
        self,
        kind: str,
        path: str,
        clients: Sequence[HttpTarget | BareHttpTarget],
        queries: Queries,
        api: Service,
        redis: Redis,
    ) -> Measurement:
        args = self.args
        await drive(
            kind,
            clients,
            queries,
            args.warmup,
            args.max_requests,
            args.seed + 1,
            complete_walks=False,
        )
        before = (process_cpu_s(api.pid), time.process_time(), await redis_cpu_s(redis))
        load = await drive(kind, clients, queries, args.seconds, args.max_requests, args.seed)
        usage = {
            "server_cpu_s": process_cpu_s(api.pid) - before[0],
            "client_cpu_s": time.process_time() - before[1],
            "redis_cpu_s": await redis_cpu_s(redis) - before[2],
        }
        return Measurement.of(kind, path, load, **usage)

    async def measure_size(self, size: int, redis: Redis) -> list[Measurement]:
        args = self.args
        queries = Queries(self.population, size, args.seed)
        clients = {
            path: [HTTP_CLIENTS[args.client](base_url) for _ in range(args.concurrency)]
            for path, (_, base_url) in self.apis.items()
        }
        ceilings = [CeilingProcess(args, v, self.prefix, size) for v in args.ceilings]
        results: list[Measurement] = []
        try:
            for ceiling in ceilings:
                await ceiling.start()
            for kind in args.kinds:
                for _ in range(args.repeat):  # each API, then each ceiling, in turn
                    for path, (api, _) in self.apis.items():
                        results.append(
                            await self.measure_api(kind, path, clients[path], queries, api, redis)
                        )
                        report(size, results[-1])
                    for ceiling in ceilings:
                        results.append(await ceiling.measure(kind))
                        report(size, results[-1])
                for api, _ in self.apis.values():
                    if not api.alive():
                        raise RuntimeError(f"the API process exited: {api.output()}")
        finally:
            for targets in clients.values():
                for client in targets:
                    await client.aclose()
            for ceiling in ceilings:
                await ceiling.stop()
        return results


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------


def report(size: int, m: Measurement) -> None:
    """One line of progress per measurement."""
    walks = f", {m.walks} walks (p50 {m.walk_p50_ms:.0f} ms)" if m.walks else ""
    errors = f", {m.errors} ERRORS (first: {m.first_error})" if m.errors else ""
    print(
        f"[{size:,} {m.kind} {m.path}] {m.rate:,.0f} req/s, p50 {m.p50_ms:.2f} ms, "
        f"p99 {m.p99_ms:.2f} ms ({m.requests:,} requests in {m.wall_s:.1f}s{walks}, "
        f"load {m.load:.1f}){errors}",
        flush=True,
    )


def median_of(measurements: Sequence[Measurement]) -> Measurement:
    """The measurement with the median requests/s (the lower one of an even count)."""
    ordered = sorted(measurements, key=lambda m: m.rate)
    return ordered[(len(ordered) - 1) // 2]


def print_table(args: argparse.Namespace, size: int, results: Sequence[Measurement]) -> None:
    print()
    print(
        f"agentroster discovery: {size:,} live agents ({SKILLS_PER_AGENT} of {SKILLS} skills, "
        f"{TAGS_PER_AGENT} tags each), {args.concurrency} concurrent {args.client} clients, "
        f"{args.seconds:g} s per measurement, {os.cpu_count()} cores"
        + (f", medians of {args.repeat} (by req/s)" if args.repeat > 1 else "")
    )
    header = (
        f"{'kind / path':<36} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'srv us/req':>10} {'cli us/req':>10} {'Redis us/req':>12} {'load':>5} {'err':>4}"
    )
    print(header)
    print("-" * len(header))
    for kind in args.kinds:
        rows = {
            path: median_of([m for m in results if m.kind == kind and m.path == path])
            for path in dict.fromkeys(m.path for m in results if m.kind == kind)
        }
        print(KINDS[kind] + (" (per page)" if kind == "walk" else ""))
        for path, m in rows.items():
            client = f"{m.per_request_us(m.client_cpu_s):>10.0f}" if is_api(path) else " " * 10
            print(
                f"  {path_label(path)[:34]:<34} {m.rate:>7,.0f} {m.p50_ms:>7.2f} {m.p99_ms:>7.2f} "
                f"{m.max_ms:>7.1f} {m.per_request_us(m.server_cpu_s):>10.0f} {client} "
                f"{m.per_request_us(m.redis_cpu_s):>12.0f} {m.load:>5.1f} {m.errors:>4}"
            )
        if kind == "walk":
            walks = ", ".join(
                f"{path} {m.walks / m.wall_s:.1f}/s, p50 {m.walk_p50_ms:.0f} ms, "
                f"p99 {m.walk_p99_ms:.0f} ms"
                for path, m in rows.items()
                if m.wall_s
            )
            print(f"  whole walks: {walks}")
        for api in (path for path in rows if is_api(path)):
            name = "API" if api == "api" else api[4:]
            ratios = ", ".join(
                f"{name}/{path} {rows[api].rate / rows[path].rate:.2f}"
                for path in rows
                if not is_api(path) and rows[path].rate
            )
            if ratios:
                print(f"  requests/s {ratios}")
    if size != max(args.sizes):
        return
    ceiling = "raw" if "raw" in args.ceilings else (args.ceilings or [None])[0]
    for api in dict.fromkeys(m.path for m in results if is_api(m.path)):
        name = "API" if api == "api" else f"API {api[4:]}"
        medians = {
            kind: median_of([m for m in results if m.kind == kind and m.path == api])
            for kind in dict.fromkeys(m.kind for m in results if m.path == api)
        }
        if "single" in medians:
            single = medians["single"]
            verdict = "met" if single.p99_ms < GOAL_P99_MS else "NOT met"
            print(
                f"goal: single-skill page p99 < {GOAL_P99_MS:g} ms at {size:,} agents with "
                f"{args.concurrency} clients ({name}): {single.p99_ms:.1f} ms ({verdict})"
            )
        for kind, m in medians.items():
            bases = [c for c in results if c.kind == kind and c.path == ceiling]
            if not bases or not (base := median_of(bases)).rate:
                continue
            ratio = m.rate / base.rate
            print(
                f"goal: {kind} {name} >= {GOAL_RATIO:.0%} of the ceiling ({ceiling}) in "
                f"requests/s: {ratio:.3f} ({'met' if ratio >= GOAL_RATIO else 'NOT met'})"
            )


def is_api(path: str) -> bool:
    return path == "api" or path.startswith("api:")


# --------------------------------------------------------------------------------------------


def _sizes(text: str) -> list[int]:
    sizes = sorted({int(s.replace("_", "")) for s in text.split(",") if s})
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError("sizes are positive integers, e.g. 10000,100000")
    return sizes


def _names(choices: dict[str, str]) -> Any:
    def parse(text: str) -> list[str]:
        names = [n for n in text.split(",") if n]
        if unknown := [n for n in names if n not in choices]:
            raise argparse.ArgumentTypeError(f"unknown {unknown}; choose from {list(choices)}")
        return names

    return parse


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--sizes", type=_sizes, default=_sizes(DEFAULT_SIZES), help=f"({DEFAULT_SIZES})"
    )
    parser.add_argument("--agents", type=int, help="one size only (same as --sizes N)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients (8)")
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement (5)")
    parser.add_argument(
        "--max-requests", type=int, default=50_000, help="per measurement at most (50000)"
    )
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds, before each (1)")
    parser.add_argument(
        "--kinds",
        type=_names(KINDS),
        default=list(KINDS),
        help=f"comma-separated, from {','.join(KINDS)} (all)",
    )
    parser.add_argument(
        "--ceilings",
        type=_names({p: d for p, d in PATHS.items() if p != "api"}),
        default=["raw", "reader"],
        help="comma-separated, from raw,reader (both); empty for none",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure each kind this many times, alternating paths (medians are reported)",
    )
    parser.add_argument(
        "--client",
        choices=list(HTTP_CLIENTS),
        default="httpx",
        help="the HTTP clients: httpx.AsyncClient, or bare asyncio streams (httpx)",
    )
    parser.add_argument("--seed", type=int, default=1, help="of the agents and queries (1)")
    parser.add_argument("--broker-url", default=DEFAULT_BROKER_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument(
        "--api-pythonpath",
        metavar="PATHS",
        help="put PATHS first on the API process's PYTHONPATH (to try a copy of src/)",
    )
    parser.add_argument(
        "--api-variant",
        metavar="NAME=PATHS",
        action="append",
        default=[],
        help="an API process with PATHS first on its PYTHONPATH (empty: the installed code);"
        " repeat to compare several on the same data, measured in turn",
    )
    parser.add_argument(
        "--api-env",
        dest="api_env_list",
        metavar="NAME=KEY=VALUE",
        action="append",
        default=[],
        help="an environment variable of the API variant NAME ('' for the only one), e.g."
        " redis=AGENTROSTER_DISCOVERY_SOURCE=redis",
    )
    parser.add_argument(
        "--cleanup",
        metavar="PREFIX",
        help="only delete what an interrupted run left behind (PREFIX is bench-<hex>)",
    )
    parser.add_argument("--role", choices=["ceiling"], help=argparse.SUPPRESS)
    parser.add_argument("--variant", choices=["raw", "reader"], help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    parser.add_argument("--ceiling-size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.agents is not None:
        args.sizes = _sizes(str(args.agents))
    args.api_variants = [("", args.api_pythonpath or "")]
    if args.api_variant:
        if args.api_pythonpath:
            parser.error("--api-pythonpath and --api-variant exclude each other")
        args.api_variants = [tuple(v.partition("=")[::2]) for v in args.api_variant]
        names = [name for name, _ in args.api_variants]
        if not all(re.fullmatch(r"[\w.+-]{1,20}", n) for n in names) or len(set(names)) < len(
            names
        ):
            parser.error("--api-variant: distinct names of 1-20 letters, digits, '.', '+', '-'")
    args.api_env = {}
    for item in args.api_env_list:
        name, _, setting = item.partition("=")
        key, _, value = setting.partition("=")
        if not key.startswith("AGENTROSTER_"):
            parser.error("--api-env: NAME=AGENTROSTER_...=VALUE")
        args.api_env.setdefault(name, {})[key] = value
    if args.cleanup and not re.fullmatch(r"bench-[0-9a-f]{10}", args.cleanup):
        parser.error("--cleanup takes a prefix this benchmark made: bench-<10 hex digits>")
    if (
        args.concurrency < 1
        or args.seconds <= 0
        or args.max_requests < 1
        or args.warmup < 0
        or args.repeat < 1
    ):
        parser.error("--concurrency, --seconds, --max-requests and --repeat must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.role:
        run_server(role_ceiling(args))
        return
    if args.cleanup:
        asyncio.run(Bench(args, args.cleanup).cleanup_only())
        return
    try:
        asyncio.run(Bench(args).run())
    except asyncio.CancelledError:
        sys.exit("interrupted (what the run created is deleted)")


if __name__ == "__main__":
    main()
