"""The MCP notifier: whom it tells what, and that one slow session delays no other."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import cast

import pytest
from mcp.server.session import ServerSession
from pydantic import AnyUrl
from redis.asyncio import Redis

from agentroster.api.follower import OutboxFollower
from agentroster.api.mcp_server.notifier import RosterNotifier, TooManySubscriptions
from agentroster.store.outbox import Outbox, OutboxEvent


class FakeSession:
    """Records notifications; with a closed `gate`, each send waits until it opens."""

    def __init__(self, *, gate: asyncio.Event | None = None) -> None:
        self.told: list[str] = []
        self.gate = gate
        self.changed = asyncio.Condition()
        self.cancelled = asyncio.Event()
        self.waiting = asyncio.Event()

    async def _record(self, what: str) -> None:
        if self.gate is not None:
            self.waiting.set()
            try:
                await self.gate.wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        async with self.changed:
            self.told.append(what)
            self.changed.notify_all()

    async def send_resource_list_changed(self) -> None:
        await self._record("list_changed")

    async def send_resource_updated(self, uri: AnyUrl) -> None:
        await self._record(f"updated {uri}")

    async def told_at_least(self, count: int) -> list[str]:
        async with asyncio.timeout(30), self.changed:  # only against a hang
            await self.changed.wait_for(lambda: len(self.told) >= count)
        return self.told


def session(fake: FakeSession) -> ServerSession:
    return cast(ServerSession, fake)


def event(revision: int, agent_id: str) -> OutboxEvent:
    return OutboxEvent(
        revision=revision,
        kind="joined",
        agent_id=agent_id,
        status="live",
        live_instances=1,
        reason="registered",
        time_ms=0,
        epoch="e",
        view=b"{}",
        card=None,
    )


@pytest.fixture
async def follower() -> AsyncIterator[OutboxFollower]:
    """A follower that is never started: the tests hand the notifier its deliveries."""
    redis = Redis.from_url("redis://127.0.0.1:1")  # never connected
    yield OutboxFollower(Outbox(redis, "unit"))
    await redis.aclose()


async def test_watching_sessions_hear_of_every_change_and_subscribers_of_their_cards(
    follower: OutboxFollower,
) -> None:
    notifier = RosterNotifier(follower)
    await notifier.start()
    lister, subscriber, bystander = FakeSession(), FakeSession(), FakeSession()
    notifier.watch(session(lister))
    notifier.subscribe(session(subscriber), "weather")
    assert follower.subscribers == 1
    try:
        notifier.deliver([event(1, "weather"), event(2, "news")])
        assert await lister.told_at_least(1) == ["list_changed"]
        assert await subscriber.told_at_least(2) == [
            "list_changed",
            "updated agentroster://agents/weather/card",
        ]
        notifier.unsubscribe(session(subscriber), "weather")
        notifier.deliver([event(3, "weather")])
        assert (await subscriber.told_at_least(3))[2:] == ["list_changed"]
        assert bystander.told == []  # it never listed nor subscribed
    finally:
        await notifier.stop()
    assert follower.subscribers == 0


async def test_a_session_that_takes_nothing_delays_no_other_and_is_forgotten(
    follower: OutboxFollower,
) -> None:
    notifier = RosterNotifier(follower, send_timeout_s=0.1)
    await notifier.start()
    stuck, fine = FakeSession(gate=asyncio.Event()), FakeSession()
    notifier.watch(session(stuck))
    notifier.watch(session(fine))
    try:
        notifier.deliver([event(1, "weather")])
        assert await fine.told_at_least(1) == ["list_changed"]
        async with asyncio.timeout(30):  # only against a hang
            await stuck.cancelled.wait()
        assert notifier.sessions == 1  # forgotten in the same step its send was cancelled in
        notifier.deliver([event(2, "weather")])
        assert await fine.told_at_least(2) == ["list_changed", "list_changed"]
        assert stuck.told == []
    finally:
        await notifier.stop()


async def test_a_stuck_session_holds_back_no_later_notification_of_another(
    follower: OutboxFollower,
) -> None:
    """Sessions are told independently: while one send hangs, others hear of every change."""
    notifier = RosterNotifier(follower, send_timeout_s=3600)
    await notifier.start()
    stuck, fine = FakeSession(gate=asyncio.Event()), FakeSession()
    notifier.watch(session(stuck))
    notifier.watch(session(fine))
    try:
        for revision in (1, 2, 3):
            notifier.deliver([event(revision, "weather")])
            assert len(await fine.told_at_least(revision)) == revision
        assert stuck.waiting.is_set()
        assert not stuck.cancelled.is_set()
    finally:
        await notifier.stop()
    assert stuck.cancelled.is_set()  # stopping ends the hanging send


async def test_notifications_coalesce_while_a_session_is_busy(follower: OutboxFollower) -> None:
    """A flood of events costs a waiting session one pending flag and its subscribed URIs."""
    notifier = RosterNotifier(follower)
    await notifier.start()
    gate = asyncio.Event()
    busy = FakeSession(gate=gate)
    notifier.subscribe(session(busy), "weather")
    try:
        notifier.deliver([event(1, "news")])
        await busy.waiting.wait()  # its first notification is being sent
        for revision in range(2, 1002):
            notifier.deliver([event(revision, "weather" if revision % 2 else "news")])
        gate.set()
        assert await busy.told_at_least(3) == [
            "list_changed",
            "list_changed",
            "updated agentroster://agents/weather/card",
        ]
        notifier.deliver([event(1002, "news")])
        assert (await busy.told_at_least(4))[3:] == ["list_changed"]
    finally:
        await notifier.stop()


async def test_subscriptions_per_session_are_bounded(follower: OutboxFollower) -> None:
    notifier = RosterNotifier(follower, max_subscriptions=2)
    greedy, other = FakeSession(), FakeSession()
    notifier.subscribe(session(greedy), "a")
    notifier.subscribe(session(greedy), "b")
    notifier.subscribe(session(greedy), "b")  # again: no new place taken
    with pytest.raises(TooManySubscriptions, match="already subscribes to 2 cards"):
        notifier.subscribe(session(greedy), "c")
    notifier.subscribe(session(other), "c")  # another session's places are its own
    notifier.unsubscribe(session(greedy), "a")
    notifier.subscribe(session(greedy), "c")
