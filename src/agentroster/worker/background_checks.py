"""A bounded queue of checks run in the background after registrations, one place per agent.

Card verification (`card_check.py`) and signature verification (`signature_check.py`) both
take an applied registration off the write path and check it later with a few tasks. What they
share lives here:

- `offer` never waits: it queues, or drops when the queue is full (the caller counts it).
- An agent holds one place in the queue at most: a newer check of an agent already waiting
  replaces the waiting one (only the agent's newest state can be recorded anyway), so one agent
  re-registering new cards in a loop cannot crowd the others out.
- A check whose key (agent and state) is waiting or in flight is not queued again: a Beacon
  re-registering the same card is checked once.
- A check that fails is logged and lost (the agent stays unchecked); it never stops the tasks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from agentroster.cancellation import cancel_and_wait
from agentroster.worker.loops import REDIS_UNAVAILABLE

log = logging.getLogger(__name__)

C = TypeVar("C")


class BackgroundChecks(Generic[C]):
    """`concurrency` tasks running `check` on what `offer` queued (see the module docstring)."""

    def __init__(
        self,
        what: str,
        check: Callable[[C], Awaitable[None]],
        on_dropped: Callable[[], None],
        *,
        queue_size: int,
        concurrency: int,
    ) -> None:
        self._what = what
        self._check = check
        self._on_dropped = on_dropped
        #: agents with a check waiting, in order; their newest (key, check) in `_waiting`
        self._queue: asyncio.Queue[str] = asyncio.Queue(queue_size)
        self._waiting: dict[str, tuple[Hashable, C]] = {}
        self._in_flight: set[Hashable] = set()
        self._concurrency = concurrency
        self._tasks: list[asyncio.Task[None]] = []
        self._idle = asyncio.Event()
        self._idle.set()

    def offer(self, agent_id: str, key: Hashable, check: C) -> None:
        """Queue `check` of `agent_id` (its state named by `key`); never waits."""
        if key in self._in_flight:
            return
        if agent_id in self._waiting:
            self._waiting[agent_id] = (key, check)
            return
        try:
            self._queue.put_nowait(agent_id)
        except asyncio.QueueFull:
            self._on_dropped()
            log.warning("%s of %s dropped: the queue is full", self._what, agent_id)
            return
        self._waiting[agent_id] = (key, check)
        self._idle.clear()

    def start(self) -> None:
        """Start the checking tasks."""
        slug = self._what.replace(" ", "-")
        self._tasks = [
            asyncio.create_task(self._run(), name=f"agentroster-{slug}-{n}")
            for n in range(self._concurrency)
        ]

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Stop checking; checks not done yet are lost."""
        await cancel_and_wait(self._tasks, timeout_s)
        self._tasks = []

    async def idle(self) -> None:
        """Return once no check is queued or in flight (for tests and shutdown)."""
        await self._idle.wait()

    async def _run(self) -> None:
        while True:
            agent_id = await self._queue.get()
            key, check = self._waiting.pop(agent_id)
            self._in_flight.add(key)
            try:
                await self._check(check)
            except asyncio.CancelledError:
                raise
            except REDIS_UNAVAILABLE as exc:
                log.warning("%s of %s lost: Redis unavailable (%s)", self._what, agent_id, exc)
            except Exception:
                log.exception("%s of %s failed", self._what, agent_id)
            finally:
                self._in_flight.discard(key)
                if not self._waiting and not self._in_flight:
                    self._idle.set()
