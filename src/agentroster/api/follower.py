"""One reader of the outbox per API process, fanning its events out to subscribers.

The follower holds one blocking `XREAD` on the outbox stream at a time, whatever the number of
event streams (and, later, the in-memory read model) that need the events: N subscribers cost
one Redis connection, not N.

    follower = OutboxFollower(outbox)
    await follower.start()            # from the registry's revision, once Redis answers
    await follower.positioned()
    position = follower.subscribe(s)  # s.deliver(events) for every event after `position`
    follower.unsubscribe(s)
    await follower.stop()

A subscriber's `deliver` is called in the follower's task, synchronously and in revision order;
it must not block (buffer, or drop and let its own client catch up from Redis). `subscribe`
returns the follower's position at that instant: the subscriber receives exactly the events
after it, so whoever needs earlier events reads them from the outbox up to that position and
then takes over from its deliveries (no gap, no duplicate). When Redis lost its data (its
revision fell below the position) `reset` tells every subscriber that the position is void.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Protocol

from agentroster.cancellation import cancel_and_wait, raise_if_cancelling
from agentroster.store.outbox import Outbox, OutboxEvent

log = logging.getLogger(__name__)

#: One blocking read waits at most this long (below the Redis client's socket timeout).
BLOCK_MS = 4000
#: Events read per round trip.
BATCH = 500
#: Pause after a failed read before the next try (Redis unreachable).
RETRY_S = 1.0
#: How long `stop()` keeps cancelling before it gives up on the task.
STOP_TIMEOUT_S = 10.0


class OutboxSubscriber(Protocol):
    """Receives the outbox's events from an `OutboxFollower`, without blocking it."""

    def deliver(self, events: Sequence[OutboxEvent]) -> None:
        """New events, in revision order, each after the previous delivery's."""

    def reset(self) -> None:
        """The registry's revision went backwards (Redis lost its data): positions are void."""


class OutboxFollower:
    """Reads the outbox once for the whole process and hands each event to every subscriber."""

    def __init__(self, outbox: Outbox, *, block_ms: int = BLOCK_MS, batch: int = BATCH) -> None:
        self.outbox = outbox
        self.block_ms = block_ms
        self.batch = batch
        self._subscribers: dict[int, OutboxSubscriber] = {}
        self._position = 0
        self._positioned = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def position(self) -> int:
        """The revision of the last event handed out (or the revision at start)."""
        return self._position

    @property
    def subscribers(self) -> int:
        """How many subscribers receive events now."""
        return len(self._subscribers)

    async def start(self) -> None:
        """Follow in a task of its own, from the registry's revision once Redis answers.

        Does not wait for Redis: an API whose Redis is down starts, and answers 503.
        """
        if self._task is not None:
            raise RuntimeError("the follower is already running")
        self._task = asyncio.create_task(self._follow(), name="agentroster-outbox-follower")

    async def positioned(self) -> None:
        """Wait until the follower knows its starting position (Redis answered once)."""
        await self._positioned.wait()

    async def stop(self) -> None:
        """Stop reading; subscribers stay subscribed but receive nothing more."""
        task, self._task = self._task, None
        if task is not None and await cancel_and_wait([task], STOP_TIMEOUT_S):
            log.error("outbox follower: did not stop within %.0fs; leaving it", STOP_TIMEOUT_S)

    def subscribe(self, subscriber: OutboxSubscriber) -> int:
        """Deliver every event after the returned position to `subscriber`.

        Only meaningful once `positioned()` returned.
        """
        self._subscribers[id(subscriber)] = subscriber
        return self._position

    def unsubscribe(self, subscriber: OutboxSubscriber) -> None:
        """Deliver nothing more to `subscriber` (no error if it was not subscribed)."""
        self._subscribers.pop(id(subscriber), None)

    async def _follow(self) -> None:
        while not self._positioned.is_set():
            raise_if_cancelling()
            try:
                self._position, _ = await self.outbox.span()
            except Exception as exc:
                raise_if_cancelling()  # a cancelled read may surface as a connection error
                log.warning("outbox follower: cannot read the revision, retrying: %s", exc)
                await asyncio.sleep(RETRY_S)
                continue
            self._positioned.set()
        while True:
            raise_if_cancelling()  # a cancel the Redis client swallowed (see cancellation.py)
            try:
                events = await self.outbox.after(self._position, self.batch, self.block_ms)
                if not events:
                    await self._check_reset()
            except Exception as exc:
                raise_if_cancelling()
                log.warning("outbox follower: read failed, retrying: %s", exc)
                await asyncio.sleep(RETRY_S)
                continue
            if events:
                self._hand_out(events)

    def _hand_out(self, events: Sequence[OutboxEvent]) -> None:
        # no await between handing out and moving the position: a subscriber joining
        # concurrently sees either both or neither
        self._position = events[-1].revision
        for subscriber in list(self._subscribers.values()):
            try:
                subscriber.deliver(events)
            except Exception:
                log.exception("outbox follower: a subscriber failed; it is dropped")
                self.unsubscribe(subscriber)

    async def _check_reset(self) -> None:
        revision, _ = await self.outbox.span()
        if revision < self._position:
            log.warning(
                "outbox follower: the registry's revision went back from %d to %d "
                "(Redis lost its data); subscribers start again",
                self._position,
                revision,
            )
            self._position = revision
            for subscriber in list(self._subscribers.values()):
                with contextlib.suppress(Exception):
                    subscriber.reset()
