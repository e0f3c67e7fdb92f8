"""A rolling deploy: two live instances of one agent run different cards, both re-registering in
full on every beat. The card of the newest instance wins; the older one's registrations renew
its lease without flipping the card back (one `agent.updated`, no ping-pong); when the newest
instance leaves first (a rollback), the older one's next registration brings its card back.

Real worker, RabbitMQ and Redis; the instances are real `Beacon`s. To know that a number of
registrations were applied without sleeping, the test taps the commands exchange (a queue of its
own bound to the agent's register key) and, once it saw them published, announces a probe agent:
the single worker applies commands in queue order, so the probe's `agent.joined` arrives after
every event those registrations could have caused.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import orjson
import pytest
from aio_pika.abc import AbstractIncomingMessage

from agentroster.client import Announcement, Beacon
from agentroster.contracts import Topology, card_bytes
from agentroster.worker import Worker
from tests.helpers import EventCollector
from tests.integration.agents import a2a_card

AGENT = "rolling"
#: Full registrations of each instance applied while both run, before looking at the events.
OVERLAP = 15


class RegisterTap:
    """Counts the register commands of `AGENT` published, per instance (a copy of each)."""

    def __init__(self) -> None:
        self.by_instance: Counter[str] = Counter()
        self._changed = asyncio.Condition()

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        async with message.process():
            instance = orjson.loads(message.body)["instance_id"]
        async with self._changed:
            self.by_instance[instance] += 1
            self._changed.notify_all()

    async def more(self, instances: list[str], count: int, timeout: float = 30.0) -> None:
        """Wait until each instance published `count` more registrations than now."""
        start = {i: self.by_instance[i] for i in instances}
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(
                    lambda: all(self.by_instance[i] >= start[i] + count for i in instances)
                ),
                timeout,
            )


@pytest.fixture
async def tap(worker: Worker) -> AsyncIterator[RegisterTap]:
    counter = RegisterTap()
    connection = await aio_pika.connect(worker.settings.broker_url)
    channel = await connection.channel()
    exchange = await channel.get_exchange(Topology(worker.settings.prefix).commands_exchange)
    queue = await channel.declare_queue(exclusive=True)  # gone with the connection
    await queue.bind(exchange, routing_key=f"agent.{AGENT}.register")
    await queue.consume(counter.on_message)
    yield counter
    await connection.close()


def instance(worker: Worker, card: dict[str, Any]) -> Beacon:
    """An instance of `AGENT` that sends its full registration on every beat."""
    return Beacon(
        card,
        worker.settings.broker_url,
        prefix=worker.settings.prefix,
        agent_id=AGENT,
        interval_s=0.05,
        ttl_s=5,
        full_every=1,
        handle_signals=False,
    )


async def applied(worker: Worker, events: EventCollector, probe: str) -> None:
    """Everything published before now has been applied and its events received."""
    async with Announcement(
        a2a_card(probe), worker.settings.broker_url, prefix=worker.settings.prefix, ttl_s=60
    ):
        await events.wait_until(lambda evs: any(e.agent_id == probe for e in evs))


def card_changes(events: EventCollector) -> list[dict[str, Any]]:
    """The cards of `AGENT`'s `agent.updated` events with reason `card-changed`, in order."""
    return [e.data["card"] for e in events.of("updated", "card-changed") if e.agent_id == AGENT]


async def stored_card(worker: Worker) -> bytes | None:
    card = await worker.redis.hget(worker.store.keys.agent(AGENT), "card")
    return card.encode() if isinstance(card, str) else card


OLD, NEW = a2a_card(AGENT, version="1.0.0"), a2a_card(AGENT, version="2.0.0")


async def test_the_newest_instance_card_wins_once_and_the_old_one_does_not_flip_it(
    worker: Worker, events: EventCollector, tap: RegisterTap
) -> None:
    """Old and new overlap for many full registrations each: one `agent.updated`, and the
    card stays the new one, also after the old instance leaves (the deploy completes)."""
    async with contextlib.AsyncExitStack() as stack:
        old = await stack.enter_async_context(instance(worker, OLD))
        await events.wait_until(lambda evs: any(e.agent_id == AGENT for e in evs))
        async with instance(worker, NEW) as new:
            await tap.more([old.instance_id, new.instance_id], OVERLAP)
            await applied(worker, events, "probe-overlap")
            assert card_changes(events) == [NEW]
            assert await stored_card(worker) == card_bytes(NEW)

            await stack.aclose()  # the old instance leaves: the rolling deploy is done
            await tap.more([new.instance_id], OVERLAP)
            await applied(worker, events, "probe-after")
            assert card_changes(events) == [NEW]
            assert await stored_card(worker) == card_bytes(NEW)
    joined = [e for e in events.of("joined") if e.agent_id == AGENT]
    assert len(joined) == 1


async def test_when_the_newest_instance_leaves_first_the_older_card_comes_back_once(
    worker: Worker, events: EventCollector, tap: RegisterTap
) -> None:
    """A rollback: the new instance ends while the old one runs; the old instance's next full
    registration makes its card the agent's again, in one `agent.updated`."""
    async with instance(worker, OLD) as old:
        await events.wait_until(lambda evs: any(e.agent_id == AGENT for e in evs))
        async with instance(worker, NEW) as new:
            await tap.more([old.instance_id, new.instance_id], OVERLAP)
        await events.wait_until(lambda evs: len(card_changes(events)) == 2)
        await tap.more([old.instance_id], OVERLAP)
        await applied(worker, events, "probe-rollback")
        assert card_changes(events) == [NEW, OLD]
        assert await stored_card(worker) == card_bytes(OLD)
    await events.wait_until(lambda evs: any(e.agent_id == AGENT for e in evs if e.kind == "left"))
    assert [e.kind for e in events.events if e.agent_id == AGENT] == [
        "joined",
        "updated",
        "updated",
        "left",
    ]
