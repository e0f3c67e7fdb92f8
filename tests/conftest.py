"""Fixtures shared by every suite: services, a unique prefix per test, a worker, an event tap."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import pytest

from agentroster.contracts import Topology
from agentroster.settings import Settings
from agentroster.worker import Worker, create_worker
from tests.helpers import EventCollector, cleanup_broker, cleanup_redis
from tests.services import Services, find_services


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests under tests/integration talk to real services: mark them `connected`."""
    for item in items:
        if "integration" in Path(str(item.fspath)).parts:
            item.add_marker(pytest.mark.connected)


@pytest.fixture(scope="session")
def services() -> Services:
    """The real RabbitMQ and Redis; fails (never skips) with what to start when missing."""
    try:
        return find_services()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def prefix() -> str:
    """A registry prefix unique to this test: its exchanges, queues and keys are its own."""
    return f"t-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def settings(services: Services, prefix: str) -> Settings:
    """Settings for a test registry: short TTLs allowed, fast sweeps."""
    return Settings(
        broker_url=services.broker_url,
        redis_url=services.redis_url,
        prefix=prefix,
        ttl_min_s=0.5,
        sweep_interval_s=0.1,
        relay_lock_ttl_s=2.0,
    )


@pytest.fixture
async def cleanup(services: Services, prefix: str) -> AsyncIterator[None]:
    """Delete the test registry's broker objects and Redis keys afterwards."""
    yield
    await cleanup_broker(services.broker_url, prefix)
    await cleanup_redis(services.redis_url, prefix)


@pytest.fixture
async def worker(settings: Settings, cleanup: None) -> AsyncIterator[Worker]:
    """A started worker of the test registry."""
    async with create_worker(settings) as running:
        yield running


@pytest.fixture
async def events(services: Services, prefix: str, cleanup: None) -> AsyncIterator[EventCollector]:
    """Every event of the test registry, received by a plain aio-pika consumer."""
    collector = EventCollector()
    connection = await aio_pika.connect(services.broker_url)
    channel = await connection.channel()
    # declared as the worker declares it, so the tap can start before any worker
    exchange = await channel.declare_exchange(
        Topology(prefix).events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, routing_key="#")
    await queue.consume(collector.on_message)
    yield collector
    await connection.close()


@pytest.fixture
def repo_root() -> Path:
    """The repository's top folder."""
    return Path(__file__).resolve().parent.parent
