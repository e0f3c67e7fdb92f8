"""Subprocesses of a benchmark: servers that say when they are up, and its own role processes.

A benchmark runs what it measures in a process of its own (the worker, the API, a ceiling), so
the load generator's CPU is not counted against it. Roles are started as
`python -m bench.<name> --role ...` from the repository root (`role_command`).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]  # the repository root: `bench` is importable there
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def role_command(module: str, *args: str, profile: str | None = None) -> list[str]:
    """The command running `python -m <module> <args>` (under cProfile to `profile`, if given).

    Start it with `cwd=ROOT` so `bench` is importable whatever the caller's directory.
    """
    command = [sys.executable]
    if profile:
        command += ["-m", "cProfile", "-o", profile]
    return [*command, "-m", module, *args]


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
        """The running process's id."""
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        """Start it and wait (START_TIMEOUT_S at most) for its ready line."""
        self.process = await asyncio.create_subprocess_exec(
            *self.command,
            env=self.env,
            cwd=ROOT,
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
        """Its last 40 lines of stderr (for an error message)."""
        return "\n".join(self.tail)

    def alive(self) -> bool:
        """Whether it is still running."""
        return self.process is not None and self.process.returncode is None

    async def _drain(self) -> None:
        assert self.process is not None
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self.tail.append(line.decode(errors="replace").rstrip())

    async def stop(self) -> None:
        """SIGTERM (a graceful stop), then SIGKILL after STOP_TIMEOUT_S; only this process."""
        if self.process is None:
            return
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._draining is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._draining
        self.process = None


@contextlib.asynccontextmanager
async def service(argv: list[str], env: dict[str, str], ready: str) -> AsyncIterator[int]:
    """A `Service` for the duration of the block, once `ready` appeared on its stderr; its pid."""
    server = Service(argv[-1], argv, env, ready)
    await server.start()
    try:
        yield server.pid
    finally:
        await server.stop()


async def wait_ready(base_url: str, timeout_s: float, path: str = "/readyz") -> None:
    """Until an HTTP server answers `path` with 200 (an agentroster API: its read model loaded
    and caught up); polled, since another process offers nothing else to await."""
    async with httpx.AsyncClient(base_url=base_url) as http, asyncio.timeout(timeout_s):
        while True:
            if (await http.get(path)).status_code == 200:
                return
            await asyncio.sleep(0.2)


async def until_terminated() -> None:
    """Return on SIGTERM or SIGINT: how a role process learns that its measurement is over."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
