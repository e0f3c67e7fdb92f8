"""The one outbox follower and the stream hub on real Redis, driven without HTTP.

The store writes events (as the worker would); the follower reads them once and the hub fans
them out. Each test awaits deliveries through a subscriber of its own, the interface a read
model uses too, never a sleep.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from agentroster.api.follower import OutboxFollower
from agentroster.api.streams import EventStream, SseMessage, StreamHub, StreamsFull
from agentroster.store.outbox import Outbox, OutboxEvent
from agentroster.store.redis_store import RedisStore
from tests.integration.leases import register


class Tap:
    """A subscriber that records what the follower handed out and lets a test await it."""

    def __init__(self) -> None:
        self.revisions: list[int] = []
        self.resets = 0
        self._changed = asyncio.Condition()
        self._pending: list[int] = []

    def deliver(self, events: Sequence[OutboxEvent]) -> None:
        self.revisions.extend(e.revision for e in events)
        asyncio.get_running_loop().create_task(self._notify())

    def reset(self) -> None:
        self.resets += 1

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def until(self, revision: int) -> None:
        async def reached() -> None:
            async with self._changed:
                await self._changed.wait_for(
                    lambda: bool(self.revisions) and self.revisions[-1] >= revision
                )

        await asyncio.wait_for(reached(), 10)


@pytest.fixture
async def follower(store: RedisStore) -> AsyncIterator[OutboxFollower]:
    running = OutboxFollower(Outbox(store.redis, store.keys.prefix), block_ms=200)
    await running.start()
    await asyncio.wait_for(running.positioned(), 10)
    yield running
    await running.stop()


async def take(messages: AsyncIterator[SseMessage], count: int) -> list[int]:
    """The revisions of the next `count` messages."""

    async def read() -> list[int]:
        return [int((await anext(messages))["id"]) for _ in range(count)]

    return await asyncio.wait_for(read(), 10)


async def rest(messages: AsyncIterator[SseMessage]) -> list[int]:
    """The revisions of the messages until the stream ends."""

    async def read() -> list[int]:
        return [int(m["id"]) async for m in messages]

    return await asyncio.wait_for(read(), 10)


async def apply_registrations(store: RedisStore, names: list[str]) -> None:
    await store.apply([register(name) for name in names])


async def test_the_follower_hands_each_event_once_to_every_subscriber(
    store: RedisStore, follower: OutboxFollower
) -> None:
    """Two subscribers (a stream hub and a read model, say) see the same events, in order,
    from the position `subscribe` returned; an unsubscribed one sees nothing more."""
    first, second = Tap(), Tap()
    assert follower.subscribe(first) == 0
    await apply_registrations(store, ["before"])
    await first.until(1)
    assert follower.subscribe(second) == 1
    await apply_registrations(store, ["a", "b", "c"])
    await first.until(4)
    await second.until(4)
    follower.unsubscribe(second)
    await apply_registrations(store, ["d"])
    await first.until(5)
    assert first.revisions == [1, 2, 3, 4, 5]
    assert second.revisions == [2, 3, 4]


async def test_replay_hands_over_to_live_with_no_gap_and_no_duplicate(
    store: RedisStore, follower: OutboxFollower
) -> None:
    """A stream replaying 200 events in chunks of 7 while 100 more are written gets
    1..300 exactly once each, in order."""
    tap = Tap()
    follower.subscribe(tap)
    await apply_registrations(store, [f"old-{n}" for n in range(200)])
    await tap.until(200)
    hub = StreamHub(follower, max_streams=10, buffer_events=1000, replay_chunk=7)
    messages = hub.reserve().messages(0)
    got = await take(messages, 50)  # mid-replay
    writer = asyncio.create_task(apply_registrations(store, [f"new-{n}" for n in range(100)]))
    got += await take(messages, 250)
    await writer
    assert got == list(range(1, 301))


async def test_a_stream_that_falls_behind_is_ended_and_resumes_from_its_last_id(
    store: RedisStore, follower: OutboxFollower
) -> None:
    """Buffer of 2: a stream that takes nothing while 3 events arrive is ended (its buffer
    freed); its client resumes from the last id it got, with no gap. A stream that keeps up
    gets every event."""
    hub = StreamHub(follower, max_streams=10, buffer_events=2)
    tap = Tap()
    follower.subscribe(tap)
    slow_stream, fast_stream = hub.reserve(), hub.reserve()
    slow, fast = slow_stream.messages(0), fast_stream.messages(0)
    await apply_registrations(store, ["one"])
    assert await take(slow, 1) == [1]
    assert await take(fast, 1) == [1]
    for revision, name in enumerate(("two", "three", "four"), start=2):
        await apply_registrations(store, [name])
        await tap.until(revision)
        assert await take(fast, 1) == [revision]
    assert slow_stream.ended == "fell behind"
    assert await rest(slow) == []  # ended: the client reconnects with Last-Event-ID: 1
    slow_stream.release()
    resumed = hub.reserve().messages(1)
    assert await take(resumed, 3) == [2, 3, 4]


async def test_the_cap_refuses_one_stream_too_many_until_one_is_released(
    follower: OutboxFollower,
) -> None:
    """Three slots: the fourth is refused with 503 and Retry-After; a release frees one."""
    hub = StreamHub(follower, max_streams=3, buffer_events=10)
    streams: list[EventStream] = [hub.reserve() for _ in range(3)]
    with pytest.raises(StreamsFull) as refused:
        hub.reserve()
    assert refused.value.status == 503
    assert refused.value.code == "too-many-streams"
    assert int(refused.value.headers["Retry-After"]) > 0
    streams[0].release()
    streams[0].release()  # twice is once
    assert hub.open_streams == 2
    hub.reserve()
    assert hub.open_streams == 3


async def test_a_revision_that_went_back_ends_every_stream(
    store: RedisStore, follower: OutboxFollower
) -> None:
    """Redis lost its data (revision below the follower's position): streams end, so their
    clients reconnect and learn (410 revision-ahead) that they must list again."""
    hub = StreamHub(follower, max_streams=10, buffer_events=10)
    tap = Tap()
    follower.subscribe(tap)
    await apply_registrations(store, ["a", "b"])
    await tap.until(2)
    stream = hub.reserve()
    messages = stream.messages(1)
    assert await take(messages, 1) == [2]  # replayed: the stream is attached
    reading = asyncio.create_task(rest(messages))
    await store.redis.delete(store.keys.revision, store.keys.outbox)
    assert await reading == []
    assert stream.ended == "registry revision reset"
    assert follower.position == 0


async def test_stop_ends_a_blocking_read_at_once(store: RedisStore) -> None:
    """stop() cancels the read in progress (again, should the Redis client lose the cancel)
    instead of waiting for a long blocking read to return by itself."""
    follower = OutboxFollower(Outbox(store.redis, store.keys.prefix), block_ms=60_000)
    await follower.start()
    await asyncio.wait_for(follower.positioned(), 10)
    await asyncio.sleep(0)  # let it enter the blocking read
    # the guard is far below the 60 s block: only a stop that cancels returns within it
    await asyncio.wait_for(follower.stop(), 20)
