"""The worker's commands path through supported API only (worker/consumer.py).

FastStream declares the commands queue through a handler-less subscriber and consumes nothing;
the worker's own aio-pika consumer takes every delivery into the batcher. If a FastStream
release started consuming handler-less subscribers, or stopped declaring their queues, these
tests fail.
"""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from agentroster.client import Announcement
from agentroster.settings import Settings
from agentroster.specification import default_settings, registry_document
from agentroster.worker import Worker, create_worker
from agentroster.worker.consumer import CommandConsumer
from tests.helpers import EventCollector
from tests.integration.agents import a2a_card


async def consumers_of(broker_url: str, queue: str) -> int:
    """The number of consumers RabbitMQ counts on `queue` (a passive declare reads it)."""
    connection = await aio_pika.connect(broker_url)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        count = declared.declaration_result.consumer_count
        assert count is not None
        return count
    finally:
        await connection.close()


async def test_the_commands_queue_has_exactly_the_workers_own_consumer(worker: Worker) -> None:
    """FastStream declared the queue (it exists) but consumes nothing: one consumer, ours."""
    assert not worker.subscriber.calls  # handler-less: nothing of FastStream's runs per message
    assert await consumers_of(worker.settings.broker_url, worker.names.commands_queue) == 1


async def test_a_published_command_reaches_the_batcher_and_is_applied(
    settings: Settings, events: EventCollector
) -> None:
    """A register published to the commands exchange goes through the batcher to an event."""
    worker = create_worker(settings)
    taken: list[str | None] = []
    on_message = worker.batcher.on_message

    async def spy(message: AbstractIncomingMessage) -> None:
        taken.append(message.routing_key)
        await on_message(message)

    worker.consumer = CommandConsumer(
        settings.broker_url, worker.names.commands_queue, spy, prefetch=settings.prefetch
    )
    async with (
        worker,
        Announcement(a2a_card("reached"), settings.broker_url, ttl_s=60, prefix=settings.prefix),
    ):
        await events.wait_until(lambda evs: any(e.agent_id == "reached" for e in evs))
    assert taken[0] == "agent.reached.register"


async def test_stopping_the_worker_leaves_no_consumer(settings: Settings, cleanup: None) -> None:
    """After stop(), the queue has no consumer left (deliveries go to other replicas)."""
    worker = create_worker(settings)
    await worker.start()
    assert await consumers_of(settings.broker_url, worker.names.commands_queue) == 1
    await worker.stop()
    assert await consumers_of(settings.broker_url, worker.names.commands_queue) == 0


def test_the_registry_document_keeps_the_commands_channel_and_its_messages() -> None:
    """The handler-less subscriber still documents the commands channel, one message per kind
    and the API gateway's heartbeat batch."""
    doc = registry_document(default_settings())
    channel = doc["channels"]["agentroster.commands:consume"]
    assert channel["address"] == "agent.*.*"
    assert sorted(channel["messages"]) == ["deregister", "heartbeat", "heartbeatBatch", "register"]


async def test_the_reaper_holds_while_the_commands_connection_is_down() -> None:
    """No consumer connection: renewals cannot be heard, so no lease may expire (invariant 3)."""
    worker = create_worker(default_settings())  # never started: the connection is not up
    reason = await worker.reaper_hold_reason()
    assert reason is not None
    assert "commands" in reason
    await worker.redis.aclose()
