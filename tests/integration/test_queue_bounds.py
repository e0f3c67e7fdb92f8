"""The registry's queues are bounded, each with its overflow policy, against the real services."""

from __future__ import annotations

import pytest
from aio_pika.exceptions import DeliveryError
from pamqp.commands import Basic

from agentroster.contracts import REASON_HEADER, Topology
from agentroster.settings import Settings
from agentroster.worker import create_worker
from tests.helpers import EventCollector, RawPublisher, drain_queue, queue_depth
from tests.integration.agents import command_body


async def test_a_full_dead_letter_queue_drops_its_oldest(
    settings: Settings, events: EventCollector, cleanup: None
) -> None:
    """drop-head: the newest dead letters are kept, and parking never blocks the commands."""
    bounded = Settings(**{**settings.model_dump(), "dead_letter_max_length": 2})
    names = Topology(bounded.prefix)
    async with (
        create_worker(bounded) as worker,
        RawPublisher(bounded.broker_url, bounded.prefix) as raw,
    ):
        for n in range(3):
            await raw.send("agent.broken.register", f"not json {n}".encode())
        await raw.send("agent.first.register", command_body("first"))
        await events.wait_until(lambda evs: any(e.agent_id == "first" for e in evs))
        # batches are flushed one after the other: once a later command is applied, the dead
        # letters of every earlier batch were confirmed
        await raw.send("agent.second.register", command_body("second"))
        await events.wait_until(lambda evs: any(e.agent_id == "second" for e in evs))
        assert worker.metrics.dead_lettered.labels("malformed-json")._value.get() == 3
    assert await queue_depth(bounded.broker_url, names.dead_letter_queue) == 2
    kept = await drain_queue(bounded.broker_url, names.dead_letter_queue, 2)
    assert [m.body for m in kept] == [b"not json 1", b"not json 2"]
    assert {m.headers[REASON_HEADER] for m in kept} == {"malformed-json"}


async def test_a_full_commands_queue_refuses_publishes(
    settings: Settings, events: EventCollector, cleanup: None
) -> None:
    """reject-publish: past the bound a publisher gets a nack; nothing queued is dropped."""
    bounded = Settings(
        **{**settings.model_dump(), "commands_max_length": 3, "reaper_backlog_limit": 0}
    )
    names = Topology(bounded.prefix)
    async with create_worker(bounded) as worker:
        await worker.consumer.stop_consuming()  # nothing consumes: the queue fills
        async with RawPublisher(bounded.broker_url, bounded.prefix) as raw:
            # a quorum queue refuses once it holds more than its bound: one more gets in
            for n in range(4):
                await raw.send(f"agent.queued-{n}.register", command_body(f"queued-{n}"))
            with pytest.raises(DeliveryError) as refused:
                await raw.send("agent.refused.register", command_body("refused"))
        assert isinstance(refused.value.frame, Basic.Nack)
        assert await queue_depth(bounded.broker_url, names.commands_queue) == 4
        await worker.consumer.consume()  # what was queued is applied, nothing was dropped
        await events.wait_until(lambda evs: len({e.agent_id for e in evs}) == 4)
    assert sorted(e.agent_id for e in events.events) == [f"queued-{n}" for n in range(4)]


def test_a_bound_at_or_under_the_backlog_limit_is_refused() -> None:
    """The reaper must pause for a backlog before renewals are refused."""
    with pytest.raises(ValueError, match="AGENTROSTER_COMMANDS_MAX_LENGTH"):
        Settings(commands_max_length=10_000, reaper_backlog_limit=10_000)
