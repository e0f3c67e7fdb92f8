"""The client's promises: errors the caller sees, and a registry that heals by itself."""

from __future__ import annotations

import aio_pika
import pytest
from aio_pika.exceptions import DeliveryError

from agentroster.client import Announcement, Beacon, RegistryNotDeclared
from agentroster.contracts import Topology
from agentroster.settings import Settings
from agentroster.worker import Worker
from tests.helpers import EventCollector, cleanup_redis
from tests.integration.agents import a2a_card


async def test_registering_before_any_registry_declared_the_exchange_is_an_error(
    settings: Settings, cleanup: None
) -> None:
    """The agent never declares the commands exchange (no configure): its absence is named."""
    agent = Announcement(a2a_card("lonely"), settings.broker_url, prefix=settings.prefix, ttl_s=60)
    with pytest.raises(RegistryNotDeclared, match="has not declared it yet"):
        await agent.open()
    await agent.close()


async def test_registering_with_no_registry_listening_is_an_error(
    settings: Settings, cleanup: None
) -> None:
    """Nothing routes the command (the exchange exists, no queue is bound): the caller sees it."""
    connection = await aio_pika.connect(settings.broker_url)
    channel = await connection.channel()
    await channel.declare_exchange(
        Topology(settings.prefix).commands_exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )
    await connection.close()
    agent = Announcement(a2a_card("lonely"), settings.broker_url, prefix=settings.prefix, ttl_s=60)
    with pytest.raises(DeliveryError):
        await agent.open()
    await agent.close()


async def test_registering_with_the_broker_down_is_an_error(settings: Settings) -> None:
    """A broker that does not answer is an error, not a silent no-op."""
    agent = Announcement(a2a_card("lonely"), "amqp://guest:guest@127.0.0.1:1/", ttl_s=60)
    with pytest.raises((ConnectionError, aio_pika.exceptions.AMQPConnectionError, OSError)):
        await agent.open()


async def test_a_registry_that_lost_the_agent_learns_it_again_from_the_beacon(
    worker: Worker, events: EventCollector
) -> None:
    """Every `full_every` beats the full registration goes out, so lost data heals itself."""
    beacon = Beacon(
        a2a_card("phoenix"),
        worker.settings.broker_url,
        prefix=worker.settings.prefix,
        interval_s=0.1,
        ttl_s=5,
        full_every=3,
        handle_signals=False,
    )
    async with beacon:
        await events.wait_until(lambda evs: any(e.agent_id == "phoenix" for e in evs))
        # the registry forgets everything (as Redis restarted without persistence would)
        await cleanup_redis(worker.settings.redis_url, worker.settings.prefix)
        await events.wait_until(
            lambda evs: len([e for e in evs if e.agent_id == "phoenix" and e.kind == "joined"]) == 2
        )
    assert await worker.redis.hget(worker.store.keys.agent("phoenix"), "card") is not None
